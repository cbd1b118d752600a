"""The running service: the bridge on its port (HTTP or HTTPS), its admin listener on another, and an
orderly stop.

On SIGTERM (`stop`): readiness fails at once; the main listener stops accepting connections; requests in
flight get `shutdown_grace` seconds to finish; then the store and the SonarQube connections close, and
last the admin listener. Kubernetes' `terminationGracePeriodSeconds` must leave room for that.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from scim_bridge.app import create_admin_app, create_app
from scim_bridge.web.keys import SERVING
from scim_bridge.web.tls import ServerCertificate

if TYPE_CHECKING:
    from scim_bridge.config import BridgeSettings

log = structlog.get_logger("scim_bridge.serving")


class StartError(Exception):
    """The service cannot start (an address in use); the message names the setting."""


class RunningBridge:
    """The bridge and its admin listener, started by `start` and stopped by `stop`."""

    def __init__(
        self,
        settings: BridgeSettings,
        bridge: web.AppRunner,
        admin: web.AppRunner,
        certificate: ServerCertificate | None,
    ) -> None:
        self.settings = settings
        self._bridge = bridge
        self._admin = admin
        self._certificate = certificate
        self._reloading: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, settings: BridgeSettings) -> RunningBridge:
        """Listen on both ports at once, whatever SonarQube is doing; nothing is left half-open on failure."""
        certificate = None
        if settings.tls_cert is not None and settings.tls_key is not None:
            certificate = ServerCertificate(settings.tls_cert, settings.tls_key)
        app = create_app(settings)
        # aiohttp's access log is off: the bridge logs one event per request itself.
        bridge = web.AppRunner(app, access_log=None, shutdown_timeout=settings.shutdown_grace)
        admin = web.AppRunner(create_admin_app(app), access_log=None)
        running = cls(settings, bridge, admin, certificate)
        try:
            await bridge.setup()  # opens the store, starts watching SonarQube
            await admin.setup()
            await listen(bridge, settings.host, settings.port, certificate)
            await listen(admin, settings.admin_host, settings.admin_port)
        except BaseException:
            await running.stop()
            raise
        if certificate is not None:
            running._reloading = asyncio.create_task(certificate.watch(), name="reload TLS certificate")
        log.info("scim.listening", url=running.url + settings.base_path, admin=running.admin_url)
        return running

    @property
    def url(self) -> str:
        return listening_url(self._bridge, https=self._certificate is not None)

    @property
    def admin_url(self) -> str:
        return listening_url(self._admin)

    async def stop(self) -> None:
        """Drain, then close everything (see the module's docstring)."""
        if self._bridge.server is not None:
            self._bridge.app[SERVING].draining = True
            log.info("scim.draining", grace_seconds=self.settings.shutdown_grace)
        if self._reloading is not None:
            self._reloading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloading
        await self._bridge.cleanup()
        await self._admin.cleanup()
        log.info("scim.stopped")


async def listen(
    runner: web.AppRunner, host: str, port: int, certificate: ServerCertificate | None = None
) -> None:
    context = None if certificate is None else certificate.context
    try:
        await web.TCPSite(runner, host, port, ssl_context=context).start()
    except OSError as exc:
        raise StartError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def listening_url(runner: web.AppRunner, *, https: bool = False) -> str:
    """`http://host:port` of the first address the runner listens on (the real port when 0 was asked)."""
    host, port = runner.addresses[0][:2]
    scheme = "https" if https else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
