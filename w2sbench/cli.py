"""The `w2sbench` command: eval, sweep, robustness, tasks, settings, methods, plot (and the leaderboard and
serve groups). Every command takes -h; the listings and eval's summary take --json (shapes: docs/cli.md)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from .errors import W2SError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
JSON_VERSION = 1  # of every --json shape (docs/cli.md); a change that drops or renames a key bumps it


# ---- help: whole one-line summaries, options in sections, examples ----------------------------------------------
def first_sentence(text: str | None) -> str:
    """A docstring's first sentence, whole (click's own rule for where a sentence ends, without its cut at
    45 characters: a summary that does not fit the line wraps instead of ending in '...')."""
    words = (text or "").partition("\n\n")[0].split()
    if words and words[0] == "\b":
        words = words[1:]
    for i, word in enumerate(words):
        if word.endswith(".") and (i == len(words) - 1 or not words[i + 1][0].islower()):
            return " ".join(words[: i + 1])
    return " ".join(words)


def whole_summaries(group: click.Group) -> None:
    """Give every command under `group` its first sentence as its summary in the listings, uncut."""
    for command in group.commands.values():
        if not command.short_help:
            command.short_help = first_sentence(command.help)
        if isinstance(command, click.Group):
            whole_summaries(command)


class SectionedCommand(click.Command):
    """A command whose --help lists its options under headings (`sections`: heading -> parameter names, in
    order; the rest under "Other options") and ends with `examples` (command line, what it does)."""

    def __init__(self, *args, sections: dict[str, list[str]] | None = None, examples=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.sections = dict(sections or {})
        self.examples = list(examples)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        records = {p.name: p.get_help_record(ctx) for p in self.get_params(ctx)}
        placed = {name for names in self.sections.values() for name in names}
        groups = [(title, [records[n] for n in names if records.get(n)]) for title, names in self.sections.items()]
        groups.append(("Other options", [r for n, r in records.items() if r and n not in placed]))
        for title, rows in groups:
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        if self.examples:
            with formatter.section("Examples"):
                for line, what in self.examples:
                    formatter.write(f"{'':{formatter.current_indent}}# {what}\n")
                    formatter.write(f"{'':{formatter.current_indent}}{line}\n")


# ---- the console: the run's own lines, and where the libraries' output goes -------------------------------------
class Console:
    """Where the run's own lines go (results on `out`, progress and errors on `err`): the terminal's stdout
    and stderr, also while the libraries' output is sent to a log file (library_output_to)."""

    out: Any = None  # None: sys.stdout at the time of writing
    err: Any = None


CONSOLE = Console()


def echo(message: str = "", err: bool = False) -> None:
    click.echo(message, file=(CONSOLE.err or sys.stderr) if err else (CONSOLE.out or sys.stdout))


def _w2sbench_handler() -> logging.StreamHandler | None:
    return next((h for h in logging.getLogger("w2sbench").handlers if getattr(h, "_w2sbench", False)), None)


@contextlib.contextmanager
def library_output_to(log: Path | None) -> Iterator[Path | None]:
    """While the block runs, whatever the libraries write (vLLM's and Triton's INFO lines, FutureWarnings,
    NUMA notes, the engines' processes and the method processes started meanwhile, which inherit these file
    descriptors) goes to `log`; the run's own lines (the `w2sbench` logger, warnings raised by w2sbench's own
    code, `echo`) still reach the terminal. At the file-descriptor level, because engines print from C++ and
    from child processes that Python's sys.stdout never sees. None: leave everything where it is."""
    if log is None:
        yield None
        return
    log = Path(log)
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        target = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as e:
        logging.getLogger("w2sbench").warning(f"cannot write the library log {log} ({e}); library output stays here")
        yield None
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    out = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8", errors="replace")
    err = os.fdopen(os.dup(saved[2]), "w", buffering=1, encoding="utf-8", errors="replace")
    before = (CONSOLE.out, CONSOLE.err)
    handler = _w2sbench_handler()
    show = warnings.showwarning
    own = str(Path(__file__).resolve().parent)

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if str(filename).startswith(own):  # w2sbench's own warning: the user's to read
            err.write(f"[w2sbench] warning: {message}\n")
        else:
            show(message, category, filename, lineno, file, line)

    said = []

    def say_where(record: logging.LogRecord) -> bool:  # before the run's first line: where the rest goes
        if not said:
            said.append(True)
            err.write(f"[w2sbench] the libraries' own output (vLLM, torch, warnings) goes to {log}\n")
        return True

    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)
    CONSOLE.out, CONSOLE.err = out, err
    if handler is not None:
        handler.setStream(err)
        handler.addFilter(say_where)
    warnings.showwarning = showwarning
    failed = True
    try:
        yield log
        failed = False
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(saved[1], 1)
        os.dup2(saved[2], 2)
        for fd in saved.values():
            os.close(fd)
        CONSOLE.out, CONSOLE.err = before
        if handler is not None:
            handler.setStream(sys.stderr)
            handler.removeFilter(say_where)
        warnings.showwarning = show
        out.close()
        err.close()
        size = log.stat().st_size if log.exists() else 0
        if not size:
            log.unlink(missing_ok=True)  # nothing was said (a bad option, say): no empty file left behind
        elif failed:
            echo(f"[w2sbench] the libraries' own output of this run: {log}", err=True)


