"""``python -m pipeline demo``: the whole pipeline offline, against a generated shop.

The shop is ``pipeline.devtools.demo_api``, served in a child process on a free 127.0.0.1 port
for the demo's run only; the outputs go to ``data-demo/`` in the checkout (or the folder given).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from pipeline.checkout import CHECKOUT, DEMO_DIR
from pipeline.console import CliError, say
from pipeline.ops.rerun_command import rerun_pipeline
from pipeline.runner import UMASK, flag_given, requested_hour, run_pipeline
from pipeline.suggested import script, shown

DEMO_API_TIMEOUT = 120.0  # seconds; it starts in well under one, unless the machine is swamped


#: Starts the demo API with a way to say where it is (``faulthandler`` on SIGUSR1, set before
#: anything is imported), so a child that stays silent can be asked before it is stopped.
_BOOT = (
    "import faulthandler, runpy, signal; faulthandler.register(signal.SIGUSR1); "
    "runpy.run_module('pipeline.devtools.demo_api', run_name='__main__')"
)


@contextlib.contextmanager
def demo_api(timeout: float = DEMO_API_TIMEOUT) -> Iterator[str]:
    """Serve ``pipeline.devtools.demo_api`` on a free 127.0.0.1 port; yield its URL; stop it.

    Its one line of stdout, the URL, comes through a pipe (read by a thread, which then drains
    the pipe); its stderr goes to a file read only once it is done: no reading a file while the
    child writes through the same offset.
    """
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, "--host", "127.0.0.1"],
            cwd=CHECKOUT, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = _wait_for_url(proc, errors, timeout)
            yield url
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the child as a user would (SIGTERM: it closes its server), killed if it lingers."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _lines(stream: IO[bytes]) -> queue.SimpleQueue[str | None]:
    """The lines of ``stream`` as a thread reads them, then None at its end."""
    found: queue.SimpleQueue[str | None] = queue.SimpleQueue()

    def pump() -> None:
        with stream:
            for line in stream:
                found.put(line.decode(errors="replace"))
        found.put(None)

    threading.Thread(target=pump, name="demo-api-stdout", daemon=True).start()
    return found


def _wait_for_url(proc: subprocess.Popen[bytes], errors: IO[bytes], timeout: float) -> str:
    """The URL the child announces on stdout; a CliError naming why when it exits first or
    stays silent for ``timeout`` seconds (then it is stopped, and says where it was)."""
    assert proc.stdout is not None
    lines = _lines(proc.stdout)
    said: list[str] = []  # lines before the URL, shown if it never comes
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:  # stdout closed: it is exiting
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _stop(proc)
            errors.seek(0)
            text = "".join(said) + errors.read().decode(errors="replace")
            raise CliError(f"demo API exited early (status {proc.returncode}):\n{text.rstrip()}")
        if match := re.match(r"serving (http\S+)", line):
            return match[1]
        said.append(line)
    where = _where(proc, errors)
    _stop(proc)
    raise CliError(
        f"demo API did not report its URL within {timeout:g} s"
        + (f"; it was in {where}" if where else "")
        + ". Is the machine overloaded? Try again."
    )


def _where(proc: subprocess.Popen[bytes], errors: IO[bytes]) -> str:
    """Where a silent child is: its stacks, asked for with SIGUSR1, from ``errors``."""
    if proc.poll() is not None:
        return ""
    proc.send_signal(signal.SIGUSR1)
    for _ in range(40):  # the dump is written at once, unless the machine is swamped
        time.sleep(0.05)
        errors.seek(0)
        if where := _innermost(errors.read().decode(errors="replace")):
            return where
    return ""


def _innermost(dump: str) -> str:
    """``function (file:line)`` of the innermost frame of the thread that took the signal
    (the main one while it starts), from faulthandler's dump (``File "<path>", line <n> in
    <function>``, most recent call first); "" if there is none yet."""
    main = dump.split("Current thread", 1)[-1]
    found = re.search(r'File "([^"]+)", line (\d+) in (\S+)\n', main)  # a whole line
    return f"{found[3]} ({found[1]}:{found[2]})" if found else ""


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


@contextlib.contextmanager
def own_metrics(out: Path) -> Iterator[None]:
    """Inside the block the demo's metrics stay with its data: never over the host's file,
    never pushed (its figures are not production's). Set in this process's configuration, so
    that an option on the command line still wins (luigi reads an empty one there as not
    given); the configuration is as it was after the block."""
    import luigi.configuration

    config = luigi.configuration.get_config()
    had = config.has_section("metrics")
    before = dict(config.items("metrics")) if had else {}
    if not had:
        config.add_section("metrics")
    config.set("metrics", "directory", str(out / "logs"))
    config.set("metrics", "pushgateway_url", "")
    try:
        yield
    finally:
        if not had:
            config.remove_section("metrics")
        else:
            for option in ("directory", "pushgateway_url"):
                if option in before:
                    config.set("metrics", option, before[option])
                else:
                    config.remove_option("metrics", option)


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
    given = [] if flag_given(extra, "--date-hour") else ["--date-hour", f"{hour:%Y-%m-%dT%H}"]
    # --no-lock: luigi's host-wide lock is keyed on the command line, which every demo shares.
    args = [*given, "--no-lock", *extra]
    again = shlex.join(["demo", *([] if directory is None else [str(directory)]), *extra])
    if scheduler_url:
        again += f" --scheduler-url {shlex.quote(scheduler_url)}"
    again = f"{script()} {again}"
    with demo_api() as url:
        say(f"demo API at {url}; data in {out}")
        rebuild = Partition(out, hour).dir.is_dir()
        with (
            environ(PIPELINE_API_URL=url, PIPELINE_DATA_DIR=str(out), **{RERUN_ENV: again}),
            own_metrics(out),
        ):
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
