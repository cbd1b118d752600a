"""Abuse over HTTP: refused tokens limited per client address (429) without SonarQube calls, and a failing
state store answered as a 503 that tells nothing of the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import pytest
from structlog.testing import capture_logs

from scim_bridge.store import StoreConflict, StoreError, StoreNotFound
from scim_bridge.web.auth import FAILURE_LIMIT, FAILURE_WINDOW_SECONDS, FailureLimiter
from scim_bridge.web.middleware import STORE_RETRY_AFTER
from tests.support import ADMIN_TOKEN, ERROR_SCHEMA, SCIM_JSON, USER_SCHEMA

if TYPE_CHECKING:
    from tests.support import Reply
    from tests.web.conftest import Bridge, BridgeFactory

CURRENT_USER = "/api/users/current"
TRUSTED = ["127.0.0.1/32", "::1/128"]  # the test client's own address: it plays the ingress


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def current_user_calls(bridge: Bridge) -> int:
    return sum(entry["path"] == CURRENT_USER for entry in await bridge.sonar.control.journal())


async def with_bad_tokens(bridge: Bridge, count: int, **kwargs: Any) -> list[int]:
    """`count` requests, each with another token SonarQube does not know; their statuses."""
    return [
        (await bridge.get("/Users", token=f"bad-token-{index}", **kwargs)).status for index in range(count)
    ]


def assert_rate_limited(reply: Reply) -> None:
    """A SCIM 429 with a Retry-After within the window and a detail naming the limit."""
    assert reply.status == 429, reply
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)
    assert reply.body["schemas"] == [ERROR_SCHEMA]
    assert reply.body["status"] == "429"
    assert 0 < int(reply.headers["Retry-After"]) <= FAILURE_WINDOW_SECONDS
    assert f"at most {FAILURE_LIMIT}" in reply.body["detail"]


# -- refused tokens per client address -------------------------------------------------------------------


async def test_an_address_refused_too_often_gets_429_without_sonarqube_calls(bridge: Bridge) -> None:
    """After FAILURE_LIMIT refused tokens from one address, its requests with unknown or refused tokens are
    429 with Retry-After, and SonarQube is not asked about them any more."""
    assert await with_bad_tokens(bridge, FAILURE_LIMIT) == [401] * FAILURE_LIMIT
    await bridge.sonar.control.clear_journal()

    fresh = await bridge.get("/Users", token="yet-another-token")
    repeated = await bridge.get("/Users", token="bad-token-0")

    assert_rate_limited(fresh)
    assert_rate_limited(repeated)
    assert await current_user_calls(bridge) == 0


async def test_a_token_known_to_be_good_is_never_limited(bridge: Bridge) -> None:
    """Successful requests are never limited: the administrator's token, already checked, still works from
    an address that is over the limit of refused tokens (and costs no SonarQube call)."""
    assert (await bridge.get("/Users")).status == 200
    await with_bad_tokens(bridge, FAILURE_LIMIT)
    await bridge.sonar.control.clear_journal()

    assert (await bridge.get("/Users")).status == 200
    assert (await bridge.get("/Users", token="bad-token-0")).status == 429
    assert await current_user_calls(bridge) == 0


async def test_the_limit_starts_with_one_warning(bridge: Bridge) -> None:
    """Crossing the limit is logged once, as `scim.auth_rate_limited` with the address, not each 429."""
    with capture_logs() as logs:
        await with_bad_tokens(bridge, FAILURE_LIMIT + 3)

    limited = [event for event in logs if event["event"] == "scim.auth_rate_limited"]
    assert len(limited) == 1, logs
    assert limited[0]["client"] == "127.0.0.1"
    assert limited[0]["failures"] == FAILURE_LIMIT


async def test_requests_without_a_token_do_not_count(bridge: Bridge) -> None:
    """A missing or malformed Authorization header costs nothing and is no guess: it does not count."""
    for _ in range(FAILURE_LIMIT + 5):
        assert (await bridge.get("/Users", token=None)).status == 401

    assert (await bridge.get("/Users", token="bad-token")).status == 401


async def test_non_administrators_are_refused_with_403_not_counted(bridge: Bridge) -> None:
    """A valid token of a non-administrator is a 403, cached, and not a failed authentication."""
    assert (await bridge.sonar.create_user("bob")).status == 200
    token = await bridge.sonar.user_token("bob")

    statuses = [(await bridge.get("/Users", token=token)).status for _ in range(FAILURE_LIMIT + 2)]

    assert statuses == [403] * (FAILURE_LIMIT + 2)
    assert (await bridge.get("/Users", token="bad-token")).status == 401


async def test_forwarded_addresses_are_not_believed_from_an_untrusted_peer(bridge: Bridge) -> None:
    """Without trusted_proxies, a client cannot escape the limit by writing another X-Forwarded-For each
    time: the peer's own address counts."""
    for index in range(FAILURE_LIMIT):
        headers = {"X-Forwarded-For": f"203.0.113.{index}"}
        assert (await bridge.get("/Users", token=f"bad-{index}", headers=headers)).status == 401

    reply = await bridge.get("/Users", token="bad", headers={"X-Forwarded-For": "198.51.100.1"})

    assert_rate_limited(reply)


