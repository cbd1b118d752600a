"""The v1 web-service framework (`api/<controller>/<action>`), as SonarQube's WebServiceEngine behaves.

Order: unknown action (404 "Unknown url : <path>"), unknown extension (400), HTTP method (405), then the
action runs and reads its parameters; each parameter is validated when the action reads it, from its
`ParamSpec`: NUL character, required, possible values, maximum and minimum length (of the untrimmed value),
maximum value. Values are trimmed; undeclared parameters are ignored. Errors are
`{"errors":[{"msg":…}]}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from scim_bridge.emulator.model import EmulatorError, bad_request, forbidden

if TYPE_CHECKING:
    from scim_bridge.emulator.auth import Authentication
    from scim_bridge.emulator.model import User
    from scim_bridge.emulator.profiles import Profile
    from scim_bridge.emulator.specs import EndpointSpec
    from scim_bridge.emulator.state import Directory

V1Handler = Callable[["V1Call"], web.Response]

_JAVA_INT = re.compile(r"[+-]?[0-9]+")
_INT_RANGE = range(-(2**31), 2**31)
INTERNAL_ERROR = "An error has occurred. Please contact your administrator"


@dataclass(frozen=True, slots=True)
class V1Action:
    """A served action: its declaration and its handler."""

    spec: EndpointSpec
    handler: V1Handler


class V1Call:
    """One call of an action: its parameters (validated as they are read), the caller and the state."""

    def __init__(
        self,
        spec: EndpointSpec,
        params: MultiDictProxy[str],
        directory: Directory,
        authentication: Authentication,
    ) -> None:
        self.spec = spec
        self.directory = directory
        self.authentication = authentication
        self._params = params

    @property
    def profile(self) -> Profile:
        return self.directory.profile

    @property
    def caller(self) -> User | None:
        return self.authentication.user

    # --- parameters ------------------------------------------------------------------------------

    def has(self, name: str) -> bool:
        return name in self._params

    def param(self, name: str) -> str | None:
        """The trimmed value (or the default), after the framework's checks."""
        definition = self.spec.param(name)
        raw = self._params.get(name)
        if raw is not None and "\0" in raw:
            raise bad_request("Request parameters are not allowed to contain NUL character")
        if definition.required and raw is None:
            raise bad_request(f"The '{name}' parameter is missing")
        raw_or_default = raw if raw is not None else definition.default
        if raw_or_default is None:
            return None
        value = raw_or_default.strip()
        if definition.possible_values is not None and value not in definition.possible_values:
            allowed = ", ".join(definition.possible_values)
            raise bad_request(f"Value of parameter '{name}' ({value}) must be one of: [{allowed}]")
        self._check_length(name, raw_or_default)
        if definition.max_value is not None:
            self._check_max_value(name, value, definition.max_value)
        return value

    def mandatory(self, name: str) -> str:
        value = self.param(name)
        if value is None:
            raise bad_request(f"The '{name}' parameter is missing")
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.param(name)
        return None if value is None else value in {"true", "yes"}

    def mandatory_int(self, name: str) -> int:
        value = self.mandatory(name)
        number = _java_int(value)
        if number is None:
            raise bad_request(f"The '{name}' parameter cannot be parsed as an integer value: {value}")
        return number

    def multi(self, name: str) -> list[str]:
        """Every value of a repeated parameter, untrimmed (SonarQube checks only possible values on them)."""
        definition = self.spec.param(name)
        values = self._params.getall(name, [])
        if not values and definition.default is not None:
            values = [definition.default]
        return values

    def strings(self, name: str) -> list[str] | None:
        """A comma-separated list; each element must be a possible value."""
        definition = self.spec.param(name)
        raw = self._params.get(name, definition.default)
        if raw is None:
            return None
        values = [part.strip() for part in raw.split(",") if part.strip()]
        for value in values:
            if definition.possible_values is not None and value not in definition.possible_values:
                allowed = ", ".join(definition.possible_values)
                raise bad_request(f"Value of parameter '{name}' ({value}) must be one of: [{allowed}]")
        return values

    def _check_length(self, name: str, raw: str) -> None:
        definition = self.spec.param(name)
        length = len(raw)
        if definition.max_length is not None and length > definition.max_length:
            limit = definition.max_length
            raise bad_request(f"'{name}' length ({length}) is longer than the maximum authorized ({limit})")
        if definition.min_length is not None and length < definition.min_length:
            limit = definition.min_length
            raise bad_request(f"'{name}' length ({length}) is shorter than the minimum authorized ({limit})")

    @staticmethod
    def _check_max_value(name: str, value: str, maximum: int) -> None:
        number = _java_int(value)
        if number is None:
            raise bad_request(f"'{name}' value '{value}' cannot be parsed as an integer")
        if number > maximum:
            raise bad_request(f"'{name}' value ({number}) must be less than {maximum}")

    # --- permissions -----------------------------------------------------------------------------

    def require_login(self) -> User:
        if self.caller is None:
            raise EmulatorError(401, "Authentication is required")
        return self.caller

    def require_admin(self) -> User:
        caller = self.require_login()
        if not self.directory.is_admin(caller):
            raise forbidden()
        return caller


