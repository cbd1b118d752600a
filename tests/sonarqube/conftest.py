"""Fixtures for the SonarQube client tests: aioresponses (with its aiohttp 3.14 shim), a fake clock and
sleep, clients of both dialects on a mocked server, and emulators with their test controls."""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

import aiohttp
import aioresponses.core as aioresponses_core
import pytest
from aioresponses import aioresponses
from pydantic import AnyHttpUrl

from scim_bridge.config import SonarQubeSettings
from scim_bridge.sonarqube import Capabilities, SonarVersion, V1Client, V2Client
from scim_bridge.sonarqube.transport import Transport
from tests.sonarqube.doubles import (
    ADMIN_TOKEN,
    SONAR_URL,
    TOKEN,
    ControlFactory,
    FakeClock,
)
from tests.support import EmulatorControl, EmulatorFactory

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from aiohttp.test_utils import TestServer


class _CompatClientResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without aiohttp 3.14's new `stream_writer` argument
    (pnuckowski/aioresponses#289); give it a stand-in."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", types.SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


aioresponses_core.ClientResponse = _CompatClientResponse  # type: ignore[attr-defined]  # read by aioresponses


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as mock:
        yield mock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> SonarQubeSettings:
    return SonarQubeSettings(sonar_url=AnyHttpUrl(SONAR_URL), sonar_deadline=10.0, sonar_read_timeout=2.0)


@pytest.fixture
async def transport(settings: SonarQubeSettings, clock: FakeClock) -> AsyncIterator[Transport]:
    transport = Transport.from_settings(settings, sleep=clock.sleep, clock=clock)
    yield transport
    await transport.close()


@pytest.fixture
def v1(transport: Transport) -> V1Client:
    return V1Client(transport, TOKEN, Capabilities.detect(SonarVersion.parse("9.9.8.100196")))


@pytest.fixture
def v2(transport: Transport) -> V2Client:
    return V2Client(transport, TOKEN, Capabilities.detect(SonarVersion.parse("2025.6.0.115417")))


@pytest.fixture
def emulator(emulator_factory: EmulatorFactory) -> EmulatorFactory:
    """`emulator_factory` with this package's admin token."""

    async def start(profile: str, **options: Any) -> TestServer:
        return await emulator_factory(profile, admin_token=ADMIN_TOKEN, **options)

    return start


@pytest.fixture
def control_for(http: aiohttp.ClientSession) -> ControlFactory:
    """The test controls of an emulator, over the shared HTTP session."""
    return lambda server: EmulatorControl(server, http)
