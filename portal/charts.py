"""Charts as inline SVG drawn on the server, each with the numbers it shows as a table (`portal/chart.html`
renders both): no chart library, nothing loaded from elsewhere, readable without JavaScript."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ["#0b5cad", "#bc4c00", "#116329", "#8250df", "#a40e26", "#4a535e"]
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 240, 56, 16, 16, 36


@dataclass
class Chart:
    title: str
    svg: SafeString
    columns: list[str]
    rows: list[list] = field(default_factory=list)


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / count
    return [low + step * i for i in range(count + 1)]


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _frame(title: str, lo: float, hi: float, x_labels: list[tuple[float, str]], body: list[str]) -> SafeString:
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="11" font-family="system-ui, sans-serif">',
        f"<title>{escape(title)}</title>",
    ]
    span = hi - lo or 1
    for tick in _ticks(lo, hi):
        y = TOP + (HEIGHT - TOP - BOTTOM) * (1 - (tick - lo) / span)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d7de"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#4a535e">{_fmt(tick)}</text>')
    for x, label in x_labels:
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" fill="#4a535e">{escape(label)}</text>'
        )
    parts.extend(body)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  (every text above is escaped)


def line_chart(
    *, title: str, x_label: str, series: Mapping[str, Sequence[tuple[float, float]]], x_format=_fmt
) -> Chart:
    """Lines over a numeric x (steps, cycles, hours...). The table has one row per x, one column per series."""
    points = [p for values in series.values() for p in values]
    if not points:
        return Chart(title, _frame(title, 0, 1, [], []), [x_label, *series])
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(0.0, min(ys)), max(ys) or 1.0
    x_span, y_span = (x_hi - x_lo) or 1, (y_hi - y_lo) or 1

    def px(x: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (x - x_lo) / x_span

    def py(y: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (y - y_lo) / y_span)

    body = []
    for index, (name, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in sorted(values))
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        if len(values) <= 40:  # few points (a day, a first scoring): mark each, so a single one shows too
            body.extend(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>' for x, y in values)
        body.append(
            f'<text x="{WIDTH - RIGHT}" y="{TOP + 12 * (index + 1)}" text-anchor="end" fill="{colour}">'
            f"{escape(name)}</text>"
        )
    x_labels = [(px(x), x_format(x)) for x in _ticks(x_lo, x_hi)]
    by_x: dict[float, dict[str, float]] = {}
    for name, values in series.items():
        for x, y in values:
            by_x.setdefault(x, {})[name] = y
    rows = [[x_format(x), *(by_x[x].get(name, "") for name in series)] for x in sorted(by_x)]
    return Chart(title, _frame(title, y_lo, y_hi, x_labels, body), [x_label, *series], rows)


def bar_chart(
    *, title: str, label: str, value_label: str, bars: list[tuple[str, float]], limits: dict[str, float] | None = None
) -> Chart:
    """Horizontal bars, one row per item with its name on the left (names of any length stay legible), and an
    optional limit mark per bar (usage against a quota)."""
    limits = limits or {}
    hi = max([v for _, v in bars] + list(limits.values()) + [1.0])
    name_w, row_h, top, bottom = 230, 26, 8, 28
    height = top + bottom + row_h * max(1, len(bars))
    inner_w = WIDTH - name_w - RIGHT

    def px(value: float) -> float:
        return name_w + inner_w * value / hi

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="11" font-family="system-ui, sans-serif">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in _ticks(0, hi):
        x = px(tick)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom}" stroke="#d0d7de"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle" fill="#4a535e">{_fmt(tick)}</text>'
        )
    for index, (name, value) in enumerate(bars):
        y = top + row_h * index
        parts.append(
            f'<text x="{name_w - 8}" y="{y + row_h * 0.65:.1f}" text-anchor="end" fill="#1b1f24">{escape(name)}</text>'
        )
        parts.append(
            f'<rect x="{name_w}" y="{y + 4}" width="{px(value) - name_w:.1f}" height="{row_h - 8}" '
            f'fill="{PALETTE[0]}"/>'
        )
        if name in limits:
            x = px(limits[name])
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y + 1}" y2="{y + row_h - 1}" stroke="{PALETTE[4]}" '
                f'stroke-width="2" stroke-dasharray="4 2"/>'
            )
    parts.append("</svg>")
    columns = [label, value_label] + (["limit"] if limits else [])
    rows = [[name, value] + ([limits.get(name, "")] if limits else []) for name, value in bars]
    return Chart(title, mark_safe("".join(parts)), columns, rows)  # noqa: S308  (every text above is escaped)


def spectrum_chart(
    *,
    title: str,
    x_label: str,
    y_label: str,
    points: Sequence[tuple[float, float]],
    markers: Sequence[tuple[float, str, int]],
) -> Chart:
    """A spectrum as a line with vertical dashed marks at the expected frequencies: (Hz, label, colour index). The
    table lists the marks with the spectrum's highest amplitude within 1 % of each (what an analyst reads)."""
    xs = [x for x, _ in points] or [0.0, 1.0]
    ys = [y for _, y in points] or [0.0]
    x_lo, x_hi = min(xs), max(xs)
    y_hi = max(ys) or 1.0
    x_span = (x_hi - x_lo) or 1

    def px(x: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (x - x_lo) / x_span

    def py(y: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - y / y_hi)

    body = []
    rows = []
    for hz, label, colour_index in markers:
        if not x_lo <= hz <= x_hi:
            continue
        colour = PALETTE[(colour_index + 1) % len(PALETTE)]
        body.append(
            f'<line x1="{px(hz):.1f}" x2="{px(hz):.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="{colour}" '
            f'stroke-width="1" stroke-dasharray="3 3"><title>{escape(label)}</title></line>'
        )
        near = [y for x, y in points if abs(x - hz) <= 0.01 * hz + 1e-9]
        rows.append([label, round(hz, 2), max(near) if near else ""])
    path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
    body.append(f'<polyline fill="none" stroke="{PALETTE[0]}" stroke-width="1.2" points="{path}"/>')
    x_labels = [(px(x), _fmt(x)) for x in _ticks(x_lo, x_hi)]
    return Chart(title, _frame(title, 0.0, y_hi, x_labels, body), ["", x_label, y_label], rows)


ZONE_COLOURS = {"A": "#dafbe1", "B": "#fff8c5", "C": "#ffebe9", "D": "#ffcecb"}


def zoned_line_chart(
    *,
    title: str,
    x_label: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    zones: Sequence[tuple[str, float, float]],
    x_format=_fmt,
) -> Chart:
    """`line_chart` over shaded horizontal zones (name, low, high): ISO 20816 zones A-D behind a velocity trend."""
    points = [p for values in series.values() for p in values]
    xs = [p[0] for p in points] or [0.0, 1.0]
    ys = [p[1] for p in points] or [0.0]
    x_lo, x_hi = min(xs), max(xs)
    finite_tops = [hi for _, _, hi in zones if hi != float("inf")]
    y_hi = max(max(ys) * 1.1, (finite_tops[-1] * 1.25) if finite_tops else 1.0)
    x_span = (x_hi - x_lo) or 1

    def px(x: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (x - x_lo) / x_span if x_hi > x_lo else (LEFT + WIDTH - RIGHT) / 2

    def py(y: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - min(y, y_hi) / y_hi)

    body = []
    for name, lo, hi in zones:
        top, bottom = py(min(hi, y_hi)), py(lo)
        body.append(
            f'<rect x="{LEFT}" y="{top:.1f}" width="{WIDTH - LEFT - RIGHT}" height="{max(bottom - top, 0):.1f}" '
            f'fill="{ZONE_COLOURS.get(name, "#f6f8fa")}"><title>{escape(name)}</title></rect>'
        )
        body.append(f'<text x="{LEFT + 4}" y="{bottom - 3:.1f}" fill="#4a535e">{escape(name)}</text>')
    for index, values in enumerate(series.values()):
        colour = PALETTE[index % len(PALETTE)]
        ordered = sorted(values)
        body.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{" ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in ordered)}"/>'
        )
        body.extend(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>' for x, y in ordered)
    x_labels = [(px(x), x_format(x)) for x in _ticks(x_lo, x_hi)] if x_hi > x_lo else []
    rows = [[x_format(x), name, y] for name, values in series.items() for x, y in sorted(values)]
    return Chart(title, _frame(title, 0.0, y_hi, x_labels, body), [x_label, "", title], rows)


def control_chart(
    *,
    title: str,
    x_label: str,
    y_label: str,
    points: Sequence[float],
    center: float,
    lcl: float,
    ucl: float,
    violations: Mapping[int, str] | None = None,
    spec: Mapping[str, float | None] | None = None,
    labels: Sequence[str] = (),
    rules_label: str = "rules",
) -> Chart:
    """A control chart (individuals, X-bar, moving range or R): the points joined in order, the centre line and the
    control limits (dashed), spec limits when given (dotted), and each point that broke a run rule as a red square.
    The table has one row per point: its label, value and the rules it broke."""
    violations = violations or {}
    limits: dict[str, float] = {name: value for name, value in (spec or {}).items() if value is not None}
    bounds = [*points, center, lcl, ucl, *limits.values()]
    lo, hi = min(bounds), max(bounds)
    pad = (hi - lo) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad
    n = max(len(points), 2)

    def px(i: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * i / (n - 1)

    def py(y: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (y - lo) / (hi - lo))

    body = []
    for name, value, colour, dash in (
        ("UCL", ucl, PALETTE[4], "6 3"),
        ("CL", center, PALETTE[2], ""),
        ("LCL", lcl, PALETTE[4], "6 3"),
        *((name, value, PALETTE[1], "2 3") for name, value in limits.items()),
    ):
        y = py(value)
        body.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="1.5"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + "/>"
        )
        body.append(
            f'<text x="{WIDTH - RIGHT - 2}" y="{y - 3:.1f}" text-anchor="end" fill="{colour}">'
            f"{escape(name)} {_fmt(value)}</text>"
        )
    if points:
        path = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in enumerate(points))
        body.append(f'<polyline fill="none" stroke="{PALETTE[0]}" stroke-width="1.5" points="{path}"/>')
        if len(points) <= 200:
            body.extend(
                f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="2.5" fill="{PALETTE[0]}"/>'
                for i, v in enumerate(points)
                if i not in violations
            )
        for i, rules in violations.items():
            if 0 <= i < len(points):
                body.append(
                    f'<rect class="violation" x="{px(i) - 4:.1f}" y="{py(points[i]) - 4:.1f}" width="8" height="8" '
                    f'fill="{PALETTE[4]}"><title>{escape(rules)}</title></rect>'
                )
    ticks = sorted({round(i) for i in _ticks(0, len(points) - 1)}) if len(points) > 1 else [0]
    x_labels = [(px(i), labels[i] if i < len(labels) else str(i + 1)) for i in ticks if i < len(points)]
    rows = [[labels[i] if i < len(labels) else i + 1, f"{v:.4g}", violations.get(i, "")] for i, v in enumerate(points)]
    return Chart(title, _frame(title, lo, hi, x_labels, body), [x_label, y_label, rules_label], rows)
