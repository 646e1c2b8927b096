"""The report's charts, drawn with matplotlib as SVG text from the small tables of the findings.

No chart draws one mark per cart line: each takes a table of at most a few dozen rows (categories,
top customers, cities, age bands, hours), so drawing costs the same at a million carts as at six.
Every chart has a title, axis labels with units, dollar amounts with thousands separators and an
alt text that states its main figures, for readers who cannot see it.

matplotlib is used through ``Figure`` objects only (no pyplot, no global state, no GUI backend),
and the SVG is deterministic: fixed element ids, no creation date, text kept as text.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pandas as pd

from pipeline.rules.findings import (
    MAX_CART_GROUP,
    Tables,
    money,
    percent,
    plural,
    tenths_percent,
)
from pipeline.rules.history import HOUR_FORMAT, Trends

WIDTH = 7.0  # inches: the text width of an A4 page with 15 mm margins
BAR = 0.32  # inches per horizontal bar
STYLE = {
    "svg.hashsalt": "pipeline-report",  # stable ids: a rerun writes the same bytes
    "svg.fonttype": "none",  # text stays text: smaller, sharp in print, selectable
    "text.parse_math": False,  # "$" is a dollar: names like "Ca$h $tore" are not TeX
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
}
COLOUR = "#2f6f9f"
SECOND = "#e0a040"
MUTED = "#9aa9b5"
PALETTE = ("#2f6f9f", "#e0a040", "#4e9a5b", "#b5475b", "#7a5fa8")


@dataclass(frozen=True)
class Chart:
    """One figure of the report: SVG text, or None with the reason it could not be drawn."""

    key: str
    title: str
    alt: str
    svg: str | None = None
    note: str | None = None
    caption: str = ""  # what the marks are and where the figures come from


def warm_up() -> None:
    """Load matplotlib and its font (about a second), e.g. while big files are read elsewhere.

    A failure here is left for the charts themselves to report, one note each.
    """
    try:
        import matplotlib

        with matplotlib.rc_context(STYLE):
            fig = _figure(0.3)
            fig.text(0, 0, "$0")  # loads the font too
            _svg(fig)
    except Exception:  # cosmetic, and reported by every chart that then fails
        return


def _usd(value: float, _pos: object = None) -> str:
    return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"


def _figure(height: float):  # -> matplotlib Figure (imported lazily: it is slow to import)
    from matplotlib.figure import Figure

    return Figure(figsize=(WIDTH, height), layout="constrained")


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML declaration and DOCTYPE


def _draw(key: str, title: str, alt: str, height: float, paint, caption: str) -> Chart:
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = _figure(height)
        ax = fig.add_subplot()
        paint(ax)
        ax.set_title(title, loc="left")
        return Chart(key, title, alt, _svg(fig), caption=caption)


def _dollar_axis(axis) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_formatter(FuncFormatter(_usd))
    axis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))


def _hbars(ax, labels: list[str], values: list[float], texts: list[str], colour=COLOUR) -> None:
    """Horizontal bars, the first label on top, each with its value written after the bar."""
    positions = list(range(len(labels)))[::-1]
    ax.barh(positions, values, color=colour, height=0.7)
    ax.set_yticks(positions, labels)
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", length=0)
    _dollar_axis(ax.xaxis)
    top = max(values, default=0) or 1
    ax.set_xlim(0, top * 1.32)  # room for the value labels
    for y, x, text in zip(positions, values, texts, strict=True):
        ax.annotate(text, (x, y), xytext=(4, 0), textcoords="offset points", va="center")


def _listed(pairs: list[tuple[str, str]], limit: int = 5) -> str:
    shown = "; ".join(f"{a} {b}" for a, b in pairs[:limit])
    rest = len(pairs) - limit
    return shown + (f"; and {rest} more" if rest > 0 else "")


def category_revenue(t: Tables) -> Chart:
    cats = t.categories
    title = "Revenue by category"
    alt = (
        "Horizontal bar chart of revenue at list price for "
        f"{plural(len(cats), 'category', 'categories')}, largest first: "
        + _listed([(r.category, money(r.revenue)) for r in cats.itertuples()])
        + "."
    )

    def paint(ax) -> None:
        _hbars(
            ax,
            cats["category"].tolist(),
            (cats["revenue"] / 100).tolist(),
            [
                f"{money(r.revenue)} ({percent(tenths_percent(r.revenue, t.revenue))})"
                for r in cats.itertuples()
            ],
        )
        ax.set_xlabel("Revenue at list price (US$)")

    return _draw(
        "categories",
        title,
        alt,
        0.9 + BAR * len(cats),
        paint,
        "One bar per category: revenue at list price and its share of the hour's revenue "
        "(insights/category_summary.csv).",
    )


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
        + _listed(
            [
                (label, f"{money(r.spend)}")
                for label, r in zip(labels, top.itertuples(), strict=True)
            ]
        )
        + "."
    )

    def paint(ax) -> None:
        _hbars(
            ax,
            labels,
            (top["spend"] / 100).tolist(),
            [f"{money(r.spend)}, {plural(r.carts, 'cart')}" for r in top.itertuples()],
        )
        ax.set_xlabel("Spend at list price (US$)")

    return _draw(
        "customers",
        title,
        alt,
        0.9 + BAR * len(top),
        paint,
        "One bar per customer: first name, user id, city and age; spend at list price and carts "
        "(insights/user_summary.csv).",
    )


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
        + _listed([(c, money(v)) for c, v in zip(labels, values, strict=True)])
        + "."
    )
    colours = [COLOUR] * len(shown) + [MUTED] * (len(labels) - len(shown))

    def paint(ax) -> None:
        _hbars(
            ax,
            labels,
            [v / 100 for v in values],
            [f"{money(v)} ({percent(tenths_percent(v, t.revenue))})" for v in values],
            colour=colours,
        )
        ax.set_xlabel("Revenue at list price (US$)")

    return _draw(
        "cities",
        title,
        alt,
        0.9 + BAR * len(labels),
        paint,
        "One bar per city of the customers, the smallest summed as one grey bar; shares are of "
        "the hour's revenue (insights/user_summary.csv).",
    )


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

    def paint(ax) -> None:
        x = list(range(len(ages)))
        ax.bar(x, ages["spend"] / 100, color=COLOUR, width=0.85)
        ax.set_xticks(x, ages["band"].tolist())
        ax.grid(axis="x", visible=False)
        _dollar_axis(ax.yaxis)
        ax.set_ylim(0, (ages["spend"].max() / 100 or 1) * 1.2)
        for xi, r in zip(x, ages.itertuples(), strict=True):
            if not r.customers:
                continue
            ax.annotate(
                f"{money(r.spend)}\n{plural(r.customers, 'customer')}",
                (xi, r.spend / 100), xytext=(0, 3), textcoords="offset points",
                ha="center", va="bottom", fontsize=8,
            )  # fmt: skip
        ax.set_xlabel("Age band (years)")
        ax.set_ylabel("Revenue at list price (US$)")

    return _draw(
        "ages",
        title,
        alt,
        3.2,
        paint,
        "Revenue at list price by the customers' age band, with the number of customers in each "
        "(insights/user_summary.csv).",
    )


def units_vs_revenue(t: Tables) -> Chart:
    cats = t.categories
    title = "Units against revenue by category"
    alt = (
        "Scatter chart, one point per category, units sold across and revenue up: "
        + _listed(
            [
                (r.category, f"{plural(r.units, 'unit')}, {money(r.revenue)}")
                for r in cats.itertuples()
            ],
            limit=8,
        )
        + "."
    )

    def paint(ax) -> None:
        ax.scatter(cats["units"], cats["revenue"] / 100, color=COLOUR, s=36, zorder=3)
        for r in cats.itertuples():
            ax.annotate(
                r.category, (r.units, r.revenue / 100), xytext=(4, 3), textcoords="offset points",
                fontsize=8,
            )  # fmt: skip
        _dollar_axis(ax.yaxis)
        ax.set_xlim(0, max(cats["units"].max(), 1) * 1.25)
        ax.set_ylim(0, max(cats["revenue"].max() / 100, 1) * 1.15)
        ax.set_xlabel("Units sold")
        ax.set_ylabel("Revenue at list price (US$)")

    return _draw(
        "units",
        title,
        alt,
        3.6,
        paint,
        "One point per category: units sold against revenue at list price "
        "(insights/category_summary.csv).",
    )


def frequency(t: Tables) -> Chart:
    freq = t.frequency
    labels = [f"{g}+" if g >= MAX_CART_GROUP else str(g) for g in freq["group"]]
    title = "Purchase frequency against basket size"
    alt = (
        "Bar chart of the average cart value by the number of carts a customer has: "
        + "; ".join(
            f"{label} {'cart' if label == '1' else 'carts'}: {money(r.avg_cart)} a cart, "
            f"{plural(r.customers, 'customer')}"
            for label, r in zip(labels, freq.itertuples(), strict=True)
        )
        + "."
    )

    def paint(ax) -> None:
        x = list(range(len(freq)))
        ax.bar(x, freq["avg_cart"] / 100, color=COLOUR, width=0.7)
        ax.set_xticks(x, labels)
        ax.grid(axis="x", visible=False)
        _dollar_axis(ax.yaxis)
        ax.set_ylim(0, (freq["avg_cart"].max() / 100 or 1) * 1.2)
        for xi, r in zip(x, freq.itertuples(), strict=True):
            ax.annotate(
                f"{money(r.avg_cart)}\n{plural(r.customers, 'customer')}",
                (xi, r.avg_cart / 100), xytext=(0, 3), textcoords="offset points",
                ha="center", va="bottom", fontsize=8,
            )  # fmt: skip
        ax.set_xlabel("Carts per customer")
        ax.set_ylabel("Average cart value (US$)")

    return _draw(
        "frequency",
        title,
        alt,
        3.2,
        paint,
        "Customers grouped by their number of carts: the average value of their carts at list "
        "price, and how many customers are in the group (insights/user_summary.csv).",
    )


def discounts(t: Tables) -> Chart:
    cats = t.categories
    title = "List against discounted revenue by category"
    alt = (
        "Horizontal bar chart of revenue at list price and after discounts for each category: "
        + _listed(
            [
                (r.category, f"{money(r.revenue)} list, {money(r.discounted)} paid")
                for r in cats.itertuples()
            ]
        )
        + "."
    )

    def paint(ax) -> None:
        positions = list(range(len(cats)))[::-1]
        ax.barh([p + 0.18 for p in positions], cats["revenue"] / 100, height=0.36, color=COLOUR,
                label="List price")  # fmt: skip
        ax.barh([p - 0.18 for p in positions], cats["discounted"] / 100, height=0.36,
                color=SECOND, label="After discounts")  # fmt: skip
        ax.set_yticks(positions, cats["category"].tolist())
        ax.grid(axis="y", visible=False)
        ax.tick_params(axis="y", length=0)
        _dollar_axis(ax.xaxis)
        ax.set_xlim(0, (cats["revenue"].max() / 100 or 1) * 1.32)
        for p, r in zip(positions, cats.itertuples(), strict=True):
            rate = percent(tenths_percent(r.discount, r.revenue))
            ax.annotate(f"-{money(r.discount)} ({rate})", (r.revenue / 100, p), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=8)  # fmt: skip
        ax.legend(loc="lower right", frameon=False)
        ax.set_xlabel("Revenue (US$)")

    return _draw(
        "discounts",
        title,
        alt,
        1.1 + 1.5 * BAR * len(cats),
        paint,
        "For each category, revenue at list price and after discounts; labels give the discount "
        "and its rate (insights/category_summary.csv).",
    )


MIN_SPAN_HOURS = 12  # a trend axis spans at least this, so a few hours are not squeezed


def _time_axis(ax, trends: Trends) -> None:
    """Hours from the first on record (within the window) to the report's hour: a pipeline
    that started yesterday shows a day, not six empty days and a sliver."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    hour = pd.Timedelta(hours=1)
    end = pd.to_datetime(trends.last, format=HOUR_FORMAT) + hour
    start = pd.to_datetime(trends.first, format=HOUR_FORMAT)
    if len(trends.hours):
        start = max(start, pd.Timestamp(trends.hours["hour"].min()))
    start = min(start - hour, end - pd.Timedelta(hours=MIN_SPAN_HOURS))
    ax.set_xlim(start, end)
    ax.set_xlabel("Hour (UTC)")


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

    def paint(ax) -> None:
        ax.plot(hours["hour"], hours["revenue"] / 100, color=COLOUR, marker="o", markersize=4)
        _dollar_axis(ax.yaxis)
        ax.set_ylim(0, max(hours["revenue"].max() / 100 if len(hours) else 0, 1) * 1.15)
        _time_axis(ax, trends)
        ax.set_ylabel("Revenue at list price (US$)")

    return _draw(
        "trend_revenue",
        title,
        alt,
        2.8,
        paint,
        "Revenue at list price of each hour on record (history/); an hour without a run has no "
        "point.",
    )


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

    def paint(ax) -> None:
        from matplotlib.ticker import MaxNLocator, StrMethodFormatter

        ax.plot(hours["hour"], hours["carts"], color=COLOUR, marker="o", markersize=4)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        ax.set_ylim(0, max(hours["carts"].max() if len(hours) else 0, 1) * 1.15)
        _time_axis(ax, trends)
        ax.set_ylabel("Carts")

    return _draw(
        "trend_carts",
        title,
        alt,
        2.8,
        paint,
        "Carts of each hour on record (history/); an hour without a run has no point.",
    )


