"""``python -m pipeline [SUBCOMMAND]``: the one entry point for people, systemd and CI.

``run_pipeline.sh`` only bootstraps ``.venv`` and hands over to this. ``run`` (the default)
checks every setting, the hour and the data root first (``config.check_settings``: exit 78 and
one message naming each bad one, before anything is written), chooses the scheduler, then runs
``Insights`` through luigi's own ``run_with_retcodes`` in this process (so the exit code is
luigi's ``[retcode]`` mapping). Everything the run logs goes in full to a per-run log under the
data root; the console gets what an operator reads live (``pipeline.logs``) and a last line
saying how the run ended. Importing this module stays light: luigi's runner, the systemd
renderer, retention and the dev tools are imported by the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from pipeline import clock, config, interrupts, logs
from pipeline.config import CHECKOUT, paths
from pipeline.storage.fs import Location
from pipeline.storage.layout import FAILED_RUN, logs_dir
from pipeline.storage.locks import remove_unused
from pipeline.tasks.base import RUN_LOG_ENV

PROG = "python -m pipeline"
UMASK = 0o027  # data and logs may hold personal fields: never world-readable
DEMO_DIR = CHECKOUT / "data-demo"
DEMO_API_TIMEOUT = 120.0  # seconds; it starts in well under one, unless the machine is swamped

ENVIRONMENT = """\
environment:
  PIPELINE_API_URL      API root (default: [api] base_url)
  PIPELINE_DATA_DIR     data root (default: [paths] data_dir, from the checkout); relative
                        paths here and in DIR/DEST are from the working directory
  LUIGI_SCHEDULER_URL   central scheduler to use when none is given on the command line
  LUIGI_CONFIG_PATH     luigi configuration to read instead of the checkout's luigi.cfg
