"""Small inline SVG charts: no script, no font, no file; they scale with the page.

Each function returns one ``<svg>`` element as text, with a ``<title>`` for screen readers.
Charts are drawn in a narrow view box (about the width of a phone) and grow to at most
``max-width`` on wide screens, so their text stays readable at both sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = {"member": "#1f5fa8", "industry": "#8a8f98", "grid": "#d9dde3", "highlight": "#c2410c",
           "dot": "#7b8794", "text": "#2b2f36"}


def axis_floor(values: Sequence[float | None], steps: Sequence[float] = (99, 98, 95, 90, 80, 50, 0)) -> float:
    """The highest of ``steps`` at or below every value (with a little room): the low end of a
    0-100 axis that still shows differences between scores that are all close to 100."""
    known = [v for v in values if v is not None]
    low = min(known) if known else 0.0
    return next((s for s in steps if s <= low - 0.2 * (100 - low) or s == 0), 0.0)


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _open(width: int, height: int, title: str, max_width: int) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
            f'class="chart" style="max-width:{max_width}px" aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title>")


def line_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None], str]], *,
               title: str, lo: float = 0.0, hi: float = 100.0, width: int = 360, height: int = 165) -> str:
    """Lines over ``labels`` (periods); ``series`` holds (name, values, "member"|"industry")."""
    left, right, top, bottom = 34, 10, 12, 44
    pw, ph = width - left - right, height - top - bottom
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return left + (pw * (i + 0.5) / n)

    def y(v: float) -> float:
        return top + ph * (1 - (min(max(v, lo), hi) - lo) / ((hi - lo) or 1))

    out = [_open(width, height, title, 640)]
    for tick in (lo, (lo + hi) / 2, hi):
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                   f'stroke="{PALETTE["grid"]}" stroke-width="1"/>')
        out.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end" '
                   f'fill="{PALETTE["text"]}">{_fmt(tick)}</text>')
    step = max(1, -(-n // 6))
    for i, label in enumerate(labels):
        if (n - 1 - i) % step == 0:          # counted back from the last period, which is always shown
            out.append(f'<text x="{x(i):.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle" '
                       f'fill="{PALETTE["text"]}">{escape(str(label))}</text>')
    for _name, values, role in series:
        color = PALETTE.get(role, PALETTE["member"])
        dash = ' stroke-dasharray="5 4"' if role == "industry" else ""
        for segment in _segments(values):
            pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in segment)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2.2"{dash}/>')
        if role != "industry":
            out += [f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{color}"><title>{escape(str(labels[i]))}: '
                    f'{_fmt(v)}</title></circle>' for i, v in enumerate(values) if v is not None]
    out.append(_legend(series, height - 10, left))
    out.append("</svg>")
    return "".join(out)


def _segments(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    segments, current = [], []
    for i, v in enumerate(values):
        if v is None:
            if current:
                segments.append(current)
            current = []
        else:
            current.append((i, v))
    if current:
        segments.append(current)
    return segments


def _legend(series: Sequence[tuple[str, Sequence[float | None], str]], y: int, x0: int) -> str:
    out, x = [], x0
    for name, _, role in series:
        color = PALETTE.get(role, PALETTE["member"])
        dash = ' stroke-dasharray="5 4"' if role == "industry" else ""
        out.append(f'<line x1="{x}" x2="{x + 18}" y1="{y - 4}" y2="{y - 4}" stroke="{color}" stroke-width="2.2"{dash}/>'
                   f'<text x="{x + 22}" y="{y}" font-size="11" fill="{PALETTE["text"]}">{escape(name)}</text>')
        x += 30 + 7 * len(name)
    return "".join(out)


def sparkline(values: Sequence[float | None], *, title: str, width: int = 120, height: int = 30) -> str:
    """A trend without axes: the last value marked."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    lo, hi = min(known), max(known)
    span = (hi - lo) or 1.0
    n = max(len(values) - 1, 1)

    def pt(i: int, v: float) -> tuple[float, float]:
        return 2 + (width - 4) * i / n, height - 3 - (height - 6) * (v - lo) / span

    out = [_open(width, height, title, width * 2).replace('class="chart"', 'class="spark"')]
    for segment in _segments(values):
        pts = " ".join("{:.1f},{:.1f}".format(*pt(i, v)) for i, v in segment)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{PALETTE["member"]}" stroke-width="1.6"/>')
    last = max(i for i, v in enumerate(values) if v is not None)
    cx, cy = pt(last, values[last])
    out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="{PALETTE["highlight"]}"/></svg>')
    return "".join(out)


def strip(values: Sequence[float], mine: float | None, *, title: str, lo: float = 0.0, hi: float = 100.0,
          width: int = 220, height: int = 34) -> str:
    """Every member's score as an anonymous dot on one axis (no text); the reader's own dot highlighted."""
    left, right = 12, 12

    def x(v: float) -> float:
        return left + (width - left - right) * (min(max(v, lo), hi) - lo) / ((hi - lo) or 1)

    out = [_open(width, height, title, width).replace('class="chart"', 'class="strip"'),
           f'<line x1="{left}" x2="{width - right}" y1="17" y2="17" stroke="{PALETTE["grid"]}" stroke-width="2"/>']
    for tick in (lo, (lo + hi) / 2, hi):
        out.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="11" y2="23" stroke="{PALETTE["grid"]}" '
                   'stroke-width="1.5"/>')
    skipped_mine = False
    for v in values:
        if mine is not None and not skipped_mine and abs(v - mine) < 1e-9:
            skipped_mine = True
            continue
        out.append(f'<circle cx="{x(v):.1f}" cy="17" r="5" fill="{PALETTE["dot"]}" fill-opacity="0.6"/>')
    if mine is not None:
        out.append(f'<circle cx="{x(mine):.1f}" cy="17" r="7" fill="{PALETTE["highlight"]}" stroke="#fff" '
                   f'stroke-width="2"><title>you: {_fmt(mine)}</title></circle>')
    out.append("</svg>")
    return "".join(out)
