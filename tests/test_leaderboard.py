"""Leaderboard: submission schema, validation of each kind of bad input (one line naming file and
field, non-zero exit), baselines generation, ranking with ties, leaderboard.json and the static site."""

from __future__ import annotations

import base64
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from support.leaderboard import (  # noqa: E402
    CARD,
    TASKS,
    as_submitted_folder,
    load,
    make_method,
    make_record,
    make_results,
    write_board,
)

from w2sbench.cli import main  # noqa: E402
from w2sbench.errors import ConfigError, W2SError  # noqa: E402
from w2sbench.leaderboard import baselines as bl  # noqa: E402
from w2sbench.leaderboard.build import assign_ranks, build_leaderboard  # noqa: E402
from w2sbench.leaderboard.site import render_site  # noqa: E402
from w2sbench.leaderboard.submission import make_submission, only_method  # noqa: E402
from w2sbench.leaderboard.validate import check_submission, submission_files, validate_files  # noqa: E402
from w2sbench.schema_io import validate  # noqa: E402
from w2sbench.scoring import decode_correct  # noqa: E402


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> Path:
    return write_board(
        tmp_path_factory.mktemp("lb"),
        {"alpha": 0.82, "beta": 0.78, "gamma": 0.66},
        teacher_free=("gamma",),
        non_default=("beta",),
    )


@pytest.fixture()
def sub(board) -> dict:
    return load(board / "submissions" / "alpha.json")


# The committed seed (leaderboard/submissions/*.json) was made before records of reproduction existed: its
# files still carry `reproduced` blocks, which the schema now refuses. make_seed.sh regenerates it with records.
SEED_PREDATES_RECORDS = (
    "the repository's seed predates records of reproduction (no leaderboard/records/): regenerate it with "
    "bash leaderboard/make_seed.sh"
)


def _problems(doc: dict, board: Path, name: str = "broken.json") -> list[ConfigError]:
    return check_submission(doc, name, bl.load(board / "baselines.json"))


def _built(board: Path, **kwargs) -> dict:
    """leaderboard.json's document for a board folder (its submissions validated, its records read)."""
    valid, errors = validate_files(
        submission_files(board / "submissions"), bl.load(board / "baselines.json"), board / "submissions"
    )
    assert errors == [], errors
    return build_leaderboard(
        valid, bl.load(board / "baselines.json"), board / "baselines.json", records_dir=board / "records", **kwargs
    )


def _one(problems: list[ConfigError], field: str) -> ConfigError:
    hits = [p for p in problems if p.field == field]
    assert hits, f"no problem on {field}: {[str(p) for p in problems]}"
    return hits[0]


def _run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err


# ---- valid input -----------------------------------------------------------------------------------
def test_seed_submissions_validate(board):
    valid, errors = validate_files(
        submission_files(board / "submissions"), bl.load(board / "baselines.json"), board / "submissions"
    )
    assert errors == []
    assert sorted(d["method"]["name"] for _, d in valid) == ["alpha", "beta", "gamma"]


def test_submission_holds_only_its_method():
    doc = make_results({"vanilla": 0.8, "b1": 0.7})  # with vanilla, results may carry a "comparison"
    cut = only_method(doc, "b1")
    assert list(cut["methods"]) == ["b1"] and list(cut["summary"]) == ["b1"]
    assert all(list(t["methods"]) == ["b1"] for t in cut["tasks"].values())
    assert "comparison" not in cut
    if isinstance(doc["sealed"]["method_saw"], dict):
        assert list(cut["sealed"]["method_saw"]) == ["b1"]
    assert "vanilla" in doc["methods"]  # the original is left alone
    with pytest.raises(ConfigError, match="no method 'zz'"):
        only_method(doc, "zz")


def test_card_defaults_are_placeholders_for_user_methods_and_rejected(board, tmp_path):
    from support.toy import method_file

    in_a_file = method_file(tmp_path, "pass", name="delta")
    doc = make_submission([("r.json", make_results({"delta": 0.8}))], "delta", in_a_file)
    assert doc["method"]["source"]["kind"] == "file"  # a method in a file of its own: refused, submit a folder
    assert _one(_problems(doc, board), "method.source.kind")
    # one defined in a package (here the tests' helpers) is refused too
    doc = make_submission([("r.json", make_results({"delta": 0.8}))], "delta", make_method("delta"))
    assert doc["method"]["source"]["kind"] == "package"
    assert "submit your code as the folder" in str(_one(_problems(doc, board), "method.source.package"))
    doc = as_submitted_folder(doc)
    assert doc["method"]["teacher_free"] is False and doc["method"]["non_default_recipe"] is False
    problems = _problems(doc, board)
    assert "placeholder" in str(_one(problems, "method.license"))
    assert "placeholder" in str(_one(problems, "method.authors"))


def test_builtin_method_card_is_complete():
    from w2sbench.methods import load_method

    vanilla = load_method("vanilla")
    doc = make_submission([("r.json", make_results({"vanilla": 0.8}))], "vanilla", vanilla)
    assert doc["method"]["license"] == "Apache-2.0" and doc["method"]["code"] == "w2sbench/methods/builtin.py"


# ---- each kind of bad input -------------------------------------------------------------------------
def test_missing_field(board, sub):
    del sub["method"]["license"]
    (p,) = _problems(sub, board)
    assert (
        p.field == "method.license" and "missing" in str(p) and str(p).startswith("broken.json: field 'method.license'")
    )


def test_wrong_type(board, sub):
    sub["method"]["teacher_free"] = "yes"
    (p,) = _problems(sub, board)
    assert p.field == "method.teacher_free" and "boolean" in str(p)


def test_unsealed_results_are_refused(board, sub):
    sub["results"][0]["sealed"].update(sandboxed=False, why_unsealed="run with --unsealed", sandbox=None)
    (p,) = _problems(sub, board)
    assert p.field == "results.0.sealed.sandboxed" and "only sandboxed results" in str(p)


def test_code_hash_must_be_the_one_that_made_the_results(board, sub):
    sub["method"]["source"]["sha256"] = "0" * 64
    (p,) = _problems(sub, board)
    assert p.field == "method.source.sha256" and "is not the hash of the code that made these results" in str(p)


@pytest.mark.parametrize(
    "change, field, said",
    [
        ({"path": "/home/me/secret_method"}, "method.source.path", "give the relative path leaderboard/methods/alpha"),
        ({"path": "leaderboard/methods/../../tests"}, "method.source.path", "goes through '..'"),
        ({"path": "leaderboard/methods/beta"}, "method.source.path", "must be the folder leaderboard/methods/alpha/"),
        ({"entry": "leaderboard/methods/beta/__init__.py:M_beta"}, "method.source.entry", "inside the method's own"),
        ({"entry": "leaderboard/methods/alpha/../beta/__init__.py:M_beta"}, "method.source.entry", "own folder"),
        ({"entry": "leaderboard/methods/alpha/helper.py:M_alpha"}, "method.source.entry", "__init__.py:ClassName"),
        ({"entry": "leaderboard/methods/alpha/__init__.py:os.system"}, "method.source.entry", "ClassName"),
        ({"kind": "package", "package": "numpy", "version": "1.0"}, "method.source.package", "only w2sbench's own"),
        ({"kind": "package", "package": "w2sbench", "entry": "vanilla"}, "method.source.entry", "not the built-in"),
        ({"kind": "file"}, "method.source.kind", "is not one of"),
    ],
)
def test_code_must_be_the_methods_own_folder_or_a_builtin(board, sub, change, field, said):
    """An entry outside its own folder, a path through `..` or absolute, another package (whose install would
    run its code): one line naming the field, with or without reading the disk."""
    sub["method"]["source"].update(change)
    for code_root in (None, board.parent):
        problems = check_submission(sub, "broken.json", bl.load(board / "baselines.json"), code_root)
        assert [p.field for p in problems] == [field] and said in str(problems[0]), problems


@pytest.mark.parametrize("where", ["__init__.py", "the folder", "inside", "methods"])
def test_code_with_a_symbolic_link_is_refused(tmp_path, where):
    """A link as the entry file, as the folder, inside it or on the way there could make the sandbox bind a
    folder it hides (task data, the cache, the recipe runs) as the method's readable code."""
    board = write_board(tmp_path, {"alpha": 0.80})
    folder = board / "methods" / "alpha"
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(folder, elsewhere / "alpha")
    if where == "__init__.py":
        (folder / "__init__.py").unlink()
        (folder / "__init__.py").symlink_to(elsewhere / "alpha" / "__init__.py")
    elif where == "the folder":
        shutil.rmtree(folder)
        folder.symlink_to(elsewhere / "alpha")
    elif where == "inside":
        (folder / "data").symlink_to(board / "recipes")
    else:
        shutil.move(board / "methods", elsewhere / "methods")
        (board / "methods").symlink_to(elsewhere / "methods")
    valid, errors = validate_files([board / "submissions" / "alpha.json"], bl.load(board / "baselines.json"))
    assert errors == [] and len(valid) == 1  # no submissions folder, no code root: the names alone are fine
    valid, errors = validate_files(
        [board / "submissions" / "alpha.json"], bl.load(board / "baselines.json"), board / "submissions"
    )
    assert valid == [] and [e.field for e in errors] == ["method.source.path"]
    assert "symbolic link" in str(errors[0])


