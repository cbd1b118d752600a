"""The SonarQube-facing error tree. Every aiohttp, timeout or JSON error is translated into one of these
inside this package (`raise ... from exc`); callers above never see a foreign exception.

    SonarQubeError
    ├── NotFound              404: the user, group or membership does not exist
    ├── AlreadyExists         400 "… already exists" (v1 has no 409)
    ├── AlreadyMember         400 "… is already a member of group …" (10.4+)
    ├── InvalidValue          400: SonarQube refused a value; `field` names it where known
    ├── Refused               400: a SonarQube rule refused the operation (default group, last admin, …)
    ├── Unauthorized          401: the token is missing, unknown, expired or its user is deactivated
    ├── Forbidden             403: the token's user lacks "Administer System"
    ├── Unavailable           connection failures, timeouts, 429 and 502/503/504 once retries are spent
    └── UnexpectedResponse    anything else: a status or body this client does not understand
"""

# ruff: noqa: N818 - the design names these errors after the outcome (NotFound, Refused), not "…Error"

from __future__ import annotations


class SonarQubeError(Exception):
    """Base of every error raised by the SonarQube client."""

    def __init__(self, message: str, *, status: int | None = None, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.endpoint = endpoint
        # Set by the transport when this answer came to a re-sent request whose earlier attempt may have
        # been applied: a conflict ("already exists", "not found") may then be the echo of our own write.
        self.replayed = False


class NotFound(SonarQubeError):
    """The addressed user, group or membership does not exist (or is deactivated where SonarQube says so)."""


class AlreadyExists(SonarQubeError):
    """A user login, external identity or group name is already taken."""


class AlreadyMember(SonarQubeError):
    """The user already belongs to the group (SonarQube 10.4+ answers 400 instead of a no-op)."""


class InvalidValue(SonarQubeError):
    """SonarQube refused a value; `field` is the SonarQube parameter or attribute when it can be told."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status: int | None = 400,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message, status=status, endpoint=endpoint)
        self.field = field


class Refused(SonarQubeError):
    """A SonarQube rule refused the operation: default group, last administrator, self-deactivation, …"""


class Unauthorized(SonarQubeError):
    """The token is missing, unknown or expired, or its user is deactivated."""


class Forbidden(SonarQubeError):
    """The token's user may not administer SonarQube."""


class Unavailable(SonarQubeError):
    """SonarQube could not be reached or kept answering "try later" until the deadline."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message, status=status, endpoint=endpoint)
        self.retry_after = retry_after


class UnexpectedResponse(SonarQubeError):
    """SonarQube answered with a status or body this client does not understand."""
