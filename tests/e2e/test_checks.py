"""Anomalies against past hours and schema drift, end to end, against the local API serving a shop
that changes between hours (``pipeline.devtools.shops``).

The 24 hours before the hour under test are built once, in this process, by the real tasks,
then copied for each scenario; the hour under test is a real run of the command line. Each
scenario is named by the report's Checks section, the manifest and ``status`` exactly as
expected.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import luigi
import orjson
import pandas as pd
import pytest
from luigi.task_register import Register

from pipeline.devtools import shops
from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from pipeline.tasks.publish import Insights
from tests.support import NOW, REPO, fingerprint, pipeline_env, run_luigi

pytestmark = pytest.mark.slow

HOUR = "2026-11-25T19"  # the hour under test: the suite's current hour (PIPELINE_NOW 19:30)
FIRST = datetime(2026, 11, 24, 19)  # the first of the 24 hours before it
MIDDLE = "2026-11-25T07"  # the hour the missing-hour scenario takes out
SHOP = shops.HourlyShop()
#: A small category (1.5 % of revenue) whose lines are sold three times over: its share triples.
BOOSTED = "fragrances"
BAND = "median ± 3.5 × 1.4826 × MAD"  # noqa: RUF001 (as the report says it)


def name(i: int) -> str:
    return (FIRST + timedelta(hours=i)).strftime("%Y-%m-%dT%H")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with the 24 complete hours before HOUR, the steady shop's."""
    root = tmp_path_factory.mktemp("baseline") / "data"
    with (
        pytest.MonkeyPatch.context() as mp,
        DummyJSONServer(Dataset.from_records(SHOP.hour(0))) as api,
    ):
        mp.setenv("PIPELINE_DATA_DIR", str(root))
        mp.setenv("PIPELINE_API_URL", api.url)
        for i in range(24):
            api.dataset = Dataset.from_records(SHOP.hour(i))
            Register.clear_instance_cache()
            hour = FIRST + timedelta(hours=i)
            assert luigi.build([Insights(date_hour=hour)], local_scheduler=True, log_level="ERROR")
    Register.clear_instance_cache()
    return root


