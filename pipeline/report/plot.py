"""Axes, ticks and marks of the report's charts, as SVG (``pipeline.report.svg``).

A chart is one :class:`Axes`: a plot area inside margins that hold the title (above), the tick
labels and axis labels (left and below). Values map linearly to the plot area; ticks fall on
round numbers (1, 2, 2.5 or 5 times a power of ten, at most six intervals), dollars are counted
in dollars, thousands or millions so that no tick label is wider than "$10,000", and the hours
of the trend charts are ticked on round hours of the day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipeline.report import svg
from pipeline.report.svg import SIZE, SMALL, TITLE, text_width

WIDTH = 672.0  # px: 7 inches, the text width of an A4 page with 15 mm margins
ROW = 30.0  # px per row of horizontal bars
TOP = 36.0  # above the plot area: the title
BOTTOM = 48.0  # below it: a line of tick labels and the axis label
LINE = 14.0  # one more line of tick labels
RIGHT = 24.0
PAD = 6.0  # between a tick label and the axis
AXIS_LABEL = 16.0  # room for a line of a vertical axis label
STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)
MAX_TICKS = 6  # intervals at most
TIME_STEPS = (1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 672, 1344, 2688)  # hours: up to 16 weeks
MAX_TIME_TICKS = 8
LABEL_CHARS = 40  # longer bar labels are shortened in the charts (not in the tables)


def ticks(top: float, integer: bool = False) -> list[float]:
    """Round values from 0 to ``top`` (included when round), at most ``MAX_TICKS`` intervals."""
    if top <= 0:
        return [0.0]
    power = 10.0 ** math.floor(math.log10(top / MAX_TICKS))
    candidates = (
        s * p
        for p in (power, power * 10, power * 100)
        for s in STEPS
        if top / (s * p) <= MAX_TICKS + 1e-9
        and (not integer or (s * p >= 1 and abs(s * p - round(s * p)) < 1e-9))
    )
    step = next(candidates, 1.0)  # none: counts below one, ticked 0 alone
    count = math.floor(top / step + 1e-9)
    return [i * step for i in range(count + 1)]


def usd(value: float) -> str:
    """Whole dollars with thousands separators, as tick labels show them."""
    return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"


def money_unit(top: float) -> tuple[float, str]:
    """The scale of a dollar axis reaching ``top`` dollars, and the unit its label names."""
    if top < 1e5:
        return 1.0, "US$"
    return (1e3, "thousands of US$") if top < 1e8 else (1e6, "millions of US$")


@dataclass
class Axis:
    """One axis: its limits, its ticks with their labels, and its label."""

    low: float
    high: float
    ticks: list[float]
    labels: list[list[str]]  # the lines of each tick's label
    title: str


def money_axis(high: float, what: str, limit: float | None = None) -> Axis:
    """Dollars from 0 to ``limit`` (default ``high``), counted in the unit ``high`` needs."""
    scale, unit = money_unit(high)
    end = limit or high
    values = [t * scale for t in ticks(end / scale)]
    return Axis(0.0, end, values, [[usd(v / scale)] for v in values], f"{what} ({unit})")


def count_axis(high: float, what: str) -> Axis:
    values = ticks(high, integer=True)
    return Axis(0.0, high, values, [[f"{v:,.0f}"] for v in values], what)


def band_axis(labels: list[list[str]], what: str) -> Axis:
    """Categories at 0, 1, ...: one band each, its label under it (no category: one empty band,
    so the axes are still drawn)."""
    high = max(len(labels), 1) - 0.5
    return Axis(-0.5, high, [float(i) for i in range(len(labels))], labels, what)


def time_axis(start: datetime, end: datetime, what: str) -> Axis:
    """Hours from ``start`` to ``end`` (as hours since the epoch), ticked on round hours of the
    day (every 1, 2, 3, 6 or 12 hours) or on midnights (every 1, 2 or 3 days, or 1 to 16
    weeks: the most a year of history needs); a midnight's label is its date."""
    epoch = datetime(1970, 1, 1)
    low, high = (start - epoch) / timedelta(hours=1), (end - epoch) / timedelta(hours=1)
    step = next((s for s in TIME_STEPS if (high - low) / s <= MAX_TIME_TICKS), TIME_STEPS[-1])
    first = math.ceil(low / step) * step
    values = [float(h) for h in range(int(first), int(high) + 1, step)]
    labels = []
    for value in values:
        moment = epoch + timedelta(hours=value)
        labels.append([f"{moment:%b} {moment.day}" if moment.hour == 0 else f"{moment:%H}:00"])
    return Axis(low, high, values, labels, what)


