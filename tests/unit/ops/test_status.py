"""``python -m pipeline status``: freshness and gaps, in the monitoring-plugins convention."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import luigi.configuration
import orjson
import pytest

from pipeline import cli, runlog
from pipeline.ops import status
from pipeline.ops.status import CRITICAL, OK, UNKNOWN, WARNING, Health, assess
from pipeline.storage import lease, s3
from pipeline.storage.fs import ObjectPath
from pipeline.storage.locks import hold_partition_lock
from tests.support.s3 import BUCKET, ObjectStore, object_store, s3_env

NOW = datetime(2026, 11, 25, 19, 30, tzinfo=UTC)  # the suite's pinned time (tests/support.NOW)


def verdict(states: dict[str, str], warn: int = 2, critical: int = 6, days: int = 1) -> int:
    return assess(states, None, NOW, days=days, warn_after_hours=warn,
                  critical_after_hours=critical).exit_code  # fmt: skip


def full_day(**override: str) -> dict[str, str]:
    """Every hour of the day up to the current one complete, with ``override``s."""
    states = {f"2026-11-24T{h:02d}": "complete" for h in range(20, 24)}
    states |= {f"2026-11-25T{h:02d}": "complete" for h in range(20)}
    return states | {k.replace("_", "-").replace("t", "T"): v for k, v in override.items()}


@pytest.mark.parametrize(
    ("newest", "expected"),
    [
        ("2026-11-25T19", OK),  # the current hour: 0 h
        ("2026-11-25T18", OK),  # 1 h: the current hour is due a few minutes in
        ("2026-11-25T17", WARNING),  # 2 h = warn_after_hours: the first warning
        ("2026-11-25T14", WARNING),  # 5 h: the last warning
        ("2026-11-25T13", CRITICAL),  # 6 h = critical_after_hours: the first critical
    ],
)
def test_freshness_edges(newest: str, expected: int) -> None:
    """Only the newest complete hour counts here: the hours after it are running."""
    states = {h: s for h, s in full_day().items() if h <= newest}
    states |= {h: "running" for h in full_day() if h > newest}
    assert verdict(states) == expected


def test_no_complete_hour_is_critical_and_a_gap_or_failure_a_warning() -> None:
    assert verdict({}) == CRITICAL
    assert verdict({"2026-11-25T19": "failed"}) == CRITICAL
    assert verdict(full_day()) == OK
    gap = {h: s for h, s in full_day().items() if h != "2026-11-25T03"}
    assert verdict(gap) == WARNING
    assert verdict(full_day() | {"2026-11-25T03": "failed"}) == WARNING
    assert verdict(full_day() | {"2026-11-25T03": "running"}) == OK  # a backfill at work


def test_the_current_hour_is_due_not_missing_and_the_window_has_days_times_24_hours() -> None:
    states = {h: s for h, s in full_day().items() if h != "2026-11-25T19"}
    health = assess(states, None, NOW, days=1, warn_after_hours=2, critical_after_hours=6)
    assert (health.exit_code, health.missing, health.window) == (
        OK, [], ("2026-11-24T20", "2026-11-25T19"),
    )  # fmt: skip
    week = assess({}, None, NOW, days=7, warn_after_hours=2, critical_after_hours=6)
    assert week.window == ("2026-11-18T20", "2026-11-25T19") and len(week.missing) == 7 * 24 - 1


def test_no_hour_before_the_first_on_record_is_missing() -> None:
    """A new install is not a week of gaps, nor a pruned root its pruned hours. The edge: a
    first hour at the window's start (or before it) keeps the whole window."""

    def health(first: str) -> Health:
        states = {first: "complete", "2026-11-25T18": "complete"}  # the oldest partition, and 18
        return assess({h: v for h, v in states.items() if h >= "2026-11-24T20"}, None, NOW,
                      days=1, warn_after_hours=2, critical_after_hours=6,
                      first_on_record=first)  # fmt: skip

    before, at_start, later = (
        health("2026-11-01T00"),
        health("2026-11-24T20"),
        health("2026-11-24T21"),
    )
    assert [(h.window[0], h.missing[0], len(h.missing)) for h in (before, at_start, later)] == [
        ("2026-11-24T20", "2026-11-24T20", 22),  # 20..17 (19 is due)
        ("2026-11-24T20", "2026-11-24T21", 21),
        ("2026-11-24T21", "2026-11-24T22", 20),
    ]
    assert [h.reasons[1] for h in (before, at_start, later)] == [
        "22 hour(s) missing and 0 failed in the last 1 day(s)",
        "21 hour(s) missing and 0 failed in the last 1 day(s)",
        "20 hour(s) missing and 0 failed since 2026-11-24T21, the first hour on record",
    ]
    new_install = health("2026-11-25T18")
    assert (new_install.exit_code, new_install.missing, new_install.window) == (
        OK, [], ("2026-11-25T18", "2026-11-25T19"),
    )  # fmt: skip
    # A first hour ahead of this host's clock (another host's, within the allowed skew): the
    # window is the current hour alone, and that hour is due, not missing.
    ahead = assess({"2026-11-25T20": "complete"}, None, NOW, days=1, warn_after_hours=2,
                   critical_after_hours=6, first_on_record="2026-11-25T20")  # fmt: skip
    assert (ahead.window, ahead.missing, ahead.reasons[1]) == (
        ("2026-11-25T19", "2026-11-25T19"), [],
        "0 hour(s) missing and 0 failed since 2026-11-25T20, the first hour on record",
    )  # fmt: skip


