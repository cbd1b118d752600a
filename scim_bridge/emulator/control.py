"""Test controls under `/_emulator/`: state, journal, reset, faults and lifecycle (phase and profile). No
authentication, no faults; they answer in every phase."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from scim_bridge.emulator.faults import FaultSettingsError
from scim_bridge.emulator.lifecycle import lifecycle_change
from scim_bridge.emulator.views import format_datetime

if TYPE_CHECKING:
    from scim_bridge.emulator.app import Emulator
    from scim_bridge.emulator.model import User
    from scim_bridge.emulator.state import Directory

PREFIX = "/_emulator"


def add_routes(app: web.Application, key: web.AppKey[Emulator]) -> None:
    """Serve the controls of the emulator stored in `app[key]`."""

    async def state(request: web.Request) -> web.Response:
        emulator = request.app[key]
        return web.json_response(describe(emulator.directory) | {"profile": emulator.profile.name})

    async def journal(request: web.Request) -> web.Response:
        return web.json_response([dict(entry) for entry in request.app[key].journal])

    async def clear_journal(request: web.Request) -> web.Response:
        request.app[key].journal.clear()
        return web.Response(status=204)

    async def reset(request: web.Request) -> web.Response:
        request.app[key].reset()
        return web.Response(status=204)

    async def faults(request: web.Request) -> web.Response:
        return web.json_response(request.app[key].faults.settings.as_json())

    async def set_faults(request: web.Request) -> web.Response:
        injector = request.app[key].faults
        try:
            injector.configure(_json_object(await request.text()))
        except ValueError as error:  # FaultSettingsError too
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(injector.settings.as_json())

    async def lifecycle(request: web.Request) -> web.Response:
        return web.json_response(_lifecycle(request.app[key]))

    async def set_lifecycle(request: web.Request) -> web.Response:
        emulator = request.app[key]
        try:
            change = lifecycle_change(json.loads(await request.text()))
        except ValueError as error:  # LifecycleError and unreadable JSON
            return web.json_response({"error": str(error)}, status=400)
        if change.profile is not None:
            emulator.restart_as(change.profile)
        if change.phase is not None:
            emulator.enter(change.phase)
        return web.json_response(_lifecycle(emulator))

    app.router.add_get(f"{PREFIX}/state", state)
    app.router.add_get(f"{PREFIX}/journal", journal)
    app.router.add_delete(f"{PREFIX}/journal", clear_journal)
    app.router.add_post(f"{PREFIX}/reset", reset)
    app.router.add_get(f"{PREFIX}/faults", faults)
    app.router.add_put(f"{PREFIX}/faults", set_faults)
    app.router.add_get(f"{PREFIX}/lifecycle", lifecycle)
    app.router.add_put(f"{PREFIX}/lifecycle", set_lifecycle)


def _lifecycle(emulator: Emulator) -> dict[str, Any]:
    return {"phase": emulator.phase, "profile": emulator.profile.name, "version": emulator.profile.version}


def _json_object(text: str) -> dict[str, Any]:
    document = json.loads(text)
    if not isinstance(document, dict):
        raise FaultSettingsError("the body must be a JSON object")
    return document


def describe(directory: Directory) -> dict[str, Any]:
    """Every internal field of the state (token values excepted), in a stable order."""
    users = sorted(directory.users.values(), key=lambda user: user.login)
    groups = sorted(directory.groups.values(), key=lambda group: group.name)
    memberships = sorted(
        (
            {
                "id": membership.uuid,
                "group": directory.groups[membership.group_uuid].name,
                "login": directory.users[membership.user_uuid].login,
            }
            for membership in directory.memberships.values()
        ),
        key=lambda entry: (entry["group"], entry["login"]),
    )
    return {
        "version": directory.profile.version,
        "users": [_user(directory, user) for user in users],
        "groups": [
            {
                "id": group.uuid,
                "name": group.name,
                "description": group.description,
                "default": group.default,
                "permissions": sorted(group.permissions),
            }
            for group in groups
        ],
        "memberships": memberships,
        "settings": dict(sorted(directory.settings.items())),
        "samlEnabled": directory.saml_enabled,
    }


def _user(directory: Directory, user: User) -> dict[str, Any]:
    return {
        "id": user.uuid,
        "login": user.login,
        "name": user.name,
        "email": user.email,
        "active": user.active,
        "local": user.local,
        "externalProvider": user.external_provider,
        "externalLogin": user.external_login,
        "externalId": user.external_id,
        "scmAccounts": list(user.scm_accounts),
        "permissions": sorted(user.permissions),
        "hasPassword": user.password is not None,
        "tokens": len(directory.tokens_of(user)),
        "lastConnectionDate": format_datetime(user.last_connection),
    }
