"""Every setting of the pipeline: its default and its description, declared once, here.

Each ``luigi.Config`` class is a section of ``luigi.cfg`` (section name = class name), and each
option can be set there or for one run on the command line (``--api-page-size 100``).
``luigi.cfg`` itself holds only luigi's own sections and deliberate overrides. Two settings may
also come from the environment because they differ per machine rather than per deployment:
``PIPELINE_API_URL`` and ``PIPELINE_DATA_DIR``; the environment wins over the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import luigi
import luigi.configuration

from pipeline.storage.fs import DataRootError, Location, parse_root

if TYPE_CHECKING:  # importing the HTTP stack is left to the tasks that talk to the API
    from pipeline.api.client import ClientSettings

#: The checkout: the project's luigi.cfg, config/ and the default data root live here.
CHECKOUT = Path(__file__).resolve().parents[1]
PROJECT_CONFIG = CHECKOUT / "luigi.cfg"


class ConfigError(ValueError):
    """A setting is unusable; raised before any request is made or file written."""


class api(luigi.Config):
    """How to talk to the DummyJSON-compatible API."""

    base_url = luigi.Parameter(
        default="https://dummyjson.com",
        description="API root; the PIPELINE_API_URL environment variable overrides it.",
    )
    page_size = luigi.IntParameter(
        default=1000, description="Records asked for per request (the `limit` query parameter)."
    )
    concurrency = luigi.IntParameter(
        default=4, description="Pages fetched at once after the first page has given `total`."
    )
    connect_timeout = luigi.FloatParameter(
        default=5.0, description="Seconds to wait for a TCP connection."
    )
    read_timeout = luigi.FloatParameter(
        default=15.0, description="Seconds to wait for the server between bytes of a response."
    )
    retries = luigi.IntParameter(
        default=4, description="Retries per request on 429, 5xx, dropped or cut-short responses."
    )
    backoff_factor = luigi.FloatParameter(
        default=0.5, description="Exponential backoff base in seconds: 0.5, 1, 2, 4 ..."
    )
    backoff_max = luigi.FloatParameter(
        default=10.0, description="Upper bound of one backoff sleep, Retry-After included."
    )
    rate_limit_requests = luigi.IntParameter(
        default=90,
        description="Client-side cap on requests per window for the whole run (the real API "
        "allows 100 per 10 s); above 100000 there is no cap (a local server).",
    )
    rate_limit_window = luigi.FloatParameter(
        default=10.0, description="Length in seconds of the rate-limit window."
    )
    max_pages = luigi.IntParameter(
        default=10000, description="Guard against endless paging: fail beyond this many pages."
    )

    def give_up_seconds(self) -> float:
        """Longest one request can take before it fails for good, when the server stalls.

        Every attempt may wait ``connect_timeout`` to connect plus ``read_timeout`` for a first
        byte, and the retries sleep ``backoff_factor * 2**i`` seconds, each at most
        ``backoff_max`` (a 429's ``Retry-After`` is capped the same way). Once one endpoint has
        given up like this the circuit breaker fails the other extracts at once, so this bounds
        the time a stalled API can hold a run (README, "Failure behaviour").
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

    rereads = luigi.IntParameter(
        default=1,
        description="Times an endpoint is read again from its first page after a paging anomaly "
        "(total changed, record on two pages, short or empty page), a malformed envelope or a "
        "record breaking the contract, before the extract fails. 0: fail at once.",
    )


class clean(luigi.Config):
    """Business rules of the cleaning stage."""

    min_product_price = luigi.FloatParameter(
        default=50.0,
        description="cleaned_products.csv keeps products priced strictly above this (dollars).",
    )


class paths(luigi.Config):
    """Where data lives."""

    data_dir = luigi.Parameter(
        default="data",
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

    max_bad_rows = luigi.DictParameter(
        default={},
        description='Per-check tolerance, e.g. {"line_product_exists": 5}; unnamed checks: 0.',
    )


class housekeeping(luigi.Config):
    """How long outputs are kept."""

    retention_hours = luigi.IntParameter(
        default=168,
        description="Keep this many hourly partitions (a week): the current hour and the ones "
        "before it. Older partitions and run logs are deleted after each successful run, except "
        "the one `latest` points to and any partition a run holds the lock of.",
    )


def use_project_config() -> bool:
    """Make luigi read the checkout's ``luigi.cfg`` when it finds no configuration of its own.

    luigi reads ``luigi.cfg`` (and ``client.cfg``) from the working directory, ``/etc/luigi/``
    and ``LUIGI_CONFIG_PATH`` only, so ``luigi --module pipeline Insights`` started anywhere but
    the checkout would lose ``[retcode]`` (a failed run exiting 0) and the logging setup. luigi
    imports ``--module`` before it reads ``[retcode]``, sets up logging or makes any task, so
    calling this from ``pipeline/__init__.py`` is early enough. A relative ``[core]
    logging_conf_file`` is made absolute against the checkout, since luigi would resolve it
    against the cwd. Returns whether the project's file was added.
    """
    if os.environ.get("LUIGI_CONFIG_PARSER", "cfg") != "cfg":
        return False  # a toml configuration was asked for; leave luigi to it
    parser = luigi.configuration.LuigiConfigParser
    # luigi's own search list (cwd-relative names included), LUIGI_CONFIG_PATH appended to it.
    if any(os.path.isfile(path) for path in parser._config_paths):
        return False
    luigi.configuration.add_config_path(str(PROJECT_CONFIG))
    config = luigi.configuration.get_config()
    logging_conf = config.get("core", "logging_conf_file", "")
    if logging_conf and not os.path.isabs(logging_conf):
        config.set("core", "logging_conf_file", str(CHECKOUT / logging_conf))
    return True


# --- object-store data root (issue 11) ------------------------------------------------------


class storage(luigi.Config):
    """How an object-store data root (``PIPELINE_DATA_DIR=s3://bucket/prefix``) is used.

    Endpoint, region and credentials are not here: boto3 reads them from the standard AWS
    settings (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID ..., AWS_PROFILE, ~/.aws/*).
    """

    retries = luigi.IntParameter(
        default=8,
        description="Retries per object-store request on 5xx, 503 SlowDown, throttling and "
        "connection errors (botocore's standard mode: jittered backoff, at most 20 s each).",
    )
    connect_timeout = luigi.FloatParameter(
        default=5.0, description="Seconds to wait for a connection to the object store."
    )
    read_timeout = luigi.FloatParameter(
        default=30.0, description="Seconds to wait for the object store between bytes."
    )
    multipart_threshold_mb = luigi.IntParameter(
        default=8,
        description="Objects of this many MiB or more are uploaded in parts (one multipart "
        "upload, visible only once complete) and downloaded with ranged GETs.",
    )
    multipart_chunk_mb = luigi.IntParameter(default=8, description="Size of one part in MiB.")
    transfer_concurrency = luigi.IntParameter(
        default=4,
        description="Parts in flight per upload or download: at most this times "
        "multipart_chunk_mb MiB of buffers.",
    )
    lease_seconds = luigi.IntParameter(
        default=120,
        description="An hour's claim object lasts this long unless renewed (every quarter of "
        "it while the claiming run lives); a claim left by a dead run expires after it.",
    )


# --- The hourly report and the history across hours (issue 9) -----------------------------------


class report(luigi.Config):
    """What the hourly report (``P/report/index.html``, ``findings.md``) shows."""

    top_customers = luigi.IntParameter(
        default=10, description="Customers in the report's top-customers chart and table."
    )
    top_cities = luigi.IntParameter(
        default=15,
        description="Cities drawn in the revenue-by-city chart; the others are summed as one bar.",
    )
    trend_days = luigi.IntParameter(
        default=7,
        description="Days of history the report's trend charts cover, ending with its hour.",
    )


class history(luigi.Config):
    """The history dataset across hours, ``<data root>/history/date_hour=<hour>/``."""

    retention_days = luigi.IntParameter(
        default=90,
        description="Days of hourly history rows kept; older hours are deleted after each run. "
        "Independent of [housekeeping] retention_hours, which applies to the partitions.",
    )
