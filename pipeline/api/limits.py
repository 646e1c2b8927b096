"""What the run allows itself against the API: a shared rate limit and a circuit breaker.

Both live in memory made at import, before luigi forks its workers (``--workers N``), so every
process of a run draws on one request budget and learns at once that the API stopped answering.
"""

from __future__ import annotations

import math
import mmap
import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any

from pipeline.api.errors import ApiError


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
        requests: int | None,
        window: float | None,
        clock: Callable[[], float] = time.monotonic,
        *,
        shared: bool = False,
    ):
        """``requests``/``window`` may be None for a shared limiter that ``configure()`` sets."""
        self._clock = clock
        if shared:  # CLOCK_MONOTONIC is system-wide, so forked processes agree on the time
            ctx = multiprocessing.get_context("fork")
            self._ring: Any = ctx.RawArray("d", self.CAPACITY)
            self._state: Any = ctx.RawArray("d", 3)  # head, requests, window
            self._lock: Any = ctx.Lock()
        else:
            if requests is None or window is None:
                raise ValueError("an unshared rate limiter needs its limit when it is made")
            self._ring = [0.0] * requests
            self._state = [0.0, 0.0, 0.0]
            self._lock = threading.Lock()
        if requests is not None and window is not None:
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
        if not self.requests:
            raise RuntimeError("rate limiter used before configure() set its limit")
        with self._lock:
            now, head = self._clock(), int(self._state[0])
            wait = self._state[2] - (now - self._ring[head])
            if wait > 0:
                return wait
            self._ring[head] = now
            self._state[0] = (head + 1) % int(self._state[1])
            return 0.0


#: One budget for the whole run, made at import so luigi's forked workers (--workers N) share it;
#: its limit comes from [api] through shared_limiter().
_RUN_LIMITER = RateLimiter(None, None, shared=True)


def shared_limiter(requests: int, window: float) -> RateLimiter:
    """The run's limiter, set to ``requests`` per ``window``: all tasks and workers draw on it."""
    _RUN_LIMITER.configure(requests, window)
    return _RUN_LIMITER


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
        return exc.cause in ("timeout", "dns", "refused", "connection") or exc.status == 429

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
