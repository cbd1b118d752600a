"""The SCIM error tree: statuses, scimTypes, rendering, and translation of foreign exceptions."""

from __future__ import annotations

import inspect

import pytest
from pydantic import ValidationError
from scim2_models import (
    Context,
    ForbiddenException,
    InvalidFilterException,
    InvalidPathException,
    InvalidValueException,
    InvalidVersionException,
    MutabilityException,
    NoTargetException,
    NotFoundException,
    NotImplementedException,
    PathNotFoundException,
    PayloadTooLargeException,
    PreconditionFailedException,
    SCIMException,
    SensitiveException,
    TooManyException,
    UnauthorizedException,
    UniquenessException,
)

from scim_bridge.scim import errors
from scim_bridge.scim.errors import (
    BadRequestError,
    ForbiddenError,
    InternalServerError,
    InvalidFilterError,
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    InvalidVersionError,
    MutabilityError,
    NoTargetError,
    NotFoundError,
    PayloadTooLargeError,
    PreconditionFailedError,
    ScimError,
    ServiceUnavailableError,
    TooManyError,
    TooManyRequestsError,
    UnauthorizedError,
    UniquenessError,
    UnsupportedError,
    from_scim_exception,
    from_validation_error,
)
from scim_bridge.scim.resources import ENTERPRISE_USER_SCHEMA, ENTRA_POLICY, UserResource

ERROR_CLASSES = [
    value
    for _, value in inspect.getmembers(errors, inspect.isclass)
    if issubclass(value, Exception) and value.__module__ == errors.__name__
]


@pytest.mark.parametrize("error_class", ERROR_CLASSES, ids=lambda error_class: error_class.__name__)
def test_every_public_error_derives_from_scim_error(error_class: type[Exception]) -> None:
    """One base catches every SCIM-facing failure."""
    assert issubclass(error_class, ScimError)


@pytest.mark.parametrize(
    ("error", "status", "scim_type"),
    [
        pytest.param(InvalidValueError("x"), 400, "invalidValue", id="invalidValue"),
        pytest.param(InvalidSyntaxError("x"), 400, "invalidSyntax", id="invalidSyntax"),
        pytest.param(InvalidFilterError("x"), 400, "invalidFilter", id="invalidFilter"),
        pytest.param(InvalidPathError("x"), 400, "invalidPath", id="invalidPath"),
        pytest.param(NoTargetError("x"), 400, "noTarget", id="noTarget"),
        pytest.param(MutabilityError("x"), 400, "mutability", id="mutability"),
        pytest.param(TooManyError("x"), 400, "tooMany", id="tooMany"),
        pytest.param(InvalidVersionError("x"), 400, "invalidVers", id="invalidVers"),
        pytest.param(BadRequestError("x"), 400, None, id="400"),
        pytest.param(UnauthorizedError("x"), 401, None, id="401"),
        pytest.param(ForbiddenError("x"), 403, None, id="403"),
        pytest.param(NotFoundError("x"), 404, None, id="404"),
        pytest.param(UniquenessError("x"), 409, "uniqueness", id="409-uniqueness"),
        pytest.param(PreconditionFailedError("x"), 412, None, id="412"),
        pytest.param(PayloadTooLargeError("x"), 413, None, id="413"),
        pytest.param(TooManyRequestsError("x", retry_after=60), 429, None, id="429"),
        pytest.param(InternalServerError("req-1"), 500, None, id="500"),
        pytest.param(UnsupportedError("x"), 501, None, id="501"),
        pytest.param(ServiceUnavailableError("x", retry_after=30), 503, None, id="503"),
    ],
)
def test_each_error_carries_its_rfc_status_and_scim_type(
    error: ScimError, status: int, scim_type: str | None
) -> None:
    """RFC 7644 §3.12: each error has its HTTP status and, for 400 and 409, its scimType."""
    assert (status, scim_type) == (error.status, error.scim_type)


def test_to_json_is_a_scim_error_message() -> None:
    """The body is an RFC 7644 Error: schemas, status as a string, scimType, detail."""
    assert UniquenessError("userName adele@contoso.example is taken").to_json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "409",
        "scimType": "uniqueness",
        "detail": "userName adele@contoso.example is taken",
    }


def test_to_json_omits_an_absent_scim_type() -> None:
    """A 404 has no scimType, and says so by leaving it out."""
    assert "scimType" not in NotFoundError("no such user").to_json()


def test_unauthorized_carries_the_bearer_challenge() -> None:
    """RFC 6750 §3: a 401 names the scheme the client must use."""
    assert UnauthorizedError("bad token", challenge='Bearer realm="scim", error="invalid_token"').headers == {
        "WWW-Authenticate": 'Bearer realm="scim", error="invalid_token"'
    }


def test_unavailable_carries_retry_after_seconds() -> None:
    """A 503 tells the client when to come back, so Entra escrows instead of quarantining."""
    assert ServiceUnavailableError("SonarQube is down", retry_after=30).headers == {"Retry-After": "30"}