"""

RUN_HELP = """\
Run `luigi --module pipeline Insights` for one UTC hour, after checking every setting (exit 78
naming each unusable one). The central scheduler is used when one is configured
(--scheduler-url, LUIGI_SCHEDULER_URL, or [core] default_scheduler_url in luigi.cfg), else
--local-scheduler. The console shows each task, progress and the cause of a failure; everything,
tracebacks included, goes to $PIPELINE_DATA_DIR/logs/run-<UTC time>-<pid>.log. The exit code is
luigi's ([retcode]). Any other option goes to luigi, e.g. --api-page-size 100, --no-lock
(`luigi --module pipeline Insights --help-all` lists them).
"""


RERUN_HELP = """\
Rebuild one UTC hour from scratch with the options given, beside the old partition: it runs
into $PIPELINE_DATA_DIR/.<hour>.rerun-<pid>/ while holding the hour's lock (a run of that hour
meanwhile is refused, or finds the old partition complete), and only a complete rebuild
replaces the old partition, in one step (on an s3:// root object by object, the manifest
deleted first and copied last); `latest` is moved if the hour is newer. A failed rebuild leaves
the old partition as it was. Options and exit codes as for `run`.
"""


BACKFILL_HELP = """\
Run the hours of the last --days days (ending with the current UTC hour) that are not complete,
and only those: InsightsRange (luigi's RangeHourly of Insights) finds them in bulk from one
listing of the data root (local or s3://). Each is an ordinary run of its hour; the API's rate
limit ([api] rate_limit_requests) is shared by all of them. --days may not reach past
[housekeeping] retention_hours. Any other option goes to luigi; exit codes as for `run`.
"""


class CliError(Exception):
    """An expected failure of the command line itself: one message, exit code 2."""


def say(message: str) -> None:
    print(f"pipeline: {message}", file=sys.stderr, flush=True)


# -- run ----------------------------------------------------------------------------------------


def _given(args: Sequence[str], *flags: str) -> bool:
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
    if _given(luigi_args, "--scheduler-url", "--scheduler-host"):
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


def run_log(root: Location) -> Path:
    """The run's log file: beside the partitions, or with an object-store root on this host, in
    ``$PIPELINE_LOG_DIR`` (default: ``logs/`` in the checkout): ``layout.logs_dir``."""
    return log_path(root)


def log_path(root: Location, now: datetime | None = None, pid: int | None = None) -> Path:
    stamp = (clock.now() if now is None else now).strftime("%Y%m%dT%H%M%SZ")
    return logs_dir(root) / f"run-{stamp}-{os.getpid() if pid is None else pid}.log"


#: Longest part of a line held back waiting for its end (a line longer goes out in pieces).
LONGEST_LINE = 1 << 16


def _pump(read_end: int, log: BinaryIO, lock: threading.Lock, console: int | None) -> None:
    """Copy a pipe into ``log`` and, if given, onto the ``console`` file descriptor, in whole
    lines: a line's end may arrive in a later read than its start (``print(text)`` writes
    ``text``, then the newline), and another writer (the other pipe, ``logs.ConsoleHandler``)
    must not get in between. A last line without its end goes out when the pipe closes."""
    pending = b""
    while chunk := os.read(read_end, 65536):
        pending += chunk
        cut = pending.rfind(b"\n") + 1
        if not cut and len(pending) < LONGEST_LINE:
            continue
        whole, pending = (pending[:cut], pending[cut:]) if cut else (pending, b"")
        console = _copy(whole, log, lock, console)
    if pending:
        _copy(pending, log, lock, console)


def _copy(lines: bytes, log: BinaryIO, lock: threading.Lock, console: int | None) -> int | None:
    """Write ``lines`` to the log and the console; the console, or None once it went away."""
    with lock:
        log.write(lines)
        log.flush()
    if console is not None:
        try:
            with logs.CONSOLE_LOCK:
                view = memoryview(lines)
                while view:
                    view = view[os.write(console, view) :]
        except OSError:  # the console went away (a closed pipe): keep logging
            return None
    return console


@contextlib.contextmanager
def tee_output(log: BinaryIO) -> Iterator[int]:
    """Send stdout into ``log`` and onto the console, stderr into ``log`` only; yield a file
    descriptor of the console's stderr (for ``logs.use_console``).

    stderr carries every log record in full, luigi's tracebacks included: the run log's. What
    the console shows of them comes through ``logs.ConsoleHandler``. Done on file descriptors
    1 and 2, not ``sys.stdout``, so luigi's forked workers (``--workers N``) and anything else
    writing there are caught too (``sys.stdout`` is line-buffered meanwhile, as on a terminal).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    line_buffering = getattr(sys.stdout, "line_buffering", None)
    if line_buffering is False:
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    console, saved_err = os.dup(1), os.dup(2)
    lock = threading.Lock()
    pumps = []
    for fd, to_console in ((1, console), (2, None)):
        read_end, write_end = os.pipe()
        os.dup2(write_end, fd)
        os.close(write_end)
        thread = threading.Thread(
            target=_pump, args=(read_end, log, lock, to_console), name=f"tee-{fd}", daemon=True
        )
        thread.start()
        pumps.append((thread, read_end))
    try:
        yield saved_err
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(console, 1)  # closes the pipes' last write ends: the pumps see the end
        os.dup2(saved_err, 2)
        for thread, read_end in pumps:
            thread.join(timeout=10)  # a process the run left behind may still hold a pipe
            if not thread.is_alive():
                os.close(read_end)
        for fd in (console, saved_err):
            os.close(fd)
        if line_buffering is False:
            sys.stdout.reconfigure(line_buffering=False)  # type: ignore[union-attr]


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


def run_logged(
    luigi_args: Sequence[str],
    log: Path,
    scheduler: str,
    runner: Callable[[Sequence[str]], int] = run_luigi,
) -> int:
    """Run ``runner(luigi_args)`` with its output in ``log`` and the console's share of it on
    the console; its exit code.

    The log starts with the command, the working directory and the scheduler, and ends with
    ``# exit code: N``, so a log found later says what ran and how it ended. The tasks find the
    log's path in ``PIPELINE_RUN_LOG`` (their failure e-mails name it).
    """
    say(f"scheduler: {scheduler}")
    say(f"log file: {log}")
    before = os.environ.get(RUN_LOG_ENV)
    os.environ[RUN_LOG_ENV] = str(log)
    with log.open("wb") as fh:
        header = (
            f"# {shlex.join(['luigi', *luigi_args])}\n# cwd: {os.getcwd()}\n"
            f"# scheduler: {scheduler}\n"
        )
        fh.write(header.encode())
        fh.flush()
        try:
            with tee_output(fh) as console, logs.use_console(console):
                rc = runner(luigi_args)
                interrupts.check()  # a signal luigi swallowed still ends the run as stopped
        except interrupts.Interrupted as exc:  # the log says where the run stopped
            fh.write(f"# interrupted by {exc}\n# exit code: {exc.exit_code}\n".encode())
            raise
        except BaseException as exc:  # the log still says how the run ended
            fh.write(f"# interrupted: {type(exc).__name__}\n".encode())
            raise
        finally:
            if before is None:
                os.environ.pop(RUN_LOG_ENV, None)
            else:
                os.environ[RUN_LOG_ENV] = before
        fh.write(f"# exit code: {rc}\n".encode())
    return rc


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

    if _given(luigi_args, "--help", "--help-all"):
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
            config.check_settings(hour, data_root=True)
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
        codes.not_run: ("not run", "the scheduler did not let this run work"),
        codes.task_failed: ("failed", "the cause and what to do are above"),
        codes.scheduling_error: ("failed", "a task could not be scheduled (above)"),
        codes.unhandled_exception: ("failed", "an unexpected error in luigi"),
    }.get(rc, ("failed", "see the run log"))
    where = "Details and tracebacks" if status == "failed" else "Run log"
    return f"{status} (exit {rc}): {what}. {where}: {log}"


