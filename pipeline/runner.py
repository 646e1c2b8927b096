"""One run of ``Insights`` (or another task) for ``python -m pipeline``, from check to last line.

``run_pipeline`` checks every setting, the hour and the data root first (``check_before_running``:
exit 78 and one message naming each bad one, before anything is written), chooses the
scheduler, then runs luigi's own ``run_with_retcodes`` in this process (so the exit code is
luigi's ``[retcode]`` mapping), logged (``runlog``). The console's last line says how the run
ended (``outcome``, ``stopped``). ``rerun`` and ``backfill`` (``pipeline.ops``) and the demo use
the same steps. luigi's runner is imported by the step that needs it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from pipeline import clock, config, config_check, interrupts
from pipeline.config import paths
from pipeline.console import CliError, say
from pipeline.runlog import new_log, note_run, run_logged
from pipeline.storage.fs import Location
from pipeline.storage.locks import remove_unused
from pipeline.suggested import resume_command

UMASK = 0o027  # data and logs may hold personal fields: never world-readable


def flag_given(args: Sequence[str], *flags: str) -> bool:
    return any(a == f or a.startswith(f + "=") for a in args for f in flags)


def _value(args: Sequence[str], flag: str) -> str | None:
    """The last value of ``flag`` in luigi's arguments (``--flag V`` or ``--flag=V``), or None."""
    found = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith(flag + "="):
            found = arg.split("=", 1)[1]
    return found


def configured_scheduler_url() -> str:
    """``[core] default_scheduler_url`` (or host and port) from luigi's configuration, or ''."""
    import luigi.configuration

    config = luigi.configuration.get_config()
    url = config.get("core", "default_scheduler_url", "")
    host = config.get("core", "default_scheduler_host", "")
    if not url and host:
        url = f"http://{host}:{config.get('core', 'default_scheduler_port', '8082')}"
    return url


def choose_scheduler(
    luigi_args: Sequence[str], scheduler_url: str | None, env_url: str, config_url: str
) -> tuple[list[str], str]:
    """Arguments to add for luigi and how the scheduler was chosen, in that order of precedence:
    the command line, ``LUIGI_SCHEDULER_URL``, luigi's configuration, else a local scheduler
    (luigi itself would try a central one on localhost:8082)."""
    if "--local-scheduler" in luigi_args:
        return [], "local (--local-scheduler given)"
    if scheduler_url:
        return ["--scheduler-url", scheduler_url], "central (from the command line)"
    if flag_given(luigi_args, "--scheduler-url", "--scheduler-host"):
        return [], "central (from the command line)"
    if env_url:
        return ["--scheduler-url", env_url], f"central {env_url} (LUIGI_SCHEDULER_URL)"
    if config_url:
        return [], f"central {config_url} (luigi config)"
    return ["--local-scheduler"], "local (no central scheduler configured)"


def data_root(luigi_args: Sequence[str]) -> Location:
    """Where the run writes: as ``config.paths`` resolves it, ``--paths-data-dir`` included."""
    data_dir = _value(luigi_args, "--paths-data-dir")
    return (paths() if data_dir is None else paths(data_dir=data_dir)).root()


def exit_code(exc: SystemExit) -> int:
    """The status ``sys.exit(x)`` gives the shell: None is 0, a message is printed and is 1."""
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    print(exc.code, file=sys.stderr)
    return 1


def run_luigi(luigi_args: Sequence[str]) -> int:
    """luigi's own command line in this process; its exit code from ``[retcode]``."""
    from luigi.retcodes import run_with_retcodes

    try:
        run_with_retcodes(list(luigi_args))
    except SystemExit as exc:
        return exit_code(exc)
    return 0  # run_with_retcodes always exits; never reached with luigi 3


def requested_hour(luigi_args: Sequence[str]) -> datetime:
    """The hour the run writes: ``--date-hour``, else the current UTC hour (as the tasks take
    it)."""
    import luigi

    from pipeline.tasks.base import DEFAULT_HOUR

    text = _value(luigi_args, "--date-hour")
    if text is None:
        return DEFAULT_HOUR
    try:
        return luigi.DateHourParameter().parse(text)
    except ValueError:
        raise CliError(f"--date-hour {text!r} is not a UTC hour like 2026-11-25T17") from None


