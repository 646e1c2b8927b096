"""HTTP client: one ``requests.Session``, explicit timeouts, bounded retries, a rate limit.

Retries use tenacity around the *whole* page fetch (request, body, JSON parse) rather than
urllib3's ``Retry``: requests streams the body after urllib3's retry logic has finished, so a
connection dropped mid-body or a body cut short would escape it. One policy covers every
transient failure, and ``Retry-After`` from a 429/503 is honoured as the wait.

Not every failure is worth the same number of attempts: a host name that does not resolve
(offline, DNS down) gets ``dns_retries`` and a refused connection ``refused_retries`` (a server
restarting takes a second or two), both far fewer than ``retries``; docs/failures.md gives the
measured times.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

from pipeline.api import tally
from pipeline.api.errors import ApiError
from pipeline.api.limits import shared_limiter

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

RATE_LIMIT = "for the API's rate limit"


@dataclass(frozen=True)
class Wait:
    """A wait under way: until when (``time.monotonic``) and why, as the console words it."""

    until: float
    reason: str


def wait_reason(exc: BaseException | None) -> str:
    """Why the client waits before retrying after ``exc``, in words for the console."""
    if isinstance(exc, ApiError) and exc.status == 429:
        return f"{RATE_LIMIT} (it answered HTTP 429)"
    if isinstance(exc, ApiError) and exc.retry_after is not None:
        return f"as the API asked (HTTP {exc.status}, Retry-After)"
    return "before retrying a failed request"


@dataclass(frozen=True)
class ClientSettings:
    """How the client behaves; no defaults here: they are ``[api]``'s (``config.api``)."""

    connect_timeout: float
    read_timeout: float
    retries: int
    dns_retries: int
    refused_retries: int
    backoff_factor: float
    backoff_max: float
    rate_limit_requests: int
    rate_limit_window: float
    pool_size: int


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP-date; fall back to exponential backoff


class _WaitRetryAfterOrExponential:
    """Wait what the server asked for (capped), else exponential backoff."""

    def __init__(self, factor: float, cap: float):
        self._exp = wait_exponential(multiplier=factor, max=cap)
        self._cap = cap

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ApiError) and exc.retry_after is not None:
            return min(exc.retry_after, self._cap)
        return self._exp(state)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.retryable


