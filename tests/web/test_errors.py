"""Error rendering, request bodies, request ids and the access log, over HTTP."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import pytest
from structlog.testing import capture_logs

from scim_bridge.web.keys import PROVISIONER
from tests.support import ERROR_SCHEMA, SCIM_JSON, USER_SCHEMA, Reply

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.web.conftest import Bridge, BridgeFactory

USER = {"schemas": [USER_SCHEMA], "userName": "alice@example.com"}
ONE_MIB = 1024 * 1024


def assert_scim_error(reply: Reply, status: int, scim_type: str | None = None) -> None:
    assert reply.status == status, reply
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)
    assert reply.body["schemas"] == [ERROR_SCHEMA]
    assert reply.body["status"] == str(status)
    assert reply.body.get("scimType") == scim_type


# -- request bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "position"),
    [('{"userName": ', "line 1, column 14"), ('{\n  "userName": "a",\n}', "line 3, column 1")],
    ids=["truncated", "trailing-comma"],
)
async def test_malformed_json_is_400_with_the_position(bridge: Bridge, body: str, position: str) -> None:
    """A body that is not JSON is a 400 invalidSyntax that says where parsing stopped."""
    reply = await bridge.request("POST", "/Users", data=body, headers={"Content-Type": SCIM_JSON})

    assert_scim_error(reply, 400, "invalidSyntax")
    assert position in reply.body["detail"]


@pytest.mark.parametrize(
    ("body", "kind"),
    [("[]", "an array"), ('"alice"', "a string"), ("null", "null"), ("42", "a number"), ("", "empty")],
    ids=["array", "string", "null", "number", "empty"],
)
async def test_body_that_is_not_an_object_is_400(bridge: Bridge, body: str, kind: str) -> None:
    """POST, PUT and PATCH bodies must be JSON objects: anything else is a 400 invalidSyntax naming it."""
    reply = await bridge.request("PATCH", "/Users/some-id", data=body, headers={"Content-Type": SCIM_JSON})

    assert_scim_error(reply, 400, "invalidSyntax")
    assert kind in reply.body["detail"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_other_content_types_are_400(bridge: Bridge, content_type: str) -> None:
    """A body sent as anything but SCIM JSON or JSON is a 400 invalidSyntax naming its content type."""
    reply = await bridge.request(
        "POST", "/Users", data=json.dumps(USER), headers={"Content-Type": content_type}
    )

    assert_scim_error(reply, 400, "invalidSyntax")
    assert content_type in reply.body["detail"]


@pytest.mark.parametrize(
    "content_type",
    ["application/scim+json", "application/scim+json; charset=utf-8", "application/json", "Application/JSON"],
)
async def test_json_content_types_are_accepted(bridge: Bridge, content_type: str) -> None:
    """SCIM JSON and JSON bodies are read, with or without a charset parameter, in any case."""
    reply = await bridge.request(
        "POST", "/Users", data=json.dumps(USER), headers={"Content-Type": content_type}
    )

    assert reply.status == 201, reply


async def test_body_without_content_type_is_read_as_json(bridge: Bridge) -> None:
    """A JSON body sent without any Content-Type is accepted."""
    async with bridge.http.post(
        bridge.url("/Users"),
        data=json.dumps(USER).encode(),
        headers={"Authorization": f"Bearer {bridge.token}"},
        skip_auto_headers=["Content-Type"],
    ) as resp:
        assert resp.status == 201


async def test_body_over_the_limit_is_413(bridge: Bridge) -> None:
    """A body larger than max_body_bytes (1 MiB by default) is a 413 SCIM error."""
    body = json.dumps({**USER, "title": "x" * ONE_MIB}).encode()
    headers = {"Authorization": f"Bearer {bridge.token}", "Content-Type": SCIM_JSON}

    async with bridge.http.post(bridge.url("/Users"), data=io.BytesIO(body), headers=headers) as resp:
        assert resp.request_info.headers["Content-Length"] == str(len(body))
        reply = Reply(resp.status, resp.headers, await resp.json(content_type=SCIM_JSON))

    assert_scim_error(reply, 413)
    assert str(ONE_MIB) in reply.body["detail"]


async def test_chunked_body_over_the_limit_is_413(bridge: Bridge) -> None:
    """A body sent in chunks, without Content-Length, is cut off at max_body_bytes too."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": "'
        for _ in range(17):
            yield b"x" * 65536
        yield b'"}'

    headers = {"Authorization": f"Bearer {bridge.token}", "Content-Type": SCIM_JSON}
    async with bridge.http.post(bridge.url("/Users"), data=chunks(), headers=headers) as resp:
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert resp.status == 413
        assert resp.content_type == SCIM_JSON


