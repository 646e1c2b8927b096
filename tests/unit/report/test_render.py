"""The report's HTML and Markdown: well-formed, self-contained, alt text on every image, data
escaped, and cosmetic failures turned into notes instead of errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from pipeline.report import build, charts, render, trend_charts
from pipeline.rules.changes import snapshot
from pipeline.rules.tables import Tables

HOUR = "2026-11-25T17"


def user_summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [1, 2, 3],
            "first_name": ["Ann", "Bob <b>", "Cy"],
            "age": [24, 25, 65],
            "city": ["Oslo", "Rome & Co", "Ann_*x*"],
            "carts": [1, 3, 1],
            "total_items": [3, 10, 2],
            "total_spent": [100.00, 300.01, 50.00],
            "total_spent_discounted": [90.00, 270.00, 45.00],
        }
    )


def category_summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "category": ["a-cat", "<script>alert(1)</script>", "c-cat"],
            "total_sales": [100.00, 300.01, 50.00],
            "total_items_sold": [4, 1, 10],
            "total_sales_discounted": [90.00, 270.00, 45.00],
        }
    )


def history() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"date_hour": h, "level": "hour", "carts": c, "revenue": r}
            for h, c, r in (("2026-11-25T16", 4, 420.0), (HOUR, 5, 450.01))
        ]
        + [
            {"date_hour": h, "level": "category", "category": "a-cat", "revenue": r}
            for h, r in (("2026-11-25T16", 420.0), (HOUR, 100.0))
        ]
    )


def inputs(**changes: object) -> build.Inputs:
    previous = snapshot(
        "2026-11-25T16",
        category_summary().assign(total_sales=[120.0, 300.0, 0.0]),
        pd.Series([1, 2, 3, 4]),
    )
    values = {
        "partition": HOUR,
        "user_summary": user_summary(),
        "category_summary": category_summary(),
        "cart_ids": pd.Series([1, 2, 3, 4, 5, 5]),
        "previous": previous,
        "history": history(),
    }
    values.update(changes)
    return build.Inputs(**values)  # type: ignore[arg-type]


CHARTS = (
    "category_revenue", "top_customers", "city_revenue", "age_bands", "units_vs_revenue",
    "frequency", "discounts", "trend_revenue", "trend_carts", "trend_categories",
)  # fmt: skip


@pytest.fixture
def sketches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Charts replaced by a tiny SVG, for tests about everything but the drawing (fast)."""
    for name in CHARTS:

        def sketch(*_args: object, _name: str = name) -> charts.Chart:
            svg = '<svg xmlns="http://www.w3.org/2000/svg" width="9pt" height="6pt"></svg>'
            return charts.Chart(_name, f"Title of {_name}", f"Alt text of {_name}", svg)

        monkeypatch.setattr(trend_charts if name.startswith("trend_") else charts, name, sketch)


@pytest.fixture(scope="module")
def report() -> build.Report:
    return build.build(inputs())


@pytest.fixture(scope="module")
def page(report: build.Report) -> str:
    return render.html(report)


def test_the_html_is_well_formed_and_has_every_section(page: str) -> None:
    root = ET.fromstring(page)  # raises on anything that is not well-formed
    assert root.tag == "html" and root.get("lang") == "en"
    ids = [s.get("id") for s in root.iter("section")]
    assert ids == ["key-figures", "findings", "changes", "charts", "trends", "tables"]
    assert page.startswith("<!DOCTYPE html>\n")
    assert "@page { size: A4;" in page


SVG = "{http://www.w3.org/2000/svg}"


def svgs(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(f"{SVG}svg"))


def test_every_chart_is_an_inline_svg_named_by_its_title_and_alt_text(
    page: str, report: build.Report
) -> None:
    root = ET.fromstring(page)
    figures = [f for f in root.iter("figure") if f.get("class") == "chart"]
    drawn = report.charts + report.trend_charts
    assert len(figures) == len(drawn) == 10  # 7 charts of the hour, 3 of the trends
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids))  # several charts in one page: no id twice
    for figure, chart in zip(figures, drawn, strict=True):
        assert figure.get("id") == f"chart-{chart.key}"
        (svg,) = [child for child in figure if child.tag == f"{SVG}svg"]
        assert svg.get("role") == "img"
        title_id, desc_id = svg.get("aria-labelledby", "").split()
        named = {e.get("id"): e for e in svg.iter() if e.get("id")}
        assert named[title_id].tag == f"{SVG}title" and named[title_id].text == chart.title
        assert named[desc_id].tag == f"{SVG}desc" and named[desc_id].text == chart.alt
        assert len(chart.alt) > 40, chart.alt
        assert figure.find("figcaption").text == chart.caption
        for element in svg.iter():  # references inside an SVG stay inside it
            for name, value in element.attrib.items():
                if name.endswith("href"):
                    assert value.startswith("#"), (name, value)


