"""What the store keeps about SCIM resources: plain frozen values, independent of any backend."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

ResourceType = Literal["User", "Group"]


def casefold_key(text: str) -> str:
    """The key under which a case-insensitive SCIM string (`userName`, `displayName`) is matched.

    Unicode canonical caseless matching (NFD, casefold, then NFC): `Straße` matches `STRASSE`, and a
    precomposed `é` matches `e` + combining accent. Changing this function needs a migration that
    recomputes the stored keys.
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


def _require_aware(**stamps: datetime) -> None:
    for name, stamp in stamps.items():
        if stamp.utcoffset() is None:
            raise ValueError(f"{name} must be a timezone-aware datetime")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceRecord:
    """What the store keeps of every SCIM resource: its ids, its SCIM JSON as accepted, and its meta."""

    resource_type: ClassVar[ResourceType]

    scim_id: str
    sonar_id: str | None  # SonarQube's uuid where the API dialect exposes one
    external_id: str | None
    attributes: Mapping[str, Any]  # the SCIM JSON without id, meta and group members, exactly as accepted
    created: datetime
    last_modified: datetime
    version: int

    def __post_init__(self) -> None:
        _require_aware(created=self.created, last_modified=self.last_modified)

    @property
    def sonar_key(self) -> str:
        """What names the resource in SonarQube, for people: a user's login, a group's name."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class UserRecord(ResourceRecord):
    """A SCIM user as the bridge last accepted it, and the SonarQube account it maps to."""

    resource_type: ClassVar[ResourceType] = "User"

    user_name: str
    sonar_login: str
    active: bool  # what Entra wants
    # Whether SonarQube has reached what this record asks for (active state, SAML link, memberships): False
    # between a change written here and the SonarQube calls that carry it out.
    settled: bool = True

    @property
    def sonar_key(self) -> str:
        return self.sonar_login


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupRecord(ResourceRecord):
    """A SCIM group as the bridge last accepted it (members are kept apart), and its SonarQube group."""

    resource_type: ClassVar[ResourceType] = "Group"

    display_name: str
    sonar_name: str

    @property
    def sonar_key(self) -> str:
        return self.sonar_name


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """One change made (or refused) through the bridge. `actor` is a login or a token hash, never a token."""

    at: datetime
    request_id: str | None
    actor: str | None
    action: str  # e.g. "user_created", "group_members_changed"
    resource_type: ResourceType
    scim_id: str
    sonar_key: str | None
    outcome: str
    detail: str | None = None

    def __post_init__(self) -> None:
        _require_aware(at=self.at)
