"""Lineage where it is cheap: which run made an hour, from which code, from which source.

The run's id is its run log's name (``run-20261207T142406Z-29620``, ``runlog.log_path``): the log
is where everything about the run is, so the id found in a manifest, a history row or a report
leads to it. The code version is the checkout's git commit (``git describe --always --dirty``),
else the installed package's version, else "unknown". A source on this machine (127.0.0.1,
localhost: the demo, a test server) is said to be one, so a demo report is never taken for
production. Importing this module costs nothing: no git, no HTTP stack.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pipeline import clock
from pipeline.checkout import CHECKOUT
from pipeline.logs import RUN_LOG_ENV

if TYPE_CHECKING:
    from pipeline.storage.layout import Partition


PACKAGE = "etl-pipeline"
RUN_ID = re.compile(r"^run-\d{8}T\d{6}Z-\d+$")
UNKNOWN = "unknown"


@functools.cache
def _own_id() -> str:
    """This process's id when no run log names it (a task run outside both entry points)."""
    return f"run-{clock.now():%Y%m%dT%H%M%SZ}-{os.getpid()}"


def run_id(log: str | os.PathLike[str] | None = None) -> str:
    """The run's id: the name of its run log (``log``, else ``PIPELINE_RUN_LOG``, which both
    ``python -m pipeline`` and plain luigi set while the run is under way, and forked workers
    inherit), else one of this process."""
    if log is None:
        log = os.environ.get(RUN_LOG_ENV, "")
    name = Path(log).name.removesuffix(".log")
    return name if RUN_ID.match(name) else _own_id()


@functools.cache
def code_version() -> str:
    """``git describe --always --dirty`` of the checkout (e.g. ``e5153c1`` or ``e5153c1-dirty``),
    else ``<package version>`` of an installed copy, else "unknown"."""
    try:
        done = subprocess.run(
            ["git", "-C", str(CHECKOUT), "describe", "--always", "--dirty", "--abbrev=7"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib import metadata

    try:
        return f"package {metadata.version(PACKAGE)}"
    except metadata.PackageNotFoundError:
        return UNKNOWN


def is_local(url: str) -> bool:
    """Whether ``url`` is served from this machine (loopback): a demo or test API."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Lineage:
    """Who made an hour: the run, the code, the source its records came from."""

    run_id: str
    code_version: str
    source: str

    @property
    def local(self) -> bool:
        return is_local(self.source)

    def sentence(self) -> str:
        """One line for the report."""
        where = f"source {self.source}"
        if self.local:
            where += " (a local server on this machine, e.g. the demo: not production data)"
        return f"Run {self.run_id}, code {self.code_version}, {where}."

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Lineage | None:
        """A recorded lineage (a report's stats), or None when there is none or it is not one."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(str(data["run_id"]), str(data["code_version"]), str(data["source"]))
        except KeyError:
            return None


def hour_source(partition: Partition) -> list[str]:
    """The sources the hour's extracts read, as their stats record them (none yet: [])."""
    from pipeline.schema import ENDPOINTS
    from pipeline.storage.atomic import read_json
    from pipeline.storage.fs import exists

    found = set()
    for endpoint in ENDPOINTS:
        path = partition.stats(f"extract_{endpoint}")
        if exists(path):
            stats = read_json(path)
            found.add(stats.get("source") or stats["url"].rsplit("/", 1)[0])
    return sorted(found)


def current(source: str | list[str] | None) -> Lineage:
    """This run's lineage for an hour whose records came from ``source`` (as the manifest
    records it: one URL, a list when endpoints differed, None when unknown)."""
    if isinstance(source, list):
        source = source[0] if len(source) == 1 else ", ".join(source)
    return Lineage(run_id(), code_version(), source or UNKNOWN)
