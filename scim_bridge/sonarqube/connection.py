"""The connection to one SonarQube server: one HTTP session, its version, the dialect, clients per token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import structlog

from scim_bridge.config import ConfigError, SonarApi, SonarQubeSettings
from scim_bridge.sonarqube.errors import UnexpectedResponse
from scim_bridge.sonarqube.models import Dialect, SonarVersion
from scim_bridge.sonarqube.transport import Sleep, Transport
from scim_bridge.sonarqube.v1 import V1Client
from scim_bridge.sonarqube.v2 import V2Client

if TYPE_CHECKING:
    from types import TracebackType

    import aiohttp

    from scim_bridge.sonarqube.client import SonarQubeClient
    from scim_bridge.sonarqube.deadline import Clock

log = structlog.get_logger("scim_bridge.sonarqube")

_VERSION_ENDPOINT = "api/server/version"  # answers without authentication on every version


class SonarQubeConnection:
    """Opened once per process; `client(token)` is cheap, so the bridge may use one token per request."""

    def __init__(self, transport: Transport, version: SonarVersion, dialect: Dialect) -> None:
        self._transport = transport
        self.version = version
        self.dialect = dialect

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
            version = await _server_version(transport)
            dialect = choose_dialect(version, settings.sonar_api)
        except BaseException:
            await transport.close()
            raise
        log.info("sonarqube.connected", version=str(version), dialect=dialect.value)
        return cls(transport, version, dialect)

    def client(self, token: str) -> SonarQubeClient:
        """A client that authenticates with `token`, speaking this connection's dialect."""
        if self.dialect is Dialect.V2:
            return V2Client(self._transport, token, self.version)
        return V1Client(self._transport, token, self.version)

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()


def choose_dialect(version: SonarVersion, requested: SonarApi) -> Dialect:
    """The dialect for `version`: v2 from 10.4 on, unless the `sonar_api` setting asks otherwise."""
    if requested == "auto":
        return version.default_dialect
    dialect = Dialect(requested)
    if dialect is Dialect.V2 and not version.has_v2_users_api:
        raise ConfigError(
            f"setting 'sonar_api' (SCIM_BRIDGE_SONAR_API) is v2, but SonarQube {version} has no v2 users API "
            "(it needs SonarQube 10.4 or later): use v1 or auto"
        )
    return dialect


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
