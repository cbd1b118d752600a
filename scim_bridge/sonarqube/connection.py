"""The connection to one SonarQube server: one HTTP session, its capabilities, clients per token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import structlog

from scim_bridge.sonarqube.capabilities import Capabilities
from scim_bridge.sonarqube.errors import UnexpectedResponse
from scim_bridge.sonarqube.models import Dialect, SonarVersion
from scim_bridge.sonarqube.transport import Sleep, Transport
from scim_bridge.sonarqube.v1 import V1Client
from scim_bridge.sonarqube.v2 import V2Client

if TYPE_CHECKING:
    from types import TracebackType

    import aiohttp

    from scim_bridge.config import SonarQubeSettings
    from scim_bridge.sonarqube.client import SonarQubeClient
    from scim_bridge.sonarqube.deadline import Clock

log = structlog.get_logger("scim_bridge.sonarqube")

_VERSION_ENDPOINT = "api/server/version"  # answers without authentication on every version


class SonarQubeConnection:
    """Opened once per process; `client(token)` is cheap, so the bridge may use one token per request."""

    def __init__(self, transport: Transport, capabilities: Capabilities) -> None:
        self._transport = transport
        self.capabilities = capabilities

    @classmethod
    async def open(
        cls,
        settings: SonarQubeSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
    ) -> SonarQubeConnection:
        """Read SonarQube's version and pick the dialect (`sonar_api` overrides the automatic choice).

        `session` is used as is and left open on `close()`; without one, a session with the configured
        connection limit is created and closed with the connection. `sleep` and `clock` drive retries.
        """
        transport = Transport.from_settings(settings, session=session, sleep=sleep, clock=clock)
        try:
            capabilities = Capabilities.detect(await _server_version(transport), settings.sonar_api)
        except BaseException:
            await transport.close()
            raise
        log.info(
            "sonarqube.connected",
            version=str(capabilities.version),
            dialect=capabilities.dialect.value,
        )
        return cls(transport, capabilities)

    def client(self, token: str) -> SonarQubeClient:
        """A client that authenticates with `token`, speaking the dialect of SonarQube's current version."""
        if self.capabilities.dialect is Dialect.V2:
            return V2Client(self._transport, token, self.capabilities)
        return V1Client(self._transport, token, self.capabilities)

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()


async def _server_version(transport: Transport) -> SonarVersion:
    reply = await transport.call("GET", _VERSION_ENDPOINT)
    try:
        return SonarVersion.parse(reply.text())
    except ValueError as exc:
        raise UnexpectedResponse(
            f"{_VERSION_ENDPOINT} did not answer a SonarQube version: is sonar_url right?",
            status=reply.status,
            endpoint=_VERSION_ENDPOINT,
        ) from exc
