"""The charts of the hour: which figures each one shows, its title, alt text and caption
(the trends over the past days are in ``trend_charts``).

No chart draws one mark per cart line: each takes a table of at most a few dozen rows (categories,
top customers, cities, age bands, hours), so drawing costs the same at a million carts as at six.
Every chart has a title, axis labels with units, dollar amounts with thousands separators and an
alt text that states its main figures, for readers who cannot see it.

Each is an SVG element to place in the HTML page as it is (``pipeline.report.plot`` draws the
axes and marks, ``pipeline.report.svg`` writes and escapes the markup): a few milliseconds a
chart, no drawing library, and the same figures always give the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from pipeline.report import plot
from pipeline.report.plot import ROW, Axes, money_axis, shorten
from pipeline.report.svg import SMALL, text_width
from pipeline.rules.numbers import count, money, percent, plural, tenths_percent
from pipeline.rules.tables import MAX_CART_GROUP, Tables

COLOUR = "#2f6f9f"
SECOND = "#e0a040"
MUTED = "#9aa9b5"
PALETTE = ("#2f6f9f", "#e0a040", "#4e9a5b", "#b5475b", "#7a5fa8")
BARS = plot.TOP + plot.BOTTOM  # px of a horizontal bar chart besides its rows
LEGEND_ROW = 16.0  # px


@dataclass(frozen=True)
class Chart:
    """One figure of the report: an ``<svg>`` element, or None with the reason it could not be
    drawn."""

    key: str
    title: str
    alt: str
    svg: str | None = None
    note: str | None = None
    caption: str = ""  # what the marks are and where the figures come from


def dollars(value: float) -> str:
    """Dollars to the cent, as tooltips show them."""
    return f"${value:,.2f}"


def listed(pairs: list[tuple[str, str]], limit: int = 5) -> str:
    """The first ``limit`` pairs for an alt text, and how many more there are."""
    shown = "; ".join(f"{a} {b}" for a, b in pairs[:limit])
    rest = len(pairs) - limit
    return shown + (f"; and {rest} more" if rest > 0 else "")


@dataclass(frozen=True)
class Bars:
    """One series of horizontal bars: its name, dollars per row and colour."""

    name: str
    values: list[float]
    colour: str = COLOUR
    colours: list[str] | None = None  # per row, where some bars differ from ``colour``

    def colour_of(self, row: int) -> str:
        return self.colours[row] if self.colours is not None else self.colour


def _hbars(
    chart: Chart, labels: Sequence[str], series: Sequence[Bars], texts: Sequence[str], what: str
) -> Chart:
    """Horizontal bars, the first label on top, the first series' value written after its bar;
    with two series each row holds two thinner bars and a legend names them above the plot."""
    shown = [shorten(label) for label in labels]
    first = series[0].values
    limit = plot.room(first, texts, plot.plot_width(shown))
    double = len(series) > 1
    row = ROW * (1.5 if double else 1.0)
    top = plot.TOP + (LEGEND_ROW + 4 if double else 0.0)
    axes = Axes(
        chart.key, chart.title, chart.alt, top + plot.BOTTOM + row * max(len(labels), 1),
        x=money_axis(max(first, default=0.0), what, limit),
        y=plot.band_axis([[label] for label in shown][::-1], ""),
        top=top,
    )  # fmt: skip
    axes.frame(grid="x")
    thickness = 0.72 / len(series)
    for i, label in enumerate(labels):
        position = len(labels) - 1 - i
        for k, bars in enumerate(series):
            offset = (0.5 - k) * thickness if double else 0.0
            value = bars.values[i]
            tip = f"{label}: {bars.name.lower()} {dollars(value)}"
            centre = axes.hbar(position + offset, value, thickness, bars.colour_of(i), tip)
            if k == 0:
                axes.label(axes.px(value) + 4, centre + SMALL * 0.35, texts[i])
    if double:
        axes.legend([(bars.name, bars.colour) for bars in series], axes.left, plot.TOP + 6,
                    columns=len(series), column_width=130)  # fmt: skip
    return Chart(chart.key, chart.title, chart.alt, axes.svg(), caption=chart.caption)


def _vbars(
    chart: Chart,
    ticks: list[list[str]],
    values: list[float],
    texts: list[str],
    what: str,
    x_title: str,
) -> Chart:
    """Vertical bars with a short label on top of each (empty text: no label)."""
    top = max(values, default=0.0) or 1.0
    axes = Axes(
        chart.key, chart.title, chart.alt, 307.0,
        x=plot.band_axis(ticks, x_title), y=money_axis(top, what, top * 1.15), x_lines=2,
    )  # fmt: skip
    axes.frame(grid="y")
    for i, (value, text) in enumerate(zip(values, texts, strict=True)):
        axes.vbar(i, value, COLOUR, f"{ticks[i][0]}: {dollars(value)}")
        if text:
            axes.label(axes.px(i), axes.py(value) - 4, text, anchor="middle")
    return Chart(chart.key, chart.title, chart.alt, axes.svg(), caption=chart.caption)


# --- the hour's charts ---------------------------------------------------------------------------


def category_revenue(t: Tables) -> Chart:
    cats = t.categories
    title = "Revenue by category"
    alt = (
        "Horizontal bar chart of revenue at list price for "
        f"{plural(len(cats), 'category', 'categories')}, largest first: "
        + listed([(r.category, money(r.revenue)) for r in cats.itertuples()])
        + "."
    )
    texts = [
        f"{money(r.revenue)} ({percent(tenths_percent(r.revenue, t.revenue))})"
        for r in cats.itertuples()
    ]
    caption = (
        "One bar per category: revenue at list price and its share of the hour's revenue "
        "(insights/category_summary.csv)."
    )
    series = [Bars("Revenue", (cats["revenue"] / 100).tolist())]
    return _hbars(Chart("categories", title, alt, caption=caption), cats["category"].tolist(),
                  series, texts, "Revenue at list price")  # fmt: skip


def top_customers(t: Tables, n: int) -> Chart:
    top = t.customers.head(n)
    title = f"Top {len(top)} customers by spend"
    labels = [
        f"{r.first_name} (#{r.user_id}, {r.city}"
        + ("" if pd.isna(r.age) else f", {int(r.age)}")
        + ")"
        for r in top.itertuples()
    ]
    alt = (
        f"Horizontal bar chart of the {plural(len(top), 'customer')} who spent most, "
        "with city and age: "
        + listed(
            [(label, money(r.spend)) for label, r in zip(labels, top.itertuples(), strict=True)]
        )
        + "."
    )
    texts = [f"{money(r.spend)}, {plural(r.carts, 'cart')}" for r in top.itertuples()]
    caption = (
        "One bar per customer: first name, user id, city and age; spend at list price and carts "
        "(insights/user_summary.csv)."
    )
    series = [Bars("Spend", (top["spend"] / 100).tolist())]
    return _hbars(Chart("customers", title, alt, caption=caption), labels, series, texts,
                  "Spend at list price")  # fmt: skip


def city_revenue(t: Tables, n: int) -> Chart:
    cities = t.cities
    shown = cities.head(n)
    labels, values = shown["city"].tolist(), shown["spend"].tolist()
    rest = cities.iloc[n:]
    if len(rest):
        labels.append(f"{plural(len(rest), 'other city', 'other cities')}")
        values.append(int(rest["spend"].sum()))
    title = "Revenue by city"
    alt = (
        "Horizontal bar chart of revenue by the customers' city, "
        f"{plural(len(cities), 'city', 'cities')}, largest first: "
        + listed([(c, money(v)) for c, v in zip(labels, values, strict=True)])
        + "."
    )
    colours = [COLOUR] * len(shown) + [MUTED] * (len(labels) - len(shown))
    texts = [f"{money(v)} ({percent(tenths_percent(v, t.revenue))})" for v in values]
    caption = (
        "One bar per city of the customers, the smallest summed as one grey bar; shares are of "
        "the hour's revenue (insights/user_summary.csv)."
    )
    series = [Bars("Revenue", [v / 100 for v in values], colours=colours)]
    return _hbars(Chart("cities", title, alt, caption=caption), labels, series, texts,
                  "Revenue at list price")  # fmt: skip


def age_bands(t: Tables) -> Chart:
    ages = t.ages
    title = "Revenue by age band"
    alt = (
        "Histogram of revenue by the customers' age band: "
        + "; ".join(
            f"{r.band} {money(r.spend)} from {plural(r.customers, 'customer')}"
            for r in ages.itertuples()
        )
        + "."
    )
    caption = (
        "Revenue at list price by the customers' age band; above each bar its share of the "
        "hour's revenue, under it the number of customers (insights/user_summary.csv)."
    )
    return _vbars(
        Chart("ages", title, alt, caption=caption),
        [[str(r.band), count(r.customers)] for r in ages.itertuples()],
        (ages["spend"] / 100).tolist(),
        [
            percent(tenths_percent(r.spend, t.revenue)) if r.customers else ""
            for r in ages.itertuples()
        ],
        "Revenue at list price",
        "Age band (years), and customers in it",
    )


def units_vs_revenue(t: Tables) -> Chart:
    cats = t.categories
    title = "Units against revenue by category"
    alt = (
        "Scatter chart, one point per category, units sold across and revenue up: "
        + listed(
            [
                (r.category, f"{plural(r.units, 'unit')}, {money(r.revenue)}")
                for r in cats.itertuples()
            ],
            limit=8,
        )
        + "."
    )
    caption = (
        "One point per category: units sold against revenue at list price; a point whose name "
        "would cover another's is left unnamed (insights/category_summary.csv)."
    )
    x_top = max(int(cats["units"].max()) if len(cats) else 0, 1) * 1.2
    y_top = max(cats["revenue"].max() / 100 if len(cats) else 0, 1) * 1.12
    axes = Axes("units", title, alt, 346.0, x=plot.count_axis(x_top, "Units sold"),
                y=money_axis(y_top, "Revenue at list price"))  # fmt: skip
    axes.frame(grid="xy")
    units, revenue = cats["units"].tolist(), (cats["revenue"] / 100).tolist()
    names = cats["category"].tolist()
    tips = [
        f"{c}: {plural(u, 'unit')}, {dollars(d)}"
        for c, u, d in zip(names, units, revenue, strict=True)
    ]
    axes.points(units, revenue, COLOUR, tips)
    # Name the points from the largest revenue down, skipping one whose name would overlap a
    # name already placed (every category is in the table anyway).
    placed: list[tuple[float, float, float, float]] = []
    for name, u, d in zip(names, units, revenue, strict=True):
        x, y = axes.px(u) + 5, axes.py(d) - 5
        box = (x, y - SMALL, x + text_width(name, SMALL), y + 2)
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
               for b in placed):  # fmt: skip
            continue
        placed.append(box)
        axes.label(x, y, name)
    return Chart("units", title, alt, axes.svg(), caption=caption)


def frequency(t: Tables) -> Chart:
    freq = t.frequency
    groups = [f"{g}+" if g >= MAX_CART_GROUP else str(g) for g in freq["group"]]
    title = "Purchase frequency against basket size"
    alt = (
        "Bar chart of the average cart value by the number of carts a customer has: "
        + "; ".join(
            f"{g} {'cart' if g == '1' else 'carts'}: {money(r.avg_cart)} a cart, "
            f"{plural(r.customers, 'customer')}"
            for g, r in zip(groups, freq.itertuples(), strict=True)
        )
        + "."
    )
    caption = (
        "Customers grouped by their number of carts: the average value of their carts at list "
        "price, and under each bar how many customers are in the group "
        "(insights/user_summary.csv)."
    )
    return _vbars(
        Chart("frequency", title, alt, caption=caption),
        [[g, count(r.customers)] for g, r in zip(groups, freq.itertuples(), strict=True)],
        (freq["avg_cart"] / 100).tolist(),
        [money(r.avg_cart) for r in freq.itertuples()],
        "Average cart value",
        "Carts per customer, and customers with that many",
    )


def discounts(t: Tables) -> Chart:
    cats = t.categories
    title = "List against discounted revenue by category"
    alt = (
        "Horizontal bar chart of revenue at list price and after discounts for each category: "
        + listed(
            [
                (r.category, f"{money(r.revenue)} list, {money(r.discounted)} paid")
                for r in cats.itertuples()
            ]
        )
        + "."
    )
    texts = [
        f"-{money(r.discount)} ({percent(tenths_percent(r.discount, r.revenue))})"
        for r in cats.itertuples()
    ]
    caption = (
        "For each category, revenue at list price and after discounts; labels give the discount "
        "and its rate (insights/category_summary.csv)."
    )
    series = [
        Bars("List price", (cats["revenue"] / 100).tolist(), COLOUR),
        Bars("After discounts", (cats["discounted"] / 100).tolist(), SECOND),
    ]
    return _hbars(Chart("discounts", title, alt, caption=caption), cats["category"].tolist(),
                  series, texts, "Revenue")  # fmt: skip
