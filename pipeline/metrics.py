"""Each run's Prometheus metrics: a node_exporter textfile, and a Pushgateway when configured.

After every run that started (succeeded, failed or interrupted) ``python -m pipeline``, and a
plain luigi run that claimed an hour (``plain_metrics``), writes ``etl_pipeline.prom`` in
Prometheus' text format to ``[metrics] directory`` (default: the host's run-log folder,
``layout.logs_dir``), atomically: a hidden temporary file in the same folder,
renamed over the old one, so node_exporter's textfile collector never reads half a file. What
is known only across runs (the last success, the runs counted by result) is carried over from
the file the previous run left. docs/metrics.md lists every metric.

The figures come from what the run left on disk (the hour's stats files, rejected rows and
manifest, ``latest``) and, for the API's requests, from this process's counters
(``api.tally``) or the extracts' stats files, whichever counted more (a forked worker counts
in its own process). Nothing here may fail the run: a problem is a warning line for the
console. ``prometheus_client`` is imported only to push.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.storage.fs import Location, ObjectPath

FILE = "etl_pipeline.prom"
JOB = "etl_pipeline"
PREFIX = "etl_pipeline_"
RESULTS = ("success", "failed", "interrupted")
PUSH_TIMEOUT = 10.0  # seconds
LAST_SUCCESS = f"{PREFIX}last_success_timestamp_seconds"


@dataclass
class Family:
    """One metric: its name (a counter's with ``_total``), type, help and samples."""

    name: str
    kind: str  # "gauge" | "counter"
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> Family:
        self.samples.append((labels, float(value)))
        return self


@dataclass(frozen=True)
class Run:
    """What the entry point knows of a run once it is over."""

    root: Location  # the data root whose hour it wrote
    hour: datetime | None  # None: a backfill of several hours
    exit_code: int
    result: str  # one of RESULTS
    started: datetime  # clock.now() when it began (UTC)
    finished: datetime
    seconds: float  # wall time
    run_id: str  # the name of its run log, which the stats of the tasks it ran carry
    built_in: Location | None = None  # where the hour was built, if not in root (a rerun's)


# -- the text format ---------------------------------------------------------------------------


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def render(families: Iterable[Family]) -> str:
    """Prometheus' text exposition format (0.0.4), which node_exporter's textfile reads."""
    lines = []
    for family in families:
        if not family.samples:
            continue
        text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines += [f"# HELP {family.name} {text}", f"# TYPE {family.name} {family.kind}"]
        for labels, value in family.samples:
            shown = ",".join(f'{k}="{_label_value(v)}"' for k, v in labels.items())
            lines.append(
                f"{family.name}{{{shown}}} {_number(value)}"
                if shown
                else f"{family.name} {_number(value)}"
            )
    return "\n".join(lines) + "\n"


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def previous(path: Path) -> Samples:
    """The samples of the file the last run left ({} if none or unreadable): (name, labels) ->
    value. Only this module's own output is read back, so a small parser does."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    found = {}
    for line in text.splitlines():
        if line.startswith("#") or not (match := _SAMPLE.match(line)):
            continue
        labels = tuple(sorted(_LABEL.findall(match["labels"] or "")))
        try:
            found[(match["name"], labels)] = float(match["value"])
        except ValueError:
            continue
    return found


# -- what the run left ---------------------------------------------------------------------------


def _stamp(moment: datetime) -> float:
    return round(moment.timestamp(), 3)


def _read_json(location: Location) -> Any:
    from pipeline.storage.atomic import read_json
    from pipeline.storage.fs import exists

    try:
        return read_json(location) if exists(location) else None
    except (OSError, ValueError):
        return None


def _sizes(folder: Location) -> dict[str, int]:
    """Every file under ``folder``: path relative to it -> bytes (one LIST on an object store)."""
    if isinstance(folder, ObjectPath):
        from pipeline.storage import s3

        paginator = s3.client().get_paginator("list_objects_v2")
        pages: list[dict[str, Any]] = s3.call(
            "LIST", folder, list, paginator.paginate(Bucket=folder.bucket, Prefix=folder.prefix)
        )
        return {
            o["Key"][len(folder.prefix) :]: int(o["Size"])
            for page in pages
            for o in page.get("Contents", [])
        }
    if not folder.is_dir():
        return {}
    return {
        str(p.relative_to(folder)): p.stat().st_size
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


def _rows(location: Location) -> int:
    """Records of a CSV with a header row."""
    from pipeline.storage.fs import read_bytes

    text = read_bytes(location).decode("utf-8", errors="replace")
    return max(0, sum(1 for _ in csv.reader(io.StringIO(text))) - 1)


def _started(stats: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(stats["started"])
    except (KeyError, TypeError, ValueError):
        return None


def hour_families(run: Run) -> list[Family]:
    """What the run's hour holds: durations of the tasks this run ran, records, API traffic,
    rejected rows, bytes, carts and revenue, anomalies and schema drift (as far as it got)."""
    from pipeline.api import tally
    from pipeline.schema import ENDPOINTS
    from pipeline.storage.layout import STATS, Partition

    tasks = Family(
        f"{PREFIX}task_duration_seconds",
        "gauge",
        "Seconds each task took in the last run (tasks it ran to the end).",
    )
    records = Family(
        f"{PREFIX}records", "gauge", "Records extracted per endpoint for the last run's hour."
    )
    api = {
        kind: Family(f"{PREFIX}api_{name}", "gauge", text)
        for kind, name, text in (
            ("requests", "requests", "HTTP requests the last run sent to the API, by endpoint."),
            ("retries", "retries", "Requests the last run retried (429, 5xx, timeouts ...)."),
            ("throttled", "throttled_responses", "HTTP 429 answers the last run received."),
        )
    }
    counted = tally.counts()
    families = [tasks, records, *api.values()]
    if run.hour is None:
        for endpoint in sorted(set(ENDPOINTS) | set(counted)):
            for kind, family in api.items():
                family.add(counted.get(endpoint, {}).get(kind, 0), endpoint=endpoint)
        return families
    part = Partition(run.built_in or run.root, run.hour)
    stats = {key: _read_json(part.stats(key)) for key in STATS}
    began = run.started.replace(microsecond=run.started.microsecond // 1000 * 1000)  # as stats
    this_run = run.run_id

    def ran_here(facts: dict[str, Any]) -> bool:
        """Did this run (its forked workers included) do the task? Its stats name the run; a
        worker of another host under the same luigid is another run. Stats written before they
        named it: a task started since this run began."""
        if "run_id" in facts:
            return bool(facts["run_id"] == this_run)
        return (when := _started(facts)) is not None and when >= began

    for key, facts in stats.items():
        if isinstance(facts, dict) and ran_here(facts):
            tasks.add(facts.get("seconds", 0.0), task=key)
    for endpoint in sorted(set(ENDPOINTS) | set(counted)):
        facts = stats.get(f"extract_{endpoint}") or {}
        if "records" in facts:
            records.add(facts["records"], endpoint=endpoint)
        ran = ran_here(facts)
        for kind, family in api.items():
            own = counted.get(endpoint, {}).get(kind, 0)
            family.add(max(own, facts.get(kind, 0) if ran else 0), endpoint=endpoint)

    sizes = _sizes(part.dir)
    rejected = Family(
        f"{PREFIX}rejected_rows",
        "gauge",
        "Rows each quality check rejected in the last run's hour.",
    )
    for rel in sorted(sizes):
        if rel.startswith("rejected/") and rel.endswith(".csv") and "/" not in rel[9:]:
            rejected.add(_rows(part.dir / rel), check=rel[9:-4])
    written = Family(
        f"{PREFIX}hour_bytes", "gauge", "Bytes of the last run's hour, by folder of its partition."
    )
    by_folder: dict[str, int] = {}
    for rel, size in sizes.items():
        if rel.startswith("."):  # the lock, a rerun's marker, temporaries
            continue
        top = rel.split("/", 1)[0]
        by_folder[top] = by_folder.get(top, 0) + size
    for top in sorted(by_folder):
        written.add(by_folder[top], folder=top)
    families += [rejected, written]

    carts = stats.get("clean_carts") or {}
    if "carts" in carts:
        families.append(
            Family(f"{PREFIX}hour_carts", "gauge", "Carts in the last run's hour.").add(
                carts["carts"]
            )
        )
    if "line_total" in carts:
        families.append(
            Family(
                f"{PREFIX}hour_revenue_dollars",
                "gauge",
                "Revenue of the last run's hour at list price, in US dollars.",
            ).add(carts["line_total"])
        )
    manifest = _read_json(part.manifest)
    if isinstance(manifest, dict):
        families += quality_families(manifest)
    return families


def quality_families(manifest: dict[str, Any]) -> list[Family]:
    """Anomalies and schema drift as the hour's manifest records them: ``checks`` (each with
    ``name`` and ``status``) and ``schema_drift`` (endpoint -> ``added``/``missing`` fields)."""
    anomalies = Family(
        f"{PREFIX}anomalies", "gauge", "1 when a check of the last run's hour is anomalous, else 0."
    )
    for check in manifest.get("checks") or []:
        if isinstance(check, dict) and "name" in check:
            anomalies.add(1 if check.get("status") == "anomaly" else 0, check=str(check["name"]))
    drift = Family(
        f"{PREFIX}schema_drift_fields",
        "gauge",
        "Fields the API added or stopped sending in the last run's hour.",
    )
    for endpoint, kinds in sorted((manifest.get("schema_drift") or {}).items()):
        for kind in ("added", "missing"):
            drift.add(len((kinds or {}).get(kind) or []), endpoint=str(endpoint), kind=kind)
    return [anomalies, drift]


def freshness(root: Location, now: datetime) -> list[Family]:
    """The newest complete hour (``latest``) and its age: the start of that hour to now."""
    from pipeline.storage.latest import latest_partition
    from pipeline.storage.layout import PARTITION_FORMAT

    newest = latest_partition(root)
    if newest is None:
        return []
    start = datetime.strptime(newest, PARTITION_FORMAT).replace(tzinfo=UTC)
    return [
        Family(
            f"{PREFIX}newest_complete_hour_timestamp_seconds",
            "gauge",
            "Start of the newest complete hour (where latest points).",
        ).add(_stamp(start)),
        Family(
            f"{PREFIX}newest_complete_hour_age_seconds",
            "gauge",
            "Seconds from the start of the newest complete hour to the end of the last run.",
        ).add(round((now - start) / timedelta(seconds=1), 3)),
    ]


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def families(run: Run, before: Samples, problems: list[str] | None = None) -> list[Family]:
    """Every metric of ``run``; ``before`` is what the previous run's file said. A part that
    cannot be read is counted in ``metrics_errors`` and told in ``problems``."""
    from pipeline import lineage

    ok = run.result == "success"
    last_success = _stamp(run.finished) if ok else before.get((LAST_SUCCESS, ()))
    runs = Family(f"{PREFIX}runs_total", "counter", "Runs by result since the file was first made.")
    for result in RESULTS:
        count = before.get((runs.name, (("result", result),)), 0.0)
        runs.add(count + (result == run.result), result=result)
    out = [
        Family(
            f"{PREFIX}last_run_success",
            "gauge",
            "1 when the last run succeeded, 0 when it failed or was interrupted.",
        ).add(ok),
        Family(f"{PREFIX}last_run_exit_code", "gauge", "Exit code of the last run.").add(
            run.exit_code
        ),
        Family(f"{PREFIX}last_run_timestamp_seconds", "gauge", "When the last run ended.").add(
            _stamp(run.finished)
        ),
        Family(
            LAST_SUCCESS, "gauge", "When the last successful run ended (kept across failed runs)."
        ),
        runs,
        Family(f"{PREFIX}run_duration_seconds", "gauge", "Wall time of the last run.").add(
            round(run.seconds, 3)
        ),
        Family(f"{PREFIX}build_info", "gauge", "The code version of the last run (value 1).").add(
            1, version=lineage.code_version()
        ),
    ]
    if last_success is not None:
        out[3].add(last_success)
    if run.hour is not None:
        out.append(
            Family(
                f"{PREFIX}run_hour_timestamp_seconds",
                "gauge",
                "Start of the hour the last run wrote.",
            ).add(_stamp(run.hour.replace(tzinfo=UTC)))
        )
    errors = Family(
        f"{PREFIX}metrics_errors",
        "gauge",
        "Parts of the metrics that could not be read (see the console).",
    )
    parts: dict[str, Callable[[Run], list[Family]]] = {
        "hour": hour_families,
        "freshness": lambda r: freshness(r.root, r.finished),
    }
    for name, part in parts.items():
        try:
            out += part(run)
        except Exception as exc:  # an unreachable store: the run's own figures still go out
            errors.add(1, part=name)
            if problems is not None:
                problems.append(f"metrics of the {name} not read: {type(exc).__name__}: {exc}")
    if errors.samples:  # one family, however many parts failed: a name twice voids the file
        out.append(errors)
    return out


# -- writing and pushing -------------------------------------------------------------------------


def directory(root: Location, configured: str) -> Path:
    """``[metrics] directory`` (relative: from the checkout, like ``[paths] data_dir``), else the
    host's run-log folder."""
    from pipeline.checkout import CHECKOUT
    from pipeline.storage.layout import logs_dir

    if configured.strip():
        path = Path(configured).expanduser()
        return path if path.is_absolute() else CHECKOUT / path
    return logs_dir(root)


