"""Fixtures shared by every test: the SonarQube emulator served on a real port, and its test controls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from scim_bridge.emulator import EmulatorConfig, create_emulator_app

ADMIN_TOKEN = "test-admin-token"
PROFILES = ("9.9", "10.8", "2025.6", "26.7")

EmulatorFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
def emulator_factory(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> EmulatorFactory:
    """Start an emulator for one profile; keyword options go to `EmulatorConfig`."""

    async def start(profile: str = "2025.6", **options: Any) -> TestServer:
        options.setdefault("admin_token", ADMIN_TOKEN)
        return await aiohttp_server(create_emulator_app(EmulatorConfig(profile=profile, **options)))

    return start


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


@pytest.fixture
async def http() -> Any:
    """A plain HTTP client session for talking to test servers."""
    async with aiohttp.ClientSession() as session:
        yield session
