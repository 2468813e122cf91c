"""A picture of each board's panel layout (SVG), drawn from its Grafana JSON for the docs.

Grafana itself does not run here, so docs/dashboards.md shows each board as its grid: every panel a box at its
``gridPos`` (24 columns), with its title and type. ``python deploy/grafana/build.py`` writes them under
``docs/img/dashboards/``; ``--check`` and the tests keep them current.
"""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["svg_of", "text_grid"]

COL_PX, ROW_PX, PAD = 40, 26, 4
COLOURS = {"stat": "#e8f1fb", "timeseries": "#eef7ee", "table": "#fdf3e6", "state-timeline": "#f5ecf9"}


def _fit(title: str, width_px: int, px_per_char: float = 6.6) -> str:
    n = max(3, int((width_px - 2 * PAD - 8) / px_per_char))
    return title if len(title) <= n else title[: n - 1] + "\u2026"


def svg_of(dash: dict[str, Any]) -> str:
    """The layout of one dashboard as an SVG document (deterministic: same JSON, same bytes)."""
    panels = dash["panels"]
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels) * ROW_PX + 34
    width = 24 * COL_PX
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="{PAD}" y="20" font-size="14" font-weight="bold">{escape(dash["title"])}</text>']
    for p in panels:
        g = p["gridPos"]
        x, y = g["x"] * COL_PX + PAD / 2, g["y"] * ROW_PX + 30 + PAD / 2
        w, h = g["w"] * COL_PX - PAD, g["h"] * ROW_PX - PAD
        fill = COLOURS.get(p["type"], "#f2f2f2")
        out.append(f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="3" fill="{fill}" stroke="#8a8a8a"/>')
        out.append(f'<text x="{x + PAD + 2:g}" y="{y + 15:g}" font-weight="bold">{escape(_fit(p["title"], w))}</text>')
        out.append(f'<text x="{x + PAD + 2:g}" y="{y + 29:g}" fill="#666666">{escape(p["type"])}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def text_grid(dash: dict[str, Any]) -> str:
    """The same layout as a Markdown table: each panel's row, column span, type and title."""
    rows = ["| y | x | w x h | type | panel |", "| --- | --- | --- | --- | --- |"]
    for p in sorted(dash["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])):
        g = p["gridPos"]
        rows.append(f"| {g['y']} | {g['x']} | {g['w']} x {g['h']} | {p['type']} | {p['title'].replace('|', '/')} |")
    return "\n".join(rows) + "\n"
