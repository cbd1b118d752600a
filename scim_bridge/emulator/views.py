"""How users and groups look in SonarQube's JSON answers, v1 and v2 (field order as SonarQube writes it;
docs/sonarqube.md SQ30).

v1 omits unset optional fields and always writes repeated ones (`[]`); v2 writes every field of its view,
absent values as `null`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from scim_bridge.emulator import rules

if TYPE_CHECKING:
    from datetime import datetime

    from scim_bridge.emulator.model import Group, Membership, User
    from scim_bridge.emulator.state import Directory

Json = dict[str, Any]
# What a caller may see of a user: everything (admin or the user themself), the basics, or login and name.
UserView = Literal["admin", "member", "anonymous"]


def format_datetime(value: datetime | None) -> str | None:
    """SonarQube's date-time format, e.g. `2025-01-01T10:00:00+0000`."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S%z")


def without_none(fields: Json) -> Json:
    """v1 writers skip unset optional fields."""
    return {key: value for key, value in fields.items() if value is not None}


def paging(page_index: int, page_size: int, total: int) -> Json:
    return {"pageIndex": page_index, "pageSize": page_size, "total": total}


def user_view(directory: Directory, caller: User | None, user: User) -> UserView:
    if caller is None:
        return "anonymous"
    if caller.uuid == user.uuid or directory.is_admin(caller):
        return "admin"
    return "member"


# --- v1 -----------------------------------------------------------------------------------------


def v1_created_user(user: User) -> Json:
    """`api/users/create` (protobuf `CreateWsResponse.User`)."""
    return without_none(
        {
            "login": user.login,
            "name": user.name,
            "email": user.email or None,
            "scmAccounts": list(user.scm_accounts),
            "active": user.active,
            "local": user.local,
        }
    )


def v1_written_user(user: User, *, groups: list[str] | None) -> Json:
    """`api/users/update` and `deactivate` (hand-written `UserJsonWriter`; `groups` only for admins)."""
    return without_none(
        {
            "login": user.login,
            "name": user.name,
            "email": user.email,
            "active": user.active,
            "local": user.local,
            "externalIdentity": user.external_login,
            "externalProvider": user.external_provider,
            "groups": groups,
            "scmAccounts": list(user.scm_accounts),
        }
    )


def v1_searched_user(directory: Directory, view: UserView, user: User) -> Json:
    """`api/users/search`: what each caller may see, in protobuf field order."""
    fields: Json = {"login": user.login, "name": user.name}
    if view == "anonymous":
        return fields
    private = view == "admin"
    groups = [group.name for group in directory.groups_of(user)]
    fields |= {
        "active": user.active,
        "email": user.email if private else None,
        "scmAccounts": list(user.scm_accounts) or None,
        "groups": (groups or None) if private else None,
        "tokensCount": len(directory.tokens_of(user)) if private else None,
        "local": user.local,
        "externalIdentity": user.external_login if private else None,
        "externalProvider": user.external_provider,
        "avatar": rules.avatar(user.email),
        "lastConnectionDate": format_datetime(user.last_connection) if private else None,
    }
    if directory.profile.managed_fields and private:
        fields |= {
            "managed": False,
            "sonarLintLastConnectionDate": format_datetime(user.sonarlint_last_connection),
        }
    return without_none(fields)


def v1_group(directory: Directory, group: Group, *, with_id: bool = True) -> Json:
    """`api/user_groups/create` and `update`: the group with its count of active members."""
    return without_none(
        {
            "id": group.uuid if with_id else None,
            "name": group.name,
            "description": group.description,
            "membersCount": sum(1 for user in directory.members_of(group) if user.active),
            "default": group.default,
        }
    )


# --- v2 -----------------------------------------------------------------------------------------


def v2_user(view: UserView, user: User) -> Json:
    """A v2 user as `UserRestResponseForAdmins`, `…ForLoggedInUsers` or `…ForAnonymousUsers`."""
    fields: Json = {"id": user.uuid, "login": user.login, "name": user.name}
    if view == "anonymous":
        return fields
    if view == "member":
        return fields | {
            "email": user.email,
            "active": user.active,
            "local": user.local,
            "externalProvider": user.external_provider,
            "avatar": rules.avatar(user.email),
        }
    return fields | {
        "email": user.email,
        "active": user.active,
        "local": user.local,
        "managed": False,
        "externalLogin": user.external_login,
        "externalProvider": user.external_provider,
        "externalId": user.external_id,
        "avatar": rules.avatar(user.email),
        "sonarQubeLastConnectionDate": format_datetime(user.last_connection),
        "sonarLintLastConnectionDate": format_datetime(user.sonarlint_last_connection),
        "scmAccounts": list(user.scm_accounts),
    }


def v2_group(group: Group) -> Json:
    return {
        "id": group.uuid,
        "name": group.name,
        "description": group.description,
        "managed": False,
        "default": group.default,
    }


def v2_membership(membership: Membership) -> Json:
    return {"id": membership.uuid, "groupId": membership.group_uuid, "userId": membership.user_uuid}
