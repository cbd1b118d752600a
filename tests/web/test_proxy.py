"""The reverse proxy: every path outside the SCIM base path streams to SonarQube and back unchanged, through
real HTTP, the bridge in front of a stand-in SonarQube (`tests.web.upstream`) or of the emulator."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import ssl
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import structlog
import trustme
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from pydantic import AnyHttpUrl
from structlog.testing import capture_logs
from yarl import URL

from scim_bridge.app import create_app
from scim_bridge.config import BridgeSettings
from scim_bridge.web.proxy import ReverseProxy
from tests.support import SCIM_JSON
from tests.web.upstream import (
    CHUNKS,
    GZIPPED,
    HOP_BY_HOP_ANSWER,
    LOGIN_COOKIES,
    LOGIN_LOCATION,
    UPSTREAM,
    Upstream,
    closed_port,
    create_upstream_app,
    pattern,
    sha256_of_pattern,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

    from aiohttp.test_utils import TestServer

    from tests.web.conftest import Bridge

MIB = 1024 * 1024
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


@dataclass
class Proxied:
    """A bridge (or a bare `ReverseProxy`) serving on a real port in front of the stand-in SonarQube."""

    server: TestServer
    upstream_server: TestServer

    @property
    def upstream(self) -> Upstream:
        return self.upstream_server.app[UPSTREAM]

    def url(self, target: str) -> URL:
        """`target` (path and query) is sent exactly as written: no quoting, no normalisation."""
        return URL(str(self.server.make_url("/")).rstrip("/") + target, encoded=True)


@dataclass
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def fetch(http: aiohttp.ClientSession, method: str, url: URL, **kwargs: Any) -> Answer:
    kwargs.setdefault("allow_redirects", False)
    async with http.request(method, url, **kwargs) as resp:
        return Answer(resp.status, resp.headers, await resp.read())


@pytest.fixture
async def upstream_server(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> AsyncIterator[TestServer]:
    """The stand-in SonarQube on a loopback port; its held answers are let go when the test ends."""
    app = create_upstream_app()
    server = await aiohttp_server(app)
    yield server
    app[UPSTREAM].release.set()
    app[UPSTREAM].gate.set()


@pytest.fixture
def proxied_bridge(
    aiohttp_server: Callable[..., Awaitable[TestServer]], upstream_server: TestServer
) -> Callable[..., Awaitable[Proxied]]:
    """Start the whole bridge (`create_app`) in front of the stand-in; keyword arguments are settings."""

    async def start(**settings: Any) -> Proxied:
        settings.setdefault("store", "sqlite://:memory:")
        sonar_url = AnyHttpUrl(str(upstream_server.make_url("/")))
        server = await aiohttp_server(create_app(BridgeSettings(sonar_url=sonar_url, **settings)))
        return Proxied(server, upstream_server)

    return start


@pytest.fixture
async def proxied(proxied_bridge: Callable[..., Awaitable[Proxied]]) -> Proxied:
    """The bridge with its default settings (proxy on, no trusted proxies) in front of the stand-in."""
    return await proxied_bridge()


@pytest.fixture
def bare_proxy(
    aiohttp_server: Callable[..., Awaitable[TestServer]], upstream_server: TestServer
) -> Callable[..., Awaitable[Proxied]]:
    """Start a `ReverseProxy` alone, answering every path (over HTTPS with `tls`), in front of `upstream`
    (else the stand-in, with a path `prefix`); other keyword arguments go to `ReverseProxy`."""

    async def start(
        upstream: str | None = None, *, prefix: str = "", tls: ssl.SSLContext | None = None, **options: Any
    ) -> Proxied:
        options.setdefault("trusted_proxies", [])
        options.setdefault("timeout", 10.0)
        upstream = upstream or str(upstream_server.make_url("/")).rstrip("/") + prefix
        proxy = ReverseProxy(upstream, **options)

        async def opened(_app: web.Application) -> AsyncIterator[None]:
            await proxy.start()
            yield
            await proxy.close()

        app = web.Application()
        app.cleanup_ctx.append(opened)
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        return Proxied(await aiohttp_server(app, ssl=tls), upstream_server)

    return start


@pytest.fixture
async def plain_http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that adds no header of its own and never decompresses: what it sends and gets is exact."""
    async with aiohttp.ClientSession(
        skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent"),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as session:
        yield session


def without_forwarding(headers: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    return sorted(
        (name.lower(), value) for name, value in headers if not name.lower().startswith("x-forwarded-")
    )


def forwarding(headers: Sequence[Sequence[str]]) -> dict[str, str]:
    """`Forwarded` and every `X-Forwarded-*` header, by lower-case name."""
    return {
        name.lower(): value
        for name, value in headers
        if name.lower() == "forwarded" or name.lower().startswith("x-forwarded-")
    }


# --- methods, targets, statuses and bodies ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
async def test_every_method_reaches_sonarqube_with_its_body(
    proxied: Proxied, http: aiohttp.ClientSession, method: str
) -> None:
    """Each method reaches SonarQube as sent, with its body byte for byte, and the answer comes back."""
    body = f"payload of {method}".encode() if method in {"POST", "PUT", "DELETE", "PATCH"} else None

    answer = await fetch(http, method, proxied.url("/api/projects/x"), data=body)

    assert answer.status == 200
    assert answer.headers["X-Seen-Method"] == method
    assert proxied.upstream.paths() == ["/api/projects/x"]
    if method == "HEAD":
        assert answer.body == b""
        assert int(answer.headers["Content-Length"]) > 0
    else:
        seen = answer.json()
        assert seen["method"] == method
        assert (seen["bytes"], seen["sha256"]) == (len(body or b""), hashlib.sha256(body or b"").hexdigest())


@pytest.mark.parametrize(
    "target",
    [
        "/api/issues/search?componentKeys=a&componentKeys=b&componentKeys=a",
        "/api/components/search?q=my+project&qualifiers=TRK",
        "/api/sources/raw?key=proj%3Asrc%2Fmain%2Fapp.py",
        "/api/sources/raw/src%2Fmain.py",
        "/api/measures?empty=&flag&spaced=a%20b&plus=%2B&utf8=%C3%A9",
        "/",
    ],
)
async def test_path_and_query_reach_sonarqube_exactly(
    proxied: Proxied, http: aiohttp.ClientSession, target: str
) -> None:
    """The path and query string reach SonarQube as received: `%2F`, `+` and repeated parameters kept."""
    answer = await fetch(http, "GET", proxied.url(target))

    assert answer.json()["raw_path"] == target
    assert proxied.upstream.paths() == [target]


@pytest.mark.parametrize("status", [200, 201, 204, 400, 404, 500])
async def test_status_and_body_come_back(proxied: Proxied, http: aiohttp.ClientSession, status: int) -> None:
    """SonarQube's status, body and content type come back as it sent them."""
    answer = await fetch(http, "GET", proxied.url(f"/status/{status}"))

    assert answer.status == status
    assert answer.body == (b"" if status == 204 else f"answer {status}".encode())
    if status != 204:
        assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    ("prefix", "seen"),
    [
        ("/sonarqube", "/sonarqube/api/x?a=1%2F2"),
        ("/sonarqube/", "/sonarqube/api/x?a=1%2F2"),
        ("/", "/api/x?a=1%2F2"),
        ("", "/api/x?a=1%2F2"),
    ],
)
async def test_a_path_prefix_in_the_sonarqube_url_is_kept(
    bare_proxy: Callable[..., Awaitable[Proxied]], http: aiohttp.ClientSession, prefix: str, seen: str
) -> None:
    """With `sonar_url` like `http://host:9000/sonarqube`, `/api/x` goes to `/sonarqube/api/x`."""
    proxy = await bare_proxy(prefix=prefix)

    answer = await fetch(http, "GET", proxy.url("/api/x?a=1%2F2"))

    assert answer.json()["raw_path"] == seen


# --- streaming ---------------------------------------------------------------------------------------------


async def test_request_body_streams_while_the_client_sends_it(
    proxied: Proxied, http: aiohttp.ClientSession
) -> None:
    """A chunked upload reaches SonarQube chunk by chunk: its first part arrives before the client sends
    the rest, so the bridge cannot be holding the whole body."""
    arrived = proxied.upstream.arrived

    async def upload() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        await arrived.wait()  # SonarQube has the first part while the client still holds the second
        yield b"b" * 1000

    async with asyncio.timeout(10):
        answer = await fetch(http, "POST", proxied.url("/api/upload"), data=upload())

    seen = answer.json()
    assert (seen["bytes"], seen["sha256"]) == (2000, hashlib.sha256(b"a" * 1000 + b"b" * 1000).hexdigest())
    sent = {name.lower(): value for name, value in seen["headers"]}
    assert sent["transfer-encoding"] == "chunked"
    assert "content-length" not in sent


async def test_expect_100_continue_is_answered_by_the_bridge(
    proxied: Proxied, http: aiohttp.ClientSession
) -> None:
    """A client that waits for `100 Continue` gets it from the bridge; its body then reaches SonarQube
    (without the Expect header, already answered)."""
    body = b"x" * 5000

    answer = await fetch(http, "POST", proxied.url("/api/upload"), data=body, expect100=True)

    seen = answer.json()
    assert (answer.status, seen["bytes"]) == (200, len(body))
    assert "expect" not in {name.lower() for name, _ in seen["headers"]}


async def test_chunked_answer_streams_as_sonarqube_sends_it(
    proxied: Proxied, http: aiohttp.ClientSession
) -> None:
    """An answer without Content-Length comes back chunked, its first chunk before SonarQube sends more."""
    async with asyncio.timeout(10), http.get(proxied.url("/chunked")) as resp:
        assert resp.headers["Transfer-Encoding"] == "chunked"
        assert "Content-Length" not in resp.headers
        first = await resp.content.readexactly(len(CHUNKS[0]))
        proxied.upstream.gate.set()  # SonarQube sends the rest only now
        rest = await resp.read()

    assert first + rest == b"".join(CHUNKS)


async def test_content_length_is_kept(proxied: Proxied, http: aiohttp.ClientSession) -> None:
    """An answer with Content-Length keeps it (no chunking) and arrives whole."""
    answer = await fetch(http, "GET", proxied.url("/download?bytes=300000"))

    assert answer.headers["Content-Length"] == "300000"
    assert "Transfer-Encoding" not in answer.headers
    assert hashlib.sha256(answer.body).hexdigest() == sha256_of_pattern(300_000)


async def test_compressed_answers_pass_compressed(
    proxied: Proxied, plain_http: aiohttp.ClientSession
) -> None:
    """A gzip answer comes back with its Content-Encoding and the very same compressed bytes."""
    answer = await fetch(plain_http, "GET", proxied.url("/gzip"), headers={"Accept-Encoding": "gzip"})

    assert answer.headers["Content-Encoding"] == "gzip"
    assert answer.headers["Content-Length"] == str(len(GZIPPED))
    assert answer.headers["Vary"] == "Accept"
    assert answer.body == GZIPPED


async def test_a_failure_mid_answer_closes_the_connection(
    proxied: Proxied, http: aiohttp.ClientSession
) -> None:
    """When SonarQube drops the connection mid-answer, the client's answer is cut short, never completed."""
    with capture_logs() as logs:
        async with http.get(proxied.url("/broken")) as resp:
            assert resp.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()

    assert [log["event"] for log in logs if log["event"].startswith("proxy.upstream")] == [
        "proxy.upstream_broken"
    ]


# --- headers -----------------------------------------------------------------------------------------------


async def test_headers_reach_sonarqube_unchanged(proxied: Proxied, plain_http: aiohttp.ClientSession) -> None:
    """Host, Authorization, cookies and repeated headers reach SonarQube as sent; nothing is added but the
    X-Forwarded-* headers (no Accept-Encoding, User-Agent or Accept of the bridge's own)."""
    sent = CIMultiDict(
        [
            ("Host", "sonar.example.com"),
            ("Authorization", "Basic c3F1X3Rva2VuOg=="),
            ("Cookie", "JWT-SESSION=eyJ0; XSRF-TOKEN=5a1e"),
            ("X-XSRF-TOKEN", "5a1e"),
            ("Accept-Language", "fr-CH, fr;q=0.9"),
            ("X-Repeated", "one"),
            ("X-Repeated", "two"),
        ]
    )

    answer = await fetch(plain_http, "GET", proxied.url("/api/users/current"), headers=sent)

    seen = answer.json()["headers"]
    assert without_forwarding(seen) == sorted((name.lower(), value) for name, value in sent.items())


async def test_sonarqube_sees_the_host_the_client_used(proxied: Proxied, http: aiohttp.ClientSession) -> None:
    """Without a Host of its own choosing, the client's Host is the bridge's address, and that is what
    SonarQube sees (it builds its redirects from it), not its own address."""
    answer = await fetch(http, "GET", proxied.url("/api/x"))

    seen = {name.lower(): value for name, value in answer.json()["headers"]}
    assert seen["host"] == f"127.0.0.1:{proxied.server.port}"
    assert seen["x-forwarded-host"] == seen["host"]


async def test_hop_by_hop_headers_stop_at_the_bridge_on_the_way_in(
    proxied: Proxied, plain_http: aiohttp.ClientSession
) -> None:
    """The client's hop-by-hop headers, and the one its Connection header names, never reach SonarQube."""
    sent = CIMultiDict(
        [
            ("Connection", "keep-alive, X-Custom"),
            ("X-Custom", "named by Connection"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Trailer", "X-Checksum"),
            ("Upgrade", "h2c"),
            ("X-End-To-End", "kept"),
        ]
    )

    answer = await fetch(plain_http, "GET", proxied.url("/api/x"), headers=sent)

    seen = {name.lower(): value for name, value in answer.json()["headers"]}
    assert seen["x-end-to-end"] == "kept"
    assert not (HOP_BY_HOP | {"x-custom"}) & seen.keys()


async def test_hop_by_hop_headers_stop_at_the_bridge_on_the_way_out(
    proxied: Proxied, http: aiohttp.ClientSession
) -> None:
    """SonarQube's hop-by-hop headers, and the one its Connection header names, never reach the client."""
    answer = await fetch(http, "GET", proxied.url("/hop"))

    assert answer.headers["X-End-To-End"] == "kept"
    assert answer.body == b"hop"
    dropped = {name.lower() for name, _ in HOP_BY_HOP_ANSWER} - {"connection"}  # the bridge has its own
    assert not dropped & {name.lower() for name in answer.headers}
    assert "x-custom-answer" not in answer.headers.get("Connection", "").lower()


async def test_redirects_and_cookies_come_back_untouched(
    proxied: Proxied, http: aiohttp.ClientSession
) -> None:
    """A redirect is not followed: 302, its Location and every Set-Cookie come back as SonarQube sent them."""
    answer = await fetch(http, "GET", proxied.url("/login"))

    assert answer.status == 302
    assert answer.headers["Location"] == LOGIN_LOCATION
    assert tuple(answer.headers.getall("Set-Cookie")) == LOGIN_COOKIES
    assert proxied.upstream.paths() == ["/login"]


async def test_every_answer_is_the_bridges(proxied: Proxied, http: aiohttp.ClientSession) -> None:
    """Proxied answers carry the request id and `Server: scim-bridge`, never SonarQube's or aiohttp's."""
    for target in ("/status/200", "/status/404", "/login", "/gzip"):
        answer = await fetch(http, "GET", proxied.url(target), headers={"X-Request-Id": f"req-{target[1:4]}"})

        assert answer.headers["Server"] == "scim-bridge", target
        assert answer.headers["X-Request-Id"] == f"req-{target[1:4]}", target


# --- X-Forwarded-* ---------------------------------------------------------------------------------------

SPOOFED = {
    "X-Forwarded-For": "203.0.113.7, 198.51.100.2",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "sonar.example.com",
    "X-Forwarded-Port": "443",
    "Forwarded": "for=203.0.113.7;proto=https",
}
FROM_THE_CONNECTION = {
    "x-forwarded-for": "127.0.0.1",
    "x-forwarded-proto": "http",
    "x-forwarded-host": "bridge.example.org",
}


@pytest.mark.parametrize(
    ("trusted", "incoming", "expected"),
    [
        ([], {}, FROM_THE_CONNECTION),
        ([], SPOOFED, FROM_THE_CONNECTION),
        (["10.0.0.0/8", "::1/128"], SPOOFED, FROM_THE_CONNECTION),
        (["127.0.0.1/32"], {}, FROM_THE_CONNECTION),
        (
            ["127.0.0.1/32"],
            SPOOFED,
            {
                "x-forwarded-for": "203.0.113.7, 198.51.100.2, 127.0.0.1",
                "x-forwarded-proto": "https",
                "x-forwarded-host": "sonar.example.com",
                "x-forwarded-port": "443",
                "forwarded": "for=203.0.113.7;proto=https",
            },
        ),
    ],
    ids=["untrusted-none", "untrusted-spoofed", "other-proxies-trusted", "trusted-none", "trusted-chain"],
)
async def test_forwarded_headers_are_believed_only_from_trusted_proxies(
    proxied_bridge: Callable[..., Awaitable[Proxied]],
    http: aiohttp.ClientSession,
    trusted: list[str],
    incoming: Mapping[str, str],
    expected: Mapping[str, str],
) -> None:
    """SonarQube gets X-Forwarded-For/Proto/Host: the client's own ones extended when it is a trusted
    proxy, else dropped (with Forwarded and any other X-Forwarded-*) and set from the connection."""
    bridge = await proxied_bridge(trusted_proxies=trusted)

    headers = {"Host": "bridge.example.org", **incoming}
    answer = await fetch(http, "GET", bridge.url("/api/x"), headers=headers)

    assert forwarding(answer.json()["headers"]) == expected


async def test_forwarded_proto_is_https_when_the_client_came_over_tls(
    bare_proxy: Callable[..., Awaitable[Proxied]],
) -> None:
    """A client that reached the bridge over HTTPS is told to SonarQube as `X-Forwarded-Proto: https`."""
    authority = trustme.CA()
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_side)
    client_side = ssl.create_default_context()
    authority.configure_trust(client_side)
    proxy = await bare_proxy(tls=server_side)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_side)) as https:
        answer = await fetch(https, "GET", proxy.url("/api/x"))

    assert proxy.url("/").scheme == "https"
    assert forwarding(answer.json()["headers"]) == {
        "x-forwarded-for": "127.0.0.1",
        "x-forwarded-proto": "https",
        "x-forwarded-host": f"127.0.0.1:{proxy.server.port}",
    }


