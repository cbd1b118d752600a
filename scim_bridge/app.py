"""`create_app(settings)`: the scim-bridge web application. Nothing happens at import time.

The collaborators (SonarQube connection, state store) may be injected, as tests do; whatever is not is
opened when the application starts and closed when it stops. Injected ones are left open for their owner.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from aiohttp import web

from scim_bridge.provisioning.service import Provisioner
from scim_bridge.sonarqube import SonarQubeConnection
from scim_bridge.store import open_store
from scim_bridge.web import add_scim_routes, scim_middlewares
from scim_bridge.web.auth import authenticator_for
from scim_bridge.web.keys import AUTHENTICATOR, PROVISIONER, PROXY, SETTINGS
from scim_bridge.web.middleware import stamp_response
from scim_bridge.web.proxy import ReverseProxy

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from scim_bridge.config import BridgeSettings
    from scim_bridge.store import StateStore


def create_app(
    settings: BridgeSettings,
    *,
    sonar: SonarQubeConnection | None = None,
    store: StateStore | None = None,
) -> web.Application:
    """The SCIM service at `settings.base_path`; request bodies over `max_body_bytes` are refused (413)."""
    app = web.Application(middlewares=scim_middlewares(), client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_collaborators(sonar, store))
    app.on_response_prepare.append(stamp_response)
    add_scim_routes(app, settings.base_path)
    return app


def _collaborators(
    sonar: SonarQubeConnection | None, store: StateStore | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def open_and_close(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        async with AsyncExitStack() as opened:
            # The store first: a wrong store URL is told at once, not after SonarQube's retries.
            state = store
            if state is None:
                state = await open_store(settings.store)
                opened.push_async_callback(state.close)
            connection = sonar
            if connection is None:
                connection = await SonarQubeConnection.open(settings)
                opened.push_async_callback(connection.close)
            app[PROVISIONER] = Provisioner(store=state, settings=settings)
            app[AUTHENTICATOR] = authenticator_for(settings, connection)
            if settings.proxy == "on":
                proxy = ReverseProxy(
                    str(settings.sonar_url),
                    trusted_proxies=settings.trusted_proxies,
                    timeout=settings.proxy_timeout,
                )
                await proxy.start()
                opened.push_async_callback(proxy.close)
                app[PROXY] = proxy
            yield

    return open_and_close