def test_nothing_is_fetched_from_elsewhere_and_nothing_runs(page: str) -> None:
    root = ET.fromstring(page)
    for element in root.iter():
        tag = element.tag.removeprefix(SVG)
        assert tag not in {"script", "link", "iframe", "object", "embed", "base", "image"}
        # nor anything in a chart that could reach out or restyle the page around it
        assert element.tag not in {f"{SVG}{t}" for t in ("foreignObject", "use", "style")}
        assert not any(name.startswith("on") for name in element.attrib), element.tag
        for name in ("src", "href", "action", "srcset", "poster"):
            value = element.get(name)
            assert value is None or value.startswith("data:"), (element.tag, name, value)
    # the one URL in the page is the SVG namespace's name, which nothing fetches
    text = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in text and "https://" not in text
    assert "url(" not in text and "@import" not in text


def test_the_change_table_says_which_hour_is_before_and_which_now(page: str) -> None:
    """Its columns go before, now, change: the caption names the hours in that order."""
    caption = ET.fromstring(page).find(".//section[@id='changes']//table/caption")
    assert caption is not None and caption.text == (
        "Revenue and units by category: before is 2026-11-25T16, now is 2026-11-25T17"
    )


def test_data_is_escaped_and_shown_as_text(page: str) -> None:
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    items = [li.text for li in ET.fromstring(page).iter("li")]
    assert any("Bob <b> (user 2, Rome & Co, age 25) spent $300.01" in (t or "") for t in items)


def test_findings_changes_and_trends_are_in_both_documents(report: build.Report) -> None:
    page, text = render.html(report), render.markdown(report)
    for finding in report.findings:
        assert render._e(finding.text) in page
    assert text.startswith("# Shop report for 2026-11-25 17:00 UTC\n")
    assert "\n1. Sales: 5 carts from 3 customers, 6 lines, 15 units; $450.01 at list prices" in text
    # Markdown specials from the data are made inert
    assert "Ann\\_\\*x\\* $50.00" in text and "\\<script\\>" in text
    change = (
        "Against 2026-11-25T16 (1 hour earlier): carts 5 (+1), lines 6 (+2), units 15 (no "
        "change), revenue $450.01 (+$30.01, +7.1%)."
    )
    assert change in text and render._e(change) in page
    trend = (
        "Over the last 7 days, 2 hours are on record: $870.01 of revenue, $435.01 and 4.5 carts "
        "an hour on average; this hour $450.01 (+$15.00 against the average)."
    )
    assert trend in text and trend in page


def test_rendering_is_deterministic(report: build.Report) -> None:
    assert render.html(build.build(inputs())) == render.html(report)


@pytest.mark.usefixtures("sketches")
def test_a_chart_that_fails_becomes_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_tables: Tables) -> charts.Chart:
        raise RuntimeError("no fonts")

    monkeypatch.setattr(charts, "category_revenue", broken)
    report = build.build(inputs())
    assert report.warnings == ["chart categories: This chart could not be drawn (no fonts)."]
    page = render.html(report)
    ET.fromstring(page)
    assert "Revenue by category: This chart could not be drawn (no fonts)." in page
    assert len(svgs(ET.fromstring(page))) == 9


@pytest.mark.usefixtures("sketches")
def test_an_unreadable_previous_hour_or_history_is_said_plainly() -> None:
    notes = {
        "previous": "The previous complete snapshot, 2026-11-25T16, could not be read (gone).",
        "history": "The history could not be read (bad file), so trends are left out.",
    }
    report = build.build(inputs(previous=None, history=None, notes=notes))
    text = render.markdown(report)
    assert notes["previous"] in text and notes["history"] in text
    assert "There is no earlier complete snapshot" not in text
    assert len(report.warnings) == 2
    ET.fromstring(render.html(report))


@pytest.mark.usefixtures("sketches")
def test_the_first_hour_says_there_is_nothing_to_compare() -> None:
    text = render.markdown(build.build(inputs(previous=None)))
    assert (
        "## What changed\n\nThere is no earlier complete snapshot, so there is nothing to "
        "compare this hour with.\n"
    ) in text


def test_an_hour_without_carts_still_makes_a_report() -> None:
    report = build.build(
        inputs(
            user_summary=user_summary().iloc[:0],
            category_summary=category_summary().iloc[:0],
            cart_ids=pd.Series([], dtype="int64"),
            previous=None,
            history=None,
        )
    )
    page = render.html(report)
    root = ET.fromstring(page)
    assert not svgs(root) and not list(root.iter("figure"))
    assert [li.text for li in root.iter("li")] == [
        "Sales: no sales in this snapshot (0 carts, $0.00)."
    ]
