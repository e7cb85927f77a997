"""What an agent is told when its job or its submission fails: a line from a fixed vocabulary, never text
or numbers of the method's choosing.

The pipeline's line about a method's failure carries the method's own text (its exception's message, where
it failed, the shape it returned, the exit code it chose, a path it named). That text is a channel out of
the sandbox: six failing jobs once carried out a trained student's test predictions, and the final part's
test texts could have gone the same way. So the service reads the pipeline's line here, against the
harness's own templates (anchored at the method's name, which the service chose), and answers with one of
the lines below; the whole line goes to the operator's log. A line that matches no template is the
harness's failure. The one variable part is the type of an exception, and only a built-in one (its name
comes from Python, not from the method); a method's own exception class is "an exception of its own class".
What a method can still choose is which of these lines the agent reads: a few bits per job, each job
costing an evaluation.
"""

from __future__ import annotations

import builtins
import re

HARNESS = "the harness failed on this job (the operator's log says why)"
RAISED = "the method raised {} in the sealed process"
OWN_CLASS = "an exception of its own class"
TIME = "the method exceeded its time limit (the least of the campaign's method limit and your compute left)"
MEMORY = "the method exceeded its memory limit"
RESOURCE = "the method exceeded a limit of its sandbox (processes and threads, /tmp, /dev/shm or file size)"
SHAPE = "the method returned predictions of the wrong shape (one p(label=1) per test text is expected)"
NOT_NUMBERS = "the method returned predictions that are not numbers in [0, 1]"
DENIED = "the sandbox denied the method a path or an address"
LOAD = "the method's code failed to load in the sealed process"
DIED = "the method's sealed process ended without replying"
REPLY = "the method's sealed process sent a reply the harness refuses"
WEAK = "the method read the weak labels though it declares uses_weak_labels=False"
DESCRIPTION = "the method's code describes itself differently in the sealed process than in the probe"
GAP = "the validation gap of this campaign is not positive"

# what submit_method says when the probe refuses the code
PROBE_RAISED = "importing your code raised {} (debug it locally with the development kit)"
PROBE_TIME = "importing your code took longer than the probe's limit of {:g} s"
PROBE_MEMORY = "importing your code exceeded the probe's memory limit of {}"
PROBE_ENDED = "importing your code ended the probe before it described the method"
PROBE_CLASSES = "your code must define exactly one Method or LossMethod subclass, or name it in class_name"
PROBE_NO_RUN = "your method implements no run(ctx) and is not a LossMethod"
PROBE_SHADOW = "a hyperparameter of your method is named like a part of the method API (name, config, run, ...)"
PROBE_DESCRIPTION = (
    "your method's description was refused: a lower-case name, an int version, at most 32 hyperparameters "
    "declared as annotated class fields of type bool, int, float, str or Literal, with short defaults"
)
VOCABULARY = (
    RAISED.format("ExceptionType"),
    TIME,
    MEMORY,
    RESOURCE,
    SHAPE,
    NOT_NUMBERS,
    DENIED,
    LOAD,
    DIED,
    REPLY,
    WEAK,
    DESCRIPTION,
    HARNESS,
)

_BUILTIN_EXCEPTIONS = frozenset(
    name for name, obj in vars(builtins).items() if isinstance(obj, type) and issubclass(obj, BaseException)
)
_QUOTA = {
    "memory limit": MEMORY,
    "limit on processes and threads": RESOURCE,
    "/tmp size limit": RESOURCE,
    "/dev/shm size limit": RESOURCE,
    "file size limit": RESOURCE,
}


def exception_name(name: str) -> str:
    """A built-in exception's name as it is; any other is of the method's choosing and is not said."""
    return name if name in _BUILTIN_EXCEPTIONS else OWN_CLASS


def job_failure(line: str, method: str) -> str:
    """The agent's line for the pipeline's line about `method`'s failure (its name in results)."""
    base = re.escape(repr(method.split("[", 1)[0]))
    where = r"on task '[^']*' seed \d+"
    text = " ".join(str(line).split())
    if re.match(rf"method {base} did not finish {where} within its time limit", text):
        return TIME
    found = re.match(rf"method {base} exceeded its (.+?) of [^ ]+( (?:[KMG]i)?B)? {where}: stopped$", text)
    if found and found.group(1) in _QUOTA:
        return _QUOTA[found.group(1)]
    found = re.match(rf"method {base} failed {where}; its own error: (.*)$", text)
    if found:
        rest = found.group(1)
        if rest.startswith("loading the method: "):
            return LOAD
        kind = re.match(r"([A-Za-z_][A-Za-z0-9_]*): ", rest)
        if kind:
            return RAISED.format(exception_name(kind.group(1)))
        return HARNESS
    if re.match(rf"method {base} returned predictions of shape ", text):
        return SHAPE
    if re.match(rf"method {base} returned (predictions that are not|NaN or infinite|predictions outside)", text):
        return NOT_NUMBERS
    if re.match(rf"method {base} declares uses_weak_labels=False but read the weak labels", text):
        return WEAK
    if re.match(rf"method {base}: its sealed process died", text):
        return DIED
    if re.match(rf"method {base} sent a reply the harness refuses {where}: a description of itself that differs", text):
        return DESCRIPTION
    if re.match(rf"method {base} sent a reply the harness refuses", text):
        return REPLY
    if re.match(rf"method {base} .*denied by the sandbox", text):
        return DENIED
    return HARNESS


def probe_failure(line: str) -> str:
    """The agent's line for the probe's refusal (w2sbench/isolation/probe.py, isolation/described.py)."""
    text = " ".join(str(line).split())
    found = re.match(r"importing the method failed: ([A-Za-z_][A-Za-z0-9_]*): ", text + " ")
    if found:
        return PROBE_RAISED.format(exception_name(found.group(1)))
    if text.startswith("importing the method failed"):
        return PROBE_ENDED
    if text.startswith(("the code must define exactly one Method subclass", "the code defines no Method subclass")):
        return PROBE_CLASSES
    if re.match(r"[A-Za-z_][A-Za-z0-9_]* implements no run\(ctx\)", text):
        return PROBE_NO_RUN
    if re.match(r"hyperparameter '[a-z0-9_]+': the name is the method API's", text):
        return PROBE_SHADOW
    return PROBE_DESCRIPTION
