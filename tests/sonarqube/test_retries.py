"""Retries, back-off, `Retry-After`, deadlines and replay safety of the SonarQube transport (aioresponses)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import AnyHttpUrl
from structlog.testing import capture_logs

from scim_bridge.config import SonarQubeSettings
from scim_bridge.sonarqube import (
    AlreadyExists,
    Capabilities,
    GroupRef,
    NotFound,
    SonarQubeError,
    SonarVersion,
    Unavailable,
    UserRef,
    V1Client,
    V2Client,
    deadline,
)
from scim_bridge.sonarqube import transport as transport_module
from scim_bridge.sonarqube.transport import Transport
from tests.sonarqube.doubles import SONAR_URL, TOKEN, FakeClock, endpoint, requests_to

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aiohttp.test_utils import TestServer
    from aioresponses import aioresponses

CALLER_OK: dict[str, Any] = {
    "payload": {"isLoggedIn": True, "login": "admin", "name": "Admin", "permissions": {"global": ["admin"]}}
}

# One failed attempt, described as aioresponses keyword arguments, and whether its outcome is unknown.
RETRYABLE = {
    "server disconnected": ({"exception": aiohttp.ServerDisconnectedError()}, True),
    "connection reset": ({"exception": aiohttp.ClientOSError(104, "Connection reset by peer")}, True),
    "read timeout": ({"exception": aiohttp.SocketTimeoutError()}, True),
    "plain timeout": ({"exception": TimeoutError()}, True),
    "truncated answer": ({"exception": aiohttp.ClientPayloadError("truncated")}, True),
    "connect timeout": ({"exception": aiohttp.ConnectionTimeoutError()}, False),
    "429": ({"status": 429}, False),
    "502": ({"status": 502, "body": "<html>Bad Gateway</html>", "content_type": "text/html"}, True),
    "503": ({"status": 503}, False),
    "504": ({"status": 504}, True),
}


@pytest.mark.parametrize("failure", RETRYABLE.values(), ids=RETRYABLE.keys())
async def test_retryable_failure_is_retried(
    mocked: aioresponses, v1: V1Client, clock: FakeClock, failure: tuple[dict[str, Any], bool]
) -> None:
    """A transient failure is retried after a back-off sleep and the call then succeeds."""
    mocked.get(endpoint("api/users/current"), **failure[0])
    mocked.get(endpoint("api/users/current"), **CALLER_OK)

    assert (await v1.current_user()).login == "admin"
    assert len(requests_to(mocked, "GET", "api/users/current")) == 2
    assert len(clock.sleeps) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 500])
async def test_final_answers_are_not_retried(
    mocked: aioresponses, v1: V1Client, clock: FakeClock, status: int
) -> None:
    """Client errors and 500 are answered at once: one request, no sleep."""
    mocked.get(endpoint("api/users/current"), status=status, payload={"errors": [{"msg": "no"}]})

    with pytest.raises(SonarQubeError):  # which subclass is test_errors.py's business
        await v1.current_user()
    assert len(requests_to(mocked, "GET", "api/users/current")) == 1
    assert clock.sleeps == []


async def test_retry_after_is_honoured(mocked: aioresponses, v1: V1Client, clock: FakeClock) -> None:
    """A 429 with `Retry-After: 3` waits at least 3 seconds before the next attempt."""
    mocked.get(endpoint("api/users/current"), status=429, headers={"Retry-After": "3"})
    mocked.get(endpoint("api/users/current"), **CALLER_OK)

    assert (await v1.current_user()).login == "admin"
    assert clock.sleeps[0] >= 3


async def test_retry_after_beyond_deadline_gives_up_at_once(
    mocked: aioresponses, v1: V1Client, clock: FakeClock
) -> None:
    """A `Retry-After` longer than the time left ends the call with Unavailable carrying that delay."""
    mocked.get(endpoint("api/users/current"), status=503, headers={"Retry-After": "120"}, repeat=True)

    with pytest.raises(Unavailable) as caught:
        await v1.current_user()
    assert caught.value.retry_after == 120
    assert caught.value.status == 503
    assert len(requests_to(mocked, "GET", "api/users/current")) == 1
    assert clock.sleeps == []


async def test_attempts_are_bounded(mocked: aioresponses, v1: V1Client, clock: FakeClock) -> None:
    """A server that keeps failing is given up on after MAX_ATTEMPTS attempts with Unavailable."""
    mocked.get(endpoint("api/users/current"), status=503, repeat=True)

    with pytest.raises(Unavailable, match="503"):
        await v1.current_user()
    assert len(requests_to(mocked, "GET", "api/users/current")) == transport_module.MAX_ATTEMPTS
    assert len(clock.sleeps) == transport_module.MAX_ATTEMPTS - 1


async def test_deadline_bounds_all_retries(
    mocked: aioresponses, v1: V1Client, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every retry of a call chain fits inside the active deadline: the back-off never sleeps past it."""
    monkeypatch.setattr(transport_module, "MAX_ATTEMPTS", 1000)
    mocked.get(endpoint("api/users/current"), exception=aiohttp.ServerDisconnectedError(), repeat=True)
    started = clock.now

    with deadline(2.0, clock=clock), pytest.raises(Unavailable, match="answer lost"):
        await v1.current_user()
    assert clock.now - started < 2.0
    assert len(clock.sleeps) > 1


