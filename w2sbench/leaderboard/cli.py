"""`w2sbench leaderboard ...`: validate submissions, build leaderboard.json and the site, (re)generate the
official baselines from the reference run, and make a submission from an existing results JSON."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import code_root_of as code_root
from . import default_dir

_PATH = click.Path(path_type=Path)


def _report(errors: list) -> None:
    for e in errors:
        click.echo(f"w2sbench: error: {e}", err=True)


@click.group("leaderboard")
def leaderboard() -> None:
    """The leaderboard: submissions, leaderboard.json and the static site.

    A submission is checked (validate), rerun from its code (reproduce), and ranked (build); `open` shows the
    site from leaderboard.json without rebuilding it.
    """


@leaderboard.command("validate")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--baselines", type=_PATH, default=None, help="Official baselines (default: leaderboard/baselines.json).")
@click.option(
    "--submissions-dir",
    type=_PATH,
    default=None,
    help="Folder of accepted submissions, for the unique-name check (default: leaderboard/submissions).",
)
def validate_cmd(files, baselines, submissions_dir):
    """Check submissions against the schema and the official baselines.

    FILES: submission JSONs (default: every file in leaderboard/submissions). One line per problem; exit
    status 1 if any.
    """
    from . import baselines as bl
    from .validate import submission_files, validate_files

    root = default_dir()
    submissions_dir = submissions_dir or root / "submissions"
    official = bl.load(baselines or root / "baselines.json")
    files = list(files) or submission_files(submissions_dir)
    if not files:
        click.echo(f"no submissions in {submissions_dir}")
        return
    valid, errors = validate_files(files, official, submissions_dir, code_root(submissions_dir))
    for path, doc in valid:
        click.echo(f"ok: {path} ({doc['method']['name']})")
    if errors:
        _report(errors)
        click.echo(f"{len(errors)} problem(s) in {len(files) - len(valid)} of {len(files)} submission(s)", err=True)
        sys.exit(1)


@leaderboard.command("build")
@click.option("--submissions-dir", type=_PATH, default=None, help="Default: leaderboard/submissions.")
@click.option("--baselines", type=_PATH, default=None, help="Default: leaderboard/baselines.json.")
@click.option("--output", "-o", type=_PATH, default=None, help="Default: leaderboard/leaderboard.json.")
@click.option("--site", "site_dir", type=_PATH, default=None, help="Default: leaderboard/site.")
@click.option(
    "--recipes-dir",
    type=_PATH,
    default=None,
    help="Reference runs under perturbed recipes, one folder per setting (default: recipes/ beside the submissions).",
)
@click.option(
    "--records",
    "records_dir",
    type=_PATH,
    default=None,
    help="Records of reproduction, one per submission (default: records/ beside the submissions); a submission "
    "without an ok record for its current contents is listed as pending, never scored.",
)
@click.option("--strict", is_flag=True, help="Fail (exit 1) if any submission is invalid instead of leaving it out.")
def build_cmd(submissions_dir, baselines, output, site_dir, recipes_dir, records_dir, strict):
    """Rank every reproduced submission into leaderboard.json and render the site.

    Every figure of an entry comes from its record of reproduction, never from the submitted file.
    """
    from ..schema_io import write_json
    from . import baselines as bl
    from .build import build_leaderboard
    from .site import render_site
    from .validate import submission_files, validate_files

    root = default_dir()
    submissions_dir = submissions_dir or root / "submissions"
    baselines = baselines or root / "baselines.json"
    official = bl.load(baselines)
    valid, errors = validate_files(
        submission_files(submissions_dir), official, submissions_dir, code_root(submissions_dir)
    )
    if errors:
        _report(errors)
        if strict:
            sys.exit(1)
    first: dict[str, str] = {}
    for e in errors:  # one line per left-out file: its first problem
        first.setdefault(getattr(e, "path", "?"), str(e))
    skipped = [first[k] for k in sorted(first)]
    recipes_dir = recipes_dir or submissions_dir.parent / "recipes"
    records_dir = records_dir or submissions_dir.parent / "records"
    doc = build_leaderboard(
        valid, official, baselines, skipped, root=root.parent, recipes_dir=recipes_dir, records_dir=records_dir
    )
    output = write_json(doc, output or root / "leaderboard.json")
    from .site import recipe_scores

    pages = render_site(doc, site_dir or root / "site", recipe_scores(recipes_dir, doc))
    pending = sorted({p["submission"] for st in doc["settings"].values() for p in st["pending"]})
    for line in pending:
        click.echo(f"pending (not reproduced for its current contents): {line}", err=True)
    click.echo(
        f"leaderboard: {output} ({len(valid)} submission(s), {len(pending)} pending, {len(skipped)} skipped); "
        f"site: {pages[0]} (+{len(pages) - 1} page(s): how to submit, one per method)"
    )


def _records_of(files: list[Path], records_dir: Path) -> list[tuple[Path, dict, dict | None]]:
    from ..schema_io import read_json
    from .records import find_record

    return [(p, read_json(p), find_record(records_dir, p)[0]) for p in files]


@leaderboard.command("reproduce")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--missing",
    is_flag=True,
    help="Every submission in the submissions folder without a record for its current contents under this harness.",
)
@click.option(
    "--changed-since",
    "base",
    default=None,
    metavar="REF",
    help="Every submission added, changed or renamed since git REF (git diff -z, names never pass through a shell).",
)
@click.option("--submissions-dir", type=_PATH, default=None, help="Default: leaderboard/submissions.")
@click.option(
    "--records",
    "records_dir",
    type=_PATH,
    default=None,
    help="Where the records of reproduction are written, one per submission (default: leaderboard/records).",
)
@click.option(
    "--cache",
    "cache_root",
    type=_PATH,
    default=None,
    help="Artifact store for the shared stages (default: the w2sbench cache); the method stage is always rerun.",
)
def reproduce_cmd(files, missing, base, submissions_dir, records_dir, cache_root):
    """Rerun each submission's method from its code, in the sandbox.

    On the official settings, the code's hash checked before anything imports it; the outcome is written as
    the submission's record (RECORDS/<stem>.json). Exit status 1 if any does not reproduce.
    """
    from ..errors import W2SError
    from ..methods.identity import harness_source
    from .changes import changed_submissions
    from .records import needs_reproduction, write_record
    from .reproduce import reproduce_submission, still_the_same
    from .validate import submission_files

    submissions_dir = submissions_dir or default_dir() / "submissions"
    records_dir = records_dir or default_dir() / "records"
    files = list(files)
    if base is not None:
        files += [Path(p) for p in changed_submissions(base, submissions_dir)]
    if missing:
        harness = harness_source()["sha256"]
        for path, doc, record in _records_of(submission_files(submissions_dir), records_dir):
            if needs_reproduction(doc, record, harness):
                files.append(path)
    if not files:
        click.echo("nothing to reproduce")
        return
    failed = 0
    for path in files:
        try:
            record = reproduce_submission(path, cache_root, root=code_root(submissions_dir))
            still_the_same(path, record)
        except W2SError as e:  # one line, and the other submissions are still reproduced
            failed += 1
            click.echo(f"w2sbench: error: {e}", err=True)
            continue
        written = write_record(record, records_dir, path)
        if record["ok"]:
            worst = max(
                (abs(t["difference"]) for s in record["settings"].values() for t in s["tasks"].values()), default=0.0
            )
            click.echo(f"reproduced: {path} -> {written} (largest w2s accuracy difference {100 * worst:.2f} points)")
        else:
            failed += 1
            for line in record["failures"]:
                click.echo(f"w2sbench: error: {path}: did not reproduce: {line}", err=True)
    if failed:
        sys.exit(1)


@leaderboard.command("changed")
@click.option("--base", required=True, metavar="REF", help="The git ref the pull request is compared with.")
@click.option("--submissions-dir", type=_PATH, default=None, help="Default: leaderboard/submissions.")
@click.option("-z", "nul", is_flag=True, help="Print the changed submissions NUL-terminated (for xargs -0).")
def changed_cmd(base, submissions_dir, nul):
    """The submissions a pull request adds, changes or renames since REF, one per line (escaped) or
    NUL-terminated; exit status 1, with one line per path, if it changes the maintainers' trusted data
    (leaderboard/records/, baselines.json, recipes/, leaderboard.json)."""
    from .changes import changed_submissions, trusted_changes

    submissions_dir = submissions_dir or default_dir() / "submissions"
    refused = trusted_changes(base, submissions_dir)
    for path in refused:
        click.echo(
            f"w2sbench: error: {path!r}: trusted data (records of reproduction, baselines, recipe runs, the built "
            "leaderboard) is written by the harness on main, never by a pull request",
            err=True,
        )
    for path in changed_submissions(base, submissions_dir):
        if nul:
            click.echo(path + "\0", nl=False)
        else:
            click.echo(ascii(path)[1:-1])
    if refused:
        sys.exit(1)


@leaderboard.command("outdated")
@click.option(
    "--submissions-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of submissions (default: leaderboard/submissions).",
)
@click.option("--records", "records_dir", type=_PATH, default=None, help="Default: records/ beside the submissions.")
def outdated_cmd(submissions_dir, records_dir):
    """Name the reference submissions that no longer match this code.

    Their method's code or the harness changed, or they have no ok record of reproduction: one name per
    line, why on stderr (what make_seed.sh reruns).
    """
    from .reproduce import outdated
    from .validate import submission_files

    submissions_dir = submissions_dir or default_dir() / "submissions"
    records_dir = records_dir or submissions_dir.parent / "records"
    for path, doc, record in _records_of(submission_files(submissions_dir), records_dir):
        why = outdated(doc, record)
        if why:
            click.echo(doc["method"]["name"])
            click.echo(f"{path}: {why}", err=True)


@leaderboard.command("baselines")
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--output", "-o", type=_PATH, default=None, help="Default: leaderboard/baselines.json (updated in place)."
)
@click.option(
    "--allow-nonstandard-sizes", is_flag=True, help="Accept --limit runs (tests and demos only: not official)."
)
def baselines_cmd(results, output, allow_nonstandard_sizes):
    """Make the official weak and ceiling baselines from reference runs.

    RESULTS: results JSONs of the reference run; the entries of each one's setting hash are replaced, the
    others kept.
    """
    from ..schema_io import read_json, validate
    from . import baselines as bl

    output = output or default_dir() / "baselines.json"
    current = bl.empty()
    if output.exists():
        if read_json(output).get("schema_version") != bl.SCHEMA_VERSION:  # an older format: rebuilt from these runs
            click.echo(
                f"baselines: {output} has an older schema_version; replacing it with these runs' baselines", err=True
            )
        else:
            current = bl.load(output)
    docs = []
    for path in results:
        doc = read_json(path)
        validate(doc, "results", str(path))
        docs.append((str(path), doc))
    bl.save(bl.update(current, docs, allow_nonstandard_sizes), output)
    click.echo(f"baselines: {output} ({', '.join(d['setting']['name'] for _, d in docs)})")


@leaderboard.command("submission")
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--method", "-m", required=True, help="The method (a key of the results' 'methods').")
@click.option(
    "--output",
    "-o",
    type=_PATH,
    required=True,
    help="Submission file to write, e.g. leaderboard/submissions/NAME.json.",
)
@click.option("--author", "authors", multiple=True, help="Author (repeatable).")
@click.option("--code", default=None, help="URL of the method's code.")
@click.option("--paper", default=None, help="URL of the paper.")
@click.option("--license", "license_", default=None, help="Licence of the code (SPDX id).")
@click.option("--description", default=None)
def submission_cmd(results, method, output, authors, code, paper, license_, description):
    """Make a submission for a method from results JSONs.

    RESULTS: results JSONs already written by `w2sbench eval` (one per official setting).
    """
    from ..schema_io import read_json, validate
    from .submission import make_submission, method_class, write_submission

    docs = []
    for path in results:
        doc = read_json(path)
        validate(doc, "results", str(path))
        docs.append((str(path), doc))
    overrides = {
        "authors": list(authors) or None,
        "code": code,
        "paper": paper,
        "license": license_,
        "description": description,
    }
    sub = make_submission(docs, method, method_class(method), overrides)
    write_submission(sub, output)
    click.echo(f"submission: {output}; check it with `w2sbench leaderboard validate {output}`")


def _render(source: Path, site_dir: Path, recipes_dir: Path | None) -> list[Path]:
    from ..schema_io import read_json
    from .site import recipe_scores, render_site

    if not source.is_file():
        from ..errors import W2SError

        raise W2SError(f"{source}: no such file (build it: w2sbench leaderboard build)")
    doc = read_json(source)
    recipes_dir = recipes_dir or source.parent / "recipes"
    return render_site(doc, site_dir, recipe_scores(recipes_dir, doc))


@leaderboard.command("render")
@click.option("--input", "-i", "source", type=_PATH, default=None, help="Default: leaderboard/leaderboard.json.")
@click.option("--site", "site_dir", type=_PATH, default=None, help="Default: leaderboard/site.")
@click.option(
    "--recipes-dir",
    type=_PATH,
    default=None,
    help="Reference runs under perturbed recipes, for the places under them (default: recipes/ beside the input).",
)
def render_cmd(source, site_dir, recipes_dir):
    """Render the site from leaderboard.json as it is, without rebuilding it.

    Seconds, no validation or resampling: what `build` does after ranking. The repository keeps the rendered
    site in leaderboard/site/, so that a clone can open it as it is.
    """
    root = default_dir()
    pages = _render(source or root / "leaderboard.json", site_dir or root / "site", recipes_dir)
    click.echo(f"site: {pages[0]} (+{len(pages) - 1} page(s))")


@leaderboard.command("open")
@click.option("--input", "-i", "source", type=_PATH, default=None, help="Default: leaderboard/leaderboard.json.")
def open_cmd(source):
    """Render the site into a new temporary folder and print its file:// address.

    Nothing is rebuilt and no server starts: open the address in a browser.
    """
    import tempfile

    root = default_dir()
    folder = Path(tempfile.mkdtemp(prefix="w2sbench-site-"))
    pages = _render(source or root / "leaderboard.json", folder, None)
    click.echo(pages[0].resolve().as_uri())
