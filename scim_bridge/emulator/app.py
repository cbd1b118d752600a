"""The emulator as an aiohttp application: `/api/**` (faults, latency, journal, authentication, v1 or v2)
and the `/_emulator/` test controls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from scim_bridge.emulator import control, v1_groups, v1_system, v1_users
from scim_bridge.emulator.auth import EXEMPT_PATHS, authenticate
from scim_bridge.emulator.faults import Fault, FaultInjector
from scim_bridge.emulator.profiles import Profile, get_profile
from scim_bridge.emulator.specs import specs_for, undeclared_specs
from scim_bridge.emulator.state import Directory, Seed
from scim_bridge.emulator.v1 import INTERNAL_ERROR, V1Action, serve_v1
from scim_bridge.emulator.v1 import error_response as v1_error
from scim_bridge.emulator.v2 import UNEXPECTED_ERROR, V2Route, serve_v2
from scim_bridge.emulator.v2 import error_response as v2_error
from scim_bridge.emulator.v2_handlers import v2_routes
from scim_bridge.emulator.views import format_datetime

if TYPE_CHECKING:
    from scim_bridge.emulator.auth import Authentication
    from scim_bridge.emulator.config import EmulatorSettings

log = structlog.get_logger("scim_bridge.emulator")

_V1_HANDLERS = v1_users.HANDLERS | v1_groups.HANDLERS | v1_system.HANDLERS
_EXPIRY_HEADER = "SonarQube-Authentication-Token-Expiration"


@dataclass
class Emulator:
    """One running emulator: configuration, state, faults and the journal of `/api` requests."""

    settings: EmulatorSettings
    profile: Profile
    directory: Directory
    faults: FaultInjector
    v1_actions: dict[str, V1Action]
    v2_routes: list[V2Route]
    journal: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, settings: EmulatorSettings) -> Emulator:
        profile = get_profile(settings.profile)
        actions = {
            spec.path: V1Action(spec, _V1_HANDLERS[spec.path])
            for spec in (*specs_for(profile), *undeclared_specs())
            if spec.api == "v1"
        }
        return cls(
            settings=settings,
            profile=profile,
            directory=cls._fresh_directory(settings, profile),
            faults=FaultInjector(settings.fault_settings()),
            v1_actions=actions,
            v2_routes=v2_routes(profile),
        )

    @staticmethod
    def _fresh_directory(settings: EmulatorSettings, profile: Profile) -> Directory:
        token = settings.admin_token.get_secret_value()
        return Directory(profile, Seed(admin_token=token, saml=settings.saml, seed=settings.seed))

    def reset(self) -> None:
        """Back to the seeded state; the journal is cleared and fault choices start again from their seed."""
        self.directory = self._fresh_directory(self.settings, self.profile)
        self.journal.clear()
        self.faults.restart()


EMULATOR = web.AppKey("emulator", Emulator)


def create_emulator_app(settings: EmulatorSettings) -> web.Application:
    """A new emulator application; all state lives in it (`app[EMULATOR]`)."""
    app = web.Application(middlewares=[_api_faults])
    app[EMULATOR] = Emulator.start(settings)
    control.add_routes(app, EMULATOR)
    app.router.add_route("*", "/api/{tail:.*}", _serve_api)
    return app


# --- /api/**: journal, latency and faults -------------------------------------------------------


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _api_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Journal every `/api` request, then add latency and the fault chosen for it."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    emulator = request.app[EMULATOR]
    fault = emulator.faults.pick()
    entry: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "query": request.query_string,
        "status": None,
        "fault": None if fault is None else fault.kind,
        "applied": False,
    }
    emulator.journal.append(entry)
    settings = emulator.faults.settings
    if settings.latency_ms:
        await asyncio.sleep(settings.latency_ms / 1000)
    if fault is None:
        return await _applied(request, handler, entry)
    return await _faulty(request, handler, fault, entry)


async def _faulty(
    request: web.Request, handler: Handler, fault: Fault, entry: dict[str, Any]
) -> web.StreamResponse:
    settings = request.app[EMULATOR].faults.settings
    if fault.kind in {"500", "503", "429"}:
        refused = _fault_response(request, fault, settings.retry_after)
        entry["status"] = refused.status
        return refused
    if fault.before_apply:
        return _drop_connection(request)
    response = await _applied(request, handler, entry)
    if fault.kind == "reset":
        entry["status"] = None
        return _drop_connection(request)
    await asyncio.sleep(settings.slow_seconds)
    return response


async def _applied(request: web.Request, handler: Handler, entry: dict[str, Any]) -> web.StreamResponse:
    response = await handler(request)
    entry.update(applied=True, status=response.status)
    return response


def _fault_response(request: web.Request, fault: Fault, retry_after: int) -> web.Response:
    if fault.kind == "500":
        return _internal_error(request)
    text = "503 Service Unavailable" if fault.kind == "503" else "429 Too Many Requests"
    return web.Response(status=int(fault.kind), text=text, headers={"Retry-After": str(retry_after)})


def _drop_connection(request: web.Request) -> web.Response:
    """Close the connection without an answer; the response returned here is never written."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)


def _internal_error(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    if _is_v2(emulator, request):
        return v2_error(500, UNEXPECTED_ERROR)
    return v1_error(500, INTERNAL_ERROR)


def _is_v2(emulator: Emulator, request: web.Request) -> bool:
    return emulator.profile.v2_api and request.path.startswith("/api/v2/")


# --- /api/**: authentication and dispatch -------------------------------------------------------


async def _serve_api(request: web.Request) -> web.StreamResponse:
    emulator = request.app[EMULATOR]
    authentication = authenticate(request.headers.get("Authorization"), emulator.directory)
    if authentication.user is None and request.path not in EXEMPT_PATHS:
        return web.Response(status=401)  # SonarQube's session check answers with an empty body
    try:
        response: web.StreamResponse = await _dispatch(emulator, request, authentication)
    except Exception:
        log.exception("emulator.unhandled_error", method=request.method, path=request.path)
        return _internal_error(request)
    if authentication.token is not None and authentication.token.expires_at is not None:
        response.headers[_EXPIRY_HEADER] = format_datetime(authentication.token.expires_at) or ""
    return response


async def _dispatch(emulator: Emulator, request: web.Request, authentication: Authentication) -> web.Response:
    if _is_v2(emulator, request) and authentication.user is not None:
        return await serve_v2(request, emulator.v2_routes, emulator.directory, authentication.user)
    return await serve_v1(request, emulator.v1_actions, emulator.directory, authentication)