async def test_default_deadline_applies_without_an_active_one(
    mocked: aioresponses, v1: V1Client, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside any deadline block, each call gets `sonar_deadline` (10 s here)."""
    monkeypatch.setattr(transport_module, "MAX_ATTEMPTS", 1000)
    mocked.get(endpoint("api/users/current"), status=503, repeat=True)
    started = clock.now

    with pytest.raises(Unavailable):
        await v1.current_user()
    assert 5.0 < clock.now - started < 10.0


async def test_exhausted_deadline_sends_nothing(mocked: aioresponses, v1: V1Client, clock: FakeClock) -> None:
    """A call made after the deadline has passed fails with Unavailable without touching SonarQube."""
    with deadline(1.0, clock=clock):
        clock.now += 5
        with pytest.raises(Unavailable, match="no time left"):
            await v1.current_user()
    assert mocked.requests == {}


async def test_one_deadline_spans_several_calls(mocked: aioresponses, v1: V1Client, clock: FakeClock) -> None:
    """Time slept by a first call is no longer available to the next call of the same deadline."""
    mocked.get(endpoint("api/users/current"), status=429, headers={"Retry-After": "4"})
    mocked.get(endpoint("api/users/current"), **CALLER_OK)
    mocked.get(endpoint("api/users/current"), status=429, headers={"Retry-After": "4"})

    with deadline(6.0, clock=clock):
        assert (await v1.current_user()).login == "admin"
        with pytest.raises(Unavailable):
            await v1.current_user()  # 4 s already spent: another 4 s wait no longer fits


@pytest.mark.parametrize(("budget", "sock_read"), [(10.0, 2.0), (0.5, 0.5)])
async def test_attempt_timeout_is_the_smaller_of_read_timeout_and_time_left(
    mocked: aioresponses, v1: V1Client, clock: FakeClock, budget: float, sock_read: float
) -> None:
    """Each attempt waits for an answer at most min(read timeout (2 s here), time left in the deadline)."""
    mocked.get(endpoint("api/users/current"), **CALLER_OK)

    with deadline(budget, clock=clock):
        await v1.current_user()
    timeout = requests_to(mocked, "GET", "api/users/current")[0].kwargs["timeout"]
    assert timeout.sock_read == pytest.approx(sock_read)
    assert timeout.total == pytest.approx(budget)


def test_inner_deadline_cannot_extend_the_outer_one(clock: FakeClock) -> None:
    """A nested deadline keeps the shorter budget of the two."""
    with deadline(1.0, clock=clock) as outer, deadline(30.0, clock=clock) as inner:
        assert inner is outer
    with deadline(30.0, clock=clock), deadline(1.0, clock=clock) as inner:
        assert inner.remaining() == pytest.approx(1.0)


async def test_requests_carry_basic_token_auth_under_the_path_prefix(
    mocked: aioresponses, v1: V1Client
) -> None:
    """Calls go to <base url with prefix>/api/… with `Authorization: Basic base64(token:)`."""
    mocked.get(endpoint("api/users/current"), **CALLER_OK)

    await v1.current_user()
    (call,) = requests_to(mocked, "GET", "api/users/current")
    expected = "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()
    assert call.kwargs["headers"]["Authorization"] == expected
    assert str(next(iter(mocked.requests))[1]).startswith(f"{SONAR_URL}/api/users/current")


async def test_ids_are_escaped_in_paths(mocked: aioresponses, v2: V2Client) -> None:
    """An opaque id with reserved characters stays one path segment."""
    mocked.get(endpoint("api/v2/users-management/users/a%2Fb%3Fc"), status=404, payload={"message": "nope"})

    assert await v2.get_user("a/b?c") is None


async def test_retries_are_logged_without_the_token(mocked: aioresponses, v1: V1Client) -> None:
    """Each retry logs `sonarqube.retry` with endpoint, attempt and reason, and never the token."""
    mocked.get(endpoint("api/users/current"), status=503)
    mocked.get(endpoint("api/users/current"), **CALLER_OK)

    with capture_logs() as events:
        await v1.current_user()
    (retry,) = [event for event in events if event["event"] == "sonarqube.retry"]
    assert retry["endpoint"] == "api/users/current"
    assert retry["attempt"] == 1
    assert retry["reason"] == "HTTP 503"
    assert TOKEN not in repr(events)


# -- replay safety of non-idempotent calls ---------------------------------------------------------------

LOST = {"exception": aiohttp.ServerDisconnectedError()}
ALICE = {"login": "alice", "name": "Alice", "active": True, "local": False, "externalProvider": "sonarqube"}


def search_answer(*users: dict[str, Any]) -> dict[str, Any]:
    return {
        "payload": {"paging": {"pageIndex": 1, "pageSize": 500, "total": len(users)}, "users": list(users)}
    }


async def test_replayed_create_that_finds_the_user_succeeds(mocked: aioresponses, v1: V1Client) -> None:
    """A create whose answer was lost and whose retry says "already exists" returns the user it created."""
    mocked.post(endpoint("api/users/create"), **LOST)
    mocked.post(
        endpoint("api/users/create"),
        status=400,
        payload={"errors": [{"msg": "An active user with login 'alice' already exists"}]},
    )
    mocked.get(endpoint("api/users/search"), **search_answer(ALICE))

    user = await v1.create_user("alice", "Alice", None)
    assert (user.login, user.active) == ("alice", True)


@pytest.mark.parametrize(
    "found",
    [
        pytest.param(None, id="missing"),
        pytest.param({**ALICE, "name": "Someone Else"}, id="other-name"),
    ],
)
async def test_replayed_create_that_finds_another_user_fails(
    mocked: aioresponses, v1: V1Client, found: dict[str, Any] | None
) -> None:
    """After a lost answer, "already exists" stands when the user found is not the one asked for."""
    mocked.post(endpoint("api/users/create"), **LOST)
    mocked.post(
        endpoint("api/users/create"),
        status=400,
        payload={"errors": [{"msg": "An active user with login 'alice' already exists"}]},
    )
    users = [found] if found else []
    mocked.get(endpoint("api/users/search"), **search_answer(*users))
    mocked.get(endpoint("api/users/search"), **search_answer())  # deactivated users

    with pytest.raises(AlreadyExists):
        await v1.create_user("alice", "Alice", None)


@pytest.mark.parametrize(
    "first",
    [pytest.param(None, id="first-attempt"), pytest.param({"status": 503}, id="after-a-503")],
)
async def test_already_exists_without_a_lost_attempt_is_real(
    mocked: aioresponses, v1: V1Client, first: dict[str, Any] | None
) -> None:
    """ "already exists" is a real conflict when no earlier attempt can have been applied (503 is not)."""
    if first is not None:
        mocked.post(endpoint("api/users/create"), **first)
    mocked.post(
        endpoint("api/users/create"),
        status=400,
        payload={"errors": [{"msg": "An active user with login 'alice' already exists"}]},
    )

    with pytest.raises(AlreadyExists) as caught:
        await v1.create_user("alice", "Alice", None)
    assert caught.value.replayed is False
    assert requests_to(mocked, "GET", "api/users/search") == []


async def test_replayed_group_create_that_finds_the_group_succeeds(
    mocked: aioresponses, v2: V2Client
) -> None:
    """A group create whose answer timed out and whose retry says "already exists" returns the group."""
    mocked.post(endpoint("api/v2/authorizations/groups"), exception=aiohttp.SocketTimeoutError())
    mocked.post(
        endpoint("api/v2/authorizations/groups"),
        status=400,
        payload={"message": "Group 'devs' already exists"},
    )
    mocked.get(
        endpoint("api/v2/authorizations/groups"),
        payload={
            "groups": [{"id": "g1", "name": "devs", "default": False}],
            "page": {"pageIndex": 1, "pageSize": 500, "total": 1},
        },
    )

    group = await v2.create_group("devs")
    assert (group.id, group.name) == ("g1", "devs")


async def test_already_a_member_is_success(mocked: aioresponses, v1: V1Client) -> None:
    """Adding a present member succeeds, replay or not (10.4+ answers 400 "already a member")."""
    mocked.post(
        endpoint("api/user_groups/add_user"),
        status=400,
        payload={"errors": [{"msg": "User 'alice' is already a member of group 'devs'"}]},
    )

    await v1.add_member(GroupRef("devs"), UserRef("alice"))
    assert len(requests_to(mocked, "POST", "api/user_groups/add_user")) == 1


async def test_replayed_delete_that_finds_nothing_succeeds(mocked: aioresponses, v1: V1Client) -> None:
    """A group delete whose answer was lost and whose retry says "not found" has done its job."""
    mocked.post(endpoint("api/user_groups/delete"), status=504)
    mocked.post(
        endpoint("api/user_groups/delete"),
        status=404,
        payload={"errors": [{"msg": "No group with name 'devs'"}]},
    )

    await v1.delete_group(GroupRef("devs"))
    assert len(requests_to(mocked, "POST", "api/user_groups/delete")) == 2


async def test_first_attempt_not_found_on_delete_is_real(mocked: aioresponses, v1: V1Client) -> None:
    """Deleting a group that never existed is NotFound."""
    mocked.post(
        endpoint("api/user_groups/delete"),
        status=404,
        payload={"errors": [{"msg": "No group with name 'devs'"}]},
    )

    with pytest.raises(NotFound):
        await v1.delete_group(GroupRef("devs"))


async def test_replayed_v2_membership_delete_that_finds_nothing_succeeds(
    mocked: aioresponses, v2: V2Client
) -> None:
    """v2 remove_member reads the membership id, and a lost-then-404 DELETE of it is success."""
    mocked.get(
        endpoint("api/v2/authorizations/group-memberships"),
        payload={
            "groupMemberships": [{"id": "m1", "groupId": "g1", "userId": "u1"}],
            "page": {"pageIndex": 1, "pageSize": 500, "total": 1},
        },
    )
    mocked.delete(endpoint("api/v2/authorizations/group-memberships/m1"), **LOST)
    mocked.delete(
        endpoint("api/v2/authorizations/group-memberships/m1"),
        status=404,
        payload={"message": "Group membership 'm1' not found"},
    )

    await v2.remove_member(GroupRef("devs", "g1"), UserRef("alice", "u1"))
    assert len(requests_to(mocked, "DELETE", "api/v2/authorizations/group-memberships/m1")) == 2


async def test_connection_is_closed_only_when_owned(settings: Any, clock: FakeClock) -> None:
    """A transport closes the session it created, and leaves an injected session open."""
    async with aiohttp.ClientSession() as session:
        injected = Transport.from_settings(settings, session=session, sleep=clock.sleep, clock=clock)
        await injected.close()
        assert not session.closed
    own = Transport.from_settings(settings, sleep=clock.sleep, clock=clock)
    await own.close()
    assert own._session.closed


async def test_aiohttp_silent_resend_counts_as_replay(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]], clock: FakeClock
) -> None:
    """aiohttp re-sends a DELETE by itself after a dropped connection: its "not found" is our own echo."""
    calls = []

    async def delete_group(request: web.Request) -> web.StreamResponse:
        calls.append(request.match_info["id"])
        if len(calls) == 1:  # deleted, then the connection drops before the answer
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=204)
        return web.json_response({"message": "Group 'g1' not found"}, status=404)

    app = web.Application()
    app.router.add_delete("/api/v2/authorizations/groups/{id}", delete_group)
    server = await aiohttp_server(app)
    settings = SonarQubeSettings(sonar_url=AnyHttpUrl(str(server.make_url("/"))))
    transport = Transport.from_settings(settings, sleep=clock.sleep, clock=clock)
    client = V2Client(transport, TOKEN, Capabilities.detect(SonarVersion.parse("2025.6.0.115417")))

    await client.delete_group(GroupRef("devs", "g1"))
    await transport.close()
    assert calls == ["g1", "g1"]
    assert clock.sleeps == []  # the re-send was aiohttp's, not a retry of ours


async def test_unreachable_sonarqube_fails_fast_for_a_moment(
    mocked: aioresponses, v1: V1Client, clock: FakeClock
) -> None:
    """Once no connection could be opened, calls fail at once (503-worthy, with a retry hint) for a few
    seconds instead of each spending its deadline; afterwards SonarQube is tried again."""
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("sonar.test", 80, False, True, None, None, None),  # noqa: FBT003 - aiohttp's positional key
        OSError(111, "Connection refused"),
    )
    mocked.get(endpoint("api/users/current"), exception=refused, repeat=True)
    with pytest.raises(Unavailable):
        await v1.current_user()
    sent = len(requests_to(mocked, "GET", "api/users/current"))

    with pytest.raises(Unavailable) as fast:
        await v1.current_user()
    assert len(requests_to(mocked, "GET", "api/users/current")) == sent  # nothing sent
    assert fast.value.retry_after == pytest.approx(transport_module.KNOWN_DOWN_SECONDS, abs=1)

    clock.now += transport_module.KNOWN_DOWN_SECONDS
    mocked.clear()
    mocked.get(endpoint("api/users/current"), **CALLER_OK)
    assert (await v1.current_user()).login == "admin"
