"""SCIM ↔ SonarQube mapping (docs/provisioning.md) as pure functions: what SonarQube gets from a SCIM
resource, and the SCIM resource the bridge returns from what its store and SonarQube hold. No I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from scim_bridge.scim.errors import InvalidValueError
from scim_bridge.scim.representation import Representation, meta
from scim_bridge.scim.resources import GROUP_SCHEMA, USER_SCHEMA, GroupResource, UserResource
from scim_bridge.scim.versions import weak_etag

if TYPE_CHECKING:
    from scim_bridge.sonarqube import SonarGroup, SonarUser
    from scim_bridge.store.records import GroupRecord, UserRecord

MAX_USER_NAME: Final = 200  # SonarQube's limit on a user's name
MAX_EMAIL: Final = 100
MAX_GROUP_NAME: Final = 255
RESERVED_GROUP = "anyone"  # SonarQube's virtual group; no real group may take the name in any case
# SonarQube validates e-mails as RFC 822 addresses; this catches what it would refuse before any call.
_EMAIL: Final = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+$")
_READ_ONLY: Final = ("id", "meta")


@dataclass(frozen=True, slots=True)
class SonarProfile:
    """What SonarQube holds of a SCIM user: its display name and e-mail."""

    name: str
    email: str | None


def sonar_profile(user: UserResource) -> SonarProfile:
    """Name: `displayName`, else `name.formatted`, else given and family name, else `userName`.
    E-mail: the primary one, else the `work` one, else the first. Both checked against SonarQube's rules."""
    name = _display_name(user)
    if len(name) > MAX_USER_NAME:
        raise InvalidValueError(
            f"displayName: SonarQube user names are at most {MAX_USER_NAME} characters (got {len(name)})"
        )
    email = _email(user)
    if email is not None:
        if len(email) > MAX_EMAIL:
            raise InvalidValueError(f"emails: SonarQube e-mails are at most {MAX_EMAIL} characters")
        if not _EMAIL.match(email):
            raise InvalidValueError(f"emails: {email!r} is not an e-mail address SonarQube accepts")
    return SonarProfile(name=name, email=email)


def _display_name(user: UserResource) -> str:
    if user.display_name and user.display_name.strip():
        return user.display_name.strip()
    if user.name is not None:
        if user.name.formatted and user.name.formatted.strip():
            return user.name.formatted.strip()
        parts = [part for part in (user.name.given_name, user.name.family_name) if part and part.strip()]
        if parts:
            return " ".join(part.strip() for part in parts)
    return str(user.user_name)


def _email(user: UserResource) -> str | None:
    emails = [email for email in user.emails or [] if email.value]
    chosen = (
        next((email for email in emails if email.primary), None)
        or next((email for email in emails if str(email.type or "").lower() == "work"), None)
        or (emails[0] if emails else None)
    )
    return None if chosen is None else str(chosen.value)


def check_group_name(name: str) -> str:
    """The SonarQube group name for a SCIM `displayName`, or a 400 naming SonarQube's rule."""
    stripped = name.strip()
    if not stripped:
        raise InvalidValueError("displayName: SonarQube group names cannot be blank")
    if len(stripped) > MAX_GROUP_NAME:
        raise InvalidValueError(f"displayName: SonarQube group names are at most {MAX_GROUP_NAME} characters")
    if stripped.casefold() == RESERVED_GROUP:
        raise InvalidValueError("displayName: 'Anyone' is reserved by SonarQube for its virtual group")
    return name


def stored_attributes(resource: UserResource | GroupResource) -> dict[str, Any]:
    """The SCIM JSON the store keeps: everything as accepted, without the read-only `id` and `meta`."""
    dumped: dict[str, Any] = resource.model_dump()
    for key in (*_READ_ONLY, "members"):
        dumped.pop(key, None)
    return dumped


def user_resource(record: UserRecord, *, active: bool | None = None) -> Representation[UserResource]:
    """The SCIM user the bridge returns: the attributes as Entra sent them; `active` as SonarQube has it,
    unless the client left it unassigned."""
    body: dict[str, Any] = {
        **record.attributes,
        "id": record.scim_id,
        "meta": meta("User", record.created, record.last_modified, weak_etag(record.version)),
    }
    if "active" in record.attributes:
        body["active"] = record.active if active is None else active
    return Representation(UserResource, body)


def group_resource(record: GroupRecord, members: list[str] | None) -> Representation[GroupResource]:
    """The SCIM group the bridge returns; `members` None leaves them out (`excludedAttributes=members`), and
    so does an empty list, as scim2-models writes a group without members."""
    body: dict[str, Any] = {
        **record.attributes,
        "id": record.scim_id,
        "displayName": record.display_name,
        "meta": meta("Group", record.created, record.last_modified, weak_etag(record.version)),
    }
    if members:
        body["members"] = [{"value": member} for member in sorted(members)]
    return Representation(GroupResource, body)


def adopted_user_attributes(user_name: str, sonar: SonarUser) -> dict[str, Any]:
    """The SCIM attributes of a SonarQube user adopted by a filter: what SonarQube knows of it."""
    attributes: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "displayName": sonar.name,
        "active": sonar.active,
    }
    if sonar.email:
        attributes["emails"] = [{"value": sonar.email, "type": "work", "primary": True}]
    return attributes


def adopted_group_attributes(group: SonarGroup) -> dict[str, Any]:
    return {"schemas": [GROUP_SCHEMA], "displayName": group.name}