@pytest.fixture
def root(baseline: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(baseline, data, symlinks=True)
    return data


@pytest.fixture
def api() -> Iterator[DummyJSONServer]:
    with DummyJSONServer(Dataset.from_records(SHOP.hour(24))) as server:
        yield server


def run_hour(api: DummyJSONServer, root: Path, records: shops.Records, *args: str):
    api.dataset = Dataset.from_records(records)
    return run_luigi(api.url, root, *args, date_hour=HOUR)


def manifest(root: Path) -> dict:
    return orjson.loads((root / HOUR / "manifest.json").read_bytes())


def checks_section(root: Path) -> str:
    text = (root / HOUR / "report" / "findings.md").read_text()
    return text.split("## Checks\n\n", 1)[1].split("\n## ", 1)[0]


def rows(section: str) -> dict[str, list[str]]:
    """The Checks table: check -> value, expected, status, change."""
    found = {}
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| Check "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            found[cells[0].replace("\\_", "_")] = cells[1:]
    return found


def anomalous(root: Path) -> dict[str, tuple]:
    return {
        c["name"]: (c["value"], c["low"], c["high"], c["change"])
        for c in manifest(root)["checks"]
        if c["status"] == "anomaly"
    }


def status(root: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "status", "--data-dir", str(root), "--days", "1"],
        cwd=REPO, env=pipeline_env("http://127.0.0.1:9", root), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    return proc.returncode, proc.stdout


def test_a_steady_hour_has_no_anomaly(root: Path, api: DummyJSONServer) -> None:
    result = run_hour(api, root, SHOP.hour(24))
    assert result.returncode == 0, result.output
    section = checks_section(root)
    assert section.startswith(
        "Each figure against its 24 complete hours on record of the 24 before this one "
        f"({BAND}, at least 5 % of the median): no anomaly.\n"
    )
    table = rows(section)
    assert table["carts"] == ["192", "182.40 to 201.60", "ok", ""]
    assert table["cart_total_matches"] == ["0", "at most 0", "ok", ""]
    assert {r[2] for r in table.values()} == {"ok"}
    checks = manifest(root)["checks"]
    assert len(checks) == len(table) and anomalous(root) == {}
    assert checks[0] == {"name": "carts", "value": 192.0, "low": 182.4, "high": 201.6,
                         "status": "ok", "change": None}  # fmt: skip
    assert "Anomalies" not in (root / HOUR / "report" / "findings.md").read_text()
    code, out = status(root)
    assert (code, out.splitlines()[0]) == (
        0, "OK: newest complete hour 2026-11-25T19 (0 h old); 0 hour(s) missing and 0 failed "
        "in the last 1 day(s)",
    )  # fmt: skip


def test_carts_dropping_by_sixty_percent_is_named_in_the_report_the_manifest_and_status(
    root: Path, api: DummyJSONServer
) -> None:
    result = run_hour(api, root, shops.drop_carts(SHOP.hour(24), 0.6))
    assert result.returncode == 0, result.output  # [quality] anomalies = warn: published
    assert anomalous(root) == {
        "carts": (76.0, 182.4, 201.6, "new"),
        "lines": (238.0, 565.73, 625.27, "new"),
        "units": (701.0, 1659.17, 1833.83, "new"),
        "revenue": (268441.16, 692812.34, 765739.96, "new"),
    }
    section = checks_section(root)
    assert section.startswith(
        "Each figure against its 24 complete hours on record of the 24 before this one "
        f"({BAND}, at least 5 % of the median): 4 anomalies.\n"
    )
    table = rows(section)
    assert table["carts"] == ["76", "182.40 to 201.60", "anomaly", "new"]
    assert table["revenue"] == ["$268,441.16", "$692,812.34 to $765,739.96", "anomaly", "new"]
    assert table["share of laptops"] == ["37.50%", "32.85% to 39.38%", "ok", ""]  # same mix
    findings = (root / HOUR / "report" / "findings.md").read_text()
    assert (
        "1. Anomalies against the 24 complete hours before this one: carts 76 (expected 182.40 "
        "to 201.60); lines 238 (expected 565.73 to 625.27); units 701 (expected 1,659.17 to "
        "1,833.83); revenue $268,441.16 (expected $692,812.34 to $765,739.96).\n"
    ) in findings
    html = (root / HOUR / "report" / "index.html").read_text()
    assert (
        '<tr class="anomaly"><td>carts</td><td class="num">76</td><td>182.40 to 201.60</td>'
        "<td>anomaly</td><td>new</td></tr>"
    ) in html
    assert "anomaly against past hours" not in result.output  # warn: nothing failed
    code, out = status(root)
    assert code == 1, out
    assert out.splitlines()[0] == (
        "WARNING: newest complete hour 2026-11-25T19 (0 h old); 0 hour(s) missing and 0 failed "
        "in the last 1 day(s); 4 anomaly(ies) in 2026-11-25T19: carts, lines, units, revenue"
    )


def test_with_anomalies_fail_the_drop_exits_non_zero_and_publishes_nothing(
    root: Path, api: DummyJSONServer
) -> None:
    before = {k: v for k, v in fingerprint(root).items() if not k.startswith(HOUR)}
    result = run_hour(api, root, shops.drop_carts(SHOP.hour(24), 0.6), "--quality-anomalies",
                      "fail")  # fmt: skip
    assert result.returncode == 30, result.output
    console = result.output.split(result.log, 1)[0] if result.log else result.output
    said = [line.strip() for line in console.splitlines()]
    failed = next(i for i, line in enumerate(said) if "ERROR" in line)
    assert said[failed].split(" ", 1)[1] == (
        "ERROR HistoryHour failed: 2026-11-25T19: anomaly against past hours: carts = 76 outside "
        "its band 182.40 to 201.60; lines = 238 outside its band 565.73 to 625.27; units = 701 "
        "outside its band 1,659.17 to 1,833.83; revenue = $268,441.16 outside its band "
        "$692,812.34 to $765,739.96"
    )
    assert said[failed + 1] == (
        "what to do: nothing of the hour was published ([quality] anomalies = fail); if the "
        "figures are right (a sale, an outage of the shop), publish it: ./run_pipeline.sh "
        "--date-hour 2026-11-25T19 --quality-anomalies warn"
    )
    assert sum("ERROR" in line for line in said) == 1  # one message
    assert "Traceback" not in console
    after = fingerprint(root)
    assert {k: v for k, v in after.items() if not k.startswith(HOUR)} == before
    assert not (root / HOUR / "manifest.json").exists()
    assert not (root / HOUR / "report").exists()
    assert not (root / "history" / f"date_hour={HOUR}").exists()
    assert (root / "latest").readlink() == Path("2026-11-25T18")
    code, out = status(root)
    assert code == 1, out
    assert out.splitlines()[0] == (
        "WARNING: newest complete hour 2026-11-25T18 (1 h old); 0 hour(s) missing and 1 failed "
        "in the last 1 day(s)"
    )
    assert "  failed: 2026-11-25T19" in out.splitlines()
    # what the message says to do publishes the hour from the same snapshot, anomalies reported
    published = subprocess.run(
        [str(REPO / "run_pipeline.sh"), "--date-hour", HOUR, "--quality-anomalies", "warn"],
        cwd=REPO, env={**pipeline_env(api.url, root), "PIPELINE_NOW": NOW}, capture_output=True,
        text=True, timeout=180,
    )  # fmt: skip
    assert published.returncode == 0, published.stdout + published.stderr
    assert list(anomalous(root)) == ["carts", "lines", "units", "revenue"]
    assert (root / "latest").readlink() == Path(HOUR)


def test_one_categorys_share_tripling_is_named(root: Path, api: DummyJSONServer) -> None:
    result = run_hour(api, root, shops.sell_more(SHOP.hour(24), BOOSTED, 3))
    assert result.returncode == 0, result.output
    # its share goes from about 1.6 % to 4.76 %; three times its units lift the hour's units too
    assert anomalous(root) == {
        "units": (2038.0, 1659.17, 1833.83, "new"),
        "share:fragrances": (4.76, 0.57, 2.57, "new"),
    }
    table = rows(checks_section(root))
    assert table["share of fragrances"] == ["4.76%", "0.57% to 2.57%", "anomaly", "new"]
    assert table["share of laptops"] == ["35.12%", "32.85% to 39.38%", "ok", ""]
    assert table["revenue"][2:] == ["ok", ""]
    findings = (root / HOUR / "report" / "findings.md").read_text()
    assert (
        "1. Anomalies against the 24 complete hours before this one: units 2,038 (expected "
        "1,659.17 to 1,833.83); share of fragrances 4.76% (expected 0.57% to 2.57%).\n"
    ) in findings
    code, out = status(root)
    assert (code, out.splitlines()[0]) == (
        1, "WARNING: newest complete hour 2026-11-25T19 (0 h old); 0 hour(s) missing and 0 "
        "failed in the last 1 day(s); 2 anomaly(ies) in 2026-11-25T19: units, share:fragrances",
    )  # fmt: skip


def test_an_added_and_a_removed_field_are_shown_with_the_hour_first_seen(
    root: Path, api: DummyJSONServer
) -> None:
    def drifted(i: int) -> shops.Records:
        records = shops.add_field(SHOP.hour(i), "products", "color", "red")
        return shops.remove_field(records, "products", ["brand"])

    api.dataset = Dataset.from_records(drifted(23))
    rebuilt = subprocess.run(
        [sys.executable, "-m", "pipeline", "rerun", "--date-hour", "2026-11-25T18"],
        cwd=REPO, env=pipeline_env(api.url, root), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    result = run_hour(api, root, drifted(24))
    assert result.returncode == 0, result.output
    drift = {
        "carts": {"added": [], "missing": []},
        "products": {"added": ["color"], "missing": ["brand"]},
        "users": {"added": [], "missing": []},
    }
    assert manifest(root)["schema_drift"] == drift
    assert orjson.loads((root / "2026-11-25T18" / "manifest.json").read_bytes())[
        "schema_drift"
    ] == drift  # fmt: skip
    assert anomalous(root) == {}  # the figures did not change: only the fields did
    section = checks_section(root)
    assert section.split("### Schema drift\n\n", 1)[1] == (
        "products: color added (sent, not declared in pipeline/schema.py: dropped, not "
        "stored); first seen 2026-11-25T18.\n\n"
        "products: brand missing (declared, not sent in any record); first seen "
        "2026-11-25T18.\n"
    )
    html = (root / HOUR / "report" / "index.html").read_text()
    assert "<p>products: color added (sent, not declared" in html
    history = pd.read_parquet(root / "history" / f"date_hour={HOUR}")
    recorded = history[history["level"] == "drift"][["endpoint", "field", "drift"]]
    assert recorded.values.tolist() == [["products", "color", "added"],
                                        ["products", "brand", "missing"]]  # fmt: skip
    code, out = status(root)
    assert code == 0, out
    assert "  schema drift in 2026-11-25T19: products: color added; products: brand missing" in (
        out.splitlines()
    )
    stored = (root / HOUR / "jsons" / "products.jsonl").read_text()
    assert "color" not in stored  # dropped: the allowlist keeps declared fields only


def test_a_removed_field_that_a_rule_needs_fails_the_run_naming_it(
    root: Path, api: DummyJSONServer
) -> None:
    result = run_hour(api, root, shops.remove_field(SHOP.hour(24), "carts", ["discountedTotal"]))
    assert result.returncode == 30, result.output
    console = [line.strip() for line in result.output.split(result.log, 1)[0].splitlines()]
    assert [line.split(" ", 1)[1] for line in console if " ERROR " in f" {line}"] == [
        "ERROR ExtractCarts failed: carts record id=2: field 'discountedTotal' is missing "
        f"(expected number >= 0) (page at skip=0) (GET {api.url}/carts; failed on 2 read(s))"
    ]
    assert not (root / HOUR / "manifest.json").exists()


def test_a_missing_hour_in_the_middle_leaves_23_hours_in_the_window(
    root: Path, api: DummyJSONServer
) -> None:
    shutil.rmtree(root / MIDDLE)
    shutil.rmtree(root / "history" / f"date_hour={MIDDLE}")
    result = run_hour(api, root, SHOP.hour(24))
    assert result.returncode == 0, result.output
    assert anomalous(root) == {}
    section = checks_section(root)
    assert section.startswith(
        "Each figure against its 23 complete hours on record of the 24 before this one "
        f"({BAND}, at least 5 % of the median): no anomaly.\n"
    )
    assert rows(section)["carts"] == ["192", "182.40 to 201.60", "ok", ""]
    code, out = status(root)
    assert code == 1, out
    lines = out.splitlines()
    assert lines[0] == (
        "WARNING: newest complete hour 2026-11-25T19 (0 h old); 1 hour(s) missing and 0 failed "
        "in the last 1 day(s)"
    )
    assert "  missing: 2026-11-25T07" in lines