def test_the_text_names_each_fact_and_folds_consecutive_hours() -> None:
    states = full_day() | {"2026-11-25T05": "failed", "2026-11-25T19": "running"}
    for gone in ("2026-11-25T02", "2026-11-25T03", "2026-11-25T04", "2026-11-25T09"):
        del states[gone]
    health = assess(states, "/d/2026-11-25T18/report/index.html", NOW, days=1,
                    warn_after_hours=2, critical_after_hours=6, root="/d")  # fmt: skip
    assert status.text(health).splitlines() == [
        "WARNING: newest complete hour 2026-11-25T18 (1 h old); 4 hour(s) missing and 1 failed "
        "in the last 1 day(s)",
        "  data root: /d",
        "  window: 2026-11-24T20 to 2026-11-25T19 (UTC), checked at 2026-11-25T19:30:00+00:00",
        "  missing: 2026-11-25T02..2026-11-25T04 (3 h), 2026-11-25T09",
        "  failed: 2026-11-25T05",
        "  running: 2026-11-25T19",
        "  newest report: /d/2026-11-25T18/report/index.html",
    ]


def make_hour(root: Path, name: str, complete: bool = True, report: bool = False) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / ".lock").touch()
    if complete:
        (folder / "manifest.json").write_text("{}")
    if report:
        (folder / "report").mkdir()
        (folder / "report" / "index.html").write_text("<html>")


def test_a_local_root_through_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """complete = manifest; failed = a folder without one that no run holds; running = its lock
    held; the newest report of a complete hour; exit code and JSON as documented."""
    make_hour(tmp_path, "2026-11-24T21")  # the first hour on record: none before it is missing
    make_hour(tmp_path, "2026-11-25T16", report=True)
    make_hour(tmp_path, "2026-11-25T17")  # complete, no report (the report is newest of 16)
    make_hour(tmp_path, "2026-11-25T18", complete=False)
    make_hour(tmp_path, "2026-11-25T19", complete=False)
    (tmp_path / "logs").mkdir()  # not a partition
    hold_partition_lock(tmp_path / "2026-11-25T19" / ".lock")
    assert cli.main(["status", "--data-dir", str(tmp_path), "--days", "1"]) == WARNING
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "WARNING: newest complete hour 2026-11-25T17 (2 h old, warning from 2 h); 18 hour(s) "
        "missing and 1 failed since 2026-11-24T21, the first hour on record"
    )
    assert out[-4:] == [
        "  missing: 2026-11-24T22..2026-11-25T15 (18 h)",
        "  failed: 2026-11-25T18",
        "  running: 2026-11-25T19",
        f"  newest report: {tmp_path}/2026-11-25T16/report/index.html",
    ]
    assert cli.main(["status", "--data-dir", str(tmp_path), "--days", "1", "--json"]) == WARNING
    facts = orjson.loads(capsys.readouterr().out)
    assert (facts["status"], facts["exit_code"], facts["newest_complete"], facts["age_hours"]) == (
        "WARNING", 1, "2026-11-25T17", 2,
    )  # fmt: skip
    assert (facts["failed"], facts["running"]) == (["2026-11-25T18"], ["2026-11-25T19"])


