"""``status`` names the newest complete hour's anomalies (a WARNING) and its schema drift."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from pipeline.ops import status
from pipeline.ops.status import OK, WARNING, assess

NOW = datetime(2026, 11, 25, 19, 30, tzinfo=UTC)  # the suite's pinned time
#: Every hour of the last day complete: OK, but for the checks
STATES = {f"2026-11-24T{h:02d}": "complete" for h in range(20, 24)} | {
    f"2026-11-25T{h:02d}": "complete" for h in range(20)
}


def health(anomalies: list[str] | None, drift: list[str] | None = None) -> status.Health:
    return assess(STATES, None, NOW, days=1, warn_after_hours=2, critical_after_hours=6,
                  anomalies=anomalies, schema_drift=drift)  # fmt: skip


def test_an_anomaly_in_the_newest_hour_is_a_warning_naming_it() -> None:
    assert health(None).exit_code == health([]).exit_code == OK
    found = health(["carts", "share:beauty"], ["products: color added"])
    assert found.exit_code == WARNING
    assert found.reasons[-1] == "2 anomaly(ies) in 2026-11-25T19: carts, share:beauty"
    assert status.text(found).splitlines()[-3:-1] == [
        "  anomalies in 2026-11-25T19: carts, share:beauty",
        "  schema drift in 2026-11-25T19: products: color added",
    ]


def test_schema_drift_alone_is_a_detail_not_a_warning() -> None:
    found = health([], ["products: brand missing"])
    assert found.exit_code == OK and found.schema_drift == ["products: brand missing"]


def test_the_checks_are_read_from_the_newest_complete_hours_manifest(tmp_path: Path) -> None:
    def hour(name: str, facts: dict) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_bytes(orjson.dumps(facts))

    hour("2026-11-25T17", {"checks": [{"name": "units", "status": "anomaly"}]})
    hour("2026-11-25T18", {
        "checks": [{"name": "carts", "status": "anomaly"}, {"name": "lines", "status": "ok"},
                   {"name": "units", "status": "no verdict"}],
        "schema_drift": {"carts": {"added": [], "missing": []},
                         "products": {"added": ["color"], "missing": ["brand"]}},
    })  # fmt: skip
    (tmp_path / "2026-11-25T19").mkdir()  # failed: no manifest
    states = status.observe(tmp_path, ["2026-11-25T17", "2026-11-25T18", "2026-11-25T19"])
    assert status.checked(tmp_path, states) == (
        ["carts"],
        ["products: color added", "products: brand missing"],
    )
    (tmp_path / "2026-11-25T18" / "manifest.json").write_text("{}")  # written by an older version
    assert status.checked(tmp_path, states) == ([], [])
    (tmp_path / "2026-11-25T18" / "manifest.json").write_text("{not json")
    assert status.checked(tmp_path, states) == ([], [])