def check_before_running(luigi_args: Sequence[str], hour: datetime) -> str | None:
    """Every setting, the hour and the data root, as luigi would read them for ``luigi_args``:
    the message naming each unusable one, or None. Reads only."""
    from luigi.cmdline_parser import CmdlineParser

    if flag_given(luigi_args, "--help", "--help-all"):
        return None  # luigi prints its help and runs nothing
    usage = io.StringIO()
    with contextlib.ExitStack() as stack:
        try:
            with contextlib.redirect_stderr(usage):  # luigi's usage lists every option
                stack.enter_context(CmdlineParser.global_instance(list(luigi_args)))
        except SystemExit:
            error = (usage.getvalue().strip().splitlines() or ["bad arguments"])[-1]
            raise CliError(
                f"{error.split('error: ', 1)[-1]} (`luigi --module pipeline Insights "
                "--help-all` lists every option)"
            ) from None
        try:
            config_check.check_settings(hour, data_root=True)
        except config.ConfigError as exc:
            return str(exc)
    return None


def complete(root: Location, hour: datetime) -> bool:
    """Is the partition of ``hour`` complete and published (``Insights`` would do nothing)?
    Raises StoreError when an object store cannot answer."""
    from pipeline.storage import fs
    from pipeline.storage.latest import latest_reached
    from pipeline.storage.layout import Partition

    partition = Partition(root, hour)
    return fs.exists(partition.manifest) and latest_reached(root, partition.name)


@contextlib.contextmanager
def as_luigi_reads(luigi_args: Sequence[str]) -> Iterator[None]:
    """Settings as the run will read them, command-line options included (``--storage-retries``
    for this process's object-store client, ``--storage-lease-seconds`` for a claim)."""
    from luigi.cmdline_parser import CmdlineParser

    with CmdlineParser.global_instance(list(luigi_args)):
        yield


def unusable_store(exc: Exception) -> int:
    """The store did not answer before the run began: one message, luigi's exit code for a
    data root no task can use ([retcode] scheduling_error), nothing written."""
    from luigi.retcodes import retcode

    code = retcode().scheduling_error
    say(f"error: {exc}")
    say(f"failed (exit {code}): the data root cannot be used now; nothing was written")
    return code


def outcome(
    rc: int, hour: str, root: Location, was_complete: bool, log: Path, shared: bool = False
) -> str:
    """The console's last line: how the run ended and where to look."""
    from luigi.retcodes import retcode

    if rc == 0:
        from pipeline.storage.latest import latest_partition

        latest = f"latest -> {latest_partition(root)}"
        if was_complete:
            return f"nothing to do (exit 0): {hour} was already complete; {latest}"
        how = ", with other workers of the scheduler" if shared else ""
        return f"done (exit 0): {hour} is complete{how}; {latest}"
    codes = retcode()
    status, what = {
        config.EXIT_CONFIG: ("refused", "unusable settings, named above; nothing was written"),
        codes.already_running: ("not run", "another run holds this hour or this command line"),
        codes.missing_data: ("not run", "input data is missing"),
        codes.not_run: (
            "not run",
            "the scheduler did not let this run work (a luigid holds a "
            "task it saw done for [scheduler] stable_done_cooldown_secs, 10 s: run "
            "it again after that)",
        ),
        codes.task_failed: ("failed", "the cause and what to do are above"),
        codes.scheduling_error: ("failed", "a task could not be scheduled (above)"),
        codes.unhandled_exception: ("failed", "an unexpected error in luigi"),
    }.get(rc, ("failed", "see the run log"))
    where = "Details and tracebacks" if status == "failed" else "Run log"
    return f"{status} (exit {rc}): {what}. {where}: {log}"


def prepare(
    extra: Sequence[str], scheduler_url: str | None, task: Sequence[str] = ("Insights",)
) -> tuple[list[str], str, datetime, Location] | int:
    """luigi's arguments, the scheduler, the hour and the data root of a run of ``task`` (its
    name and own options); or, when a setting is unusable, ``EXIT_CONFIG`` once the console has
    been told why (nothing written)."""
    added, scheduler = choose_scheduler(
        extra, scheduler_url, os.environ.get("LUIGI_SCHEDULER_URL", ""), configured_scheduler_url()
    )
    luigi_args = ["--module", "pipeline", *task, *added, *extra]
    hour = requested_hour(extra)
    if (problems := check_before_running(luigi_args, hour)) is not None:
        say(f"error: {problems}")
        say(f"refused (exit {config.EXIT_CONFIG}): fix the settings above (docs/settings.md)")
        return config.EXIT_CONFIG
    return luigi_args, scheduler, hour, data_root(extra)


def stopped(exc: interrupts.Interrupted, hour: str, root: Location, resume: str) -> str:
    """The console's last line when a signal stopped the run: what, whether the hour was
    published, and the command that resumes it."""
    head = f"interrupted (exit {exc.exit_code}): {exc.name} stopped the run of {hour} {exc.during}"
    if complete(root, datetime.strptime(hour, "%Y-%m-%dT%H")):
        from pipeline.storage.latest import latest_partition

        return f"{head}, once {hour} was published (latest -> {latest_partition(root)})"
    return f"{head}; nothing was published. To resume (finished tasks are kept): {resume}"


