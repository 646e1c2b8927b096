"""The object-store backend against a real S3-compatible server (moto) on 127.0.0.1: whole
objects only, ``latest`` only forwards, the hour's claim, retention."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pandas.testing as pdt
import pytest

from pipeline import config
from pipeline.ops.housekeeping import prune_partitions
from pipeline.report import summary
from pipeline.rules.history import COLUMNS
from pipeline.storage import history, lease, s3
from pipeline.storage.atomic import atomic_path, read_json, target, write_json
from pipeline.storage.fs import ObjectPath, StoreUnreachable, exists, local_copy, parse_root
from pipeline.storage.latest import advance_latest, latest_partition, latest_reached
from pipeline.storage.locks import PartitionBusy
from tests.support.s3 import BUCKET, ObjectStore, object_store, s3_env

#: Each test talks to a real S3-compatible server (moto) on 127.0.0.1: not in the fast subset.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store() -> Iterator[ObjectStore]:
    with object_store() as server:
        yield server


@pytest.fixture
def root(
    store: ObjectStore, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ObjectPath]:
    """A prefix of its own for each test, and a fresh client pointed at the server."""
    for key, value in s3_env(store.url).items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    s3._clients.clear()
    lease._held.clear()
    yield ObjectPath(BUCKET, request.node.name.replace("[", "-").rstrip("]"))
    lease._held.clear()
    s3._clients.clear()


def test_an_object_appears_whole_and_only_when_its_block_succeeds(
    root: ObjectPath, store: ObjectStore
) -> None:
    out = root / "2026-11-25T17/cleaned/cleaned_users.csv"
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        Path(tmp).write_text("half")
        raise RuntimeError("crash mid-write")
    assert not exists(out) and not target(out).exists()
    with atomic_path(out) as tmp:
        Path(tmp).write_text("user_id\n1\n")
        assert not exists(out)  # nothing at the key while the file is written
    assert store.read(out.key, prefix="") == s3.read_bytes(out) == b"user_id\n1\n"
    assert target(out).exists() and not Path(tmp).exists()  # the local copy is gone
    with local_copy(target(out)) as path:
        assert path.read_text() == "user_id\n1\n"
    assert not path.exists()


def test_a_large_object_is_uploaded_in_parts_and_read_back_the_same(
    root: ObjectPath, store: ObjectStore
) -> None:
    blob = bytes(range(256)) * (40 * 4096 + 7)  # 40 MiB + 1792 B: five 8 MiB parts and a bit
    out = root / "jsons/carts.jsonl"
    with atomic_path(out) as tmp:
        Path(tmp).write_bytes(blob)
    head = store.client.head_object(Bucket=BUCKET, Key=out.key)
    assert head["ContentLength"] == len(blob)
    assert head["ETag"].strip('"').endswith("-6")  # a multipart upload of 6 parts
    with local_copy(out) as path:
        assert path.read_bytes() == blob
    assert store.multipart_uploads() == []


def test_json_facts_round_trip(root: ObjectPath) -> None:
    write_json(root / "_stats/CleanCarts.json", {"rows": 3, "b": [1, 2]})
    assert read_json(root / "_stats/CleanCarts.json") == {"b": [1, 2], "rows": 3}
    with pytest.raises(FileNotFoundError):
        read_json(root / "_stats/missing.json")


def test_latest_is_a_pointer_object_that_only_moves_forwards(
    root: ObjectPath, store: ObjectStore
) -> None:
    assert latest_partition(root) is None and not latest_reached(root, "2026-11-25T17")
    assert advance_latest(root, "2026-11-25T17")
    assert store.read(f"{root.key}/latest", prefix="") == b"2026-11-25T17\n"
    assert not advance_latest(root, "2026-11-25T16")  # a backfill leaves it alone
    assert latest_partition(root) == "2026-11-25T17"
    assert latest_reached(root, "2026-11-25T16") and not latest_reached(root, "2026-11-25T18")


def test_latest_never_moves_backwards_when_hosts_publish_together(root: ObjectPath) -> None:
    hours = [f"2026-11-25T{h:02d}" for h in range(12)]
    moved: list[str] = []
    start = threading.Barrier(len(hours))

    def publish(name: str) -> None:
        start.wait()
        if advance_latest(root, name):
            moved.append(name)

    threads = [threading.Thread(target=publish, args=(name,)) for name in reversed(hours)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert latest_partition(root) == hours[-1]
    assert moved == sorted(moved)  # every move went forwards
    assert hours[-1] in moved


def test_the_claim_refuses_another_owner_until_it_expires_or_is_released(
    root: ObjectPath, store: ObjectStore
) -> None:
    claim = root / "2026-11-25T17/.lock"
    assert lease.acquire(claim, "host-a pid 1", 60, release_at_exit=False)
    assert not lease.acquire(claim, "host-a pid 1", 60, release_at_exit=False)  # held already
    stored = orjson.loads(store.read(claim.key, prefix=""))
    assert stored["owner"] == "host-a pid 1" and stored["expires_at"] > time.time() + 50

    lease._held.clear()  # as seen from another process
    with pytest.raises(PartitionBusy) as err:
        lease.acquire(claim, "host-b pid 2", 60, release_at_exit=False)
    assert str(err.value).startswith(
        "partition 2026-11-25T17 is being written by another run (host-a pid 1, claim valid until "
    )
    assert lease.acquire(claim, "host-a pid 1", 60, release_at_exit=False)  # same owner: joins

    lease.release(claim)
    assert lease.acquire(claim, "host-b pid 2", 60, release_at_exit=False)


def test_an_expired_claim_is_taken_over_and_its_old_holder_writes_nothing_more(
    root: ObjectPath,
) -> None:
    claim = root / "2026-11-25T17/.lock"
    assert lease.acquire(claim, "dead host", 1, release_at_exit=False)
    old = lease._held.pop(str(claim))
    time.sleep(1.2)  # its holder stopped renewing: the claim lapses
    assert lease.acquire(claim, "live host", 60, release_at_exit=False)

    lease._held.clear()
    old.expires = 0  # the stalled holder wakes up and tries to write
    lease._held[str(claim)] = old
    out = root / "2026-11-25T17/insights/user_summary.csv"
    with (
        pytest.raises(lease.ClaimLost, match="claim expired or was taken over"),
        atomic_path(out) as tmp,
    ):
        Path(tmp).write_text("late")
    assert not exists(out)
    assert str(claim) not in lease._held


def test_the_claim_is_renewed_while_its_holder_lives(root: ObjectPath, store: ObjectStore) -> None:
    claim = root / "2026-11-25T17/.lock"
    assert lease.acquire(claim, "host-a pid 1", 2, release_at_exit=False)
    first = orjson.loads(store.read(claim.key, prefix=""))["expires_at"]
    time.sleep(2.5)  # longer than the lease: only renewal keeps it
    assert orjson.loads(store.read(claim.key, prefix=""))["expires_at"] > first
    assert lease.live(orjson.loads(store.read(claim.key, prefix="")))
    lease.release(claim)


def test_retention_prunes_old_partitions_but_not_latest_nor_a_claimed_one(
    root: ObjectPath, store: ObjectStore
) -> None:
    now = datetime(2026, 11, 25, 17, 42)
    names = [(now - timedelta(hours=n)).strftime("%Y-%m-%dT%H") for n in range(6)]
    for name in names:
        for rel in ("manifest.json", "insights/user_summary.csv", "jsons/carts.jsonl"):
            write_json(root / name / rel, {})
    advance_latest(root, names[5])  # the oldest: `latest` after a restore, say
    assert lease.acquire(root / names[4] / ".lock", "a run", 60, release_at_exit=False)
    write_json(root / "logs/run.json", {})  # not a partition: never touched

    pruned = prune_partitions(root, 2, now)
    assert [p.name for p in pruned] == [names[3], names[2]]
    left = {key.split("/")[0] for key in store.keys(root.key)}
    assert left == {names[0], names[1], names[4], names[5], "latest", "logs"}
    assert prune_partitions(root, 2, now, dry_run=True) == []


def test_an_unreachable_store_is_named_in_one_error(
    root: ObjectPath, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setattr(config.storage(), "retries", 2)  # luigi.Config instances are cached
    s3._clients.clear()
    with pytest.raises(StoreUnreachable) as err:
        exists(root / "manifest.json")
    assert str(err.value).startswith(
        f"HEAD {root}/manifest.json: object store http://127.0.0.1:9 unreachable (3 attempts): "
    )


def test_parse_root_gives_the_locations_the_backend_uses() -> None:
    assert parse_root(f"s3://{BUCKET}/a/b") / "latest" == ObjectPath(BUCKET, "a/b/latest")


def history_rows(revenue: float) -> pd.DataFrame:
    """One hour's history rows: its total and one category."""
    rows = [
        {"level": "hour", "carts": 2, "lines": 3, "users": 2, "units": 4, "revenue": revenue,
         "revenue_discounted": revenue - 1},
        {"level": "category", "category": "a-cat", "units": 4, "revenue": revenue,
         "revenue_discounted": revenue - 1},
    ]  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=list(COLUMNS)).astype(COLUMNS)


