"""Errors of the API layer, apart from the transport so callers can catch them cheaply."""

from __future__ import annotations


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
        detail: str = "",
        attempts: int = 1,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        # timeout | dns | refused | connection | status | body | tls | request | circuit:
        # callers pick a policy (retries, the circuit breaker, what to tell the operator) by it
        self.cause = cause
        self.status = status
        self.detail = detail  # the transport's own, longer message: for the run log
        self.attempts = attempts  # requests made before giving up


class PagingError(RuntimeError):
    """The pages of an endpoint do not add up to one consistent snapshot."""
