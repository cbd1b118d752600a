"""Test doubles and helpers for the SonarQube client tests: a fake clock, aioresponses helpers, and
connections to the emulator that never sleep."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import AnyHttpUrl

from scim_bridge.config import SonarApi, SonarQubeSettings
from scim_bridge.sonarqube import Dialect, SonarQubeConnection
from tests.support import EmulatorControl

if TYPE_CHECKING:
    from aiohttp.test_utils import TestServer
    from aioresponses import aioresponses

SONAR_URL = "http://sonar.test/sonarqube"  # with a path prefix, as behind a reverse proxy
TOKEN = "squ_0123456789abcdef-unit-test-token"
ADMIN_TOKEN = "squ_emulated-admin-token"  # the emulators of these tests are started with it

ControlFactory = Callable[["TestServer"], EmulatorControl]


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def endpoint(path: str) -> re.Pattern[str]:
    """Match `path` under the mocked SonarQube, whatever the query string."""
    return re.compile(rf"^{re.escape(SONAR_URL)}/{re.escape(path)}(\?.*)?$")


def requests_to(mocked: aioresponses, method: str, path: str) -> list[Any]:
    """The calls aioresponses recorded for `method` on `path` (any query string)."""
    target = f"{SONAR_URL}/{path}"
    return [
        call
        for (verb, url), calls in mocked.requests.items()
        if verb == method and str(url).split("?")[0] == target
        for call in calls
    ]


async def no_sleep(_seconds: float) -> None:
    """Back-off without waiting: the tests' retries run at full speed."""


async def connect(server: TestServer, dialect: Dialect, **settings: Any) -> SonarQubeConnection:
    """A connection to an emulator served by `server`, speaking `dialect`, that never sleeps."""
    api: SonarApi = "v2" if dialect is Dialect.V2 else "v1"
    sonar_settings = SonarQubeSettings(
        sonar_url=AnyHttpUrl(str(server.make_url("/"))), sonar_api=api, **settings
    )
    return await SonarQubeConnection.open(sonar_settings, sleep=no_sleep)
