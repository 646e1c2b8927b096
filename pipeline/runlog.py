"""The run log of ``python -m pipeline``: where it goes, what it holds, and the failed-run note.

Every run writes one log, ``run-<UTC time>-<pid>.log``, beside the partitions of a local data
root, or with an object-store root on this host (``layout.logs_dir``). It starts with the
command, the working directory and the scheduler, holds everything the run wrote (tracebacks
included), and ends with ``# exit code: N``. ``note_run`` keeps ``layout.FAILED_RUN`` under
``logs/`` for the systemd failure unit (``units --on-failure``) and ``status``: the run under way
or failed, removed when a run succeeds.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from pipeline import clock, interrupts, logs
from pipeline.console import say, tee_output
from pipeline.logs import RUN_LOG_ENV
from pipeline.storage.fs import Location
from pipeline.storage.layout import FAILED_RUN, logs_dir


def run_log(root: Location) -> Path:
    """The run's log file: beside the partitions, or with an object-store root on this host, in
    ``$PIPELINE_LOG_DIR`` (default: ``logs/`` in the checkout): ``layout.logs_dir``."""
    return log_path(root)


def log_path(root: Location, now: datetime | None = None, pid: int | None = None) -> Path:
    stamp = (clock.now() if now is None else now).strftime("%Y%m%dT%H%M%SZ")
    return logs_dir(root) / f"run-{stamp}-{os.getpid() if pid is None else pid}.log"


def new_log(root: Location) -> Path:
    """Create this run's log. Raises ConfigError (exit 78, as for a data root found unusable
    before the run) when its folder cannot be written: the check before the run only looks,
    and some folders (``/proc``, a full disk) refuse only when written."""
    from pipeline.config import ConfigError

    log = run_log(root)
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()
    except OSError as exc:
        where = (
            "the data root (PIPELINE_DATA_DIR / [paths] data_dir)"
            if isinstance(root, Path)
            else "$PIPELINE_LOG_DIR (this host's folder for an s3:// root's run logs)"
        )
        raise ConfigError(
            f"cannot write run logs in {log.parent}: {exc.strerror or exc}; nothing was "
            f"written. Fix {where} or its permissions"
        ) from None
    return log.resolve()


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


def run_logged(
    luigi_args: Sequence[str],
    log: Path,
    scheduler: str,
    runner: Callable[[Sequence[str]], int],
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