def run_pipeline(extra: Sequence[str], scheduler_url: str | None = None) -> int:
    """``Insights`` with ``extra`` luigi arguments, on the chosen scheduler, logged."""
    os.umask(UMASK)
    prepared = prepare(extra, scheduler_url)
    if isinstance(prepared, int):
        return prepared
    luigi_args, scheduler, hour, root = prepared
    from pipeline.storage.fs import StoreError

    try:
        with as_luigi_reads(luigi_args):
            if (refused := half_swapped(root, hour, extra, scheduler_url)) is not None:
                return refused
            was_complete = complete(root, hour)
    except StoreError as exc:
        return unusable_store(exc)
    log = new_log(root)
    note_run(root, hour, log)
    began = run_began()
    try:
        rc = run_logged(luigi_args, log, scheduler, run_luigi)
    except interrupts.Interrupted as exc:
        note_run(root, hour, log, exc.exit_code)
        name = f"{hour:%Y-%m-%dT%H}"
        write_metrics(luigi_args, root, hour, exc.exit_code, began, log, interrupted=True)
        say(stopped(exc, name, root, resume_command(extra, name, scheduler_url)))
        return exc.exit_code
    remove_unused()  # a run that wrote nothing leaves no hour folder holding only its lock
    shared = done_with_others(rc, scheduler, root, hour, luigi_args)
    if shared:
        rc = 0
    note_run(root, hour, log, rc)
    write_metrics(luigi_args, root, hour, rc, began, log)
    say(outcome(rc, f"{hour:%Y-%m-%dT%H}", root, was_complete, log, shared))
    return rc


def run_began() -> tuple[datetime, float]:
    """When a run begins (calendar, monotonic), for its metrics; its API counts start at 0."""
    from pipeline.api import tally

    tally.reset()
    return clock.now(), time.monotonic()


def write_metrics(
    luigi_args: Sequence[str],
    root: Location,
    hour: datetime | None,
    rc: int,
    began: tuple[datetime, float],
    log: Path,
    interrupted: bool = False,
    built_in: Location | None = None,
    published: bool = False,
) -> None:
    """The run's Prometheus metrics (``pipeline.metrics``); a problem is a warning line only.
    ``log`` is the run's log, whose name its tasks' stats carry (the run is over: the
    environment no longer names it). ``published``: the hour was published although the exit
    code is not 0 (a rerun's swap that held a signal until it was done): a success, so no
    failed-run alert fires for it."""
    from pipeline import lineage, metrics

    result = "success" if rc == 0 or published else "interrupted" if interrupted else "failed"
    run = metrics.Run(root, hour, rc, result, began[0], clock.now(),
                      time.monotonic() - began[1], lineage.run_id(log), built_in)  # fmt: skip
    with as_luigi_reads(luigi_args):
        problems = metrics.write_run(run)
    for problem in problems:
        say(f"warning: {problem}")


def half_swapped(
    root: Location, hour: datetime, extra: Sequence[str], scheduler_url: str | None
) -> int | None:
    """Refuse a plain run of an hour a rerun was swapping in (``.swapping``): it would publish
    old files with the rebuild's stats. One line naming the rerun that finishes it; luigi's
    exit code for a partition held by another run ([retcode] already_running): the hour
    belongs to that rerun until it is finished. None when the hour is not marked."""
    from luigi.retcodes import retcode

    from pipeline.storage import fs
    from pipeline.storage.layout import Partition

    partition = Partition(root, hour)
    if not fs.exists(partition.swapping):
        return None
    code = retcode().already_running
    finish = resume_command(["rerun", *extra], partition.name, scheduler_url)
    say(
        f"refused (exit {code}): a rerun's swap of {partition.name} was cut short, so it is part "
        f"old, part rebuilt ({partition.swapping} is there); to finish it: {finish}"
    )
    return code


def done_with_others(
    rc: int, scheduler: str, root: Location, hour: datetime, luigi_args: Sequence[str]
) -> bool:
    """Did workers of one central scheduler finish the hour together? luigi then ends each
    worker that left some of the hour's tasks to the others with [retcode] already_running or
    not_run (they were "run by another worker" or "not granted run permission"), although
    the hour the command was asked for is complete and published: for it, that is success."""
    from luigi.retcodes import retcode

    from pipeline.storage.fs import StoreError

    codes = retcode()
    if rc not in (codes.already_running, codes.not_run) or not scheduler.startswith("central"):
        return False
    try:
        with as_luigi_reads(luigi_args):
            return complete(root, hour)
    except StoreError:
        return False
