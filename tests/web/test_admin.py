"""The admin listener: /healthz, /readyz and /metrics (docs/operations.md), read after a scripted sequence of
SCIM and proxied requests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

from scim_bridge.web.admin import HEALTHZ, METRICS_PATH, READYZ, create_admin_app
from scim_bridge.web.keys import SERVING
from tests.web.entra import ADELE, create_group, create_user, expect, find

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aiohttp.test_utils import TestServer

    from tests.web.conftest import Bridge, BridgeFactory

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(bridge: Bridge, admin: TestServer) -> Samples:
    """Every sample of /metrics, by name and labels."""
    async with bridge.http.get(admin.make_url(METRICS_PATH)) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_after_a_scripted_sequence(
    bridge_factory: BridgeFactory, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    """SCIM requests by resource, method and status; SonarQube calls by endpoint template; proxied answers;
    store operations; SonarQube's state and version; nothing in flight afterwards."""
    bridge = await bridge_factory("2025.6")
    admin = await aiohttp_server(create_admin_app(bridge.server.app))

    assert await find(bridge, "Users", f'userName eq "{ADELE}"') == []
    user = await create_user(bridge)
    await create_group(bridge)
    assert (await bridge.get(f"/Users/{user['id']}", token="wrong-token")).status == 401
    assert (await bridge.get("/Nope")).status == 404
    async with bridge.http.get(bridge.server.make_url("/api/server/version")) as resp:
        assert resp.status == 200  # SonarQube, through the proxy

    samples = await scrape(bridge, admin)
    scim = "scim_bridge_scim_requests_total"
    assert value(samples, scim, resource="Users", method="GET", status="200") == 1
    assert value(samples, scim, resource="Users", method="POST", status="201") == 1
    assert value(samples, scim, resource="Groups", method="POST", status="201") == 1
    assert value(samples, scim, resource="Users", method="GET", status="401") == 1
    assert value(samples, scim, resource="unmatched", method="GET", status="404") == 1
    assert value(samples, "scim_bridge_scim_request_seconds_count", resource="Users", method="POST") == 1
    users = "api/v2/users-management/users"
    assert (
        value(samples, "scim_bridge_sonarqube_calls_total", endpoint=users, method="POST", status="200") == 1
    )
    assert value(samples, "scim_bridge_sonarqube_call_seconds_count", endpoint=users, method="POST") == 1
    assert value(samples, "scim_bridge_proxy_requests_total", status="200") == 1
    assert value(samples, "scim_bridge_store_operation_seconds_count", operation="insert User") == 1
    assert value(samples, "scim_bridge_sonarqube_up") == 1
    assert value(samples, "scim_bridge_sonarqube_info", version="2025.6.0.115417", dialect="v2") == 1
    assert value(samples, "scim_bridge_requests_in_flight") == 0
    # Label values are templates and names, never ids, logins or paths.
    labels = {label for (_, pairs) in samples for _, label in pairs}
    assert not any(user["id"] in label or ADELE in label for label in labels)


async def test_health_and_readiness(
    bridge_factory: BridgeFactory, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    """/healthz is 200 while the process serves (and names no versions); /readyz is 200 with SonarQube's
    version, then 503 once the bridge drains, saying so."""
    bridge = await bridge_factory("9.9")
    admin = await aiohttp_server(create_admin_app(bridge.server.app))
    async with bridge.http.get(admin.make_url(HEALTHZ)) as resp:
        assert (resp.status, await resp.json()) == (200, {"status": "ok"})
        assert resp.headers["Server"] == "scim-bridge"
    async with bridge.http.get(admin.make_url(READYZ)) as resp:
        report = await resp.json()
    assert (resp.status, report["ready"], report["store"]) == (200, True, "writable")
    assert (report["sonarqube"]["version"], report["sonarqube"]["dialect"]) == ("9.9.8.100196", "v1")

    bridge.server.app[SERVING].draining = True
    async with bridge.http.get(admin.make_url(READYZ)) as resp:
        report = await resp.json()
    assert (resp.status, report["ready"]) == (503, False)
    assert any("draining" in reason for reason in report["reasons"])


async def test_readiness_reports_a_refused_static_token_without_failing(
    bridge_factory: BridgeFactory, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    """Static auth with a service token SonarQube refuses: /readyz names the problem but stays 200 (all of
    SonarQube's traffic may go through the bridge), and the metric says 0."""
    bridge = await bridge_factory(auth="static", scim_tokens=["scim-token"], sonar_token="squ_revoked")
    admin = await aiohttp_server(create_admin_app(bridge.server.app))
    async with bridge.http.get(admin.make_url(READYZ)) as resp:
        report = await resp.json()
    assert resp.status == 200, report
    assert "does not accept" in report["service_token"]
    expect(await bridge.get("/Users", token="scim-token"), 503)
    assert value(await scrape(bridge, admin), "scim_bridge_service_token_valid") == 0
