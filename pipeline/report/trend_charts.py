"""The report's trend charts: revenue, carts and the top categories' revenue of each hour on
record over the last days (``history/``), ticked on round hours of the day.

Drawn as the hour's charts are (``charts``, ``plot``); an hour without a run has no point.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pandas as pd

from pipeline.report import plot
from pipeline.report.charts import COLOUR, LEGEND_ROW, PALETTE, Chart, dollars, listed
from pipeline.report.plot import Axes, money_axis
from pipeline.rules.history import HOUR_FORMAT, Trends
from pipeline.rules.numbers import money, plural

HOUR = pd.Timedelta(hours=1)
MIN_SPAN_HOURS = 12  # a trend axis spans at least this, so a few hours are not squeezed


def _hours(values: pd.Series | pd.Index) -> list[float]:
    """Datetimes as hours since the epoch, the unit of a time axis."""
    return ((pd.Series(values) - pd.Timestamp(0)) / HOUR).tolist()


def _time_span(trends: Trends) -> tuple[datetime, datetime]:
    """Hours from the first on record (within the window) to the report's hour: a pipeline
    that started yesterday shows a day, not six empty days and a sliver."""
    end = pd.to_datetime(trends.last, format=HOUR_FORMAT) + HOUR
    start = pd.to_datetime(trends.first, format=HOUR_FORMAT)
    if len(trends.hours):
        start = max(start, pd.Timestamp(trends.hours["hour"].min()))
    start = min(start - HOUR, end - pd.Timedelta(hours=MIN_SPAN_HOURS))
    return start.to_pydatetime(), end.to_pydatetime()


def _lines(
    chart: Chart,
    hours: pd.Series | pd.Index,
    series: list[tuple[str, list[float], str]],
    y: plot.Axis,
    trends: Trends,
    height: float,
    shown: Callable[[float], str],
    legend: bool = False,
) -> Chart:
    """One line with a point per hour on record for each of ``series`` (name, values, colour);
    ``shown`` writes a value in a point's tooltip."""
    columns = max(1, min(3, len(series)))
    rows = -(-len(series) // columns) if legend and series else 0
    top = plot.TOP + (LEGEND_ROW * rows + 4 if rows else 0.0)
    start, end = _time_span(trends)
    axes = Axes(chart.key, chart.title, chart.alt, height + top - plot.TOP,
                x=plot.time_axis(start, end, "Hour (UTC)"), y=y, top=top)  # fmt: skip
    axes.frame(grid="y")
    x = _hours(hours)
    stamps = [f"{h:%Y-%m-%d %H}:00" for h in pd.Series(hours)]
    for name, values, colour in series:
        axes.polyline(x, values, colour)
        tips = [f"{name} {stamp}: {shown(v)}" for stamp, v in zip(stamps, values, strict=True)]
        axes.points(x, values, colour, tips, radius=3.0)
    if rows:
        axes.legend([(name, colour) for name, _, colour in series], axes.left, plot.TOP + 6,
                    columns=columns, column_width=(axes.right - axes.left) / 3)  # fmt: skip
    axes.label(axes.left, axes.height - 10, f"from {start:%Y-%m-%d %H}:00")
    return Chart(chart.key, chart.title, chart.alt, axes.svg(), caption=chart.caption)


def trend_revenue(trends: Trends) -> Chart:
    hours = trends.hours
    title = f"Revenue per hour, last {plural(trends.days, 'day')}"
    alt = (
        f"Line chart of revenue per hour from {trends.first} to {trends.last} UTC, "
        f"{plural(len(hours), 'hour')} on record"
        + (
            f": lowest {money(int(hours['revenue'].min()))}, highest "
            f"{money(int(hours['revenue'].max()))}, last {money(int(hours['revenue'].iloc[-1]))}."
            if len(hours)
            else "."
        )
    )
    caption = (
        "Revenue at list price of each hour on record (history/); an hour without a run has no "
        "point."
    )
    top = max(hours["revenue"].max() / 100 if len(hours) else 0, 1) * 1.15
    values = (hours["revenue"] / 100).tolist()
    return _lines(Chart("trend_revenue", title, alt, caption=caption), hours["hour"],
                  [("Revenue", values, COLOUR)], money_axis(top, "Revenue at list price"),
                  trends, 269.0, dollars)  # fmt: skip


def trend_carts(trends: Trends) -> Chart:
    hours = trends.hours
    title = f"Carts per hour, last {plural(trends.days, 'day')}"
    alt = (
        f"Line chart of carts per hour from {trends.first} to {trends.last} UTC, "
        f"{plural(len(hours), 'hour')} on record"
        + (
            f": fewest {int(hours['carts'].min()):,}, most {int(hours['carts'].max()):,}, "
            f"last {int(hours['carts'].iloc[-1]):,}."
            if len(hours)
            else "."
        )
    )
    caption = "Carts of each hour on record (history/); an hour without a run has no point."
    top = max(hours["carts"].max() if len(hours) else 0, 1) * 1.15
    return _lines(Chart("trend_carts", title, alt, caption=caption), hours["hour"],
                  [("Carts", hours["carts"].astype(float).tolist(), COLOUR)],
                  plot.count_axis(top, "Carts"), trends, 269.0, "{:,.0f}".format)  # fmt: skip


def trend_categories(trends: Trends) -> Chart:
    per_hour = trends.categories
    title = f"Revenue per hour of the top {len(per_hour.columns)} categories"
    alt = (
        f"Line chart of revenue per hour from {trends.first} to {trends.last} UTC for the "
        f"categories with the most revenue over the period: "
        + listed([(str(c), f"{money(int(per_hour[c].sum()))} in all") for c in per_hour.columns])
        + "."
    )
    caption = (
        "Revenue at list price per hour of the categories with the most revenue over the period "
        "(history/)."
    )
    top = max(per_hour.to_numpy().max() / 100 if per_hour.size else 0, 1) * 1.15
    series = [
        (str(column), (per_hour[column] / 100).tolist(), colour)
        for colour, column in zip(PALETTE, per_hour.columns, strict=False)
    ]
    return _lines(Chart("trend_categories", title, alt, caption=caption), per_hour.index,
                  series, money_axis(top, "Revenue at list price"), trends, 288.0, dollars,
                  legend=True)  # fmt: skip
