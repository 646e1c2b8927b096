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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline.rules.history import HOUR_FORMAT, Trends
from pipeline.rules.numbers import count, money, percent, plural, tenths_percent
from pipeline.rules.tables import MAX_CART_GROUP, Tables

WIDTH = 7.0  # inches: the text width of an A4 page with 15 mm margins
BAR = 0.32  # inches per horizontal bar
if TYPE_CHECKING:  # matplotlib itself is imported when a chart is drawn
    from matplotlib.typing import RcKeyType

STYLE: dict[RcKeyType, Any] = {
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
SMALL = 8  # points: value labels
COLOUR = "#2f6f9f"
SECOND = "#e0a040"
MUTED = "#9aa9b5"
PALETTE = ("#2f6f9f", "#e0a040", "#4e9a5b", "#b5475b", "#7a5fa8")

#: Margins in inches around the axes. The left one is measured (the widest y tick label); the
#: others hold a line of text each. matplotlib's layout engines would find them too, at the cost
#: of laying every text out twice: 40% of the drawing time.
TOP, BOTTOM, LINE, RIGHT, AXIS_LABEL, TICK_PAD = 0.36, 0.56, 0.14, 0.25, 0.26, 0.14
LABEL_CHARS = 40  # longer bar labels are shortened in the charts (not in the tables)
MIN_SPAN_HOURS = 12  # a trend axis spans at least this, so a few hours are not squeezed


@dataclass(frozen=True)
class Chart:
    """One figure of the report: SVG text, or None with the reason it could not be drawn."""

    key: str
    title: str
    alt: str
    svg: str | None = None
    note: str | None = None
    caption: str = ""  # what the marks are and where the figures come from


# --- drawing -------------------------------------------------------------------------------------


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


def _figure(height: float) -> Any:  # a matplotlib Figure, imported lazily: it is slow to import
    from matplotlib.figure import Figure

    return Figure(figsize=(WIDTH, height))


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML declaration and DOCTYPE


def _text_width(texts: list[str], size: float = STYLE["font.size"]) -> float:
    """Width in inches of the widest text (of its lines) at ``size`` points, from the font's
    metrics, without drawing anything."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    prop = FontProperties(family=STYLE["font.family"], size=size)
    measure = TextToPath().get_text_width_height_descent
    lines = [line for text in texts for line in text.split("\n")]
    return max((measure(line, prop, ismath=False)[0] for line in lines), default=0.0) / 72


def _left_margin(tick_labels: list[str], axis_label: bool) -> float:
    return _text_width(tick_labels) + TICK_PAD + (AXIS_LABEL if axis_label else 0.0) + 0.08


def _fit(fig: Any, ax: Any, height: float, x_lines: int) -> None:
    """Place the axes: room on the left for the y tick labels and axis label, one line above
    for the title, and below for ``x_lines`` lines of x tick labels and the axis label."""
    low, high = ax.get_ylim()
    ticks = [t for t in ax.yaxis.get_major_locator()() if low <= t <= high]
    labels = ax.yaxis.get_major_formatter().format_ticks(ticks)
    left = _left_margin(labels, bool(ax.get_ylabel()))
    bottom = BOTTOM + LINE * (x_lines - 1)
    fig.subplots_adjust(
        left=left / WIDTH, right=1 - RIGHT / WIDTH, bottom=bottom / height, top=1 - TOP / height
    )


def _draw(
    key: str,
    title: str,
    alt: str,
    height: float,
    paint: Callable[[Any], None],
    caption: str,
    x_lines: int = 1,
) -> Chart:
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = _figure(height)
        ax = fig.add_subplot()
        paint(ax)
        ax.set_title(title, loc="left")
        _fit(fig, ax, height, x_lines)
        return Chart(key, title, alt, _svg(fig), caption=caption)


def _usd(value: float) -> str:
    return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"


def _money_axis(axis: Any, top: float, what: str) -> None:
    """Dollar ticks with thousands separators, counted in dollars, thousands or millions of
    dollars so that no tick is wider than "$10,000"; the axis label says which."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    scale, unit = (
        (1, "US$") if top < 1e5 else (1e3, "thousands of US$") if top < 1e8
        else (1e6, "millions of US$")
    )  # fmt: skip
    axis.set_major_formatter(FuncFormatter(lambda value, _pos: _usd(value / scale)))
    axis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    axis.set_label_text(f"{what} ({unit})")


