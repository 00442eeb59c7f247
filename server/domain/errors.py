"""Domain errors: what went wrong, in words a caller can act on.

Transports map these to their own wire form (HTTP status + JSON body); the
domain never knows about status codes.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class. `code` is a stable machine-readable string; `field` names
    the offending input where there is one."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """The caller sent something malformed or out of range."""

    code = "invalid"


class NotFound(DomainError):
    """The object does not exist *or the caller may not see it*: the two are
    deliberately indistinguishable (PROTOCOLS.md P7)."""

    code = "not_found"


class Forbidden(DomainError):
    """The caller can see the object but may not do this to it."""

    code = "forbidden"


class Unauthenticated(DomainError):
    """No valid credentials."""

    code = "unauthenticated"


class Conflict(DomainError):
    """The request clashes with the current state (duplicate identity,
    idempotency key reused with a different body, ...)."""

    code = "conflict"


class RateLimited(DomainError):
    """Too many attempts; `retry_after` is in whole seconds."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
