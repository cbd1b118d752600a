"""The middleware chain, outermost first:

1. `request_log`   gives the request its id (a sane `X-Request-Id`, else a new one), binds it to every log
                   event of the request, and logs one `scim.request` (or `proxy.request`) event when it is
                   answered;
2. `proxied`       with the reverse proxy on, every path outside the SCIM base path goes to SonarQube
                   (`proxy.py`); SCIM paths never do;
3. `scim_errors`   the one place a failure under the SCIM base path becomes an `application/scim+json`
                   Error: `ScimError`s as they are, aiohttp's 404/405/413 translated, a state store that
                   fails (`StoreError`) a 503 with `Retry-After: STORE_RETRY_AFTER` that never quotes the
                   store, anything else an opaque 500 quoting the request id (the traceback goes to the log
                   only);
4. `scim_auth`     every SCIM path needs a bearer token (discovery too, as SonarQube Enterprise does), checked
                   with the client's address (`forwarded.py`: the peer's, or a trusted proxy's
                   `X-Forwarded-For`) for the limit on refused tokens; the SonarQube work of the request,
                   the token check included, runs inside one deadline.

With the proxy off, paths outside the base path are left to aiohttp (a plain 404). Every answer carries the
request id and `Server: scim-bridge`, without versions.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Final

import structlog
from aiohttp import hdrs, web

from scim_bridge.provisioning.context import RequestContext
from scim_bridge.scim.errors import (
    ForbiddenError,
    InternalServerError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    ScimError,
    ServiceUnavailableError,
    UnauthorizedError,
)
from scim_bridge.sonarqube import deadline
from scim_bridge.store import StoreError
from scim_bridge.web.auth import bearer_token
from scim_bridge.web.forwarded import client_address
from scim_bridge.web.keys import AUTHENTICATOR, METRICS, PROXY, REQUEST_ID, SCIM_CONTEXT, SETTINGS
from scim_bridge.web.wire import scim_json

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler, Middleware

log = structlog.get_logger("scim_bridge.web")

REQUEST_ID_HEADER: Final = "X-Request-Id"
SERVER: Final = "scim-bridge"
_SANE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
STORE_RETRY_AFTER: Final = 5
"""Retry-After, in seconds, of the 503 for a state store that is busy (locked) or failing."""


def scim_middlewares() -> list[Middleware]:
    return [request_log, proxied, scim_errors, scim_auth]


async def stamp_response(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every answer carries the request id, plain 404s, errors and proxied answers
    included, and names its server without telling versions."""
    if REQUEST_ID in request:
        response.headers[REQUEST_ID_HEADER] = request[REQUEST_ID]
    await name_the_server(request, response)


async def name_the_server(_request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: `Server: scim-bridge`, instead of aiohttp's Python and aiohttp versions."""
    response.headers[hdrs.SERVER] = SERVER


@web.middleware
async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = _request_id(request.headers.get(REQUEST_ID_HEADER))
    request[REQUEST_ID] = request_id
    metrics = request.app[METRICS]
    scim = _under_base_path(request)
    started = time.perf_counter()
    status = 500
    metrics.in_flight.inc()
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        try:
            response = await handler(request)
            status = response.status
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            route = _route(request)
            if scim:
                metrics.scim_answer(_resource(request, route), request.method, status, elapsed)
            # Never the body, the query or a header: they may carry tokens or personal data.
            log.info(
                "scim.request" if scim else "proxy.request",
                method=request.method,
                route=route if scim else "proxy",
                status=status,
                duration_ms=round(elapsed * 1000, 1),
            )
    return response


@web.middleware
async def proxied(request: web.Request, handler: Handler) -> web.StreamResponse:
    proxy = request.app.get(PROXY)
    if proxy is None or _under_base_path(request):
        return await handler(request)
    return await proxy.handle(request)


@web.middleware
async def scim_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _under_base_path(request):
        return await handler(request)
    try:
        return await handler(request)
    except ScimError as exc:
        return _error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error_response(_translated(request, exc))
    except StoreError as exc:  # a StoreConflict that gets this far is a bug elsewhere: answered the same
        # The store's message may name files: the log has it (and where it came from), the client only
        # learns to come back.
        log.exception(
            "scim.store_unavailable",
            request_id=request[REQUEST_ID],
            method=request.method,
            route=_route(request),
            error=type(exc).__name__,
        )
        return _error_response(
            ServiceUnavailableError(
                "the bridge's state store is busy or unavailable; repeating this request is safe and "
                "completes whatever it started",
                retry_after=STORE_RETRY_AFTER,
            )
        )
    except Exception:
        log.exception("scim.unhandled_error", method=request.method, route=_route(request))
        return _error_response(InternalServerError(request[REQUEST_ID]))


@web.middleware
async def scim_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _under_base_path(request):
        return await handler(request)
    token = bearer_token(request.headers.get(hdrs.AUTHORIZATION))
    authenticator = request.app[AUTHENTICATOR]
    settings = request.app[SETTINGS]
    client = client_address(request, settings.trusted_proxies)
    with deadline(settings.sonar_deadline):
        caller = await authenticator.authenticate(token, client=client)
        request[SCIM_CONTEXT] = RequestContext(caller.sonar, caller.actor, request[REQUEST_ID])
        try:
            return await handler(request)
        except (UnauthorizedError, ForbiddenError) as exc:  # SonarQube refused the token half-way
            raise authenticator.refused_later(token, exc) from exc


def _error_response(error: ScimError) -> web.Response:
    return scim_json(error.to_json(), status=error.status, headers=error.headers)


def _translated(request: web.Request, exc: web.HTTPException) -> ScimError:
    """aiohttp's own refusals (from the router, or from reading a body) in SCIM words."""
    if isinstance(exc, web.HTTPNotFound):
        return NotFoundError(f"no SCIM endpoint at {request.path}")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return MethodNotAllowedError(
            f"{request.method} is not allowed on {request.path}: use {allowed}", allowed=allowed
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLargeError(
            f"the request body is larger than {request.app[SETTINGS].max_body_bytes} bytes"
        )
    return ScimError(exc.reason, status=exc.status)


def _request_id(offered: str | None) -> str:
    """The caller's id when it is safe to log and echo, else a new one."""
    if offered is not None and _SANE_REQUEST_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def _route(request: web.Request) -> str:
    """The route template (`/api/scim/v2/Users/{id}`): ids stay out of the access log."""
    resource = request.match_info.route.resource
    return "unmatched" if resource is None else resource.canonical


def _resource(request: web.Request, route: str) -> str:
    """The metrics label of a SCIM route: `Users`, `Groups`, `Schemas`, …, or `unmatched`."""
    if route == "unmatched":
        return route
    return route.removeprefix(request.app[SETTINGS].base_path).strip("/").partition("/")[0] or "unmatched"


def _under_base_path(request: web.Request) -> bool:
    base_path = request.app[SETTINGS].base_path
    return request.path == base_path or request.path.startswith(f"{base_path}/")