def prepare(
    extra: Sequence[str], scheduler_url: str | None, task: Sequence[str] = ("Insights",)
) -> tuple[list[str], str, datetime, Path] | int:
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
        say(f"refused (exit {config.EXIT_CONFIG}): fix the settings above (README: settings table)")
        return config.EXIT_CONFIG
    return luigi_args, scheduler, hour, data_root(extra)


def new_log(root: Location) -> Path:
    log = run_log(root)
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()
    except OSError as exc:
        raise CliError(f"cannot write run logs in {log.parent}: {exc}") from None
    return log.resolve()


#: ``layout.FAILED_RUN``, under ``logs/``: for the systemd failure unit (``units --on-failure``)
#: and ``status``. Removed when a run succeeds.


def note_run(root: Location, hour: datetime, log: Path, rc: int | None = None) -> None:
    """Say which run is under way (``rc`` None) or failed; forget it when it succeeded.

    Kept with the run logs, on this host whatever the data root (``layout.logs_dir``): the
    failure unit that reads it runs here."""
    path = logs_dir(root) / FAILED_RUN
    if rc == 0:
        path.unlink(missing_ok=True)
        return
    text = (
        f"PIPELINE_HOUR={hour:%Y-%m-%dT%H}\nPIPELINE_EXIT_CODE={'' if rc is None else rc}\n"
        f"PIPELINE_RUN_LOG={log}\n"
    )
    tmp = path.with_name(f".{FAILED_RUN}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


#: The environment a resumed run needs as it was: the data root and the API.
RESUME_ENV = ("PIPELINE_DATA_DIR", "PIPELINE_API_URL")


def resume_command(extra: Sequence[str], hour: str, scheduler_url: str | None = None) -> str:
    """The command that runs ``hour`` again as this run was started: it keeps the tasks that
    finished. The hour is named, since the current one may have changed by then. The demo
    says how to run it again (``failures.RERUN_ENV``)."""
    from pipeline.failures import RERUN_ENV

    if again := os.environ.get(RERUN_ENV):
        return again
    words, given = [], iter(extra)
    for arg in given:
        if arg == "--date-hour":
            next(given, None)
        elif not arg.startswith("--date-hour="):
            words.append(arg)
    if scheduler_url:
        words += ["--scheduler-url", scheduler_url]
    env = [f"{name}={shlex.quote(os.environ[name])}" for name in RESUME_ENV if os.environ.get(name)]
    return " ".join([*env, script(), shlex.join([*words, "--date-hour", hour])])


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
        write_metrics(luigi_args, root, hour, exc.exit_code, began, interrupted=True)
        say(stopped(exc, name, root, resume_command(extra, name, scheduler_url)))
        return exc.exit_code
    remove_unused()  # a run that wrote nothing leaves no hour folder holding only its lock
    shared = done_with_others(rc, scheduler, root, hour, luigi_args)
    if shared:
        rc = 0
    note_run(root, hour, log, rc)
    write_metrics(luigi_args, root, hour, rc, began)
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
    interrupted: bool = False,
    built_in: Location | None = None,
) -> None:
    """The run's Prometheus metrics (``pipeline.metrics``); a problem is a warning line only."""
    from pipeline import metrics

    result = "interrupted" if interrupted else "success" if rc == 0 else "failed"
    run = metrics.Run(root, hour, rc, result, began[0], clock.now(),
                      time.monotonic() - began[1], built_in)  # fmt: skip
    try:
        with as_luigi_reads(luigi_args):
            cfg = config.metrics()
            problems = metrics.record(run, str(cfg.directory), str(cfg.pushgateway_url))
    except Exception as exc:  # the data run's outcome stands
        problems = [f"metrics not written: {type(exc).__name__}: {exc}"]
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