# --- SonarQube down or silent ------------------------------------------------------------------------------


async def test_sonarqube_down_is_a_502(
    proxied: Proxied, upstream_server: TestServer, http: aiohttp.ClientSession
) -> None:
    """With SonarQube gone, a proxied request is a short text/plain 502, logged by method and error class
    only: no URL, query string or credentials."""
    await upstream_server.close()
    headers = {"Authorization": "Basic c2VjcmV0LXRva2VuOg==", "Cookie": "JWT-SESSION=secret-cookie"}

    with capture_logs() as logs:
        answer = await fetch(http, "GET", proxied.url("/api/x?secret=query-secret"), headers=headers)

    assert answer.status == 502
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert answer.body.startswith(b"502 ")
    assert answer.headers["Server"] == "scim-bridge"
    assert "X-Request-Id" in answer.headers
    [event] = [log for log in logs if log["event"] == "proxy.upstream_unreachable"]
    assert event["method"] == "GET"
    assert event["error"].startswith("Client")
    for text in ("query-secret", "c2VjcmV0LXRva2VuOg", "secret-cookie", "/api/x"):
        assert text not in str(logs)


async def test_silent_sonarqube_is_a_504(
    proxied_bridge: Callable[..., Awaitable[Proxied]], http: aiohttp.ClientSession
) -> None:
    """When SonarQube sends no answer within `proxy_timeout`, the client gets a short text/plain 504."""
    bridge = await proxied_bridge(proxy_timeout=0.1)

    with capture_logs() as logs:
        async with asyncio.timeout(10):
            answer = await fetch(http, "GET", bridge.url("/silent?token=query-secret"))

    assert answer.status == 504
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert answer.body.startswith(b"504 ")
    assert answer.headers["Server"] == "scim-bridge"
    [event] = [log for log in logs if log["event"] == "proxy.upstream_timeout"]
    assert event["method"] == "GET"
    assert "query-secret" not in str(logs)