def test_the_history_is_written_read_and_pruned_on_the_store(
    root: ObjectPath, store: ObjectStore, tmp_path: Path
) -> None:
    empty = history.read_history(root)
    assert empty.empty and list(empty.columns) == [*COLUMNS, "date_hour"]
    assert history.prune_history(root, 90, datetime(2026, 11, 25, 18), keep="x") == []

    hours = {"2026-08-27T17": 1.0, "2026-08-27T18": 2.0, "2026-11-25T16": 3.0}
    for name, revenue in {**hours, "2026-11-25T17": 9.0}.items():
        history.write_hour(root, name, history_rows(revenue))
        history.write_hour(tmp_path, name, history_rows(revenue))  # the same on local disk
    written = history.write_hour(root, "2026-11-25T17", history_rows(4.0))  # a rerun replaces
    history.write_hour(tmp_path, "2026-11-25T17", history_rows(4.0))
    assert written == root / "history/date_hour=2026-11-25T17/part-0.parquet"
    assert (
        store.read(written.key, prefix="")
        == (tmp_path / "history/date_hour=2026-11-25T17/part-0.parquet").read_bytes()
    )

    window = history.read_history(root, "2026-08-27T18", "2026-11-25T17", ("hour",))
    assert window[["date_hour", "revenue"]].values.tolist() == [
        ["2026-08-27T18", 2.0], ["2026-11-25T16", 3.0], ["2026-11-25T17", 4.0],
    ]  # fmt: skip
    pdt.assert_frame_equal(
        history.read_history(root, "2026-11-25T16", None, ("hour", "category")),
        history.read_history(tmp_path, "2026-11-25T16", None, ("hour", "category")),
    )
    assert not list(Path(tempfile.gettempdir()).glob(f"{s3.STAGING}{os.getpid()}-*"))

    now = datetime(2026, 11, 25, 18, 30)  # cutoff: 90 days before 18:00 = 2026-08-27T18
    gone = history.prune_history(root, 90, now, keep="2026-08-27T17")
    assert gone == [root / "history/date_hour=2026-08-27T18"]
    assert store.keys(root.key) == [
        "history/date_hour=2026-08-27T17/part-0.parquet",
        "history/date_hour=2026-11-25T16/part-0.parquet",
        "history/date_hour=2026-11-25T17/part-0.parquet",
    ]


