"""The report as one self-contained HTML file and as Markdown findings.

The HTML needs nothing but itself: styles inline, charts as inline ``<svg>`` elements whose
title and description (the alt text) are what a screen reader announces, no script, no external
URL; it opens offline and prints on A4 (``@page``, no element
split across pages). It is well-formed XML too (void elements closed, only XML entities), so a
plain XML parser can check it. Every value from the data is escaped.

Plain Python string building rather than a template engine: the structure is small and fixed,
and one escaping function applied at every insertion is easy to check.
"""

from __future__ import annotations

import re
from datetime import datetime
from html import escape

import pandas as pd

from pipeline.report.build import Report
from pipeline.report.charts import Chart
from pipeline.rules import checks
from pipeline.rules.history import HOUR_FORMAT
from pipeline.rules.numbers import (
    count,
    div_half_up,
    money,
    percent,
    plural,
    tenths_percent,
)

SOURCES = (
    "insights/category_summary.csv",
    "insights/user_summary.csv",
    "insights/cart_details.csv",
)

STYLE = """
@page { size: A4; margin: 15mm 14mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif;
  font-size: 10.5pt; line-height: 1.45; color: #1d232a; max-width: 182mm; margin: 1.5em auto;
  padding: 0 1em; }
h1 { font-size: 19pt; margin: 0 0 0.2em; }
h2 { font-size: 14pt; margin: 1.6em 0 0.5em; border-bottom: 1px solid #c8d0d8;
  break-after: avoid; page-break-after: avoid; }
h3 { font-size: 11.5pt; margin: 1.2em 0 0.4em; break-after: avoid; }
p.meta { color: #4a5561; margin: 0; }
ol.findings li { margin: 0 0 0.45em; }
dl.figures { display: flex; flex-wrap: wrap; gap: 0.5em; margin: 0; }
dl.figures div { border: 1px solid #c8d0d8; border-radius: 4px; padding: 0.35em 0.7em;
  min-width: 9.5em; }
dl.figures dt { font-size: 8.5pt; color: #4a5561; }
dl.figures dd { margin: 0; font-size: 13pt; font-weight: bold; }
figure { margin: 1em 0; break-inside: avoid; page-break-inside: avoid; }
figure svg { display: block; width: 100%; max-width: 176mm; height: auto; }
figcaption { font-size: 9pt; color: #4a5561; }
p.note { border-left: 3px solid #e0a040; padding-left: 0.6em; color: #4a5561; }
table { border-collapse: collapse; width: 100%; font-size: 9.5pt; margin: 0.5em 0 1em; }
tr { break-inside: avoid; page-break-inside: avoid; }
th, td { border-bottom: 1px solid #dde3e8; padding: 0.25em 0.5em; text-align: left; }
th { background: #eef2f5; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.anomaly td { background: #fbe3e0; font-weight: bold; }
footer { margin-top: 2em; font-size: 8.5pt; color: #4a5561; }
@media print { body { margin: 0; padding: 0; max-width: none; } h2 { margin-top: 1.2em; } }
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def heading(partition: str) -> str:
    hour = datetime.strptime(partition, HOUR_FORMAT)
    return f"Shop report for {hour:%Y-%m-%d %H}:00 UTC"


def _figure(chart: Chart) -> str:
    if chart.svg is None:
        return (
            f'<figure class="chart missing" id="chart-{_e(chart.key)}">'
            f'<p class="note">{_e(chart.title)}: {_e(chart.note)}</p></figure>'
        )
    return (
        f'<figure class="chart" id="chart-{_e(chart.key)}">{chart.svg}'
        f"<figcaption>{_e(chart.caption or chart.title)}</figcaption></figure>"
    )


def _table(
    headers: list[str],
    rows: list[list[str]],
    numeric: set[int],
    caption: str,
    marked: set[int] | None = None,  # rows of class "anomaly"
) -> str:
    def cell(tag: str, i: int, text: str) -> str:
        cls = ' class="num"' if i in numeric else ""
        return f"<{tag}{cls}>{_e(text)}</{tag}>"

    def tr(n: int) -> str:
        return '<tr class="anomaly">' if marked and n in marked else "<tr>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join(
        tr(n) + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>"
        for n, row in enumerate(rows)
    )
    return (
        f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _key_figures(report: Report) -> list[tuple[str, str]]:
    t = report.tables
    avg = money(div_half_up(t.revenue, t.carts)) if t.carts else "n/a"
    return [
        ("Revenue at list price", money(t.revenue)),
        ("After discounts", money(t.discounted)),
        ("Discounts", money(t.revenue - t.discounted)),
        ("Carts", count(t.carts)),
        ("Cart lines", count(t.lines)),
        ("Units", count(t.units)),
        ("Customers", count(len(t.customers))),
        ("Average cart", avg),
    ]


def change_sentences(report: Report) -> list[str]:
    """What-changed sentences, or why there is no comparison."""
    if report.changes.previous is None and "previous" in report.notes:
        return [report.notes["previous"]]
    return report.changes.sentences


def trend_sentences(report: Report) -> list[str]:
    if report.trends is None:
        return [report.notes.get("history", "No history is available.")]
    return [report.trends.sentence]


def _category_rows(report: Report) -> list[list[str]]:
    t = report.tables
    return [
        [
            r.category,
            money(r.revenue),
            percent(tenths_percent(r.revenue, t.revenue)),
            count(r.units),
            money(div_half_up(r.revenue, r.units)) if r.units else "n/a",
            money(r.discounted),
            percent(tenths_percent(r.discount, r.revenue)),
        ]
        for r in t.categories.itertuples()
    ]


def _customer_rows(report: Report) -> list[list[str]]:
    t = report.tables
    top = t.customers.head(report.settings.top_customers)
    return [
        [
            str(i), r.first_name, str(r.user_id), r.city,
            "" if pd.isna(r.age) else str(int(r.age)),
            count(r.carts), money(r.spend), percent(tenths_percent(r.spend, t.revenue)),
        ]
        for i, r in enumerate(top.itertuples(), 1)
    ]  # fmt: skip


def _change_table(report: Report) -> str:
    cats = report.changes.categories
    if cats.empty:
        return ""
    rows = [
        [
            r.category,
            money(r.revenue_before),
            money(r.revenue_now),
            money(r.revenue_change, sign=True),
            count(r.units_before),
            count(r.units_now),
            count(r.units_change, sign=True),
        ]
        for r in cats.itertuples()
    ]
    headers = [
        "Category", "Revenue before", "Revenue now", "Change", "Units before", "Units now",
        "Change",
    ]  # fmt: skip
    caption = (
        f"Revenue and units by category: before is {report.changes.previous}, "
        f"now is {report.partition}"
    )
    return _table(headers, rows, {1, 2, 3, 4, 5, 6}, caption)


CHECK_HEADERS = ["Check", "Value", "Expected", "Status", "Since the last hour"]


def check_rows(report: Report) -> list[list[str]]:
    """The Checks table: every check, its value, band, status and change."""
    found = report.checks.checks if report.checks is not None else []
    return [
        [checks.label(c["name"]), checks.shown(c["name"], c["value"]), checks.expected(c),
         c["status"], c.get("change") or ""]
        for c in found
    ]  # fmt: skip


def check_sentences(report: Report) -> list[str]:
    """Above the Checks table: the anomalies' window, or why there is no verdict."""
    if report.checks is None:
        return []
    out = [report.checks.summary()]
    if report.checks.resolved:
        names = ", ".join(checks.label(n) for n in report.checks.resolved)
        out.append(f"Resolved since the last hour, no longer checked: {names}.")
    return out


