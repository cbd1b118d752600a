"""The boundary between SonarQube's error tree and SCIM's: every SonarQube failure a SCIM client sees is
one of these translations, with a detail that names the SCIM attribute and SonarQube's own reason."""

from __future__ import annotations

import math
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Final

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

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

# Without a Retry-After from SonarQube, ask Entra to come back after a short while; Entra retries escrowed
# operations on its own schedule anyway.
DEFAULT_RETRY_AFTER: Final = 30

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
            return ServiceUnavailableError(
                f"SonarQube is unavailable ({exc.message}); nothing was lost, retry later",
                retry_after=retry_after,
            )
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
            # An answer the client did not understand: safe to replay, so ask for a retry.
            return ServiceUnavailableError(
                f"SonarQube answered unexpectedly ({exc.message}); retry later",
                retry_after=DEFAULT_RETRY_AFTER,
            )


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
        raise scim_error(exc) from exc