@pytest.mark.parametrize(
    ("target", "sonarqube", "status"),
    [
        ("/status/201", "up", 201),
        ("/status/404", "up", 404),
        ("/login", "up", 302),
        ("/api/x", "down", 502),
        ("/silent", "silent", 504),
    ],
)
async def test_on_answer_is_told_each_status(
    bare_proxy: Callable[..., Awaitable[Proxied]],
    http: aiohttp.ClientSession,
    target: str,
    sonarqube: str,
    status: int,
) -> None:
    """`on_answer` is called once per request with the status the client got (502 and 504 included) and
    the seconds it took."""
    told: list[tuple[int, float]] = []
    upstream = f"http://127.0.0.1:{closed_port()}" if sonarqube == "down" else None
    timeout = 0.05 if sonarqube == "silent" else 10.0
    proxy = await bare_proxy(upstream, timeout=timeout, on_answer=lambda *call: told.append(call))

    async with asyncio.timeout(10):
        answer = await fetch(http, "GET", proxy.url(target))

    assert answer.status == status
    assert [call[0] for call in told] == [status]
    assert 0 < told[0][1] < 10


# --- what is not proxied -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/scim/v2", "/api/scim/v2/Users", "/api/scim/v2/NoSuchThing/deeper"])
async def test_scim_paths_are_never_proxied(proxied: Proxied, http: aiohttp.ClientSession, path: str) -> None:
    """A request under the SCIM base path is the bridge's to answer (here a SCIM 401), never SonarQube's."""
    answer = await fetch(http, "GET", proxied.url(path))

    assert answer.status == 401
    assert answer.headers["Content-Type"].startswith(SCIM_JSON)
    assert proxied.upstream.seen == []