def rerun_pipeline(extra: Sequence[str], scheduler_url: str | None = None) -> int:
    """Rebuild the hour of ``--date-hour`` in a staging root and swap it in when complete."""
    from luigi.retcodes import retcode

    from pipeline.ops import rerun
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
                    f"with ./run_pipeline.sh --date-hour {old.name}"
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
    began = run_began()
    try:
        rc = run_logged(luigi_args, log, scheduler, run_luigi)
    except interrupts.Interrupted as exc:
        note_run(root, hour, log, exc.exit_code)
        write_metrics(luigi_args, root, hour, exc.exit_code, began, True, staging)
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
        write_metrics(luigi_args, root, hour, rc or 1, began, built_in=staging)
        say(outcome(rc or 1, old.name, root, False, log))
        say(f"{old.name} is unchanged; the failed rebuild stays in {staging} for a look")
        return rc or 1
    swapped = False
    try:
        # One step as far as signals go: a signal meanwhile is acted on once all of it is done.
        with as_luigi_reads(luigi_args), interrupts.deferred():
            atomic = rerun.swap_in(root, staging, old.name)
            advance_latest(root, old.name, last_partition())
            release_hour(old.lock)
            _after_rebuild(root, old.name)
            swapped = True
    except fs.StoreError as exc:  # the store went away mid-swap: the hour is marked unfinished
        note_run(root, hour, log, SWAP_FAILED)
        write_metrics(luigi_args, root, hour, SWAP_FAILED, began)
        say(f"error: {exc}")
        say(
            f"failed (exit {SWAP_FAILED}): the swap of {old.name} was cut short, so it does not "
            f"look complete and a plain run of it is refused; to finish it: {resume} (the "
            f"rebuild in {staging} is then removed and made anew)"
        )
        return SWAP_FAILED
    except interrupts.Interrupted as exc:
        note_run(root, hour, log, exc.exit_code)
        write_metrics(luigi_args, root, hour, exc.exit_code, began, interrupted=True)
        if not swapped:  # an error (a StoreError, superseded) cut the swap short meanwhile
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
    write_metrics(luigi_args, root, hour, 0, began)
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


def backfill_pipeline(
    days: int,
    newest_first: bool,
    task_limit: int | None,
    extra: Sequence[str],
    scheduler_url: str | None = None,
) -> int:
    """The missing hours of the last ``days`` days, by ``InsightsRange`` (luigi's RangeHourly)."""
    from pipeline.config import housekeeping
    from pipeline.ops import backfill
    from pipeline.ops.status import ranges
    from pipeline.storage.fs import StoreError
    from pipeline.storage.locks import remove_unused

    os.umask(UMASK)
    if _given(extra, "--date-hour"):
        raise CliError("backfill takes --days, not --date-hour (one hour: ./run_pipeline.sh run)")
    if days < 1:
        raise CliError(f"--days {days}: must be 1 or more")
    now = clock.now()
    start, stop = backfill.window(now, days)
    limit = days * 24 if task_limit is None else task_limit
    if limit < 1:
        raise CliError(f"--task-limit {limit}: must be 1 or more")
    task = backfill.range_args(start, stop, newest_first=newest_first, task_limit=limit)
    prepared = prepare(extra, scheduler_url, task)
    if isinstance(prepared, int):
        return prepared
    luigi_args, scheduler, _, root = prepared
    span = f"{start:%Y-%m-%dT%H}..{stop - timedelta(hours=1):%Y-%m-%dT%H}"
    with as_luigi_reads(luigi_args):
        retention = housekeeping().retention_hours
    if days * 24 > retention:
        raise CliError(
            f"--days {days} reaches past [housekeeping] retention_hours ({retention}): those hours "
            f"would be pruned as soon as they were built; at most --days {retention // 24}"
        )
    try:
        with as_luigi_reads(luigi_args):
            todo = backfill.missing(root, start, stop)
    except StoreError as exc:
        return unusable_store(exc)
    if not todo:
        say(f"nothing to do (exit 0): every hour of {span} is complete")
        return 0
    order = "newest first" if newest_first else "oldest first"
    say(f"backfill {span}: {len(todo)} hour(s) missing ({ranges(todo)}); {min(limit, len(todo))} "
        f"in this run, {order}")  # fmt: skip
    log = new_log(root)
    began = run_began()
    try:
        rc = run_logged(luigi_args, log, scheduler, run_luigi)
    except interrupts.Interrupted as exc:
        write_metrics(luigi_args, root, None, exc.exit_code, began, interrupted=True)
        resume = resume_backfill(days, newest_first, task_limit, extra, scheduler_url)
        say(f"interrupted (exit {exc.exit_code}): {exc.name} stopped the backfill {exc.during}; "
            f"the hours it completed stay. To go on: {resume}")  # fmt: skip
        return exc.exit_code
    remove_unused()
    left = backfill.missing(root, start, stop)
    built = len([h for h in todo if h not in left])
    write_metrics(luigi_args, root, None, rc, began)
    still = f"{len(left)} still missing ({ranges(left)})" if left else "none missing"
    if rc == 0:
        say(f"done (exit 0): {built} hour(s) built; {still}")
    else:
        say(f"failed (exit {rc}): {built} hour(s) built; {still}; the causes are above. "
            f"Details and tracebacks: {log}")  # fmt: skip
    return rc


