"""Who the client is and how it reached the bridge: forwarded headers are believed from trusted proxies only.

One rule for the whole web layer (the reverse proxy's `X-Forwarded-*`, the SCIM base URL, the limit on
failed authentications per client): the direct peer (`request.remote`) is the client, and its scheme and
`Host` are the request's own, unless that peer is in `trusted_proxies` (CIDR networks; an IPv4-mapped IPv6
peer counts as IPv4). Only then are its `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`
believed; anyone else can write whatever they like in them.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Final

from aiohttp import hdrs

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

    from aiohttp import web

    Networks = Sequence[IPv4Network | IPv6Network]

SCHEMES: Final = frozenset({"http", "https"})
_HOST: Final = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
    r"|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?::[0-9]{1,5})?"
)
"""A host name or IP address (IPv6 in brackets), with an optional port: nothing else goes into a URL."""
_MAX_HOST_LENGTH: Final = 261  # 253 for the name, a colon and a five-digit port


def is_trusted(remote: str | None, trusted_proxies: Networks) -> bool:
    """Whether the direct peer is one of `trusted_proxies` (an IPv4-mapped IPv6 peer counts as IPv4)."""
    if not remote or not trusted_proxies:
        return False
    address = _address(remote)
    return address is not None and any(address in network for network in trusted_proxies)


def client_address(request: web.Request, trusted_proxies: Networks) -> str | None:
    """The client's IP address: the direct peer's, or, when that peer is a trusted proxy, the nearest address
    of its `X-Forwarded-For` chain that is not a trusted proxy itself.

    The chain is read from the right: each trusted hop appended the address it saw, while the entries further
    left were written by whoever sent them and may be forged. An entry that is no address ends the walk at the
    last hop that is one. None when the peer has no IP address (a Unix socket).
    """
    remote = request.remote
    if not remote or _address(remote) is None:
        return None
    if not is_trusted(remote, trusted_proxies):
        return remote
    chain = [
        entry.strip()
        for value in request.headers.getall(hdrs.X_FORWARDED_FOR, ())
        for entry in value.split(",")
    ]
    client = remote
    for entry in reversed(chain):
        if _address(entry) is None:
            break
        client = entry
        if not is_trusted(entry, trusted_proxies):
            break
    return client


def public_origin(request: web.Request, trusted_proxies: Networks) -> tuple[str, str]:
    """The scheme and `host[:port]` the client used to reach the bridge.

    The request's own scheme (`https` over TLS) and `Host`, unless the direct peer is a trusted proxy that
    sent `X-Forwarded-Proto` / `X-Forwarded-Host`: then the first value of each (the hop facing the client).
    A value that is no scheme or no host name is not believed; a `Host` that is no host name gives way to the
    address the connection was accepted on.
    """
    scheme, host = request.scheme, request.host
    if is_trusted(request.remote, trusted_proxies):
        scheme = _first(request, hdrs.X_FORWARDED_PROTO, _is_scheme, scheme).lower()
        host = _first(request, hdrs.X_FORWARDED_HOST, is_host, host)
    if not is_host(host):
        host = _local_host(request)
    return scheme, host


def is_host(value: str) -> bool:
    """Whether `value` is a host name or IP address, with an optional port, and nothing else."""
    return len(value) <= _MAX_HOST_LENGTH and _HOST.fullmatch(value) is not None


def _first(request: web.Request, header: str, acceptable: Callable[[str], bool], default: str) -> str:
    values = [entry.strip() for value in request.headers.getall(header, ()) for entry in value.split(",")]
    if values and acceptable(values[0]):
        return values[0]
    return default


def _is_scheme(value: str) -> bool:
    return value.lower() in SCHEMES


def _local_host(request: web.Request) -> str:
    """The address and port the connection was accepted on, as a URL's host part."""
    sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:  # (host, port[, flowinfo, scope_id])
        host, port = str(sockname[0]), int(sockname[1])
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return "localhost"


def _address(value: str) -> IPv4Address | IPv6Address | None:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:  # a Unix socket peer, a host name, garbage
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