async def test_an_unknown_scim_path_is_a_scim_404_not_proxied(bridge: Bridge) -> None:
    """An authenticated request for no SCIM endpoint is the bridge's SCIM 404; SonarQube never sees it."""
    reply = await bridge.get("/NoSuchEndpoint")

    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)
    assert not [entry for entry in await bridge.sonar.control.journal() if "/scim" in entry["path"]]


async def test_with_the_proxy_off_other_paths_are_404(
    proxied_bridge: Callable[..., Awaitable[Proxied]], http: aiohttp.ClientSession
) -> None:
    """With `proxy` off, a path outside the SCIM base path is the bridge's plain 404; SonarQube sees none."""
    bridge = await proxied_bridge(proxy="off")

    answer = await fetch(http, "GET", bridge.url("/api/x"))

    assert answer.status == 404
    assert answer.headers["Server"] == "scim-bridge"
    assert bridge.upstream.seen == []


# --- through to the emulator -------------------------------------------------------------------------------


async def test_the_emulators_version_comes_through(bridge: Bridge, http: aiohttp.ClientSession) -> None:
    """`GET /api/server/version` through the bridge answers the emulated SonarQube's own version."""
    direct = await bridge.sonar.get("api/server/version", authorization=None)

    answer = await fetch(http, "GET", bridge.server.make_url("/api/server/version"))

    assert (answer.status, answer.body.decode()) == (200, direct.body)