def resume_backfill(
    days: int, newest_first: bool, task_limit: int | None, extra: Sequence[str],
    scheduler_url: str | None,
) -> str:  # fmt: skip
    """The backfill command as given: it goes on with the hours still missing."""
    words = ["backfill", "--days", str(days), *(["--newest-first"] if newest_first else [])]
    words += [] if task_limit is None else ["--task-limit", str(task_limit)]
    words += [*extra, *(["--scheduler-url", scheduler_url] if scheduler_url else [])]
    env = [f"{name}={shlex.quote(os.environ[name])}" for name in RESUME_ENV if os.environ.get(name)]
    return " ".join([*env, script(), shlex.join(words)])


def _after_rebuild(root: Location, name: str) -> None:
    """A rebuilt hour's report was made in the staging root, with no earlier hour beside it:
    bring it, and the next hour's (compared with the old figures), up to date; then the summary
    the staging run left out."""
    from pipeline.report import hour, summary

    for line in hour.refresh_around(root, name, rebuilt=True):
        say(line)
    summary.print_summary(root, name)


#: Exit code of a rerun whose rebuild was complete but whose swap an object store cut short.
SWAP_FAILED = 1


def has_run(folder: Location) -> bool:
    """Whether anything was ever written for this hour (a folder, or objects under a prefix)."""
    if isinstance(folder, Path):
        return folder.is_dir()
    from pipeline.storage import s3

    return s3.any_under(folder)


#: Who holds an hour that ``rerun`` rebuilds, on an object store.
RERUN_OWNER = "{host} pid {pid} rerun"


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