def test_runs_that_failed_before_writing_anything_count_from_their_first_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new install whose first runs failed before writing (no folder; the next success
    forgets failed-run.env): its run logs say since when hours were due."""
    make_hour(tmp_path, "2026-11-25T18")
    (tmp_path / "logs").mkdir()
    for name in ("run-20261125T100512Z-7.log", "run-20261125T180500Z-9.log", "run-notes.log"):
        (tmp_path / "logs" / name).touch()
    code, out = said(["--data-dir", str(tmp_path), "--days", "1"], capsys)
    assert (code, out[0]) == (WARNING, (
        "WARNING: newest complete hour 2026-11-25T18 (1 h old); 8 hour(s) missing and 0 failed "
        "since 2026-11-25T10, the first hour on record"
    ))  # fmt: skip
    assert out[3] == "  missing: 2026-11-25T10..2026-11-25T17 (8 h)"


def test_an_unreadable_root_is_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status", "--data-dir", "gs://bucket/x"]) == UNKNOWN
    assert capsys.readouterr().out.startswith("UNKNOWN: cannot read the data root: data root ")


def said(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = cli.main(["status", *argv])
    return code, capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["--days", "0"], "argument --days: 0 must be 1 to 366, as [monitoring] days"),
        (["--days", "367"], "argument --days: 367 must be 1 to 366, as [monitoring] days"),
        (["--days", "1000000"], "argument --days: 1000000 must be 1 to 366, as [monitoring] days"),
        (["--days", "x"], "argument --days: 'x' is not a whole number"),
        (["--nope"], "unrecognized arguments: --nope"),
    ],
)
def test_a_usage_error_is_one_unknown_line_and_exit_3(
    argv: list[str], why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not argparse's exit 2, which a monitoring system reads as CRITICAL."""
    assert said(["--data-dir", str(tmp_path), *argv], capsys) == (
        UNKNOWN, [f"UNKNOWN: usage: {why} (see python -m pipeline status --help)"],
    )  # fmt: skip


