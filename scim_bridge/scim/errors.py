"""The SCIM-facing error tree: every failure a SCIM client can be told about, with its RFC 7644 §3.12 status
and `scimType`. The web layer renders any of these as one `application/scim+json` Error body; scim2-models'
exceptions and pydantic's ValidationError are translated into them here, with `raise ... from exc`.

    ScimError                      status, scim_type, detail; to_error(), to_json(), headers
    ├── BadRequestError            400
    │   ├── InvalidValueError      400 invalidValue   a value does not fit its attribute or operation
    │   ├── InvalidSyntaxError     400 invalidSyntax  the body is not the message it should be
    │   ├── InvalidFilterError     400 invalidFilter  the filter does not parse or names no attribute
    │   ├── InvalidPathError       400 invalidPath    a PATCH path does not parse or is not supported
    │   ├── NoTargetError          400 noTarget       a PATCH path selects nothing to operate on
    │   ├── MutabilityError        400 mutability     read-only, immutable or required attribute
    │   ├── TooManyError           400 tooMany        the filter selects more than the bridge answers
    │   └── InvalidVersionError    400 invalidVers    a SCIM version the bridge does not speak
    ├── UnauthorizedError          401                carries the WWW-Authenticate challenge
    ├── ForbiddenError             403
    ├── NotFoundError              404
    ├── MethodNotAllowedError      405                carries the Allow header
    ├── UniquenessError            409 uniqueness
    ├── PreconditionFailedError    412                If-Match does not match the resource version
    ├── PayloadTooLargeError       413
    ├── InternalServerError        500                opaque: a request id, never internals
    ├── UnsupportedError           501
    └── RetryLaterError                               carries Retry-After seconds
        ├── TooManyRequestsError   429                (RFC 6585 §4)
        └── ServiceUnavailableError 503
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from scim2_models import Context, Error, SCIMException, UnauthorizedException

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic_core import ErrorDetails


class ScimError(Exception):
    """A failure answered with a SCIM Error body; subclasses fix the status and the scimType."""

    status: int = 400
    scim_type: str | None = None

    def __init__(self, detail: str, *, status: int | None = None, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if scim_type is not None:
            self.scim_type = scim_type

    @property
    def headers(self) -> dict[str, str]:
        """Response headers this error requires besides the body."""
        return {}

    def to_error(self) -> Error:
        return Error(status=self.status, scim_type=self.scim_type, detail=self.detail)

    def to_json(self) -> dict[str, Any]:
        return self.to_error().model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


class BadRequestError(ScimError):
    """The request is wrong; retrying it unchanged cannot succeed."""


class InvalidValueError(BadRequestError):
    scim_type = "invalidValue"


class InvalidSyntaxError(BadRequestError):
    scim_type = "invalidSyntax"


class InvalidFilterError(BadRequestError):
    scim_type = "invalidFilter"


class InvalidPathError(BadRequestError):
    scim_type = "invalidPath"


class NoTargetError(BadRequestError):
    scim_type = "noTarget"


class MutabilityError(BadRequestError):
    scim_type = "mutability"


class TooManyError(BadRequestError):
    scim_type = "tooMany"


class InvalidVersionError(BadRequestError):
    scim_type = "invalidVers"


class UnauthorizedError(ScimError):
    """No valid bearer token; RFC 6750 requires the challenge header on the 401."""

    status = 401

    def __init__(self, detail: str, *, challenge: str = "Bearer") -> None:
        super().__init__(detail)
        self.challenge = challenge

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge}


class ForbiddenError(ScimError):
    status = 403


class NotFoundError(ScimError):
    status = 404


class MethodNotAllowedError(ScimError):
    """The endpoint exists but does not take this method; `Allow` lists the ones it takes."""

    status = 405

    def __init__(self, detail: str, *, allowed: str) -> None:
        super().__init__(detail)
        self.allowed = allowed

    @property
    def headers(self) -> dict[str, str]:
        return {"Allow": self.allowed}


class UniquenessError(ScimError):
    status = 409
    scim_type = "uniqueness"


class PreconditionFailedError(ScimError):
    status = 412


class PayloadTooLargeError(ScimError):
    status = 413


class RetryLaterError(ScimError):
    """An answer that tells the client when to try again (`Retry-After`, in seconds)."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class TooManyRequestsError(RetryLaterError):
    """The client sent too many requests of one kind (failed authentications); it may try again after
    `retry_after` seconds (RFC 6585 §4)."""

    status = 429


class InternalServerError(ScimError):
    """An unexpected failure: the client learns the request id to quote, nothing about the cause."""

    status = 500

    def __init__(self, request_id: str) -> None:
        super().__init__(f"internal error; quote request id {request_id} to the administrator")
        self.request_id = request_id


