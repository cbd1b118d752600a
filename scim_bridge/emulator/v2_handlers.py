"""v2 endpoints: users, groups and group memberships (docs/sonarqube.md SQ8-SQ14, SQ18, SQ20)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scim_bridge.emulator import queries, rules, views
from scim_bridge.emulator.model import (
    UNSET,
    NewUser,
    Unset,
    UserChanges,
    bad_request,
    forbidden,
    not_found,
)
from scim_bridge.emulator.specs import specs_for
from scim_bridge.emulator.v2 import V2Action, V2Route, json_response, no_content, route

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from aiohttp import web

    from scim_bridge.emulator.model import Group, Membership, User
    from scim_bridge.emulator.profiles import Profile
    from scim_bridge.emulator.state import Directory
    from scim_bridge.emulator.v2 import V2Call, V2Handler

_USERS = "/api/v2/users-management/users"
_GROUPS = "/api/v2/authorizations/groups"
_MEMBERSHIPS = "/api/v2/authorizations/group-memberships"
_USER_DATE_FILTERS = (
    "sonarQubeLastConnectionDateFrom",
    "sonarQubeLastConnectionDateTo",
    "sonarLintLastConnectionDateFrom",
    "sonarLintLastConnectionDateTo",
)


def _user(directory: Directory, uuid: str) -> User:
    user = directory.users.get(uuid)
    if user is None:
        raise not_found(f"User '{uuid}' not found")
    return user


def _group(directory: Directory, uuid: str) -> Group:
    group = directory.groups.get(uuid)
    if group is None:
        raise not_found(f"Group '{uuid}' not found")
    return group


def _page(call: V2Call, items: Sequence[Any], render: Callable[[Any], views.Json], key: str) -> web.Response:
    """A v2 search answer; page size 0 gives only the `page` object's total."""
    index, size = call.query["pageIndex"], call.query["pageSize"]
    shown = queries.page(items, index, size) if size else []
    return json_response(
        {key: [render(item) for item in shown], "page": views.paging(index, size, len(items))}
    )


def _check_not_managed(call: V2Call) -> None:
    if call.query.get("managed") is not None:
        raise bad_request("The 'managed' parameter is only available for managed instances.")


# --- users --------------------------------------------------------------------------------------


def search_users(call: V2Call) -> web.Response:
    _check_admin_only_filters(call)
    dates = {name: _date(call.query[name]) for name in _USER_DATE_FILTERS}
    _check_not_managed(call)
    members = _member_uuids(call)
    external_login = call.query["externalIdentity"]
    # Narrowed by an index first where the filter allows, as SonarQube's database does.
    candidates = (
        call.directory.users.values()
        if external_login is None
        else call.directory.users_by_external_login(external_login)
    )
    found = queries.by_login([user for user in candidates if _selected(call, user, dates, members)])
    return _page(
        call,
        found,
        lambda user: views.v2_user(views.user_view(call.directory, call.caller, user), user),
        "users",
    )


def _check_admin_only_filters(call: V2Call) -> None:
    if call.directory.is_admin(call.caller):
        return
    for name in (*_USER_DATE_FILTERS, "externalIdentity", "groupId"):
        if call.query[name] is not None:
            raise forbidden(f"Parameter {name} requires Administer System permission.")


def _date(value: str | None) -> datetime | None:
    return None if value is None else queries.parse_datetime(value)


def _member_uuids(call: V2Call) -> set[str] | None:
    """Members of the `groupId` filter's group (none for an unknown group), or None without the filter."""
    group_id = call.query["groupId"]
    if group_id is None:
        return None
    group = call.directory.groups.get(group_id)
    return set() if group is None else {user.uuid for user in call.directory.members_of(group)}


def _selected(call: V2Call, user: User, dates: dict[str, datetime | None], members: set[str] | None) -> bool:
    external_login = call.query["externalIdentity"]
    return (
        user.active is call.query["active"]
        and queries.user_matches(user, call.query["q"], elasticsearch=False)
        and (external_login is None or user.external_login == external_login)
        and (members is None or user.uuid in members)
        and queries.connected_between(
            user.last_connection,
            dates["sonarQubeLastConnectionDateFrom"],
            dates["sonarQubeLastConnectionDateTo"],
        )
        and queries.connected_between(
            user.sonarlint_last_connection,
            dates["sonarLintLastConnectionDateFrom"],
            dates["sonarLintLastConnectionDateTo"],
        )
    )


def create_user(call: V2Call) -> web.Response:
    call.require_admin()
    body = call.body
    local = body.get("local") is not False
    password = body.get("password")
    if local and not password:
        raise bad_request("Password is mandatory and must not be empty")
    if not local and password:
        raise bad_request("Password should only be set on local user")
    scm_accounts = body.get("scmAccounts") or []
    rules.check_scm_accounts_format(scm_accounts)
    new = NewUser(body["login"], body["name"], body.get("email"), password, tuple(scm_accounts), local)
    user = call.directory.register_user(new)
    return json_response(views.v2_user("admin", user))


def get_user(call: V2Call) -> web.Response:
    user = _user(call.directory, call.path_id)
    return json_response(views.v2_user(views.user_view(call.directory, call.caller, user), user))


def update_user(call: V2Call) -> web.Response:
    call.require_admin()
    provider = call.body.get("externalProvider")
    if provider is not None and not call.directory.accepts_provider(provider):
        raise call.directory.provider_error("'externalProvider'", provider)
    user = _user(call.directory, call.path_id)
    updated = call.directory.update_user(user, _user_changes(call.body, call.profile))
    return json_response(views.v2_user("admin", updated))


