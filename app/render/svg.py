"""SVG pictures of a network and of a loss curve, written by hand (standard library only).

A hand-written SVG is a few dozen lines of elements; a plotting library would add a
large dependency and its start-up time to a service that draws circles, lines and text.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from xml.sax.saxutils import escape

POSITIVE, NEGATIVE = "#2563eb", "#dc2626"
FONT = "font-family='ui-sans-serif, system-ui, sans-serif'"


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _svg(width: float, height: float, body: list[str], title: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{height:.0f}' "
        f"viewBox='0 0 {width:.0f} {height:.0f}' role='img'>"
        f"<title>{escape(title)}</title><rect width='100%' height='100%' fill='white'/>" + "".join(body) + "</svg>"
    )


def network_diagram(
    weights: Sequence[Sequence[Sequence[float]]],
    activations: Sequence[str],
    values: Sequence[Sequence[float]] | None = None,
    gradients: Sequence[Sequence[Sequence[float]]] | None = None,
    caption: str = "",
) -> str:
    """Columns of neurons (inputs, then each layer) joined by one edge per weight ``weights[k][j][i]``.

    Edge width grows with ``|w|``, blue for positive and red for negative. ``values[c]`` labels
    the neurons of column ``c`` (inputs first) and ``gradients[k][j][i]`` the edges, when given.
    """
    widths = [len(weights[0][0])] + [len(w) for w in weights]
    col_gap, row_gap, margin, radius = 190.0, 64.0, 70.0, 17.0
    captions = [c for c in caption.split("; ") if c]
    height = margin * 2 + row_gap * (max(widths) - 1) + 16 * len(captions)
    width = max(margin * 2 + col_gap * (len(widths) - 1), 420.0)

    def pos(col: int, row: int) -> tuple[float, float]:
        top = (height - 16 * len(captions) - row_gap * (widths[col] - 1)) / 2
        return margin + col * col_gap, top + row * row_gap

    biggest = max((abs(v) for layer in weights for row in layer for v in row), default=1.0) or 1.0
    body: list[str] = []
    for k, layer in enumerate(weights):
        for j, row in enumerate(layer):
            for i, w in enumerate(row):
                (x1, y1), (x2, y2) = pos(k, i), pos(k + 1, j)
                # Divided first: 5 * 1e308 would overflow before the division brought it back.
                stroke = 0.75 + 5.0 * (abs(w) / biggest)
                colour = POSITIVE if w >= 0 else NEGATIVE
                label = f"w = {_fmt(w)}" + (f", dL/dw = {_fmt(gradients[k][j][i])}" if gradients else "")
                body.append(
                    f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' stroke='{colour}' "
                    f"stroke-width='{stroke:.2f}' stroke-opacity='0.7'><title>{escape(label)}</title></line>"
                )
                if gradients:
                    # Stagger labels along the edges so that crossing edges do not stack their labels.
                    t = 0.2 + 0.6 * (i * len(layer) + j + 1) / (len(layer) * len(row) + 1)
                    tx, ty = x1 + (x2 - x1) * t, y1 + (y2 - y1) * t
                    body.append(
                        f"<text x='{tx:.1f}' y='{ty - 4:.1f}' font-size='10' fill='#374151' text-anchor='middle' {FONT}>"
                        f"{escape(_fmt(gradients[k][j][i]))}</text>"
                    )
    names = ["input"] + [f"layer {k}: {a}" for k, a in enumerate(activations)]
    for c, n in enumerate(widths):
        x, _ = pos(c, 0)
        body.append(f"<text x='{x:.1f}' y='22' font-size='12' text-anchor='middle' fill='#111827' {FONT}>{escape(names[c])}</text>")
        for r in range(n):
            cx, cy = pos(c, r)
            body.append(f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='{radius}' fill='#f9fafb' stroke='#111827' stroke-width='1.5'/>")
            if values is not None:
                body.append(
                    f"<text x='{cx:.1f}' y='{cy + 4:.1f}' font-size='10' text-anchor='middle' fill='#111827' {FONT}>"
                    f"{escape(_fmt(values[c][r]))}</text>"
                )
    for n, line in enumerate(captions):
        y = height - 10 - 16 * (len(captions) - 1 - n)
        body.append(f"<text x='10' y='{y:.0f}' font-size='11' fill='#4b5563' {FONT}>{escape(line)}</text>")
    return _svg(width, height, body, "network diagram")


def _power_of_ten(v: float) -> float:
    """``10 ** v``, or the largest float64 where that overflows (log10 of it rounds up, so the
    top of a log axis holding float64's largest loss is just past it)."""
    try:
        return float(10**v)
    except OverflowError:
        return sys.float_info.max


def _value_range(ys: Sequence[float]) -> tuple[float, float]:
    """The y axis's ``(lo, hi)``: the values' range, widened when they are (nearly) all equal.

    Equal values get a margin of 5% of their magnitude (0.5 near zero): a fixed margin such as
    0.5 vanishes in rounding once the value is 2**53 or more, leaving an empty range.
    """
    if not ys:
        return 0.0, 1.0
    lo, hi = min(ys), max(ys)
    if hi / 2 - lo / 2 > 1e-12 * max(abs(lo), abs(hi), 1.0):
        return lo, hi
    margin = max(0.05 * max(abs(lo), abs(hi)), 0.5)
    # lo - margin and hi + margin stay finite: |margin| <= 5% of the largest magnitude.
    return max(lo - margin, -sys.float_info.max), min(hi + margin, sys.float_info.max)


def loss_curve(iterations: Sequence[int], losses: Sequence[float], caption: str = "") -> str:
    """A line chart of ``losses`` against ``iterations`` with labelled axes (log scale when the loss spans decades)."""
    width, height = 640.0, 360.0
    left, right, top, bottom = 70.0, 20.0, 30.0, 50.0
    positive = all(v > 0 for v in losses)
    spread = max(losses) / min(losses) if losses and positive and min(losses) > 0 else 1.0
    log = positive and spread > 100
    ys = [math.log10(v) for v in losses] if log else list(losses)
    lo, hi = _value_range(ys)
    x_lo, x_hi = (iterations[0], iterations[-1]) if iterations else (0, 1)
    x_hi = x_hi if x_hi > x_lo else x_lo + 1

    def sx(i: float) -> float:
        return left + (i - x_lo) / (x_hi - x_lo) * (width - left - right)

    def sy(v: float) -> float:
        # Halves, so that neither difference overflows when the losses span most of float64's range.
        return top + (hi / 2 - v / 2) / (hi / 2 - lo / 2) * (height - top - bottom)

    body = [
        f"<line x1='{left}' y1='{height - bottom}' x2='{width - right}' y2='{height - bottom}' stroke='#111827'/>",
        f"<line x1='{left}' y1='{top}' x2='{left}' y2='{height - bottom}' stroke='#111827'/>",
    ]
    for t in range(5):
        v = lo + (hi / 2 - lo / 2) * (t / 2)
        shown = _power_of_ten(v) if log else v
        body.append(
            f"<text x='{left - 6}' y='{sy(v) + 4:.1f}' font-size='11' text-anchor='end' fill='#374151' {FONT}>{escape(_fmt(shown))}</text>"
            f"<line x1='{left}' y1='{sy(v):.1f}' x2='{width - right}' y2='{sy(v):.1f}' stroke='#e5e7eb'/>"
        )
    # Whole iterations only, each once (a 3-iteration run gets 1, 2, 3).
    for i in sorted({round(x_lo + (x_hi - x_lo) * t / 4) for t in range(5)}):
        body.append(
            f"<text x='{sx(i):.1f}' y='{height - bottom + 18}' font-size='11' text-anchor='middle' fill='#374151' {FONT}>{i}</text>"
        )
    points = " ".join(f"{sx(i):.2f},{sy(v):.2f}" for i, v in zip(iterations, ys))
    if len(iterations) == 1:
        body.append(f"<circle cx='{sx(iterations[0]):.1f}' cy='{sy(ys[0]):.1f}' r='3' fill='{POSITIVE}'/>")
    elif points:
        body.append(f"<polyline points='{points}' fill='none' stroke='{POSITIVE}' stroke-width='2'/>")
    body.append(
        f"<text x='{(left + width - right) / 2:.0f}' y='{height - 10}' font-size='12' text-anchor='middle' {FONT}>iteration</text>"
        f"<text x='16' y='{(top + height - bottom) / 2:.0f}' font-size='12' text-anchor='middle' {FONT} "
        f"transform='rotate(-90 16 {(top + height - bottom) / 2:.0f})'>loss{' (log scale)' if log else ''}</text>"
    )
    if caption:
        body.append(f"<text x='{left}' y='18' font-size='12' fill='#111827' {FONT}>{escape(caption)}</text>")
    return _svg(width, height, body, "loss curve")
