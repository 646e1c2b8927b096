"""The report's Checks section in HTML and Markdown: every check with value, band, status and
change, the sentence on the window, what was resolved, and the schema drift; data escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pandas as pd

from pipeline.report import build, render
from pipeline.rules.checks import HourChecks
from pipeline.rules.history import COLUMNS
from tests.support.expected import CATEGORY_SUMMARY, USER_SUMMARY

HOUR = "2026-11-25T17"
WINDOW = {"hours": 24, "window": 24, "needed": 12, "k": 3.5}
CHECKS = [
    {"name": "carts", "value": 76.0, "low": 182.4, "high": 201.6, "status": "anomaly",
     "change": "new"},
    {"name": "revenue", "value": 1903.66, "low": 1800.0, "high": 2000.5, "status": "ok",
     "change": "resolved"},
    {"name": "share:<b>x</b>", "value": 4.76, "low": 0.57, "high": 2.57, "status": "anomaly",
     "change": "still failing"},
    {"name": "cart_user_exists", "value": 2.0, "low": 0.0, "high": 5.0, "status": "ok",
     "change": None},
]  # fmt: skip
DRIFT = {"products": {"added": ["color"], "missing": []}, "users": {"added": [], "missing": []}}


def report(checks: HourChecks | None) -> build.Report:
    from io import StringIO

    users, cats = pd.read_csv(StringIO(USER_SUMMARY)), pd.read_csv(StringIO(CATEGORY_SUMMARY))
    history = pd.DataFrame(
        {"date_hour": ["2026-11-25T15", HOUR], "level": ["drift", "drift"],
         "endpoint": ["products", "products"], "field": ["color", "color"],
         "drift": ["added", "added"]}
    ).reindex(columns=[*COLUMNS, "date_hour"])  # fmt: skip
    return build.build(build.Inputs(HOUR, users, cats, pd.Series([1, 2, 2]), history=history,
                                    checks=checks))  # fmt: skip


def test_the_markdown_lists_every_check_then_the_drift_with_the_hour_first_seen() -> None:
    text = render.markdown(report(HourChecks(CHECKS, WINDOW, DRIFT, ["share:gone"])))
    section = text.split("## Checks\n\n", 1)[1].split("\n## ", 1)[0]
    assert section == (
        "Each figure against its 24 complete hours on record of the 24 before this one (median "
        "± 3.5 × 1.4826 × MAD, at least 5 % of the median): 2 anomalies.\n\n"  # noqa: RUF001
        "Resolved since the last hour, no longer checked: share of gone.\n\n"
        "| Check | Value | Expected | Status | Since the last hour |\n"
        "|---|---:|---|---|---|\n"
        "| carts | 76 | 182.40 to 201.60 | anomaly | new |\n"
        "| revenue | $1,903.66 | $1,800.00 to $2,000.50 | ok | resolved |\n"
        "| share of \\<b\\>x\\</b\\> | 4.76% | 0.57% to 2.57% | anomaly | still failing |\n"
        "| cart\\_user\\_exists | 2 | at most 5 | ok |  |\n"
        "\n### Schema drift\n\n"
        "products: color added (sent, not declared in pipeline/schema.py: dropped, not "
        "stored); first seen 2026-11-25T15.\n"
    )
    findings = text.split("## Findings\n\n", 1)[1]
    assert findings.startswith(
        "1. Anomalies against the 24 complete hours before this one: carts 76 (expected 182.40 "
        "to 201.60); share of \\<b\\>x\\</b\\> 4.76% (expected 0.57% to 2.57%).\n2. Sales: "
    )


def test_the_html_section_is_a_table_and_escapes_the_data() -> None:
    html = render.html(report(HourChecks(CHECKS, WINDOW, DRIFT)))
    ET.fromstring(html.replace("<!DOCTYPE html>", ""))  # still well-formed XML
    section = html.split('<section id="checks">', 1)[1].split("</section>", 1)[0]
    assert "<td>share of &lt;b&gt;x&lt;/b&gt;</td>" in section and "<b>x" not in section
    assert (  # an anomaly's row is marked
        '<tr class="anomaly"><td>carts</td><td class="num">76</td><td>182.40 to 201.60</td>'
        "<td>anomaly</td><td>new</td></tr>"
    ) in section
    assert (
        '<tr><td>revenue</td><td class="num">$1,903.66</td><td>$1,800.00 to $2,000.50</td>'
        "<td>ok</td><td>resolved</td></tr>"
    ) in section
    assert section.count('<tr class="anomaly">') == 2
    assert "<h3>Schema drift</h3><p>products: color added" in section.replace("\n", "")


def test_no_verdict_and_no_drift_are_said_so() -> None:
    waiting = [{"name": "carts", "value": 6.0, "low": None, "high": None,
                "status": "no verdict", "change": None}]  # fmt: skip
    text = render.markdown(report(HourChecks(waiting, {**WINDOW, "hours": 11}, {})))
    section = text.split("## Checks\n\n", 1)[1].split("\n## ", 1)[0]
    assert section.splitlines()[0] == (
        "No verdict on anomalies yet: 11 complete hours on record of the 24 before this one, "
        "12 needed."
    )
    assert "| carts | 6 | no verdict | no verdict |  |" in section
    assert section.endswith(
        "No schema drift: the API sent every declared field and no field the schema does not "
        "know.\n"
    )
    assert "Anomalies" not in text


def test_a_report_without_checks_has_no_section() -> None:
    assert "## Checks" not in render.markdown(report(None))
    assert 'id="checks"' not in render.html(report(None))
