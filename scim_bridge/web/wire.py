"""What goes over the wire: JSON request bodies in, `application/scim+json` responses out (RFC 7644 §3.1),
and the absolute URLs those responses carry."""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Final

from aiohttp import hdrs, web
from yarl import URL

from scim_bridge.scim.errors import InvalidSyntaxError
from scim_bridge.web.forwarded import public_origin
from scim_bridge.web.keys import SETTINGS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scim_bridge.scim.listing import SearchParams
    from scim_bridge.scim.representation import Representation

SCIM_JSON: Final = "application/scim+json"
ACCEPTED_BODY_TYPES: Final = frozenset({SCIM_JSON, "application/json"})

MAX_JSON_DEPTH: Final = 64
"""Arrays and objects nested deeper than this in a request body are refused before parsing (SCIM bodies
nest five levels at most; Python's parser would give up with a RecursionError a little over 1 000)."""

# A JSON string, escapes included; an unterminated one runs to the end, so that the parser reports it.
_JSON_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS: Final = bytes(byte for byte in range(256) if byte not in b"[]{}")
_DEPTH_STEPS: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 opens, -1 (signed) closes

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
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise InvalidSyntaxError(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
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


def json_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in a JSON text, counting the brackets outside strings; read without
    parsing (and without recursion), in time linear in its length."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(array("b", brackets.translate(_DEPTH_STEPS)), initial=0))


def scim_json(
    body: Mapping[str, Any], *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(body, status=status, headers=headers, content_type=SCIM_JSON)


def base_url(request: web.Request) -> str:
    """The absolute URL of the SCIM base path, for `Location`, `meta.location` and discovery documents.

    The setting `public_url` when it is set (its path, if any, comes before the base path); otherwise the
    scheme and host the request came with, as a proxy in `trusted_proxies` forwarded them (`forwarded.py`):
    a client's own `X-Forwarded-*` are never believed.
    """
    settings = request.app[SETTINGS]
    if settings.public_url is not None:
        public = URL(str(settings.public_url))
        return str(public.origin()) + public.path.rstrip("/") + settings.base_path
    scheme, host = public_origin(request, settings.trusted_proxies)
    return f"{scheme}://{host}{settings.base_path}"


def location_of(request: web.Request, endpoint: str, resource: Representation[Any]) -> str:
    """`meta.location`: where the resource lives, e.g. `https://host/api/scim/v2/Users/<id>`."""
    return f"{base_url(request)}/{endpoint}/{resource.id}"


def resource_response(
    request: web.Request,
    resource: Representation[Any],
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
    headers[hdrs.ETAG] = resource.version
    return scim_json(resource.render(params, location), status=status, headers=headers)