def _user_changes(body: dict[str, Any], profile: Profile) -> UserChanges:
    """A merge-patch: absent fields stay UNSET, explicit nulls clear."""

    def field(name: str) -> Any:
        return body.get(name, UNSET)

    scm_accounts = field("scmAccounts")
    return UserChanges(
        login=field("login"),
        name=field("name"),
        email=field("email"),
        scm_accounts=tuple(scm_accounts) if isinstance(scm_accounts, list) else scm_accounts,
        external_provider=field("externalProvider"),
        external_login=field("externalLogin"),
        external_id=field("externalId") if profile.v2_patch_external_id else UNSET,
    )


def deactivate_user(call: V2Call) -> web.Response:
    caller = call.require_admin()
    if call.path_id == caller.uuid:
        raise bad_request("Self-deactivation is not possible")
    user = _user(call.directory, call.path_id)
    call.directory.deactivate(user, anonymize=call.query["anonymize"] is True)
    return no_content()


# --- groups -------------------------------------------------------------------------------------


def search_groups(call: V2Call) -> web.Response:
    call.require_admin()
    _check_not_managed(call)
    q, user_id = call.query["q"], call.query["userId"]
    found = sorted(
        (
            group
            for group in call.directory.groups.values()
            if (q is None or queries.contains(group.name, q))
            and (user_id is None or user_id in {user.uuid for user in call.directory.members_of(group)})
        ),
        key=lambda group: group.name,
    )
    return _page(call, found, views.v2_group, "groups")


def create_group(call: V2Call) -> web.Response:
    call.require_admin()
    group = call.directory.create_group(call.body["name"], call.body.get("description"))
    return json_response(views.v2_group(group), status=201)


def get_group(call: V2Call) -> web.Response:
    call.require_admin()
    return json_response(views.v2_group(_group(call.directory, call.path_id)))


def update_group(call: V2Call) -> web.Response:
    call.require_admin()
    group = _group(call.directory, call.path_id)
    name: str | None = None  # absent: keep the name
    if "name" in call.body:
        name = call.body["name"] or ""  # an explicit null is no name at all
    description: str | Unset | None = call.body.get("description", UNSET)
    call.directory.update_group(group, name=name, description=description)
    return json_response(views.v2_group(group))


def delete_group(call: V2Call) -> web.Response:
    call.require_admin()
    call.directory.delete_group(_group(call.directory, call.path_id))
    return no_content()


# --- memberships --------------------------------------------------------------------------------


def search_memberships(call: V2Call) -> web.Response:
    call.require_admin()
    user_id, group_id = call.query["userId"], call.query["groupId"]
    directory = call.directory
    if user_id is not None:
        candidates = directory.memberships_of_user(user_id)
    elif group_id is not None:
        candidates = directory.memberships_of_group(group_id)
    else:
        candidates = list(directory.memberships.values())
    found = sorted(
        (membership for membership in candidates if group_id in {None, membership.group_uuid}),
        key=lambda m: (directory.groups[m.group_uuid].name, directory.users[m.user_uuid].login),
    )
    return _page(call, found, views.v2_membership, "groupMemberships")


def create_membership(call: V2Call) -> web.Response:
    call.require_admin()
    user_id, group_id = call.body.get("userId"), call.body.get("groupId")
    user = call.directory.users.get(user_id or "")
    if user is None or not user.active:
        raise not_found(f"User '{user_id}' not found" if user_id is not None else "User 'null' not found")
    group = _group(call.directory, group_id if group_id is not None else "null")
    membership = call.directory.add_member(group, user)
    return json_response(views.v2_membership(membership), status=201)


def delete_membership(call: V2Call) -> web.Response:
    call.require_admin()
    membership = _membership(call.directory, call.path_id)
    user = call.directory.users[membership.user_uuid]
    if not user.active:
        raise not_found(f"User '{user.uuid}' not found")
    call.directory.remove_member(call.directory.groups[membership.group_uuid], user)
    return no_content()


def _membership(directory: Directory, uuid: str) -> Membership:
    membership = directory.memberships.get(uuid)
    if membership is None:
        raise not_found(f"Group membership '{uuid}' not found")
    return membership


_HANDLERS: dict[tuple[str, str], V2Handler] = {
    ("GET", _USERS): search_users,
    ("POST", _USERS): create_user,
    ("GET", f"{_USERS}/{{id}}"): get_user,
    ("PATCH", f"{_USERS}/{{id}}"): update_user,
    ("DELETE", f"{_USERS}/{{id}}"): deactivate_user,
    ("GET", _GROUPS): search_groups,
    ("POST", _GROUPS): create_group,
    ("GET", f"{_GROUPS}/{{id}}"): get_group,
    ("PATCH", f"{_GROUPS}/{{id}}"): update_group,
    ("DELETE", f"{_GROUPS}/{{id}}"): delete_group,
    ("GET", _MEMBERSHIPS): search_memberships,
    ("POST", _MEMBERSHIPS): create_membership,
    ("DELETE", f"{_MEMBERSHIPS}/{{id}}"): delete_membership,
}


def v2_routes(profile: Profile) -> list[V2Route]:
    """The v2 routes of a profile (none before 10.4)."""
    by_path: dict[str, list[V2Action]] = {}
    for spec in specs_for(profile):
        if spec.api == "v2":
            by_path.setdefault(spec.path, []).append(V2Action(spec, _HANDLERS[spec.method, spec.path]))
    return [route(actions) for actions in by_path.values()]