def _count_axis(axis: Any, what: str) -> None:
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    axis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    axis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    axis.set_label_text(what)


def _shorten(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "\u2026"


def _room(values: list[float], texts: list[str], tick_labels: list[str]) -> float:
    """The x limit that leaves room after each horizontal bar for its value label."""
    axes = WIDTH - RIGHT - _left_margin(tick_labels, axis_label=False)
    top = max(values, default=0.0) or 1.0
    need = [
        value * axes / max(axes - _text_width([text], SMALL) - 0.12, 0.5)
        for value, text in zip(values, texts, strict=True)
    ]
    return max([top * 1.05, *need])


def _hbars(
    ax: Any,
    labels: list[str],
    values: list[float],
    texts: list[str],
    what: str,
    colour: str | list[str] = COLOUR,
) -> None:
    """Horizontal bars, the first label on top, each with its value written after the bar."""
    positions = list(range(len(labels)))[::-1]
    shown = [_shorten(label) for label in labels]
    ax.barh(positions, values, color=colour, height=0.7)
    ax.set_yticks(positions, shown)
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", length=0)
    ax.set_xlim(0, _room(values, texts, shown))
    _money_axis(ax.xaxis, max(values, default=0.0), what)
    for y, x, text in zip(positions, values, texts, strict=True):
        ax.annotate(text, (x, y), xytext=(4, 0), textcoords="offset points", va="center",
                    fontsize=SMALL)  # fmt: skip


def _vbars(ax: Any, ticks: list[str], values: list[float], texts: list[str], what: str) -> None:
    """Vertical bars with a short label on top of each (empty text: no label)."""
    x = list(range(len(ticks)))
    ax.bar(x, values, color=COLOUR, width=0.8)
    ax.set_xticks(x, ticks)
    ax.grid(axis="x", visible=False)
    ax.tick_params(axis="x", length=0)
    top = max(values, default=0.0) or 1.0
    ax.set_ylim(0, top * 1.15)
    _money_axis(ax.yaxis, top, what)
    for xi, value, text in zip(x, values, texts, strict=True):
        if text:
            ax.annotate(text, (xi, value), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=SMALL)  # fmt: skip


def _listed(pairs: list[tuple[str, str]], limit: int = 5) -> str:
    shown = "; ".join(f"{a} {b}" for a, b in pairs[:limit])
    rest = len(pairs) - limit
    return shown + (f"; and {rest} more" if rest > 0 else "")


# --- the hour's charts ---------------------------------------------------------------------------


def category_revenue(t: Tables) -> Chart:
    cats = t.categories
    title = "Revenue by category"
    alt = (
        "Horizontal bar chart of revenue at list price for "
        f"{plural(len(cats), 'category', 'categories')}, largest first: "
        + _listed([(r.category, money(r.revenue)) for r in cats.itertuples()])
        + "."
    )
    texts = [
        f"{money(r.revenue)} ({percent(tenths_percent(r.revenue, t.revenue))})"
        for r in cats.itertuples()
    ]

    def paint(ax: Any) -> None:
        _hbars(ax, cats["category"].tolist(), (cats["revenue"] / 100).tolist(), texts,
               "Revenue at list price")  # fmt: skip

    caption = (
        "One bar per category: revenue at list price and its share of the hour's revenue "
        "(insights/category_summary.csv)."
    )
    return _draw("categories", title, alt, 0.95 + BAR * len(cats), paint, caption)


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
            [(label, money(r.spend)) for label, r in zip(labels, top.itertuples(), strict=True)]
        )
        + "."
    )
    texts = [f"{money(r.spend)}, {plural(r.carts, 'cart')}" for r in top.itertuples()]

    def paint(ax: Any) -> None:
        _hbars(ax, labels, (top["spend"] / 100).tolist(), texts, "Spend at list price")

    caption = (
        "One bar per customer: first name, user id, city and age; spend at list price and carts "
        "(insights/user_summary.csv)."
    )
    return _draw("customers", title, alt, 0.95 + BAR * len(top), paint, caption)


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
    texts = [f"{money(v)} ({percent(tenths_percent(v, t.revenue))})" for v in values]

    def paint(ax: Any) -> None:
        _hbars(ax, labels, [v / 100 for v in values], texts, "Revenue at list price", colours)

    caption = (
        "One bar per city of the customers, the smallest summed as one grey bar; shares are of "
        "the hour's revenue (insights/user_summary.csv)."
    )
    return _draw("cities", title, alt, 0.95 + BAR * len(labels), paint, caption)


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

    def paint(ax: Any) -> None:
        _vbars(
            ax,
            [f"{r.band}\n{count(r.customers)}" for r in ages.itertuples()],
            (ages["spend"] / 100).tolist(),
            [
                percent(tenths_percent(r.spend, t.revenue)) if r.customers else ""
                for r in ages.itertuples()
            ],
            "Revenue at list price",
        )
        ax.set_xlabel("Age band (years), and customers in it")

    caption = (
        "Revenue at list price by the customers' age band; above each bar its share of the "
        "hour's revenue, under it the number of customers (insights/user_summary.csv)."
    )
    return _draw("ages", title, alt, 3.2, paint, caption, x_lines=2)


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
    height = 3.6

    def paint(ax: Any) -> None:
        x_top = max(int(cats["units"].max()), 1) * 1.2
        y_top = max(cats["revenue"].max() / 100, 1) * 1.12
        ax.scatter(cats["units"], cats["revenue"] / 100, color=COLOUR, s=36, zorder=3)
        ax.set_xlim(0, x_top)
        ax.set_ylim(0, y_top)
        _count_axis(ax.xaxis, "Units sold")
        _money_axis(ax.yaxis, y_top, "Revenue at list price")
        # Name the points from the largest revenue down, skipping one whose name would overlap
        # a name already placed (axes fractions; every category is in the table anyway).
        across = WIDTH - RIGHT - 1.3
        up = height - TOP - BOTTOM
        placed: list[tuple[float, float, float, float]] = []
        for r in cats.itertuples():
            x0, y0 = r.units / x_top + 0.01, r.revenue / 100 / y_top + 0.01
            box = (x0, y0, x0 + _text_width([r.category], SMALL) / across, y0 + 0.14 / up)
            if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
                   for b in placed):  # fmt: skip
                continue
            placed.append(box)
            ax.annotate(r.category, (r.units, r.revenue / 100), xytext=(4, 3),
                        textcoords="offset points", fontsize=SMALL)  # fmt: skip

    caption = (
        "One point per category: units sold against revenue at list price; a point whose name "
        "would cover another's is left unnamed (insights/category_summary.csv)."
    )
    return _draw("units", title, alt, height, paint, caption)


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

    def paint(ax: Any) -> None:
        _vbars(
            ax,
            [f"{g}\n{count(r.customers)}" for g, r in zip(groups, freq.itertuples(), strict=True)],
            (freq["avg_cart"] / 100).tolist(),
            [money(r.avg_cart) for r in freq.itertuples()],
            "Average cart value",
        )
        ax.set_xlabel("Carts per customer, and customers with that many")

    caption = (
        "Customers grouped by their number of carts: the average value of their carts at list "
        "price, and under each bar how many customers are in the group "
        "(insights/user_summary.csv)."
    )
    return _draw("frequency", title, alt, 3.2, paint, caption, x_lines=2)


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
    texts = [
        f"-{money(r.discount)} ({percent(tenths_percent(r.discount, r.revenue))})"
        for r in cats.itertuples()
    ]

    def paint(ax: Any) -> None:
        positions = list(range(len(cats)))[::-1]
        shown = [_shorten(c) for c in cats["category"]]
        listed = (cats["revenue"] / 100).tolist()
        ax.barh([p + 0.18 for p in positions], listed, height=0.36, color=COLOUR,
                label="List price")  # fmt: skip
        ax.barh([p - 0.18 for p in positions], cats["discounted"] / 100, height=0.36,
                color=SECOND, label="After discounts")  # fmt: skip
        ax.set_yticks(positions, shown)
        ax.grid(axis="y", visible=False)
        ax.tick_params(axis="y", length=0)
        ax.set_xlim(0, _room(listed, texts, shown))
        _money_axis(ax.xaxis, max(listed, default=0.0), "Revenue")
        for p, value, text in zip(positions, listed, texts, strict=True):
            ax.annotate(text, (value, p), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=SMALL)  # fmt: skip
        ax.legend(loc="lower right", frameon=False)

    caption = (
        "For each category, revenue at list price and after discounts; labels give the discount "
        "and its rate (insights/category_summary.csv)."
    )
    return _draw("discounts", title, alt, 1.15 + 1.5 * BAR * len(cats), paint, caption)