def test_too_many_requests_carries_retry_after_seconds() -> None:
    """A 429 tells the client when it may try again (RFC 6585 §4)."""
    assert TooManyRequestsError("slow down", retry_after=42).headers == {"Retry-After": "42"}


def test_other_errors_need_no_header() -> None:
    """Only the 401 and the 503 add a header to the body."""
    assert InvalidValueError("x").headers == {}


def test_internal_error_reveals_only_the_request_id() -> None:
    """A 500 never shows internals: its detail holds the request id to quote and nothing else."""
    error = InternalServerError("req-42")

    assert "req-42" in error.detail
    assert {"schemas", "status", "detail"} == set(error.to_json())


@pytest.mark.parametrize(
    ("exception", "expected_class"),
    [
        pytest.param(InvalidFilterException(detail="d"), InvalidFilterError, id="invalidFilter"),
        pytest.param(InvalidPathException(detail="d"), InvalidPathError, id="invalidPath"),
        pytest.param(PathNotFoundException(detail="d"), InvalidPathError, id="pathNotFound"),
        pytest.param(NoTargetException(detail="d"), NoTargetError, id="noTarget"),
        pytest.param(MutabilityException(detail="d"), MutabilityError, id="mutability"),
        pytest.param(InvalidValueException(detail="d"), InvalidValueError, id="invalidValue"),
        pytest.param(TooManyException(detail="d"), TooManyError, id="tooMany"),
        pytest.param(InvalidVersionException(detail="d"), InvalidVersionError, id="invalidVers"),
        pytest.param(UniquenessException(detail="d"), UniquenessError, id="uniqueness"),
        pytest.param(UnauthorizedException(detail="d"), UnauthorizedError, id="401"),
        pytest.param(ForbiddenException(detail="d"), ForbiddenError, id="403"),
        pytest.param(NotFoundException(detail="d"), NotFoundError, id="404"),
        pytest.param(PreconditionFailedException(detail="d"), PreconditionFailedError, id="412"),
        pytest.param(PayloadTooLargeException(detail="d"), PayloadTooLargeError, id="413"),
        pytest.param(NotImplementedException(detail="d"), UnsupportedError, id="501"),
    ],
)
def test_scim2_models_exceptions_translate_to_the_matching_error(
    exception: SCIMException, expected_class: type[ScimError]
) -> None:
    """Each scim2-models exception becomes the bridge error with the same status and scimType."""
    translated = from_scim_exception(exception)

    assert (expected_class, exception.status, "d") == (type(translated), translated.status, translated.detail)


def test_an_exception_without_a_bridge_class_keeps_its_status_and_scim_type() -> None:
    """A scimType the bridge has no class for (sensitive) is still rendered faithfully."""
    translated = from_scim_exception(SensitiveException(detail="d"))

    assert (translated.status, translated.scim_type, translated.detail) == (400, "sensitive", "d")


def test_context_prefixes_the_detail() -> None:
    """The caller can say where the failure happened, e.g. which PATCH operation."""
    assert (
        from_scim_exception(NoTargetException(detail="d"), context='Operations[1] (remove "x")').detail
        == 'Operations[1] (remove "x"): d'
    )


def _validation_error(body: dict[str, object]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        UserResource.model_validate(
            body, scim_ctx=Context.RESOURCE_CREATION_REQUEST, scim_policy=ENTRA_POLICY
        )
    return caught.value


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param({"displayName": "x"}, "userName: required attribute is missing", id="required"),
        pytest.param(
            {"userName": "x", "emails": [{"value": 5}]},
            "emails.0.value: value is not a valid string",
            id="sub-attribute",
        ),
        pytest.param(
            {"userName": "x", "active": "maybe"}, "active: value is not a valid boolean", id="boolean"
        ),
        pytest.param(
            {"userName": "x", "name": "Adele"},
            "name: value is not an object (the attribute is complex)",
            id="complex",
        ),
        pytest.param(
            {
                "userName": "x",
                ENTERPRISE_USER_SCHEMA: {"department": 1},
            },
            f"{ENTERPRISE_USER_SCHEMA}:department: value is not a valid string",
            id="extension-attribute",
        ),
    ],
)
def test_validation_errors_name_the_attribute_path_and_the_rule(body: dict[str, object], detail: str) -> None:
    """A 400 detail says which attribute broke which rule, in SCIM notation."""
    translated = from_validation_error(_validation_error(body))

    assert (InvalidValueError, detail) == (type(translated), translated.detail)


def test_several_validation_errors_are_all_reported() -> None:
    """Every broken attribute is named, so the client fixes them in one go."""
    translated = from_validation_error(_validation_error({"userName": 1, "title": 2}))

    assert translated.detail == "userName: value is not a valid string; title: value is not a valid string"


def test_a_structural_error_is_invalid_syntax() -> None:
    """scim2-models tells structure from values: a body that is not an object is invalidSyntax."""
    with pytest.raises(ValidationError) as caught:
        UserResource.model_validate([1], scim_ctx=Context.RESOURCE_CREATION_REQUEST, scim_policy=ENTRA_POLICY)

    assert from_validation_error(caught.value).scim_type == "invalidSyntax"