def test_previous_complete_and_the_summary_read_the_store(root: ObjectPath) -> None:
    header = "category,total_sales,total_items_sold,total_sales_discounted\n"
    rows = {"cleaned_carts.csv": 14, "cleaned_users.csv": 6, "product_catalogue.csv": 1208}
    for name, carts, categories in (
        ("2026-11-25T14", 4, "x,100.00,1,90.00\n"),
        ("2026-11-25T17", 6, "beauty,1200.01,3,1000.00\nfurniture,799.99,1,729.59\n"),
    ):
        with atomic_path(root / name / "insights/category_summary.csv") as tmp:
            Path(tmp).write_text(header + categories)
        write_json(
            root / name / "manifest.json", {"reconciliation": {"carts": carts}, "rows": rows}
        )
    write_json(root / "2026-11-25T16/insights/user_summary.csv", {})  # incomplete: no manifest
    with atomic_path(root / "2026-11-25T17/report/index.html") as tmp:
        Path(tmp).write_text("<html></html>")
    advance_latest(root, "2026-11-25T17")

    assert history.previous_complete(root, "2026-11-25T17") == "2026-11-25T14"
    assert history.previous_complete(root, "2026-11-25T14") is None
    assert summary.summary_lines(root, "2026-11-25T17") == [
        "Snapshot 2026-11-25T17: 6 carts, 14 lines, 6 users, 1,208 products",
        "Sales: $2,000.00 at list prices, $1,729.59 after discounts",
        "Top category: beauty, $1,200.01 (60.0% of sales)",
        "Change since 2026-11-25T14: carts +2, revenue +$1,900.00 (+1900.0%)",
        f"Report: {root}/2026-11-25T17/report/index.html",
        f"Latest: {root}/latest -> 2026-11-25T17",
    ]
    assert summary.summary_lines(root, "2026-11-25T14")[4] == "Report: none for this hour"
    with pytest.raises(summary.NoSummary, match=r"2026-11-25T16 under s3://.* is not complete"):
        summary.summary_lines(root, "2026-11-25T16")


def _foreign_claim(location: ObjectPath, seconds: float) -> None:
    """``location`` claimed by another host's run, as that run's process would write it."""
    assert lease.acquire(location, "host-b pid 2 report", seconds, release_at_exit=False)
    lease._held.clear()  # held by the other process, not by this one


def _expire(location: ObjectPath) -> None:
    """The other run lets go of its claim: marked expired, as ``lease.release`` does."""
    claim, etag = lease.read(location)  # type: ignore[misc]
    claim["expires_at"] = time.time() - 1
    assert s3.put_if(location, orjson.dumps(claim), etag) is not None


