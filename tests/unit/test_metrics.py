"""``pipeline.metrics`` on hours written by hand: what the quality checks record, rejected rows,
what is carried over between runs, where the file goes, and a Pushgateway that is down. Each
file is read back with prometheus_client's parser, as Prometheus would read it."""

from __future__ import annotations

import os
import re
import signal
import socket
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from pipeline import config, interrupts, metrics, runner
from pipeline.api import tally
from pipeline.ops.backfill import backfill_pipeline
from pipeline.storage.fs import ObjectPath, StoreError
from pipeline.storage.layout import Partition

HOUR = datetime(2026, 11, 25, 17)
T0 = datetime(2026, 11, 25, 19, 30, tzinfo=UTC)
T1 = datetime(2026, 11, 25, 20, 30, tzinfo=UTC)


def parsed(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def of(found: dict, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in found.items() if n == name}


def a_run(root: Path, result: str = "success", at: datetime = T0, code: int = 0) -> metrics.Run:
    return metrics.Run(root, HOUR, code, result, at, at, 1.5, "run-20261125T193000Z-7")


def test_anomalies_and_schema_drift_as_the_manifest_records_them(tmp_path: Path) -> None:
    part = Partition(tmp_path, HOUR)
    part.dir.mkdir(parents=True)
    checks = [
        {"name": "carts", "value": 40, "low": 90, "high": 110, "status": "anomaly",
         "change": "new"},
        {"name": "revenue", "value": 1e4, "low": 9e3, "high": 1.1e4, "status": "ok",
         "change": None},
        {"name": "share:beauty", "value": 0.3, "low": 0.05, "high": 0.12, "status": "anomaly",
         "change": "still failing"},
        {"name": "units", "value": None, "low": None, "high": None, "status": "no verdict",
         "change": None},
    ]  # fmt: skip
    drift = {"products": {"added": ["rating", "stock"], "missing": []},
             "users": {"added": [], "missing": ["age"]}}  # fmt: skip
    part.manifest.write_bytes(orjson.dumps({"checks": checks, "schema_drift": drift}))
    found = parsed(metrics.render(metrics.families(a_run(tmp_path), {})))
    assert of(found, "etl_pipeline_anomalies") == {
        frozenset({("check", "carts")}): 1,
        frozenset({("check", "revenue")}): 0,
        frozenset({("check", "share:beauty")}): 1,
        frozenset({("check", "units")}): 0,
    }
    assert of(found, "etl_pipeline_schema_drift_fields") == {
        frozenset({("endpoint", "products"), ("kind", "added")}): 2,
        frozenset({("endpoint", "products"), ("kind", "missing")}): 0,
        frozenset({("endpoint", "users"), ("kind", "added")}): 0,
        frozenset({("endpoint", "users"), ("kind", "missing")}): 1,
    }


def test_a_manifest_without_checks_or_drift_gives_neither(tmp_path: Path) -> None:
    part = Partition(tmp_path, HOUR)
    part.dir.mkdir(parents=True)
    part.manifest.write_bytes(orjson.dumps({"partition": "2026-11-25T17"}))
    text = metrics.render(metrics.families(a_run(tmp_path), {}))
    assert "etl_pipeline_anomalies" not in text and "etl_pipeline_schema_drift" not in text


def test_rejected_rows_are_counted_per_check_as_csv_records(tmp_path: Path) -> None:
    part = Partition(tmp_path, HOUR)
    part.rejected("line_product_exists").parent.mkdir(parents=True)
    part.rejected("line_product_exists").write_text('cart_id,note\n1,"two\nlines"\n2,x\n3,y\n')
    part.rejected("cart_ids_unique").write_text("cart_id\n")
    found = parsed(metrics.render(metrics.families(a_run(tmp_path), {})))
    assert of(found, "etl_pipeline_rejected_rows") == {
        frozenset({("check", "cart_ids_unique")}): 0,
        frozenset({("check", "line_product_exists")}): 3,
    }


def test_label_values_survive_quotes_backslashes_and_newlines(tmp_path: Path) -> None:
    name = 'a "b" \\ c\nd'
    family = metrics.Family("etl_pipeline_anomalies", "gauge", "help with \\ and\nnewline")
    text = metrics.render([family.add(1, check=name)])
    assert parsed(text) == {("etl_pipeline_anomalies", frozenset({("check", name)})): 1}


def test_the_last_success_and_the_runs_are_carried_over_from_the_previous_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "etl_pipeline.prom"
    assert metrics.record(a_run(tmp_path), str(tmp_path), "") == []
    assert metrics.record(a_run(tmp_path, "failed", T1, 30), str(tmp_path), "") == []
    assert metrics.record(a_run(tmp_path, "interrupted", T1, 143), str(tmp_path), "") == []
    found = parsed(path.read_text())
    assert found[("etl_pipeline_last_success_timestamp_seconds", frozenset())] == T0.timestamp()
    assert found[("etl_pipeline_last_run_timestamp_seconds", frozenset())] == T1.timestamp()
    assert found[("etl_pipeline_last_run_exit_code", frozenset())] == 143
    assert {dict(k)["result"]: v for k, v in of(found, "etl_pipeline_runs_total").items()} == {
        "success": 1, "failed": 1, "interrupted": 1,
    }  # fmt: skip


def test_without_an_earlier_success_there_is_no_last_success_and_garbage_starts_over(
    tmp_path: Path,
) -> None:
    path = tmp_path / "etl_pipeline.prom"
    path.write_bytes(b"\xff\xfe not metrics")
    assert metrics.record(a_run(tmp_path, "failed", T1, 30), str(tmp_path), "") == []
    found = parsed(path.read_text())
    assert ("etl_pipeline_last_success_timestamp_seconds", frozenset()) not in found
    assert found[("etl_pipeline_runs_total", frozenset({("result", "failed")}))] == 1


def test_the_folder_is_the_hosts_log_folder_unless_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert metrics.directory(tmp_path, "") == tmp_path / "logs"
    monkeypatch.setenv("PIPELINE_LOG_DIR", str(tmp_path / "host-logs"))
    assert metrics.directory(ObjectPath("bucket", "data"), "") == tmp_path / "host-logs"
    assert metrics.directory(tmp_path, "/var/lib/node_exporter") == Path("/var/lib/node_exporter")
    assert metrics.directory(tmp_path, "prom") == config.CHECKOUT / "prom"


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_pushgateway_that_is_down_is_one_warning_and_the_run_still_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "run_luigi", lambda args: 0)
    monkeypatch.setattr(runner, "configured_scheduler_url", lambda: "")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "data"))
    url = refused_url()
    folder = tmp_path / "textfiles"
    rc = runner.run_pipeline(["--date-hour", "2026-11-25T17", "--metrics-pushgateway-url", url,
                           "--metrics-directory", str(folder)])  # fmt: skip
    assert rc == 0
    lines = capsys.readouterr().err.splitlines()
    warnings = [line for line in lines if "warning" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"pipeline: warning: metrics not pushed to the Pushgateway at {url}: "
    )
    assert lines[-1].startswith("pipeline: ") and "(exit 0)" in lines[-1]  # the result, last
    found = parsed((folder / "etl_pipeline.prom").read_text())
    assert found[("etl_pipeline_last_run_success", frozenset())] == 1
    assert not (tmp_path / "data" / "logs" / "etl_pipeline.prom").exists()


