"""The admin listener (`admin_host`:`admin_port`, default 127.0.0.1:9081): probes and metrics, apart from
the port SonarQube's users and Entra reach, so that no bridge path ever shadows a SonarQube path.

/healthz   200 while the process serves (liveness)
/readyz    200 when the bridge can provision: SonarQube answers UP and the store accepts a write, and the
           bridge is not draining after SIGTERM; 503 otherwise. The JSON body says why, and also reports a
           static-mode service token SonarQube refuses, which does not make the pod unready: in the shape
           where all of SonarQube's traffic goes through the bridge, that would take SonarQube's UI down too.
/metrics   Prometheus text format (names and labels: docs/operations.md)
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from scim_bridge.store import StoreError
from scim_bridge.web.keys import ADMIN_OF, AUTHENTICATOR, METRICS, SERVING, SONAR, STORE
from scim_bridge.web.middleware import name_the_server

if TYPE_CHECKING:
    from scim_bridge.metrics import Metrics

HEALTHZ: Final = "/healthz"
READYZ: Final = "/readyz"
METRICS_PATH: Final = "/metrics"
STORE_CHECK_SECONDS: Final = 2.0  # a store that cannot take a write lock this fast is not ready


def create_admin_app(bridge: web.Application) -> web.Application:
    """The admin application of `bridge` (an application made by `create_app`), served on its own port."""
    admin = web.Application()
    admin[ADMIN_OF] = bridge
    admin.on_response_prepare.append(name_the_server)
    admin.router.add_get(HEALTHZ, healthz)
    admin.router.add_get(READYZ, readyz)
    admin.router.add_get(METRICS_PATH, metrics)
    return admin


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    report = await readiness(request.app[ADMIN_OF])
    return web.json_response(report, status=200 if report["ready"] else 503)


async def metrics(request: web.Request) -> web.Response:
    registry: Metrics = request.app[ADMIN_OF][METRICS]
    return web.Response(body=registry.exposition(), content_type="text/plain", charset="utf-8")


async def readiness(bridge: web.Application) -> dict[str, Any]:
    """Whether the bridge can provision now, and why not: SonarQube's state, the store, draining."""
    reasons: list[str] = []
    if bridge[SERVING].draining:
        reasons.append("draining: the bridge is shutting down")
    sonar = bridge[SONAR].state
    if not sonar.up:
        reasons.append(sonar.detail)
    store = "writable"
    try:
        await asyncio.wait_for(bridge[STORE].check_writable(), STORE_CHECK_SECONDS)
    except (StoreError, TimeoutError) as exc:
        store = str(exc) or "the store did not take a write lock in time"
        reasons.append(f"state store: {store}")
    report: dict[str, Any] = {
        "ready": not reasons,
        "reasons": reasons,
        "sonarqube": {"status": sonar.status, "detail": sonar.detail},
        "store": store,
    }
    capabilities = bridge[SONAR].capabilities
    if capabilities is not None:
        report["sonarqube"] |= {"version": str(capabilities.version), "dialect": capabilities.dialect.value}
    if sonar.up and (problem := await bridge[AUTHENTICATOR].service_token_problem()) is not None:
        report["service_token"] = problem
    return report