def write(path: Path, text: str) -> None:
    """Replace ``path`` atomically: a hidden temporary file beside it (node_exporter reads only
    ``*.prom``), synced, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # node_exporter runs as its own user; no personal data in here
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def grouping() -> dict[str, str]:
    """The Pushgateway group of this host's runs (with job ``etl_pipeline``)."""
    return {"instance": socket.gethostname()}


def push(url: str, found: list[Family], timeout: float = PUSH_TIMEOUT) -> None:
    """Replace this host's group on the Pushgateway at ``url`` with ``found`` (an HTTP PUT)."""
    from prometheus_client import CollectorRegistry, push_to_gateway
    from prometheus_client.core import Metric

    class Collected:
        def collect(self) -> Iterable[Metric]:
            for family in found:
                if not family.samples:
                    continue
                name = family.name
                if family.kind == "counter":  # the family's name; its sample adds _total
                    name = name.removesuffix("_total")
                metric = Metric(name, family.help, family.kind)
                for labels, value in family.samples:
                    metric.add_sample(family.name, labels, value)
                yield metric

    registry = CollectorRegistry()
    registry.register(Collected())
    push_to_gateway(url, job=JOB, registry=registry, grouping_key=grouping(), timeout=timeout)


def record(run: Run, configured_directory: str, pushgateway_url: str) -> list[str]:
    """Write the run's metrics file, and push them when a Pushgateway is configured; what went
    wrong, one line each (the run's outcome stands whatever happens here)."""
    problems: list[str] = []
    path = directory(run.root, configured_directory) / FILE
    found = families(run, previous(path), problems)
    try:
        write(path, render(found))
    except OSError as exc:
        problems.append(f"metrics not written to {path}: {exc}")
    if pushgateway_url:
        try:
            push(pushgateway_url, found)
        except Exception as exc:  # unreachable, refused, an HTTP error: the data run stands
            problems.append(f"metrics not pushed to the Pushgateway at {pushgateway_url}: {exc}")
    return problems


def write_run(run: Run) -> list[str]:
    """``record`` with the ``[metrics]`` settings luigi's configuration gives: what went wrong,
    one line each, whatever it was (a run's outcome never depends on its metrics)."""
    from pipeline import config

    try:
        cfg = config.metrics()
        return record(run, str(cfg.directory), str(cfg.pushgateway_url))
    except Exception as exc:
        return [f"metrics not written: {type(exc).__name__}: {exc}"]