@pytest.mark.parametrize(("authorization", "status"), [("token", 200), (None, 401)])
async def test_sonarqube_checks_the_callers_own_credentials(
    bridge: Bridge, http: aiohttp.ClientSession, authorization: str | None, status: int
) -> None:
    """Authorization reaches SonarQube unchanged: the caller's token works through the bridge, and without
    one SonarQube itself refuses."""
    headers = {"Authorization": aiohttp.encode_basic_auth(bridge.sonar.token)} if authorization else {}
    direct = await bridge.sonar.get("api/users/search", authorization=authorization)

    answer = await fetch(http, "GET", bridge.server.make_url("/api/users/search"), headers=headers)

    assert answer.status == direct.status == status
    if status == 200:
        assert answer.json() == direct.body


# --- 50 MiB each way in a real bridge process --------------------------------------------------------------


@dataclass
class BridgeProcess:
    process: asyncio.subprocess.Process
    url: str

    def memory_kib(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (peak) of the bridge process, in KiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="utf-8")
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


@asynccontextmanager
async def bridge_process(sonar_url: str, state_dir: Path) -> AsyncIterator[BridgeProcess]:
    """`scim-bridge serve` as a subprocess on a free port, in front of `sonar_url`; stopped with SIGTERM."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("SCIM_BRIDGE_")}
    environment["SCIM_BRIDGE_ADMIN_PORT"] = "0"  # whenever the admin listener exists, it takes a free port
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scim_bridge",
        "--log-format",
        "json",
        "serve",
        "--port",
        "0",
        "--sonar-url",
        sonar_url,
        "--store",
        f"sqlite:///{state_dir / 's.db'}",
        stderr=asyncio.subprocess.PIPE,
        env=environment,
    )
    assert process.stderr is not None
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    drained = asyncio.create_task(_read_log(process.stderr, listening))
    try:
        async with asyncio.timeout(30):
            url = await listening
        yield BridgeProcess(process, url.removesuffix("/api/scim/v2"))
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                await process.wait()
        await drained


async def _read_log(stderr: asyncio.StreamReader, listening: asyncio.Future[str]) -> None:
    """Read the bridge's log to its end (a full pipe would block it), telling where it listens."""
    async for line in stderr:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "scim.listening" and not listening.done():
            listening.set_result(str(event["url"]))
    if not listening.done():
        listening.set_exception(AssertionError("the bridge stopped before listening"))


