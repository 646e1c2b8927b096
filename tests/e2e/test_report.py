"""The report and the history end to end: ``luigi --module pipeline Insights`` against the local
API writes ``P/report/`` with the fixture's findings, compares an hour with the previous one,
appends to ``history/``, ends with the summary; and the report renders in a real browser."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from tests.support import (
    PARTITION,
    REPO,
    Run,
    fixture_records,
    luigi_command,
    next_hour_records,
    pipeline_env,
    run_luigi,
)

pytestmark = pytest.mark.slow

NEXT = "2026-11-25T18"
KEEP_HISTORY = ("--history-retention-days", "100000")  # the test hours stay, whatever the clock

#: The fixture's findings, worked out by hand from tests/support/expected.py's insight CSVs:
#: revenue 2163.64 (category sums), discounted 1951.28, 38 units on 14 lines in 6 carts.
FINDINGS = [
    # 2163.64 / 6 carts = 360.6067
    "Sales: 6 carts from 5 customers, 14 lines, 38 units; $2,163.64 at list prices and "
    "$1,951.28 after discounts, $360.61 per cart on average.",
    # 799.99 / 2163.64 = 36.97%, 389.97 -> 18.02%, 359.91 -> 16.63%; together 1549.87 -> 71.63%;
    # 389.97 / 3 = 129.99, 359.91 / 9 = 39.99
    "Categories: the top 3 of 7 take 71.6% of revenue: furniture $799.99 (37.0%; 1 unit at "
    "$799.99 on average), mobile-accessories $389.97 (18.0%; 3 units at $129.99), "
    "sports-accessories $359.91 (16.6%; 9 units at $39.99).",
    # groceries 14 of 38 units = 36.84%; 93.86 / 2163.64 = 4.34%; 93.86 / 14 = 6.704
    "Units: groceries sells the most units, 14 of 38 (36.8%), for $93.86 (4.3% of revenue) at "
    "$6.70 a unit on average.",
    # 1365.91 / 2163.64 = 63.13%, 309.87 -> 14.32%, 259.98 -> 12.02%
    "Top customers: Emily (user 1, Phoenix, age 29) spent $1,365.91 in 2 carts (63.1% of "
    "revenue); James (user 4, Seattle, age 45) $309.87 in 1 cart (14.3%); Emma (user 5, "
    "Jacksonville, age 30) $259.98 in 1 cart (12.0%).",
    # one customer per city: Phoenix, Seattle, Jacksonville, Houston, Washington
    "Cities: Phoenix spends the most, $1,365.91 (63.1%) from 1 customer; then Seattle $309.87 "
    "(14.3%, 1 customer) and Jacksonville $259.98 (12.0%, 1 customer); 5 cities in all.",
    # 25-34: Emily 29 + Emma 30 = 1625.89 (75.15%), 812.945 each -> 812.95 (half away from 0);
    # 45-54: James 45; 35-44: Michael 36 + Sophia 42 = 227.88 (10.53%), 113.94 each
    "Age: the 25-34 band spends the most, $1,625.89 (75.1%) from 2 customers, $812.95 each; "
    "then 45-54 $309.87 (14.3%, 1 customer, $309.87 each) and 35-44 $227.88 (10.5%, 2 "
    "customers, $113.94 each).",
    # 6 carts / 5 customers; 1 cart: 204.94 + 22.94 + 309.87 + 259.98 = 797.73 / 4 = 199.4325;
    # 2 carts: Emily 1365.91 / 2 = 682.955 -> 682.96
    "Frequency and basket size: 1.2 carts per customer at $360.61 a cart; the 4 customers with "
    "1 cart spend $199.43 a cart and the 1 with 2 carts $682.96 a cart.",
    # 2163.64 - 1951.28 = 212.36 (9.82%); furniture 799.99 - 729.59 = 70.40 (8.80%);
    # mobile-accessories 389.97 - 329.37 = 60.60 (15.54%), the deepest of the seven rates
    "Discounts: $212.36 off list prices (9.8%), $2,163.64 list against $1,951.28 paid; the most "
    "in dollars on furniture ($70.40, 8.8%), the deepest rate on mobile-accessories (15.5%, "
    "$60.60).",
]

#: The second hour: cart 6 (Emma, 2 x Apple Airpods, 259.98 / 219.58) is gone and cart 7, a copy
#: of cart 2 (Michael: 5 x Powder Canister 74.95 and 1 x Apple Airpods 129.99 = 204.94 / 177.36),
#: is new. Revenue 2163.64 - 259.98 + 204.94 = 2108.60 (-55.04, -2.54%); lines 14 - 1 + 2 = 15;
#: units 38 - 2 + 6 = 42; mobile-accessories 389.97 - 259.98 + 129.99 = 259.98 (units 3 -> 2);
#: beauty 119.92 + 74.95 = 194.87 (units 8 -> 13).
CHANGES = [
    "Against 2026-11-25T17 (1 hour earlier): carts 6 (no change), lines 15 (+1), units 42 (+4), "
    "revenue $2,108.60 (-$55.04, -2.5%).",
    "1 cart appeared (id 7) and 1 vanished (id 6).",
    "By category: mobile-accessories -$129.99 ($389.97 to $259.98, units -1) and beauty +$74.95 "
    "($119.92 to $194.87, units +5).",
]
#: 2163.64 + 2108.60 = 4272.24 over 2 hours: 2136.12 an hour; 2108.60 - 2136.12 = -27.52
TREND = (
    "Over the last 7 days, 2 hours are on record: $4,272.24 of revenue, $2,136.12 and 6.0 carts "
    "an hour on average; this hour $2,108.60 (-$27.52 against the average)."
)


def summary_of(data: Path, hour: str, output: str) -> list[str]:
    """The summary block the run printed: six lines starting with ``Snapshot <hour>:``."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"Snapshot {hour}:"))
    return lines[start : start + 6]