def _parse_limit(value: str | None) -> dict[str, int] | None:
    """'200,200,100' -> split sizes train_label, train_unlabel, test."""
    from .engine.spec import parse_limit

    return parse_limit(value, "--limit")


def quiet_engine_bars(verbose: bool) -> None:
    """The engines' own per-batch bars (tqdm, in vLLM and transformers) only with --verbose: the harness says
    the plan and the time left itself (w2sbench/engine/progress.py). Engines started later inherit the setting."""
    if not verbose:
        os.environ.setdefault("TQDM_DISABLE", "1")


def setup_logging(level: int) -> None:
    """Progress and diagnostics go to stderr through the `w2sbench` logger; results go to stdout."""
    logger = logging.getLogger("w2sbench")
    if _w2sbench_handler() is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[w2sbench] %(message)s"))
        handler._w2sbench = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)


def _existing_folders(ctx: click.Context, param: click.Parameter, value: tuple[Path, ...]) -> tuple[Path, ...]:
    """--include-path: each folder must exist (one line naming it, not a usage screen)."""
    for folder in value:
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "no such folder"
            raise W2SError(f"--include-path {folder}: {what}")
    return value


def _dump(doc: Any) -> None:
    echo(json.dumps(doc, indent=1, ensure_ascii=False))


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="w2sbench")
def cli() -> None:
    """w2sbench: score weak-to-strong supervision methods by PGR, with intervals.

    Start with `w2sbench eval -h`; README.md has a one-minute look and docs/ the rest.
    """


