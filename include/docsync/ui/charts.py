"""Tiny inline-SVG line charts (no JavaScript, no CDN)."""

from __future__ import annotations

from html import escape

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 560, 210, 52, 12, 44, 34


def _fmt(value: float) -> str:
    if value >= 10000:
        return f"{value / 1000:.0f}k"
    if value >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.2g}"


def line_chart(title: str, labels: list[str], series: dict[str, list[float | None]], unit: str = "") -> str:
    """An SVG chart of one or more series over runs (``None`` = no value for that run)."""
    values = [v for points in series.values() for v in points if v is not None]
    head = f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">'
    parts = [head, f'<title>{escape(title)}</title>',
             f'<text x="{LEFT}" y="14" class="chart-title">{escape(title)}</text>']
    if not values or not labels:
        parts.append(f'<text x="{LEFT}" y="{HEIGHT // 2}" class="chart-empty">no runs with this metric yet</text></svg>')
        return "".join(parts)
    top = max(values) * 1.1 or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return LEFT + i * step, TOP + plot_h - (v / top) * plot_h

    for frac in (0.0, 0.5, 1.0):
        y = TOP + plot_h - frac * plot_h
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" class="axis">'
                     f'{escape(_fmt(top * frac))}{escape(unit)}</text>')
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 6}" class="axis">{escape(labels[0])}</text>')
    if len(labels) > 1:
        parts.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end" class="axis">{escape(labels[-1])}</text>')
    lx = LEFT  # legend row under the title
    for n, (name, points) in enumerate(series.items()):
        color = COLORS[n % len(COLORS)]
        coords = [xy(i, v) for i, v in enumerate(points) if v is not None]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for (x, y), v in zip(coords, [v for v in points if v is not None]):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{escape(name)}: '
                         f'{escape(_fmt(v))}{escape(unit)}</title></circle>')
        parts.append(f'<rect x="{lx}" y="21" width="10" height="10" fill="{color}"/>'
                     f'<text x="{lx + 14}" y="30" class="legend">{escape(name)}</text>')
        lx += 30 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)