@dataclass
class TwoHours:
    data: Path
    first: Run
    second: Run


@pytest.fixture(scope="module")
def two_hours(tmp_path_factory: pytest.TempPathFactory) -> TwoHours:
    """The fixture shop at 17:00, then the changed shop at 18:00, in one data root."""
    data = tmp_path_factory.mktemp("report") / "data"
    with DummyJSONServer(Dataset.from_records(fixture_records())) as server:
        first = run_luigi(server.url, data, *KEEP_HISTORY)
    with DummyJSONServer(Dataset.from_records(next_hour_records())) as server:
        second = run_luigi(server.url, data, *KEEP_HISTORY, date_hour=NEXT)
    assert first.returncode == 0, first.output
    assert second.returncode == 0, second.output
    return TwoHours(data, first, second)


def test_the_first_hour_has_the_fixture_findings_and_says_there_is_nothing_before(
    two_hours: TwoHours,
) -> None:
    report = two_hours.data / PARTITION / "report"
    assert (report / "findings.md").read_text() == "\n".join(
        [
            "# Shop report for 2026-11-25 17:00 UTC",
            "",
            "Partition 2026-11-25T17. Money in US dollars, at list price unless said otherwise; "
            "shares are of the hour's revenue at list price.",
            "",
            "## Findings",
            "",
            *(f"{i}. {text}" for i, text in enumerate(FINDINGS, 1)),
            "",
            "## What changed",
            "",
            "There is no earlier complete snapshot, so there is nothing to compare this hour with.",
            "",
            "## Trends over the last 7 days",
            "",
            "This is the only hour on record in the last 7 days: no trend yet.",
            "",
        ]
    )
    page = ET.fromstring((report / "index.html").read_text())  # well-formed
    assert [li.text for li in page.iter("li")] == FINDINGS
    charts = list(page.iter("{http://www.w3.org/2000/svg}svg"))
    descriptions = [svg.find("{http://www.w3.org/2000/svg}desc") for svg in charts]
    assert len(charts) == 10 and all(len(d.text or "") > 40 for d in descriptions)

    manifest = orjson.loads((two_hours.data / PARTITION / "manifest.json").read_bytes())
    assert manifest["rows"]["findings.md"] == 8
    assert manifest["rows"]["history.parquet"] == 1 + 7 + 5  # the hour, 7 categories, 5 users


