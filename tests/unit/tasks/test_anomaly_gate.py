"""The anomaly checks as HistoryHour runs them: the trailing window read from the data root,
settings from [quality], and with ``anomalies = fail`` an error before the hour is written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import luigi.configuration
import pandas as pd
import pytest
from luigi.task_register import Register

from pipeline.rules.anomalies import AnomalyError
from pipeline.rules.history import COLUMNS
from pipeline.storage import history
from pipeline.tasks.report import hour_anomalies

HOUR = "2026-11-25T17"


def rows(carts: int) -> pd.DataFrame:
    found = pd.DataFrame([
        {"level": "hour", "carts": carts, "lines": carts, "users": 1, "units": carts,
         "revenue": float(carts), "revenue_discounted": float(carts)},
        {"level": "category", "category": "a", "units": carts, "revenue": float(carts)},
    ])  # fmt: skip
    return found.reindex(columns=list(COLUMNS)).astype(COLUMNS)


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """luigi keeps one instance of a section per process: read the settings again."""
    Register.clear_instance_cache()
    yield
    Register.clear_instance_cache()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """12 hours of 100 carts before HOUR."""
    for i in range(1, 13):
        name = (datetime(2026, 11, 25, 17) - timedelta(hours=i)).strftime("%Y-%m-%dT%H")
        history.write_hour(tmp_path, name, rows(100))
    return tmp_path


def test_warn_returns_the_checks_and_the_window(root: Path) -> None:
    found = hour_anomalies(root, HOUR, rows(40))
    assert found["anomaly_window"] == {"hours": 12, "window": 24, "needed": 12, "k": 3.5}
    assert found["anomalies"][0] == {"name": "carts", "value": 40.0, "low": 95.0,
                                     "high": 105.0, "status": "anomaly"}  # fmt: skip
    assert [c["status"] for c in found["anomalies"]] == ["anomaly"] * 4 + ["ok"]


def test_fail_raises_naming_the_check_value_and_band(root: Path, cfg_file: Path) -> None:
    cfg_file.write_text("[quality]\nanomalies = fail\n")
    luigi.configuration.LuigiConfigParser.reload()
    with pytest.raises(AnomalyError) as raised:
        hour_anomalies(root, HOUR, rows(40))
    assert str(raised.value).startswith(
        "2026-11-25T17: anomaly against past hours: carts = 40 outside its band 95 to 105; "
    )
    assert hour_anomalies(root, HOUR, rows(105))["anomalies"][0]["status"] == "ok"  # the edge


def test_the_settings_shape_the_window(root: Path, cfg_file: Path) -> None:
    cfg_file.write_text("[quality]\nanomaly_min_hours = 13\nanomaly_window_hours = 30\n"
                        "anomaly_k = 2\n")  # fmt: skip
    luigi.configuration.LuigiConfigParser.reload()
    found = hour_anomalies(root, HOUR, rows(40))
    assert found["anomaly_window"] == {"hours": 12, "window": 30, "needed": 13, "k": 2.0}
    assert {c["status"] for c in found["anomalies"]} == {"no verdict"}


def test_the_console_says_what_to_do_about_an_anomaly() -> None:
    from pipeline.failures import explain

    told = explain(AnomalyError("2026-11-25T17: anomaly against past hours: carts = 40 ..."),
                   Path("/data/2026-11-25T17"))  # fmt: skip
    assert told.cause == "2026-11-25T17: anomaly against past hours: carts = 40 ..."
    assert told.todo == (
        "nothing of the hour was published ([quality] anomalies = fail); if the figures are "
        "right (a sale, an outage of the shop), publish it: ./run_pipeline.sh --date-hour "
        "2026-11-25T17 --quality-anomalies warn"
    )
