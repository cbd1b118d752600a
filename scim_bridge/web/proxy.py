"""The reverse proxy: every request outside the SCIM base path streams through to SonarQube unchanged.

What SonarQube sees is what the client sent: the method, the raw path and query (`%2F`, `+` and repeated
parameters as they came), the headers (`Host` and `Authorization` included) and the body, streamed. Only the
hop-by-hop headers of RFC 9110 §7.6.1 are dropped, in both directions, and `X-Forwarded-For/Proto/Host` are
set (below). The answer comes back as SonarQube gave it: status, headers (every `Set-Cookie`, `Location`
of a redirect, which is never followed), and the body streamed as it was sent, compressed or not.

When SonarQube cannot be reached the client gets a short `502`, when it stays silent longer than the
timeout a `504`; a failure once the answer has started can only close the connection. Logs carry the
method and the error's class: never a header, a cookie, a token or the query string.

Forwarded headers. aiohttp-remotes was considered and not used: its middlewares rewrite the request's
`remote`/`scheme`/`host` rather than build the headers for the next hop; `XForwardedStrict` refuses a
request (400) whose chain does not match the configured hops exactly, `XForwardedRelaxed` believes every
peer and `XForwardedFiltered` never looks at the direct peer; and every one refuses a malformed
`X-Forwarded-For` with a 400. The bridge's rule is simpler and never refuses: the headers of a peer in
`trusted_proxies` are believed and extended, anyone else's are dropped and replaced (`_forwarded`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

import aiohttp
import structlog
from aiohttp import hdrs, web
from multidict import CIMultiDict
from yarl import URL

from scim_bridge.web.forwarded import is_trusted as _is_trusted

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
    from ipaddress import IPv4Network, IPv6Network

    from multidict import CIMultiDictProxy

log = structlog.get_logger("scim_bridge.web.proxy")

CHUNK_BYTES: Final = 64 * 1024
CONNECTIONS: Final = 100
CONNECT_TIMEOUT: Final = 10.0
"""Seconds to open a connection to SonarQube, at most (never more than the proxy timeout itself)."""

# RFC 9110 §7.6.1, plus the obsolete Proxy-Connection; every header named by `Connection` goes too.
HOP_BY_HOP: Final = frozenset(
    {
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
)
# aiohttp answers `Expect: 100-continue` itself before the proxy sees the request: not asked again.
_ANSWERED_BY_THE_BRIDGE: Final = frozenset({"expect"})
# aiohttp's client would add these (`Accept-Encoding: gzip` among them, and its version as User-Agent)
# when the client did not send them; SonarQube must see only what the client sent.
_NO_AUTO_HEADERS: Final = (hdrs.ACCEPT, hdrs.ACCEPT_ENCODING, hdrs.USER_AGENT, hdrs.CONTENT_TYPE)
_FORWARDED_PREFIX: Final = "x-forwarded-"


class ReverseProxy:
    """Streams requests to `upstream` (SonarQube's base URL) and its answers back.

    `timeout`: seconds SonarQube may stay silent (before its answer, or within it) before a 504 or a closed
    connection. `on_answer(status, seconds)` is told every status sent to a client, 502 and 504 included.
    """

    def __init__(
        self,
        upstream: str,
        *,
        trusted_proxies: Sequence[IPv4Network | IPv6Network],
        timeout: float,
        on_answer: Callable[[int, float], None] | None = None,
    ) -> None:
        self.upstream = upstream
        self.trusted_proxies = trusted_proxies
        self.timeout = timeout
        self.on_answer = on_answer
        self._base = upstream.rstrip("/")  # a path prefix (`/sonarqube`) stays; the request path follows
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the HTTP session to SonarQube."""
        if self._session is not None:
            return
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CONNECTIONS),
            cookie_jar=aiohttp.DummyCookieJar(),  # cookies are the clients', never the bridge's
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=min(self.timeout, CONNECT_TIMEOUT), sock_read=self.timeout
            ),
            skip_auto_headers=_NO_AUTO_HEADERS,
            trust_env=False,
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Forward `request` and stream SonarQube's answer back."""
        started = time.perf_counter()
        status = 500
        try:
            response = await self._forward(request)
            status = response.status
            return response
        finally:
            if self.on_answer is not None:
                self.on_answer(status, time.perf_counter() - started)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if self._session is None:
            raise RuntimeError("the reverse proxy is not started")
        try:
            upstream = await self._session.request(
                request.method,
                self._url(request),
                headers=_upstream_headers(request, self.trusted_proxies),
                data=request.content if request.body_exists else None,
                allow_redirects=False,
            )
        except TimeoutError as exc:  # aiohttp's connect and read timeouts are TimeoutErrors too
            log.warning("proxy.upstream_timeout", method=request.method, error=type(exc).__name__)
            return _failure(504, "SonarQube did not answer in time")
        except aiohttp.ClientError as exc:  # str(exc) may quote the URL, query string included
            log.warning("proxy.upstream_unreachable", method=request.method, error=type(exc).__name__)
            return _failure(502, "SonarQube cannot be reached")
        try:
            return await _stream_back(request, upstream)
        finally:
            upstream.release()  # back to the pool when read to the end, else closed

    def _url(self, request: web.Request) -> URL:
        """SonarQube's base URL followed by the request target exactly as received."""
        target = request.raw_path
        if not target.startswith("/"):  # an absolute-form target: its path and query only
            target = request.rel_url.raw_path_qs
        return URL(self._base + target, encoded=True)


