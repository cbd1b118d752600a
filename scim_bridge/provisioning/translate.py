"""The boundary between SonarQube's error tree and SCIM's: every SonarQube failure a SCIM client sees is
one of these translations, with a detail that names the SCIM attribute and SonarQube's own reason."""

from __future__ import annotations

import math
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Final

import structlog

from scim_bridge import sonarqube
from scim_bridge.scim.errors import (
    ForbiddenError,
    InvalidValueError,
    MutabilityError,
    NotFoundError,
    ScimError,
    ServiceUnavailableError,
    UnauthorizedError,
    UniquenessError,
)
from scim_bridge.sonarqube.connection import STATUS_ENDPOINT

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

log = structlog.get_logger("scim_bridge.provisioning")

# Without a Retry-After from SonarQube, ask Entra to come back after a short while; Entra retries escrowed
# operations on its own schedule anyway.
DEFAULT_RETRY_AFTER: Final = 30

# Every write the bridge makes is safe to repeat, and a record not settled is completed by the next request.
_SAFE_TO_REPEAT: Final = "repeating this request is safe and completes whatever it started"

# SonarQube parameter or field → the SCIM attribute it came from.
_ATTRIBUTES: Final = {
    "login": "userName",
    "newLogin": "userName",
    "name": "displayName",
    "email": "emails",
    "newExternalIdentity": "userName",
    "externalLogin": "userName",
}


def scim_error(exc: sonarqube.SonarQubeError) -> ScimError:
    """The SCIM error for a SonarQube failure; raise it `from` the original."""
    reason = f"SonarQube refused: {exc.message}"
    match exc:
        case sonarqube.Unavailable():
            retry_after = max(1, math.ceil(exc.retry_after)) if exc.retry_after else DEFAULT_RETRY_AFTER
            return ServiceUnavailableError(_unavailable(exc), retry_after=retry_after)
        case sonarqube.Unauthorized():
            return UnauthorizedError(
                "SonarQube no longer accepts the token",
                challenge='Bearer realm="scim-bridge", error="invalid_token"',
            )
        case sonarqube.Forbidden():
            return ForbiddenError("the token's SonarQube user may not administer SonarQube")
        case sonarqube.AlreadyExists():
            return UniquenessError(reason)
        case sonarqube.InvalidValue():
            attribute = _ATTRIBUTES.get(exc.field or "", exc.field or "value")
            return InvalidValueError(f"{attribute}: {reason}")
        case sonarqube.Refused() | sonarqube.AlreadyMember():
            return MutabilityError(reason)
        case sonarqube.NotFound():
            return NotFoundError(reason)
        case _:
            # An answer the client did not understand: safe to replay, so ask for a retry. What it was goes
            # to the log (`provisioning.sonarqube_failed`), with the request id, not to the client.
            return ServiceUnavailableError(
                f"SonarQube answered in a way scim-bridge does not understand; {_SAFE_TO_REPEAT}",
                retry_after=DEFAULT_RETRY_AFTER,
            )


def _unavailable(exc: sonarqube.Unavailable) -> str:
    """What a SCIM client is told of an unavailable SonarQube: what is known, and never the endpoint or the
    HTTP library's names (those are in the log)."""
    if exc.endpoint == STATUS_ENDPOINT:  # refused before any call: the connection knows SonarQube is not UP
        return f"{exc.message}; SonarQube was not changed, retry later"
    why = (
        f"it answered HTTP {exc.status}"
        if exc.status
        else "it could not be reached or did not answer in time"
    )
    return f"SonarQube is unavailable ({why}); {_SAFE_TO_REPEAT}"


@asynccontextmanager
async def sonar_errors(*, gone_is_done: bool = False) -> AsyncIterator[None]:
    """Translate SonarQube failures inside the block into SCIM errors. With `gone_is_done`, SonarQube's
    "not found" ends the block quietly: for a deactivation or deletion, already gone is what was asked."""
    try:
        if gone_is_done:
            with suppress(sonarqube.NotFound):
                yield
        else:
            yield
    except sonarqube.SonarQubeError as exc:
        if isinstance(exc, sonarqube.Unavailable | sonarqube.UnexpectedResponse):
            log.warning(
                "provisioning.sonarqube_failed", endpoint=exc.endpoint, status=exc.status, reason=exc.message
            )
        raise scim_error(exc) from exc
