"""A stand-in for SonarQube behind the reverse proxy: it tells what reached it and answers as a test asks.

Routes: the two endpoints the bridge's SonarQube connection reads (`api/server/version`,
`api/system/status`), a few answers with something to check (`/status/{code}`, `/gzip`, `/chunked`,
`/download`, `/hop`, `/login`, `/silent`, `/broken`), and everything else an echo that consumes the
request body chunk by chunk and answers, as JSON, what it received (`Echo`).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Iterator

    from aiohttp.typedefs import Handler

VERSION: Final = "2025.6.0.115417"
CHUNK: Final = 64 * 1024
UPSTREAM_SERVER: Final = "Jetty(10.0.24)"
# What the bridge's own SonarQube connection asks for; not counted as proxied traffic.
PROBES: Final = frozenset({"/api/server/version", "/api/system/status"})

GZIP_PLAIN: Final = json.dumps({"issues": [{"key": f"AX{n}", "message": "Remove this"} for n in range(50)]})
GZIPPED: Final = gzip.compress(GZIP_PLAIN.encode(), mtime=0)
CHUNKS: Final = (b"first chunk\n", b"second chunk\n", b"third chunk\n")
LOGIN_LOCATION: Final = "/sessions/new?return_to=%2Fprojects%3Fsort%3D-analysis_date"
LOGIN_COOKIES: Final = (
    "JWT-SESSION=eyJhbGciOiJIUzI1NiJ9.e30.sig; Max-Age=259200; Path=/; HttpOnly; SameSite=Lax",
    "XSRF-TOKEN=5a1e7cc1-3f2b-4c37; Max-Age=259200; Path=/",
)
HOP_BY_HOP_ANSWER: Final = (
    ("Connection", "x-custom-answer"),
    ("X-Custom-Answer", "named by Connection"),
    ("Keep-Alive", "timeout=5, max=100"),
    ("Proxy-Authenticate", 'Basic realm="proxy"'),
    ("Proxy-Connection", "keep-alive"),
    ("Trailer", "X-Checksum"),
    ("Upgrade", "h2c"),
)


@dataclass
class Upstream:
    """What the stand-in has seen, and the events tests use to hold its answers."""

    seen: list[Seen] = field(default_factory=list)
    """Every request but the connection's probes, in order."""
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    """`/chunked` sends its first chunk, then waits for this before the others."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    """Set whenever a chunk of a request body reaches the echo."""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    """`/silent` answers nothing until this is set (tests set it when they end)."""

    def paths(self) -> list[str]:
        return [seen.raw_path for seen in self.seen]


@dataclass(frozen=True)
class Seen:
    method: str
    raw_path: str
    headers: list[tuple[str, str]]


UPSTREAM: Final = web.AppKey("upstream", Upstream)


def create_upstream_app() -> web.Application:
    app = web.Application(middlewares=[_record])
    app[UPSTREAM] = Upstream()
    app.router.add_get("/api/server/version", _version)
    app.router.add_get("/api/system/status", _status)
    app.router.add_get("/status/{code:\\d+}", _status_code)
    app.router.add_get("/gzip", _gzip)
    app.router.add_get("/chunked", _chunked)
    app.router.add_get("/download", _download)
    app.router.add_get("/hop", _hop)
    app.router.add_get("/login", _login)
    app.router.add_get("/silent", _silent)
    app.router.add_get("/broken", _broken)
    app.router.add_route("*", "/{tail:.*}", _echo)
    app.on_response_prepare.append(_server_header)
    return app


def pattern(total: int) -> Iterator[bytes]:
    """`total` bytes of a fixed pattern in chunks of `CHUNK` (never all in memory at once)."""
    sent = 0
    while sent < total:
        size = min(CHUNK, total - sent)
        yield bytes([(sent // CHUNK) % 251]) * size
        sent += size


def sha256_of_pattern(total: int) -> str:
    digest = hashlib.sha256()
    for chunk in pattern(total):
        digest.update(chunk)
    return digest.hexdigest()


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@web.middleware
async def _record(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in PROBES:
        request.app[UPSTREAM].seen.append(Seen(request.method, request.raw_path, _raw_headers(request)))
    return await handler(request)


def _raw_headers(request: web.Request) -> list[tuple[str, str]]:
    """The headers as they came on the wire: names in their case, repeated ones repeated, in order."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.raw_headers]


async def _server_header(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = UPSTREAM_SERVER
    response.headers.setdefault("X-Request-Id", "set-by-sonarqube")


async def _version(_request: web.Request) -> web.Response:
    return web.Response(text=VERSION)


async def _status(_request: web.Request) -> web.Response:
    return web.json_response({"id": "20250601-ABCD", "version": VERSION, "status": "UP"})


async def _status_code(request: web.Request) -> web.Response:
    status = int(request.match_info["code"])
    if status == 204:
        return web.Response(status=204)
    return web.Response(status=status, text=f"answer {status}")


async def _gzip(_request: web.Request) -> web.Response:
    return web.Response(
        body=GZIPPED, content_type="application/json", headers={"Content-Encoding": "gzip", "Vary": "Accept"}
    )


async def _chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    first, *rest = CHUNKS
    await response.write(first)
    await request.app[UPSTREAM].gate.wait()
    for chunk in rest:
        await response.write(chunk)
    await response.write_eof()
    return response


async def _download(request: web.Request) -> web.StreamResponse:
    total = int(request.query["bytes"])
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = total
    await response.prepare(request)
    for chunk in pattern(total):
        await response.write(chunk)
    await response.write_eof()
    return response


async def _hop(_request: web.Request) -> web.Response:
    response = web.Response(text="hop", headers={"X-End-To-End": "kept"})
    for name, value in HOP_BY_HOP_ANSWER:
        response.headers.add(name, value)
    return response


async def _login(_request: web.Request) -> web.Response:
    response = web.Response(status=302, headers={"Location": LOGIN_LOCATION})
    for cookie in LOGIN_COOKIES:
        response.headers.add("Set-Cookie", cookie)
    return response


async def _silent(request: web.Request) -> web.Response:
    await request.app[UPSTREAM].release.wait()
    return web.Response(text="too late")


async def _broken(request: web.Request) -> web.StreamResponse:
    """A chunked answer that stops after its first chunk: the connection is dropped."""
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(CHUNKS[0])
    assert request.transport is not None
    request.transport.abort()
    return response


async def _echo(request: web.Request) -> web.Response:
    """Reads the body as it arrives (counting and hashing it, never keeping it) and answers what came."""
    upstream = request.app[UPSTREAM]
    digest = hashlib.sha256()
    received = 0
    async for chunk in request.content.iter_any():
        received += len(chunk)
        digest.update(chunk)
        upstream.arrived.set()
    body: dict[str, Any] = {
        "method": request.method,
        "raw_path": request.raw_path,
        "headers": _raw_headers(request),
        "bytes": received,
        "sha256": digest.hexdigest(),
    }
    return web.json_response(body, headers={"X-Seen-Method": request.method})
