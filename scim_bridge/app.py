"""`create_app(settings)`: the scim-bridge web application. Nothing happens at import time.

The collaborators (SonarQube connection, state store) may be injected, as tests do; whatever is not is
opened when the application starts and closed when it stops. Injected ones are left open for their owner.
The application starts whatever SonarQube is doing: the connection watches SonarQube in the background and
SCIM requests are answered 503 until it is UP (see `sonarqube/connection.py`). `create_admin_app` serves its
probes and metrics on another port (`web/admin.py`). With `reconcile_interval`, a `reconcile` runs in the
background every that many seconds (`provisioning/reconcile.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, cast

import structlog
from aiohttp import web

from scim_bridge.metrics import Metrics
from scim_bridge.provisioning.reconcile import reconcile_now, reconcile_periodically
from scim_bridge.provisioning.service import Provisioner
from scim_bridge.sonarqube import SonarQubeConnection
from scim_bridge.store import StoreError, StoreLocked, open_store
from scim_bridge.store.deferred import DeferredStore
from scim_bridge.web import add_scim_routes, scim_middlewares
from scim_bridge.web.admin import create_admin_app
from scim_bridge.web.auth import authenticator_for
from scim_bridge.web.keys import (
    AUTHENTICATOR,
    METRICS,
    PROVISIONER,
    PROXY,
    SERVING,
    SETTINGS,
    SONAR,
    STORE,
    Serving,
)
from scim_bridge.web.middleware import stamp_response
from scim_bridge.web.proxy import ReverseProxy

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from scim_bridge.config import BridgeSettings
    from scim_bridge.store import StateStore

__all__ = ["create_admin_app", "create_app"]

log = structlog.get_logger("scim_bridge.app")


def create_app(
    settings: BridgeSettings,
    *,
    sonar: SonarQubeConnection | None = None,
    store: StateStore | None = None,
) -> web.Application:
    """The SCIM service at `settings.base_path`, and the reverse proxy to SonarQube for every other path
    unless `proxy` is off; request bodies under the base path over `max_body_bytes` are refused (413)."""
    app = web.Application(middlewares=scim_middlewares(), client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[METRICS] = Metrics(service_token=settings.auth == "static")
    app[SERVING] = Serving()
    app.cleanup_ctx.append(_collaborators(sonar, store))
    app.on_response_prepare.append(stamp_response)
    add_scim_routes(app, settings.base_path)
    return app


def _collaborators(
    sonar: SonarQubeConnection | None, store: StateStore | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def open_and_close(app: web.Application) -> AsyncIterator[None]:
        settings, metrics = app[SETTINGS], app[METRICS]
        async with AsyncExitStack() as opened:
            state = store
            if state is None:
                state = await _open_or_defer(settings, opened)
                opened.push_async_callback(state.close)
            state.observe(metrics)
            connection = sonar
            if connection is None:
                connection = SonarQubeConnection.create(settings)
                opened.push_async_callback(connection.close)
            connection.observe(metrics)
            watcher = asyncio.create_task(connection.watch(), name="watch SonarQube")
            opened.push_async_callback(_cancelled, watcher)
            app[SONAR] = connection
            app[STORE] = state
            app[PROVISIONER] = provisioner = Provisioner(store=state, settings=settings)
            if settings.reconcile_interval > 0:
                runs = asyncio.create_task(
                    reconcile_periodically(
                        settings.reconcile_interval,
                        lambda: reconcile_now(
                            connection, state, settings, dry_run=False, locks=provisioner.locks
                        ),
                    ),
                    name="reconcile",
                )
                opened.push_async_callback(_cancelled, runs)
            app[AUTHENTICATOR] = authenticator_for(settings, connection, metrics)
            if settings.proxy == "on":
                proxy = ReverseProxy(
                    str(settings.sonar_url),
                    trusted_proxies=settings.trusted_proxies,
                    timeout=settings.proxy_timeout,
                    on_answer=metrics.proxy_answer,
                )
                await proxy.start()
                opened.push_async_callback(proxy.close)
                app[PROXY] = proxy
            yield

    return open_and_close


async def _open_or_defer(settings: BridgeSettings, opened: AsyncExitStack) -> StateStore:
    """The store, or (when it cannot be opened now) a stand-in that keeps trying: the bridge starts anyway,
    not ready, as it does without SonarQube. Another process holding the store stops the start."""
    try:
        return await open_store(settings.store)
    except StoreLocked:
        raise
    except StoreError as exc:
        log.warning("store.unavailable", reason=str(exc))
        deferred = DeferredStore(lambda: open_store(settings.store), str(exc))
        opened.push_async_callback(_cancelled, asyncio.create_task(deferred.keep_trying(), name="open store"))
        return cast("StateStore", deferred)  # it answers every StateStore call, by delegation


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