def test_edited_code_is_refused_by_its_hash(board, tmp_path):
    shutil.copytree(board, tmp_path / "leaderboard")
    code = tmp_path / "leaderboard" / "methods" / "alpha" / "__init__.py"
    code.write_text(code.read_text() + "# edited after the run\n")
    subs = tmp_path / "leaderboard" / "submissions"
    valid, errors = validate_files([subs / "alpha.json"], bl.load(board / "baselines.json"), subs)
    assert [e.field for e in errors] == ["method.source.sha256"] and "reproduce with the code" in str(errors[0])


def test_only_reproduced_entries_are_ranked(tmp_path):
    """alpha has no record: it is pending, with the reason, and nothing of it is scored or ranks anyone."""
    board = write_board(tmp_path, {"alpha": 0.84, "beta": 0.74}, unreproduced=("alpha",))
    tiny = _built(board)["settings"]["tiny"]
    assert [e["method"] for e in tiny["entries"]] == ["beta"]
    assert tiny["pending"] == [
        {
            "method": "alpha",
            "submission": str(board / "submissions" / "alpha.json"),
            "reason": "not reproduced yet (w2sbench leaderboard reproduce)",
        }
    ]
    beta = tiny["entries"][0]
    assert beta["rank"] == 1 and beta["reproduced"]["largest_difference"] == 0.0 and "alpha" not in beta["paired"]


def test_wrong_type_inside_results(board, sub):
    sub["results"][0]["tasks"]["sms_spam"]["weak"]["accuracy"] = "0.7"
    (p,) = _problems(sub, board)
    assert p.field == "results.0.tasks.sms_spam.weak.accuracy"


def test_pgr_inconsistent_with_accuracies(board, sub):
    row = sub["results"][0]["tasks"]["rotten_tomatoes"]["methods"]["alpha"]["pgr"]
    row["pgr"] += 0.05
    p = _one(_problems(sub, board), "results.0.tasks.rotten_tomatoes.methods.alpha.pgr.pgr")
    assert "does not follow from its accuracies" in str(p)


def test_w2s_accuracy_changed_alone_is_caught(board, sub):
    """Raising the reported w2s accuracy without its per-seed values and PGR is inconsistent three ways."""
    task = sub["results"][0]["tasks"]["sms_spam"]
    task["methods"]["alpha"]["w2s"]["accuracy"] += 0.03
    fields = {p.field for p in _problems(sub, board)}
    assert "results.0.tasks.sms_spam.methods.alpha.w2s.accuracy" in fields
    assert "results.0.tasks.sms_spam.methods.alpha.pgr.w2s_acc" in fields