# -- demo ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def demo_api(timeout: float = DEMO_API_TIMEOUT) -> Iterator[str]:
    """Serve ``pipeline.devtools.demo_api`` on a free 127.0.0.1 port; yield its URL; stop it."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.devtools.demo_api", "--host", "127.0.0.1"],
            cwd=CHECKOUT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = _wait_for_url(proc, out, timeout)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for_url(proc: subprocess.Popen[bytes], out: BinaryIO, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out.seek(0)
        text = out.read().decode(errors="replace")
        if match := re.search(r"^serving (http\S+)", text, re.M):
            return match[1]
        if proc.poll() is not None:
            raise CliError(f"demo API exited early (status {proc.returncode}):\n{text.rstrip()}")
        if time.monotonic() > deadline:
            raise CliError(f"demo API did not report its URL within {timeout:g} s")
        time.sleep(0.05)


def shown(path: Path) -> str:
    """``path`` as a command typed here takes it: relative when under the working directory."""
    path = Path(path).absolute()
    here = Path.cwd()
    return shlex.quote(str(path.relative_to(here)) if path.is_relative_to(here) else str(path))


def script() -> str:
    """``run_pipeline.sh`` as typed from the working directory."""
    path = shown(CHECKOUT / "run_pipeline.sh")
    return path if path.startswith("/") else f"./{path}"


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    """Set environment variables inside the block only."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def demo(
    directory: Path | None, extra: Sequence[str] = (), scheduler_url: str | None = None
) -> int:
    """The whole pipeline offline: a generated shop served locally, outputs in ``directory``.

    Every demo builds its hour from scratch, as a user running it twice expects to see it run
    twice: the first demo of an hour runs it, a later one rebuilds it as ``rerun`` does (beside
    the old one, swapped in when complete). Skipping a complete hour would end a second demo
    with "nothing ran", and the demo's shop is served on a new port each time, so its manifest
    records another source. ``extra`` are luigi's options; the scheduler is chosen as for
    ``run``.
    """
    from pipeline.failures import RERUN_ENV
    from pipeline.storage.layout import Partition

    os.umask(UMASK)
    out = Path(directory) if directory is not None else DEMO_DIR
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    hour = requested_hour(extra)
    given = [] if _given(extra, "--date-hour") else ["--date-hour", f"{hour:%Y-%m-%dT%H}"]
    # --no-lock: luigi's host-wide lock is keyed on the command line, which every demo shares.
    args = [*given, "--no-lock", *extra]
    again = shlex.join(["demo", *([] if directory is None else [str(directory)]), *extra])
    if scheduler_url:
        again += f" --scheduler-url {shlex.quote(scheduler_url)}"
    again = f"{script()} {again}"
    with demo_api() as url:
        say(f"demo API at {url}; data in {out}")
        rebuild = Partition(out, hour).dir.is_dir()
        with environ(PIPELINE_API_URL=url, PIPELINE_DATA_DIR=str(out), **{RERUN_ENV: again}):
            rc = (rerun_pipeline if rebuild else run_pipeline)(args, scheduler_url)
    if rc != 0:
        return rc
    latest = out / "latest"
    target = os.readlink(latest) if latest.is_symlink() else "?"
    print(f"\nDemo outputs (latest -> {target}):")
    for path in [latest, *sorted((latest / "insights").glob("*"))]:
        print(f"  {path}{'/' if path == latest else ''}")
    print(f"The summary again: {script()} report --data-dir {shown(out)}")
    print(f"Run the demo again (it rebuilds the hour): {again}")
    return 0


# -- delegated subcommands ----------------------------------------------------------------------


def _units(argv: list[str]) -> int:
    from pipeline.ops import units

    return units.main(argv)


def _prune(argv: list[str]) -> int:
    from pipeline.ops import housekeeping

    return housekeeping.main(argv)


def _report(argv: list[str]) -> int:
    from pipeline.report import summary

    return summary.main(argv)


def _status(argv: list[str]) -> int:
    from pipeline.ops import status

    return status.main(argv)


def _luigid(argv: list[str]) -> int:
    from pipeline.ops import luigid

    return luigid.main(argv)


def _bench(argv: list[str]) -> int:
    from pipeline.devtools import bench  # a dev tool: imported only when asked for

    return bench.main(argv)


