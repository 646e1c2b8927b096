"""Every setting of the pipeline: its default and its description, declared once, here.

Each ``luigi.Config`` class is a section of ``luigi.cfg`` (section name = class name), and each
option can be set there or for one run on the command line (``--api-page-size 100``).
``luigi.cfg`` itself holds only luigi's own sections and deliberate overrides. Two settings may
also come from the environment because they differ per machine rather than per deployment:
``PIPELINE_API_URL`` and ``PIPELINE_DATA_DIR``; the environment wins over the file.

Each option also declares the values it accepts (``allowed=``), next to its default; before a
run schedules or writes anything, ``config_check`` checks every option against them and the run
exits with ``EXIT_CONFIG`` naming each bad one. How luigi finds its configuration files and its
pid lock is ``luigi_config``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import luigi

from pipeline import clock
from pipeline.checkout import CHECKOUT  # re-exported: where the defaults are relative to
from pipeline.storage.location import DataRootError, Location, parse_root

if TYPE_CHECKING:  # importing the HTTP stack is left to the tasks that talk to the API
    from pipeline.api.client import ClientSettings


#: Exit status of a run refused for its settings (an option, the hour, the data root) before it
#: scheduled or wrote anything: sysexits.h's EX_CONFIG, which systemd also calls CONFIG.
EXIT_CONFIG = 78


class ConfigError(ValueError):
    """A setting is unusable; raised before any request is made or file written."""


class ConfigExit(SystemExit):
    """Stops luigi with ``EXIT_CONFIG`` once the reason is printed or logged.

    A ``SystemExit`` rather than an error, so that luigi neither logs it as a crash (exit 40)
    nor as a task that failed (30): raised while a task is made or scheduled, it ends the run.
    """

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_CONFIG)
        self.message = message


# -- what each option accepts --------------------------------------------------------------------


@dataclass(frozen=True)
class Allowed:
    """The values an option accepts: ``text`` for people (docs, messages), ``ok`` to check."""

    text: str
    ok: Callable[[Any], bool]

    def problem(self, value: Any) -> str | None:
        return None if self.ok(value) else f"must be {self.text}"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def at_least(low: float) -> Allowed:
    return Allowed(f">= {low:g}", lambda v: _number(v) and v >= low)


def above(low: float) -> Allowed:
    return Allowed(f"> {low:g}", lambda v: _number(v) and v > low)


def between(low: float, high: float) -> Allowed:
    return Allowed(f"{low:g} to {high:g}", lambda v: _number(v) and low <= v <= high)


def _http_url(value: Any) -> bool:
    parts = urlsplit(str(value))
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _counts(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and k and isinstance(n, int) and not isinstance(n, bool) and n >= 0
        for k, n in value.items()
    )


HTTP_URL = Allowed("an http(s) URL", _http_url)
NO_URL_OR_HTTP_URL = Allowed("empty, or an http(s) URL", lambda v: not str(v) or _http_url(v))
NOT_EMPTY = Allowed("not empty", lambda v: bool(str(v).strip()))
ANY_TEXT = Allowed("any text", lambda v: True)
COUNTS = Allowed("check names mapped to counts >= 0", _counts)
ONE_OF_WARN_FAIL = Allowed("warn or fail", lambda v: v in ("warn", "fail"))


class _Checked:
    """A luigi parameter that also declares what it accepts and the environment variable that
    overrides it (read by the option's own code; named here so a message can say so)."""

    def __init__(self, *args: Any, allowed: Allowed, env: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.allowed, self.env = allowed, env


class Text(_Checked, luigi.Parameter):
    pass


class Int(_Checked, luigi.IntParameter):
    pass


class Float(_Checked, luigi.FloatParameter):
    pass


class Dict(_Checked, luigi.DictParameter):
    pass


class api(luigi.Config):
    """How to talk to the DummyJSON-compatible API."""

    base_url = Text(
        default="https://dummyjson.com",
        allowed=HTTP_URL,
        env="PIPELINE_API_URL",
        description="API root; the PIPELINE_API_URL environment variable overrides it.",
    )
    page_size = Int(
        default=1000,
        allowed=at_least(1),
        description="Records asked for per request (the `limit` query parameter).",
    )
    concurrency = Int(
        default=4,
        allowed=between(1, 64),
        description="Pages fetched at once after the first page has given `total`.",
    )
    connect_timeout = Float(
        default=5.0,
        allowed=above(0),
        description="Seconds to wait for a TCP connection.",
    )
    read_timeout = Float(
        default=15.0,
        allowed=above(0),
        description="Seconds to wait for the server between bytes of a response.",
    )
    retries = Int(
        default=4,
        allowed=between(0, 20),
        description="Retries per request on 429, 5xx, dropped or cut-short responses.",
    )
    dns_retries = Int(
        default=1,
        allowed=between(0, 20),
        description="Retries when the API's host name does not resolve (offline, DNS down): one "
        "covers a resolver's hiccup; more only delay the message. At most `retries`.",
    )
    refused_retries = Int(
        default=2,
        allowed=between(0, 20),
        description="Retries when the API's host refuses the connection (a server restarting "
        "takes a second or two; one that is down stays down). At most `retries`.",
    )
    backoff_factor = Float(
        default=0.5,
        allowed=at_least(0),
        description="Exponential backoff base in seconds: 0.5, 1, 2, 4 ...",
    )
    backoff_max = Float(
        default=10.0,
        allowed=at_least(0),
        description="Upper bound of one backoff sleep, Retry-After included.",
    )
    rate_limit_requests = Int(
        default=90,
        allowed=at_least(1),
        description="Client-side cap on requests per window for the whole run (the real API "
        "allows 100 per 10 s); above 100000 there is no cap (a local server).",
    )
    rate_limit_window = Float(
        default=10.0,
        allowed=above(0),
        description="Length in seconds of the rate-limit window.",
    )
    max_pages = Int(
        default=10000,
        allowed=at_least(1),
        description="Guard against endless paging: fail beyond this many pages.",
    )

    def give_up_seconds(self) -> float:
        """Longest one request can take before it fails for good, when the server stalls.

        Every attempt may wait ``connect_timeout`` to connect plus ``read_timeout`` for a first
        byte, and the retries sleep ``backoff_factor * 2**i`` seconds, each at most
        ``backoff_max`` (a 429's ``Retry-After`` is capped the same way). Once one endpoint has
        given up like this the circuit breaker fails the other extracts at once, so this bounds
        the time a stalled API can hold a run (docs/failures.md).
        """
        attempts = self.retries + 1
        sleeps = sum(min(self.backoff_factor * 2**i, self.backoff_max) for i in range(self.retries))
        return attempts * (self.connect_timeout + self.read_timeout) + sleeps

    def client_settings(self) -> ClientSettings:
        from pipeline.api.client import ClientSettings

        return ClientSettings(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries=self.retries,
            dns_retries=self.dns_retries,
            refused_retries=self.refused_retries,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            rate_limit_requests=self.rate_limit_requests,
            rate_limit_window=self.rate_limit_window,
            pool_size=self.concurrency,
        )

    def url(self) -> str:
        """The base URL, environment first, validated so only http(s) is ever contacted."""
        url = os.environ.get("PIPELINE_API_URL") or str(self.base_url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"API base URL must be an http(s) URL, got {url!r}")
        return url.rstrip("/")


class extract(luigi.Config):
    """How extraction copes with an inconsistent read. (What it keeps is ``pipeline.schema``.)"""

    rereads = Int(
        default=1,
        allowed=between(0, 10),
        description="Times an endpoint is read again from its first page after a paging anomaly "
        "(total changed, record on two pages, short or empty page), a malformed envelope or a "
        "record breaking the contract, before the extract fails. 0: fail at once.",
    )


class clean(luigi.Config):
    """Business rules of the cleaning stage."""

    min_product_price = Float(
        default=50.0,
        allowed=at_least(0),
        description="cleaned_products.csv keeps products priced strictly above this (dollars).",
    )


class paths(luigi.Config):
    """Where data lives."""

    data_dir = Text(
        default="data",
        allowed=NOT_EMPTY,
        env="PIPELINE_DATA_DIR",
        description="Data root; a relative path is from the checkout (like luigi.cfg), whatever "
        "the working directory. The PIPELINE_DATA_DIR environment variable overrides it; a "
        "relative path there is from the working directory.",
    )

    def root(self) -> Location:
        """A local folder (absolute ``Path``) or an ``s3://bucket/prefix`` (``ObjectPath``).

        Raises ConfigError for any other scheme: ``gs://b/p`` must not become a folder ``gs:``.
        """
        env = os.environ.get("PIPELINE_DATA_DIR")
        try:
            if env:
                return parse_root(env)
            root = parse_root(str(self.data_dir))
        except DataRootError as exc:
            where = "PIPELINE_DATA_DIR" if env else "[paths] data_dir"
            raise ConfigError(f"{where}: {exc}") from None
        if isinstance(root, Path) and not Path(str(self.data_dir)).is_absolute():
            return CHECKOUT / str(self.data_dir)  # relative to the checkout, like luigi.cfg
        return root


class quality(luigi.Config):
    """Thresholds of the quality gates; 0 is strict (any offending row fails the run)."""

    max_bad_rows = Dict(
        default={},
        allowed=COUNTS,
        description='Per-check tolerance, e.g. {"line_product_exists": 5}; unnamed checks: 0.',
    )
    # Anomalies against past hours (pipeline/rules/anomalies.py, docs/checks.md).
    anomalies = Text(
        default="warn",
        allowed=ONE_OF_WARN_FAIL,
        description="What an anomaly against past hours does: warn (reported in the Checks "
        "section and the manifest, the hour is published) or fail (the run exits non-zero "
        "and publishes nothing for the hour).",
    )
    anomaly_window_hours = Int(
        default=24,
        allowed=between(3, 720),
        description="The hours before each hour whose figures form its expected band (only "
        "complete hours on record in the history count).",
    )
    anomaly_k = Float(
        default=3.5,
        allowed=between(0.5, 100),
        description="Width of the band in scaled MADs: median +/- k x 1.4826 x MAD, never "
        "narrower than 5 percent of the median or one unit of the figure.",
    )
    anomaly_min_hours = Int(
        default=12,
        allowed=between(3, 720),
        description="Complete hours the window must hold before a figure gets a verdict; with "
        "fewer, its check says no verdict. More than anomaly_window_hours: never a verdict.",
    )


class housekeeping(luigi.Config):
    """How long outputs are kept."""

    retention_hours = Int(
        default=168,
        allowed=at_least(1),
        description="Keep this many hourly partitions (a week): the current hour and the ones "
        "before it. Older partitions and run logs are deleted after each successful run, except "
        "the one `latest` points to and any partition a run holds the lock of.",
    )


class run(luigi.Config):
    """How a run treats its hour and the console."""

    clock_skew_minutes = Int(
        default=5,
        allowed=between(0, 59),
        description="A --date-hour up to this many minutes ahead of this machine's UTC clock is "
        "accepted (a scheduler on another host may run ahead); later hours are refused, and "
        "`latest` never moves past the current hour plus this.",
    )
    progress_seconds = Float(
        default=10.0,
        allowed=between(0.1, 3600),
        description="Seconds between progress lines on the console while a task runs (records, "
        "pages, rate and time left for an extract); a task done sooner prints none.",
    )

    def last_hour(self, now: datetime | None = None) -> datetime:
        """The latest hour a run may write or publish: the current UTC hour, give or take the
        allowed clock skew (naive UTC, like ``--date-hour``)."""
        now = clock.now() if now is None else now.astimezone(UTC)
        ahead = now + timedelta(minutes=self.clock_skew_minutes)
        return ahead.replace(tzinfo=None, minute=0, second=0, microsecond=0)


# --- object-store data root --------------------------------------------------------------------


class storage(luigi.Config):
    """How an object-store data root (``PIPELINE_DATA_DIR=s3://bucket/prefix``) is used.

    Endpoint, region and credentials are not here: boto3 reads them from the standard AWS
    settings (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID ..., AWS_PROFILE, ~/.aws/*).
    """

    retries = Int(
        default=8,
        allowed=between(0, 20),
        description="Retries per object-store request on 5xx, 503 SlowDown, throttling and "
        "connection errors (botocore's standard mode: jittered backoff, at most 20 s each).",
    )
    connect_timeout = Float(
        default=5.0,
        allowed=above(0),
        description="Seconds to wait for a connection to the object store.",
    )
    read_timeout = Float(
        default=30.0,
        allowed=above(0),
        description="Seconds to wait for the object store between bytes.",
    )
    multipart_threshold_mb = Int(
        default=8,
        allowed=between(5, 5000),
        description="Objects of this many MiB or more are uploaded in parts (one multipart "
        "upload, visible only once complete) and downloaded with ranged GETs.",
    )
    multipart_chunk_mb = Int(
        default=8, allowed=between(5, 5000), description="Size of one part in MiB (S3: 5 or more)."
    )
    transfer_concurrency = Int(
        default=4,
        allowed=between(1, 64),
        description="Parts in flight per upload or download: at most this times "
        "multipart_chunk_mb MiB of buffers.",
    )
    lease_seconds = Int(
        default=120,
        allowed=at_least(1),
        description="An hour's claim object (and a report's, while it is re-rendered) lasts "
        "this long unless renewed (every quarter of it while the claiming run lives); a claim "
        "left by a dead run expires after it.",
    )


# --- the hourly report and the history across hours ---------------------------------------------


class report(luigi.Config):
    """What the hourly report (``P/report/index.html``, ``findings.md``) shows."""

    top_customers = Int(
        default=10,
        allowed=between(1, 100),
        description="Customers in the report's top-customers chart and table.",
    )
    top_cities = Int(
        default=15,
        allowed=between(1, 100),
        description="Cities drawn in the revenue-by-city chart; the others are summed as one bar.",
    )
    trend_days = Int(
        default=7,
        allowed=between(1, 366),
        description="Days of history the report's trend charts cover, ending with its hour.",
    )


class history(luigi.Config):
    """The history dataset across hours, ``<data root>/history/date_hour=<hour>/``."""

    retention_days = Int(
        default=90,
        allowed=at_least(1),
        description="Days of hourly history rows kept; older hours are deleted after each run. "
        "Independent of [housekeeping] retention_hours, which applies to the partitions.",
    )


class monitoring(luigi.Config):
    """When ``python -m pipeline status`` calls the data stale (monitoring-plugins exit codes)."""

    days = Int(
        default=7,
        allowed=between(1, 366),
        description="Days of hours `status` looks at for missing and failed ones, ending with "
        "the current hour.",
    )
    warn_after_hours = Int(
        default=2,
        allowed=at_least(1),
        description="`status` says WARNING (exit 1) once the newest complete hour is this many "
        "hours behind the current one (1 is normal: the current hour runs a few minutes in).",
    )
    critical_after_hours = Int(
        default=6,
        allowed=at_least(1),
        description="`status` says CRITICAL (exit 2) once the newest complete hour is this many "
        "hours behind the current one, or when there is none.",
    )


class metrics(luigi.Config):
    """Where each run's Prometheus metrics go (docs/metrics.md; written by ``pipeline.metrics``)."""

    directory = Text(
        default="",
        allowed=ANY_TEXT,
        description="Folder of etl_pipeline.prom, replaced after every run (node_exporter's "
        "textfile collector reads it). Empty: the host's run-log folder (the data root's logs/, "
        "or $PIPELINE_LOG_DIR with an s3:// data root).",
    )
    pushgateway_url = Text(
        default="",
        allowed=NO_URL_OR_HTTP_URL,
        description="Also push the metrics to this Prometheus Pushgateway (job etl_pipeline, "
        "instance = this host's name) after every run; a failed push is a warning. Empty: none.",
    )


#: Every section of the pipeline's own settings, in the order docs/settings.md lists them.
SECTIONS: tuple[type[luigi.Config], ...] = (
    api, extract, clean, paths, quality, housekeeping, run, storage, report, history, monitoring,
    metrics,
)  # fmt: skip