class _StopAfter:
    """Stop when the failure's own budget is spent: ``dns_retries`` for a name that does not
    resolve, ``refused_retries`` for a refused connection (each at most ``retries``), else
    ``retries``."""

    def __init__(self, settings: ClientSettings):
        self.retries = settings.retries
        self.by_cause = {
            "dns": min(settings.dns_retries, settings.retries),
            "refused": min(settings.refused_retries, settings.retries),
        }

    def __call__(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        cause = exc.cause if isinstance(exc, ApiError) else ""
        return state.attempt_number > self.by_cause.get(cause, self.retries)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception behind it: causes, contexts, urllib3's ``reason``."""
    todo: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        todo.extend(arg for arg in current.args if isinstance(arg, BaseException))


def connection_failure(url: str, exc: BaseException) -> tuple[str, str]:
    """(cause, text) of a failed connection: ``dns`` when the host name does not resolve,
    ``refused`` when the host refuses, else ``connection`` (reset, dropped: worth the full
    retries). The text is short; requests' own message runs to 500 characters."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    for inner in _chain(exc):
        if isinstance(inner, socket.gaierror) or type(inner).__name__ == "NameResolutionError":
            return "dns", f"the name {host} does not resolve"
        if isinstance(inner, ConnectionRefusedError):
            port = parts.port or (443 if parts.scheme == "https" else 80)
            return "refused", f"{host}:{port} refused the connection"
    return "connection", f"{exc.__class__.__name__}: {exc}"


class ApiClient:
    """GETs JSON documents. Thread-safe: pages may be fetched from a thread pool."""

    def __init__(self, base_url: str, settings: ClientSettings):
        self.base_url = base_url.rstrip("/")
        self.settings = s = settings
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, s.pool_size), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = "etl-pipeline/0.1 (+luigi)"
        self.limiter = shared_limiter(s.rate_limit_requests, s.rate_limit_window)
        self.request_count = 0
        self.retry_count = 0
        self.throttled_count = 0  # answers with HTTP 429
        self._count_lock = threading.Lock()
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], None] = time.sleep
        self._waits: dict[int, Wait] = {}  # by thread: pages may be fetched side by side
        self._next_reason = threading.local()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def waiting(self) -> Wait | None:
        """The longest wait under way (the rate limit, a server's Retry-After, a backoff), or
        None while requests are being made: progress shows a wait as a wait."""
        waits = list(self._waits.values())
        return max(waits, key=lambda w: w.until) if waits else None

    def _wait(self, seconds: float, reason: str) -> None:
        thread = threading.get_ident()
        self._waits[thread] = Wait(self.clock() + seconds, reason)
        try:
            self.sleep(seconds)
        finally:
            self._waits.pop(thread, None)

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``base_url + path`` and parse the body, retrying transient failures."""
        s = self.settings
        retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            stop=_StopAfter(s),
            wait=_WaitRetryAfterOrExponential(s.backoff_factor, s.backoff_max),
            before_sleep=self._log_retry,
            sleep=lambda seconds: self._wait(seconds, self._next_reason.text),
            reraise=True,
        )
        try:
            return retrying(self._get_once, f"{self.base_url}{path}", params or {})
        except ApiError as exc:
            exc.attempts = retrying.statistics.get("attempt_number", 1)
            raise

    def endpoint(self, url: str) -> str:
        """The endpoint a URL of this API asks for (``.../carts?limit=1`` -> ``carts``)."""
        path = urlsplit(url).path.removeprefix(urlsplit(self.base_url).path)
        return path.strip("/").split("/", 1)[0] or "/"

    def _count(self, url: str, kind: str) -> None:
        with self._count_lock:
            if kind == "requests":
                self.request_count += 1
            elif kind == "retries":
                self.retry_count += 1
            else:
                self.throttled_count += 1
        tally.add(self.endpoint(url), kind)

    def _log_retry(self, state: RetryCallState) -> None:
        self._count(state.args[0] if state.args else self.base_url, "retries")
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        self._next_reason.text = wait_reason(exc)
        log.warning("attempt %d failed, retrying in %.1fs: %s", state.attempt_number, wait, exc)

    def _get_once(self, url: str, params: dict[str, Any]) -> Any:
        while wait := self.limiter.try_acquire():
            self._wait(wait, RATE_LIMIT)
        self._count(url, "requests")
        full = requests.Request("GET", url, params=params).prepare().url
        try:
            response = self.session.get(
                url,
                params=params,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                allow_redirects=True,
            )
            body = response.content  # reads the whole body: a cut-short one raises here
        except requests.Timeout as exc:
            raise ApiError(
                f"GET {full}: timed out ({exc.__class__.__name__})",
                retryable=True,
                cause="timeout",
            ) from None
        except requests.exceptions.SSLError as exc:
            # A certificate that does not verify will not verify on the next try either.
            raise ApiError(f"GET {full}: TLS failed ({exc})", cause="tls") from None
        except (
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            name = exc.__class__.__name__
            raise ApiError(
                f"GET {full}: body cut short ({name}: {exc})", retryable=True, cause="body"
            ) from None
        except (requests.ConnectionError, requests.exceptions.RetryError) as exc:
            cause, text = connection_failure(url, exc)
            raise ApiError(
                f"GET {full}: connection failed: {text}"
                if cause != "connection"
                else f"GET {full}: connection failed ({text})",
                retryable=True,
                cause=cause,
                detail=str(exc),
            ) from None
        except requests.RequestException as exc:  # invalid URL, redirect loop: a setup problem
            name = exc.__class__.__name__
            raise ApiError(f"GET {full}: request failed ({name}: {exc})", cause="request") from None
        if response.status_code == 429:
            self._count(url, "throttled")
        if response.status_code != 200:
            retryable = response.status_code in RETRY_STATUSES
            raise ApiError(
                f"GET {full}: HTTP {response.status_code} {response.reason}"
                f"{'' if retryable else ' (not retried)'}: {body[:200]!r}",
                retryable=retryable,
                retry_after=_retry_after(response),
                status=response.status_code,
            )
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            # A proxy's error page or a half-written body: worth one more try.
            raise ApiError(
                f"GET {full}: HTTP 200 but the body is not JSON ({exc}): {body[:80]!r}",
                retryable=True,
                cause="body",
                status=200,
            ) from None
