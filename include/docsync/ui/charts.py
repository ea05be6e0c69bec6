"""Tiny inline-SVG line charts (no JavaScript, no CDN): the geometry is computed here, the
markup is the ``chart`` macro of ``templates/chart.html`` (autoescaped like every page)."""

from __future__ import annotations

from dataclasses import dataclass

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 560, 210, 52, 12, 44, 34


@dataclass(frozen=True)
class GridLine:
    y: str
    label: str  # the axis value at this line, with its unit


@dataclass(frozen=True)
class Point:
    x: str
    y: str
    tip: str  # "name: value unit"


@dataclass(frozen=True)
class Line:
    name: str
    color: str
    points: tuple[Point, ...]
    legend_x: int

    @property
    def path(self) -> str:
        """The polyline of the series (drawn only with two points or more)."""
        return " ".join(f"{p.x},{p.y}" for p in self.points)


@dataclass(frozen=True)
class Chart:
    title: str
    first_label: str = ""
    last_label: str = ""  # empty with a single run
    grid: tuple[GridLine, ...] = ()
    lines: tuple[Line, ...] = ()
    empty: bool = True  # no run has a value: the chart says so
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT


def _fmt(value: float) -> str:
    if value >= 10000:
        return f"{value / 1000:.0f}k"
    if value >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.2g}"


def line_chart(title: str, labels: list[str], series: dict[str, list[float | None]], unit: str = "") -> Chart:
    """A chart of one or more series over runs (``None`` = no value for that run)."""
    values = [v for points in series.values() for v in points if v is not None]
    if not values or not labels:
        return Chart(title)
    top = max(values) * 1.1 or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels) - 1, 1)
    grid = tuple(
        GridLine(f"{TOP + plot_h - frac * plot_h:.1f}", f"{_fmt(top * frac)}{unit}") for frac in (0.0, 0.5, 1.0)
    )
    lines, legend_x = [], LEFT  # the legend is a row under the title
    for n, (name, points) in enumerate(series.items()):
        plotted = tuple(
            Point(f"{LEFT + i * step:.1f}", f"{TOP + plot_h - (v / top) * plot_h:.1f}", f"{name}: {_fmt(v)}{unit}")
            for i, v in enumerate(points)
            if v is not None
        )
        lines.append(Line(name, COLORS[n % len(COLORS)], plotted, legend_x))
        legend_x += 30 + 7 * len(name)
    return Chart(title, labels[0], labels[-1] if len(labels) > 1 else "", grid, tuple(lines), empty=False)