def _checks_table(report: Report) -> str:
    """The Checks table; an anomaly's row is marked (``tr.anomaly``) so that it stands out."""
    rows = check_rows(report)
    marked = {i for i, row in enumerate(rows) if row[3] == "anomaly"}
    return _table(CHECK_HEADERS, rows, {1}, "Every check of this hour", marked)


def _checks_html(report: Report) -> list[str]:
    if report.checks is None:
        return []
    return [
        '<section id="checks"><h2>Checks</h2>',
        *(f"<p>{_e(s)}</p>" for s in check_sentences(report)),
        _checks_table(report),
        "<h3>Schema drift</h3>",
        *(f"<p>{_e(s)}</p>" for s in checks.drift_sentences(report.drift)),
        "</section>",
    ]


def _checks_markdown(report: Report) -> list[str]:
    if report.checks is None:
        return []
    lines = ["## Checks", ""]
    for sentence in check_sentences(report):
        lines += [_md(sentence), ""]
    lines += ["| " + " | ".join(CHECK_HEADERS) + " |", "|---|---:|---|---|---|"]
    lines += ["| " + " | ".join(_md(v) for v in row) + " |" for row in check_rows(report)]
    lines += ["", "### Schema drift", ""]
    for sentence in checks.drift_sentences(report.drift):
        lines += [_md(sentence), ""]
    return lines


