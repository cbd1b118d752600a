"""v1 actions besides users and groups: server version and status, credential check, user tokens, global
permissions and the SAML settings (docs/sonarqube.md SQ1, SQ3, SQ4, SQ17, SQ27, SQ28; permissions and
settings as far as tests need them)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from scim_bridge.emulator import rules, views
from scim_bridge.emulator.lifecycle import SERVER_STATUS
from scim_bridge.emulator.model import (
    GLOBAL_PERMISSIONS,
    SCAN_PERMISSION,
    bad_request,
    forbidden,
    not_found,
)
from scim_bridge.emulator.state import SETTING_DEFAULTS
from scim_bridge.emulator.v1 import json_response, no_content

if TYPE_CHECKING:
    from scim_bridge.emulator.model import Group, User
    from scim_bridge.emulator.v1 import V1Call, V1Handler

SERVER_ID = "AAAAAAAA-EMULATOR"  # SonarQube's server ids are opaque; this one says what it is


def version(call: V1Call) -> web.Response:
    return web.Response(text=call.profile.version, content_type="text/plain")


def status(call: V1Call) -> web.Response:
    return _status(call, SERVER_STATUS["up"])


def starting_status(call: V1Call) -> web.Response:
    """`api/system/status` while the web server starts (the only action served then, see `lifecycle.py`)."""
    return _status(call, SERVER_STATUS["starting"])


def _status(call: V1Call, value: str) -> web.Response:
    return json_response({"id": SERVER_ID, "version": call.profile.version, "status": value})


def navigation_global(call: V1Call) -> web.Response:
    """What SonarQube's UI asks first (docs/sonarqube.md SQ31); the emulator is always a Community edition."""
    call.require_login()
    return json_response(
        {"edition": "community", "version": call.profile.version, "productionDatabase": True}
    )


def validate(call: V1Call) -> web.Response:
    """Valid only for credentials that authenticate (authentication is forced, so none is not valid)."""
    return json_response({"valid": call.caller is not None})


# --- user tokens --------------------------------------------------------------------------------


def generate_token(call: V1Call) -> web.Response:
    caller = call.require_login()
    kind = call.mandatory("type")
    if kind == "PROJECT_ANALYSIS_TOKEN":  # the emulator has no projects
        raise not_found(f"Project key '{call.mandatory('projectKey')}' not found")
    if kind == "GLOBAL_ANALYSIS_TOKEN" and SCAN_PERMISSION not in call.directory.global_permissions(caller):
        raise forbidden()
    expires = _expiration(call.param("expirationDate"))
    name = call.mandatory("name")
    login = call.param("login")
    owner = _token_owner(call, caller, caller.login if login is None else login)
    token = call.directory.generate_token(owner, name, kind, expires)
    return json_response(
        views.without_none(
            {
                "login": owner.login,
                "name": token.name,
                "createdAt": views.format_datetime(token.created_at),
                "token": token.value,
                "type": token.type,
                "expirationDate": views.format_datetime(token.expires_at),
            }
        )
    )


