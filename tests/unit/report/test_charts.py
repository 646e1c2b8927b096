"""Charts: titles, axis labels with units, dollars with thousands separators, alt text with the
figures, and a drawing that depends on the summary tables only (never on the cart lines)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from pipeline.report import charts
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
    revenue = charts.trend_revenue(trends)
    assert "Revenue per hour, last 7 days" in texts(revenue)
    assert "Hour (UTC)" in texts(revenue)
    assert "$20,000" in texts(revenue)
    assert revenue.alt.endswith("lowest $12,345.67, highest $23,456.78, last $23,456.78.")
    carts = charts.trend_carts(trends)
    assert "Carts" in texts(carts) and "1,250" in texts(carts)
    assert re.search(r"x \$5\.00 in all", charts.trend_categories(trends).alt)


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
