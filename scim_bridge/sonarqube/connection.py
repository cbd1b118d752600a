"""The connection to one SonarQube server: one HTTP session, what SonarQube is doing now, its capabilities,
and clients per token.

The bridge may start before SonarQube (a sidecar in SonarQube's pod) and outlive its restarts and upgrades.
`watch()` asks `api/system/status` (unauthenticated; it also tells the version, docs/sonarqube.md SQ1, SQ3):
every few seconds while SonarQube is not UP, every half minute while it is, and at once when a call gives up
on it. Whenever SonarQube is UP with a version the connection has not seen, the capabilities are detected
again, so an upgrade from 10.3 to 10.4 under a running bridge moves it from the v1 to the v2 API.
Until SonarQube is UP, `client()` refuses with `Unavailable`, which SCIM clients get as 503.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self

import structlog

from scim_bridge.config import ConfigError
from scim_bridge.sonarqube.capabilities import Capabilities
from scim_bridge.sonarqube.errors import SonarQubeError, Unavailable
from scim_bridge.sonarqube.models import Dialect, SonarVersion
from scim_bridge.sonarqube.transport import Sleep, Transport
from scim_bridge.sonarqube.v1 import V1Client
from scim_bridge.sonarqube.v2 import V2Client

if TYPE_CHECKING:
    from types import TracebackType

    import aiohttp

    from scim_bridge.config import SonarApi, SonarQubeSettings
    from scim_bridge.metrics import Metrics
    from scim_bridge.sonarqube.client import SonarQubeClient
    from scim_bridge.sonarqube.deadline import Clock

log = structlog.get_logger("scim_bridge.sonarqube")

STATUS_ENDPOINT: Final = "api/system/status"
UP: Final = "UP"
WATCH_WHILE_UP: Final = 30.0  # seconds between looks while SonarQube is UP (an upgrade takes minutes)
WATCH_WHILE_NOT_UP: Final = 2.0  # seconds between looks while it is starting, migrating or unreachable

# What SonarQube's own statuses mean to an administrator reading /readyz or `scim-bridge check`.
_STATUS_DETAILS: Final = {
    "STARTING": "SonarQube is starting",
    "RESTARTING": "SonarQube is restarting",
    "DOWN": "SonarQube is down (its own status says DOWN: see its logs)",
    "DB_MIGRATION_NEEDED": "SonarQube needs its database upgraded: open <sonar_url>setup as an administrator",
    "DB_MIGRATION_RUNNING": "SonarQube is upgrading its database",
}


@dataclass(frozen=True, slots=True)
class ServerState:
    """What the bridge last learned of SonarQube: SonarQube's own status (`UP`, `STARTING`, …) or the
    bridge's `UNKNOWN`, `UNREACHABLE`, `UNEXPECTED` or `MISCONFIGURED`, with one sentence that says why."""

    status: str
    detail: str
    version: SonarVersion | None = None
    cause: str | None = None  # what the failure was, for the log only (it may name library classes)

    @property
    def up(self) -> bool:
        return self.status == UP