def test_every_successful_run_ends_with_the_summary(two_hours: TwoHours) -> None:
    data = two_hours.data
    assert summary_of(data, PARTITION, two_hours.first.output) == [
        "Snapshot 2026-11-25T17: 6 carts, 14 lines, 6 users, 8 products",
        "Sales: $2,163.64 at list prices, $1,951.28 after discounts",
        "Top category: furniture, $799.99 (37.0% of sales)",
        "Change: no earlier complete snapshot to compare with",
        f"Report: {data}/2026-11-25T17/report/index.html",
        f"Latest: {data}/latest -> 2026-11-25T17",
    ]
    second = [
        "Snapshot 2026-11-25T18: 6 carts, 15 lines, 6 users, 8 products",
        # 1951.28 - 219.58 + 177.36 = 1909.06; 799.99 / 2108.60 = 37.94%
        "Sales: $2,108.60 at list prices, $1,909.06 after discounts",
        "Top category: furniture, $799.99 (37.9% of sales)",
        "Change since 2026-11-25T17: carts +0, revenue -$55.04 (-2.5%)",
        f"Report: {data}/2026-11-25T18/report/index.html",
        f"Latest: {data}/latest -> 2026-11-25T18",
    ]
    assert summary_of(data, NEXT, two_hours.second.output) == second

    # the same lines for an existing hour, without running anything, as a user asks for them
    shown = subprocess.run(
        [str(REPO / "run_pipeline.sh"), "report", "--date-hour", NEXT],
        cwd=REPO, env=pipeline_env("http://127.0.0.1:9", data), capture_output=True, text=True,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == second

    # and a run that finds the hour complete ends with it too
    again = run_luigi("http://127.0.0.1:9", data, *KEEP_HISTORY, date_hour=NEXT)
    assert again.returncode == 0, again.output
    assert summary_of(data, NEXT, again.output) == second


def test_the_second_hour_says_what_changed_and_shows_the_trend(two_hours: TwoHours) -> None:
    text = (two_hours.data / NEXT / "report/findings.md").read_text()
    section = text.split("## What changed\n\n", 1)[1].split("\n## ", 1)[0]
    assert section == "\n\n".join(CHANGES) + "\n"
    assert text.endswith(f"## Trends over the last 7 days\n\n{TREND}\n")
    page = ET.fromstring((two_hours.data / NEXT / "report/index.html").read_text())
    changes = next(s for s in page.iter("section") if s.get("id") == "changes")
    assert [p.text for p in changes.iter("p")] == CHANGES
    rows = [[td.text for td in tr.iter("td")] for tr in changes.iter("tr")][1:]
    assert rows[:2] == [
        ["mobile-accessories", "$389.97", "$259.98", "-$129.99", "3", "2", "-1"],
        ["beauty", "$119.92", "$194.87", "+$74.95", "8", "13", "+5"],
    ]
    assert all(row[3] == "+$0.00" for row in rows[2:]) and len(rows) == 7


def test_an_hour_completed_after_the_next_one_brings_that_ones_report_up_to_date(
    tmp_path: Path,
) -> None:
    """The later hour first (its report has nothing before it), then the earlier one: its run
    re-renders the later hour's report, and report, summary and `report` then agree."""
    data = tmp_path / "data"
    with DummyJSONServer(Dataset.from_records(next_hour_records())) as server:
        later = run_luigi(server.url, data, *KEEP_HISTORY, date_hour=NEXT)
    assert later.returncode == 0, later.output
    assert summary_of(data, NEXT, later.output)[3] == (
        "Change: no earlier complete snapshot to compare with"
    )
    findings = data / NEXT / "report/findings.md"
    assert "There is no earlier complete snapshot" in findings.read_text()
    with DummyJSONServer(Dataset.from_records(fixture_records())) as server:
        earlier = run_luigi(server.url, data, *KEEP_HISTORY)
    assert earlier.returncode == 0, earlier.output
    assert (
        "report of 2026-11-25T18 brought up to date: it now compares with 2026-11-25T17\n"
        in earlier.output
    )
    text = findings.read_text()
    assert (
        text.split("## What changed\n\n", 1)[1].split("\n## ", 1)[0] == "\n\n".join(CHANGES) + "\n"
    )
    assert text.endswith(f"## Trends over the last 7 days\n\n{TREND}\n")
    page = ET.fromstring((data / NEXT / "report/index.html").read_text())
    changes = next(s for s in page.iter("section") if s.get("id") == "changes")
    assert [p.text for p in changes.iter("p")] == CHANGES
    shown = subprocess.run(
        [str(REPO / "run_pipeline.sh"), "report", "--date-hour", NEXT],
        cwd=REPO, env=pipeline_env("http://127.0.0.1:9", data), capture_output=True, text=True,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[3] == (
        "Change since 2026-11-25T17: carts +0, revenue -$55.04 (-2.5%)"
    )


def test_two_hours_run_side_by_side_end_agreeing_whichever_finishes_first(
    tmp_path: Path,
) -> None:
    """Both runs at once, in whatever order the machine interleaves them: at the end the later
    hour's report, and `report`, compare it with the earlier hour; and the later hour's own
    console summary said so, or the earlier hour's run said it brought that report up to date."""
    data = tmp_path / "data"
    pids = tmp_path / "luigi-pids"
    runs = []
    with (
        DummyJSONServer(Dataset.from_records(fixture_records())) as first,
        DummyJSONServer(Dataset.from_records(next_hour_records())) as second,
    ):
        for url, hour in ((first.url, PARTITION), (second.url, NEXT)):
            runs.append(subprocess.Popen(
                luigi_command(hour, pids, *KEEP_HISTORY), cwd=REPO, text=True,
                env=pipeline_env(url, data), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            ))  # fmt: skip
        earlier, later = (proc.communicate(timeout=300)[0] for proc in runs)
    assert [proc.returncode for proc in runs] == [0, 0], earlier[-3000:] + later[-3000:]
    text = (data / NEXT / "report/findings.md").read_text()
    assert text.split("## What changed\n\n", 1)[1].split("\n## ", 1)[0] == (
        "\n\n".join(CHANGES) + "\n"
    )
    change = "Change since 2026-11-25T17: carts +0, revenue -$55.04 (-2.5%)"
    shown = subprocess.run(
        [str(REPO / "run_pipeline.sh"), "report", "--date-hour", NEXT],
        cwd=REPO, env=pipeline_env("http://127.0.0.1:9", data), capture_output=True, text=True,
    )  # fmt: skip
    assert shown.stdout.splitlines()[3] == change, shown.stderr
    told = summary_of(data, NEXT, later)[3]
    redone = f"report of {NEXT} brought up to date: it now compares with {PARTITION}\n"
    assert told == change or (
        told == "Change: no earlier complete snapshot to compare with" and redone in earlier
    )


def test_the_history_reads_as_one_table_with_both_hours(two_hours: TwoHours) -> None:
    history = pd.read_parquet(two_hours.data / "history")
    hours = history[history["level"] == "hour"]
    columns = ["date_hour", "carts", "lines", "users", "units", "revenue", "revenue_discounted"]
    assert hours[columns].astype({"date_hour": str}).values.tolist() == [
        ["2026-11-25T17", 6, 14, 5, 38, 2163.64, 1951.28],
        ["2026-11-25T18", 6, 15, 4, 42, 2108.60, 1909.06],
    ]
    users = history[(history["level"] == "user") & (history["date_hour"] == NEXT)]
    # Michael has carts 2 and 7 now: 2 x 204.94
    assert users[["user_id", "carts", "revenue"]].values.tolist() == [
        [1, 2, 1365.91], [2, 2, 409.88], [3, 1, 22.94], [4, 1, 309.87],
    ]  # fmt: skip
    assert set(history.columns) == {
        "level", "category", "user_id", "carts", "lines", "users", "units", "revenue",
        "revenue_discounted", "date_hour",
    }  # fmt: skip


def test_rerunning_an_hour_replaces_its_history_rows(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with DummyJSONServer(Dataset.from_records(next_hour_records())) as server:
        assert run_luigi(server.url, data, *KEEP_HISTORY).returncode == 0
    shutil.rmtree(data / PARTITION)  # redo the hour from scratch, with the fixture shop
    with DummyJSONServer(Dataset.from_records(fixture_records())) as server:
        result = run_luigi(server.url, data, *KEEP_HISTORY)
    assert result.returncode == 0, result.output
    history = pd.read_parquet(data / "history")
    assert len(history) == 13  # the fixture hour only: 1 + 7 categories + 5 users
    assert history.loc[history["level"] == "hour", "revenue"].tolist() == [2163.64]
    assert os.listdir(data / "history") == [f"date_hour={PARTITION}"]


def test_a_report_that_cannot_be_written_fails_the_run(api: DummyJSONServer, tmp_path: Path):
    data = tmp_path / "data"
    (data / PARTITION).mkdir(parents=True)
    (data / PARTITION / "report").write_text("a file where the report folder goes")
    result = run_luigi(api.url, data, *KEEP_HISTORY)
    assert result.returncode == 30, result.output  # [retcode] task_failed
    assert "HourReport" in result.output
    assert not (data / PARTITION / "manifest.json").exists()
    assert not (data / "latest").exists()
    assert not (data / PARTITION / "_stats/HourReport.json").exists()
    assert "Snapshot 2026-11-25T17" not in result.output


# --- the report in a real browser ----------------------------------------------------------------

CHROMIUM = shutil.which("chromium")
BROWSER_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
)  # fmt: skip


class Chromium:
    """Headless chromium driven over the DevTools protocol on a pipe (fds 3 and 4): no port, no
    extra package. Messages are JSON, each ended by a NUL byte."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_browser, self._sink = os.pipe()
        self._source, from_browser = os.pipe()

        def wire() -> None:  # in the child: its fd 3 reads our commands, fd 4 answers
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        self.proc = subprocess.Popen(
            [executable, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
             "about:blank"],
            pass_fds=tuple(sorted({to_browser, from_browser, 3, 4})), preexec_fn=wire,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def _message(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._source, 1 << 16)
            if not chunk:
                raise EOFError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._sink, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._message()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, event: str) -> None:
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self._message())

    def close(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            self.call("Browser.close")
        self.proc.wait(timeout=30)
        os.close(self._sink)
        os.close(self._source)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    if CHROMIUM is None:
        pytest.skip(
            "chromium is not installed (Debian: apt-get install chromium), so the report "
            "cannot be opened in a real browser here"
        )
    profile = tmp_path / "chromium-profile"  # fresh: no state from other runs
    chromium = Chromium(CHROMIUM, profile)
    try:
        yield chromium
    finally:
        chromium.close()


def coloured_share(png: bytes) -> tuple[float, float]:
    """Shares of pixels that are coloured (the marks) and dark (text and axes)."""
    from PIL import Image

    raw = Image.open(io.BytesIO(png)).convert("RGB").tobytes()
    pixels = list(zip(raw[0::3], raw[1::3], raw[2::3], strict=True))
    coloured = sum(max(p) - min(p) > 60 for p in pixels)
    dark = sum(sum(p) < 3 * 140 for p in pixels)
    return coloured / len(pixels), dark / len(pixels)


def test_the_report_renders_in_a_real_browser(two_hours: TwoHours, browser: Chromium) -> None:
    path = two_hours.data / NEXT / "report/index.html"
    target = browser.call("Target.createTarget", url="about:blank")["targetId"]
    session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    browser.call("Page.enable", session)
    browser.call("Network.enable", session)
    browser.call("Emulation.setDeviceMetricsOverride", session, width=900, height=1200,
                 deviceScaleFactor=1, mobile=False)  # fmt: skip
    browser.call("Page.navigate", session, url=path.as_uri())
    browser.wait_for("Page.loadEventFired")

    requested = [
        e["params"]["request"]["url"]
        for e in browser.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requested and all(u.startswith(("file:", "data:")) for u in requested), requested

    probe = """JSON.stringify({
      text: document.body.innerText,
      images: Array.from(document.querySelectorAll("figure.chart svg")).map(i => {
        const r = i.getBoundingClientRect();
        return {alt: i.querySelector("desc").textContent, role: i.getAttribute("role"),
                x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height};
      })})"""
    page = json.loads(
        browser.call("Runtime.evaluate", session, expression=probe, returnByValue=True)["result"][
            "value"
        ]
    )
    text = page["text"]
    for figure in (
        "Shop report for 2026-11-25 18:00 UTC", "$2,108.60", "$1,909.06", "$351.43",
        "furniture", "Emily", *CHANGES, TREND,
    ):  # fmt: skip
        assert figure in text, figure

    images = page["images"]
    assert len(images) == 10
    for image in images:
        assert image["role"] == "img" and len(image["alt"]) > 40, image
        assert image["width"] >= 400 and image["height"] >= 150, image
        shot = browser.call(
            "Page.captureScreenshot", session, format="png", captureBeyondViewport=True,
            clip={"x": image["x"], "y": image["y"], "width": image["width"],
                  "height": image["height"], "scale": 1},
        )  # fmt: skip
        coloured, dark = coloured_share(base64.b64decode(shot["data"]))
        assert coloured > 0.0005, (image["alt"][:60], coloured)  # bars, points or lines drawn
        assert dark > 0.005, (image["alt"][:60], dark)  # title, labels and axes drawn

    pdf = base64.b64decode(
        browser.call("Page.printToPDF", session, preferCSSPageSize=True, printBackground=True)[
            "data"
        ]
    )
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert 3 <= len(boxes) <= 12, len(boxes)  # a few A4 pages
    for width, height in boxes:  # A4 is 595.28 x 841.89 points
        assert abs(float(width) - 595.3) < 1.5 and abs(float(height) - 841.9) < 1.5
