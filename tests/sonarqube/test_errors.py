"""How SonarQube's answers map to the client's error tree, and that tokens never leak (aioresponses)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from scim_bridge.sonarqube import (
    AlreadyExists,
    AlreadyMember,
    Forbidden,
    InvalidValue,
    NotFound,
    Refused,
    SonarQubeError,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
    UserRef,
    V1Client,
)
from tests.sonarqube.doubles import TOKEN, FakeClock, endpoint

if TYPE_CHECKING:
    from aioresponses import aioresponses


def v1_error(*messages: str) -> dict[str, Any]:
    return {"errors": [{"msg": message} for message in messages]}


def v2_error(message: str) -> dict[str, Any]:
    return {"message": message}


Case = tuple[int, dict[str, Any] | None, type[SonarQubeError], str | None]

# (status, JSON body or None for an empty/HTML body, expected error, expected `field` for InvalidValue)
ERROR_TABLE: dict[str, Case] = {
    "v1 user missing": (404, v1_error("User 'bob' doesn't exist"), NotFound, None),
    "v2 user missing": (404, v2_error("User 'u-1' not found"), NotFound, None),
    "v1 unknown url": (404, v1_error("Unknown url : api/users/nope"), UnexpectedResponse, None),
    "v2 unknown route": (404, v2_error("Resource not found."), UnexpectedResponse, None),
    "proxy 404 page": (404, None, UnexpectedResponse, None),
    "login taken": (400, v1_error("An active user with login 'bob' already exists"), AlreadyExists, None),
    "group taken": (400, v2_error("Group 'devs' already exists"), AlreadyExists, None),
    "identity taken": (
        400,
        v1_error("A user with provider id 'bob' and identity provider 'saml' already exists"),
        AlreadyExists,
        None,
    ),
    "already member": (400, v2_error("User 'bob' is already a member of group 'devs'"), AlreadyMember, None),
    "default group": (
        400,
        v1_error("Default group 'sonar-users' cannot be used to perform this action"),
        Refused,
        None,
    ),
    "last admin deactivation": (
        400,
        v1_error("User is last administrator, and cannot be deactivated"),
        Refused,
        None,
    ),
    "last admin membership": (400, v2_error("The last administrator user cannot be removed"), Refused, None),
    "last admin group": (400, v1_error("The last system admin group cannot be deleted"), Refused, None),
    "self deactivation": (400, v2_error("Self-deactivation is not possible"), Refused, None),
    "10.x non-local update": (400, v1_error("It is not allowed to update name for this user"), Refused, None),
    "9.9 non-local update": (400, v1_error("Email cannot be updated for a non-local user"), Refused, None),
    "managed instance": (
        400,
        v1_error("Operation not allowed when the instance is externally managed."),
        Refused,
        None,
    ),
    "anonymise active user": (400, v1_error("User 'bob' is not deactivated"), Refused, None),
    "framework length": (
        400,
        v1_error("'login' length (1) is shorter than the minimum authorized (2)"),
        InvalidValue,
        "login",
    ),
    "missing parameter": (400, v1_error("The 'name' parameter is missing"), InvalidValue, "name"),
    "login format": (
        400,
        v1_error("Login should contain only letters, numbers, and .-_@"),
        InvalidValue,
        "login",
    ),
    "login first character": (400, v1_error("Login should not start with .-_@"), InvalidValue, "login"),
    "email format": (400, v1_error("Email 'x@' is not valid"), InvalidValue, "email"),
    "name empty": (400, v1_error("Name can't be empty"), InvalidValue, "name"),
    "group name empty": (400, v1_error("Group name cannot be empty"), InvalidValue, "name"),
    "anyone group": (400, v2_error("Anyone group cannot be used"), InvalidValue, "name"),
    "possible values": (
        400,
        v1_error("Value of parameter 'newExternalProvider' (saml) must be one of: [github] or [LDAP]"),
        InvalidValue,
        "newExternalProvider",
    ),
    "v2 provider values": (
        400,
        v2_error("Value of 'externalProvider' (saml) must be one of: [] or [LDAP, LDAP_{serverKey}]"),
        InvalidValue,
        "externalProvider",
    ),
    "v2 bean validation": (
        400,
        v2_error("Value x@ for field email was rejected. Error: must be a well-formed email address."),
        InvalidValue,
        "email",
    ),
    "several messages": (400, v1_error("Name can't be empty", "Login can't be empty"), InvalidValue, "name"),
    "unknown 400": (400, v1_error("Something new went wrong"), InvalidValue, None),
    "non-JSON 400": (400, None, UnexpectedResponse, None),
    "401 empty body": (401, None, Unauthorized, None),
    "403": (403, v1_error("Insufficient privileges"), Forbidden, None),
    "v2 403": (403, v2_error("Access denied."), Forbidden, None),
    "405": (405, v1_error("HTTP method POST is required"), UnexpectedResponse, None),
    "415": (415, v2_error("Unsupported media type."), UnexpectedResponse, None),
    "500": (
        500,
        v1_error("An error has occurred. Please contact your administrator"),
        UnexpectedResponse,
        None,
    ),
}


@pytest.mark.parametrize("case", ERROR_TABLE.values(), ids=ERROR_TABLE.keys())
async def test_answer_maps_to_error(mocked: aioresponses, v1: V1Client, case: Case) -> None:
    """Each SonarQube error answer becomes the error class (and `field`) of the table, never another."""
    status, body, error, field = case
    answer: dict[str, Any] = (
        {"payload": body} if body else {"body": "<html>oops</html>", "content_type": "text/html"}
    )
    mocked.post(endpoint("api/users/deactivate"), status=status, **answer)

    with pytest.raises(SonarQubeError) as caught:
        await v1.deactivate_user(UserRef("bob"))
    assert type(caught.value) is error
    assert caught.value.status == status
    assert caught.value.endpoint == "api/users/deactivate"
    if isinstance(caught.value, InvalidValue):
        assert caught.value.field == field
    if body and status == 400:
        assert all(message["msg"] in caught.value.message for message in body.get("errors", []))


async def test_several_messages_are_all_kept(mocked: aioresponses, v1: V1Client) -> None:
    """A v1 answer with several messages keeps every one of them in the error message."""
    mocked.post(
        endpoint("api/users/create"),
        status=400,
        payload=v1_error("Name can't be empty", "Login can't be empty"),
    )

    with pytest.raises(InvalidValue, match="Name can't be empty; Login can't be empty"):
        await v1.create_user("bob", "", None)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"body": "<html>login</html>", "content_type": "text/html"}, id="html"),
        pytest.param({"body": "{not json", "content_type": "application/json"}, id="malformed-json"),
        pytest.param({"payload": {"users": []}}, id="missing-paging"),
        pytest.param({"body": "[]", "content_type": "application/json"}, id="not-an-object"),
    ],
)
async def test_unusable_success_answer_is_unexpected(
    mocked: aioresponses, v1: V1Client, answer: dict[str, Any]
) -> None:
    """A 200 whose body is not the JSON this client expects is UnexpectedResponse, not a crash."""
    mocked.get(endpoint("api/users/search"), **answer)

    with pytest.raises(UnexpectedResponse):
        await v1.find_user("bob")


async def test_redirect_is_not_followed(mocked: aioresponses, v1: V1Client) -> None:
    """A redirect (a wrong sonar_url) is UnexpectedResponse; credentials are not sent elsewhere."""
    mocked.get(endpoint("api/users/current"), status=302, headers={"Location": "https://elsewhere.test/"})

    with pytest.raises(UnexpectedResponse, match="sonar_url"):
        await v1.current_user()


async def test_tls_failure_is_unavailable_at_once(
    mocked: aioresponses, v1: V1Client, clock: FakeClock
) -> None:
    """A certificate problem is not retried: it cannot go away by waiting."""
    tls_error = aiohttp.ClientSSLError(_connection_key(), OSError("certificate verify failed"))
    mocked.get(endpoint("api/users/current"), exception=tls_error)

    with pytest.raises(Unavailable, match="TLS"):
        await v1.current_user()
    assert clock.sleeps == []


def _connection_key() -> Any:
    from aiohttp.client_reqrep import ConnectionKey  # noqa: PLC0415 - internal type, only needed here

    return ConnectionKey("sonar.test", 443, True, True, None, None, None, None)  # noqa: FBT003


FAILURES = {
    "unauthorized": {"status": 401},
    "forbidden": {"status": 403, "payload": v1_error("Insufficient privileges")},
    "not found": {"status": 404, "payload": v1_error("User 'bob' doesn't exist")},
    "invalid": {"status": 400, "payload": v1_error("Login should not start with .-_@")},
    "unexpected": {"status": 500, "payload": v1_error("An error has occurred")},
    "unavailable": {"status": 503, "repeat": True},
    "connection lost": {"exception": aiohttp.ServerDisconnectedError(), "repeat": True},
}


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
async def test_token_never_appears_in_errors_or_logs(
    mocked: aioresponses, v1: V1Client, failure: dict[str, Any]
) -> None:
    """Neither the token nor its Basic encoding shows in an error's text, repr, cause chain or the logs."""
    mocked.post(endpoint("api/users/deactivate"), **failure)

    with capture_logs() as events, pytest.raises(SonarQubeError) as caught:
        await v1.deactivate_user(UserRef("bob"))
    texts = [repr(events), repr(v1)]
    error: BaseException | None = caught.value
    while error is not None:
        texts += [str(error), repr(error)]
        error = error.__cause__
    for text in texts:
        assert TOKEN not in text
        assert "Basic " not in text


async def test_v1_has_no_ids(v1: V1Client) -> None:
    """get_user/get_group by id on v1 say that ids need the v2 API."""
    with pytest.raises(SonarQubeError, match="v2 API"):
        await v1.get_user("some-uuid")
    with pytest.raises(SonarQubeError, match="v2 API"):
        await v1.get_group("some-uuid")


# -- connection: version detection -----------------------------------------------------------------------
