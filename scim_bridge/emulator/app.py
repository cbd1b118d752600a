"""The emulator as an aiohttp application: `/api/**` (lifecycle phase, faults, latency, journal,
authentication, v1 or v2) and the `/_emulator/` test controls."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
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
from scim_bridge.emulator.v1 import INTERNAL_ERROR, V1Action, action_path, serve_v1
from scim_bridge.emulator.v1 import error_response as v1_error
from scim_bridge.emulator.v2 import UNEXPECTED_ERROR, V2Route, serve_v2
from scim_bridge.emulator.v2 import error_response as v2_error
from scim_bridge.emulator.v2_handlers import v2_routes
from scim_bridge.emulator.views import format_datetime

if TYPE_CHECKING:
    from scim_bridge.emulator.auth import Authentication
    from scim_bridge.emulator.config import EmulatorSettings
    from scim_bridge.emulator.lifecycle import Phase

log = structlog.get_logger("scim_bridge.emulator")

_V1_HANDLERS = v1_users.HANDLERS | v1_groups.HANDLERS | v1_system.HANDLERS
_EXPIRY_HEADER = "SonarQube-Authentication-Token-Expiration"

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Api:
    """What one profile serves: its v1 actions (all of them, and those a starting server answers) and its
    v2 routes."""

    v1_actions: dict[str, V1Action]
    v1_starting_actions: dict[str, V1Action]
    v2_routes: list[V2Route]

    @classmethod
    def of(cls, profile: Profile) -> Api:
        actions = {
            spec.path: V1Action(spec, _V1_HANDLERS[spec.path])
            for spec in (*specs_for(profile), *undeclared_specs())
            if spec.api == "v1"
        }
        starting = {
            path: V1Action(actions[path].spec, handler)
            for path, handler in v1_system.STARTING_HANDLERS.items()
        }
        return cls(actions, starting, v2_routes(profile))

    def v1_for(self, phase: Phase) -> Mapping[str, V1Action]:
        return self.v1_starting_actions if phase == "starting" else self.v1_actions


@dataclass
class Emulator:
    """One running emulator: configuration, lifecycle phase, state, faults and the journal of `/api`
    requests. The profile lives in the directory (`directory.profile`), which every handler reads."""

    settings: EmulatorSettings
    directory: Directory
    faults: FaultInjector
    api: Api
    phase: Phase = "up"
    journal: list[dict[str, Any]] = field(default_factory=list)
    sleep: Sleep = field(default=asyncio.sleep, repr=False)  # how the start delay is waited
    _pending_start: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    @classmethod
    def start(cls, settings: EmulatorSettings, sleep: Sleep = asyncio.sleep) -> Emulator:
        """A new emulator; with a start delay it begins `starting` (`schedule_start` ends that phase)."""
        profile = get_profile(settings.profile)
        return cls(
            settings=settings,
            directory=cls._fresh_directory(settings, profile),
            faults=FaultInjector(settings.fault_settings()),
            api=Api.of(profile),
            phase="starting" if settings.start_delay > 0 else "up",
            sleep=sleep,
        )

    @property
    def start_pending(self) -> bool:
        """Whether a switch to `up` at the end of the start delay is still to come."""
        return self._pending_start is not None

    @staticmethod
    def _fresh_directory(settings: EmulatorSettings, profile: Profile) -> Directory:
        token = settings.admin_token.get_secret_value()
        return Directory(profile, Seed(admin_token=token, saml=settings.saml, seed=settings.seed))

    @property
    def profile(self) -> Profile:
        return self.directory.profile

    def reset(self) -> None:
        """Back to the seeded state of the current profile, phase `up`; the journal is cleared and fault
        choices start again from their seed."""
        self.directory = self._fresh_directory(self.settings, self.profile)
        self.journal.clear()
        self.faults.restart()
        self.enter(phase="up")

    # --- lifecycle -------------------------------------------------------------------------------

    def enter(self, phase: Phase) -> None:
        """Switch to `phase` now; a pending switch to `up` after the start delay is cancelled."""
        self._cancel_pending_start()
        if phase != self.phase:
            log.info("emulator.phase", phase=phase, previous=self.phase)
        self.phase = phase

    def restart_as(self, profile: Profile) -> None:
        """Become another SonarQube version (an upgrade or a downgrade) and keep every piece of state:
        users, groups, memberships, tokens, permissions, settings and their uuids, as SonarQube keeps its
        database. The phase is left as it is."""
        if profile != self.profile:
            log.info("emulator.profile", profile=profile.name, previous=self.profile.name)
        self.api = Api.of(profile)
        self.directory.restart_as(profile)

    def schedule_start(self, delay: float) -> None:
        """While `starting`, switch to `up` by itself after `delay` seconds."""
        self._cancel_pending_start()
        if self.phase == "starting" and delay > 0:
            self._pending_start = asyncio.get_running_loop().create_task(self._up_after(delay))

    async def stop(self) -> None:
        """Cancel the pending switch to `up`, if any, and wait for it to end."""
        task = self._cancel_pending_start()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _up_after(self, delay: float) -> None:
        await self.sleep(delay)
        self._pending_start = None
        self.enter(phase="up")

    def _cancel_pending_start(self) -> asyncio.Task[None] | None:
        task, self._pending_start = self._pending_start, None
        if task is not None:
            task.cancel()
        return task


EMULATOR = web.AppKey("emulator", Emulator)


_PHASE: web.RequestKey[Phase] = web.RequestKey("emulator_phase")  # the phase a request arrived in


def create_emulator_app(settings: EmulatorSettings, *, sleep: Sleep = asyncio.sleep) -> web.Application:
    """A new emulator application; all state lives in it (`app[EMULATOR]`). `sleep` waits the start delay
    (tests may pass one they control)."""
    app = web.Application(middlewares=[_api_lifecycle_and_faults])
    app[EMULATOR] = Emulator.start(settings, sleep)
    app.cleanup_ctx.append(_start_delay)
    control.add_routes(app, EMULATOR)
    app.router.add_route("*", "/api/{tail:.*}", _serve_api)
    return app


async def _start_delay(app: web.Application) -> AsyncIterator[None]:
    """From the application's start, count down the start delay (without holding the start up)."""
    emulator = app[EMULATOR]
    emulator.schedule_start(emulator.settings.start_delay)
    yield
    await emulator.stop()