async def test_behind_a_trusted_proxy_each_client_address_counts_apart(bridge_factory: BridgeFactory) -> None:
    """Behind a proxy in trusted_proxies, the client address is the one it forwarded: one client over the
    limit does not lock out the others behind the same proxy."""
    bridge = await bridge_factory(trusted_proxies=TRUSTED)
    # The chain's left part is the client's own say; the proxy appended the address it saw.
    attacker = {"X-Forwarded-For": "10.9.9.9, 203.0.113.7"}
    for index in range(FAILURE_LIMIT):
        assert (await bridge.get("/Users", token=f"bad-{index}", headers=attacker)).status == 401

    forged_left = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    assert_rate_limited(await bridge.get("/Users", token="bad", headers=forged_left))
    other = {"X-Forwarded-For": "203.0.113.8"}
    assert (await bridge.get("/Users", token="bad", headers=other)).status == 401
    assert (await bridge.get("/Users", token=None, headers=other)).status == 401


async def test_static_tokens_are_limited_the_same_way(bridge_factory: BridgeFactory) -> None:
    """With static auth, unknown tokens count the same; a configured SCIM token is never limited."""
    bridge = await bridge_factory(auth="static", scim_tokens=["scim-token"], sonar_token=ADMIN_TOKEN)

    assert await with_bad_tokens(bridge, FAILURE_LIMIT) == [401] * FAILURE_LIMIT
    assert_rate_limited(await bridge.get("/Users", token="another-guess"))
    assert (await bridge.get("/Users", token="scim-token")).status == 200


# -- the limiter, by the clock ---------------------------------------------------------------------------


def test_the_limit_holds_until_the_oldest_failure_leaves_the_window() -> None:
    """After `limit` failures within the window the address waits, told how long, until the oldest failure
    is older than the window; then it may try again."""
    clock = FakeClock()
    limiter = FailureLimiter(limit=3, window=60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("192.0.2.1") is None
        limiter.record("192.0.2.1")
        clock.now += 10

    assert limiter.retry_after("192.0.2.1") == 30  # the first failure, at 1000, leaves the window at 1060
    clock.now += 29.5
    assert limiter.retry_after("192.0.2.1") == 1
    clock.now += 0.5
    assert limiter.retry_after("192.0.2.1") is None


def test_failures_spread_over_more_than_the_window_never_limit() -> None:
    """Failures count within the window only: a slow trickle is never refused."""
    clock = FakeClock()
    limiter = FailureLimiter(limit=3, window=60, clock=clock)

    for _ in range(20):
        limiter.check("192.0.2.1")
        limiter.record("192.0.2.1")
        clock.now += 30


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        pytest.param("192.0.2.1", "192.0.2.2", False, id="ipv4-addresses-apart"),
        pytest.param("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", True, id="ipv6-same-64"),
        pytest.param("2001:db8:1:2::1", "2001:db8:1:3::1", False, id="ipv6-other-64"),
        pytest.param("::ffff:192.0.2.1", "192.0.2.1", True, id="ipv4-mapped-is-ipv4"),
    ],
)
def test_addresses_count_apart_but_ipv6_by_its_64(first: str, second: str, shared: bool) -> None:
    """IPv4 addresses count one by one; an IPv6 client, which commonly holds a whole /64, by its /64."""
    limiter = FailureLimiter(limit=2, window=60, clock=FakeClock())
    limiter.record(first)
    limiter.record(first)

    assert (limiter.retry_after(second) is not None) is shared