def _lineage(report: Report) -> str:
    """The run, code version and source that made the hour, in one sentence ('' if unknown)."""
    return report.lineage.sentence() if report.lineage is not None else ""


def html(report: Report) -> str:
    """The whole report as one HTML document."""
    t = report.tables
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8" />',
        '<meta name="viewport" content="width=device-width, initial-scale=1" />',
        f"<title>{_e(heading(report.partition))}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{_e(heading(report.partition))}</h1>",
        f'<p class="meta">Partition {_e(report.partition)}. Money in US dollars, at list price '
        "unless said otherwise; shares are of the hour's revenue at list price.</p>",
        *([f'<p class="lineage">{_e(made)}</p>'] if (made := _lineage(report)) else []),
        "</header>",
        '<section id="key-figures"><h2>Key figures</h2><dl class="figures">',
        *(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in _key_figures(report)),
        "</dl></section>",
        '<section id="findings"><h2>Findings</h2><ol class="findings">',
        *(f"<li>{_e(f.text)}</li>" for f in report.findings),
        "</ol></section>",
        '<section id="changes"><h2>What changed</h2>',
        *(f"<p>{_e(s)}</p>" for s in change_sentences(report)),
        _change_table(report),
        "</section>",
        *_checks_html(report),
    ]
    if report.charts:
        out += ['<section id="charts"><h2>Charts</h2>', *map(_figure, report.charts), "</section>"]
    days = plural(report.settings.trend_days, "day")
    out += [
        f'<section id="trends"><h2>Trends over the last {days}</h2>',
        *(f"<p>{_e(s)}</p>" for s in trend_sentences(report)),
        *map(_figure, report.trend_charts),
        "</section>",
    ]
    if t.carts:
        headers = [
            "Category", "Revenue", "Share", "Units", "Average unit price", "After discounts",
            "Discount rate",
        ]  # fmt: skip
        customers = ["#", "Name", "User", "City", "Age", "Carts", "Spend", "Share"]
        out += [
            '<section id="tables"><h2>Tables</h2>',
            _table(headers, _category_rows(report), {1, 2, 3, 4, 5, 6}, "Sales by category"),
            _table(
                customers, _customer_rows(report), {0, 2, 4, 5, 6, 7},
                f"Top {plural(min(report.settings.top_customers, len(t.customers)), 'customer')}",
            ),
            "</section>",
        ]  # fmt: skip
    out += [
        f"<footer><p>Made by the pipeline from {_e(', '.join(SOURCES))} of partition "
        f"{_e(report.partition)}; every figure matches those files to the cent.</p></footer>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(s for s in out if s)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def _md(text: str) -> str:
    """Text from the data made inert in Markdown (no emphasis, links, HTML or tables)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def markdown(report: Report) -> str:
    """The findings, what changed and the trend as Markdown (no charts)."""
    lines = [
        f"# {heading(report.partition)}",
        "",
        f"Partition {report.partition}. Money in US dollars, at list price unless said otherwise;"
        " shares are of the hour's revenue at list price.",
        "",
        *([_md(made), ""] if (made := _lineage(report)) else []),
        "## Findings",
        "",
        *(f"{i}. {_md(f.text)}" for i, f in enumerate(report.findings, 1)),
        "",
        "## What changed",
        "",
    ]
    for sentence in change_sentences(report):
        lines += [_md(sentence), ""]
    lines += _checks_markdown(report)
    lines += [f"## Trends over the last {plural(report.settings.trend_days, 'day')}", ""]
    for sentence in trend_sentences(report):
        lines += [_md(sentence), ""]
    return "\n".join(lines)