# -- paths and methods ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/Nope", "/Users/some-id/extra", "", "/"], ids=["unknown", "deeper", "base", "slash"]
)
async def test_unknown_path_under_the_base_is_a_scim_404(bridge: Bridge, path: str) -> None:
    """Any path under the SCIM base that names no endpoint is a 404 SCIM error."""
    reply = await bridge.get(path)

    assert_scim_error(reply, 404)


async def test_path_outside_the_base_without_the_proxy_is_a_plain_404(bridge_factory: BridgeFactory) -> None:
    """With the proxy off, the bridge answers a plain 404 outside the SCIM base path (no SCIM body, but a
    request id and the bridge's own Server header) and asks for no token."""
    bridge = await bridge_factory(proxy="off")
    async with bridge.http.get(bridge.server.make_url("/api/system/status")) as resp:
        assert resp.status == 404
        assert resp.content_type != SCIM_JSON
        assert resp.headers["X-Request-Id"]
        assert resp.headers["Server"] == "scim-bridge"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/Users", "GET, POST"),
        ("DELETE", "/Groups", "GET, POST"),
        ("POST", "/Users/some-id", "DELETE, GET, PATCH, PUT"),
        ("OPTIONS", "/Groups/some-id", "DELETE, GET, PATCH, PUT"),
    ],
)
async def test_wrong_method_is_405_with_allow(bridge: Bridge, method: str, path: str, allowed: str) -> None:
    """A method an endpoint does not take is a 405 SCIM error whose Allow header lists the ones it does."""
    reply = await bridge.request(method, path)

    assert_scim_error(reply, 405)
    assert reply.headers["Allow"] == allowed


# -- unexpected failures and request ids ---------------------------------------------------------------


@pytest.fixture
def broken_get(bridge: Bridge, monkeypatch: pytest.MonkeyPatch) -> None:
    """GET /Users/{id} fails with an exception no layer translates."""

    async def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(bridge.server.app[PROVISIONER].users, "get", fail)


@pytest.mark.usefixtures("broken_get")
async def test_unexpected_failure_is_an_opaque_500(bridge: Bridge) -> None:
    """An unexpected exception is a 500 SCIM error quoting the request id, without any internals."""
    with capture_logs() as logs:
        reply = await bridge.get("/Users/some-id")

    assert_scim_error(reply, 500)
    request_id = reply.headers["X-Request-Id"]
    assert request_id in reply.body["detail"]
    assert "hunter2" not in json.dumps(reply.body)
    assert "Traceback" not in json.dumps(reply.body)
    (logged,) = [event for event in logs if event["event"] == "scim.unhandled_error"]
    assert logged["exc_info"] is True
    assert logged["route"] == "/api/scim/v2/Users/{id}"


@pytest.mark.usefixtures("broken_get")
async def test_500_quotes_the_callers_request_id(bridge: Bridge) -> None:
    """The request id a client sent is the one a 500 quotes, so both sides can find the request."""
    reply = await bridge.get("/Users/some-id", headers={"X-Request-Id": "entra-7f3a.1"})

    assert reply.headers["X-Request-Id"] == "entra-7f3a.1"
    assert "entra-7f3a.1" in reply.body["detail"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-123_x.y", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("bad id", False),
        ("x\u00e9", False),
        ("<script>", False),
    ],
    ids=["sane", "128-chars", "129-chars", "space", "non-ascii", "markup"],
)
async def test_request_id_is_echoed_when_sane(bridge: Bridge, sent: str, kept: bool) -> None:
    """A sane X-Request-Id (≤ 128 of [A-Za-z0-9._-]) is echoed; otherwise a fresh id replaces it."""
    async with bridge.http.get(
        bridge.url("/ServiceProviderConfig"),
        headers={"Authorization": f"Bearer {bridge.token}", "X-Request-Id": sent},
    ) as resp:
        echoed = resp.headers["X-Request-Id"]

    assert (echoed == sent) is kept
    assert echoed


@pytest.mark.parametrize("path", ["/ServiceProviderConfig", "/Nope"], ids=["ok", "scim-404"])
async def test_every_answer_carries_a_request_id(bridge: Bridge, path: str) -> None:
    """Answers carry an X-Request-Id even when the client sent none, errors included."""
    reply = await bridge.get(path)

    assert len(reply.headers["X-Request-Id"]) == 32


async def test_one_access_log_event_per_request(bridge: Bridge) -> None:
    """Each request logs one `scim.request` with method, route template, status and duration, and never
    the token, the query or an id from the path."""
    with capture_logs() as logs:
        await bridge.get("/Users/secret-looking-id?attributes=userName")

    (event,) = [event for event in logs if event["event"] == "scim.request"]
    assert {key: event[key] for key in ("method", "route", "status")} == {
        "method": "GET",
        "route": "/api/scim/v2/Users/{id}",
        "status": 404,
    }
    assert event["duration_ms"] >= 0
    assert bridge.token not in repr(logs)
    assert "secret-looking-id" not in repr(event)
