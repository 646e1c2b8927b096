"""Configuration, read through ``luigi.Config`` classes so every option lives in ``luigi.cfg``.

Two settings may also come from the environment because they differ per machine rather than per
deployment: ``PIPELINE_API_URL`` and ``PIPELINE_DATA_DIR``. The environment wins over the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import luigi

from pipeline.api.client import ClientSettings

#: Fields removed from user records before anything touches disk; ``image`` because its URL
#: embeds the username (https://dummyjson.com/icon/<username>/128).
DEFAULT_SECRET_FIELDS = (
    "password,ssn,ein,bank,crypto,ip,macAddress,userAgent,email,phone,username,birthDate,image"
)


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
    """What extraction keeps."""

    secret_fields = luigi.Parameter(
        default=DEFAULT_SECRET_FIELDS,
        description="Comma-separated top-level user fields dropped before records are written.",
    )

    rereads = luigi.IntParameter(
        default=1,
        description="Times an endpoint is read again from its first page after a paging anomaly "
        "(total changed, record on two pages, short or empty page), a malformed envelope or a "
        "record breaking the contract, before the extract fails. 0: fail at once.",
    )

    def secrets(self) -> frozenset[str]:
        return frozenset(f.strip() for f in str(self.secret_fields).split(",") if f.strip())


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
        description="Data root; the PIPELINE_DATA_DIR environment variable overrides it.",
    )

    def root(self) -> Path:
        return Path(os.environ.get("PIPELINE_DATA_DIR") or str(self.data_dir)).absolute()


class quality(luigi.Config):
    """Thresholds of the quality gates; 0 is strict (any offending row fails the run)."""

    max_bad_rows = luigi.DictParameter(
        default={},
        description='Per-check tolerance, e.g. {"line_product_exists": 5}; unnamed checks: 0.',
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