def test_a_report_re_rendered_elsewhere_is_waited_for_then_locked_and_let_go(
    root: ObjectPath, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On an object store the report's lock is a lease at ``report/.lock``: a run waits while
    another holds it, holds it for the block, and releases it (another run may take it at once)."""
    from pipeline.report.hour import partition, report_lock

    part = partition(root, "2026-11-25T17")
    location = part.report_lock
    _foreign_claim(location, 60)
    monkeypatch.setattr("pipeline.report.hour.REPORT_LOCK_POLL", 0.05)
    started = time.monotonic()
    let_go = threading.Timer(1.0, _expire, [location])  # the other run is done after 1 s
    let_go.start()
    with report_lock(part):
        waited = time.monotonic() - started
        claim = orjson.loads(s3.get(location)[0])  # type: ignore[index]
        assert claim["owner"].endswith(f"pid {os.getpid()} report") and lease.live(claim)
    let_go.join()
    assert waited >= 1.0
    assert not lease.live(orjson.loads(s3.get(location)[0]))  # type: ignore[index]
    _foreign_claim(location, 60)  # another run takes it at once


@pytest.mark.parametrize("stopping", [False, True])
def test_a_report_held_by_another_run_is_left_to_it_after_the_wait_or_when_stopping(
    root: ObjectPath, monkeypatch: pytest.MonkeyPatch, stopping: bool
) -> None:
    """Publishing holds signals back: a run told to stop gives up at once; else after the wait."""
    from pipeline import interrupts
    from pipeline.report.hour import partition, report_lock

    part = partition(root, "2026-11-25T17")
    _foreign_claim(part.report_lock, 60)
    monkeypatch.setattr("pipeline.report.hour.REPORT_LOCK_WAIT", 60.0 if stopping else 0.5)
    monkeypatch.setattr("pipeline.report.hour.REPORT_LOCK_POLL", 0.05)
    if stopping:
        monkeypatch.setattr(interrupts, "_received", 15)  # SIGTERM came while publishing
    why = "the run is stopping" if stopping else "waited too long"
    started = time.monotonic()
    with (
        pytest.raises(
            PartitionBusy,
            match=rf"^the report of 2026-11-25T17 is being written by "
            rf"another run \(host-b pid 2 report, .*\); .*; {why}$",
        ),
        report_lock(part),
    ):
        pytest.fail("the block ran without the lock")  # pragma: no cover
    assert time.monotonic() - started < 30  # not the minute it would have waited


def test_of_two_leases_over_an_object_the_nearer_folders_answers(root: ObjectPath) -> None:
    """A run holding its hour's claim and the report's lease: a write under report/ is checked
    against the report's lease, which it lost, even though the hour's claim is still its own."""
    from pipeline.report.hour import partition

    part = partition(root, "2026-11-25T17")
    assert lease.acquire(part.lock, "host-a pid 1", 60, release_at_exit=False)
    assert lease.acquire(part.report_lock, "host-a pid 1 report", 1, release_at_exit=False)
    mine = dict(lease._held)
    lease._held.clear()
    time.sleep(1.1)  # the report's lease lapses: another run takes it over
    _foreign_claim(part.report_lock, 60)
    lease._held.update(mine)  # both held by this process, as it believes
    lease.check(part.dir / "_stats/CleanUsers.json")  # the hour's claim: still its own
    with pytest.raises(lease.ClaimLost, match=r"^the report of 2026-11-25T17: this run's claim"):
        lease.check(part.report_dir / "index.html")
    lease._held.clear()


def test_a_rerun_swap_copies_and_deletes_data_but_never_a_lock(root: ObjectPath) -> None:
    """The old hour's report lease (another run may be re-rendering it) stays as it is, and a
    lock object in the rebuild is not copied over: locks are no data."""
    from pipeline.ops.rerun import staging_root, swap_in

    name = "2026-11-25T17"
    staging = staging_root(root, name, 4242)
    assert isinstance(staging, ObjectPath)
    objects = {
        root / name / "manifest.json": b'{"old": 1}', root / name / "cleaned/gone.csv": b"old",
        root / name / "report/.lock": b"theirs", root / name / ".lock": b"the hour's",
        staging / name / "manifest.json": b'{"new": 1}', staging / name / "cleaned/a.csv": b"new",
        staging / name / "report/.lock": b"stray",
    }  # fmt: skip
    for location, body in objects.items():
        assert s3.put_if(location, body, None) is not None
    assert swap_in(root, staging, name) is False  # object by object
    hour = root / name
    names = [key.removeprefix(hour.prefix) for key in s3.keys_under(hour)]
    left = {rel: s3.get(hour / rel)[0] for rel in names}  # type: ignore[index]
    assert left == {".lock": b"the hour's", "cleaned/a.csv": b"new",
                    "manifest.json": b'{"new": 1}', "report/.lock": b"theirs"}  # fmt: skip
