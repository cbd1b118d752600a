"""The reverse proxy: every request outside the SCIM base path streams through to SonarQube unchanged.

(Interface fixed; implementation in progress.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from ipaddress import IPv4Network, IPv6Network


class ReverseProxy:
    """Streams requests to `upstream` (SonarQube's base URL) and its answers back."""

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

    async def start(self) -> None:
        """Open the HTTP session to SonarQube."""

    async def close(self) -> None:
        """Close the HTTP session."""

    async def handle(self, request: web.Request) -> web.StreamResponse:  # noqa: ARG002 - being written
        """Forward `request` and stream SonarQube's answer back."""
        raise web.HTTPNotFound
