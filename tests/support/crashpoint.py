"""Run luigi's command line and SIGKILL it at a chosen point: the crash test's deterministic kills.

``python -m tests.support.crashpoint <luigi arguments>`` behaves as ``luigi <arguments>``, except
that it dies (its whole process group, as a power cut or the OOM killer would end it) at the
first of the points listed, comma-separated, in the ``CRASH_POINTS`` environment variable:

- ``before:<path>`` or ``after:<path>``: around the ``os.replace`` onto ``<path>``, relative to
  the data root (``PIPELINE_DATA_DIR``). Every file the pipeline publishes, ``latest`` and a
  partition renamed away by retention all arrive at their path this way.
- ``request:<endpoint>:<n>``: as the n-th request for ``/<endpoint>`` is about to be sent, so an
  extract dies with its earlier pages already streamed to its temporary file.
- ``unlink:tmp``: before deleting the first temporary file that exists (a run sweeping what a
  killed run left).
- ``unlink:rmtree``: before deleting the first file of a partition that retention removes.

Just before dying it writes the point it reached to the file ``CRASH_REPORT``. ``CRASH_TRACE``
names a file that gets one line per ``os.replace`` (``replace <path>``), so a test can list the
points of an uninterrupted run.

With ``CRASH_ACTION=pause`` it does not die at the point: it writes the report and waits there
until the file ``CRASH_RESUME`` exists (or a signal's handler raises), so that a test can send a
signal to a run stopped at a known point. ``python -m tests.support.crashpoint pipeline ARGS``
runs ``python -m pipeline ARGS`` instead of luigi.

The hooks watch the standard library and ``requests`` only, never the pipeline's own names, so
they keep working when its modules are reorganised. Test support only: nothing in ``pipeline``
imports this.
"""

from __future__ import annotations

import os
import shutil  # noqa: F401  (imported before os.unlink is wrapped: it picks its rmtree then)
import signal
import sys
import time
from pathlib import Path
from typing import Any

import requests.adapters
from luigi.cmdline import luigi_run

_replace, _unlink = os.replace, os.unlink
_send = requests.adapters.HTTPAdapter.send


class CrashPoints:
    """The points to die at; ``reached`` kills the process group at the first one met."""

    def __init__(
        self, points: str, root: Path, report: str | None, trace: str | None, resume: str = ""
    ):
        self.points = {p for p in points.split(",") if p}
        self.root, self.report, self.trace, self.resume = root, report, trace, resume
        self.requests: dict[str, int] = {}

    def reached(self, point: str) -> None:
        if point not in self.points:
            return
        if self.report:
            with open(self.report, "w") as fh:
                fh.write(point)
        if self.resume:  # pause: a signal's handler may raise in here
            while not os.path.exists(self.resume):
                time.sleep(0.01)
            return
        os.killpg(os.getpgid(0), signal.SIGKILL)  # no cleanup, no flush: as a power cut

    def relative(self, path: Any) -> str:
        return os.path.relpath(os.path.abspath(os.fspath(path)), self.root)

    def replace(self, src: Any, dst: Any, **kwargs: Any) -> None:
        rel = self.relative(dst)
        if self.trace:
            with open(self.trace, "a") as fh:
                fh.write(f"replace {rel}\n")
        self.reached(f"before:{rel}")
        _replace(src, dst, **kwargs)
        self.reached(f"after:{rel}")

    def unlink(self, path: Any, *, dir_fd: int | None = None) -> None:
        name = str(os.fspath(path))
        if dir_fd is not None or ".deleting" in name:  # shutil.rmtree of a pruned partition
            self.reached("unlink:rmtree")
        elif name.endswith(".tmp") and os.path.lexists(name):
            self.reached("unlink:tmp")
        _unlink(path, dir_fd=dir_fd)

    def request(self, url_path: str) -> None:
        endpoint = url_path.split("?")[0].strip("/")
        self.requests[endpoint] = n = self.requests.get(endpoint, 0) + 1
        self.reached(f"request:{endpoint}:{n}")

    def install(self) -> None:
        """Wrap ``os.replace``, ``os.unlink`` and ``HTTPAdapter.send`` in this process."""
        points = self

        def send(adapter: requests.adapters.HTTPAdapter, request: Any, *a: Any, **kw: Any) -> Any:
            points.request(request.path_url)
            return _send(adapter, request, *a, **kw)

        os.replace = self.replace  # type: ignore[assignment]
        os.unlink = self.unlink  # type: ignore[assignment]
        requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    env = os.environ
    CrashPoints(
        env.get("CRASH_POINTS", ""),
        Path(env["PIPELINE_DATA_DIR"]).absolute(),
        env.get("CRASH_REPORT"),
        env.get("CRASH_TRACE"),
        env.get("CRASH_RESUME", "") if env.get("CRASH_ACTION") == "pause" else "",
    ).install()
    if argv[:1] == ["pipeline"]:
        from pipeline.cli import stoppable_main

        raise SystemExit(stoppable_main(argv[1:]))
    luigi_run(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
