"""The v2 REST framework (`/api/v2/...`), as SonarQube's Spring MVC layer behaves (docs/sonarqube.md SQ24).

Order: route (404 "Resource not found."), method (405), content type (415), on 26.x undeclared query
parameters (400), query binding and bean validation (400 "Value … was rejected"), JSON body (400
"Invalid request format."), body bean validation, then the controller. Errors are `{"message":…}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from scim_bridge.emulator import rules
from scim_bridge.emulator.model import EmulatorError, bad_request, forbidden

if TYPE_CHECKING:
    from multidict import MultiMapping

    from scim_bridge.emulator.model import User
    from scim_bridge.emulator.profiles import Profile
    from scim_bridge.emulator.specs import EndpointSpec, ParamSpec
    from scim_bridge.emulator.state import Directory

V2Handler = Callable[["V2Call"], web.Response]
Body = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
UNEXPECTED_ERROR = "An unexpected error occurred. Please contact support if the problem persists."
_INVALID_FORMAT = "Invalid request format."
_INTEGER_PARAMETERS = frozenset({"pageSize", "pageIndex"})
_BOOLEAN_PARAMETERS = frozenset({"active", "managed"})
_BOOLEAN_FIELDS = frozenset({"local"})
_LIST_FIELDS = frozenset({"scmAccounts"})
_EMAIL_FIELDS = frozenset({"email"})
# `@NotEmpty` rather than `@NotNull`: group names (create).
_NOT_EMPTY_FIELDS = frozenset({("POST", "/api/v2/authorizations/groups", "name")})
_SPRING_TRUE = frozenset({"true", "on", "yes", "1"})
_SPRING_FALSE = frozenset({"false", "off", "no", "0"})
_JAVA_INT_MAX = 2**31 - 1
_JAVA_INT = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class V2Action:
    spec: EndpointSpec
    handler: V2Handler


@dataclass(frozen=True, slots=True)
class V2Route:
    """One path pattern and what each HTTP method does there."""

    pattern: re.Pattern[str]
    actions: Mapping[str, V2Action]


def route(actions: list[V2Action]) -> V2Route:
    """The route of actions sharing one path (`{id}` matches one path segment)."""
    path = actions[0].spec.path
    pattern = re.compile(re.escape(path).replace(re.escape("{id}"), "(?P<id>[^/]+)"))
    return V2Route(pattern, {action.spec.method: action for action in actions})


@dataclass(frozen=True, slots=True)
class V2Call:
    """One call: bound query parameters, validated JSON body, path id, caller and state."""

    spec: EndpointSpec
    directory: Directory
    caller: User
    path_id: str
    query: dict[str, Any]
    body: Body

    @property
    def profile(self) -> Profile:
        return self.directory.profile

    def require_admin(self) -> User:
        if not self.directory.is_admin(self.caller):
            raise forbidden()
        return self.caller


async def serve_v2(
    request: web.Request, routes: list[V2Route], directory: Directory, caller: User
) -> web.Response:
    try:
        return await _dispatch(request, routes, directory, caller)
    except EmulatorError as error:
        return error_response(error.status, error.messages[0])


async def _dispatch(
    request: web.Request, routes: list[V2Route], directory: Directory, caller: User
) -> web.Response:
    match, found = _find_route(request.path, routes)
    if found is None or match is None:
        raise EmulatorError(404, "Resource not found.")
    action = found.actions.get(request.method)
    if action is None:
        raise EmulatorError(405, "Method not supported.")
    _check_content_type(request, action.spec)
    if directory.profile.v2_rejects_unknown_parameters:
        _reject_unknown_parameters(request, action.spec)
    query = _bind_query(request.query, action.spec)
    body = await _read_body(request, action.spec)
    call = V2Call(
        action.spec, directory, caller, match.group("id") if "{id}" in action.spec.path else "", query, body
    )
    return action.handler(call)


def _find_route(path: str, routes: list[V2Route]) -> tuple[re.Match[str] | None, V2Route | None]:
    for candidate in routes:
        match = candidate.pattern.fullmatch(path)
        if match is not None:
            return match, candidate
    return None, None


def _check_content_type(request: web.Request, spec: EndpointSpec) -> None:
    if spec.method == "PATCH" and request.content_type != MERGE_PATCH:
        raise EmulatorError(415, "Unsupported media type.")
    if spec.method == "POST" and not _is_json(request.content_type):
        raise EmulatorError(415, "Unsupported media type.")


def _is_json(content_type: str) -> bool:
    kind, _, subtype = content_type.partition("/")
    return content_type == "application/json" or (kind == "application" and subtype.endswith("+json"))


def _reject_unknown_parameters(request: web.Request, spec: EndpointSpec) -> None:
    allowed = {param.name for param in spec.params} | {"_"}
    unknown = sorted({name for name in request.query if name and name not in allowed})
    if not unknown:
        return
    quoted = ", ".join(f'"{name}"' for name in unknown)
    if len(unknown) == 1:
        raise bad_request(f"Parameter {quoted} is not a valid parameter for {request.path}.")
    raise bad_request(f"Parameters {quoted} are not valid parameters for {request.path}.")


# --- query binding ------------------------------------------------------------------------------


def _bind_query(query: MultiMapping[str], spec: EndpointSpec) -> dict[str, Any]:
    """Typed query values (defaults applied); conversion and constraint failures are bind errors."""
    bound: dict[str, Any] = {}
    errors: list[str] = []
    for param in spec.params:
        raw = query.get(param.name)
        value = param.default if raw is None or raw == "" else raw
        bound[param.name] = _convert(param, value, errors) if value is not None else None
    if errors:
        raise bad_request("".join(errors))
    return bound


def _convert(param: ParamSpec, value: str, errors: list[str]) -> Any:
    if param.name in _INTEGER_PARAMETERS:
        return _integer(param.name, value, errors)
    if param.name in _BOOLEAN_PARAMETERS:
        return _boolean(param.name, value, errors)
    if param.name == "anonymize":  # a plain request parameter, not a bound object: another error
        return _request_boolean(value)
    return value


def _integer(name: str, value: str, errors: list[str]) -> int | None:
    number = int(value) if _JAVA_INT.fullmatch(value) else None
    if number is None or abs(number) > _JAVA_INT_MAX:
        errors.append(
            _rejected(value, name, _mismatch("java.lang.Integer", name, f'For input string: "{value}"'))
        )
        return None
    errors.extend(_rejected(number, name, message) for message in _page_violations(name, number))
    return number


def _page_violations(name: str, number: int) -> list[str]:
    if name == "pageSize":
        low = ["must be greater than or equal to 0"] if number < 0 else []
        return low + (["must be less than or equal to 500"] if number > 500 else [])
    if number < 1:
        return ["must be greater than 0", "must be greater than or equal to 1"]
    return []


def _boolean(name: str, value: str, errors: list[str]) -> bool | None:
    lowered = value.lower()
    if lowered in _SPRING_TRUE:
        return True
    if lowered in _SPRING_FALSE:
        return False
    errors.append(
        _rejected(value, name, _mismatch("java.lang.Boolean", name, f"Invalid boolean value [{value}]"))
    )
    return None


def _request_boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered not in _SPRING_TRUE | _SPRING_FALSE:
        raise bad_request("Invalid parameter type.")
    return lowered in _SPRING_TRUE


def _mismatch(java_type: str, name: str, cause: str) -> str:
    return (
        f"Failed to convert property value of type 'java.lang.String' to required type '{java_type}' "
        f"for property '{name}'; {cause}"
    )


def _rejected(value: object, field: str, message: str) -> str:
    return f"Value {_java_string(value)} for field {field} was rejected. Error: {message}."


def _java_string(value: object) -> str:
    """`String.valueOf` as Spring prints a rejected value; null is shown as `{}`."""
    if value is None:
        return "{}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_java_string(item) for item in value) + "]"
    return str(value)


# --- JSON body ----------------------------------------------------------------------------------


async def _read_body(request: web.Request, spec: EndpointSpec) -> Body:
    if not spec.body:
        return {}
    try:
        document = json.loads(await request.text())
    except ValueError:
        raise bad_request(_INVALID_FORMAT) from None
    if not isinstance(document, dict):
        raise bad_request(_INVALID_FORMAT)
    body = {
        field.name: _field(field.name, document[field.name]) for field in spec.body if field.name in document
    }
    _validate_body(spec, body)
    return body


def _field(name: str, value: Any) -> Any:
    """Jackson's reading of a field: scalars become text, booleans accept "true"/"false", lists of text."""
    if value is None:
        return None
    if name in _BOOLEAN_FIELDS:
        return _json_boolean(value)
    if name in _LIST_FIELDS:
        if not isinstance(value, list):
            raise bad_request(_INVALID_FORMAT)
        return [_json_text(item) for item in value]
    return _json_text(value)


