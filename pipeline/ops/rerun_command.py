"""``python -m pipeline rerun --date-hour H``: rebuild an hour beside the old one, swap it in.

The run goes into a staging data root (``ops.rerun.staging_root``) while this process holds the
hour's lock, or on an object store its claim; only a complete rebuild is swapped in
(``ops.rerun.swap_in``), ``latest`` advanced and the report of the hour and of the next one
brought up to date. What the console says at each way it can end is here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pipeline import config, interrupts, runner
from pipeline.console import CliError, say
from pipeline.ops import rerun
from pipeline.runlog import new_log, note_run, run_logged
from pipeline.runner import (
    UMASK,
    as_luigi_reads,
    outcome,
    prepare,
    unusable_store,
)
from pipeline.storage.fs import Location
from pipeline.suggested import command, resume_command

#: Exit code of a rerun whose rebuild was complete but whose swap an object store cut short.
SWAP_FAILED = 1


#: Who holds an hour that ``rerun`` rebuilds, on an object store.
RERUN_OWNER = "{host} pid {pid} rerun"


def has_run(folder: Location) -> bool:
    """Whether anything was ever written for this hour (a folder, or objects under a prefix)."""
    if isinstance(folder, Path):
        return folder.is_dir()
    from pipeline.storage import s3

    return s3.any_under(folder)


def hold_hour(lock: Location) -> None:
    """Hold the hour against any run of it: its ``flock``, or on an object store its claim
    object in this process's name. Raises PartitionBusy naming the holder."""
    from pipeline.storage.locks import hold_partition_lock

    if isinstance(lock, Path):
        hold_partition_lock(lock)  # released by the kernel when this process exits
        return
    import socket

    from pipeline.storage import lease

    owner = RERUN_OWNER.format(host=socket.gethostname(), pid=os.getpid())
    lease.acquire(lock, owner, config.storage().lease_seconds, release_at_exit=True)


def release_hour(lock: Location) -> None:
    """Give the hour's claim up once it is swapped (a ``flock`` goes with the process)."""
    if isinstance(lock, Path):
        return
    from pipeline.storage import lease

    lease.release(lock)


def _after_rebuild(root: Location, name: str) -> None:
    """A rebuilt hour's report was made in the staging root, with no earlier hour beside it:
    bring it, and the next hour's (compared with the old figures), up to date; then the summary
    the staging run left out."""
    from pipeline.report import hour, summary

    for line in hour.refresh_around(root, name, rebuilt=True):
        say(line)
    summary.print_summary(root, name)


def unswapped(name: str, staging: Location, resume: str) -> str:
    """What the console says of a complete rebuild that was not swapped in."""
    return (
        f"{name} is unchanged: its swap did not begin (the rebuild is left in {staging}; a "
        f"rerun starts afresh); to rebuild it: {resume}"
    )