class UnsupportedError(ScimError):
    status = 501


class ServiceUnavailableError(RetryLaterError):
    """SonarQube or the store cannot serve now; the client should retry after `retry_after` seconds."""

    status = 503


_BY_SCIM_TYPE: Final[dict[str, type[ScimError]]] = {
    str(error.scim_type): error
    for error in (
        InvalidValueError,
        InvalidSyntaxError,
        InvalidFilterError,
        InvalidPathError,
        NoTargetError,
        MutabilityError,
        TooManyError,
        InvalidVersionError,
        UniquenessError,
    )
}

_BY_STATUS: Final[dict[int, type[ScimError]]] = {
    error.status: error
    for error in (
        BadRequestError,
        ForbiddenError,
        NotFoundError,
        PreconditionFailedError,
        PayloadTooLargeError,
        UnsupportedError,
    )
}

# Pydantic error types, rephrased as the SCIM rule they break.
_RULES: Final[dict[str, str]] = {
    "missing": "required attribute is missing",
    "required_error": "required attribute is missing",
    "string_type": "value is not a valid string",
    "bool_type": "value is not a valid boolean",
    "bool_parsing": "value is not a valid boolean",
    "int_type": "value is not a valid integer",
    "int_parsing": "value is not a valid integer",
    "int_from_float": "value is not a valid integer",
    "datetime_type": "value is not a valid dateTime",
    "datetime_parsing": "value is not a valid dateTime",
    "datetime_from_date_parsing": "value is not a valid dateTime",
    "list_type": "value is not a list of values (the attribute is multi-valued)",
    "dict_type": "value is not an object (the attribute is complex)",
    "model_type": "value is not an object (the attribute is complex)",
    "model_attributes_type": "value is not an object (the attribute is complex)",
    "extra_forbidden": "attribute is not defined by the schema",
}


def from_scim_exception(exc: SCIMException, *, context: str = "") -> ScimError:
    """Translate a scim2-models exception; a value refused while a PATCH applied names its attribute.

    `context` prefixes the detail, e.g. with the PATCH operation at fault.
    """
    if isinstance(exc.__cause__, ValidationError):
        return from_validation_error(exc.__cause__, context=context)
    detail = f"{context}: {exc.detail}" if context else exc.detail
    if isinstance(exc, UnauthorizedException):
        return UnauthorizedError(detail)
    return _error(detail, exc.status, exc.scim_type or None)


def from_validation_error(
    exc: ValidationError, *, context: str = "", strip_loc: Sequence[str | int] = ()
) -> ScimError:
    """Translate a validation failure; the detail names each attribute path and the rule it breaks.

    `context` prefixes the detail (e.g. the PATCH operation at fault) and `strip_loc` removes a leading
    location every error shares (e.g. the operation's place in the message that was validated).
    """
    errors = exc.errors(include_url=False)
    detail = "; ".join(_describe(error, strip_loc) for error in errors)
    if context:
        detail = f"{context}: {detail}"
    # scim2-models knows which errors are about the message structure and which about a value.
    first = Error.from_validation_error(errors[0])
    return _error(detail, first.status or 400, first.scim_type)


def _error(detail: str, status: int, scim_type: str | None) -> ScimError:
    """The bridge error for a status and scimType; one without a class of its own keeps both as they are."""
    error_class = _BY_SCIM_TYPE.get(scim_type) if scim_type else _BY_STATUS.get(status)
    if error_class is None:
        return ScimError(detail, status=status, scim_type=scim_type)
    return error_class(detail)


def _describe(error: ErrorDetails, strip_loc: Sequence[str | int]) -> str:
    loc = tuple(error["loc"])
    if loc[: len(strip_loc)] == tuple(strip_loc):
        loc = loc[len(strip_loc) :]
    missing_field = error.get("ctx", {}).get("field_name")
    if isinstance(missing_field, str):
        loc = (*loc, missing_field)  # scim2-models reports a missing required attribute on its parent
    rule = _RULES.get(error["type"]) or error["msg"].removeprefix("Value error, ")
    path = _attribute_path(loc)
    return f"{path}: {rule}" if path else rule


def _attribute_path(loc: Sequence[str | int]) -> str:
    """Write a pydantic location in SCIM notation: `emails.0.value`, `urn:...:User:manager`."""
    path = ""
    previous = ""
    for part in loc:
        name = str(part)
        if "[" in name or "(" in name:
            continue  # a union member pydantic tried, not an attribute
        if "_" in name and not name.startswith(("urn:", "$")):
            name = to_camel(name)  # an assignment names the Python field
        separator = ":" if previous.startswith("urn:") else "."
        path = f"{path}{separator}{name}" if path else name
        previous = name
    return path
