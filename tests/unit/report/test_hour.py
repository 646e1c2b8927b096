"""An hour's report, the console summary and ``report`` compare with the same earlier hour, and a
report is brought up to date when an earlier hour completes after it (hours out of order)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import orjson
import pytest

from pipeline.report import hour, summary
from pipeline.report.build import Settings
from pipeline.storage.layout import Partition
from pipeline.storage.locks import PartitionBusy
from tests.support.expected import CART_DETAILS, CATEGORY_SUMMARY, USER_SUMMARY
from tests.support.locks import hold, locked

EARLY, LATE = "2026-11-25T17", "2026-11-25T18"
SETTINGS = Settings()


#: The fixture hour without cart 6 (Emma: 2 x Apple Airpods, mobile-accessories, 259.98 at list
#: price, 219.58 after discounts): 5 carts, 13 lines, 36 units, 2163.64 - 259.98 = 1903.66.
def _without(text: str, dropped: str) -> str:
    return "".join(line + "\n" for line in text.splitlines() if dropped not in line)


LATE_FILES = {
    "user_summary": _without(USER_SUMMARY, ',"Emma",'),
    "category_summary": CATEGORY_SUMMARY.replace(
        '"mobile-accessories",389.97,3,329.37', '"mobile-accessories",129.99,1,109.79'
    ),
    "cart_details": _without(CART_DETAILS, '6,5,"Emma"'),
}
EARLY_FILES = {
    "user_summary": USER_SUMMARY, "category_summary": CATEGORY_SUMMARY,
    "cart_details": CART_DETAILS,
}  # fmt: skip

#: 259.98 / 2163.64 = 12.02%
CHANGES = (
    "Against 2026-11-25T17 (1 hour earlier): carts 5 (-1), lines 13 (-1), units 36 (-2), "
    "revenue $1,903.66 (-$259.98, -12.0%).\n\n"
    "1 cart vanished (id 6).\n\n"
    "By category: mobile-accessories -$259.98 ($389.97 to $129.99, units -2).\n"
)
NONE = "There is no earlier complete snapshot, so there is nothing to compare this hour with.\n"


def build_hour(root: Path, name: str, files: dict[str, str]) -> None:
    """A complete hour as its run leaves it: insights, a report compared with the newest earlier
    complete hour of that moment (recorded in its stats), then the manifest."""
    part = hour.partition(root, name)
    for table, text in files.items():
        part.insight(table).parent.mkdir(parents=True, exist_ok=True)
        part.insight(table).write_text(text)
    from pipeline.storage.history import previous_complete

    previous = previous_complete(root, name)
    report = hour.write(part, previous, SETTINGS)
    part.stats("hour_report").parent.mkdir(exist_ok=True)
    stats = {**hour.facts(report, previous), "seconds": 1.0}
    part.stats("hour_report").write_bytes(orjson.dumps(stats))
    lines = files["cart_details"].splitlines()[1:]
    carts = len({line.split(",")[0] for line in lines})
    rows = {"cleaned_carts.csv": len(lines), "cleaned_users.csv": 5, "product_catalogue.csv": 8}
    manifest = {"reconciliation": {"carts": carts}, "rows": rows}
    part.manifest.write_bytes(orjson.dumps(manifest))


def changes(root: Path, name: str) -> str:
    text = (root / name / "report/findings.md").read_text()
    return text.split("## What changed\n\n", 1)[1].split("\n## ", 1)[0]


def html_changes(root: Path, name: str) -> str:
    text = (root / name / "report/index.html").read_text()
    return text.split('<section id="changes">', 1)[1].split("</section>", 1)[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The later hour completes first, so its report has nothing to compare with; then the
    earlier one (built once, copied for each test)."""
    root = tmp_path_factory.mktemp("hours") / "data"
    build_hour(root, LATE, LATE_FILES)
    assert changes(root, LATE) == NONE
    os.symlink(LATE, root / "latest")
    build_hour(root, EARLY, EARLY_FILES)
    return root


@pytest.fixture
def out_of_order(built: Path, tmp_path: Path) -> Path:
    shutil.copytree(built, tmp_path / "data", symlinks=True)
    return tmp_path / "data"


