"""The `w2sbench` command: eval, sweep, tasks, settings, methods, plot."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from .errors import W2SError


def _parse_limit(value: str | None) -> dict[str, int] | None:
    """'200,200,100' -> split sizes train_label, train_unlabel, test."""
    from .api import parse_limit

    return parse_limit(value, "--limit")


def quiet_engine_bars(verbose: bool) -> None:
    """The engines' own per-batch bars (tqdm, in vLLM and transformers) only with --verbose: the harness says
    the plan and the time left itself (w2sbench/engine/progress.py). Engines started later inherit the setting."""
    if not verbose:
        os.environ.setdefault("TQDM_DISABLE", "1")


def setup_logging(level: int) -> None:
    """Progress and diagnostics go to stderr through the `w2sbench` logger; results go to stdout."""
    logger = logging.getLogger("w2sbench")
    if not any(getattr(h, "_w2sbench", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[w2sbench] %(message)s"))
        handler._w2sbench = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)


@click.group()
@click.version_option(package_name="w2sbench")
def cli() -> None:
    """w2sbench: evaluate weak-to-strong supervision methods; one PGR with confidence intervals."""


def run_options(command: Callable) -> Callable:
    """The options of every command that runs methods (eval, sweep), defined once: where the units run, the
    method sandbox's limits, and how much to say."""
    options = [
        click.option(
            "--executor",
            default="inprocess",
            show_default=True,
            help="Where the units run: inprocess (this process; each method in its sealed process) or ray (a Ray "
            "cluster: pip install 'w2sbench[ray]'; README).",
        ),
        click.option(
            "--ray-address",
            default=None,
            help="Ray cluster for --executor ray, e.g. auto or HOST:6379 (default: $RAY_ADDRESS, else a local one).",
        ),
        click.option(
            "--method-timeout",
            "method_timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Seconds one method seed may take before it is stopped (default: the setting's "
            "limits.method_timeout_s).",
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
        click.option("--verbose", "-v", is_flag=True, help="Diagnostics too (cache keys, engine choices)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command("eval")
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
    help="Task names or tags, comma-separated, or task YAML paths.",
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
    "--seeds",
    "method_seeds",
    type=click.IntRange(min=1),
    default=None,
    help="Seeds per method (default: the setting's).",
)
@click.option(
    "--limit", default=None, help="Override split sizes 'train_label,train_unlabel,test' (quick looks; not comparable)."
)
@click.option("--n-boot", type=int, default=2000, show_default=True, help="Bootstrap resamples for intervals.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Results JSON path (default: results/<setting>_<methods>_<time>.json).",
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
    help="Extra folder of task YAMLs.",
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
    method_timeout,
    method_quota,
    executor,
    ray_address,
    unsealed,
    limit,
    n_boot,
    output,
    log_samples,
    include_path,
    quiet,
    verbose,
    submission,
    allow_cpu,
):
    """Run the stages (cached) and print weak, ceiling, w2s accuracy and PGR with 95% intervals."""
    if quiet and verbose:
        raise W2SError("--quiet and --verbose: choose one")
    setup_logging(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    quiet_engine_bars(verbose)
    from .api import default_output, evaluate

    if not methods.strip():
        raise W2SError("--method: give at least one method name")
    result = evaluate(
        methods,
        tasks,
        setting,
        seeds=method_seeds,
        baseline_seeds=baseline_seeds,
        limit=_parse_limit(limit),
        executor=executor,
        ray_address=ray_address,
        backend=backend,
        tensor_parallel_size=tensor_parallel_size,
        n_boot=n_boot,
        unsealed=unsealed,
        method_timeout=method_timeout,
        method_quota=method_quota,
        include_path=list(include_path),
        perturb_recipe=perturb_recipe,
        allow_cpu=allow_cpu,
    )
    output = result.save(output or default_output(result), log_samples=log_samples)
    click.echo(result.table())
    if result.comparison is None and len(result.methods) > 1:
        click.echo("(add vanilla to --method for each method's difference to vanilla with its interval)")
    click.echo(f"results: {output}")
    if result.samples:
        click.echo(f"samples: {output.parent / result.samples['dir']} ({len(result.samples['files'])} files)")
    if submission is not None:
        from .leaderboard.submission import make_submission, write_submission

        if len(result.methods) != 1:
            raise W2SError("--submission: a submission holds one method; run eval with a single --method")
        (name,) = result.methods
        method_cls = result.record.tasks[0].methods[name].method
        write_submission(make_submission([(str(output), result.to_dict())], name, method_cls), submission)
        click.echo(
            f"submission: {submission} (fill in any '<fill in' fields, "
            f"then `w2sbench leaderboard validate {submission}`)"
        )
    if result.failed_methods:  # the results hold the others; the failures are the last lines, and the exit is 1
        for line in result.failed_methods.values():
            click.echo(f"error: {line}", err=True)
        raise SystemExit(1)


@cli.command("sweep")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the results (default: the file's `output`, else results/sweep_<file name>).",
)
@run_options
def sweep_cmd(spec, output, executor, ray_address, method_timeout, method_quota, unsealed, quiet, verbose):
    """Run a sweep file (methods x hyperparameter grid x seeds x tasks): one results JSON per configuration
    and a summary ranked by mean PGR. Cached: run it again to resume."""
    if quiet and verbose:
        raise W2SError("--quiet and --verbose: choose one")
    setup_logging(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    quiet_engine_bars(verbose)
    from .engine.executors import get_executor
    from .sweep import load_sweep, run_sweep, summary_table

    sweep = load_sweep(spec)
    result = run_sweep(sweep, get_executor(executor, ray_address), output, unsealed, method_timeout, method_quota)
    click.echo(summary_table(result))
    click.echo(f"results: {output or sweep.output}/ (one JSON per configuration, summary.md, summary.json)")


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
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the report as JSON.",
)
def robustness_cmd(results, resamples, seed, perturbed, ranks, output):
    """How stable the methods' order by pooled PGR is when one task is left out, the tasks are resampled, or
    the seeds are: Kendall's tau-b with the reference order, and each method's chance to keep its position.
    RESULTS: results JSONs of one setting (their methods together)."""
    import json

    from .reports.robustness import leaderboard_ranks, robustness, suite_from_results, table
    from .validation import read_json

    others = {}
    for spec in perturbed:
        label, paths = perturbed_files(spec)
        others[label] = suite_from_results([(str(p), read_json(p)) for p in paths])
    docs = [(str(p), read_json(p)) for p in results]
    suite = suite_from_results(docs)
    groups = None if ranks is None else leaderboard_ranks(read_json(ranks), str(ranks), docs, sorted(suite.methods))
    report = robustness(suite, groups, n_resamples=resamples, seed=seed, others=others)
    click.echo(table(report))
    if output is not None:
        output.write_text(json.dumps(report, indent=1) + "\n")
        click.echo(f"report: {output}")


@cli.command("tasks")
@click.option("--include-path", multiple=True, type=click.Path(file_okay=False, path_type=Path))
def tasks_cmd(include_path):
    """List the registered tasks: name, source, split sizes, tags."""
    from .tasks import list_tasks, load_task

    for name, path in sorted(list_tasks(list(include_path)).items()):
        task = load_task(str(path))
        src = task.config["source"]
        where = src.get("package") or src.get("path") or ""
        sizes = task.config["splits"]
        click.echo(
            f"{name:24s} {src['type']}:{where:28s} {sizes['train_label']}/{sizes['train_unlabel']}/{sizes['test']}"
            f"  [{', '.join(task.tags)}]"
        )


@cli.command("settings")
def settings_cmd():
    """List the settings: weak and strong model, regime and the fixed recipe."""
    from .settings import builtin_settings, load_setting

    for name in sorted(builtin_settings()):
        s = load_setting(name)
        t = s.train
        recipe = f"{t['epochs']} epochs, batch {t['batch_size']}, lr {t['lr']:g}"
        if "weak_lr" in t:
            recipe += f" (weak {t['weak_lr']:g})"
        if t.get("lora"):
            kind = "rsLoRA" if t["lora"].get("rslora") else "LoRA"
            recipe += f", {kind} r={t['lora']['r']} alpha={t['lora']['alpha']:g}"
        if s.regime != "frozen":
            recipe += f", {t.get('head', 'linear')} readout"
        recipe += f", {t.get('dtype', 'float32')}; seeds {s.baseline_seeds} baseline / {s.method_seeds} method"
        click.echo(f"{name:14s} v{s.version}  {s.weak.model} -> {s.strong.model}  [{s.regime}]  {recipe}")
        click.echo(f"{'':17s}{s.description}")


@cli.command("methods")
def methods_cmd():
    """List the methods found: built-ins and installed plug-ins."""
    from .methods import list_methods, load_method

    for name, origin in sorted(list_methods().items()):
        cls = load_method(name)
        tag = " [teacher-free]" if not cls.uses_weak_labels else ""
        click.echo(f"{name:16s} {origin:12s} {cls.description}{tag}")
        if cls.hyperparameters:
            click.echo(f"{'':17s}{', '.join(h.describe() for h in cls.hyperparameters.values())}")


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
    """Figures of a results JSON, as PNG and SVG with the plotted values as JSON: PGR per task with
    intervals, weak / w2s / ceiling accuracy per task, and development vs held-out PGR when the results
    carry a held-out split."""
    from .reports.plot import default_dir, plot_results

    made = plot_results(results, output or default_dir(results))
    for path in made.files:
        click.echo(str(path))
    for note in made.notes:
        click.echo(note)


from .leaderboard.cli import leaderboard as _lb  # noqa: E402  (registered after the core commands)

cli.add_command(_lb)

from .serve.cli import serve as _serve  # noqa: E402

cli.add_command(_serve)


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
        click.echo(f"w2sbench: stopped by {e}; cached stages are kept, run the same command to resume", err=True)
        sys.exit(128 + e.signum)
    except W2SError as e:
        click.echo(f"w2sbench: error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("w2sbench: interrupted; cached stages are kept, run the same command to resume", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    finally:
        if process:
            end_children()  # engines and method processes that did not close: nothing the run started outlives it


if __name__ == "__main__":
    main()