# --- /api/**: journal, latency and faults -------------------------------------------------------


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _api_lifecycle_and_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Journal every `/api` request; answer it as the lifecycle phase says; when `up`, add the fault chosen
    for it. Latency delays every answer given."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    emulator = request.app[EMULATOR]
    phase = request[_PHASE] = emulator.phase
    # Only a running SonarQube draws faults.
    fault = emulator.faults.pick(request.method, request.path) if phase == "up" else None
    entry: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "query": request.query_string,
        "phase": phase,
        "status": None,
        "fault": None if fault is None else fault.kind,
        "applied": False,
    }
    emulator.journal.append(entry)
    if phase == "down":
        return _drop_connection(request)
    settings = emulator.faults.settings
    if settings.latency_ms:
        await asyncio.sleep(settings.latency_ms / 1000)
    if phase == "starting" and action_path(request.path) not in emulator.api.v1_starting_actions:
        entry["status"] = 503
        return _starting_refusal()
    if fault is None:
        return await _applied(request, handler, entry)
    return await _faulty(request, handler, fault, entry)


def _starting_refusal() -> web.Response:
    """A starting SonarQube's web server refuses what it cannot serve yet: a plain 503, no Retry-After."""
    return web.Response(status=503, text="503 Service Unavailable")


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
    api = emulator.api
    if _is_v2(emulator, request) and authentication.user is not None:
        return await serve_v2(request, api.v2_routes, emulator.directory, authentication.user)
    return await serve_v1(request, api.v1_for(request[_PHASE]), emulator.directory, authentication)
