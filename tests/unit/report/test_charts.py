"""Charts: titles, axis labels with units, dollars with thousands separators, alt text with the
figures, and a drawing that depends on the summary tables only (never on the cart lines); the
SVG itself: one mark per row, sizes in proportion to the figures, names from the data escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime

import pandas as pd
import pytest

from pipeline.report import charts, plot, svg, trend_charts
from pipeline.rules import history
from pipeline.rules import tables as table_rules

SVG = "{http://www.w3.org/2000/svg}"


def tables(lines: int = 4) -> table_rules.Tables:
    users = pd.DataFrame(
        {
            "user_id": [1, 2], "first_name": ["Ann", "Bob"], "age": [24, 52],
            "city": ["Oslo", "Rome"], "carts": [1, 2], "total_items": [3, 4],
            "total_spent": [1234.50, 8765.49], "total_spent_discounted": [1000.00, 8000.00],
        }
    )  # fmt: skip
    cats = pd.DataFrame(
        {
            "category": ["laptops", "beauty"], "total_sales": [9000.00, 999.99],
            "total_items_sold": [3, 4], "total_sales_discounted": [8100.00, 900.00],
        }
    )  # fmt: skip
    return table_rules.tables(users, cats, pd.Series([1, 2, 3] + [3] * (lines - 3)))


def texts(chart: charts.Chart) -> list[str]:
    assert chart.svg is not None
    root = ET.fromstring(chart.svg)
    return ["".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")]


@pytest.mark.parametrize(
    ("draw", "title", "labels"),
    [
        (lambda t: charts.category_revenue(t), "Revenue by category",
         ["Revenue at list price (US$)", "$9,000.00 (90.0%)", "$8,000"]),
        (lambda t: charts.top_customers(t, 10), "Top 2 customers by spend",
         ["Spend at list price (US$)", "Bob (#2, Rome, 52)", "$8,765.49, 2 carts"]),
        (lambda t: charts.city_revenue(t, 1), "Revenue by city",
         ["Revenue at list price (US$)", "1 other city", "$1,234.50 (12.3%)"]),
        (lambda t: charts.age_bands(t), "Revenue by age band",
         ["Age band (years), and customers in it", "Revenue at list price (US$)", "45-54",
          "12.3%", "87.7%"]),
        (lambda t: charts.units_vs_revenue(t), "Units against revenue by category",
         ["Units sold", "Revenue at list price (US$)", "laptops"]),
        (lambda t: charts.frequency(t), "Purchase frequency against basket size",
         ["Carts per customer, and customers with that many", "Average cart value (US$)",
          "$1,234.50", "$4,382.75"]),
        (lambda t: charts.discounts(t), "List against discounted revenue by category",
         ["Revenue (US$)", "List price", "After discounts", "-$900.00 (10.0%)"]),
    ],
)  # fmt: skip
def test_each_chart_has_its_title_axis_labels_and_separated_dollars(draw, title, labels) -> None:
    chart = draw(tables())
    shown = texts(chart)
    assert chart.title == title and title in shown
    for label in labels:
        assert label in shown, (label, shown)
    assert chart.caption and chart.alt.endswith(".")


def test_alt_text_states_the_figures() -> None:
    alt = charts.category_revenue(tables()).alt
    assert alt == (
        "Horizontal bar chart of revenue at list price for 2 categories, largest first: "
        "laptops $9,000.00; beauty $999.99."
    )
    assert "Bob (#2, Rome, 52) $8,765.49" in charts.top_customers(tables(), 10).alt


def test_a_chart_is_the_same_whatever_the_number_of_cart_lines() -> None:
    few, many = tables(lines=4), tables(lines=40_000)
    assert few.lines != many.lines
    for draw in (charts.category_revenue, charts.age_bands, charts.discounts):
        assert draw(few).svg == draw(many).svg


def test_trend_charts_draw_the_hours_on_record() -> None:
    frame = pd.DataFrame(
        [
            {"date_hour": "2026-11-25T16", "level": "hour", "carts": 1200, "revenue": 12345.67},
            {"date_hour": "2026-11-25T17", "level": "hour", "carts": 1300, "revenue": 23456.78},
            {"date_hour": "2026-11-25T17", "level": "category", "category": "x", "revenue": 5.0},
        ]
    )
    trends = history.trends(frame, "2026-11-25T17", 7)
    revenue = trend_charts.trend_revenue(trends)
    assert "Revenue per hour, last 7 days" in texts(revenue)
    assert "Hour (UTC)" in texts(revenue)
    assert "$20,000" in texts(revenue)
    assert revenue.alt.endswith("lowest $12,345.67, highest $23,456.78, last $23,456.78.")
    carts = trend_charts.trend_carts(trends)
    assert "Carts" in texts(carts) and "1,250" in texts(carts)
    assert re.search(r"x \$5\.00 in all", trend_charts.trend_categories(trends).alt)


def test_dollar_signs_in_names_are_text_not_math() -> None:
    t = tables()
    t.categories.loc[0, "category"] = "Ca$h $tore"
    assert "Ca$h $tore" in texts(charts.category_revenue(t))


def test_large_amounts_are_counted_in_millions_on_the_axis_and_exact_on_the_bars() -> None:
    t = tables()
    t.categories.loc[0, "revenue"] = 123_456_789_012  # $1,234,567,890.12
    shown = texts(charts.category_revenue(t))
    assert "Revenue at list price (millions of US$)" in shown
    assert "$1,000" in shown  # a tick: $1,000 million
    assert "$1,234,567,890.12 (100.0%)" in shown


def test_names_that_would_overlap_are_left_off_the_scatter() -> None:
    users = pd.DataFrame(
        {"user_id": [1], "first_name": ["A"], "age": [30], "city": ["X"], "carts": [1],
         "total_items": [1], "total_spent": [100.0], "total_spent_discounted": [100.0]}
    )  # fmt: skip
    cats = pd.DataFrame(
        {
            "category": ["far-away", "crowd-one", "crowd-two"],
            "total_sales": [1000.0, 100.0, 100.5],
            "total_items_sold": [1, 500, 501],
            "total_sales_discounted": [1000.0, 100.0, 100.5],
        }
    )
    shown = texts(charts.units_vs_revenue(table_rules.tables(users, cats, pd.Series([1]))))
    assert "far-away" in shown and "crowd-two" in shown  # by revenue: crowd-two first
    assert "crowd-one" not in shown


def parsed(chart: charts.Chart) -> ET.Element:
    assert chart.svg is not None
    return ET.fromstring(chart.svg)


def bars(chart: charts.Chart) -> list[dict[str, str]]:
    return [dict(r.attrib, tip=r.findtext(f"{SVG}title")) for r in parsed(chart).iter(f"{SVG}rect")]


def anchored(chart: charts.Chart, anchor: str) -> list[str]:
    return [
        t.text or "" for t in parsed(chart).iter(f"{SVG}text") if t.get("text-anchor") == anchor
    ]


def test_a_chart_is_an_svg_named_by_its_title_and_described_by_its_alt_text() -> None:
    chart = charts.category_revenue(tables())
    root = parsed(chart)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "chart-categories-title chart-categories-desc"
    assert root.find(f"{SVG}title").attrib == {"id": "chart-categories-title"}
    assert root.findtext(f"{SVG}title") == "Revenue by category"
    assert root.findtext(f"{SVG}desc") == chart.alt
    assert (root.get("width"), root.get("height")) == ("672", "144")  # 2 rows of 30 px
    assert root.get("viewBox") == "0 0 672 144"


def test_horizontal_bars_one_per_category_largest_on_top_in_proportion() -> None:
    chart = charts.category_revenue(tables())
    drawn = bars(chart)
    assert [b["tip"] for b in drawn] == ["laptops: revenue $9,000.00", "beauty: revenue $999.99"]
    assert [(b["x"], b["width"], b["height"]) for b in drawn] == [
        ("58.2", "481.6", "21.6"),  # $9,000.00
        ("58.2", "53.5", "21.6"),  # $999.99: 9,000 / 999.99 = 9.0 times shorter
    ]
    assert float(drawn[0]["y"]) < float(drawn[1]["y"])  # laptops on top
    assert anchored(chart, "end") == ["beauty", "laptops"]  # the y axis, bottom up
    ticks = ["$0", "$2,000", "$4,000", "$6,000", "$8,000", "$10,000"]
    assert anchored(chart, "middle") == [*ticks, "Revenue at list price (US$)"]


def test_two_series_draw_two_bars_a_row_and_a_legend() -> None:
    drawn = bars(charts.discounts(tables()))
    assert [b["tip"] for b in drawn] == [
        "laptops: list price $9,000.00", "laptops: after discounts $8,100.00",
        "beauty: list price $999.99", "beauty: after discounts $900.00",
        None, None,  # the legend's two squares
    ]  # fmt: skip
    assert [b["fill"] for b in drawn] == [charts.COLOUR, charts.SECOND] * 3


def test_the_cities_left_out_are_one_grey_bar() -> None:
    drawn = bars(charts.city_revenue(tables(), 1))
    tips = ["Rome: revenue $8,765.49", "1 other city: revenue $1,234.50"]
    assert [b["tip"] for b in drawn] == tips
    assert [b["fill"] for b in drawn] == [charts.COLOUR, charts.MUTED]


def test_vertical_bars_one_per_band_with_heights_in_proportion() -> None:
    chart = charts.age_bands(tables())
    drawn = bars(chart)
    assert [b["tip"] for b in drawn] == [
        "under 25: $1,234.50", "25-34: $0.00", "35-44: $0.00", "45-54: $8,765.49",
        "55-64: $0.00", "65 and over: $0.00",
    ]  # fmt: skip
    assert [b["height"] for b in drawn] == ["25.6", "0", "0", "181.7", "0", "0"]
    # every bar stands on the x axis (y + height = 245)
    assert {round(float(b["y"]) + float(b["height"]), 1) for b in drawn} == {245.0}
    shown = anchored(chart, "middle")
    assert shown[:4] == ["under 25", "1", "25-34", "0"]  # band, then its customers
    assert "12.3%" in shown and "87.7%" in shown  # shares over the bars that have customers


def test_a_chart_without_rows_still_draws_its_axes() -> None:
    chart = charts.top_customers(tables(), 0)
    assert chart.title == "Top 0 customers by spend"
    assert bars(chart) == []
    assert "Spend at list price (US$)" in texts(chart)
    assert parsed(chart).get("height") == "114"  # room for one row


def test_names_from_the_data_are_escaped_text_never_markup() -> None:
    t = tables()
    name = """<b onload="x()">A & B's</b>"""
    t.categories.loc[0, "category"] = name
    chart = charts.category_revenue(t)
    assert chart.svg is not None and "<b " not in chart.svg
    assert "&lt;b onload=&quot;x()&quot;&gt;A &amp; B&#x27;s&lt;/b&gt;" in chart.svg
    root = parsed(chart)
    assert not [e for e in root.iter() if e.tag.removeprefix(SVG) == "b"]
    assert name in anchored(chart, "end")
    assert bars(chart)[0]["tip"] == f"{name}: revenue $9,000.00"


