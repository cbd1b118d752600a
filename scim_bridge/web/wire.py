"""What goes over the wire: JSON request bodies in, `application/scim+json` responses out (RFC 7644 §3.1)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from aiohttp import hdrs, web

from scim_bridge.scim.errors import InvalidSyntaxError
from scim_bridge.scim.listing import render_resource
from scim_bridge.web.keys import SETTINGS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scim2_models import Resource

    from scim_bridge.scim.listing import SearchParams

SCIM_JSON: Final = "application/scim+json"
ACCEPTED_BODY_TYPES: Final = frozenset({SCIM_JSON, "application/json"})

_JSON_TYPE_NAMES: Final = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
}


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; anything else is a 400 invalidSyntax that says what is wrong.

    A body without a Content-Type is read as JSON: some clients omit it, and the body tells anyway.
    """
    if hdrs.CONTENT_TYPE in request.headers and request.content_type.lower() not in ACCEPTED_BODY_TYPES:
        raise InvalidSyntaxError(
            f"the request body is {request.content_type}: send {SCIM_JSON} or application/json"
        )
    raw = await request.read()  # refuses a body over client_max_size, chunked or not
    if not raw.strip():
        raise InvalidSyntaxError("the request body is empty: a JSON object is required")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidSyntaxError(
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise InvalidSyntaxError("the request body is not UTF-8 text") from exc
    if not isinstance(body, dict):
        kind = "null" if body is None else _JSON_TYPE_NAMES.get(type(body), type(body).__name__)
        raise InvalidSyntaxError(f"the request body must be a JSON object, not {kind}")
    return body


def scim_json(
    body: Mapping[str, Any], *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(body, status=status, headers=headers, content_type=SCIM_JSON)


def base_url(request: web.Request) -> str:
    """The absolute URL of the SCIM base path, as this request reached it."""
    return str(request.url.origin().with_path(request.app[SETTINGS].base_path))


def location_of(request: web.Request, endpoint: str, resource: Resource[Any]) -> str:
    """`meta.location`: where the resource lives, e.g. `https://host/api/scim/v2/Users/<id>`."""
    return f"{base_url(request)}/{endpoint}/{resource.id}"


def resource_response(
    request: web.Request,
    resource: Resource[Any],
    params: SearchParams | None,
    *,
    endpoint: str,
    status: int = 200,
) -> web.Response:
    """One resource with `meta.location`, its version as `ETag`, and `Location` when it was just created."""
    location = location_of(request, endpoint, resource)
    headers: dict[str, str] = {}
    if status == 201:
        headers[hdrs.LOCATION] = location
    version = resource.meta.version if resource.meta is not None else None
    if version:
        headers[hdrs.ETAG] = version
    return scim_json(render_resource(resource, params, location), status=status, headers=headers)
