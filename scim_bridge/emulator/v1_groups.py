"""v1 `api/user_groups/*` actions (docs/sonarqube.md SQ18-SQ20).

From 10.0 groups are addressed by name and the caller's permission is checked first. 9.9 also takes the group
uuid as `id` (exactly one of `id` and the name) and looks the group up before checking the permission.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scim_bridge.emulator import queries, views
from scim_bridge.emulator.model import UNSET, bad_request, not_found
from scim_bridge.emulator.v1 import json_response, no_content

if TYPE_CHECKING:
    from aiohttp import web

    from scim_bridge.emulator.model import Group, User
    from scim_bridge.emulator.v1 import V1Call, V1Handler
    from scim_bridge.emulator.views import Json

_ALL_FIELDS = ("name", "description", "membersCount", "managed")


def _by_name(call: V1Call, name: str, missing: str) -> Group:
    group = call.directory.group_by_name(name)
    if group is None:
        raise not_found(missing.format(name))
    return group


def _by_uuid(call: V1Call, uuid: str, missing: str) -> Group:
    group = call.directory.groups.get(uuid)
    if group is None:
        raise not_found(missing.format(uuid))
    return group


def _group_with_permission(call: V1Call) -> Group:
    """The group of add_user, remove_user, delete and users, permission checked in the version's order."""
    if call.profile.group_lookup_before_permission:
        group = _named_group(call)
        call.require_admin()
        return group
    call.require_admin()
    return _named_group(call)


def _named_group(call: V1Call) -> Group:
    """The group given by `name` (9.9: or by `id`, exactly one of the two)."""
    if not call.profile.group_ids_in_v1:
        return _by_name(call, call.mandatory("name"), "No group with name '{}'")
    group_id, name = call.param("id"), call.param("name")
    if group_id is not None and name is None:
        return _by_uuid(call, group_id, "No group with id '{}'")
    if name is not None and group_id is None:
        return _by_name(call, name, "No group with name '{}'")
    if group_id is not None:
        raise bad_request("Either group id or group name must be set")
    raise bad_request("Group name or group id must be provided")


def create(call: V1Call) -> web.Response:
    call.require_admin()
    name = call.mandatory("name")
    description = call.param("description")
    group = call.directory.create_group(name, description)
    return json_response({"group": views.v1_group(call.directory, group)})


def update(call: V1Call) -> web.Response:
    if call.profile.group_lookup_before_permission:
        group = _group_to_update(call)
        call.require_admin()
    else:
        call.require_admin()
        group = _group_to_update(call)
    name = call.param("name")
    description = call.param("description")
    call.directory.update_group(group, name=name, description=UNSET if description is None else description)
    return json_response({"group": views.v1_group(call.directory, group)})


def _group_to_update(call: V1Call) -> Group:
    if not call.profile.group_ids_in_v1:
        return _by_name(call, call.mandatory("currentName"), "Could not find a user group with name '{}'.")
    return _legacy_group_to_update(call)


def _legacy_group_to_update(call: V1Call) -> Group:
    group_id, current = call.param("id"), call.param("currentName")
    if group_id is not None and current is None:
        return _by_uuid(call, group_id, "Could not find a user group with id '{}'.")
    if current is not None and group_id is None:
        return _by_name(call, current, "Could not find a user group with name '{}'.")
    raise bad_request("Need to specify one and only one of 'id' or 'currentName'")


def delete(call: V1Call) -> web.Response:
    group = _group_with_permission(call)
    call.directory.delete_group(group)
    return no_content()


def add_user(call: V1Call) -> web.Response:
    group = _group_with_permission(call)
    login = call.mandatory("login")
    user = call.directory.user_by_login(login)
    if user is None or (not user.active and not call.profile.add_user_deactivated_by_uuid):
        raise not_found(f"Could not find a user with login '{login}'")
    if not user.active:
        raise not_found(f"User '{user.uuid}' not found")
    call.directory.add_member(group, user)
    return no_content()


def remove_user(call: V1Call) -> web.Response:
    group = _group_with_permission(call)
    login = call.mandatory("login")
    user = call.directory.active_user_by_login(login)
    if user is None:
        raise not_found(f"User with login '{login}' is not found'")
    call.directory.remove_member(group, user)
    return no_content()


def search(call: V1Call) -> web.Response:
    call.require_admin()
    query = call.param("q")
    page_index = call.mandatory_int("p")
    page_size = call.mandatory_int("ps")
    fields = call.strings("f") or _ALL_FIELDS
    if call.profile.managed_fields and call.param("managed") is not None:
        raise bad_request("The 'managed' parameter is only available for managed instances.")
    found = sorted(
        (
            group
            for group in call.directory.groups.values()
            if query is None or queries.contains(group.name, query)
        ),
        key=lambda group: group.name,
    )
    return json_response(
        {
            "paging": views.paging(page_index, page_size, len(found)),
            "groups": [
                _searched_group(call, group, fields) for group in queries.page(found, page_index, page_size)
            ],
        }
    )


def _searched_group(call: V1Call, group: Group, fields: tuple[str, ...] | list[str]) -> Json:
    listed = views.v1_group(call.directory, group, with_id=call.profile.group_ids_in_v1)
    shown: Json = {key: value for key, value in listed.items() if key in {"id", "default", *fields}}
    if call.profile.managed_fields and "managed" in fields:
        shown["managed"] = False
    return shown


def users(call: V1Call) -> web.Response:
    group = _group_with_permission(call)
    selection = call.param("selected")
    query = call.param("q")
    page_index = call.mandatory_int("p")
    page_size = call.mandatory_int("ps")
    candidates = sorted(
        (user for user in call.directory.users.values() if user.active and _member_matches(user, query)),
        key=lambda user: (user.name, user.login),
    )
    shown = [
        (user, member)
        for user in candidates
        if (member := call.directory.is_member(group, user)) == (selection == "selected")
        or selection == "all"
    ]
    listed = queries.page(shown, page_index, page_size)
    managed = {"managed": False} if call.profile.managed_fields else {}
    return json_response(
        {
            "users": [
                {"login": u.login, "name": u.name, "selected": member, **managed} for u, member in listed
            ],
            "p": page_index,
            "ps": page_size,
            "total": len(shown),
            "paging": views.paging(page_index, page_size, len(shown)),
        }
    )


def _member_matches(user: User, query: str | None) -> bool:
    """`q` matches the name ignoring case, or the login or e-mail as written."""
    if query is None:
        return True
    return queries.contains(user.name, query) or query in user.login or query in (user.email or "")


HANDLERS: dict[str, V1Handler] = {
    "api/user_groups/create": create,
    "api/user_groups/update": update,
    "api/user_groups/delete": delete,
    "api/user_groups/add_user": add_user,
    "api/user_groups/remove_user": remove_user,
    "api/user_groups/search": search,
    "api/user_groups/users": users,
}
