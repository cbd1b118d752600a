"""Helpers shared by the tests: SCIM constants, the emulator's profiles and test controls, and a thin
SonarQube caller."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final

import aiohttp
from aiohttp.test_utils import TestServer

from scim_bridge.emulator import PROFILES as EMULATOR_PROFILES
from scim_bridge.scim.resources import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from scim_bridge.web.wire import SCIM_JSON

__all__ = [
    "ADMIN_TOKEN",
    "CURRENT_PROFILE",
    "ENTERPRISE_USER_SCHEMA",
    "ERROR_SCHEMA",
    "GROUP_SCHEMA",
    "LIST_RESPONSE_SCHEMA",
    "ONE_PROFILE_PER_API",
    "PATCH_OP_SCHEMA",
    "PAYLOADS",
    "PROFILES",
    "SCIM_JSON",
    "USER_SCHEMA",
    "V1_PROFILE",
    "EmulatorControl",
    "EmulatorFactory",
    "Reply",
    "Sonar",
    "SonarFactory",
    "read_payload",
]

# --- SCIM vocabulary: SCIM_JSON and the resource URNs (imported above) are the bridge's own ---------------
# RFC 7644's message URNs: the bridge leaves them to scim2-models and does not name them itself.

PATCH_OP_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_RESPONSE_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

# --- The emulated SonarQube versions ----------------------------------------------------------------------

PROFILES: Final = tuple(EMULATOR_PROFILES)
"""Every SonarQube version the emulator imitates, oldest first."""
V1_PROFILE: Final = next(name for name, profile in EMULATOR_PROFILES.items() if not profile.v2_api)
"""The one version that speaks only Web API v1 (9.9)."""
CURRENT_PROFILE: Final = "2025.6"
"""The version a test uses unless it says otherwise: a current one, speaking Web API v2."""
ONE_PROFILE_PER_API: Final = (V1_PROFILE, CURRENT_PROFILE)
"""A deliberate subset for tests that need each Web API generation once rather than every version."""

PAYLOADS = Path(__file__).parent / "payloads"


def read_payload(name: str) -> Any:
    """`tests/payloads/<origin>/<name>.json`, e.g. `read_payload("entra/a6-disable-default")`."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


ADMIN_TOKEN = "test-admin-token"

EmulatorFactory = Callable[..., Awaitable[TestServer]]


class EmulatorControl:
    """The emulator's `/_emulator/` test controls, over HTTP like any other client."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.session.request(method, self.server.make_url(f"/_emulator/{path}"), **kwargs) as resp:
            resp.raise_for_status()
            return await resp.json() if resp.content_type == "application/json" else None

    async def state(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "state")
        return result

    async def journal(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._call("GET", "journal")
        return result

    async def clear_journal(self) -> None:
        await self._call("DELETE", "journal")

    async def reset(self) -> None:
        await self._call("POST", "reset")

    async def set_faults(self, **faults: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("PUT", "faults", json=faults)
        return result

    async def lifecycle(self, **change: str) -> dict[str, Any]:
        """Move the emulator to another `phase` (up, starting, down) and/or `profile` (an upgrade)."""
        result: dict[str, Any] = await self._call("PUT", "lifecycle", json=change)
        return result


class Reply:
    """One emulator answer: status, headers and the body (parsed JSON, text, or None when empty)."""

    def __init__(self, status: int, headers: Mapping[str, str], body: Any) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def errors(self) -> list[str]:
        """The messages of a v1 error answer."""
        return [error["msg"] for error in self.body["errors"]]

    @property
    def message(self) -> str:
        """The message of a v2 error answer."""
        message: str = self.body["message"]
        return message

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body!r})"


class Sonar:
    """An emulator seen as a SonarQube client sees it: v1 form posts, v2 JSON, a token as Basic `token:`."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession, profile: str, token: str) -> None:
        self.server = server
        self.session = session
        self.profile = profile
        self.token = token
        self.control = EmulatorControl(server, session)

    def as_user(self, token: str) -> Sonar:
        """The same emulator, called with another user's token."""
        return Sonar(self.server, self.session, self.profile, token)

    async def request(
        self, method: str, path: str, *, authorization: str | None = "token", **kwargs: Any
    ) -> Reply:
        """`authorization`: "token" sends the token as Basic `token:`, None sends nothing, else sent as is."""
        headers = dict(kwargs.pop("headers", {}))
        if authorization == "token":
            headers["Authorization"] = aiohttp.encode_basic_auth(self.token)
        elif authorization is not None:
            headers["Authorization"] = authorization
        async with self.session.request(
            method, self.server.make_url(path), headers=headers, **kwargs
        ) as resp:
            text = await resp.text()
            body: Any = None
            if text:
                body = await resp.json() if resp.content_type == "application/json" else text
            return Reply(resp.status, resp.headers, body)

    async def get(self, path: str, params: Any = None, **kwargs: Any) -> Reply:
        return await self.request("GET", path, params=params, **kwargs)

    async def post(self, path: str, data: Any = None, **kwargs: Any) -> Reply:
        """A v1 POST with a form body (a list of pairs repeats a parameter)."""
        return await self.request("POST", path, data=data, **kwargs)

    async def create_user(self, login: str, *, local: bool = False, **fields: str) -> Reply:
        """A v1 user; non-local by default so that no password is needed."""
        data = {
            "login": login,
            "name": fields.pop("name", login.title()),
            "local": str(local).lower(),
            **fields,
        }
        if local:
            data.setdefault("password", "secret-password")
        return await self.post("api/users/create", data)

    async def user_token(self, login: str, name: str = "test") -> str:
        """A new token for `login`, generated by the admin."""
        reply = await self.post("api/user_tokens/generate", {"login": login, "name": name})
        assert reply.status == 200, reply
        token: str = reply.body["token"]
        return token

    async def user_state(self, login: str) -> dict[str, Any]:
        """The emulator's internal record of the user with that login."""
        users = (await self.control.state())["users"]
        return next(user for user in users if user["login"] == login)

    async def group_state(self, name: str) -> dict[str, Any]:
        groups = (await self.control.state())["groups"]
        return next(group for group in groups if group["name"] == name)


SonarFactory = Callable[..., Awaitable[Sonar]]