def test_the_run_completing_an_earlier_hour_brings_the_next_hours_report_up_to_date(
    out_of_order: Path,
) -> None:
    root = out_of_order
    stale_html = html_changes(root, LATE)
    assert hour.refresh_around(root, EARLY) == [
        f"report of {LATE} brought up to date: it now compares with {EARLY}"
    ]
    assert changes(root, LATE) == CHANGES
    assert "Against 2026-11-25T17 (1 hour earlier)" in html_changes(root, LATE) != stale_html
    stats = orjson.loads((root / LATE / "_stats/HourReport.json").read_bytes())
    assert (stats["previous"], stats["seconds"], stats["rows"]) == (EARLY, 1.0, {"findings.md": 8})
    assert stats["refreshed"]
    # the summary (console and `report`) compares with the same hour, and says so
    assert summary.summary_lines(root, LATE)[3] == (
        "Change since 2026-11-25T17: carts -1, revenue -$259.98 (-12.0%)"
    )
    assert changes(root, EARLY) == NONE  # the earlier hour has none before it: left as it was


def test_until_it_is_brought_up_to_date_the_summary_agrees_with_the_report(
    out_of_order: Path,
) -> None:
    assert changes(out_of_order, LATE) == NONE
    assert summary.summary_lines(out_of_order, LATE)[3] == (
        "Change: no earlier complete snapshot to compare with"
    )


def test_an_up_to_date_report_is_left_alone(out_of_order: Path) -> None:
    root = out_of_order
    assert hour.refresh(root, LATE) == EARLY
    report = root / LATE / "report"
    before = {p.name: p.stat().st_mtime_ns for p in [*report.iterdir(), root / LATE / "_stats"]}
    assert hour.refresh(root, LATE) is None
    assert hour.refresh_around(root, EARLY) == []
    assert {p.name: p.stat().st_mtime_ns for p in [*report.iterdir(), root / LATE / "_stats"]} == (
        before
    )


def test_an_hour_not_yet_complete_is_left_to_its_own_run(out_of_order: Path) -> None:
    root = out_of_order
    (root / LATE / "manifest.json").unlink()
    assert hour.refresh_around(root, EARLY) == []
    assert changes(root, LATE) == NONE


def test_a_report_is_not_redone_when_the_hour_it_compared_with_is_removed(
    out_of_order: Path,
) -> None:
    root = out_of_order
    hour.refresh(root, LATE)
    (root / EARLY / "manifest.json").unlink()  # pruned, say
    assert hour.refresh(root, LATE) is None
    assert changes(root, LATE) == CHANGES
    assert summary.summary_lines(root, LATE)[3] == (
        "Change: not shown; the report compared with 2026-11-25T17, removed since"
    )


def test_a_report_written_before_the_hour_was_recorded_is_compared_as_before(
    out_of_order: Path,
) -> None:
    root = out_of_order
    stats = root / LATE / "_stats/HourReport.json"
    facts = orjson.loads(stats.read_bytes())
    del facts["previous"]
    stats.write_bytes(orjson.dumps(facts))
    assert hour.refresh(root, LATE) is None  # nothing says what it shows: not guessed at
    assert summary.summary_lines(root, LATE)[3].startswith("Change since 2026-11-25T17: ")


def test_a_rebuilt_hour_brings_its_own_report_and_the_next_hours_up_to_date(
    out_of_order: Path,
) -> None:
    """rerun builds an hour in a staging root with nothing before it, then swaps it in; the next
    hour's report compared with the old figures."""
    root = out_of_order
    hour.refresh(root, LATE)
    for table, text in LATE_FILES.items():  # the earlier hour rebuilt: now as the later one
        (root / EARLY / "insights" / f"{table}.csv").write_text(text)
    assert hour.refresh_around(root, EARLY) == []  # no newer hour: only a rebuild redoes it
    assert hour.refresh_around(root, EARLY, rebuilt=True) == [
        f"report of {LATE} brought up to date: it now compares with {EARLY}"
    ]
    assert changes(root, LATE) == (
        "Against 2026-11-25T17 (1 hour earlier): carts 5 (no change), lines 13 (no change), "
        "units 36 (no change), revenue $1,903.66 (no change).\n\n"
        "No cart appeared or vanished.\n\n"
        "Revenue and units by category are unchanged.\n"
    )


