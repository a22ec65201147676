"""A timeline picture in plain SVG, standard library only, for bench/rolling_upgrade.py: one lane
of bars per node (its steps on a shared time axis), then one line chart per series beneath
(requests per second, p99 latency, failed requests per second), all on the same x axis, so a
reader sees which step of which node the failures line up with. Tested by bench/test_svg.py
(`python3 -m unittest bench/test_svg.py`)."""

import math
from html import escape

# The colour of each kind of step; a kind not listed gets GREY.
STEP_COLOURS = {
    "drain": "#f0a030", "swap": "#d04040", "wait": "#4080d0", "undrain": "#40a060",
    "migrate": "#9060c0", "verify": "#808080", "sleep 30": "#f0a030", "stop": "#d04040",
    "copy": "#c08040", "start": "#d06060", "until curl": "#4080d0",
}
GREY = "#a0a0a0"
WIDTH, LEFT, RIGHT = 960, 110, 20
LANE_H, LANE_GAP, CHART_H, CHART_GAP, TOP = 22, 6, 90, 34, 40


class Scale:
    """Maps [lo, hi] onto [out_lo, out_hi] linearly; an empty range maps everything to out_lo."""

    def __init__(self, lo, hi, out_lo, out_hi):
        self.lo, self.hi, self.out_lo, self.out_hi = lo, hi, out_lo, out_hi

    def __call__(self, value):
        if self.hi == self.lo:
            return self.out_lo
        return self.out_lo + (value - self.lo) * (self.out_hi - self.out_lo) / (self.hi - self.lo)


def nice_ceiling(value):
    """The smallest of 1, 2, 5 x 10^k that is at least value (an axis' top); 1 for 0 or less."""
    if value <= 0:
        return 1
    magnitude = 10.0 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= value * (1 - 1e-12):
            return round(factor * magnitude, 12)
    return round(10 * magnitude, 12)  # not reached: 10 x magnitude > value always


def ticks(span, count=10):
    """Tick offsets 0, d, 2d, ... up to span seconds, d = 1, 2 or 5 x 10^k: about count of them."""
    spacing = nice_ceiling(max(span, 1e-9) / count)
    return [round(k * spacing, 9) for k in range(int(span / spacing + 1e-9) + 1)]


def timeline(title, lanes, charts, t0, t1):
    """The SVG text. lanes: [(label, [(start, end, kind), ...])], times in seconds on the shared
    axis; charts: [(label, unit, colour, [(t, value), ...])]; the axis runs from t0 to t1."""
    height = TOP + len(lanes) * (LANE_H + LANE_GAP) + len(charts) * (CHART_H + CHART_GAP) + 40
    x = Scale(t0, t1, LEFT, WIDTH - RIGHT)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
           f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>']
    y = TOP
    kinds = []
    for label, bars in lanes:
        out.append(f'<text x="{LEFT - 6}" y="{y + LANE_H * 0.7:.1f}" text-anchor="end">{escape(label)}</text>')
        for start, end, kind in bars:
            if kind not in kinds:
                kinds.append(kind)
            left, right = x(max(start, t0)), x(min(end, t1))
            out.append(f'<rect x="{left:.2f}" y="{y}" width="{max(right - left, 1):.2f}" height="{LANE_H}" '
                       f'fill="{STEP_COLOURS.get(kind, GREY)}"><title>{escape(kind)}: '
                       f'{start - t0:.2f}-{end - t0:.2f} s ({end - start:.2f} s)</title></rect>')
        y += LANE_H + LANE_GAP
    for label, unit, colour, points in charts:
        y += CHART_GAP - 14
        out += chart(label, unit, colour, points, x, y)
        y += CHART_H + 14
    out += axis(x, t0, t1, y)
    out += legend(kinds, y + 30)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def chart(label, unit, colour, points, x, top):
    """One line chart: a frame, its top value, and a polyline (steps drawn as given)."""
    peak = nice_ceiling(max((v for _, v in points), default=0))
    y = Scale(0, peak, top + CHART_H, top)
    out = [f'<rect x="{LEFT}" y="{top}" width="{WIDTH - RIGHT - LEFT}" height="{CHART_H}" '
           f'fill="none" stroke="#cccccc"/>',
           f'<text x="{LEFT - 6}" y="{top + CHART_H / 2:.1f}" text-anchor="end">{escape(label)}</text>',
           f'<text x="{LEFT - 6}" y="{top + 10}" text-anchor="end" fill="#666666">{peak:g} {escape(unit)}</text>',
           f'<text x="{LEFT - 6}" y="{top + CHART_H}" text-anchor="end" fill="#666666">0</text>']
    if points:
        coords = " ".join(f"{x(t):.2f},{y(v):.2f}" for t, v in points)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    return out


def axis(x, t0, t1, y):
    out = [f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="black"/>']
    for offset in ticks(t1 - t0):
        at = x(t0 + offset)
        out.append(f'<line x1="{at:.2f}" y1="{y}" x2="{at:.2f}" y2="{y + 4}" stroke="black"/>')
        out.append(f'<text x="{at:.2f}" y="{y + 15}" text-anchor="middle">{offset:g} s</text>')
    return out


def legend(kinds, y):
    out, left = [], LEFT
    for kind in kinds:
        out.append(f'<rect x="{left}" y="{y - 9}" width="10" height="10" fill="{STEP_COLOURS.get(kind, GREY)}"/>')
        out.append(f'<text x="{left + 14}" y="{y}">{escape(kind)}</text>')
        left += 24 + 7 * len(kind)
    return out