def test_long_labels_are_shortened_in_the_chart_only() -> None:
    t = tables()
    t.categories.loc[0, "category"] = "x" * 45
    chart = charts.category_revenue(t)
    assert "x" * 39 + "\u2026" in anchored(chart, "end")
    assert "x" * 45 in chart.alt


def test_the_same_figures_give_the_same_bytes() -> None:
    assert charts.discounts(tables()).svg == charts.discounts(tables()).svg


@pytest.mark.parametrize(
    ("top", "integer", "expected"),
    [
        (9_500, False, [0, 2_000, 4_000, 6_000, 8_000]),
        (6, False, [0, 1, 2, 3, 4, 5, 6]),  # six intervals: the most
        (7, False, [0, 2, 4, 6]),  # seven would be one too many
        (1_495, True, [0, 250, 500, 750, 1_000, 1_250]),
        (2.5, False, [0, 0.5, 1, 1.5, 2, 2.5]),
        (2.5, True, [0, 1, 2]),  # counts: no half steps
        (0.001, True, [0]),
        (0, False, [0]),
    ],
)
def test_ticks_fall_on_round_numbers(top: float, integer: bool, expected: list[float]) -> None:
    assert plot.ticks(top, integer) == pytest.approx(expected)


def test_hours_are_ticked_on_round_hours_and_midnight_shows_the_date() -> None:
    axis = plot.time_axis(datetime(2026, 11, 24, 17), datetime(2026, 11, 25, 5), "Hour (UTC)")
    assert axis.labels == [["18:00"], ["20:00"], ["22:00"], ["Nov 25"], ["02:00"], ["04:00"]]


def test_a_year_of_hours_gets_at_most_eight_ticks() -> None:
    axis = plot.time_axis(datetime(2025, 11, 25, 17), datetime(2026, 11, 25, 18), "Hour (UTC)")
    assert len(axis.ticks) <= plot.MAX_TIME_TICKS + 1
    assert all(len(label) == 1 and " " in label[0] for label in axis.labels)  # dates only


def test_text_widths_come_from_the_fonts_advance_widths() -> None:
    assert svg.text_width("0", 12) == pytest.approx(1303 * 12 / 2048)
    assert svg.text_width("il", 20) == pytest.approx((569 + 569) * 20 / 2048)
    assert svg.text_width("é", 10) == pytest.approx(10.0)  # outside ASCII: a full em