def test_a_report_brought_up_to_date_still_names_the_run_that_made_its_hour(
    out_of_order: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = orjson.loads((out_of_order / LATE / "_stats/HourReport.json").read_bytes())["lineage"]
    assert made["run_id"].startswith("run-") and made["source"] == "unknown"  # no extract stats
    monkeypatch.setenv("PIPELINE_RUN_LOG", "/logs/run-20261125T203000Z-99.log")  # another run
    assert hour.refresh_around(out_of_order, EARLY)
    text = (out_of_order / LATE / "report/findings.md").read_text()
    assert f"Run {made['run_id']}, code {made['code_version']}, source unknown." in text
    assert "run-20261125T203000Z-99" not in text


def test_a_report_that_recorded_no_run_is_brought_up_to_date_naming_none(
    out_of_order: Path,
) -> None:
    path = out_of_order / LATE / "_stats/HourReport.json"
    stats = orjson.loads(path.read_bytes())
    del stats["lineage"]  # written before runs were recorded
    path.write_bytes(orjson.dumps(stats))
    assert hour.refresh_around(out_of_order, EARLY)
    text = (out_of_order / LATE / "report/findings.md").read_text()
    assert "\nRun unknown, code unknown, source unknown.\n" in text


@pytest.mark.parametrize("in_run", [True, False])
def test_a_report_re_rendered_by_another_run_is_waited_for_then_locked_and_let_go(
    in_run: bool,
    out_of_order: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It says so once: in a run through the console's log records, else (a rerun's swap,
    after its run) as the command line."""
    from pipeline import logs

    monkeypatch.setattr(logs, "console_active", lambda: in_run)
    part = hour.partition(out_of_order, LATE)
    monkeypatch.setattr(hour, "REPORT_LOCK_POLL", 0.01)
    other, tries = hold(part.dir), []
    take = hour._flock

    def done_after_one_try(fd: int, folder: Partition) -> None:
        tries.append(locked(part.dir))
        try:
            take(fd, folder)
        finally:
            if len(tries) == 1:
                os.close(other)  # the other run is done: the next try takes it

    monkeypatch.setattr(hour, "_flock", done_after_one_try)
    with caplog.at_level(logging.INFO), hour.report_lock(part):
        assert locked(part.dir)  # by this run now
    assert tries == [True, False]  # waited once, then took it
    assert not locked(part.dir)  # and let it go
    notice = (
        f"waiting up to 30 s: the report of {LATE} is being re-rendered by another run "
        f"(pid {os.getpid()})"  # the holder, as the kernel names it
    )
    assert [r.getMessage() for r in caplog.records] == ([notice] if in_run else [])
    assert capsys.readouterr().err == ("" if in_run else f"pipeline: {notice}\n")


@pytest.mark.parametrize("stopping", [False, True])
def test_a_report_held_by_another_run_is_left_to_it_after_the_wait_or_when_stopping(
    out_of_order: Path, monkeypatch: pytest.MonkeyPatch, stopping: bool
) -> None:
    """Publishing holds signals back: a run told to stop gives up at once; else after the wait
    (on an object store too: tests/unit/storage/test_s3.py)."""
    from pipeline import interrupts

    part = hour.partition(out_of_order, LATE)
    monkeypatch.setattr(hour, "REPORT_LOCK_WAIT", 60.0 if stopping else 0.2)
    monkeypatch.setattr(hour, "REPORT_LOCK_POLL", 0.01)
    if stopping:
        monkeypatch.setattr(interrupts, "_received", 15)  # SIGTERM came while publishing
    tries: list[int] = []
    take = hour._flock
    monkeypatch.setattr(hour, "_flock", lambda fd, folder: tries.append(fd) or take(fd, folder))
    why = "the run is stopping" if stopping else "waited too long"
    other = hold(part.dir)
    try:
        with pytest.raises(PartitionBusy) as busy, hour.report_lock(part):
            pytest.fail("the block ran without the lock")  # pragma: no cover
    finally:
        os.close(other)
    assert str(busy.value) == (
        f"the report of {LATE} is being re-rendered by another run (pid {os.getpid()}); {why}"
    )
    assert len(tries) == 1 if stopping else len(tries) > 1  # told to stop: not one more try


def test_inside_a_reruns_hold_the_rebuilt_folder_is_locked_without_waiting(
    out_of_order: Path,
) -> None:
    """A rerun locks the old folder, swaps the rebuilt one in and refreshes its report: that
    refresh locks the folder now at the hour's path, which the rerun does not hold."""
    from pipeline.storage.atomic import exchange

    part = hour.partition(out_of_order, LATE)
    rebuilt = out_of_order / ".rebuilt"
    shutil.copytree(part.dir, rebuilt)
    with hour.report_lock(part):
        exchange(rebuilt, part.dir)
        with hour.report_lock(part):
            assert locked(part.dir) and locked(rebuilt)