def _json_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in {"true", "false"}:
        return bool(value == "true")
    raise bad_request(_INVALID_FORMAT)


def _json_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise bad_request(_INVALID_FORMAT)


def _validate_body(spec: EndpointSpec, body: Body) -> None:
    """Bean validation: `@NotNull`/`@NotEmpty`, `@Size`, `@Email`; every failure in one message."""
    errors: list[str] = []
    for field in spec.body:
        value = body.get(field.name)
        errors.extend(_rejected(value, field.name, message) for message in _violations(spec, field, value))
    if errors:
        raise bad_request("".join(errors))


def _violations(spec: EndpointSpec, field: ParamSpec, value: Any) -> list[str]:
    not_empty = (spec.method, spec.path, field.name) in _NOT_EMPTY_FIELDS
    if value is None:
        if not_empty:
            return ["must not be empty"]
        return ["must not be null"] if field.required else []
    found: list[str] = []
    if not_empty and not value:
        found.append("must not be empty")
    if isinstance(value, str) and _size_violated(field, len(value)):
        found.append(f"size must be between {field.min_length or 0} and {field.max_length or _JAVA_INT_MAX}")
    if field.name in _EMAIL_FIELDS and isinstance(value, str) and not rules.is_valid_bean_email(value):
        found.append("must be a well-formed email address")
    return found


def _size_violated(field: ParamSpec, length: int) -> bool:
    too_short = field.min_length is not None and length < field.min_length
    return too_short or (field.max_length is not None and length > field.max_length)


# --- answers ------------------------------------------------------------------------------------


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def no_content() -> web.Response:
    return web.Response(status=204)


def error_response(status: int, message: str) -> web.Response:
    return json_response({"message": message}, status=status)