def _expiration(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise bad_request(
            "Supplied date format for parameter expirationDate is wrong. "
            "Please supply date in the ISO 8601 date format (YYYY-MM-DD)"
        ) from None
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    if day < tomorrow:
        raise bad_request(f"The minimum value for parameter expirationDate is {tomorrow.isoformat()}.")
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _token_owner(call: V1Call, caller: User, login: str) -> User:
    if login != caller.login and not call.directory.is_admin(caller):
        raise forbidden()
    owner = call.directory.user_by_login(login)
    if owner is None:
        raise not_found(f"User with login '{login}' doesn't exist")
    return owner


# --- global permissions -------------------------------------------------------------------------


def _no_project(call: V1Call) -> None:
    """The emulator has no projects: a project reference is never found."""
    project_id, project_key = call.param("projectId"), call.param("projectKey")
    if project_id is not None and project_key is not None:
        raise bad_request("Project id or project key can be provided, not both.")
    if project_id is None and project_key is None:
        return
    if call.profile.group_ids_in_v1:
        raise not_found(
            f"Project id '{project_id}' not found" if project_id else f"Project key '{project_key}' not found"
        )
    raise not_found("Entity not found")


def _permission(call: V1Call) -> str:
    permission = call.mandatory("permission")
    if permission not in GLOBAL_PERMISSIONS:
        valid = ", ".join(GLOBAL_PERMISSIONS)
        raise bad_request(f"Invalid global permission '{permission}'. Valid values are [{valid}]")
    return permission


def _permission_user(call: V1Call, login: str) -> User:
    user = call.directory.active_user_by_login(login)
    if user is None:
        raise not_found(f"User with login '{login}' is not found'")
    return user


def _permission_group(call: V1Call) -> Group | None:
    """The group a permission call names, or None for the virtual group Anyone."""
    if call.profile.group_ids_in_v1 and (group_id := call.param("groupId")) is not None:
        if call.param("groupName") is not None:
            raise bad_request("Either group id or group name must be set")
        group = call.directory.groups.get(group_id)
        if group is None:
            raise not_found(f"No group with id '{group_id}'")
        return group
    name = call.param("groupName")
    if name is None:
        raise bad_request("Group name or group id must be provided")
    if rules.is_anyone(name):
        return None
    group = call.directory.group_by_name(name)
    if group is None:
        raise not_found(f"No group with name '{name}'")
    return group


def add_user_permission(call: V1Call) -> web.Response:
    login = call.mandatory("login")
    _no_project(call)
    call.require_admin()
    user = _permission_user(call, login)
    call.directory.grant_user(user, _permission(call))
    return no_content()


def remove_user_permission(call: V1Call) -> web.Response:
    user = _permission_user(call, call.mandatory("login"))
    permission = call.mandatory("permission")
    if permission == "admin" and call.caller is not None and user.login == call.caller.login:
        raise bad_request("As an admin, you can't remove your own admin right")
    _no_project(call)
    call.require_admin()
    call.directory.revoke_user(user, _permission(call))
    return no_content()


def add_group_permission(call: V1Call) -> web.Response:
    _no_project(call)
    group = _permission_group(call)
    call.require_admin()
    permission = _permission(call)
    if group is None:  # Anyone: the emulator has no anonymous access, so other grants change nothing
        if permission == "admin":
            raise bad_request("It is not possible to add the 'admin' permission to group 'Anyone'.")
        return no_content()
    call.directory.grant_group(group, permission)
    return no_content()


def remove_group_permission(call: V1Call) -> web.Response:
    _no_project(call)
    group = _permission_group(call)
    call.require_admin()
    permission = _permission(call)
    if group is not None:
        call.directory.revoke_group(group, permission)
    return no_content()


# --- settings -----------------------------------------------------------------------------------


def setting_values(call: V1Call) -> web.Response:
    call.require_login()
    keys = call.strings("keys")
    if keys is None:
        keys = sorted({*call.directory.settings, *SETTING_DEFAULTS})
    found = [(key, call.directory.setting(key)) for key in keys]
    return json_response(
        {
            "settings": [
                {"key": key, "value": value[0], "inherited": value[1]} for key, value in found if value
            ]
        }
    )


def set_setting(call: V1Call) -> web.Response:
    call.require_admin()
    key = call.mandatory("key")
    if not key:
        raise bad_request("The 'key' parameter is missing")
    value = call.param("value")
    if value is None:
        raise bad_request("Either 'value', 'values' or 'fieldValues' must be provided")
    if not value:
        raise bad_request("A non empty value must be provided")
    call.directory.settings[key] = value
    return no_content()


STATUS_ACTION = "api/system/status"
# The actions a starting SonarQube serves (every other `/api/**` request is a 503).
STARTING_HANDLERS: dict[str, V1Handler] = {STATUS_ACTION: starting_status}

HANDLERS: dict[str, V1Handler] = {
    "api/server/version": version,
    STATUS_ACTION: status,
    "api/navigation/global": navigation_global,
    "api/authentication/validate": validate,
    "api/user_tokens/generate": generate_token,
    "api/permissions/add_user": add_user_permission,
    "api/permissions/remove_user": remove_user_permission,
    "api/permissions/add_group": add_group_permission,
    "api/permissions/remove_group": remove_group_permission,
    "api/settings/values": setting_values,
    "api/settings/set": set_setting,
}