def _java_int(text: str) -> int | None:
    """`Integer.parseInt`: optional sign, ASCII digits, 32-bit range."""
    if not _JAVA_INT.fullmatch(text):
        return None
    number = int(text)
    return number if number in _INT_RANGE else None


# --- dispatch -----------------------------------------------------------------------------------


async def serve_v1(
    request: web.Request,
    actions: Mapping[str, V1Action],
    directory: Directory,
    authentication: Authentication,
) -> web.Response:
    """Answer one `api/...` request with the action it names."""
    try:
        return await _run(request, actions, directory, authentication)
    except EmulatorError as error:
        return error_response(error.status, *error.messages)


async def _run(
    request: web.Request,
    actions: Mapping[str, V1Action],
    directory: Directory,
    authentication: Authentication,
) -> web.Response:
    path = request.path.removeprefix("/")
    action_path, extension = _split_extension(path)
    action = actions.get(action_path)
    if action is None:
        raise EmulatorError(404, f"Unknown url : {path}")
    if extension not in {None, "json"}:
        raise bad_request(f"Unknown action extension: {extension}")
    _check_method(request.method, action.spec)
    params = await _read_params(request)
    return action.handler(V1Call(action.spec, params, directory, authentication))


def action_path(request_path: str) -> str:
    """The action a request path names: `/api/system/status.json` names `api/system/status`."""
    return _split_extension(request_path.removeprefix("/"))[0]


def _split_extension(path: str) -> tuple[str, str | None]:
    head, slash, last = path.rpartition("/")
    action, dot, extension = last.partition(".")
    return (f"{head}{slash}{action}", extension) if dot else (path, None)


def _check_method(method: str, spec: EndpointSpec) -> None:
    if method == "GET" and spec.method == "POST":
        raise EmulatorError(405, "HTTP method POST is required")
    if method == "POST" and spec.method == "GET":
        raise EmulatorError(405, "HTTP method GET is required")
    if method not in {"GET", "POST"}:
        raise EmulatorError(405, f"HTTP method {method} is not allowed")


async def _read_params(request: web.Request) -> MultiDictProxy[str]:
    """Query string, then (for POST) a form body: the servlet parameter API's view of a request."""
    params: MultiDict[str] = MultiDict(request.query)
    if request.method == "POST" and request.content_type in {
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }:
        form = await request.post()
        params.extend((key, value) for key, value in form.items() if isinstance(value, str))
    return MultiDictProxy(params)


# --- answers ------------------------------------------------------------------------------------


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def no_content() -> web.Response:
    return web.Response(status=204)


def error_response(status: int, *messages: str) -> web.Response:
    return json_response({"errors": [{"msg": message} for message in messages]}, status=status)
