"""Fixtures shared by every test: the SonarQube emulator served on a real port, and a caller for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from scim_bridge.emulator import EmulatorSettings, create_emulator_app
from tests.postgres_server import INSTALL_HINT, PostgresServer, find_bindir, running_server
from tests.support import ADMIN_TOKEN, EmulatorFactory, Sonar, SonarFactory

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

    from aiohttp.test_utils import TestServer


@pytest.fixture
def emulator_factory(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> EmulatorFactory:
    """Start an emulator for one profile; keyword options go to `EmulatorSettings`."""

    async def start(profile: str = "2025.6", **options: Any) -> TestServer:
        options.setdefault("admin_token", ADMIN_TOKEN)
        return await aiohttp_server(create_emulator_app(EmulatorSettings(profile=profile, **options)))

    return start


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client session for talking to test servers."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def sonar_factory(emulator_factory: EmulatorFactory, http: aiohttp.ClientSession) -> SonarFactory:
    """Start an emulator for one profile and talk to it as its admin; options go to `EmulatorSettings`."""

    async def start(profile: str = "2025.6", **options: Any) -> Sonar:
        server = await emulator_factory(profile, **options)
        return Sonar(server, http, profile, options.get("admin_token", ADMIN_TOKEN))

    return start


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throw-away PostgreSQL server for the session (each test makes its own database on it); skips
    the test without server binaries."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(INSTALL_HINT)
    with running_server(bindir) as server:
        yield server