def rerun_pipeline(extra: Sequence[str], scheduler_url: str | None = None) -> int:
    """Rebuild the hour of ``--date-hour`` in a staging root and swap it in when complete."""
    from luigi.retcodes import retcode

    from pipeline.report.hour import report_lock
    from pipeline.storage import fs
    from pipeline.storage.latest import advance_latest, latest_partition
    from pipeline.storage.layout import Partition
    from pipeline.storage.locks import PartitionBusy
    from pipeline.tasks.publish import last_partition

    os.umask(UMASK)
    prepared = prepare(extra, scheduler_url)
    if isinstance(prepared, int):
        return prepared
    luigi_args, scheduler, hour, root = prepared
    old = Partition(root, hour)
    try:
        with as_luigi_reads(luigi_args):
            if not has_run(old.dir):
                raise CliError(
                    f"{old.name} has never been run under {root}: nothing to rebuild; run it "
                    f"with {command('--date-hour', old.name, in_checkout=True)}"
                )
            hold_hour(old.lock)  # until the swap is done (at the latest, until this exits)
            if fs.exists(old.swapping):
                say(f"{old.name} was left half swapped by an earlier rerun: this one redoes it")
            for path in rerun.remove_stale_stagings(root, old.name):
                say(f"removed {path}, left by an earlier rerun")
    except PartitionBusy as exc:
        say(f"error: {exc}")
        return retcode().already_running
    except fs.StoreError as exc:
        return unusable_store(exc)
    staging = rerun.staging_root(root, old.name, os.getpid())
    log = new_log(root)
    note_run(root, hour, log)
    resume = resume_command(["rerun", *extra], old.name, scheduler_url)
    say(f"rebuilding {old.name} in {staging}; {old.dir} stays as it is until then")
    before = os.environ.get("PIPELINE_DATA_DIR")
    os.environ["PIPELINE_DATA_DIR"] = str(staging)
    began = runner.run_began()
    try:
        rc = run_logged(luigi_args, log, scheduler, runner.run_luigi)
    except interrupts.Interrupted as exc:
        note_run(root, hour, log, exc.exit_code)
        runner.write_metrics(luigi_args, root, hour, exc.exit_code, began, log, True, staging)
        say(
            f"interrupted (exit {exc.exit_code}): {exc.name} stopped the rebuild of {old.name} "
            f"{exc.during}; {old.name} is unchanged (the rebuild so far stays in {staging}). "
            f"To rebuild it: {resume}"
        )
        return exc.exit_code
    finally:
        if before is None:
            os.environ.pop("PIPELINE_DATA_DIR", None)
        else:
            os.environ["PIPELINE_DATA_DIR"] = before
    if rc != 0 or not fs.exists(Partition(staging, hour).manifest):
        note_run(root, hour, log, rc or 1)
        runner.write_metrics(luigi_args, root, hour, rc or 1, began, log, built_in=staging)
        say(outcome(rc or 1, old.name, root, False, log))
        left = (
            "rebuild" if rc in (retcode().not_run, retcode().already_running) else "failed rebuild"
        )
        say(f"{old.name} is unchanged; the {left} stays in {staging} for a look")
        return rc or 1
    locked = swapped = False
    try:
        # One step as far as signals go: a signal meanwhile is acted on once all of it is done.
        # The hour's report lock is held from before the swap until the rebuilt report is
        # brought up to date: a run re-rendering the old report meanwhile (another hour's run
        # refreshing it) would write figures of the old data over the rebuilt ones.
        with as_luigi_reads(luigi_args), interrupts.deferred(), report_lock(old):
            locked = True
            atomic = rerun.swap_in(root, staging, old.name)
            advance_latest(root, old.name, last_partition())
            release_hour(old.lock)
            _after_rebuild(root, old.name)
            swapped = True
    except PartitionBusy as exc:
        if locked:
            raise
        note_run(root, hour, log, retcode().already_running)
        runner.write_metrics(luigi_args, root, hour, retcode().already_running, began, log)
        say(f"error: {exc}")
        say(unswapped(old.name, staging, resume))
        return retcode().already_running
    except fs.StoreError as exc:
        if not locked:  # the store failed as the report's lease was taken: nothing swapped
            code = retcode().scheduling_error
            note_run(root, hour, log, code)
            runner.write_metrics(luigi_args, root, hour, code, began, log)
            say(f"error: {exc}")
            say(unswapped(old.name, staging, resume))
            return code
        # the store went away mid-swap: the hour is marked unfinished
        note_run(root, hour, log, SWAP_FAILED)
        runner.write_metrics(luigi_args, root, hour, SWAP_FAILED, began, log)
        say(f"error: {exc}")
        say(
            f"failed (exit {SWAP_FAILED}): the swap of {old.name} was cut short, so it does not "
            f"look complete and a plain run of it is refused; to finish it: {resume} (the "
            f"rebuild in {staging} is then removed and made anew)"
        )
        return SWAP_FAILED
    except interrupts.Interrupted as exc:
        note_run(root, hour, log, exc.exit_code)
        runner.write_metrics(luigi_args, root, hour, exc.exit_code, began, log, interrupted=True,
                             published=swapped)  # fmt: skip
        if not locked:  # it stopped the wait for the report lock
            say(
                f"interrupted (exit {exc.exit_code}): {exc.name} stopped the rerun of "
                f"{old.name} before its swap began; {unswapped(old.name, staging, resume)}"
            )
        elif not swapped:  # an error (a StoreError, superseded) cut the swap short meanwhile
            say(
                f"interrupted (exit {exc.exit_code}): {exc.name} stopped the rerun of "
                f"{old.name} after an error cut its swap short ({exc.__context__}); a plain "
                f"run of it is refused; to finish it: {resume}"
            )
        else:
            say(
                f"interrupted (exit {exc.exit_code}): {exc.name} came during the swap of "
                f"{old.name} and was held until it was done: {old.name} is rebuilt and swapped "
                f"in, latest -> {latest_partition(root)}; nothing to resume"
            )
        return exc.exit_code
    note_run(root, hour, log, 0)
    runner.write_metrics(luigi_args, root, hour, 0, began, log)
    how = ""
    if not atomic:
        how = (
            " (object by object, its manifest last)"
            if isinstance(root, fs.ObjectPath)
            else " (in two renames: this filesystem cannot swap in one step)"
        )
    say(
        f"done (exit 0): {old.name} rebuilt and swapped in{how}; latest -> {latest_partition(root)}"
    )
    return 0
