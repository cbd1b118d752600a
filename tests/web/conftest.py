"""The bridge under test: `create_app` served on a real port in front of an emulator on another port."""

from __future__ import annotations

import base64
import json as jsonlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import AnyHttpUrl
from structlog.testing import capture_logs

from scim_bridge.app import create_app
from scim_bridge.config import BridgeSettings
from scim_bridge.sonarqube import SonarQubeConnection
from scim_bridge.store import StateStore, open_store
from tests.support import (
    ADMIN_TOKEN,
    CURRENT_PROFILE,
    PROFILES,
    SCIM_JSON,
    Reply,
    Sonar,
    SonarFactory,
    read_payload,
)

if TYPE_CHECKING:
    import aiohttp
    from aiohttp.test_utils import TestServer


async def _no_sleep(_seconds: float) -> None:
    """Retries in tests never wait for real."""


@pytest.fixture(autouse=True)
def _no_token_in_the_logs() -> Iterator[None]:
    """Every test of the HTTP surface (the Entra catalogue among them) runs with its log events captured,
    before any redaction: none may carry the admin token, plain or as Basic credentials."""
    secrets = (ADMIN_TOKEN, base64.b64encode(f"{ADMIN_TOKEN}:".encode()).decode())
    with capture_logs() as events:
        yield
    logged = repr(events)
    assert not [secret for secret in secrets if secret in logged], "a token reached the logs"


class Bridge:
    """A running bridge seen as Entra sees it (bearer token, SCIM JSON), plus the emulator behind it."""

    def __init__(
        self,
        server: TestServer,
        sonar: Sonar,
        http: aiohttp.ClientSession,
        settings: BridgeSettings,
        store: StateStore,
    ) -> None:
        self.server = server
        self.sonar = sonar
        self.http = http
        self.settings = settings
        self.store = store  # the bridge's own state store, for looking inside
        self.token = ADMIN_TOKEN

    def url(self, path: str) -> str:
        """`path` is relative to the SCIM base path, e.g. `/Users?filter=…`, or absolute with `//`."""
        return str(self.server.make_url(self.settings.base_path + path))

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        params: Mapping[str, str] | None = None,
        token: str | None = "default",  # noqa: S107 - a marker meaning "the admin token", not a secret
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """`token`: "default" sends the admin token as `Bearer`, None sends no Authorization header."""
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault("Authorization", f"Bearer {self.token if token == 'default' else token}")
        if json is not None:
            data = jsonlib.dumps(json)
            sent.setdefault("Content-Type", f"{SCIM_JSON}; charset=utf-8")
        async with self.http.request(method, self.url(path), data=data, params=params, headers=sent) as resp:
            text = await resp.text()
            body: Any = None
            if text:
                body = jsonlib.loads(text) if "json" in (resp.content_type or "") else text
            return Reply(resp.status, resp.headers, body)

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, body: Any, **kwargs: Any) -> Reply:
        return await self.request("POST", path, json=body, **kwargs)

    async def patch(self, path: str, body: Any, **kwargs: Any) -> Reply:
        return await self.request("PATCH", path, json=body, **kwargs)

    async def put(self, path: str, body: Any, **kwargs: Any) -> Reply:
        return await self.request("PUT", path, json=body, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("DELETE", path, **kwargs)

    @staticmethod
    def payload(name: str) -> Any:
        """An Entra or RFC request body from tests/payloads, e.g. `payload("entra/a4-create-user")`."""
        return read_payload(name)


BridgeFactory = Callable[..., Awaitable[Bridge]]


@pytest.fixture
async def bridge_factory(
    sonar_factory: SonarFactory,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    http: aiohttp.ClientSession,
) -> AsyncIterator[BridgeFactory]:
    """Start an emulator (`profile`, `saml`, other `EmulatorSettings` options under `emulator`) and a bridge
    in front of it; other keyword arguments are `BridgeSettings` fields."""
    opened: list[SonarQubeConnection | StateStore] = []

    async def start(
        profile: str = CURRENT_PROFILE,
        *,
        saml: bool = True,
        emulator: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> Bridge:
        sonar = await sonar_factory(profile, saml=saml, **dict(emulator or {}))
        settings.setdefault("store", "sqlite://:memory:")
        bridge_settings = BridgeSettings(sonar_url=AnyHttpUrl(str(sonar.server.make_url("/"))), **settings)
        connection = await SonarQubeConnection.open(bridge_settings, sleep=_no_sleep)
        opened.append(connection)
        store = await open_store(bridge_settings.store)
        opened.append(store)
        server = await aiohttp_server(create_app(bridge_settings, sonar=connection, store=store))
        return Bridge(server, sonar, http, bridge_settings, store)

    yield start
    for collaborator in opened:
        await collaborator.close()


@pytest.fixture
async def bridge(bridge_factory: BridgeFactory) -> Bridge:
    """A bridge in front of a SonarQube 2025.6 emulator with SAML enabled."""
    return await bridge_factory()


# --- The Entra catalogue runs against every emulated SonarQube version ----------------------------------


@pytest.fixture(params=PROFILES, ids=lambda profile: f"sq{profile}")
def entra_profile(request: pytest.FixtureRequest) -> str:
    """Each emulator profile in turn (tests.support.PROFILES): 9.9 speaks v1, the others v2."""
    profile: str = request.param
    return profile


@pytest.fixture
async def entra(bridge_factory: BridgeFactory, entra_profile: str) -> Bridge:
    """A bridge in front of a SAML-enabled emulator of `entra_profile`, called as Entra calls it."""
    return await bridge_factory(entra_profile)
