"""The base of every task: one hourly partition, atomic outputs, a stats file, the lock.

Every task writes a small stats file (timings, row counts, figures) last; ``Insights`` assembles
them into the manifest. A task is complete when all its outputs exist, so a rerun skips it.

Checking is not writing: ``complete()`` only looks for files. A run claims its partition's lock
when luigi schedules an incomplete task of it (``deps()``), before any task runs, so a second
run of the same hour exits with [retcode] already_running before doing anything, and checking
an hour that is complete, or not run at all, creates no folder and no file.

Before it claims anything, a run checks every setting and the hour (``config.check_settings``)
and that the data root can hold it; a bad one stops the run with ``config.EXIT_CONFIG`` and one
message. luigi's events put a line on the console when a task starts, ends or fails (with the
cause and what to do, ``failures.explain``); the traceback stays in the run log.

This module and the task modules import pandas and pyarrow only when a task runs, so that
``import pipeline`` (luigi's start-up, housekeeping) stays light.

The data root may be an object store (``s3://bucket/prefix``, ``storage.fs``): the hour is then
claimed with a lease object instead of the flock, shared by the workers of one luigid. A data
root that cannot be used (unknown scheme, store unreachable) stops the run at once with one
message and [retcode] scheduling_error, before anything is requested or written.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import importlib
import logging
import os
import re
import socket
import sys
import time
import traceback
import typing
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import luigi
import luigi.interface
import luigi.retcodes

from pipeline import clock, config, config_check, interrupts, lineage, plain_metrics, progress
from pipeline.failures import explain
from pipeline.logs import RUN_LOG_ENV, start_run_log, task_context, to_console
from pipeline.runlog import run_log
from pipeline.storage import fs
from pipeline.storage.atomic import (
    atomic_path,
    remove_orphaned_links,
    remove_stale_temporaries,
    target,
    write_json,
)
from pipeline.storage.layout import Partition
from pipeline.storage.locks import PartitionBusy, hold_partition_lock

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("luigi-interface.pipeline")


def _default_hour() -> datetime:
    try:
        return clock.current_hour()
    except clock.ClockError:  # refused by PartitionTask.__init__ before any task runs
        return datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)


#: The hour a run writes when not given ``--date-hour``: the UTC hour the process started in.
DEFAULT_HOUR = _default_hour()


class PartitionBusyExit(luigi.interface.PidLockAlreadyTakenExit):
    """Raised while scheduling: luigi then exits with [retcode] already_running (10)."""


#: Exit code of a run stopped because its data root is unusable, when [retcode] sets none (luigi
#: would exit 0): the value luigi.cfg gives scheduling_error.
SCHEDULING_ERROR = 35


def stop_run(message: str) -> typing.NoReturn:
    """End the run at once with one line and [retcode] scheduling_error: the data root is
    unusable, so no task could do anything (luigi would log a traceback per task instead)."""
    print(f"ERROR: {message}", file=sys.stderr, flush=True)
    raise SystemExit(luigi.retcodes.retcode().scheduling_error or SCHEDULING_ERROR)


#: Tells this process's runs apart on one host (pids are reused, hosts share names in pods).
_RUN = uuid.uuid4().hex[:8]


def claim_owner() -> tuple[str, bool]:
    """Who claims an hour on an object store, and whether the claim ends with this process.

    With a central scheduler it is that luigid, so that its workers on every host share the
    claim (luigid gives each task to one of them); a luigid on this host's loopback address is
    told apart from other hosts' by this host's name. With --local-scheduler it is this run.
    """
    core = luigi.interface.core()
    if core.local_scheduler:
        return f"{socket.gethostname()} pid {os.getpid()} run {_RUN}", True
    url = core.scheduler_url or f"http://{core.scheduler_host}:{core.scheduler_port}/"
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.startswith("127.") or host == "::1":
        url = f"{url} on {socket.getfqdn()}"
    return f"luigid {url}", False


class Lazy:
    """A class attribute read from a heavy module (``"module:name"``) when a task reads it.

    On the class it is this placeholder, which luigi's scan for parameters skips, so defining
    the task classes imports neither pandas nor pyarrow.
    """

    def __init__(self, ref: str) -> None:
        self.module, self.name = ref.split(":")

    def __get__(self, task: object, owner: type | None = None) -> Any:
        if task is None:
            return self
        return getattr(importlib.import_module(self.module), self.name)


def return_freed_memory() -> None:
    """Hand the memory a task freed back to the system before the next task runs.

    Tasks run one after another in one process, each allocating through several allocators (the
    C library's, one heap per thread, Arrow's): memory a task freed stays with the allocator that
    had it, and the next task's allocations, made elsewhere, add to it. At 10M carts a whole hour
    peaked at 2.6 GB where its largest task alone takes 1.7 GB; handing it back: 1.8 GB. It costs
    nothing measurable: at 1M carts, clean + insights took 7.7 s of CPU with it against 8.5 s
    without (medians of 4 interleaved runs), peaking at about 600 MB against 630 MB.
    """
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to trim this way
        return
    libc.malloc_trim(0)


# At exit Python's last garbage collections walk every object the libraries made (pandas,
# Arrow, luigi, some 100k): 0.15 s of CPU on one core at the end of every run. Frozen,
# they are left alone; nothing is lost, since files are closed and logs flushed by their own
# code and handlers, not by the collector.
atexit.register(gc.freeze)


class PartitionTask(luigi.Task):
    """Base: one hourly partition, atomic outputs, a stats file, the partition lock."""

    date_hour: datetime = luigi.DateHourParameter(
        default=DEFAULT_HOUR,
        description="The UTC hour this snapshot belongs to (e.g. 2026-11-25T17); its folder name.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            config.paths().root()  # refused here, before luigi checks or schedules anything
            clock.now()
        except (config.ConfigError, clock.ClockError) as exc:
            stop_run(str(exc))

    @property
    def partition(self) -> Partition:
        return Partition(config.paths().root(), self.date_hour)

    def complete(self) -> bool:
        try:
            return self.is_complete()
        except fs.StoreError as exc:
            stop_run(str(exc))

    def is_complete(self) -> bool:
        """Whether every output is there (luigi's ``complete``; a store failure stops the run)."""
        return super().complete()

    def stats_path(self) -> fs.Location:
        """This task's facts for the manifest, which lists the task under its family in snake
        case (``CleanCarts`` -> ``clean_carts``); ``layout.STATS`` names the file."""
        return self.partition.stats(re.sub(r"(?<!^)(?=[A-Z])", "_", self.task_family).lower())

    def stats_target(self) -> luigi.Target:
        return target(self.stats_path())

    def produce(self) -> dict[str, Any]:
        """Do the work and write the data outputs; return facts for the manifest."""
        raise NotImplementedError

    def deps(self) -> list[luigi.Task]:
        """Claim the partition, then list the dependencies (luigi's scheduling hook).

        luigi asks a task for its dependencies only once it has found it incomplete and is
        scheduling it to run, before it tells the scheduler or runs anything: the moment to
        claim the hour. A run with no workers (``--workers 0``, or ``[core] workers = 0``)
        only schedules, for other workers to run, so it claims nothing: the task's ``run()``
        claims, wherever it runs.
        """
        self.check_settings()
        if luigi.interface.core().workers > 0:
            self.claim()
        return super().deps()

    def check_settings(self) -> None:
        """Stop the run (``config.EXIT_CONFIG``) if any setting or the hour is unusable."""
        try:
            config_check.check_settings(self.date_hour)
        except config.ConfigError as exc:
            to_console(log, logging.ERROR, str(exc))
            raise config.ConfigExit(str(exc)) from None

    def claim(self) -> None:
        """Hold the partition's lock for the rest of this process (forked workers share it).

        A second run of a partition being written stops here, schedules nothing and exits with
        [retcode] already_running, as luigi does for a duplicate command line or for a task
        that a central scheduler sees running elsewhere. The first claim also sweeps temporary
        files that a killed run left behind; later claims in the process do nothing.
        """
        os.umask(0o027)  # data may hold personal fields: not world-readable
        partition = self.partition
        if (
            isinstance(partition.root, Path)
            and (why := config_check.data_root_problem(partition.root)) is not None
        ):
            to_console(log, logging.ERROR, why)
            raise config.ConfigExit(why)
        try:
            if isinstance(partition.lock, fs.ObjectPath):
                fresh = self.claim_object(partition.lock)
            else:
                fresh = hold_partition_lock(partition.lock)
        except PartitionBusy as exc:
            log.error("%s", exc)
            raise PartitionBusyExit(str(exc)) from None
        except fs.StoreError as exc:
            stop_run(str(exc))
        except OSError as exc:  # looked usable, refuses to be written (/proc, a full disk)
            why = f"data root {partition.root} cannot be written: {exc.strerror or exc}"
            to_console(log, logging.ERROR, why)
            raise config.ConfigExit(why) from None
        start_run_log(run_log(partition.root))  # plain luigi: its run log, now it writes
        plain_metrics.claimed(partition.root, self.date_hour)  # ... and its metrics at the end
        if fresh and isinstance(partition.lock, fs.ObjectPath):
            from pipeline.storage import s3

            for path in s3.remove_orphaned_staging():
                log.info("removed %s, left by an interrupted run", path)
        elif fresh:
            stale = remove_stale_temporaries(partition.dir)
            for path in stale + remove_orphaned_links(partition.root):
                log.info("removed %s, left by an interrupted run", path)

    @staticmethod
    def claim_object(location: fs.ObjectPath) -> bool:
        """Claim an hour on an object store: a lease object (``storage.lease``)."""
        from pipeline.storage import lease

        owner, ends_with_process = claim_owner()
        seconds = config.storage().lease_seconds
        return lease.acquire(location, owner, seconds, release_at_exit=ends_with_process)

    def run(self) -> None:
        interrupts.check()  # a signal luigi swallowed (in an event handler) stops the run here
        self.claim()  # claimed while scheduling; not so when another process scheduled it
        started, t0 = clock.now(), time.perf_counter()
        interval = config.run().progress_seconds
        with task_context(self.stats_path().stem), progress.Ticker(self.task_family, interval) as t:
            self._ticker = t
            try:
                facts = self.produce()
            finally:
                return_freed_memory()
        self._ticker, self.facts = None, facts
        facts.update(
            task=self.task_id,
            run_id=lineage.run_id(),  # which run did it: its metrics count its own tasks only
            started=started.isoformat(timespec="milliseconds"),
            finished=clock.now().isoformat(timespec="milliseconds"),
            seconds=round(time.perf_counter() - t0, 3),
        )
        interrupts.check()
        write_json(self.stats_path(), facts)  # last: its presence marks the task complete

    _ticker: progress.Ticker | None = None
    facts: dict[str, Any] | None = None  # what run() produced, for the line saying it is done

    def report(
        self, message: str, percent: int | None = None, console: str | Callable[[], str] = ""
    ) -> None:
        """Show progress in the luigid visualiser, and in the console's progress lines (as
        ``console`` if given, else as ``message``; a function gives the line when it is due)."""
        self.set_status_message(message)  # type: ignore[misc]  # None until luigi's worker runs it
        if percent is not None:
            self.set_progress_percentage(percent)  # type: ignore[misc]  # as above
        if self._ticker is not None:
            self._ticker.update(console or message)

    def on_failure(self, exception: BaseException) -> str:
        """What luigi sends the scheduler and puts in its failure e-mail ([email] in luigi.cfg):
        the cause, what to do, where the run log is, then the traceback."""
        told = explain(exception, self.partition.dir)
        run_log = os.environ.get(RUN_LOG_ENV) or "none (logged to stderr)"
        return (
            f"{self.task_family} failed for {self.partition.name}: {told.cause}\n"
            + (f"What to do: {told.todo}\n" if told.todo else "")
            + f"Run log: {run_log}\n\n{traceback.format_exc()}"
        )

    def write_frame(
        self, frame: pd.DataFrame, path: fs.Location, money: tuple[str, ...] = ()
    ) -> int:
        from pipeline.storage import formats

        with atomic_path(path) as tmp:
            formats.write_csv(frame, tmp, money)
        return len(frame)


# -- what the console says about each task (luigi's events; the run log has luigi's own lines) --

_started_at: dict[str, float] = {}


@PartitionTask.event_handler(luigi.Event.START)
def _task_started(task: PartitionTask) -> None:
    _started_at[task.task_id] = time.monotonic()
    interrupts.running = task.task_family
    progress.started(task.task_family)


@PartitionTask.event_handler(luigi.Event.SUCCESS)
def _task_done(task: PartitionTask) -> None:
    interrupts.running, interrupts.finished = None, task.task_family
    seconds = time.monotonic() - _started_at.pop(task.task_id, time.monotonic())
    progress.finished(task.task_family, seconds, task.facts)


def _say_failed(task: PartitionTask, exc: BaseException, what: str) -> None:
    """One line of cause and one of what to do on the console; the run log, which has luigi's
    traceback with the cause just above, gets what to do and the transport's own words."""
    told = explain(exc, task.partition.dir)
    todo = f"\nwhat to do: {told.todo}" if told.todo else ""
    detail = getattr(exc, "detail", "")
    log.error(
        "%s %s (traceback above)%s%s",
        task.task_family,
        what,
        f"; what to do: {told.todo}" if told.todo else "",
        f"; the transport said: {detail}" if detail else "",
        extra={"console": True, "console_text": f"{task.task_family} {what}: {told.cause}{todo}"},
    )


@PartitionTask.event_handler(luigi.Event.FAILURE)
def _task_failed(task: PartitionTask, exc: BaseException) -> None:
    interrupts.running = None
    _started_at.pop(task.task_id, None)
    _say_failed(task, exc, "failed")


@PartitionTask.event_handler(luigi.Event.BROKEN_TASK)
def _task_broken(task: PartitionTask, exc: BaseException) -> None:
    _say_failed(task, exc, "could not be scheduled")