class SonarQubeConnection:
    """Created once per process; `client(token)` is cheap, so the bridge may use one token per request."""

    def __init__(
        self,
        transport: Transport,
        *,
        requested_api: SonarApi,
        sonar_url: str,
    ) -> None:
        self._transport = transport
        self._requested_api = requested_api
        self._sonar_url = sonar_url.rstrip("/") + "/"
        self._metrics: Metrics | None = None
        self._capabilities: Capabilities | None = None
        self.state = ServerState("UNKNOWN", "SonarQube has not been asked yet")
        self._wake = asyncio.Event()
        transport.on_failure = self._failed

    @classmethod
    def create(
        cls,
        settings: SonarQubeSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
    ) -> SonarQubeConnection:
        """A connection that has not asked SonarQube anything yet (`refresh` or `watch` will).

        `session` is used as is and left open on `close()`; without one, a session with the configured
        connection limit is created and closed with the connection. `sleep` and `clock` drive retries.
        """
        transport = Transport.from_settings(settings, session=session, sleep=sleep, clock=clock)
        return cls(transport, requested_api=settings.sonar_api, sonar_url=str(settings.sonar_url))

    @classmethod
    async def open(
        cls,
        settings: SonarQubeSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
    ) -> SonarQubeConnection:
        """A connection that has asked SonarQube once, whatever the answer (see `state`)."""
        connection = cls.create(settings, session=session, sleep=sleep, clock=clock)
        await connection.refresh()
        return connection

    def observe(self, metrics: Metrics) -> None:
        """Report SonarQube's state and every call's attempts to `metrics` from now on."""
        self._metrics = metrics
        self._transport.observe(metrics)
        self._settle(self.state)

    @property
    def capabilities(self) -> Capabilities | None:
        """What the SonarQube behind the bridge can do; None until it has been seen UP."""
        return self._capabilities

    def client(self, token: str) -> SonarQubeClient:
        """A client that authenticates with `token`, speaking the dialect of SonarQube's current version;
        `Unavailable` (saying why) while SonarQube is not UP."""
        capabilities = self._capabilities
        if capabilities is None or not self.state.up:
            raise Unavailable(self.state.detail, retry_after=WATCH_WHILE_NOT_UP * 5, endpoint=STATUS_ENDPOINT)
        if capabilities.dialect is Dialect.V2:
            return V2Client(self._transport, token, capabilities)
        return V1Client(self._transport, token, capabilities)

    async def refresh(self) -> ServerState:
        """Ask SonarQube what it is doing (one attempt), and detect its capabilities when it is UP with a
        version not seen before."""
        state = await self._ask()
        if state.up and state.version is not None and self._version() != state.version:
            try:
                self._capabilities = Capabilities.detect(state.version, self._requested_api)
            except ConfigError as exc:
                self._capabilities = None
                state = ServerState("MISCONFIGURED", str(exc), state.version)
        self._settle(state)
        return state

    async def watch(self) -> None:
        """Follow SonarQube until cancelled, looking again at once when a call gives up on it. A
        connection that has already looked waits its interval first."""
        while True:
            if self.state.status != "UNKNOWN":
                interval = WATCH_WHILE_UP if self.state.up else WATCH_WHILE_NOT_UP
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), interval)
                self._wake.clear()
            await self.refresh()

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    # -- helpers -------------------------------------------------------------------------------------
    async def _ask(self) -> ServerState:
        try:
            reply = await self._transport.probe(STATUS_ENDPOINT)
        except Unavailable as exc:
            why = f"answers HTTP {exc.status}" if exc.status else "cannot be reached"
            return ServerState("UNREACHABLE", f"SonarQube at {self._sonar_url} {why}", cause=exc.message)
        except SonarQubeError as exc:
            detail = f"{self._sonar_url} is not a SonarQube: is sonar_url right?"
            return ServerState("UNEXPECTED", detail, cause=exc.message)
        try:
            payload = reply.json_object()
            status, version = str(payload["status"]), SonarVersion.parse(str(payload["version"]))
        except (SonarQubeError, KeyError, ValueError):
            return ServerState(
                "UNEXPECTED",
                f"{self._sonar_url}{STATUS_ENDPOINT} is not SonarQube's status: is sonar_url right?",
            )
        if status == UP:
            return ServerState(UP, f"SonarQube {version} is up", version)
        detail = _STATUS_DETAILS.get(status, f"SonarQube says {status}").replace(
            "<sonar_url>", self._sonar_url
        )
        return ServerState(status, f"{detail} (api/system/status: {status})", version)

    def _version(self) -> SonarVersion | None:
        return None if self._capabilities is None else self._capabilities.version

    def _settle(self, state: ServerState) -> None:
        previous, self.state = self.state, state
        if (previous.status, previous.version) != (state.status, state.version):
            details: dict[str, Any] = {"status": state.status, "was": previous.status, "cause": state.cause}
            if self._capabilities is not None:
                details |= {
                    "version": str(self._capabilities.version),
                    "dialect": self._capabilities.dialect.value,
                }
            (log.info if state.up else log.warning)("sonarqube.status_changed", **details)
        if self._metrics is not None:
            capabilities = self._capabilities
            self._metrics.sonarqube_state(
                up=state.up,
                version=None if capabilities is None else str(capabilities.version),
                dialect=None if capabilities is None else capabilities.dialect.value,
            )

    def _failed(self, unreachable: bool) -> None:
        """A call gave up on SonarQube: look again now; when it could not even connect, SonarQube is not UP
        any more meanwhile."""
        if unreachable and self.state.up:
            self._settle(ServerState("UNREACHABLE", f"SonarQube at {self._sonar_url} stopped answering"))
        self._wake.set()
