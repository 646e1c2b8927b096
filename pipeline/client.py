"""HTTP client: one ``requests.Session``, explicit timeouts, bounded retries, a rate limit.

Retries use tenacity around the *whole* page fetch (request, body, JSON parse) rather than
urllib3's ``Retry``: requests streams the body after urllib3's retry logic has finished, so a
connection dropped mid-body or a body cut short would escape it. One policy covers every
transient failure, and ``Retry-After`` from a 429/503 is honoured as the wait.
"""

from __future__ import annotations

import logging
import math
import mmap
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ApiError(RuntimeError):
    """A request failed for good; the message names the URL and the status or cause."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        cause: str = "status",
        status: int | None = None,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.cause = cause  # timeout | connection | status | body: callers pick a policy by it
        self.status = status


@dataclass(frozen=True)
class ClientSettings:
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    retries: int = 4
    backoff_factor: float = 0.5
    backoff_max: float = 10.0
    rate_limit_requests: int = 90
    rate_limit_window: float = 10.0
    pool_size: int = 4


class RateLimiter:
    """Sliding-window limiter: at most ``requests`` starts in any ``window`` seconds.

    Keeps us polite towards the real API (100 requests per 10 s) even with concurrent pages.
    The start times live in a ring whose oldest entry says when the next start is allowed.
    With ``shared=True`` (made before luigi forks its workers) ring and settings live in shared
    memory, so every process of a run draws on one budget.
    """

    CAPACITY = 100_000  # most starts per window a shared limiter can track

    def __init__(
        self,
        requests: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        shared: bool = False,
    ):
        self._clock = clock
        if shared:  # CLOCK_MONOTONIC is system-wide, so forked processes agree on the time
            ctx = multiprocessing.get_context("fork")
            self._ring: Any = ctx.RawArray("d", self.CAPACITY)
            self._state: Any = ctx.RawArray("d", 3)  # head, requests, window
            self._lock: Any = ctx.Lock()
        else:
            self._ring = [0.0] * requests
            self._state = [0.0, 0.0, 0.0]
            self._lock = threading.Lock()
        self.configure(requests, window)

    @property
    def requests(self) -> int:
        return int(self._state[1])

    @property
    def window(self) -> float:
        return self._state[2]

    def configure(self, requests: int, window: float) -> None:
        """Set the limit; a change (never within a run) starts an empty window.

        More requests per window than the ring can track means no limit at all (a local
        server in the benchmark), rather than an error.
        """
        if requests < 1 or window <= 0:
            raise ValueError(
                f"rate limit needs requests >= 1 and window > 0, got {requests}/{window}"
            )
        with self._lock:
            if (self.requests, self.window) != (requests, window):
                slots = min(requests, len(self._ring))
                self._ring[:slots] = [-math.inf] * slots
                self._state[:] = [0, requests, window]

    @property
    def unlimited(self) -> bool:
        return self.requests > len(self._ring)

    def try_acquire(self) -> float:
        """Take a start if the window allows one (return 0), else return seconds to wait."""
        if self.unlimited:
            return 0.0
        with self._lock:
            now, head = self._clock(), int(self._state[0])
            wait = self._state[2] - (now - self._ring[head])
            if wait > 0:
                return wait
            self._ring[head] = now
            self._state[0] = (head + 1) % int(self._state[1])
            return 0.0

    def acquire(self) -> None:
        while wait := self.try_acquire():
            time.sleep(wait)


#: One budget for the whole run, made at import so luigi's forked workers (--workers N) share it.
_RUN_LIMITER = RateLimiter(90, 10.0, shared=True)


def shared_limiter(requests: int, window: float) -> RateLimiter:
    """The run's limiter, set to ``requests`` per ``window``: all tasks and workers draw on it."""
    _RUN_LIMITER.configure(requests, window)
    return _RUN_LIMITER


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


class ApiClient:
    """GETs JSON documents. Thread-safe: pages may be fetched from a thread pool."""

    def __init__(self, base_url: str, settings: ClientSettings | None = None):
        self.base_url = base_url.rstrip("/")
        self.settings = s = settings or ClientSettings()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, s.pool_size), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = "etl-pipeline/0.1 (+luigi)"
        self.limiter = shared_limiter(s.rate_limit_requests, s.rate_limit_window)
        self.request_count = 0
        self._count_lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``base_url + path`` and parse the body, retrying transient failures."""
        s = self.settings
        retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(s.retries + 1),
            wait=_WaitRetryAfterOrExponential(s.backoff_factor, s.backoff_max),
            before_sleep=self._log_retry,
            reraise=True,
        )
        return retrying(self._get_once, f"{self.base_url}{path}", params or {})

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("attempt %d failed, retrying in %.1fs: %s", state.attempt_number, wait, exc)

    def _get_once(self, url: str, params: dict[str, Any]) -> Any:
        self.limiter.acquire()
        with self._count_lock:
            self.request_count += 1
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
            name = exc.__class__.__name__
            raise ApiError(
                f"GET {full}: connection failed ({name}: {exc})",
                retryable=True,
                cause="connection",
            ) from None
        except requests.RequestException as exc:  # invalid URL, redirect loop: a setup problem
            name = exc.__class__.__name__
            raise ApiError(f"GET {full}: request failed ({name}: {exc})", cause="request") from None
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


class CircuitBreaker:
    """Remembers for the rest of the run that the API stopped answering.

    Tasks run one at a time ([core] workers = 1), so without this a stalled API would cost each
    of the three extracts its whole retry budget (``api.give_up_seconds()``, 107.5 s with the
    defaults) one after the other. It opens on timeouts, connection failures and an exhausted
    429 (the server is not answering, or asks every client to stay away), not on a 5xx or a bad
    body from one endpoint: those fail within seconds and must not stop the other endpoints.
    The state is an anonymous shared mapping made at import, so luigi's forked workers
    (``--workers N``) see each other's trips; a new run starts closed.
    """

    _SIZE = 4096

    def __init__(self) -> None:
        self._mem = mmap.mmap(-1, self._SIZE)

    @staticmethod
    def opens_on(exc: ApiError) -> bool:
        return exc.cause in ("timeout", "connection") or exc.status == 429

    def trip(self, base_url: str, reason: str) -> None:
        if self.reason(base_url) is None:
            data = f"{base_url}\n{reason}".encode()[: self._SIZE - 4]
            self._mem[4 : 4 + len(data)] = data
            self._mem[:4] = len(data).to_bytes(4, "little")  # last: readers see all or nothing

    def reason(self, base_url: str) -> str | None:
        """Why the circuit to ``base_url`` is open, or None while it is closed."""
        size = int.from_bytes(self._mem[:4], "little")
        url, _, reason = self._mem[4 : 4 + size].decode(errors="replace").partition("\n")
        return reason if size and url == base_url else None

    def reset(self) -> None:
        self._mem[:4] = bytes(4)


#: One per process, made at import so forked luigi workers share it.
BREAKER = CircuitBreaker()
