"""The built leaderboard site in a real browser: Debian's chromium driven headless by playwright (no
browser download), at 390 and 1,400 pixels wide. The ranking and the robustness chart are on the first
screen at both widths; every submission appears with its PGR; the table fits with the per-task columns
folded and sorting by a task column reorders the rows; the JSON download, the settings' tabs, a method page
and the page on how to submit work; screenshots go to test-artifacts/. Run on a synthetic board (ties,
teacher-free and non-default-recipe marks) and on the repository's own seed leaderboard, built afresh."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from support.leaderboard import load, write_board  # noqa: E402

from w2sbench.cli import main  # noqa: E402
from w2sbench.paths import repo_root  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = repo_root() / "test-artifacts"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="chromium is not installed (apt-get install -y chromium)"
)


def _build(board: Path, out: Path) -> tuple[Path, dict]:
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "leaderboard",
                "build",
                "--strict",
                "--submissions-dir",
                str(board / "submissions"),
                "--baselines",
                str(board / "baselines.json"),
                "-o",
                str(out / "leaderboard.json"),
                "--site",
                str(out / "site"),
            ]
        )
        raise SystemExit(0)
    assert not exc.value.code
    return out / "site", load(out / "leaderboard.json")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the Python package only)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def _rows(page, table: str) -> list[str]:
    return page.eval_on_selector_all(f"{table} tbody tr.entry", "rows => rows.map(r => r.dataset.method)")


def _by_task(entries: list[dict], task: str, descending: bool) -> list[str]:
    """Expected order after sorting by a task column: by PGR, undefined PGR last either way."""
    defined = [e for e in entries if e["tasks"][task]["defined"]]
    rest = [e["method"] for e in entries if not e["tasks"][task]["defined"]]
    defined.sort(key=lambda e: e["tasks"][task]["pgr"], reverse=descending)
    return [e["method"] for e in defined] + rest


def _first_screen(page, setting: str, width: int, height: int) -> None:
    """The ranking and the robustness chart are on the first screen, whole; nothing is wider than the page."""
    for figure in (f"#forest-{setting}", f"#rankchart-{setting}"):
        box = page.locator(figure).bounding_box()
        assert box is not None, figure
        assert box["y"] >= 0 and box["y"] + box["height"] <= height, (width, figure, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (width, figure, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def check_site(browser, site_dir: Path, doc: dict, shot: str, method: str) -> None:
    setting = next(iter(doc["settings"].values()))
    entries, table = setting["entries"], f"#table-{setting['name']}"
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in ((390, 844), (1400, 900)):  # a phone, and a laptop's 1,352-pixel column
        page = browser.new_page(viewport={"width": width, "height": height})
        seen: list[str] = []
        page.on("pageerror", lambda e, seen=seen: seen.append(str(e)))
        page.goto((site_dir / "index.html").resolve().as_uri())
        _first_screen(page, setting["name"], width, height)
        page.screenshot(path=str(ARTIFACTS / f"{shot}-{width}.png"))
        assert seen == []
        page.close()

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((site_dir / "index.html").resolve().as_uri())
    # the ranking: every submission in board order; the robustness chart: every ranked one (the reference
    # methods' reruns under a recipe change are columns of the chart and rows of the table, not of these)
    submitted = [e for e in entries if not e.get("recipe")]
    forest = page.eval_on_selector_all(
        f"#forest-{setting['name']} .f-row[data-method]", "rs => rs.map(r => r.dataset.method)"
    )
    assert forest == [e["method"] for e in submitted]
    chart = page.eval_on_selector_all(f"#rankchart-{setting['name']} tbody tr", "rs => rs.map(r => r.dataset.method)")
    assert chart == [e["method"] for e in submitted if e["rank"] is not None]
    # every entry appears in the table, in rank order, with its pooled and mean PGR as printed to 2 decimals
    assert _rows(page, table) == [e["method"] for e in entries]
    assert len(submitted) == len(doc["generated"]["submissions"])
    for e in entries:
        for cls in ("pooled", "mean"):
            cell = page.locator(f'{table} tr[data-method="{e["method"]}"] td.{cls}').inner_text()
            value = e[f"{cls}_pgr"]
            assert (f"{value:+.2f}" if value is not None else "undef.") in cell
    # the table fits the column with the per-task columns folded away; they are one click away
    wrap = page.locator(f".table-wrap:has({table})")
    assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth")
    task = setting["tasks"][-1]["name"]
    header = page.locator(f'{table} th[data-task="{task}"]')
    assert not header.is_visible()
    page.locator(f'button.toggle-tasks[data-table="table-{setting["name"]}"]').click()
    assert header.is_visible() and page.locator(f"{table} tr.baseline").first.is_visible()
    # the paired-difference matrix: one row per entry with a pooled PGR
    paired = page.locator(f"#paired-{setting['name']} tbody tr")
    assert paired.count() == sum(e["pooled_pgr"] is not None for e in entries)
    assert page.locator("svg.pgr-plot").count() == len(doc["settings"])

    # sorting by a task column reorders the rows by that task's PGR, descending then ascending
    header.click()
    assert _rows(page, table) == _by_task(entries, task, descending=True)
    header.click()
    assert _rows(page, table) == _by_task(entries, task, descending=False)
    assert _rows(page, table) != [e["method"] for e in entries]
    page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)

    # the JSON download is the embedded leaderboard, from file:// too
    assert page.locator("#download-json").get_attribute("href").startswith("blob:")
    # another setting is one tab away
    names = list(doc["settings"])
    if len(names) > 1:
        page.locator(f'.tab[data-setting="{names[1]}"]').click()
        assert page.locator(f"#forest-{names[1]}").is_visible() and not page.locator(table).is_visible()
        page.locator(f'.tab[data-setting="{names[0]}"]').click()

    # a method page opens from its link and shows its card
    page.locator(f'{table} a[href="methods/{method}.html"]').click()
    page.wait_for_load_state()
    assert page.locator("#method-name").inner_text() == method
    card = page.locator("section.card").inner_text()
    entry = next(e for e in entries if e["method"] == method)
    assert entry["card"]["description"] in card and entry["card"]["license"] in card
    page.screenshot(path=str(ARTIFACTS / f"{shot}-method.png"), full_page=True)
    # and the page on how to submit
    page.goto((site_dir / "submit.html").resolve().as_uri())
    assert "leaderboard reproduce" in page.locator("main").inner_text()
    assert errors == []
    page.close()


def test_synthetic_board_in_chromium(browser, tmp_path):
    board = write_board(
        tmp_path,
        {"alpha": 0.82, "beta": 0.78, "gamma": 0.66, "delta": 0.74},
        teacher_free=("gamma",),
        non_default=("beta",),
    )
    site, doc = _build(board, tmp_path / "out")
    html = (site / "index.html").read_text()
    # the legend, the ranking and the table
    assert html.count('class="mark tf"') == 1 + 2 and html.count('class="mark ndr"') == 1 + 2
    check_site(browser, site, doc, "leaderboard-synthetic", "beta")


def test_repository_seed_leaderboard_in_chromium(browser, tmp_path):
    board = repo_root() / "leaderboard"
    if not (board / "baselines.json").is_file():
        pytest.skip("no seed leaderboard yet (bash leaderboard/make_seed.sh)")
    if not (board / "records").is_dir():
        pytest.skip("the repository's seed predates records of reproduction: bash leaderboard/make_seed.sh")
    site, doc = _build(board, tmp_path)
    assert {s["method"] for s in doc["generated"]["submissions"]} == {
        load(p)["method"]["name"] for p in (board / "submissions").glob("*.json")
    }
    check_site(browser, site, doc, "leaderboard", "vanilla")