#: Subcommands whose arguments (``--help`` included) belong to the module they delegate to.
DELEGATED: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "units": (_units, "render this checkout's systemd units into DEST"),
    "report": (_report, "print the summary of a complete hour; runs nothing"),
    "prune": (_prune, "apply the retention now (try --dry-run first)"),
    "status": (_status, "is the data fresh, which hours are missing (exit 0/1/2/3)"),
    "luigid": (_luigid, "start the visualiser on 127.0.0.1 to watch runs"),
    "bench": (_bench, "benchmark the pipeline at scale (a dev tool)"),
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        description="Hourly snapshot of a DummyJSON-style shop API into analytics CSVs.\n"
        "Without a SUBCOMMAND: run. `SUBCOMMAND --help` explains each one.",
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    run = sub.add_parser(
        "run",
        help="run the pipeline for one UTC hour (the default)",
        allow_abbrev=False,  # luigi's options are passed on: never take one for an abbreviation
        description=RUN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=ENVIRONMENT,
    )
    run.add_argument(
        "--date-hour", metavar="YYYY-MM-DDTHH", help="UTC hour to snapshot (default: the current)"
    )
    run.add_argument(
        "--workers", type=int, metavar="N", help="tasks run at once (default: [core] workers)"
    )
    run.add_argument("--scheduler-url", metavar="URL", help="central scheduler (luigid) to use")
    rerun = sub.add_parser(
        "rerun",
        help="rebuild one hour beside the old one and swap it in when complete",
        allow_abbrev=False,
        description=RERUN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=ENVIRONMENT,
    )
    rerun.add_argument(
        "--date-hour", metavar="YYYY-MM-DDTHH", required=True, help="UTC hour to rebuild"
    )
    rerun.add_argument(
        "--workers", type=int, metavar="N", help="tasks run at once (default: [core] workers)"
    )
    rerun.add_argument("--scheduler-url", metavar="URL", help="central scheduler (luigid) to use")
    backfill = sub.add_parser(
        "backfill",
        help="run the missing hours of the last days (luigi's RangeHourly)",
        allow_abbrev=False,
        description=BACKFILL_HELP,
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backfill.add_argument(
        "--days", type=int, default=1, metavar="N", help="days to look back over (default: 1)"
    )
    backfill.add_argument(
        "--newest-first", action="store_true", help="run the most recent missing hours first"
    )
    backfill.add_argument(
        "--task-limit", type=int, metavar="N", help="at most N hours in this run (default: all)"
    )
    backfill.add_argument(
        "--workers", type=int, metavar="N", help="tasks run at once (default: [core] workers)"
    )
    backfill.add_argument(
        "--scheduler-url", metavar="URL", help="central scheduler (luigid) to use"
    )
    demo_parser = sub.add_parser(
        "demo",
        help="run the whole pipeline offline against a local demo API",
        allow_abbrev=False,
        # DIR is taken by main, not by argparse: it would take a luigi option's value for it
        usage=f"{PROG} demo [-h] [DIR] [--scheduler-url URL] [LUIGI OPTION ...]",
        description="Serve a generated shop on 127.0.0.1, run the pipeline against it into "
        "DIR (default: data-demo in the checkout), stop the server and show where the outputs "
        "are. Each demo builds its hour from scratch: an hour already in DIR is rebuilt, as "
        "`rerun` does. The scheduler is chosen as for `run`; any other option goes to luigi "
        "(e.g. --workers 2).",
    )
    demo_parser.add_argument(
        "--scheduler-url", metavar="URL", help="central scheduler (luigid) to watch it in"
    )
    for name, (_, text) in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in and args_in[0] in DELEGATED:
        return DELEGATED[args_in[0]][0](args_in[1:])
    if not args_in or (args_in[0].startswith("-") and args_in[0] not in ("-h", "--help")):
        args_in.insert(0, "run")
    directory = None
    if args_in[0] == "demo" and len(args_in) > 1 and not args_in[1].startswith("-"):
        directory = Path(args_in.pop(1))  # not argparse's: it would take an option's value
    parser = build_parser()
    args, extra = parser.parse_known_args(args_in)
    if args.command not in ("run", "rerun", "demo", "backfill") and extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "demo":
            return demo(directory, extra, args.scheduler_url)
        if args.command == "backfill":
            workers = [] if args.workers is None else ["--workers", str(args.workers)]
            return backfill_pipeline(args.days, args.newest_first, args.task_limit,
                                     [*workers, *extra], args.scheduler_url)  # fmt: skip
        own = [("--date-hour", args.date_hour), ("--workers", args.workers)]
        luigi_args = [s for flag, value in own if value is not None for s in (flag, str(value))]
        if args.command == "rerun":
            return rerun_pipeline([*luigi_args, *extra], args.scheduler_url)
        return run_pipeline([*luigi_args, *extra], args.scheduler_url)
    except CliError as exc:
        say(f"error: {exc}")
        return 2
    except config.ConfigError as exc:  # a setting no run can use, found late
        say(f"error: {exc}")
        return config.EXIT_CONFIG


def stoppable_main(argv: Sequence[str] | None = None) -> int:
    """``main`` as ``python -m pipeline`` runs it: SIGINT and SIGTERM stop it with one line
    and exit 130 / 143 (``interrupts``); a run says itself what was stopped (``stopped``)."""
    with interrupts.handling():
        try:
            return main(argv)
        except interrupts.Interrupted as exc:  # outside a run: before it, after it, a rerun
            where = f" {exc.during}" if exc.where or exc.after or exc.forked else ""
            say(f"interrupted (exit {exc.exit_code}) by {exc.name}{where}; run it again to finish")
            return exc.exit_code