def shorten(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "\u2026"


@dataclass
class Axes:
    """A chart's plot area, its two axes and the SVG drawn so far.

    ``x`` and ``y`` map values to px. Horizontal bars put the categories on the y axis (the
    first on top) with ``y`` as a band axis; everything else has values on both.
    """

    key: str
    title: str
    desc: str
    height: float
    x: Axis
    y: Axis
    x_lines: int = 1  # lines of each x tick label
    top: float = TOP  # more than the title's line when a legend goes above the plot area
    left: float = field(init=False)
    body: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        labels = [line for lines in self.y.labels for line in lines]
        widest = max((text_width(t) for t in labels), default=0.0)
        self.left = 8 + AXIS_LABEL * len(self.y_title) + widest + PAD

    @property
    def y_title(self) -> list[str]:
        """The y axis label in one line, or in two (its unit apart) when it is longer than
        the plot area is high."""
        title = self.y.title
        if not title:
            return []
        head, sep, unit = title.partition(" (")
        if text_width(title) <= self.bottom - self.top or not sep:
            return [title]
        return [head, sep.strip() + unit]

    # -- geometry ---------------------------------------------------------------------------
    @property
    def right(self) -> float:
        return WIDTH - RIGHT

    @property
    def bottom(self) -> float:
        return self.height - BOTTOM - LINE * (self.x_lines - 1)

    def px(self, value: float) -> float:
        a = self.x
        return self.left + (value - a.low) / (a.high - a.low) * (self.right - self.left)

    def py(self, value: float) -> float:
        a = self.y
        return self.bottom - (value - a.low) / (a.high - a.low) * (self.bottom - self.top)

    # -- frame ------------------------------------------------------------------------------
    def frame(self, grid: str) -> None:
        """Title, grid lines (``"x"``, ``"y"`` or ``""``), the left and bottom axis lines, tick
        labels and axis labels; drawn first, under the marks."""
        b, out = self.body, []
        out.append(svg.text(8, 22, self.title, TITLE, font_weight="bold"))
        if "x" in grid:  # not on the axis line itself
            out += [svg.line(self.px(t), self.top, self.px(t), self.bottom, svg.GRID)
                    for t in self.x.ticks if t > self.x.low]  # fmt: skip
        if "y" in grid:
            out += [svg.line(self.left, self.py(t), self.right, self.py(t), svg.GRID)
                    for t in self.y.ticks if t > self.y.low]  # fmt: skip
        for tick, lines in zip(self.x.ticks, self.x.labels, strict=True):
            for i, label in enumerate(lines):
                out.append(svg.text(self.px(tick), self.bottom + 16 + LINE * i, label,
                                    anchor="middle"))  # fmt: skip
        for tick, lines in zip(self.y.ticks, self.y.labels, strict=True):
            out.append(svg.text(self.left - PAD, self.py(tick) + SIZE * 0.35, lines[0],
                                anchor="end"))  # fmt: skip
        if self.x.title:
            middle = (self.left + self.right) / 2
            out.append(svg.text(middle, self.height - 10, self.x.title, anchor="middle"))
        middle = (self.top + self.bottom) / 2
        for i, title in enumerate(self.y_title):
            x = 18 + AXIS_LABEL * i
            turn = f"rotate(-90 {svg.num(x)} {svg.num(middle)})"
            out.append(svg.text(x, middle, title, anchor="middle", transform=turn))
        out.append(svg.line(self.left, self.top, self.left, self.bottom, svg.AXIS))
        out.append(svg.line(self.left, self.bottom, self.right, self.bottom, svg.AXIS))
        b[:0] = out

    def svg(self) -> str:
        return svg.document(self.key, self.title, self.desc, WIDTH, self.height, self.body)

    # -- marks ------------------------------------------------------------------------------
    def hbar(self, row: float, value: float, thickness: float, colour: str, tip: str) -> float:
        """A horizontal bar centred on band ``row``; returns the px y of its centre."""
        centre = self.py(row)
        half = thickness * (self.py(0) - self.py(1)) / 2
        x0 = self.px(0)
        self.body.append(svg.rect(x0, centre - half, self.px(value) - x0, 2 * half, colour, tip))
        return centre

    def vbar(self, column: float, value: float, colour: str, tip: str) -> None:
        half = 0.4 * (self.px(1) - self.px(0))
        y0 = self.py(0)
        top = self.py(value)
        self.body.append(svg.rect(self.px(column) - half, top, 2 * half, y0 - top, colour, tip))

    def label(self, x: float, y: float, text: str, anchor: str = "start") -> None:
        """A value label in small type at px ``(x, y)`` (``y``: the baseline)."""
        self.body.append(svg.text(x, y, text, SMALL, anchor))

    def points(self, xs: Sequence[float], ys: Sequence[float], colour: str, tips: Sequence[str],
               radius: float = 3.5) -> None:  # fmt: skip
        for x, y, tip in zip(xs, ys, tips, strict=True):
            self.body.append(svg.el("circle", svg.el("title", svg.esc(tip)), cx=self.px(x),
                                    cy=self.py(y), r=radius, fill=colour))  # fmt: skip

    def polyline(self, xs: Sequence[float], ys: Sequence[float], colour: str) -> None:
        coords = " ".join(f"{svg.num(self.px(x))},{svg.num(self.py(y))}"
                          for x, y in zip(xs, ys, strict=True))  # fmt: skip
        self.body.append(svg.el("polyline", points=coords, fill="none", stroke=colour,
                                stroke_width=1.5))  # fmt: skip

    def legend(self, entries: Sequence[tuple[str, str]], x: float, y: float, columns: int,
               column_width: float) -> None:  # fmt: skip
        """Coloured squares with their names, ``columns`` to a row, from px ``(x, y)``."""
        for i, (name, colour) in enumerate(entries):
            cx, cy = x + column_width * (i % columns), y + 16 * (i // columns)
            self.body.append(svg.rect(cx, cy - 9, 10, 10, colour))
            self.label(cx + 14, cy, name)


def room(values: Sequence[float], texts: Sequence[str], plot_width: float) -> float:
    """The x limit that leaves room after each horizontal bar for its value label."""
    top = max(values, default=0.0) or 1.0
    need = [
        value * plot_width / max(plot_width - text_width(text, SMALL) - 8, 40.0)
        for value, text in zip(values, texts, strict=True)
    ]
    return max([top * 1.05, *need])


def plot_width(tick_labels: Sequence[str]) -> float:
    """Width of the plot area when the y axis holds ``tick_labels`` and no axis label."""
    return WIDTH - RIGHT - (8 + max((text_width(t) for t in tick_labels), default=0.0) + PAD)