def test_a_folder_that_cannot_be_written_is_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "run_luigi", lambda args: 0)
    monkeypatch.setattr(runner, "configured_scheduler_url", lambda: "")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "file").write_text("")
    rc = runner.run_pipeline(["--date-hour", "2026-11-25T17",
                           "--metrics-directory", str(tmp_path / "file")])  # fmt: skip
    assert rc == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [
        f"pipeline: warning: metrics not written to {tmp_path / 'file' / 'etl_pipeline.prom'}: "
        f"[Errno 17] File exists: '{tmp_path / 'file'}'"
    ]


# -- docs/metrics.md agrees with what is written -------------------------------------------------

DOCS = config.CHECKOUT / "docs" / "metrics.md"


def every_metric(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Name -> type of every metric a run can write, from an hour that has everything: stats,
    rejected rows, checks, drift, ``latest``; and a part that cannot be read."""
    part = Partition(root, HOUR)
    stats = {"started": "2026-11-25T19:30:00+00:00", "seconds": 0.5}
    part.stats("extract_carts").parent.mkdir(parents=True)
    part.stats("extract_carts").write_bytes(orjson.dumps({**stats, "records": 6, "requests": 1}))
    part.stats("clean_carts").write_bytes(orjson.dumps({**stats, "carts": 6, "line_total": 9.5}))
    part.rejected("line_product_exists").parent.mkdir()
    part.rejected("line_product_exists").write_text("cart_id\n1\n")
    checks = [{"name": "carts", "status": "anomaly"}]
    drift = {"users": {"added": ["x"], "missing": []}}
    part.manifest.write_bytes(orjson.dumps({"checks": checks, "schema_drift": drift}))
    (root / "latest").symlink_to(part.name)
    found = metrics.families(a_run(root), {})

    def unreadable(run: metrics.Run) -> list[metrics.Family]:
        raise OSError("gone")

    monkeypatch.setattr(metrics, "hour_families", unreadable)
    found += metrics.families(a_run(root), {})
    families = text_string_to_metric_families(metrics.render(found))
    return {f.name + ("_total" if f.type == "counter" else ""): f.type for f in families}


def test_the_docs_list_every_metric_with_its_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = re.findall(r"^\| `(etl_pipeline_\w+)` \| (\w+) \|", DOCS.read_text(), re.M)
    assert dict(rows) == every_metric(tmp_path, monkeypatch)
    assert len(rows) == len(dict(rows))


def test_the_docs_alert_rules_are_rules_on_metrics_that_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = DOCS.read_text().split("```yaml\n", 1)[1].split("```", 1)[0]
    (group,) = yaml.safe_load(text)["groups"]
    rules = {rule["alert"]: rule for rule in group["rules"]}
    assert set(rules) == {"EtlPipelineStale", "EtlPipelineFailing"}
    names = every_metric(tmp_path, monkeypatch)
    for rule in rules.values():
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}
        used = set(re.findall(r"etl_pipeline_\w+", rule["expr"]))
        assert used and used <= set(names), used


def test_an_interrupted_run_is_counted_as_one_and_keeps_the_last_success(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def stopped(args: object) -> int:
        raise interrupts.Interrupted(signal.SIGTERM, "ExtractCarts")

    monkeypatch.setattr(runner, "configured_scheduler_url", lambda: "")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(runner, "run_luigi", lambda args: 0)
    assert runner.run_pipeline(["--date-hour", "2026-11-25T17"]) == 0
    monkeypatch.setattr(runner, "run_luigi", stopped)
    monkeypatch.setenv("PIPELINE_NOW", T1.isoformat())
    assert runner.run_pipeline(["--date-hour", "2026-11-25T17"]) == 143
    assert "warning" not in capsys.readouterr().err
    found = parsed((tmp_path / "data" / "logs" / "etl_pipeline.prom").read_text())
    assert found[("etl_pipeline_last_run_success", frozenset())] == 0
    assert found[("etl_pipeline_last_run_exit_code", frozenset())] == 143
    assert found[("etl_pipeline_last_success_timestamp_seconds", frozenset())] == T0.timestamp()
    assert found[("etl_pipeline_last_run_timestamp_seconds", frozenset())] == T1.timestamp()
    assert {dict(k)["result"]: v for k, v in of(found, "etl_pipeline_runs_total").items()} == {
        "success": 1, "failed": 0, "interrupted": 1,
    }  # fmt: skip


def test_the_tasks_a_run_ran_are_told_by_its_run_log_however_long_it_took(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tasks name the run in their stats (its run log's name, ``run-<start>-<pid>``); the
    metrics are written once the run is over, an hour later here, when the environment no
    longer names the log: they still count this run's tasks, and not another run's."""
    from pipeline import lineage

    lineage._own_id.cache_clear()  # an earlier test's id, made at the start time, would match
    part = Partition(tmp_path / "data", HOUR)
    ran: list[str] = []

    def an_hour_long_run(args: object) -> int:
        ran.append(lineage.run_id())  # as its tasks record it
        part.dir.joinpath("_stats").mkdir(parents=True)
        for key, run_id in (("extract_carts", ran[0]), ("extract_users", "run-20261125T180000Z-1")):
            facts = {"run_id": run_id, "seconds": 2.5, "records": 6, "requests": 3}
            part.stats(key).write_bytes(orjson.dumps(facts))
        monkeypatch.setenv("PIPELINE_NOW", T1.isoformat())  # it ends an hour later
        return 0

    monkeypatch.setattr(runner, "configured_scheduler_url", lambda: "")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(runner, "run_luigi", an_hour_long_run)
    assert runner.run_pipeline(["--date-hour", "2026-11-25T17"]) == 0
    assert ran == [f"run-20261125T193000Z-{os.getpid()}"]
    found = parsed((tmp_path / "data" / "logs" / "etl_pipeline.prom").read_text())
    assert of(found, "etl_pipeline_task_duration_seconds") == {
        frozenset({("task", "extract_carts")}): 2.5  # not extract_users: another run's
    }
    requests = of(found, "etl_pipeline_api_requests")
    assert {dict(k)["endpoint"]: v for k, v in requests.items()} == {
        "carts": 3, "products": 0, "users": 0,
    }  # fmt: skip


def test_each_run_counts_its_own_requests_and_a_backfill_has_no_hour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def two_requests(args: object) -> int:
        tally.add("carts", "requests")
        tally.add("carts", "requests")
        tally.add("carts", "retries")
        return 0

    monkeypatch.setattr(runner, "configured_scheduler_url", lambda: "")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(runner, "run_luigi", two_requests)
    tally.add("users", "requests")  # an earlier run in this process
    assert backfill_pipeline(1, False, None, []) == 0
    found = parsed((tmp_path / "data" / "logs" / "etl_pipeline.prom").read_text())
    requests = {dict(k)["endpoint"]: v for k, v in of(found, "etl_pipeline_api_requests").items()}
    assert requests == {"carts": 2, "products": 0, "users": 0}
    assert of(found, "etl_pipeline_api_retries")[frozenset({("endpoint", "carts")})] == 1
    names = {name for name, _ in found}
    assert not {"etl_pipeline_run_hour_timestamp_seconds", "etl_pipeline_records"} & names


def test_parts_that_cannot_be_read_are_one_family_and_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store gone for both the hour's figures and the freshness: one ``metrics_errors``
    family (a name given twice makes node_exporter drop the whole file), one line each."""

    def gone(*args: object) -> list[metrics.Family]:
        raise StoreError("LIST s3://shop/etl: the store did not answer")

    monkeypatch.setattr(metrics, "hour_families", gone)
    monkeypatch.setattr(metrics, "freshness", gone)
    problems: list[str] = []
    text = metrics.render(metrics.families(a_run(tmp_path), {}, problems))
    assert text.count("# TYPE etl_pipeline_metrics_errors gauge") == 1
    assert of(parsed(text), "etl_pipeline_metrics_errors") == {
        frozenset({("part", "hour")}): 1,
        frozenset({("part", "freshness")}): 1,
    }
    assert problems == [
        f"metrics of the {part} not read: StoreError: LIST s3://shop/etl: the store did not answer"
        for part in ("hour", "freshness")
    ]
    assert of(parsed(text), "etl_pipeline_last_run_success") == {frozenset(): 1}


def test_a_backfill_whose_store_goes_away_after_the_run_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hours are counted again after the run: a store gone by then is one line, the run's
    exit code, and its metrics are written first."""
    from pipeline.ops import backfill

    answers = iter([["2026-11-25T18"]])

    def listing(*args: object) -> list[str]:
        for answer in answers:
            return answer
        raise StoreError("LIST s3://shop/etl: the store did not answer")

    monkeypatch.setattr(runner, "configured_scheduler_url", lambda: "")
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(runner, "run_luigi", lambda args: 0)
    monkeypatch.setattr(backfill, "missing", listing)
    assert backfill_pipeline(1, False, None, []) == 0
    said = capsys.readouterr().err.splitlines()
    assert said[-2:] == [
        "pipeline: error: LIST s3://shop/etl: the store did not answer",
        "pipeline: done (exit 0): the hours built cannot be counted now (the data root does not "
        "answer); ./run_pipeline.sh status tells once it does",
    ]
    found = parsed((tmp_path / "data" / "logs" / "etl_pipeline.prom").read_text())
    assert found[("etl_pipeline_last_run_success", frozenset())] == 1