@pytest.mark.parametrize(("days", "first"), [("1", "2026-11-24T20"), ("366", "2025-11-24T20")])
def test_days_edges_are_accepted(
    days: str, first: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = said(["--data-dir", str(tmp_path), "--days", days], capsys)
    assert (code, out[2]) == (
        CRITICAL, f"  window: {first} to 2026-11-25T19 (UTC), checked at 2026-11-25T19:30:00+00:00",
    )  # fmt: skip


def test_usage_error_with_json_is_one_unknown_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = said(["--data-dir", str(tmp_path), "--json", "--days", "0"], capsys)
    assert (code, [orjson.loads(line) for line in out]) == (UNKNOWN, [{
        "status": "UNKNOWN", "exit_code": 3, "reasons": [
            "UNKNOWN: usage: argument --days: 0 must be 1 to 366, as [monitoring] days "
            "(see python -m pipeline status --help)"],
    }])  # fmt: skip


def test_unusable_monitoring_settings_are_unknown_naming_each(
    cfg_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad option with its value and source, as the run's settings check words it; a bad
    option of a section ``status`` does not read ([api]) is left to the runs."""
    cfg_file.write_text("[monitoring]\nwarn_after_hours = 0\ndays = 9999\n[api]\npage_size = abc\n")
    luigi.configuration.LuigiConfigParser.reload()
    assert said(["--data-dir", str(tmp_path)], capsys) == (UNKNOWN, [
        f"UNKNOWN: 2 setting(s) unusable: [monitoring] days = '9999' (from {cfg_file}): must be "
        f"1 to 366; [monitoring] warn_after_hours = '0' (from {cfg_file}): must be >= 1",
    ])  # fmt: skip


def test_paths_settings_count_only_when_status_uses_them(
    cfg_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The data root from [paths] is checked as a run checks it; --data-dir replaces it."""
    monkeypatch.delenv("PIPELINE_DATA_DIR", raising=False)
    cfg_file.write_text("[paths]\ndata_dir =\n")
    luigi.configuration.LuigiConfigParser.reload()
    assert said([], capsys) == (UNKNOWN, [
        f"UNKNOWN: 1 setting(s) unusable: [paths] data_dir = '' (from {cfg_file}): must be "
        "not empty",
    ])  # fmt: skip
    assert said(["--data-dir", str(tmp_path)], capsys)[0] == CRITICAL  # an empty root: judged


@pytest.mark.parametrize(("option", "value"), [("days", "366"), ("warn_after_hours", "1")])
def test_monitoring_settings_edges_are_usable(
    option: str, value: str, cfg_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_file.write_text(f"[monitoring]\n{option} = {value}\n")
    luigi.configuration.LuigiConfigParser.reload()
    assert said(["--data-dir", str(tmp_path)], capsys)[0] == CRITICAL  # an empty root: judged


def test_a_bad_pipeline_now_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_NOW", "yesterday")
    assert said(["--data-dir", str(tmp_path)], capsys) == (UNKNOWN, [
        "UNKNOWN: cannot tell the time: PIPELINE_NOW='yesterday' is not a time with a UTC offset "
        "like 2026-11-25T17:30:00Z; unset it to use this machine's clock",
    ])  # fmt: skip


# -- a run that failed before writing anything (its hour folder removed) -------------------------


def failed_run(hour: str = "2026-11-25T03", code: str = "30") -> status.FailedRun:
    return status.FailedRun(hour, code, "/d/logs/run-20261125T030500Z-7.log")


H = ["2026-11-25T03"]


@pytest.mark.parametrize(
    ("state", "code", "failed", "missing", "verdict"),
    [
        (None, "30", H, [], WARNING),  # no folder left: failed, not missing
        ("failed", "30", H, [], WARNING),  # a folder without a manifest: failed, and now why
        (None, "1", H, [], WARNING),
        (None, "0", [], H, WARNING),  # it succeeded (note_run removes the file then)
        (None, "", [], H, WARNING),  # under way, or killed before it could say
        ("complete", "30", [], [], OK),  # a later run completed the hour
        ("running", "30", [], [], OK),  # a run holds it again
    ],
)
def test_failed_run_env_makes_its_hour_failed_only_with_an_exit_code_and_no_manifest(
    state: str | None, code: str, failed: list[str], missing: list[str], verdict: int
) -> None:
    states = {h: s for h, s in (full_day() | {H[0]: state}).items() if s is not None}
    health = assess(states, None, NOW, days=1, warn_after_hours=2, critical_after_hours=6,
                    failed_run=failed_run(code=code))  # fmt: skip
    assert (health.failed, health.missing, health.exit_code) == (failed, missing, verdict)
    assert health.failed_run == (failed_run(code=code) if failed else None)


@pytest.mark.parametrize(("hour", "failed"), [("2026-11-24T20", ["2026-11-24T20"]),
                                             ("2026-11-24T19", [])])  # fmt: skip
def test_failed_run_env_counts_only_inside_the_window(hour: str, failed: list[str]) -> None:
    """The window's first hour is the last one it names; the hour before is outside."""
    states = {h: s for h, s in full_day().items() if h != hour}
    health = assess(states, None, NOW, days=1, warn_after_hours=2, critical_after_hours=6,
                    failed_run=failed_run(hour))  # fmt: skip
    assert (health.failed, health.missing, health.failed_run is not None) == (
        failed, [], bool(failed),
    )  # fmt: skip


def test_a_run_that_failed_before_writing_is_failed_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``failed-run.env`` as ``runlog.note_run`` writes it, beside the partitions of a local root:
    the hour (no folder left) is failed, and the text says the exit code and the run log."""
    make_hour(tmp_path, "2026-11-24T20")  # at the window's start: the whole window is looked at
    make_hour(tmp_path, "2026-11-25T18")
    log = tmp_path / "logs" / "run-20261125T190500Z-42.log"
    log.parent.mkdir()
    runlog.note_run(tmp_path, datetime(2026, 11, 25, 19), log, rc=30)
    code, out = said(["--data-dir", str(tmp_path), "--days", "1"], capsys)
    assert (code, out[0]) == (WARNING, (
        "WARNING: newest complete hour 2026-11-25T18 (1 h old); 21 hour(s) missing and 1 failed "
        "in the last 1 day(s)"
    ))  # fmt: skip
    assert out[3:6] == [
        "  missing: 2026-11-24T21..2026-11-25T17 (21 h)",
        "  failed: 2026-11-25T19",
        f"  failed run: 2026-11-25T19 exited 30; run log: {log}",
    ]
    runlog.note_run(tmp_path, datetime(2026, 11, 25, 19), log, rc=None)  # run again: under way
    code, out = said(["--data-dir", str(tmp_path), "--days", "1"], capsys)
    assert (code, out[0].endswith("21 hour(s) missing and 0 failed in the last 1 day(s)")) == (
        WARNING, True,
    )  # fmt: skip


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ObjectStore, ObjectPath]]:
    with object_store() as store:
        for key, value in s3_env(store.url).items():
            if key.startswith("AWS_"):
                monkeypatch.setenv(key, value)
        s3._clients.clear()
        yield store, ObjectPath(BUCKET, "etl")
        s3._clients.clear()
        lease._held.clear()


@pytest.mark.slow
def test_an_object_store_root(
    bucket: tuple[ObjectStore, ObjectPath], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same states from objects: a live claim is a run, an expired one a failure; a run
    that failed before writing is named in ``failed-run.env`` on this host ($PIPELINE_LOG_DIR)."""
    store, root = bucket
    monkeypatch.setenv("PIPELINE_LOG_DIR", str(tmp_path / "host-logs"))
    (tmp_path / "host-logs").mkdir()
    runlog.note_run(root, datetime(2026, 11, 25, 16), tmp_path / "host-logs" / "run.log", rc=30)
    for key in ("2026-11-25T18/manifest.json", "2026-11-25T18/report/index.html"):
        store.client.put_object(Bucket=BUCKET, Key=f"etl/{key}", Body=b"{}")
    lease.acquire(root / "2026-11-25T19" / ".lock", "test", 120, release_at_exit=False)
    expired = {"owner": "gone", "expires_at": 1.0}
    store.client.put_object(
        Bucket=BUCKET, Key="etl/2026-11-25T17/.lock", Body=orjson.dumps(expired)
    )
    health = status.check(root, NOW, 1, 2, 6)
    assert (health.exit_code, health.newest_complete, health.failed, health.running) == (
        WARNING, "2026-11-25T18", ["2026-11-25T16", "2026-11-25T17"], ["2026-11-25T19"],
    )  # fmt: skip
    assert health.newest_report == "s3://shop-data/etl/2026-11-25T18/report/index.html"
    assert health.missing == []  # 16, the failed run's hour, is the first on record
    assert health.window == ("2026-11-25T16", "2026-11-25T19")
    assert health.failed_run == status.FailedRun(
        "2026-11-25T16", "30", str(tmp_path / "host-logs" / "run.log")
    )