def run_options(command: Callable) -> Callable:
    """The options of every command that runs methods (eval, sweep), defined once: where the units run, the
    method sandbox's limits, and how much to say."""
    options = [
        click.option(
            "--executor",
            default=None,
            help="Where the units run: inprocess (this process; each method in its sealed process; the default) or "
            "ray (a Ray cluster: pip install 'w2sbench[ray]'; docs/scale-out.md).",
        ),
        click.option(
            "--ray-address",
            default=None,
            help="Ray cluster for --executor ray, e.g. auto or HOST:6379 (default: $RAY_ADDRESS, else a local one).",
        ),
        click.option(
            "--method-timeout-s",
            "--method-timeout",
            "method_timeout_s",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Seconds one method seed may take before it is stopped (default: the setting's "
            "limits.method_timeout_s). --method-timeout is its older name.",
        ),
        click.option(
            "--method-quota",
            "method_quota",
            default=None,
            help="Limits of each method's sandbox over the setting's, e.g. 'memory=4G,processes=512,tmp=1G,shm=512M,"
            "file=1G' (defaults: memory 8G, processes and threads 4096, /tmp 4G, /dev/shm 2G, file 4G).",
        ),
        click.option(
            "--unsealed",
            is_flag=True,
            help="Run methods without the OS sandbox (where the kernel offers none); results say sealed: false "
            "and the leaderboard refuses them.",
        ),
        click.option("--quiet", "-q", is_flag=True, help="No progress messages (warnings and errors only)."),
        click.option(
            "--verbose",
            "-v",
            is_flag=True,
            help="Diagnostics too (cache keys, engine choices), and the libraries' own output here instead of "
            "in the log file.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


EVAL_SECTIONS = {
    "Common": ["methods", "setting", "tasks", "limit", "method_seeds", "baseline_seeds", "include_path"],
    "Output": ["output", "json_out", "log_samples", "submission", "quiet", "verbose"],
    "Scale-out and hardware": ["executor", "ray_address", "backend", "tensor_parallel_size", "allow_cpu"],
    "Sandbox": ["method_timeout_s", "method_quota", "unsealed"],
    "Scoring and robustness": ["n_boot", "perturb_recipe"],
}
EVAL_EXAMPLES = [
    (
        "w2sbench eval --method vanilla",
        "the default suite on the tiny setting (about 10 minutes cold on 2 AVX-512 cores)",
    ),
    (
        "w2sbench eval --tasks rotten_tomatoes --limit 100,200,300",
        "a one-minute look: one task, a few hundred examples (not comparable with the official numbers)",
    ),
    ("w2sbench eval --method vanilla,my_method.py:MyMethod", "your method beside vanilla, and the paired difference"),
    ("w2sbench eval --method 'logconf[aux_coef=0.1|0.25|0.5]'", "one run per hyperparameter value"),
    ("w2sbench eval --method vanilla --json > summary.json", "the summary as JSON for scripts (docs/cli.md)"),
    ("w2sbench eval --method vanilla,logconf --executor ray --ray-address auto", "on a Ray cluster"),
]


@cli.command("eval", cls=SectionedCommand, sections=EVAL_SECTIONS, examples=EVAL_EXAMPLES)
@click.option(
    "--method",
    "-m",
    "methods",
    default="vanilla",
    show_default=True,
    help="Method name(s), comma-separated; a registered name, an installed plug-in, or path/file.py:Class; "
    "hyperparameters in brackets, 'logconf[aux_coef=0.25,warmup_frac=0.1]', and a sweep with |, "
    "'logconf[aux_coef=0.1|0.25|0.5]' (one method per value).",
)
@click.option("--setting", "-s", default="tiny", show_default=True, help="Setting name or path to a setting YAML.")
@click.option(
    "--perturb-recipe",
    default=None,
    metavar="KNOB=FACTOR",
    help="Scale the strong recipe within the setting's declared range (lr=0.5, epochs=2): for `w2sbench "
    "robustness --perturbed`.",
)
@click.option(
    "--tasks",
    "-t",
    default="default",
    show_default=True,
    help="Task names, suites (v1, v2; default: the default suite, v2), tags, comma-separated, or task YAML paths.",
)
@click.option(
    "--backend",
    type=click.Choice(["auto", "vllm", "hf"]),
    default="auto",
    show_default=True,
    help="Inference engine for features and labels: vllm where installed and supported, else hf.",
)
@click.option(
    "--tensor-parallel-size",
    "tensor_parallel_size",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="GPUs per vLLM engine, for models that do not fit one GPU (vllm backend only).",
)
@click.option(
    "--baseline-seeds",
    type=click.IntRange(min=1),
    default=None,
    help="Seeds for weak and ceiling (default: the setting's).",
)
@click.option(
    "--method-seeds",
    "--seeds",
    "method_seeds",
    type=click.IntRange(min=1),
    default=None,
    help="Seeds per method (default: the setting's). --seeds is its older name.",
)
@click.option(
    "--limit",
    default=None,
    metavar="L,U,T",
    help="Split sizes train_label,train_unlabel,test instead of the tasks' (quick looks; not comparable).",
)
@click.option("--n-boot", type=int, default=2000, show_default=True, help="Bootstrap resamples for intervals.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Results JSON path (default: results/<setting>_<methods>_<time>.json); the libraries' log goes "
    "beside it (<stem>.log).",
)
@click.option(
    "--json",
    "json_out",
    is_flag=True,
    help="Print the summary as one JSON document on stdout instead of the table (shape: docs/cli.md).",
)
@click.option(
    "--log-samples",
    is_flag=True,
    help="Also write one JSON line per test example, per task and method (id, text, label, weak / w2s / ceiling "
    "p(label=1) per seed) under <results stem>.samples/<task>/<method>.jsonl; the results JSON lists the files.",
)
@click.option(
    "--include-path",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    callback=_existing_folders,
    help="Extra folder of task YAMLs (repeatable).",
)
@click.option(
    "--submission",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a leaderboard submission for the (single) method, e.g. leaderboard/submissions/NAME.json.",
)
@click.option(
    "--allow-cpu",
    is_flag=True,
    help="Run a setting that needs a GPU (device: cuda, bf16 or 8-bit AdamW) on the CPU where there is none, "
    "instead of refusing: float32, hours, cached apart from GPU runs; the results say so.",
)
@run_options
def eval_cmd(
    methods,
    setting,
    perturb_recipe,
    tasks,
    backend,
    tensor_parallel_size,
    baseline_seeds,
    method_seeds,
    method_timeout_s,
    method_quota,
    executor,
    ray_address,
    unsealed,
    limit,
    n_boot,
    output,
    json_out,
    log_samples,
    include_path,
    quiet,
    verbose,
    submission,
    allow_cpu,
):
    """Evaluate methods: weak, ceiling and w2s accuracy and PGR with 95% intervals.

    The shared stages (features, weak model, ceiling) are cached, so a second method costs only its own
    stage; an interrupted run resumes when run again. The libraries' own output (vLLM, Triton, warnings)
    goes to a log file beside the results, whose path is printed.
    """
    if quiet and verbose:
        raise W2SError("--quiet and --verbose: choose one")
    setup_logging(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    quiet_engine_bars(verbose)
    if not methods.strip():
        raise W2SError("--method: give at least one method name")
    sizes = _parse_limit(limit)
    log = None if verbose else (output.with_suffix(".log") if output else _pending_log(setting))
    with library_output_to(log) as log:
        from .api import default_output, evaluate

        result = evaluate(
            methods,
            tasks,
            setting,
            method_seeds=method_seeds,
            baseline_seeds=baseline_seeds,
            limit=sizes,
            executor=executor,
            ray_address=ray_address,
            backend=backend,
            tensor_parallel_size=tensor_parallel_size,
            n_boot=n_boot,
            unsealed=unsealed,
            method_timeout_s=method_timeout_s,
            method_quota=method_quota,
            include_path=list(include_path),
            perturb_recipe=perturb_recipe,
            allow_cpu=allow_cpu,
        )
        output = result.save(output or default_output(result), log_samples=log_samples)
    if log is not None and not log.exists():
        log = None  # the libraries said nothing
    elif log is not None and log != output.with_suffix(".log"):  # named before the results' name was known
        log = Path(log.rename(output.with_suffix(".log")))
    caveats = not_comparable(limit, method_seeds, baseline_seeds, perturb_recipe)
    written = None
    if submission is not None:
        from .leaderboard.submission import make_submission, write_submission

        if len(result.methods) != 1:
            raise W2SError("--submission: a submission holds one method; run eval with a single --method")
        (name,) = result.methods
        method_cls = result.record.tasks[0].methods[name].method
        write_submission(make_submission([(str(output), result.to_dict())], name, method_cls), submission)
        written = submission
    if json_out:
        _dump(eval_summary(result.to_dict(), output, log, written, caveats))
    else:
        echo(result.table())
        if result.comparison is None and len(result.methods) > 1:
            echo("(add vanilla to --method for each method's difference to vanilla with its interval)")
        if caveats:
            echo(f"not comparable with the official numbers: {'; '.join(caveats)}")
        echo(f"results: {output}")
        if result.samples:
            echo(f"samples: {output.parent / result.samples['dir']} ({len(result.samples['files'])} files)")
        if log is not None:
            echo(f"log: {log} (the libraries' own output)")
        if written is not None:
            echo(f"submission: {written} (fill in any '<fill in' fields; then w2sbench leaderboard validate {written})")
    if result.failed_methods:  # the results hold the others; the failures are the last lines, and the exit is 1
        for line in result.failed_methods.values():
            echo(f"error: {line}", err=True)
        raise SystemExit(1)


def _pending_log(setting: str) -> Path:
    """The log's name until the results' own is known (then it is renamed to <results stem>.log)."""
    stem = re.sub(r"[^\w.=,-]+", "_", Path(setting).stem)
    return Path("results") / f"{stem}_{datetime.now().strftime('%Y%m%d-%H%M%S')}_{os.getpid()}.log"


def not_comparable(limit, method_seeds, baseline_seeds, perturb_recipe) -> list[str]:
    """Why a run's numbers cannot be set beside the leaderboard's (empty: nothing this command changed)."""
    out = []
    if limit:
        out.append(f"--limit {limit} (smaller splits than the tasks')")
    if method_seeds or baseline_seeds:
        out.append("other seed counts than the setting's")
    if perturb_recipe:
        out.append(f"the strong recipe perturbed ({perturb_recipe})")
    return out


def eval_summary(doc: dict, results: Path, log: Path | None, submission: Path | None, caveats: list[str]) -> dict:
    """`w2sbench eval --json`: a run's headline numbers from its results JSON (`doc`), in a shape that stays
    put (docs/cli.md; a change that drops or renames a key bumps `version`). Accuracies and PGR are
    fractions; every interval is [low, high] at 95%; a PGR that is undefined is null with the reason."""
    transfer = (doc.get("transfer") or {}).get("methods") or {}
    heldout = set((doc.get("transfer") or {}).get("heldout") or [])
    comparison = (doc.get("comparison") or {}).get("tasks") or {}
    methods = {}
    for name, s in doc["summary"].items():
        tr = transfer.get(name)
        methods[name] = {
            "pooled_pgr": s.get("pooled_pgr"),
            "pooled_pgr_ci": s.get("pooled_pgr_ci"),
            "mean_pgr": s.get("mean_pgr"),
            "mean_pgr_ci": s.get("mean_pgr_ci"),
            "mean_w2s_accuracy": s.get("mean_w2s_accuracy"),
            "tasks_defined": s.get("tasks_defined"),
            "flagged_tasks": s.get("flagged_tasks", []),
            "teacher_free": doc["methods"].get(name, {}).get("teacher_free"),
            "development": None if not tr else _part(tr.get("development")),
            "heldout": None if not tr else _part(tr.get("heldout")),
        }
    tasks = {}
    for name, t in doc["tasks"].items():
        per = {}
        for m, r in t["methods"].items():
            d = (comparison.get(name) or {}).get(m)
            per[m] = {
                "w2s_acc": r["pgr"]["w2s_acc"],
                "pgr": r["pgr"]["pgr"],
                "pgr_ci": r["pgr"]["pgr_ci"],
                "defined": r["pgr"]["defined"],
                "undefined_reason": r["pgr"]["undefined_reason"],
                "flags": sorted({f.get("flag") for f in r.get("flags", []) if f.get("flag")}),
                "vs_vanilla": None if not d else {"d_pgr": d.get("d_pgr"), "d_pgr_ci": d.get("d_pgr_ci")},
            }
        tasks[name] = {
            "split": "heldout" if name in heldout else "development",
            "n": t["n"],
            "weak_acc": t["weak"]["accuracy"],
            "ceiling_acc": t["ceiling"]["accuracy"],
            "methods": per,
        }
    return {
        "kind": "w2sbench.eval.summary",
        "version": JSON_VERSION,
        "results": str(results),
        "log": None if log is None else str(log),
        "submission": None if submission is None else str(submission),
        "samples": (doc.get("samples") or {}).get("dir"),
        "setting": {"name": doc["setting"]["name"], "hash": doc["setting"]["hash"]},
        "seeds": doc["seeds"],
        "comparable": not caveats,
        "not_comparable_because": caveats,
        "methods": methods,
        "tasks": tasks,
        "failed_methods": doc.get("failed_methods") or {},
    }


def _part(p: dict | None) -> dict | None:
    if not p:
        return None
    return {k: p.get(k) for k in ("pooled_pgr", "pooled_pgr_ci", "mean_pgr", "mean_pgr_ci")}


@cli.command(
    "sweep",
    cls=SectionedCommand,
    sections={
        "Output": ["output", "quiet", "verbose"],
        "Scale-out": ["executor", "ray_address"],
        "Sandbox": ["method_timeout_s", "method_quota", "unsealed"],
    },
    examples=[("w2sbench sweep sweep.yaml --executor ray --ray-address auto", "a grid on a Ray cluster")],
)
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the results (default: the file's `output`, else results/sweep_<file name>).",
)
@run_options
def sweep_cmd(spec, output, executor, ray_address, method_timeout_s, method_quota, unsealed, quiet, verbose):
    """Run a sweep file: methods x hyperparameters x seeds x tasks.

    One results JSON per configuration and a summary ranked by mean PGR. Cached: run it again to resume.
    The file's format: docs/scale-out.md.
    """
    if quiet and verbose:
        raise W2SError("--quiet and --verbose: choose one")
    setup_logging(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    quiet_engine_bars(verbose)
    from .sweep import load_sweep, run_sweep, summary_table

    sweep = load_sweep(spec)
    folder = Path(output or sweep.output)
    log = None if verbose else folder / "libraries.log"
    with library_output_to(log) as log:
        result = run_sweep(
            sweep,
            output,
            executor=executor,
            ray_address=ray_address,
            method_timeout_s=method_timeout_s,
            method_quota=method_quota,
            unsealed=unsealed or None,
        )
    echo(summary_table(result))
    echo(f"results: {folder}/ (one JSON per configuration, summary.md, summary.json)")
    if log is not None and log.exists():
        echo(f"log: {log} (the libraries' own output)")


def perturbed_files(spec: str) -> tuple[str, list[Path]]:
    """LABEL=FILE[,FILE...] -> (label, files). The label is --perturb-recipe's own text (`lr=0.5`), and a
    file name may hold '=' too: the split is at the first '=' after which every name is an existing file."""
    for i, char in enumerate(spec):
        if char != "=" or i == 0:
            continue
        paths = [Path(f) for f in spec[i + 1 :].split(",")]
        if all(f.name and f.is_file() for f in paths):
            return spec[:i], paths
    if "=" not in spec.strip("="):
        raise W2SError(f"--perturbed {spec!r}: give LABEL=FILE[,FILE...]")
    missing = [f for f in spec.rpartition("=")[2].split(",") if not Path(f).is_file()]
    raise W2SError(f"--perturbed {spec!r}: no such results file: {', '.join(missing) or spec}")


@cli.command("robustness")
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--resamples", type=click.IntRange(min=10), default=500, show_default=True, help="Draws per resampling.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the draws.")
@click.option(
    "--perturbed",
    multiple=True,
    metavar="LABEL=FILE[,FILE...]",
    help="Results of the same methods under a change that needed new runs (eval --perturb-recipe lr=0.5, "
    "another model pair); repeat per change.",
)
@click.option(
    "--ranks",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A leaderboard.json: 'stays' means staying in the method's rank group there (default: in its own position).",
)
@click.option(
    "--suite",
    "suite_name",
    default=None,
    metavar="NAME",
    help="The suite whose `families:` say which family each task is from, for leaving one family out "
    "(default: the suite whose tasks are exactly the results'; none: no such change).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the report as JSON.",
)
def robustness_cmd(results, resamples, seed, perturbed, ranks, suite_name, output):
    """How stable the methods' order by pooled PGR is.

    Under one task left out, one family of tasks left out (where the suite names families), the tasks
    resampled, or the seeds resampled (and each --perturbed run): Kendall's
    tau-b with the reference order, and each method's chance to keep its position. RESULTS: results JSONs of
    one setting (their methods together). docs/robustness.md explains the figures.
    """
    from .reports.robustness import leaderboard_ranks, robustness, suite_from_results, table
    from .schema_io import read_json
    from .tasks import families_of, load_suite

    others = {}
    for spec in perturbed:
        label, paths = perturbed_files(spec)
        others[label] = suite_from_results([(str(p), read_json(p)) for p in paths])
    docs = [(str(p), read_json(p)) for p in results]
    suite = suite_from_results(docs)
    if suite_name is None:
        suite.families = families_of(suite.tasks)
    else:
        named = load_suite(suite_name)
        if sorted(named.tasks) != suite.tasks:
            raise W2SError(f"--suite {suite_name}: its tasks {sorted(named.tasks)} are not the results' {suite.tasks}")
        suite.families = named.family_of()
    groups = None if ranks is None else leaderboard_ranks(read_json(ranks), str(ranks), docs, sorted(suite.methods))
    report = robustness(suite, groups, n_resamples=resamples, seed=seed, others=others)
    echo(table(report))
    if output is not None:
        output.write_text(json.dumps(report, indent=1) + "\n")
        echo(f"report: {output}")


# ---- the listings -------------------------------------------------------------------------------------------
SPLITS = ("train_label", "train_unlabel", "test")


def _source_text(config: dict, path: Path) -> tuple[str, dict[str, str | None]]:
    """Where a task's rows come from, as `tasks` shows it (environment variables expanded, or named as unset),
    and the variables it names -> their values (None: unset)."""
    src = config["source"]
    where = src.get("package") or (src.get("requires") if src["type"] == "wheel" else None) or src.get("path") or ""
    if isinstance(where, dict):  # a local source with one file per part
        where = ", ".join(f"{k}={v}" for k, v in where.items())
    env: dict[str, str | None] = {}

    def expand(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        env[name] = os.environ.get(name)
        return env[name] if env[name] is not None else f"<{name} unset>"

    shown = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", expand, where)
    return f"{src['type']}:{shown}", env


def _task_sizes(task, resolve: bool) -> tuple[dict[str, int], dict[str, bool], str | None]:
    """(sizes, exact per split, why not resolved). A split cut from a pool it shares with another split has
    exactly the YAML's size (else the task does not load); a split read from a part of its own (an AAR file,
    a hub validation split used as test) takes that part whole, capped at the YAML's size, so its size is
    known only by reading it: done where the rows are on this machine (local and AAR folders; never the hub)."""
    from .tasks.sources import split_parts

    declared = {s: int(task.config["splits"][s]) for s in SPLITS}
    parts = split_parts(task.config)
    if parts is None:
        return declared, dict.fromkeys(SPLITS, True), None
    own = {s: sum(p == parts[s] for p in parts.values()) == 1 for s in SPLITS}
    exact = {s: not own[s] for s in SPLITS}
    if all(exact.values()):
        return declared, exact, None
    if task.config["source"]["type"] == "hub":
        return declared, exact, "hub data"
    if not resolve:
        return declared, exact, "--no-read"
    named = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", str(task.config["source"].get("path")))
    unset = sorted({n for n in named if n not in os.environ})
    if unset:
        return declared, exact, f"{', '.join(unset)} unset"
    try:
        splits = task.load_splits()
    except W2SError as e:
        return declared, exact, f"unreadable: {e}"
    return {s: len(getattr(splits, s)) for s in SPLITS}, dict.fromkeys(SPLITS, True), None


def task_listing(include_path: list[Path], tag: str | None, resolve: bool) -> list[dict]:
    """`w2sbench tasks` as data: one entry per task (filtered by tag), sizes as the task resolves them."""
    from .tasks import list_tasks, load_task

    rows = []
    for name, path in sorted(list_tasks(include_path).items()):
        task = load_task(str(path))
        if tag and tag not in task.tags:
            continue
        source, env = _source_text(task.config, path)
        sizes, exact, why = _task_sizes(task, resolve)
        rows.append(
            {
                "name": name,
                "version": task.version,
                "description": task.description,
                "tags": list(task.tags),
                "source": source,
                "env": env,
                "sizes": sizes,
                "exact": exact,
                "sizes_note": why,
                "split_seed": int(task.config["splits"]["seed"]),
                "file": str(path),
            }
        )
    return rows


def _short(note: str) -> str:
    return "files missing or unreadable: --json says which" if note.startswith("unreadable: ") else note


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


@cli.command("tasks")
@click.option(
    "--include-path",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    callback=_existing_folders,
    help="Extra folder of task YAMLs (repeatable).",
)
@click.option("--tag", default=None, help="Only the tasks with this tag (default, default-heldout, aar, burns5, ...).")
@click.option(
    "--no-read",
    is_flag=True,
    help="Do not read whole-file splits to size them (their caps are shown as <=N).",
)
@click.option("--json", "json_out", is_flag=True, help="One JSON list on stdout (shape: docs/cli.md).")
def tasks_cmd(include_path, tag, no_read, json_out):
    """List the tasks: name, source, split sizes, tags.

    Sizes are train_label/train_unlabel/test as the task resolves them. A split read whole from a file of its
    own (AAR folders) is sized by reading it when it is on this machine (about 2 s); else, and for hub data,
    it shows as <=N, its cap.
    """
    rows = task_listing(list(include_path), tag, resolve=not no_read)
    if json_out:
        _dump(rows)
        return
    if not rows:
        echo(f"no task has the tag {tag!r}" if tag else "no tasks")
        return
    body = []
    for r in rows:
        sizes = "/".join(f"{'' if r['exact'][s] else '<='}{r['sizes'][s]}" for s in SPLITS)
        body.append([r["name"], r["source"], sizes, ", ".join(r["tags"])])
    echo(_table(["task", "source", "label/unlabel/test", "tags"], body))
    notes = sorted({_short(r["sizes_note"]) for r in rows if r["sizes_note"]})
    if notes:
        echo(f"<=N: a split read whole from its own file, capped at N, not read here ({'; '.join(notes)})")
    from .tasks import DEFAULT_SUITE, list_suites, load_suite

    for name in [] if tag else list_suites(list(include_path)):  # the suites, under the whole list
        suite = load_suite(name, list(include_path))
        default = " (default)" if name == DEFAULT_SUITE else ""
        echo(f"suite {name}{default}: development {', '.join(suite.development)}; held out {', '.join(suite.heldout)}")


def setting_listing() -> list[dict]:
    from .settings import builtin_settings, load_setting

    out = []
    for name in sorted(builtin_settings()):
        s = load_setting(name)
        t = s.train
        out.append(
            {
                "name": name,
                "version": s.version,
                "hash": s.hash,
                "description": s.description,
                "weak": s.weak.model,
                "strong": s.strong.model,
                "regime": s.regime,
                "recipe": {
                    "epochs": t["epochs"],
                    "batch_size": t["batch_size"],
                    "lr": t["lr"],
                    "weak_lr": t.get("weak_lr"),
                    "lora": t.get("lora"),
                    "head": t.get("head", "linear") if s.regime != "frozen" else None,
                    "dtype": t.get("dtype", "float32"),
                },
                "seeds": {"baseline": s.baseline_seeds, "method": s.method_seeds},
                "recipe_perturbations": {k: list(v) for k, v in s.recipe_perturbations.items()},
            }
        )
    return out


@cli.command("settings")
@click.option("--json", "json_out", is_flag=True, help="One JSON list on stdout (shape: docs/cli.md).")
def settings_cmd(json_out):
    """List the settings: weak and strong model, regime and the fixed recipe."""
    rows = setting_listing()
    if json_out:
        _dump(rows)
        return
    for s in rows:
        r = s["recipe"]
        recipe = f"{r['epochs']} epochs, batch {r['batch_size']}, lr {r['lr']:g}"
        if r["weak_lr"] is not None:
            recipe += f" (weak {r['weak_lr']:g})"
        if r["lora"]:
            kind = "rsLoRA" if r["lora"].get("rslora") else "LoRA"
            recipe += f", {kind} r={r['lora']['r']} alpha={r['lora']['alpha']:g}"
        if r["head"]:
            recipe += f", {r['head']} readout"
        recipe += f", {r['dtype']}; seeds {s['seeds']['baseline']} baseline / {s['seeds']['method']} method"
        echo(f"{s['name']:14s} v{s['version']}  {s['weak']} -> {s['strong']}  [{s['regime']}]  {recipe}")
        echo(f"{'':17s}{s['description']}")


def method_listing() -> list[dict]:
    from .methods import list_methods, load_method

    out = []
    for name, origin in sorted(list_methods().items()):
        cls = load_method(name)
        out.append(
            {
                "name": name,
                "origin": origin,
                "description": cls.description,
                "teacher_free": not cls.uses_weak_labels,
                "hyperparameters": [
                    {"name": h.name, "type": h.type_name, "default": h.default} for h in cls.hyperparameters.values()
                ],
            }
        )
    return out


@cli.command("methods")
@click.option("--json", "json_out", is_flag=True, help="One JSON list on stdout (shape: docs/cli.md).")
def methods_cmd(json_out):
    """List the methods found: built-ins and installed plug-ins."""
    from .isolation.resolve import load_method
    from .methods import list_methods

    if json_out:
        _dump(method_listing())
        return
    for name, origin in sorted(list_methods().items()):
        cls = load_method(name)  # a plug-in is described by the sandboxed probe, never imported here
        tag = " [teacher-free]" if not cls.uses_weak_labels else ""
        echo(f"{name:16s} {origin:12s} {cls.description}{tag}")
        if cls.hyperparameters:
            echo(f"{'':17s}{', '.join(h.describe() for h in cls.hyperparameters.values())}")


@cli.command("plot")
@click.argument("results", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the figures (default: <results stem>.plots/ beside the results JSON).",
)
def plot_cmd(results, output):
    """Draw a results JSON's figures (PNG and SVG, with their values as JSON).

    PGR per task with intervals, weak / w2s / ceiling accuracy per task, and development vs held-out PGR when
    the results carry a held-out split. Needs matplotlib (pip install -e '.[plot]').
    """
    from .reports.plot import default_dir, plot_results

    made = plot_results(results, output or default_dir(results))
    for path in made.files:
        echo(str(path))
    for note in made.notes:
        echo(note)


from .leaderboard.cli import leaderboard as _lb  # noqa: E402  (registered after the core commands)

cli.add_command(_lb)

from .serve.cli import serve as _serve  # noqa: E402

cli.add_command(_serve)
whole_summaries(cli)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit status 2; SIGINT, SIGTERM and SIGHUP stop
    the run with one line and 128 + the signal's number; every process the run started ends with it
    (w2sbench/isolation/processes.py)."""
    from .isolation.processes import Stopped, end_children, guard, install_signal_handlers

    process = argv is None  # run as the program (not called from Python): its end is the run's end
    if process:
        install_signal_handlers()
        guard()
    try:
        cli.main(args=argv, prog_name="w2sbench", standalone_mode=False)
    except Stopped as e:
        echo(f"w2sbench: stopped by {e}; cached stages are kept, run the same command to resume", err=True)
        sys.exit(128 + e.signum)
    except W2SError as e:
        echo(f"w2sbench: error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        echo("w2sbench: interrupted; cached stages are kept, run the same command to resume", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    finally:
        if process:
            end_children()  # engines and method processes that did not close: nothing the run started outlives it


if __name__ == "__main__":
    main()