def trend_categories(trends: Trends) -> Chart:
    per_hour = trends.categories
    title = f"Revenue per hour of the top {len(per_hour.columns)} categories"
    alt = (
        f"Line chart of revenue per hour from {trends.first} to {trends.last} UTC for the "
        f"categories with the most revenue over the period: "
        + _listed([(str(c), f"{money(int(per_hour[c].sum()))} in all") for c in per_hour.columns])
        + "."
    )

    def paint(ax) -> None:
        for colour, column in zip(PALETTE, per_hour.columns, strict=False):
            ax.plot(per_hour.index, per_hour[column] / 100, color=colour, marker="o",
                    markersize=4, label=str(column))  # fmt: skip
        _dollar_axis(ax.yaxis)
        top = per_hour.to_numpy().max() / 100 if per_hour.size else 0
        ax.set_ylim(0, max(top, 1) * 1.15)
        _time_axis(ax, trends)
        ax.set_ylabel("Revenue at list price (US$)")
        if len(per_hour.columns):
            ax.figure.legend(loc="outside lower center", frameon=False, fontsize=8,
                             ncols=min(5, len(per_hour.columns)))  # fmt: skip

    return _draw(
        "trend_categories",
        title,
        alt,
        3.0,
        paint,
        "Revenue at list price per hour of the categories with the most revenue over the period "
        "(history/).",
    )
