"""This process's API requests, retries and HTTP 429 answers per endpoint, for the run's metrics.

Kept apart from the client so that the end of a run can read it without importing the HTTP
stack. A task run in a forked worker (``--workers`` > 1) counts in its own process: its
extract's stats file records the same figures (``tasks.extract``), which the metrics also read.
"""

from __future__ import annotations

import threading
from collections import Counter

#: What is counted: a request sent, a retry decided on, a 429 answer received.
KINDS = ("requests", "retries", "throttled")

_lock = threading.Lock()
_counts: dict[str, Counter[str]] = {}


def add(endpoint: str, kind: str) -> None:
    with _lock:
        _counts.setdefault(endpoint, Counter())[kind] += 1


def counts() -> dict[str, dict[str, int]]:
    """endpoint -> kind -> count, every kind present."""
    with _lock:
        return {e: {k: c[k] for k in KINDS} for e, c in _counts.items()}


def reset() -> None:
    with _lock:
        _counts.clear()