async def _stream_back(request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
    """SonarQube's answer, chunk by chunk; `Content-Length` kept when it sent one, else chunked."""
    response = web.StreamResponse(
        status=upstream.status, reason=upstream.reason, headers=_end_to_end(upstream.headers)
    )
    try:
        await response.prepare(request)
        while chunk := await _read(upstream):
            await response.write(chunk)
        await response.write_eof()
    except _UpstreamBrokenError as exc:
        log.warning("proxy.upstream_broken", method=request.method, error=type(exc.__cause__).__name__)
        return _cut(request, response)
    except ConnectionError as exc:
        log.info("proxy.client_gone", method=request.method, error=type(exc).__name__)
        return _cut(request, response)
    return response


class _UpstreamBrokenError(Exception):
    """SonarQube's answer stopped before its end (the cause says how)."""


async def _read(upstream: aiohttp.ClientResponse) -> bytes:
    """The next chunk of SonarQube's answer, b"" at its end."""
    try:
        return await upstream.content.read(CHUNK_BYTES)
    except (aiohttp.ClientError, TimeoutError) as exc:  # a ClientError may be a ConnectionError too
        raise _UpstreamBrokenError from exc


def _cut(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """The status has gone out: all that is left is to close the connection, so that the client sees a
    truncated answer rather than a complete-looking one (no last chunk is ever sent)."""
    response.force_close()
    if request.transport is not None:
        request.transport.abort()
    return response


def _failure(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=f"{status} {text}\n", content_type="text/plain")


def _end_to_end(headers: CIMultiDictProxy[str], *, also: Collection[str] = ()) -> CIMultiDict[str]:
    """`headers` without the hop-by-hop ones and those `Connection` names; repeated headers all kept."""
    named = {
        token.strip().lower() for value in headers.getall(hdrs.CONNECTION, ()) for token in value.split(",")
    }
    dropped = HOP_BY_HOP | named | set(also)
    return CIMultiDict((name, value) for name, value in headers.items() if name.lower() not in dropped)


def _upstream_headers(
    request: web.Request, trusted_proxies: Sequence[IPv4Network | IPv6Network]
) -> CIMultiDict[str]:
    headers = _end_to_end(request.headers, also=_ANSWERED_BY_THE_BRIDGE)
    believed = _is_trusted(request.remote, trusted_proxies)
    if not believed:
        for name in {name for name in headers if _is_forwarding(name)}:
            del headers[name]
    for name, value in _forwarded(request, believed=believed).items():
        headers.popall(name, None)
        if value:
            headers[name] = value
    return headers


def _forwarded(request: web.Request, *, believed: bool) -> dict[str, str]:
    """`X-Forwarded-For/Proto/Host` for SonarQube: the peer appended to the chain its headers tell (when it
    is believed), the scheme and `Host` it reached the bridge with, unless a believed proxy said otherwise.
    An empty value means "send none"."""
    incoming = request.headers if believed else CIMultiDict[str]()
    chain = [value for value in incoming.getall(hdrs.X_FORWARDED_FOR, ()) if value.strip()]
    if request.remote:
        chain.append(request.remote)
    return {
        hdrs.X_FORWARDED_FOR: ", ".join(chain),
        hdrs.X_FORWARDED_PROTO: ", ".join(incoming.getall(hdrs.X_FORWARDED_PROTO, ())) or request.scheme,
        hdrs.X_FORWARDED_HOST: ", ".join(incoming.getall(hdrs.X_FORWARDED_HOST, ()))
        or request.headers.get(hdrs.HOST, ""),
    }


def _is_forwarding(name: str) -> bool:
    lowered = name.lower()
    return lowered == "forwarded" or lowered.startswith(_FORWARDED_PREFIX)
