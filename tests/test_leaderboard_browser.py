"""The built leaderboard site in a real browser: Debian's chromium driven headless by playwright (no
browser download). Every submission appears with its PGR, sorting by a task column reorders the rows,
a method page opens; a screenshot goes to test-artifacts/."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_leaderboard_fixtures import load, write_board  # noqa: E402

from w2sbench.cli import main  # noqa: E402
from w2sbench.paths import repo_root  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (apt-get install -y chromium)"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, dict]:
    board = write_board(tmp_path_factory.mktemp("site"), {"alpha": 0.82, "beta": 0.78, "gamma": 0.66, "delta": 0.74},
                        teacher_free=("gamma",), non_default=("beta",))
    with pytest.raises(SystemExit) as exc:
        main(["leaderboard", "build", "--submissions-dir", str(board / "submissions"), "--baselines",
              str(board / "baselines.json"), "-o", str(board / "leaderboard.json"), "--site", str(board / "site")])
        raise SystemExit(0)
    assert not exc.value.code
    return board / "site", load(board / "leaderboard.json")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the Python package only)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def _rows(page) -> list[str]:
    return page.eval_on_selector_all("#table-tiny tbody tr.entry", "rows => rows.map(r => r.dataset.method)")


def test_site_in_chromium(site, browser):
    site_dir, doc = site
    entries = doc["settings"]["tiny"]["entries"]
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((site_dir / "index.html").resolve().as_uri())

    # every submission appears, in rank order, with its mean PGR as printed to 2 decimals
    assert _rows(page) == [e["method"] for e in entries]
    for e in entries:
        cell = page.locator(f'#table-tiny tr[data-method="{e["method"]}"] td.mean').inner_text()
        assert f"{e['mean_pgr']:+.2f}" in cell
    assert page.locator("svg.pgr-plot circle").count() >= len(entries) * 2

    # sorting by a task column reorders rows by that task's PGR, descending then ascending
    task = "sms_spam"
    by_task = sorted(entries, key=lambda e: -e["tasks"][task]["pgr"])
    page.locator(f'th[data-task="{task}"]').click()
    assert _rows(page) == [e["method"] for e in by_task]
    page.locator(f'th[data-task="{task}"]').click()
    assert _rows(page) == [e["method"] for e in reversed(by_task)]
    assert _rows(page) != [e["method"] for e in entries] or len(entries) < 2

    out = repo_root() / "test-artifacts"
    out.mkdir(exist_ok=True)
    page.screenshot(path=str(out / "leaderboard.png"), full_page=True)

    # a method page opens from its link and shows its card
    page.locator('#table-tiny a[href="methods/beta.html"]').click()
    page.wait_for_load_state()
    assert page.locator("#method-name").inner_text() == "beta"
    assert "trains 3x longer" in page.locator("section.card").inner_text()
    page.screenshot(path=str(out / "leaderboard-method.png"), full_page=True)
    assert errors == []