def test_crossing_the_limit_is_logged_once_even_when_failures_race() -> None:
    """Requests that passed the check together and then fail together log the limit once, not each."""
    limiter = FailureLimiter(limit=2, window=60, clock=FakeClock())
    with capture_logs() as logs:
        for _ in range(5):
            limiter.record("192.0.2.1")

    assert [event["event"] for event in logs] == ["scim.auth_rate_limited"]
    assert logs[0]["retry_after"] == 60


def test_an_unknown_address_is_never_limited() -> None:
    """A peer without an IP address (a Unix socket) is not limited: it would share one count with all."""
    limiter = FailureLimiter(limit=1, window=60, clock=FakeClock())
    limiter.record(None)
    limiter.record(None)

    assert limiter.retry_after(None) is None


def test_the_addresses_remembered_are_bounded() -> None:
    """At most `size` addresses are remembered; the one that failed least recently is forgotten first."""
    limiter = FailureLimiter(limit=1, window=60, size=2, clock=FakeClock())
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        limiter.record(address)

    assert limiter.retry_after("192.0.2.1") is None
    assert limiter.retry_after("192.0.2.2") is not None
    assert limiter.retry_after("192.0.2.3") is not None


# -- a state store that fails ----------------------------------------------------------------------------

SECRET_PATH = "/var/lib/scim-bridge/secret-state.db"


@dataclass(frozen=True)
class StoreFailure:
    """A request, the store method that fails under it, and how."""

    method: str
    path: str
    failing: str
    error: StoreError
    body: Any = None


NEW_USER: Final = {"schemas": [USER_SCHEMA], "userName": "bob"}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            StoreFailure(
                "GET", "/Users/{user}", "get_user", StoreError(f"database is locked: {SECRET_PATH}")
            ),
            id="read-busy",
        ),
        pytest.param(
            StoreFailure("GET", "/Users", "list_users", StoreError(f"disk I/O error reading {SECRET_PATH}")),
            id="list-failing",
        ),
        pytest.param(
            StoreFailure(
                "POST", "/Users", "insert_user", StoreError(f"database is locked: {SECRET_PATH}"), NEW_USER
            ),
            id="write-busy",
        ),
        pytest.param(
            StoreFailure("GET", "/Users/{user}", "get_user", StoreConflict("version", f"at {SECRET_PATH}")),
            id="escaped-conflict",
        ),
        pytest.param(
            StoreFailure("GET", "/Users", "list_users", StoreNotFound("User", (SECRET_PATH,))),
            id="escaped-not-found",
        ),
    ],
)
async def test_a_store_error_is_a_503_that_names_nothing_of_the_store(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch, case: StoreFailure
) -> None:
    """A StoreError escaping a handler is a SCIM 503 with Retry-After saying to come back later, never the
    store's message (it may name files) nor a class name; it is logged with the request id."""
    created = await bridge.post("/Users", {"schemas": [USER_SCHEMA], "userName": "alice"})
    assert created.status == 201, created

    async def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise case.error

    monkeypatch.setattr(bridge.store, case.failing, fail)
    with capture_logs() as logs:
        reply = await bridge.request(
            case.method,
            case.path.format(user=created.body["id"]),
            json=case.body,
            headers={"X-Request-Id": "req-store"},
        )

    assert reply.status == 503, reply
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)
    assert reply.headers["Retry-After"] == str(STORE_RETRY_AFTER)
    assert reply.body["schemas"] == [ERROR_SCHEMA]
    assert reply.body["detail"] == (
        "the bridge's state store is busy or unavailable; repeating this request is safe and "
        "completes whatever it started"
    )
    for leak in (SECRET_PATH, type(case.error).__name__, "Traceback", "sqlite"):
        assert leak not in repr(reply.body)
    (logged,) = [event for event in logs if event["event"] == "scim.store_unavailable"]
    assert logged["request_id"] == "req-store"
    assert logged["error"] == type(case.error).__name__
