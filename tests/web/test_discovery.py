"""Discovery endpoints (RFC 7644 §4) and the endpoints the bridge does not implement, over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support import ENTERPRISE_USER_SCHEMA, ERROR_SCHEMA, GROUP_SCHEMA, SCIM_JSON, USER_SCHEMA

if TYPE_CHECKING:
    from tests.web.conftest import Bridge, BridgeFactory

DOCUMENTS = [
    ("/ServiceProviderConfig", "/ServiceProviderConfig"),
    ("/ResourceTypes/User", "/ResourceTypes/User"),
    (f"/Schemas/{GROUP_SCHEMA}", f"/Schemas/{GROUP_SCHEMA}"),
]


@pytest.mark.parametrize(
    ("path", "resource_type", "location"),
    [
        ("/ServiceProviderConfig", "ServiceProviderConfig", "/ServiceProviderConfig"),
        ("/ResourceTypes/User", "ResourceType", "/ResourceTypes/User"),
        ("/ResourceTypes/group", "ResourceType", "/ResourceTypes/Group"),
        (f"/Schemas/{ENTERPRISE_USER_SCHEMA}", "Schema", f"/Schemas/{ENTERPRISE_USER_SCHEMA}"),
    ],
    ids=["service-provider-config", "resource-type", "resource-type-any-case", "schema-urn"],
)
async def test_discovery_document(bridge: Bridge, path: str, resource_type: str, location: str) -> None:
    """Each discovery document is SCIM JSON whose meta.location is its absolute URL on the bridge."""
    reply = await bridge.get(path)

    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)
    assert reply.body["meta"]["resourceType"] == resource_type
    assert reply.body["meta"]["location"] == bridge.url(location)


@pytest.mark.parametrize(
    ("path", "ids"),
    [
        ("/ResourceTypes", ["User", "Group"]),
        (
            "/Schemas",
            [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA],
        ),
    ],
    ids=["resource-types", "schemas"],
)
async def test_discovery_list(bridge: Bridge, path: str, ids: list[str]) -> None:
    """ResourceTypes and Schemas answer a ListResponse of every document the bridge publishes."""
    reply = await bridge.get(path)

    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)
    assert reply.body["totalResults"] == len(ids)
    assert [each["id"] for each in reply.body["Resources"]] == ids


async def test_service_provider_config_advertises_what_is_supported(bridge: Bridge) -> None:
    """PATCH, filters and ETags are advertised as supported; bulk, sort and password changes are not."""
    config = (await bridge.get("/ServiceProviderConfig")).body

    assert {
        name: config[name]["supported"]
        for name in ("patch", "filter", "etag", "bulk", "sort", "changePassword")
    } == {
        "patch": True,
        "filter": True,
        "etag": True,
        "bulk": False,
        "sort": False,
        "changePassword": False,
    }


@pytest.mark.parametrize("accept", [None, "text/html", "application/xml"], ids=["none", "html", "xml"])
async def test_no_accept_header_is_required(bridge: Bridge, accept: str | None) -> None:
    """Whatever Accept says, or without one, the answer is SCIM JSON (Entra sends none; docs/entra.md Q22)."""
    headers = {"Authorization": f"Bearer {bridge.token}"}
    if accept is not None:
        headers["Accept"] = accept
    async with bridge.http.get(
        bridge.url("/ServiceProviderConfig"), headers=headers, skip_auto_headers=["Accept"]
    ) as resp:
        assert resp.status == 200
        assert resp.content_type == SCIM_JSON


@pytest.mark.parametrize(
    "path", ["/ResourceTypes/Device", "/Schemas/urn:example:unknown"], ids=["resource-type", "schema"]
)
async def test_unknown_discovery_document_is_a_scim_404(bridge: Bridge, path: str) -> None:
    """A resource type or schema the bridge does not publish is a 404 SCIM error."""
    reply = await bridge.get(path)

    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)
    assert reply.body["status"] == "404"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/Bulk"),
        ("GET", "/Me"),
        ("PATCH", "/Me"),
        ("POST", "/.search"),
        ("POST", "/Users/.search"),
        ("POST", "/Groups/.search"),
    ],
    ids=["bulk", "me-get", "me-patch", "search-all", "search-users", "search-groups"],
)
async def test_unsupported_endpoints_are_501(bridge: Bridge, method: str, path: str) -> None:
    """/Bulk and /Me (any method, docs/entra.md E18) and POST searches (RFC 7644 §3.4.3) answer 501 SCIM
    errors."""
    reply = await bridge.request(method, path, json={"schemas": []})

    assert reply.status == 501
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)
    assert reply.body["schemas"] == [ERROR_SCHEMA]
    assert f"{method} {path} is not supported" in reply.body["detail"]


@pytest.mark.parametrize("path", ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas"])
async def test_discovery_is_read_only(bridge: Bridge, path: str) -> None:
    """Writing to a discovery endpoint is a 405 SCIM error that allows GET only."""
    reply = await bridge.post(path, {"schemas": []})

    assert reply.status == 405
    assert reply.headers["Allow"] == "GET"
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)


async def test_discovery_needs_the_token_too(bridge: Bridge) -> None:
    """Discovery is authenticated like every SCIM path, as in SonarQube Enterprise."""
    reply = await bridge.get("/ServiceProviderConfig", token=None)

    assert reply.status == 401


@pytest.mark.parametrize(
    ("settings", "headers", "origin"),
    [
        pytest.param(
            {"public_url": "https://sonar.example.com/"},
            {"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
            "https://sonar.example.com",
            id="public-url",
        ),
        pytest.param(
            {"trusted_proxies": ["127.0.0.1/32", "::1/128"]},
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "scim.example.com"},
            "https://scim.example.com",
            id="trusted-proxy",
        ),
        pytest.param(
            {}, {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}, None, id="untrusted-peer"
        ),
    ],
)
async def test_discovery_documents_use_the_same_base_url_as_resources(
    bridge_factory: BridgeFactory, settings: dict[str, object], headers: dict[str, str], origin: str | None
) -> None:
    """Discovery documents' meta.location and resource locations share one base URL: `public_url`, else the
    request's own, as a trusted proxy forwarded it (a client's own X-Forwarded-* are ignored)."""
    bridge = await bridge_factory(**settings)
    base = (origin or str(bridge.server.make_url("/")).rstrip("/")) + bridge.settings.base_path

    for path, location in DOCUMENTS:
        reply = await bridge.get(path, headers=headers)
        assert reply.status == 200, reply
        assert reply.body["meta"]["location"] == base + location
    listed = await bridge.get("/ResourceTypes", headers=headers)
    assert {each["meta"]["location"] for each in listed.body["Resources"]} == {
        f"{base}/ResourceTypes/User",
        f"{base}/ResourceTypes/Group",
    }