# --- trends --------------------------------------------------------------------------------------


def _time_axis(ax: Any, trends: Trends) -> None:
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

    def paint(ax: Any) -> None:
        ax.plot(hours["hour"], hours["revenue"] / 100, color=COLOUR, marker="o", markersize=4)
        top = max(hours["revenue"].max() / 100 if len(hours) else 0, 1) * 1.15
        ax.set_ylim(0, top)
        _money_axis(ax.yaxis, top, "Revenue at list price")
        _time_axis(ax, trends)

    caption = (
        "Revenue at list price of each hour on record (history/); an hour without a run has no "
        "point."
    )
    return _draw("trend_revenue", title, alt, 2.8, paint, caption)


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

    def paint(ax: Any) -> None:
        ax.plot(hours["hour"], hours["carts"], color=COLOUR, marker="o", markersize=4)
        ax.set_ylim(0, max(hours["carts"].max() if len(hours) else 0, 1) * 1.15)
        _count_axis(ax.yaxis, "Carts")
        _time_axis(ax, trends)

    caption = "Carts of each hour on record (history/); an hour without a run has no point."
    return _draw("trend_carts", title, alt, 2.8, paint, caption)


def trend_categories(trends: Trends) -> Chart:
    per_hour = trends.categories
    title = f"Revenue per hour of the top {len(per_hour.columns)} categories"
    alt = (
        f"Line chart of revenue per hour from {trends.first} to {trends.last} UTC for the "
        f"categories with the most revenue over the period: "
        + _listed([(str(c), f"{money(int(per_hour[c].sum()))} in all") for c in per_hour.columns])
        + "."
    )

    def paint(ax: Any) -> None:
        for colour, column in zip(PALETTE, per_hour.columns, strict=False):
            ax.plot(per_hour.index, per_hour[column] / 100, color=colour, marker="o",
                    markersize=4, label=str(column))  # fmt: skip
        top = per_hour.to_numpy().max() / 100 if per_hour.size else 0
        top = max(top, 1) * 1.4  # room for the legend above the lines
        ax.set_ylim(0, top)
        _money_axis(ax.yaxis, top, "Revenue at list price")
        _time_axis(ax, trends)
        if len(per_hour.columns):
            ax.legend(loc="upper left", frameon=False, fontsize=SMALL,
                      ncols=min(3, len(per_hour.columns)))  # fmt: skip

    caption = (
        "Revenue at list price per hour of the categories with the most revenue over the period "
        "(history/)."
    )
    return _draw("trend_categories", title, alt, 3.0, paint, caption)
