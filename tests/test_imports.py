"""Imports point down: every module of w2sbench belongs to one layer (ARCHITECTURE.md), imports only from its
own layer or below, and no group of modules imports itself round (function-level imports included, since
those hid three cycles). Read from the source with ast: nothing is imported to check it."""

from __future__ import annotations

import ast
from pathlib import Path

import w2sbench

PACKAGE = Path(w2sbench.__file__).resolve().parent

# Lowest first. A module's layer is the longest prefix listed; a layer may import its own and lower ones.
LAYERS = [
    (
        "foundation",
        (
            *("_version", "errors", "paths", "schema_io", "provenance"),
            *("cache", "scoring", "isolation.replies", "engine.progress"),
        ),
    ),
    ("processes", ("isolation.processes",)),
    # the recipe is a setting's config; quotas are the sandbox's limits as a setting declares them
    ("data and config", ("tasks", "settings", "isolation.quotas", "training.recipe")),
    ("models: training, inference, model resolution", ("training", "inference", "model_folders")),
    ("methods", ("methods",)),
    ("isolation", ("isolation",)),  # sandbox, sealed, described, wiring
    ("engine", ("engine",)),  # units, suspicion, ledger, inputs, stages, record, pipeline, executors, ray_executor
    ("results and reports", ("reports",)),
    ("leaderboard", ("leaderboard",)),
    ("interfaces", ("api", "sweep", "serve", "cli", "__main__", "")),  # "": the package root, the public API
]


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The w2sbench modules `name` imports anywhere in its file (names relative to the package)."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name == "w2sbench" or a.name.startswith("w2sbench.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ["w2sbench", *name.split(".")] if name else ["w2sbench"]
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "w2sbench" or module.startswith("w2sbench."):
                targets = [f"{module}.{a.name}" for a in node.names]  # a submodule, else a name in `module`
        for target in targets:
            rel = target.removeprefix("w2sbench").removeprefix(".")
            while rel not in known and "." in rel:
                rel = rel.rsplit(".", 1)[0]
            if rel not in known and "." not in rel:
                rel = ""  # a name from the package root
            if rel in known and rel != name:
                out.add(rel)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def layer(module: str) -> int:
    best, found = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or (prefix and module.startswith(prefix + ".")):
                if len(prefix) > best:
                    best, found = len(prefix), i
    assert found is not None, f"module w2sbench.{module} has no layer: add it to LAYERS and ARCHITECTURE.md"
    return found


def cycles(g: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in g:
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_from_a_layer_above_its_own():
    upward = [
        f"w2sbench.{m or '(root)'} ({LAYERS[layer(m)][0]}) imports w2sbench.{d or '(root)'} ({LAYERS[layer(d)][0]})"
        for m, deps in graph().items()
        for d in sorted(deps)
        if layer(d) > layer(m)
    ]
    assert upward == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def packages(g: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between top-level packages and modules (`engine`, `training`, `cli`): an edge where any module
    of one imports any module of the other."""
    out: dict[str, set[str]] = {}
    for m, deps in g.items():
        top = m.split(".")[0]
        out.setdefault(top, set()).update(d.split(".")[0] for d in deps if d.split(".")[0] != top)
    return out


def test_no_package_imports_itself_round():
    """Subpackages too: training and inference once imported each other (fine-tuning reads the tokenizer,
    the backends released memory through training's module) with no module-level cycle to show it."""
    assert cycles(packages(graph())) == []


def architecture_layers() -> list[tuple[str, ...]]:
    """ARCHITECTURE.md's layer table: per row, the modules its second column names before any colon
    (`settings/` -> settings, `isolation/replies` -> isolation.replies, "the package root" -> "")."""
    rows = []
    for line in (PACKAGE.parent / "ARCHITECTURE.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[1].startswith("`"):
            continue
        listed = cells[1].split(":")[0]
        names = [n.strip("/").replace("/", ".") for n in listed.split("`")[1::2]]
        rows.append(tuple(sorted(names + ([""] if "package root" in listed else []))))
    return rows


def test_the_architecture_table_is_this_tests_table():
    assert architecture_layers() == [tuple(sorted(prefixes)) for _, prefixes in LAYERS]


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    """The control: the parser finds an import inside a function, relative imports at each level, and the
    cycle finder finds a planted cycle."""
    known = {"a": tmp_path / "a.py", "b": tmp_path / "b.py", "pkg": tmp_path / "pkg" / "__init__.py"}
    known["a"].write_text("def f():\n    from .b import g\n")
    known["b"].write_text("from . import a\nfrom w2sbench.pkg import x\n")
    known["pkg"].parent.mkdir()
    known["pkg"].write_text("from ..a import f\n")
    assert imports("a", known["a"], known) == {"b"}
    assert imports("b", known["b"], known) == {"a", "pkg"}
    assert imports("pkg", known["pkg"], known) == {"a"}
    assert cycles({"a": {"b"}, "b": {"a", "pkg"}, "pkg": {"a"}}) == [{"a", "b", "pkg"}]
    # two packages that import each other through different modules: no module cycle, a package cycle
    g = {"x.one": {"y.two"}, "y.two": set(), "y.three": {"x.four"}, "x.four": set()}
    assert cycles(g) == []
    assert cycles(packages(g)) == [{"x", "y"}]
