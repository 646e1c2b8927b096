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
    ):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.cause = cause  # timeout | connection | status | body: callers pick a policy by it
        self.status = status


class PagingError(RuntimeError):
    """The pages of an endpoint do not add up to one consistent snapshot."""
