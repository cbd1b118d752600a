"""The emulator's domain values: users, groups, memberships, tokens, and SonarQube's error answer."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

ADMIN_PERMISSION = "admin"
# The global permissions of a Community/Developer edition (no portfolio or application creators).
GLOBAL_PERMISSIONS = ("admin", "gateadmin", "profileadmin", "provisioning", "scan")
SCAN_PERMISSION = "scan"

DEFAULT_GROUP = "sonar-users"
ADMIN_GROUP = "sonar-administrators"

SONARQUBE_PROVIDER = "sonarqube"
SAML_PROVIDER = "saml"


class EmulatorError(Exception):
    """An error answer: its HTTP status and one or more messages (v1 shows them all, v2 the first)."""

    def __init__(self, status: int, *messages: str) -> None:
        super().__init__(messages[0] if messages else "")
        self.status = status
        self.messages = messages


def bad_request(*messages: str) -> EmulatorError:
    return EmulatorError(400, *messages)


def not_found(message: str) -> EmulatorError:
    return EmulatorError(404, message)


def forbidden(message: str = "Insufficient privileges") -> EmulatorError:
    return EmulatorError(403, message)


class Unset(Enum):
    """Marks a field a change request does not mention (as opposed to one it sets to null)."""

    UNSET = "unset"


UNSET = Unset.UNSET


@dataclass(slots=True)
class User:
    """A SonarQube user row, active or deactivated."""

    uuid: str
    login: str
    name: str
    email: str | None = None
    active: bool = True
    local: bool = True
    external_provider: str = SONARQUBE_PROVIDER
    external_login: str = ""
    external_id: str = ""
    scm_accounts: tuple[str, ...] = ()
    password: str | None = None
    permissions: frozenset[str] = frozenset()
    last_connection: datetime | None = None
    sonarlint_last_connection: datetime | None = None  # the emulator has no SonarLint: always None


@dataclass(slots=True)
class Group:
    """A user group; `default` marks `sonar-users`, which every user belongs to."""

    uuid: str
    name: str
    description: str | None
    default: bool = False
    permissions: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Membership:
    """A user's membership of a group, with its own uuid as v2 exposes it."""

    uuid: str
    group_uuid: str
    user_uuid: str


@dataclass(frozen=True, slots=True)
class Token:
    """A user token; `value` is what clients send."""

    value: str
    name: str
    user_uuid: str
    type: str
    created_at: datetime
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewUser:
    """What a create request (v1 or v2) asks for; `local=False` means authenticated elsewhere."""

    login: str
    name: str
    email: str | None
    password: str | None
    scm_accounts: tuple[str, ...]
    local: bool


@dataclass(frozen=True, slots=True)
class UserChanges:
    """What an update asks for: UNSET leaves a field alone, None clears it (as v2 merge-patch can)."""

    login: str | Unset | None = UNSET
    name: str | Unset | None = UNSET
    email: str | Unset | None = UNSET
    password: str | Unset | None = UNSET
    scm_accounts: tuple[str, ...] | Unset | None = UNSET
    external_provider: str | Unset | None = UNSET
    external_login: str | Unset | None = UNSET
    external_id: str | Unset | None = UNSET

    @property
    def identity(self) -> tuple[str | Unset | None, str | Unset | None, str | Unset | None]:
        return self.external_provider, self.external_login, self.external_id
