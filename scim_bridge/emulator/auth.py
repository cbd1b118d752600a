"""Who is calling: SonarQube's credential handling for `/api/**` (docs/sonarqube.md SQ4).

Tokens work as Basic `<token>:` everywhere and as `Bearer <token>` from 10.0 on; Basic `<login>:<password>`
works for local users. Credentials that are sent but do not authenticate are a failure (401 with an empty
body), except on the URLs SonarQube exempts from its session check.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scim_bridge.emulator.model import Token, User
    from scim_bridge.emulator.state import Directory

# Reachable without a session even though authentication is forced (UserSessionInitializer).
EXEMPT_PATHS = frozenset(
    {
        "/api/authentication/login",
        "/api/authentication/logout",
        "/api/authentication/validate",
        "/api/l10n/index",
        "/api/project_badges/measure",
        "/api/project_badges/quality_gate",
        "/api/server/version",
        "/api/settings/login_message",
        "/api/system/db_migration_status",
        "/api/system/migrate_db",
        "/api/system/status",
        "/api/users/identity_providers",
    }
)


@dataclass(frozen=True, slots=True)
class Authentication:
    """The outcome of reading one request's credentials."""

    user: User | None = None  # None: no credentials, or credentials that do not authenticate
    token: Token | None = None


_NOBODY = Authentication()


def authenticate(header: str | None, directory: Directory) -> Authentication:
    """Read an `Authorization` header; schemes SonarQube does not know count as no credentials."""
    if not header:
        return _NOBODY
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() == "basic":
        outcome = _basic(credentials.strip(), directory)
    elif scheme.lower() == "bearer" and directory.profile.bearer_tokens:
        outcome = _token(credentials.strip(), directory)
    else:
        return _NOBODY
    if outcome.user is not None:
        directory.record_connection(outcome.user)
    return outcome


def _basic(credentials: str, directory: Directory) -> Authentication:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return _NOBODY
    login, colon, password = decoded.partition(":")
    if not colon:
        return _NOBODY
    if not password:  # an empty password means the user name is a token
        return _token(login, directory)
    user = directory.active_user_by_login(login)
    if user is None or not user.local or user.password is None or user.password != password:
        return _NOBODY
    return Authentication(user=user)


def _token(value: str, directory: Directory) -> Authentication:
    found = directory.token_user(value)
    if found is None:
        return _NOBODY
    token, user = found
    return Authentication(user=user, token=token)
