"""docs/pgr.svg, the README's figure: what weak-to-strong supervision is and what PGR measures, drawn with
the seed leaderboard's own numbers (vanilla on rotten_tomatoes, setting tiny). Plain SVG, no dependencies:

    python docs/make_pgr_figure.py            # rewrites docs/pgr.svg from leaderboard/leaderboard.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTING, TASK, METHOD = "tiny", "rotten_tomatoes", "vanilla"


def numbers(board: dict) -> dict:
    setting = board["settings"][SETTING]
    task = next(t for t in setting["tasks"] if t["name"] == TASK)
    entry = next(e for e in setting["entries"] if e["method"] == METHOD)
    return {
        "weak": 100 * task["weak_acc"],
        "ceiling": 100 * task["ceiling_acc"],
        "w2s": 100 * entry["tasks"][TASK]["w2s_acc"],
        "weak_model": setting["weak_model"].rsplit("/", 1)[-1],
        "strong_model": setting["strong_model"].rsplit("/", 1)[-1],
        "n": task["n"],
    }


def svg(v: dict) -> str:
    width, left, right = 780, 40, 40
    lo, hi = 70.0, 86.0

    def x(acc: float) -> float:
        return left + (width - left - right) * (acc - lo) / (hi - lo)

    xw, xs, xc = x(v["weak"]), x(v["w2s"]), x(v["ceiling"])
    pgr = (v["w2s"] - v["weak"]) / (v["ceiling"] - v["weak"])
    n = v["n"]
    box = 'rx="6" fill="#f5f7f9" stroke="#9aa3ad"'
    text = 'font-family="system-ui, sans-serif"'
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 318" width="{width}" height="318" {text} '
        'font-size="13" role="img" aria-label="Weak-to-strong supervision and PGR">',
        '<rect width="100%" height="100%" fill="#fff"/>',
        # the three models
        f'<rect x="8" y="14" width="248" height="62" {box}/>',
        f'<text x="132" y="35" text-anchor="middle" font-weight="600">weak model ({v["weak_model"]})</text>',
        f'<text x="132" y="53" text-anchor="middle" font-size="12" fill="#5d6670">trained on {n["train_label"]:,} '
        "true labels</text>",
        '<text x="132" y="69" text-anchor="middle" font-size="12" fill="#5d6670">(train_label)</text>',
        f'<rect x="266" y="14" width="248" height="62" {box} stroke-width="2" style="stroke:#1b5fad"/>',
        '<text x="390" y="35" text-anchor="middle" font-weight="600" fill="#1b5fad">w2s: the strong model</text>',
        '<text x="390" y="53" text-anchor="middle" font-size="12" fill="#5d6670">taught by the method from the '
        "weak</text>",
        f'<text x="390" y="69" text-anchor="middle" font-size="12" fill="#5d6670">model\'s labels on '
        f"{n['train_unlabel']:,} other texts</text>",
        f'<rect x="524" y="14" width="248" height="62" {box}/>',
        f'<text x="648" y="35" text-anchor="middle" font-weight="600">ceiling: {v["strong_model"]}</text>',
        '<text x="648" y="53" text-anchor="middle" font-size="12" fill="#5d6670">the strong model trained on '
        "the</text>",
        '<text x="648" y="69" text-anchor="middle" font-size="12" fill="#5d6670">true labels of the same texts</text>',
        '<path d="M256,45 L264,45" stroke="#5d6670" stroke-width="1.5" marker-end="url(#arrow)"/>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#5d6670"/></marker></defs>',
        f'<text x="{width / 2}" y="104" text-anchor="middle" fill="#5d6670">each scored on the same sealed '
        f"test split ({n['test']:,} examples); accuracy, %</text>",
        # the axis
        f'<line x1="{left}" x2="{width - right}" y1="190" y2="190" stroke="#9aa3ad"/>',
    ]
    for tick in range(70, 87, 2):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="190" y2="195" stroke="#9aa3ad"/>')
        parts.append(
            f'<text x="{x(tick):.1f}" y="210" text-anchor="middle" font-size="11" fill="#5d6670">{tick}</text>'
        )
    parts += [
        # the gap and the part recovered
        f'<rect x="{xw:.1f}" y="160" width="{xc - xw:.1f}" height="30" fill="#e9eef5"/>',
        f'<rect x="{xw:.1f}" y="160" width="{xs - xw:.1f}" height="30" fill="#b9d0ee"/>',
        f'<circle cx="{xw:.1f}" cy="175" r="6" fill="#5d6670"/>',
        f'<circle cx="{xs:.1f}" cy="175" r="6" fill="#1b5fad"/>',
        f'<circle cx="{xc:.1f}" cy="175" r="6" fill="#1d2125"/>',
        f'<text x="{xw:.1f}" y="150" text-anchor="middle">weak {v["weak"]:.1f}</text>',
        f'<text x="{xs:.1f}" y="136" text-anchor="middle" fill="#1b5fad" font-weight="600">w2s {v["w2s"]:.1f}</text>',
        f'<text x="{xc:.1f}" y="150" text-anchor="middle">ceiling {v["ceiling"]:.1f}</text>',
        f'<path d="M{xw:.1f},228 L{xw:.1f},234 L{xc:.1f},234 L{xc:.1f},228" fill="none" stroke="#5d6670"/>',
        f'<text x="{(xw + xc) / 2:.1f}" y="250" text-anchor="middle" fill="#5d6670">gap: '
        f"{v['ceiling'] - v['weak']:.1f} points</text>",
        f'<text x="{(xw + xs) / 2:.1f}" y="179" text-anchor="middle" font-size="12" fill="#1b5fad">recovered: '
        f"{v['w2s'] - v['weak']:.1f}</text>",
        f'<text x="{width / 2}" y="282" text-anchor="middle" font-size="15">PGR = (w2s &#8722; weak) / (ceiling '
        f"&#8722; weak) = {v['w2s'] - v['weak']:.1f} / {v['ceiling'] - v['weak']:.1f} = <tspan font-weight='700' "
        f"fill='#1b5fad'>{pgr:.2f}</tspan></text>",
        f'<text x="{width / 2}" y="304" text-anchor="middle" font-size="12" fill="#5d6670">{METHOD} on {TASK}, '
        f"setting {SETTING}: 0 = no better than the weak model, 1 = as good as the ceiling</text>",
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def main() -> None:
    board = json.loads((ROOT / "leaderboard" / "leaderboard.json").read_text())
    out = ROOT / "docs" / "pgr.svg"
    out.write_text(svg(numbers(board)))
    print(out, file=sys.stderr)


if __name__ == "__main__":
    main()