def _flip(encoded: str, i: int) -> str:
    """The packed correctness vector with example i's bit flipped."""
    raw = bytearray(base64.b64decode(encoded))
    raw[i // 8] ^= 0x80 >> (i % 8)
    return base64.b64encode(bytes(raw)).decode()


def test_tampered_correctness_vectors_are_caught(board, sub):
    """The per-example vectors the leaderboard pairs on cannot be edited apart from the accuracies."""
    row = sub["results"][0]["tasks"]["rotten_tomatoes"]["methods"]["alpha"]["w2s"]
    row["correct"][0] = _flip(row["correct"][0], 7)  # one example more (or less) right than seed 0's accuracy
    p = _one(_problems(sub, board), "results.0.tasks.rotten_tomatoes.methods.alpha.w2s.correct.0")
    assert "test examples right" in str(p) and "but accuracy_per_seed.0 is" in str(p)


def test_correctness_vectors_of_the_wrong_size_or_count(board, sub):
    task = sub["results"][0]["tasks"]["sms_spam"]
    task["methods"]["alpha"]["w2s"]["correct"][1] = "AAAA"
    task["weak"]["correct"] = task["weak"]["correct"][:2]
    problems = _problems(sub, board)
    assert "is not 300 packed bits per seed: seed 1: 3 bytes" in str(
        _one(problems, "results.0.tasks.sms_spam.methods.alpha.w2s.correct")
    )
    assert "holds 2 vector(s) but accuracy_per_seed has 3" in str(
        _one(problems, "results.0.tasks.sms_spam.weak.correct")
    )


def test_a_vector_edited_but_still_matching_its_accuracy_passes_validation_only(board, sub):
    """Swapping a right and a wrong example keeps the count: validation cannot see it (reproduction does:
    tests/test_reproduce.py), so the entry ranks only once reproduced."""
    row = sub["results"][0]["tasks"]["rotten_tomatoes"]["methods"]["alpha"]["w2s"]
    n_test = sub["results"][0]["tasks"]["rotten_tomatoes"]["n"]["test"]
    bits = decode_correct(row["correct"][:1], n_test)[0]
    right, wrong = int(np.flatnonzero(bits == 1)[0]), int(np.flatnonzero(bits == 0)[0])
    row["correct"][0] = _flip(_flip(row["correct"][0], right), wrong)
    assert _problems(sub, board) == []


def test_pooled_pgr_must_follow_from_the_accuracies(board, sub):
    summary = sub["results"][0]["summary"]["alpha"]
    summary["pooled_pgr"] += 0.1
    p = _one(_problems(sub, board), "results.0.summary.alpha.pooled_pgr")
    assert "does not follow from the accuracies" in str(p)
    summary["pooled_pgr"], summary["pooled_gap"] = summary["pooled_pgr"] - 0.1, summary["pooled_gap"] + 0.01
    assert "is not the summed ceiling - weak gap" in str(
        _one(_problems(sub, board), "results.0.summary.alpha.pooled_gap")
    )


def test_baselines_differ_from_official(board, sub):
    """A self-consistent file (PGR recomputed) whose weak model is better than the official one."""
    task = sub["results"][0]["tasks"]["rotten_tomatoes"]
    weak = [a + 0.02 for a in task["weak"]["accuracy_per_seed"]]
    task["weak"]["accuracy_per_seed"], task["weak"]["accuracy"] = weak, float(np.mean(weak))
    p_row = task["methods"]["alpha"]["pgr"]
    p_row["weak_acc"] = task["weak"]["accuracy"]
    p_row["gap"] = p_row["ceiling_acc"] - p_row["weak_acc"]
    p_row["pgr"] = (p_row["w2s_acc"] - p_row["weak_acc"]) / p_row["gap"]
    p_row["pgr_per_seed"] = [
        (a - p_row["weak_acc"]) / p_row["gap"] for a in task["methods"]["alpha"]["w2s"]["accuracy_per_seed"]
    ]
    problems = _problems(sub, board)
    p = _one(problems, "results.0.tasks.rotten_tomatoes.weak.accuracy")
    assert "differs from the official cached baseline" in str(p) and "tolerance 0.005" in str(p)
    assert not any(q.field.endswith("pgr.pgr") for q in problems)  # only the baseline is wrong


def test_baseline_within_tolerance_is_accepted(board, sub):
    task = sub["results"][0]["tasks"]["rotten_tomatoes"]
    weak = [a + 0.001 for a in task["weak"]["accuracy_per_seed"]]
    official = bl.load(board / "baselines.json")
    for entry in official["settings"].values():
        for t in entry["tasks"].values():
            if t["task"] == "rotten_tomatoes":
                t["weak"]["accuracy"] = float(np.mean(weak)) - 0.004
    assert not [p for p in check_submission(sub, "x.json", official) if "official" in str(p)]


def test_duplicate_name_is_rejected(board, tmp_path):
    clash = load(board / "submissions" / "alpha.json")
    clash["method"]["name"] = "Alpha"  # names are compared case-insensitively
    for t in clash["results"][0]["tasks"].values():
        t["methods"] = {"Alpha": t["methods"].pop("alpha")}
    res = clash["results"][0]
    res["methods"] = {"Alpha": res["methods"].pop("alpha")}
    res["summary"] = {"Alpha": res["summary"].pop("alpha")}
    clash["method"]["source"].update(
        path="leaderboard/methods/Alpha", entry="leaderboard/methods/Alpha/__init__.py:M_alpha"
    )  # its own folder (the same code): only the name clashes
    if not (board / "methods" / "Alpha").exists():
        shutil.copytree(board / "methods" / "alpha", board / "methods" / "Alpha")
    path = tmp_path / "alpha2.json"
    path.write_text(json.dumps(clash))
    valid, errors = validate_files([path], bl.load(board / "baselines.json"), board / "submissions")
    assert valid == [] and len(errors) == 1
    assert errors[0].field == "method.name" and "already used by" in str(errors[0]) and str(path) in str(errors[0])


def test_unknown_setting_hash_and_missing_task(board, sub):
    sub["results"][0]["setting"]["hash"] = "0" * 16
    p = _one(_problems(sub, board), "results.0.setting.hash")
    assert "not the registered hash" in str(p)
    partial = make_submission([("r.json", make_results({"eps": 0.8}, tasks=TASKS[:1]))], "eps", None, CARD)
    p = _one(_problems(partial, board), "results.0.tasks")
    assert "official task 'sms_spam' is missing" in str(p)


def test_task_hash_unknown(board, sub):
    sub["results"][0]["tasks"]["sms_spam"]["task_hash"] = "f" * 16
    assert "registered hash of task 'sms_spam'" in str(
        _one(_problems(sub, board), "results.0.tasks.sms_spam.task_hash")
    )


def test_not_json_and_unknown_field(board, tmp_path, sub):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    _, errors = validate_files([bad], bl.load(board / "baselines.json"))
    assert "not valid JSON" in str(errors[0]) and str(bad) in str(errors[0])
    sub["method"]["homepage"] = "x"
    assert "unknown field" in str(_one(_problems(sub, board), "method.homepage"))


def test_cli_validate_exit_status_and_one_line_per_problem(board, tmp_path, capsys):
    broken = load(board / "submissions" / "alpha.json")
    del broken["method"]["authors"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    code, out, err = _run_cli(
        [
            "leaderboard",
            "validate",
            str(path),
            "--baselines",
            str(board / "baselines.json"),
            "--submissions-dir",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("w2sbench: error:")]
    assert lines == [f"w2sbench: error: {path}: field 'method.authors': required field is missing"]
    code, out, err = _run_cli(
        [
            "leaderboard",
            "validate",
            "--baselines",
            str(board / "baselines.json"),
            "--submissions-dir",
            str(board / "submissions"),
        ],
        capsys,
    )
    assert code == 0 and out.count("ok: ") == 3


def test_missing_baselines_file_is_a_clear_error(tmp_path, capsys):
    code, _, err = _run_cli(
        ["leaderboard", "validate", "--baselines", str(tmp_path / "nope.json"), "--submissions-dir", str(tmp_path)],
        capsys,
    )
    assert code == 2 and "nope.json" in err and "w2sbench leaderboard baselines" in err


# ---- baselines -----------------------------------------------------------------------------------
def test_baselines_from_results_and_limit_runs_refused(tmp_path):
    doc = make_results({"m": 0.8})
    out = bl.update(bl.empty(), [("r.json", doc)])
    (entry,) = out["settings"].values()
    assert entry["name"] == "tiny" and entry["seeds"] == 3
    by_name = {t["task"]: t for t in entry["tasks"].values()}
    assert by_name["sms_spam"]["weak"]["accuracy"] == doc["tasks"]["sms_spam"]["weak"]["accuracy"]
    small = json.loads(json.dumps(doc))
    small["tasks"]["sms_spam"]["n"]["test"] = 100
    with pytest.raises(ConfigError, match="cannot define official baselines") as exc:
        bl.update(out, [("small.json", small)])
    assert exc.value.field == "tasks.sms_spam.n"
    again = bl.update(out, [("small.json", small)], allow_nonstandard_sizes=True)  # replaces the setting's entry
    assert len(again["settings"]) == 1


# ---- ranking and build ------------------------------------------------------------------------------
def _entries(pooled: dict[str, float | None], significant: set[tuple[str, str]]) -> list[dict]:
    """Entries with the given pooled PGRs; (a, b) in `significant`: a's paired interval over b lies above 0.
    Every other pair's paired interval includes 0."""
    out = []
    for name, value in pooled.items():
        paired = {}
        for other, v in pooled.items():
            if other == name or value is None or v is None:
                continue
            d = value - v
            if (name, other) in significant:
                ci = [d / 2, 3 * d / 2]
            elif (other, name) in significant:
                ci = [3 * d / 2, d / 2]
            else:
                ci = [-abs(d) - 0.05, abs(d) + 0.05]
            paired[other] = {"d_pooled_pgr": d, "d_pooled_pgr_ci": ci, "d_mean_pgr": None, "d_mean_pgr_ci": None}
        out.append({"method": name, "pooled_pgr": value, "paired": paired, "mean_w2s_accuracy": 0.5})
    return out


def _honest(entries: list[dict]) -> None:
    """A rank counts the entries shown to be better (directly or through a chain of paired wins), and a win
    always puts the winner's rank strictly above the loser's."""
    ranked = [e for e in entries if e["rank"] is not None]
    by = {e["method"]: e for e in ranked}

    def beats(a: dict, b: dict) -> bool:
        return a is not b and a["paired"][b["method"]]["d_pooled_pgr_ci"][0] > 0

    for b in ranked:
        above = {a["method"] for a in ranked if beats(a, b)}
        while True:  # close under "beats something that beats b"
            more = {a["method"] for a in ranked for m in above if beats(a, by[m])} - above
            if not more:
                break
            above |= more
        assert b["rank"] == 1 + len(above), (b["method"], above)
        for a in ranked:
            if beats(a, b):
                assert a["rank"] < b["rank"], (a["method"], b["method"])


def test_paired_ranking():
    pooled = {"c": 0.45, "a": 0.6, "u": None, "d": 0.1, "b": 0.5}
    significant = {("a", "b"), ("a", "c"), ("a", "d"), ("b", "d"), ("c", "d")}  # b vs c: interval includes 0
    entries = assign_ranks(_entries(pooled, significant))
    assert [e["method"] for e in entries] == ["a", "b", "c", "d", "u"]
    assert [e["rank"] for e in entries] == [1, 2, 2, 4, None]
    by = {e["method"]: e for e in entries}
    assert by["b"]["tied_with"] == ["c"] and by["c"]["tied_with"] == ["b"] and by["a"]["tied_with"] == []
    assert by["a"]["better_than"] == ["b", "c", "d"] and by["d"]["better_than"] == []
    assert by["u"]["unranked_reason"] == "pooled PGR undefined" and by["u"]["tied_with"] == []
    _honest(entries)


def test_one_unresolved_entry_does_not_tie_the_whole_list():
    """The default suite's shape: logconf beats vanilla, but bootstrap, between them, is resolved from
    neither. Tiers (cut only where everything above beats everything below) tied all three; counting the
    entries shown to be better ranks logconf strictly above vanilla, and bootstrap shares logconf's rank."""
    entries = assign_ranks(_entries({"logconf": 0.47, "bootstrap": 0.41, "vanilla": 0.37}, {("logconf", "vanilla")}))
    assert [(e["method"], e["rank"]) for e in entries] == [("logconf", 1), ("bootstrap", 1), ("vanilla", 2)]
    by = {e["method"]: e for e in entries}
    assert by["bootstrap"]["tied_with"] == ["logconf", "vanilla"] and by["logconf"]["better_than"] == ["vanilla"]
    _honest(entries)


def test_a_chain_of_wins_counts():
    """a beats b, b beats c, a and c unresolved (a paired interval can be wider than two narrow ones): c still
    ranks below b, and b below a."""
    entries = assign_ranks(_entries({"a": 0.6, "b": 0.5, "c": 0.4}, {("a", "b"), ("b", "c")}))
    by = {e["method"]: e for e in entries}
    assert (by["a"]["rank"], by["b"]["rank"], by["c"]["rank"]) == (1, 2, 3)
    assert by["a"]["tied_with"] == ["c"]
    _honest(entries)


def test_paired_ranking_is_honest_on_random_relations():
    rng = np.random.default_rng(0)
    for _ in range(200):
        names = [f"m{i}" for i in range(6)]
        values = dict(zip(names, np.sort(rng.random(6))[::-1]))
        significant = {(a, b) for i, a in enumerate(names) for b in names[i + 1 :] if rng.random() < 0.7}
        entries = assign_ranks(_entries(values, significant))
        _honest(entries)
        ranks = [e["rank"] for e in entries]
        assert ranks == sorted(ranks) and ranks[0] == 1
        if all((a, b) in significant for i, a in enumerate(names) for b in names[i + 1 :]):
            assert ranks == [1, 2, 3, 4, 5, 6]  # every pair resolved: a strict order


def test_pairing_resolves_what_marginal_intervals_cannot(tmp_path):
    """'better' is 'base' with 2% of its wrong test predictions made right on every task: the two pooled-PGR
    intervals overlap, but the paired difference (the same examples, the same seeds) excludes 0, so the
    build ranks better strictly above base."""
    board = write_board(tmp_path, {"base": 0.78, "better": ("base", 0.02)})
    valid, errors = validate_files(sorted((board / "submissions").glob("*.json")), bl.load(board / "baselines.json"))
    assert errors == []
    doc = build_leaderboard(
        valid, bl.load(board / "baselines.json"), board / "baselines.json", records_dir=board / "records"
    )
    by = {e["method"]: e for e in doc["settings"]["tiny"]["entries"]}
    better, base = by["better"], by["base"]
    assert better["pooled_pgr_ci"][0] < base["pooled_pgr_ci"][1]  # the marginal intervals overlap
    d = better["paired"]["base"]
    assert d["d_pooled_pgr"] == pytest.approx(better["pooled_pgr"] - base["pooled_pgr"])
    assert d["d_pooled_pgr_ci"][0] > 0
    assert base["paired"]["better"]["d_pooled_pgr_ci"] == pytest.approx([-x for x in d["d_pooled_pgr_ci"][::-1]])
    assert (better["rank"], base["rank"]) == (1, 2) and better["better_than"] == ["base"]


def test_build_writes_valid_leaderboard_and_site(board, capsys):
    code, out, err = _run_cli(
        [
            "leaderboard",
            "build",
            "--submissions-dir",
            str(board / "submissions"),
            "--baselines",
            str(board / "baselines.json"),
            "-o",
            str(board / "leaderboard.json"),
            "--site",
            str(board / "site"),
        ],
        capsys,
    )
    assert code == 0, err
    doc = load(board / "leaderboard.json")
    validate(doc, "leaderboard", "leaderboard.json")
    tiny = doc["settings"]["tiny"]
    assert [t["name"] for t in tiny["tasks"]] == sorted(TASKS)
    names = [e["method"] for e in tiny["entries"]]
    assert sorted(names) == ["alpha", "beta", "gamma"]
    pooled = [e["pooled_pgr"] for e in tiny["entries"]]
    assert pooled == sorted(pooled, reverse=True)
    for e in tiny["entries"]:
        rows = e["tasks"].values()
        assert e["mean_pgr"] == pytest.approx(np.mean([t["pgr"] for t in rows]))
        assert e["pooled_pgr"] == pytest.approx(
            sum(t["w2s_acc"] - t["weak_acc"] for t in rows) / sum(t["ceiling_acc"] - t["weak_acc"] for t in rows)
        )
        # sms_spam is held out (tag v2-heldout), rotten_tomatoes a development task: each side is its one task
        tr, by_task = e["transfer"], e["tasks"]
        for side, task in (("development", "rotten_tomatoes"), ("heldout", "sms_spam")):
            assert tr[side]["pooled_pgr"] == pytest.approx(by_task[task]["pgr"])
        for t in rows:
            assert t["pgr"] == pytest.approx((t["w2s_acc"] - t["weak_acc"]) / (t["ceiling_acc"] - t["weak_acc"]))
        for other, d in e["paired"].items():
            assert d["d_pooled_pgr"] == pytest.approx(
                e["pooled_pgr"] - next(o["pooled_pgr"] for o in tiny["entries"] if o["method"] == other)
            )
    by = {e["method"]: e for e in tiny["entries"]}
    assert by["gamma"]["teacher_free"] and by["beta"]["non_default_recipe"] and not by["alpha"]["teacher_free"]
    assert by["gamma"]["mean_pgr"] < 0  # 66% w2s is below the 70% weak model
    html = (board / "site" / "index.html").read_text()
    embedded = html.split('id="leaderboard-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded.replace("<\\/", "</"))["settings"]["tiny"]["hash"] == tiny["hash"]
    assert "<svg" in html and 'class="mark tf"' in html and 'class="mark ndr"' in html
    for name in names:
        page = board / "site" / "methods" / f"{name}.html"
        assert page.is_file() and CARD["authors"][0] in page.read_text()


def test_build_reports_development_and_heldout(tmp_path):
    tasks = ("rotten_tomatoes", "vader_tweets")  # tags default-dev, default-heldout
    board = write_board(tmp_path, {"alpha": 0.82, "beta": 0.76}, tasks=tasks)
    valid, errors = validate_files(sorted((board / "submissions").glob("*.json")), bl.load(board / "baselines.json"))
    assert errors == []
    doc = build_leaderboard(
        valid, bl.load(board / "baselines.json"), board / "baselines.json", records_dir=board / "records"
    )
    validate(doc, "leaderboard", "leaderboard.json")
    tiny = doc["settings"]["tiny"]
    assert {t["name"]: t["split"] for t in tiny["tasks"]} == {
        "rotten_tomatoes": "development",
        "vader_tweets": "heldout",
    }
    sub = load(board / "submissions" / "alpha.json")["results"][0]
    for e in tiny["entries"]:
        tr = e["transfer"]
        dev, held = e["tasks"]["rotten_tomatoes"], e["tasks"]["vader_tweets"]
        assert tr["development"]["pooled_pgr"] == pytest.approx(dev["pgr"])
        assert tr["heldout"]["pooled_pgr"] == pytest.approx(held["pgr"])
        assert tr["difference"]["pooled_pgr"] == pytest.approx(held["pgr"] - dev["pgr"])
        lo, hi = tr["difference"]["pooled_pgr_ci"]
        assert lo <= tr["difference"]["pooled_pgr"] <= hi
    # the build's numbers (official baselines, its own 2,000 resamples) are the submission's (300 resamples) here
    alpha = next(e for e in tiny["entries"] if e["method"] == "alpha")
    theirs = sub["transfer"]["methods"]["alpha"]["difference"]
    assert alpha["transfer"]["difference"]["pooled_pgr"] == pytest.approx(theirs["pooled_pgr"])
    assert alpha["transfer"]["difference"]["pooled_pgr_ci"] == pytest.approx(theirs["pooled_pgr_ci"], abs=0.05)
    assert alpha["pooled_pgr_ci"] == pytest.approx(sub["summary"]["alpha"]["pooled_pgr_ci"], abs=0.05)
    site = render_site(doc, tmp_path / "site")
    html = site[0].read_text()
    assert 'class="sortable task-col heldout-col" data-task="vader_tweets"' in html and "Held-out &minus; dev." in html
    assert 'id="paired-tiny"' in html


def test_build_leaves_out_invalid_submissions_or_fails_strict(board, tmp_path, capsys):
    shutil.copytree(board, tmp_path / "leaderboard")  # submissions, their code and their records
    subs = tmp_path / "leaderboard" / "submissions"
    bad = load(subs / "gamma.json")
    bad["results"][0]["tasks"]["sms_spam"]["methods"]["gamma"]["pgr"]["pgr"] = 0.99
    (subs / "gamma.json").write_text(json.dumps(bad))
    args = [
        "leaderboard",
        "build",
        "--submissions-dir",
        str(subs),
        "--baselines",
        str(board / "baselines.json"),
        "-o",
        str(tmp_path / "lb.json"),
        "--site",
        str(tmp_path / "site"),
    ]
    code, out, err = _run_cli(args + ["--strict"], capsys)
    assert code == 1 and "gamma.json: field 'results.0.tasks.sms_spam.methods.gamma.pgr.pgr'" in err
    assert not (tmp_path / "lb.json").exists()
    code, out, err = _run_cli(args, capsys)
    assert code == 0
    doc = load(tmp_path / "lb.json")
    assert [e["method"] for e in doc["settings"]["tiny"]["entries"]] == ["alpha", "beta"]
    assert len(doc["generated"]["skipped"]) == 1 and "gamma.json" in doc["generated"]["skipped"][0]
    assert not (tmp_path / "site" / "methods" / "gamma.html").exists()


def test_repository_seed_is_valid():
    """The committed seed validates against the current registry and baselines (after a change to the tiny
    setting or a default task, regenerate it: bash leaderboard/make_seed.sh)."""
    from w2sbench.paths import repo_root

    board = repo_root() / "leaderboard"
    if not (board / "baselines.json").is_file():
        pytest.skip("no seed leaderboard yet")
    if not (board / "records").is_dir():
        pytest.skip(SEED_PREDATES_RECORDS)
    files = submission_files(board / "submissions")
    valid, errors = validate_files(files, bl.load(board / "baselines.json"), board / "submissions")
    assert [str(e) for e in errors] == [] and len(valid) == len(files) >= 1
    validate(load(board / "leaderboard.json"), "leaderboard", str(board / "leaderboard.json"))


# ---- a real run -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_eval_writes_a_submission_that_validates(tmp_path, capsys):
    """eval --submission on small real splits; its baselines (allowed off-size here) make it valid."""
    results, sub_path = tmp_path / "r.json", tmp_path / "submissions" / "vanilla.json"
    code, out, err = _run_cli(
        [
            "eval",
            "--method",
            "vanilla",
            "--tasks",
            "rotten_tomatoes",
            "--limit",
            "100,200,100",
            "--n-boot",
            "200",
            "-q",
            "-o",
            str(results),
            "--submission",
            str(sub_path),
        ],
        capsys,
    )
    assert code == 0, err
    sub = load(sub_path)
    assert sub["method"]["name"] == "vanilla" and sub["method"]["license"] == "Apache-2.0"
    assert sub["results"][0]["tasks"]["rotten_tomatoes"]["n"]["test"] == 100
    official = bl.update(bl.empty(), [(str(results), load(results))], allow_nonstandard_sizes=True)
    assert check_submission(sub, str(sub_path), official) == []
    code, _, err = _run_cli(
        [
            "eval",
            "--method",
            "vanilla,vanilla_hard",
            "--tasks",
            "rotten_tomatoes",
            "--limit",
            "100,200,100",
            "--n-boot",
            "50",
            "-q",
            "-o",
            str(tmp_path / "r2.json"),
            "--submission",
            str(tmp_path / "two.json"),
        ],
        capsys,
    )
    assert code == 2 and "a submission holds one method" in err


# ---- copies count once ---------------------------------------------------------------------------------------
def _ranks(tmp_path: Path, methods: dict) -> dict[str, dict]:
    board = write_board(tmp_path, methods)
    valid, errors = validate_files(sorted((board / "submissions").glob("*.json")), bl.load(board / "baselines.json"))
    assert errors == []
    doc = build_leaderboard(
        valid, bl.load(board / "baselines.json"), board / "baselines.json", records_dir=board / "records"
    )
    return {e["method"]: e for e in doc["settings"]["tiny"]["entries"]}


def test_copies_of_a_winner_do_not_push_the_loser_down(tmp_path):
    """Clone flooding: logconf beats vanilla; each copy of logconf would count as one more entry beating
    vanilla. Copies (predictions agreeing on >= 99% of every task's test examples: here 100% and 99.5%)
    count once, and each names its original."""
    plain = _ranks(tmp_path / "plain", {"logconf": 0.82, "vanilla": 0.76})
    assert plain["logconf"]["better_than"] == ["vanilla"] and plain["vanilla"]["rank"] == 2
    flooded = _ranks(
        tmp_path / "flooded",
        {"logconf": 0.82, "vanilla": 0.76, "logconf_copy": ("logconf", 0.0), "logconf_copy2": ("logconf", 0.005)},
    )
    assert {m for m in flooded if "vanilla" in flooded[m]["better_than"]} == {
        "logconf",
        "logconf_copy",
        "logconf_copy2",
    }
    assert flooded["vanilla"]["rank"] == 2  # three entries beat it, one class: without the rule, rank 4
    assert flooded["logconf"]["duplicate_of"] is None and flooded["vanilla"]["duplicate_of"] is None
    assert flooded["logconf_copy"]["duplicate_of"] == "logconf"
    assert flooded["logconf_copy2"]["duplicate_of"] == "logconf"
    from w2sbench.leaderboard.site import marks

    assert "copy of logconf" in marks(flooded["logconf_copy"]) and "copy of" not in marks(flooded["logconf"])


def test_a_near_copy_below_the_threshold_counts_on_its_own(tmp_path):
    """98.9% agreement (1.1% of the test examples made right) is not a copy: it is ranked and counted as itself."""
    by = _ranks(tmp_path, {"base": 0.80, "near": ("base", 0.011)})
    assert by["near"]["duplicate_of"] is None and by["base"]["duplicate_of"] is None


def test_agreement_is_read_seed_by_seed_or_by_majority():
    from w2sbench.leaderboard.build import agreement

    a = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=float)
    assert agreement(a, a) == 1.0
    assert agreement(a, 1 - a) == 0.0
    b = a.copy()
    b[0, 0] = 0
    assert agreement(a, b) == 7 / 8
    # different seed counts: the per-example majority (a tie counts as right): a -> [1, 1, 1, 0]
    assert agreement(a, np.array([[1, 1, 1, 1]], dtype=float)) == 3 / 4


def test_each_ranked_entry_shows_how_stable_its_rank_is(tmp_path):
    by = _ranks(tmp_path, {"a": 0.84, "b": 0.78, "c": 0.72})
    for e in by.values():
        figures = e["robustness"]
        assert set(figures) == {"leave_one_task_out", "tasks_resampled", "seeds_resampled", "least"}
        assert all(0.0 <= v <= 1.0 for v in figures.values())
        assert figures["least"] == min(v for k, v in figures.items() if k != "least")
    from w2sbench.leaderboard.site import _robustness_table

    assert "P(stays in its rank group)" in _robustness_table(by["a"])


def test_a_setting_whose_tasks_a_suite_groups_in_families_leaves_each_family_out(tmp_path, monkeypatch):
    """A suite (on $W2SBENCH_TASKS_PATH) with exactly the board's three tasks names two families, sentiment
    (rotten_tomatoes, vader_amazon) and spam (sms_spam): the build adds leave_one_family_out with two draws
    (each family left out), names the families, and counts it in each entry's `least`; the site places the
    entries under it. A board whose tasks no suite holds has no such change (the test above)."""
    folder = tmp_path / "extra" / "suites"
    folder.mkdir(parents=True)
    (folder / "fam.yaml").write_text(
        "suite: fam\nversion: 1\ndescription: three tasks, two families\n"
        "development: [rotten_tomatoes, vader_amazon]\nheldout: [sms_spam]\n"
        "families:\n  sentiment: [rotten_tomatoes, vader_amazon]\n  spam: [sms_spam]\n"
    )
    monkeypatch.setenv("W2SBENCH_TASKS_PATH", str(tmp_path / "extra"))
    tasks = ("rotten_tomatoes", "sms_spam", "vader_amazon")
    board = write_board(tmp_path, {"a": 0.84, "b": 0.78, "c": 0.72}, tasks=tasks)
    valid, errors = validate_files(sorted((board / "submissions").glob("*.json")), bl.load(board / "baselines.json"))
    assert errors == []
    doc = build_leaderboard(
        valid, bl.load(board / "baselines.json"), board / "baselines.json", records_dir=board / "records"
    )
    setting = doc["settings"]["tiny"]
    fam = setting["robustness"]["perturbations"]["leave_one_family_out"]
    assert fam["draws"] == 2
    assert fam["families"] == {"sentiment": ["rotten_tomatoes", "vader_amazon"], "spam": ["sms_spam"]}
    assert set(fam["by_left_out"]) == {"sentiment", "spam"}
    assert fam["tau_b_interval"] == [min(fam["by_left_out"].values()), max(fam["by_left_out"].values())]
    kinds = ("leave_one_task_out", "leave_one_family_out", "tasks_resampled", "seeds_resampled")
    for e in setting["entries"]:
        assert set(e["robustness"]) == {*kinds, "least"}
        assert e["robustness"]["least"] == min(e["robustness"][k] for k in kinds)
    from w2sbench.leaderboard.site import change_places, rank_chart

    places = change_places(setting, {}, {})
    assert set(places["leave_one_family_out"]) == {"a", "b", "c"}
    html = rank_chart(setting)
    assert 'data-change="leave_one_family_out"' in html and ">1 family</th>" in html


def test_an_order_is_read_again_on_the_other_model_pair(tmp_path):
    """Two official settings on the same tasks: each setting's entries get the other's order as one more
    change. On tiny a > b > c (all ranked apart); on tiny-smollm2 (only a and b submitted) b > a: of the one
    shared pair, discordant, tau-b = -1; a and b leave their places, c (not on the other pair) has no figure."""
    board = write_board(tmp_path, {"a": 0.84, "b": 0.78, "c": 0.72}, second={"a": 0.74, "b": 0.84})
    valid, errors = validate_files(sorted((board / "submissions").glob("*.json")), bl.load(board / "baselines.json"))
    assert errors == []
    doc = build_leaderboard(
        valid, bl.load(board / "baselines.json"), board / "baselines.json", records_dir=board / "records"
    )
    tiny, smol = doc["settings"]["tiny"], doc["settings"]["tiny-smollm2"]
    assert [e["rank"] for e in tiny["entries"]] == [1, 2, 3] and len(smol["entries"]) == 2
    pair = tiny["robustness"]["perturbations"]["model_pair_tiny-smollm2"]
    assert pair["tau_b"] == -1.0 and pair["run"] and pair["draws"] == 500
    back = smol["robustness"]["perturbations"]["model_pair_tiny"]
    assert back["tau_b"] == -1.0
    by = {e["method"]: e["robustness"] for e in tiny["entries"]}
    assert by["a"]["model_pair_tiny-smollm2"] < 0.05 and "model_pair_tiny-smollm2" not in by["c"]
    # the headline figure stays over the three changes every ranked entry has, so entries compare fairly
    assert by["a"]["least"] == min(by["a"][k] for k in ("leave_one_task_out", "tasks_resampled", "seeds_resampled"))
    from w2sbench.leaderboard.site import _robustness_table, table

    assert "another model pair (setting tiny-smollm2)" in _robustness_table(tiny["entries"][0])
    page = table(tiny)
    assert ">On tiny-smollm2</th>" in page and page.count("&ndash;</td>") >= 1  # c: no figure on the other pair


def test_the_site_asks_whether_development_predicts_held_out():
    """Three ranked entries at development 0.1, 0.2, 0.3 and held-out 0.3, 0.1, 0.2: centred, dx = (-1, 0, 1)
    and dy = (1, -1, 0) tenths, so Pearson r = -1 / sqrt(2 * 2) = -0.5, and Spearman r (ranks 1 2 3 against
    3 1 2) the same. An unranked entry is left out. The floors are drawn apart and left out of r: a teacher-free
    entry, and one that learns from the weak labels but ends below the weak model (pooled PGR interval under 0);
    counted, the two far points would carry r to +1.00 on their own."""
    from w2sbench.leaderboard.site import is_floor, transfer_plot

    def entry(name, dev, held, rank=1, **extra):
        scores = {"pooled_pgr_ci": [dev - 0.05, dev + 0.05]}
        return {
            "method": name,
            "rank": rank,
            "pooled_pgr_ci": [(dev + held) / 2 - 0.05, (dev + held) / 2 + 0.05],
            "transfer": {
                "development": {**scores, "pooled_pgr": dev},
                "heldout": {"pooled_pgr": held, "pooled_pgr_ci": [held - 0.05, held + 0.05]},
            },
            **extra,
        }

    entries = [entry("a", 0.1, 0.3), entry("b", 0.2, 0.1), entry("c", 0.3, 0.2), entry("u", 0.9, 0.9, rank=None)]
    html = transfer_plot({"name": "tiny", "entries": entries})
    assert "Across the 3 ranked entries that learn from the weak labels: Pearson r = -0.50" in html
    assert "Spearman r = -0.50" in html and ">u<" not in html and 'class="clipped' not in html
    floors = [entry("zeroshot", -3.0, -3.5, teacher_free=True), entry("majority", -4.0, -4.5, teacher_free=False)]
    assert [is_floor(e) for e in entries[:3] + floors] == [False, False, False, True, True]
    html = transfer_plot({"name": "tiny", "entries": [*entries, *floors]})
    assert "Across the 3 ranked entries that learn from the weak labels: Pearson r = -0.50" in html
    assert html.count('class="clipped floor"') == 2 and "floors, not in r:" in html
    assert "Counting the 2 floor(s) too, Pearson r would be +1.00" in html  # the far points carry it
    assert is_floor({**floors[1], "floor": False}) is False  # a build's own `floor` field decides
    assert transfer_plot({"name": "tiny", "entries": [*entries[:2], *floors]}) == ""  # two learning entries: no r


def test_the_reference_runs_under_a_perturbed_recipe_are_read_per_entry(tmp_path):
    """leaderboard/recipes/tiny/lr=0.5.json, a run of the entries' own code under lr x0.5 with their order
    reversed: tau-b -1 and each entry's figure; a run whose code differs from an entry's pinned code leaves
    that entry out; a run under another version of the setting is skipped with one line saying why."""
    from support.leaderboard import make_results

    from w2sbench.schema_io import write_json

    board = write_board(tmp_path, {"a": 0.84, "b": 0.78, "c": 0.72})
    recipes = board / "recipes" / "tiny"
    recipes.mkdir(parents=True)
    write_json(make_results({"a": 0.72, "b": 0.78, "c": 0.84}, perturbed=("lr", 0.5)), recipes / "lr=0.5.json")
    edited = make_results({"a": 0.84, "b": 0.72, "c": 0.78}, perturbed=("epochs", 2.0))
    edited["methods"]["c"]["code"]["sha256"] = "0" * 64  # c's run is of other code: not c's figure
    write_json(edited, recipes / "epochs=2.json")
    stale = make_results({"a": 0.84, "b": 0.78}, perturbed=("lr", 2.0))
    stale["setting"]["hash"] = "0" * 16
    write_json(stale, recipes / "lr=2.json")
    valid, errors = validate_files(sorted((board / "submissions").glob("*.json")), bl.load(board / "baselines.json"))
    assert errors == []
    doc = build_leaderboard(
        valid,
        bl.load(board / "baselines.json"),
        board / "baselines.json",
        recipes_dir=board / "recipes",
        records_dir=board / "records",
    )
    changes = doc["settings"]["tiny"]["robustness"]["perturbations"]
    assert changes["recipe_lr_x0.5"]["tau_b"] == -1.0 and changes["recipe_lr_x0.5"]["methods"] == 3
    assert changes["recipe_epochs_x2"]["tau_b"] == 1.0 and changes["recipe_epochs_x2"]["methods"] == 2  # a, b
    assert "recipe_lr_x2" not in changes
    assert any("lr=2.json: field 'setting.hash'" in line for line in doc["generated"]["skipped"])
    by = {e["method"]: e["robustness"] for e in doc["settings"]["tiny"]["entries"]}
    assert by["a"]["recipe_lr_x0.5"] < 0.05 and by["b"]["recipe_lr_x0.5"] > 0.95  # b stays in the middle
    assert "recipe_epochs_x2" not in by["c"] and by["a"]["recipe_epochs_x2"] > 0.95
    assert by["a"]["least"] == min(by["a"][k] for k in ("leave_one_task_out", "tasks_resampled", "seeds_resampled"))
    from w2sbench.leaderboard.site import _robustness_table, table

    assert "strong recipe: lr x0.5" in _robustness_table(doc["settings"]["tiny"]["entries"][0])
    assert ">Recipe</th>" in table(doc["settings"]["tiny"])


# ---- a leaderboard that trusts only its own reproduction (issue 28) -------------------------------------------
def _figures(doc: dict) -> dict:
    """Everything a reader sees per setting (entries, ranks, intervals, paired differences, robustness, flags,
    the floor), without the build's own timestamps and the submission files' hashes."""
    out = {}
    for name, setting in doc["settings"].items():
        entries = json.loads(json.dumps(setting["entries"]))
        for e in entries:
            e["provenance"].pop("sha256")
        out[name] = {**setting, "entries": entries, "pending": [p["method"] for p in setting["pending"]]}
    return out


def _forger(board: Path, name: str = "forged", accuracy: float = 0.95) -> tuple[Path, dict]:
    """A valid submission of its own code whose numbers were never produced by a run of it: accuracy 95%
    against the honest entries' 76-80%."""
    write_board(board.parent, {name: accuracy}, unreproduced=(name,))
    path = board / "submissions" / f"{name}.json"
    return path, load(path)


def test_a_reproduced_block_in_a_submission_is_refused_and_changes_nothing(tmp_path):
    """Issue 28: a file with invented results and a self-made `reproduced` block (anyone can compute the
    digest) validated, built with --strict and ranked first. The schema refuses the block with one line, and
    the board is what it was without the file."""
    from w2sbench.cache import hash_of

    board = write_board(tmp_path, {"alpha": 0.80, "beta": 0.76})
    honest = _figures(_built(board))
    path, forged = _forger(board)
    forged["reproduced"] = {
        "ok": True,
        "date": "2026-12-01T00:00:00+00:00",
        "commit": "0" * 40,
        "code_sha256": forged["method"]["source"]["sha256"],
        "submission_sha256": hash_of(forged),
        "tolerance": 0.01,
        "tasks": {},
        "failures": [],
    }
    path.write_text(json.dumps(forged))
    (p,) = _problems(forged, board)
    assert str(p).startswith("broken.json: field 'reproduced': a submission cannot carry its own record")
    valid, errors = validate_files(
        submission_files(board / "submissions"), bl.load(board / "baselines.json"), board / "submissions"
    )
    assert [str(e).split(": field")[0] for e in errors] == [str(path)]
    doc = build_leaderboard(
        valid, bl.load(board / "baselines.json"), board / "baselines.json", records_dir=board / "records"
    )
    assert _figures(doc) == honest


@pytest.mark.parametrize("forgery", ["wrong digest", "another file's record", "another method", "other code", "failed"])
def test_a_forged_record_changes_nothing(tmp_path, forgery):
    """A record that does not vouch for exactly this submission (its digest, its method, its code, ok) makes
    no entry: the submission is pending with the reason, and every rank and figure of the others is the same
    as without it."""
    from support.leaderboard import code_sha

    from w2sbench.leaderboard.records import write_record

    board = write_board(tmp_path, {"alpha": 0.80, "beta": 0.76})
    honest = _figures(_built(board))
    path, forged = _forger(board)
    record = make_record(forged, path)
    if forgery == "wrong digest":
        record["submission"]["sha256"] = "0" * 64
    elif forgery == "another file's record":
        record = load(board / "records" / "alpha.json")
    elif forgery == "another method":
        record["method"] = "alpha"
    elif forgery == "other code":
        record["code_sha256"] = code_sha("alpha")
    else:
        record.update(ok=False, failures=["tiny/rotten_tomatoes: w2s accuracy 76.0% reproduced vs 95.0% submitted"])
    write_record(record, board / "records", path)
    doc = _built(board)
    (pending,) = doc["settings"]["tiny"]["pending"]
    assert pending["method"] == "forged" and pending["reason"].startswith(
        {
            "wrong digest": "the submission changed after it was reproduced",
            "another file's record": "the submission changed after it was reproduced",
            "another method": "its record of reproduction names another method or other code",
            "other code": "its record of reproduction names another method or other code",
            "failed": "did not reproduce: tiny/rotten_tomatoes",
        }[forgery]
    )
    figures = _figures(doc)
    figures["tiny"]["pending"] = []
    assert figures == honest


def _reordered(encoded: list[str], n: int) -> list[str]:
    """The same counts per seed (so the same accuracies: validation passes), other examples."""
    from w2sbench.scoring import encode_correct

    return encode_correct(decode_correct(encoded, n)[:, ::-1])


def test_figures_come_from_the_reproduced_vectors_never_the_submitted_ones(tmp_path):
    """alpha's submitted correctness vectors edited apart from its predictions (reordered, counts kept) while
    its record holds the rerun's: every rank and figure on the board is the same as with the honest file."""
    board = write_board(tmp_path, {"alpha": 0.80, "beta": 0.76, "gamma": 0.72})
    before = _built(board)
    honest = _figures(before)
    path = board / "submissions" / "alpha.json"
    sub = load(path)
    rerun = {}
    for t, e in sub["results"][0]["tasks"].items():
        row = e["methods"]["alpha"]["w2s"]
        rerun[t] = row["correct"]
        row["correct"] = _reordered(row["correct"], e["n"]["test"])
    path.write_text(json.dumps(sub))
    from w2sbench.leaderboard.records import write_record

    write_record(make_record(sub, path, vectors={"tiny": rerun}), board / "records", path)
    forged = _built(board)
    assert forged["generated"]["submissions"] != before["generated"]["submissions"]  # the file did change
    assert _figures(forged) == honest


def test_forged_vectors_do_not_hide_a_copy(tmp_path):
    """A copy of alpha whose submitted vectors are reordered (so that, read from the file, it agrees with
    alpha on about half the examples) is still alpha's copy: the build reads its rerun's predictions."""
    board = write_board(tmp_path, {"alpha": 0.82, "beta": 0.76, "alpha_copy": ("alpha", 0.0)})
    path = board / "submissions" / "alpha_copy.json"
    sub = load(path)
    rerun = {}
    for t, e in sub["results"][0]["tasks"].items():
        row = e["methods"]["alpha_copy"]["w2s"]
        rerun[t] = row["correct"]
        row["correct"] = _reordered(row["correct"], e["n"]["test"])
    path.write_text(json.dumps(sub))
    from w2sbench.leaderboard.records import write_record

    write_record(make_record(sub, path, vectors={"tiny": rerun}), board / "records", path)
    by = {e["method"]: e for e in _built(board)["settings"]["tiny"]["entries"]}
    assert by["alpha_copy"]["duplicate_of"] == "alpha" and by["beta"]["rank"] == 2


def test_the_build_reads_flags_and_auc_from_the_record(tmp_path):
    """The submitted flags and AUC are claims too: an entry shows the rerun's."""
    board = write_board(tmp_path, {"alpha": 0.80, "beta": 0.76})
    path = board / "submissions" / "alpha.json"
    sub = load(path)
    from w2sbench.leaderboard.records import write_record

    record = make_record(sub, path)
    row = record["settings"]["tiny"]["tasks"]["sms_spam"]
    row["flags"] = [{"flag": "above_ceiling", "saw": "w2s 0.95 above the ceiling's interval"}]
    row["auroc_per_seed"] = [0.5, 0.6, 0.7]
    write_record(record, board / "records", path)
    alpha = next(e for e in _built(board)["settings"]["tiny"]["entries"] if e["method"] == "alpha")
    assert alpha["flags"] == [{"task": "sms_spam", **row["flags"][0]}]
    assert alpha["tasks"]["sms_spam"]["w2s_auroc"] == pytest.approx(0.6)
    assert alpha["claimed"]["pooled_pgr"] == sub["results"][0]["summary"]["alpha"]["pooled_pgr"]


# ---- recipe runs as entries, the teacher-free floor (issue 30 items 4 and 5) ---------------------------------
def test_the_recipe_runs_are_entries_scored_against_the_official_baselines(tmp_path):
    """leaderboard/recipes/tiny/epochs=2.json holds a and b trained under epochs x2: each is an entry of its own
    (`a @ epochs x2`), marked non-default recipe with the change named, its PGR computed against the official
    default-recipe weak and ceiling (not the run's own ceiling), and ranked with the submissions."""
    from w2sbench.schema_io import write_json

    board = write_board(tmp_path, {"a": 0.76, "b": 0.74, "c": 0.70})
    without = {e["method"]: e for e in _built(board)["settings"]["tiny"]["entries"]}
    recipes = board / "recipes" / "tiny"
    recipes.mkdir(parents=True)
    run = make_results({"a": 0.84, "b": 0.74}, perturbed=("epochs", 2.0))
    write_json(run, recipes / "epochs=2.json")
    tiny = _built(board, recipes_dir=board / "recipes")["settings"]["tiny"]
    by = {e["method"]: e for e in tiny["entries"]}
    assert set(by) == {"a", "b", "c", "a @ epochs x2", "b @ epochs x2"}
    better = by["a @ epochs x2"]
    assert better["non_default_recipe"] and better["recipe"] == {
        "of": "a",
        "knob": "epochs",
        "factor": 2.0,
        "change": "epochs x2",
        "file": str(recipes / "epochs=2.json"),
    }
    assert better["claimed"] is None and "epochs x2" in better["card"]["recipe_notes"]
    official = {t["name"]: t for t in tiny["tasks"]}
    for t, row in better["tasks"].items():  # the official weak and ceiling, the run's own w2s
        assert row["weak_acc"] == pytest.approx(official[t]["weak_acc"])
        assert row["ceiling_acc"] == pytest.approx(official[t]["ceiling_acc"])
        assert row["w2s_acc"] == pytest.approx(run["tasks"][t]["methods"]["a"]["w2s"]["accuracy"])
    rows = better["tasks"].values()
    assert better["pooled_pgr"] == pytest.approx(
        sum(r["w2s_acc"] - r["weak_acc"] for r in rows) / sum(r["ceiling_acc"] - r["weak_acc"] for r in rows)
    )
    assert better["rank"] == 1 and "a" in better["better_than"] and by["a @ epochs x2"]["robustness"] is None
    # placed among the submissions, counted in none of their ranks: theirs are what they were without the run
    assert better["method"] in by["a"]["paired"] and better["method"] not in by["a"]["tied_with"] + by["c"]["tied_with"]
    for m in ("a", "b", "c"):
        assert [by[m][k] for k in ("rank", "tied_with", "better_than", "pooled_pgr_ci")] == [
            without[m][k] for k in ("rank", "tied_with", "better_than", "pooled_pgr_ci")
        ]
    assert by["a"]["rank"] == 1 and by["c"]["rank"] > 1
    # b's run under epochs x2 draws its predictions like b's own: a copy of b
    assert by["b @ epochs x2"]["duplicate_of"] == "b"


def test_the_teacher_free_floor(tmp_path):
    """gamma is teacher-free at 75%; alpha (84%) beats it, beta (75.5%) does not resolve from it, delta
    (teacher-free, 66%) is below it: the floor is gamma, the best teacher-free entry by pooled PGR."""
    board = write_board(
        tmp_path,
        {"alpha": 0.84, "beta": ("gamma", 0.005), "gamma": 0.75, "delta": 0.66},
        teacher_free=("gamma", "delta"),
    )
    tiny = _built(board)["settings"]["tiny"]
    by = {e["method"]: e for e in tiny["entries"]}
    assert tiny["teacher_free_floor"] == {
        "method": "gamma",
        "pooled_pgr": by["gamma"]["pooled_pgr"],
        "pooled_pgr_ci": by["gamma"]["pooled_pgr_ci"],
    }
    assert by["alpha"]["beats_teacher_free"] is True and by["gamma"]["beats_teacher_free"] is None
    assert by["beta"]["beats_teacher_free"] is (by["beta"]["paired"]["gamma"]["d_pooled_pgr_ci"][0] > 0)
    assert by["delta"]["beats_teacher_free"] is False
    board2 = write_board(tmp_path / "none", {"alpha": 0.84, "beta": 0.75})
    tiny = _built(board2)["settings"]["tiny"]
    assert tiny["teacher_free_floor"] is None and {e["beats_teacher_free"] for e in tiny["entries"]} == {None}


# ---- the pull request's listing (w2sbench leaderboard changed) -------------------------------------------------
HOSTILE = ["x --help y.json", "-rf.json", "two\nlines.json", "$(touch pwned).json", "tab\there.json", "é ü.json"]


def _git(repo: Path, *args: str) -> None:
    import subprocess

    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture()
def pr_repo(tmp_path) -> Path:
    """A git repository with a leaderboard on `main`, and a branch `pr` checked out on top of it."""
    import shutil as sh

    if sh.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    subs = repo / "leaderboard" / "submissions"
    subs.mkdir(parents=True)
    (subs / "old.json").write_text("{}\n")
    (subs / "renamed_from.json").write_text('{"a": 1}\n')
    (repo / "leaderboard" / "records").mkdir()
    (repo / "leaderboard" / "records" / "old.json").write_text("{}\n")
    (repo / "leaderboard" / "baselines.json").write_text("{}\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    _git(repo, "checkout", "-q", "-b", "pr")
    return repo


def test_the_pull_request_listing_survives_hostile_file_names(pr_repo, capsys, monkeypatch):
    """Names with spaces, leading dashes, newlines, tabs, shell syntax and non-ASCII come back whole, renamed
    files under their new name, deleted ones not at all, and `-z` hands them to xargs -0 unchanged; nothing
    is run (the `$(touch pwned)` name creates no file)."""
    from w2sbench.leaderboard.changes import changed_submissions

    subs = pr_repo / "leaderboard" / "submissions"
    for name in HOSTILE:
        (subs / name).write_text("{}\n")
    (subs / "old.json").write_text('{"changed": true}\n')
    _git(pr_repo, "mv", "leaderboard/submissions/renamed_from.json", "leaderboard/submissions/renamed_to.json")
    (subs / "notes.txt").write_text("not a submission\n")
    _git(pr_repo, "add", "-A")
    _git(pr_repo, "commit", "-q", "-m", "pr")
    expected = sorted(str(subs / n) for n in [*HOSTILE, "old.json", "renamed_to.json"])
    assert sorted(changed_submissions("main", subs)) == expected
    monkeypatch.chdir(pr_repo)
    code, out, err = _run_cli(["leaderboard", "changed", "--base", "main", "-z"], capsys)
    assert code == 0 and sorted(out.split("\0")[:-1]) == expected
    code, out, err = _run_cli(["leaderboard", "changed", "--base", "main"], capsys)
    assert code == 0 and len(out.splitlines()) == len(expected) and "two\\nlines.json" in out  # escaped, one line
    assert not (pr_repo / "pwned").exists() and not list(pr_repo.rglob("pwned"))
    import subprocess

    listed = subprocess.run(  # a pipe like the workflow's: -z into xargs -0, each name one argument
        f"{sys.executable} -m w2sbench.cli leaderboard changed --base main -z | xargs -0 printf '[%s]'",
        shell=True,
        cwd=pr_repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert sorted(listed[1:-1].split("][")) == expected
    with pytest.raises(W2SError, match="give a git ref"):
        changed_submissions("--output=/tmp/x", subs)
    # reproduce --changed-since takes the same list, each name whole, and goes on past one that fails
    from w2sbench.leaderboard import reproduce as rep

    calls = []

    def fake(path, cache_root=None, root=None):
        calls.append(str(path))
        raise ConfigError(str(path), "method", "not a real submission")

    monkeypatch.setattr(rep, "reproduce_submission", fake)
    code, out, err = _run_cli(["leaderboard", "reproduce", "--changed-since", "main"], capsys)
    assert code == 1 and sorted(calls) == expected and err.count("w2sbench: error: ") == len(expected)
    assert "usage" not in (out + err).lower()  # `x --help y.json` is a name, not an option


@pytest.mark.parametrize(
    "change",
    [
        "add a record",
        "edit a record",
        "delete a record",
        "rename a record away",
        "edit baselines.json",
        "add a recipe run",
        "edit leaderboard.json",
        "link records",
    ],
)
def test_a_pull_request_that_changes_trusted_data_is_refused(pr_repo, capsys, monkeypatch, change):
    lb = pr_repo / "leaderboard"
    if change == "add a record":
        (lb / "records" / "mine.json").write_text("{}\n")
    elif change == "edit a record":
        (lb / "records" / "old.json").write_text('{"ok": true}\n')
    elif change == "delete a record":
        _git(pr_repo, "rm", "-q", "leaderboard/records/old.json")
    elif change == "rename a record away":
        _git(pr_repo, "mv", "leaderboard/records/old.json", "leaderboard/old-record.json")
    elif change == "edit baselines.json":
        (lb / "baselines.json").write_text('{"settings": {}}\n')
    elif change == "add a recipe run":
        (lb / "recipes" / "tiny").mkdir(parents=True)
        (lb / "recipes" / "tiny" / "epochs=2.json").write_text("{}\n")
    elif change == "edit leaderboard.json":
        (lb / "leaderboard.json").write_text("{}\n")
    else:
        shutil.rmtree(lb / "records")
        (lb / "records").symlink_to(lb / "submissions")
    (lb / "submissions" / "mine.json").write_text("{}\n")
    _git(pr_repo, "add", "-A")
    _git(pr_repo, "commit", "-q", "-m", "pr")
    monkeypatch.chdir(pr_repo)
    code, out, err = _run_cli(["leaderboard", "changed", "--base", "main"], capsys)
    assert code == 1 and "trusted data" in err and "leaderboard/" in err
    assert out.splitlines() == [str(lb / "submissions" / "mine.json")]


def test_reproduce_missing_reads_the_records(tmp_path, capsys, monkeypatch):
    """`reproduce --missing` reruns a submission without a record, one whose record is of other contents and
    one whose record was made under another harness; not one whose record is current (ok or failed: a failed
    reproduction fails again under the same code and harness). One that cannot be reproduced is one line,
    and the others still are."""
    from w2sbench.leaderboard import reproduce as rep
    from w2sbench.leaderboard.records import write_record
    from w2sbench.methods.identity import harness_source

    board = write_board(
        tmp_path, {"fresh": 0.8, "failed": 0.8, "edited": 0.8, "old_harness": 0.8, "new": 0.8}, unreproduced=("new",)
    )
    harness = harness_source()["sha256"]
    for name in ("fresh", "failed", "edited", "old_harness"):
        path = board / "submissions" / f"{name}.json"
        record = make_record(load(path), path, ok=name != "failed")
        record["harness_sha256"] = "2" * 64 if name == "old_harness" else harness
        write_record(record, board / "records", path)
    edited = load(board / "submissions" / "edited.json")
    edited["method"]["description"] += " (edited)"
    (board / "submissions" / "edited.json").write_text(json.dumps(edited))
    calls = []

    def fake(path, cache_root=None, root=None):
        calls.append(Path(path).stem)
        if Path(path).stem == "new":
            raise ConfigError(str(path), "method.source.sha256", "the code found hashes to 0000...")
        record = make_record(load(path), path)
        record["harness_sha256"] = harness
        return record

    monkeypatch.setattr(rep, "reproduce_submission", fake)
    args = ["leaderboard", "reproduce", "--missing", "--submissions-dir", str(board / "submissions")]
    code, out, err = _run_cli([*args, "--records", str(board / "records")], capsys)
    assert sorted(calls) == ["edited", "new", "old_harness"]
    assert code == 1 and err.count("w2sbench: error: ") == 1 and "new.json: field 'method.source.sha256'" in err
    assert out.count("reproduced: ") == 2 and (board / "records" / "edited.json").is_file()
    calls.clear()
    code, out, err = _run_cli([*args, "--records", str(board / "records")], capsys)
    assert calls == ["new"]  # only the one that could not be reproduced is tried again