async def upload(http: aiohttp.ClientSession, url: str, total: int) -> dict[str, Any]:
    """POST `total` bytes as a chunked body from an async generator; the stand-in counts and hashes them."""

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in pattern(total):
            yield chunk

    async with http.post(f"{url}/api/upload", data=chunks()) as resp:
        assert resp.status == 200
        seen: dict[str, Any] = await resp.json()
        return seen


async def download(http: aiohttp.ClientSession, url: str, total: int) -> tuple[int, str]:
    """GET `total` bytes, read chunk by chunk: their count and SHA-256."""
    digest = hashlib.sha256()
    received = 0
    async with http.get(f"{url}/download?bytes={total}") as resp:
        assert resp.status == 200
        async for chunk in resp.content.iter_chunked(64 * 1024):
            received += len(chunk)
            digest.update(chunk)
    return received, digest.hexdigest()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the bridge's memory from /proc")
async def test_50_mib_each_way_stream_through_in_little_memory(
    upstream_server: TestServer,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    """A 50 MiB upload and a 50 MiB download pass whole through a real bridge process whose peak memory
    grows by less than 16 MiB over its warmed-up peak: the bridge streams, it never holds a body."""
    total = 50 * MIB
    async with asyncio.timeout(120), bridge_process(str(upstream_server.make_url("/")), tmp_path) as bridge:
        assert (await upload(http, bridge.url, MIB))["bytes"] == MIB  # warm-up: every code path once
        assert (await download(http, bridge.url, MIB))[0] == MIB
        before = bridge.memory_kib()

        uploaded = await upload(http, bridge.url, total)
        downloaded = await download(http, bridge.url, total)
        after = bridge.memory_kib()

    expected = sha256_of_pattern(total)
    assert (uploaded["bytes"], uploaded["sha256"]) == (total, expected)
    assert downloaded == (total, expected)
    growth = after["VmHWM"] - before["VmHWM"]
    structlog.get_logger("tests").info("proxy.memory_kib", before=before, after=after, growth=growth)
    assert growth < 16 * 1024, f"peak memory grew by {growth} KiB: {before} -> {after}"
