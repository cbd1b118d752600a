"""RFC 7644 §4 discovery endpoints, and the endpoints the bridge does not implement (/Bulk, /Me).

Every `meta.location` is under `wire.base_url`, the base URL resources' locations use too (`public_url`, or
the request's own scheme and host as a trusted proxy forwarded them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scim_bridge.scim import discovery
from scim_bridge.scim.errors import UnsupportedError
from scim_bridge.web.keys import SETTINGS
from scim_bridge.web.wire import base_url, scim_json

if TYPE_CHECKING:
    from aiohttp import web


async def get_service_provider_config(request: web.Request) -> web.Response:
    return scim_json(discovery.service_provider_config(base_url(request)))


async def list_resource_types(request: web.Request) -> web.Response:
    return scim_json(discovery.resource_types(base_url(request)))


async def get_resource_type(request: web.Request) -> web.Response:
    return scim_json(discovery.resource_type(request.match_info["name"], base_url(request)))


async def list_schemas(request: web.Request) -> web.Response:
    return scim_json(discovery.schemas(base_url(request)))


async def get_schema(request: web.Request) -> web.Response:
    return scim_json(discovery.schema(request.match_info["urn"], base_url(request)))


async def unsupported(request: web.Request) -> web.Response:
    """/Bulk (ServiceProviderConfig says so), /Me (a bearer token is no SCIM user) and POST searches
    (Entra and every client the bridge serves query with GET)."""
    endpoint = request.path.removeprefix(request.app[SETTINGS].base_path)
    raise UnsupportedError(f"{request.method} {endpoint} is not supported by this service")
