"""Bearer authentication: SonarQube admin tokens (default) and static SCIM tokens, over HTTP."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

import pytest
from structlog.testing import capture_logs

from scim_bridge.scim.errors import ServiceUnavailableError, UnauthorizedError
from scim_bridge.sonarqube import Caller, SonarQubeConnection, Unauthorized
from scim_bridge.sonarqube.deadline import deadline
from scim_bridge.web.auth import (
    REJECTION_CACHE_SECONDS,
    VERIFICATION_RETRY_AFTER,
    VERIFICATION_SLOTS,
    SonarQubeTokenAuth,
    VerdictCache,
    token_hash,
)
from tests.support import ADMIN_TOKEN, SCIM_JSON, USER_SCHEMA

if TYPE_CHECKING:
    from pathlib import Path

    from tests.web.conftest import Bridge, BridgeFactory

CHALLENGE = 'Bearer realm="scim-bridge"'
INVALID_TOKEN = 'Bearer realm="scim-bridge", error="invalid_token"'
CURRENT_USER = "/api/users/current"


async def current_user_calls(bridge: Bridge) -> int:
    return sum(entry["path"] == CURRENT_USER for entry in await bridge.sonar.control.journal())


async def non_admin_token(bridge: Bridge, login: str = "bob") -> str:
    assert (await bridge.sonar.create_user(login)).status == 200
    return await bridge.sonar.user_token(login)


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer   ", "Token abc", "Bearer two words"],
    ids=["missing", "empty", "basic", "no-token", "blank-token", "other-scheme", "two-words"],
)
async def test_no_bearer_token_is_401_with_a_challenge(bridge: Bridge, authorization: str | None) -> None:
    """Without a well-formed bearer token: 401 SCIM error with `WWW-Authenticate: Bearer realm=…` and no
    error code (RFC 6750 §3.1)."""
    headers = {} if authorization is None else {"Authorization": authorization}

    reply = await bridge.get("/Users", token=None, headers=headers)

    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"] == CHALLENGE
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)
    assert reply.body["status"] == "401"


async def test_wrong_token_is_401_invalid_token(bridge: Bridge) -> None:
    """A bearer token SonarQube does not know is a 401 whose challenge says `invalid_token`."""
    reply = await bridge.get("/Users", token="not-a-sonarqube-token")

    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"] == INVALID_TOKEN


async def test_a_refused_token_is_refused_again_without_asking_sonarqube(bridge: Bridge) -> None:
    """A token SonarQube refused is refused again, the same way, without another `api/users/current`: an
    unauthenticated client cannot make every request cost a SonarQube call."""
    await bridge.sonar.control.clear_journal()

    replies = [await bridge.get("/Users", token="not-a-sonarqube-token") for _ in range(3)]

    assert [reply.status for reply in replies] == [401] * 3
    assert {reply.headers["WWW-Authenticate"] for reply in replies} == {INVALID_TOKEN}
    assert len({reply.body["detail"] for reply in replies}) == 1
    assert await current_user_calls(bridge) == 1


async def test_with_the_cache_off_refusals_are_asked_again(bridge_factory: BridgeFactory) -> None:
    """auth_cache_seconds=0 caches no verdict at all, refusals included: each attempt asks SonarQube."""
    bridge = await bridge_factory(auth_cache_seconds=0)

    for _ in range(2):
        assert (await bridge.get("/Users", token="not-a-sonarqube-token")).status == 401

    assert await current_user_calls(bridge) == 2


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
async def test_scheme_is_case_insensitive(bridge: Bridge, scheme: str) -> None:
    """The `Bearer` scheme is matched in any case (RFC 7235 §2.1)."""
    reply = await bridge.get("/Users", token=None, headers={"Authorization": f"{scheme} {bridge.token}"})

    assert reply.status == 200


async def test_non_admin_token_is_403(bridge: Bridge) -> None:
    """A valid SonarQube token whose user lacks "Administer System" is a 403 SCIM error saying so."""
    token = await non_admin_token(bridge)

    reply = await bridge.get("/Users", token=token)

    assert reply.status == 403
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)
    assert "Administer System" in reply.body["detail"]
    assert "'bob'" in reply.body["detail"]


@pytest.mark.parametrize("admin", [True, False], ids=["admin", "non-admin"])
async def test_verdict_is_cached(bridge: Bridge, admin: bool) -> None:
    """Within auth_cache_seconds, a token is checked with SonarQube once, whatever the verdict."""
    token = bridge.token if admin else await non_admin_token(bridge)
    await bridge.sonar.control.clear_journal()

    statuses = [(await bridge.get("/ServiceProviderConfig", token=token)).status for _ in range(3)]

    assert statuses == ([200] * 3 if admin else [403] * 3)
    assert await current_user_calls(bridge) == 1


async def test_cache_off_checks_every_request(bridge_factory: BridgeFactory) -> None:
    """With auth_cache_seconds=0, every request asks SonarQube about the token."""
    bridge = await bridge_factory(auth_cache_seconds=0)

    for _ in range(2):
        assert (await bridge.get("/ServiceProviderConfig")).status == 200

    assert await current_user_calls(bridge) == 2


async def test_sonarqube_unavailable_during_auth_is_503(bridge: Bridge) -> None:
    """SonarQube answering 503 while the token is checked gives a 503 with Retry-After, not a 401."""
    await bridge.sonar.control.set_faults(rate=1, kinds=["503"])

    reply = await bridge.get("/Users")

    assert reply.status == 503
    assert reply.headers["Retry-After"] == "1"
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)


async def test_sonarqube_stopped_during_auth_is_503(bridge: Bridge) -> None:
    """SonarQube gone altogether while the token is checked gives a 503 with Retry-After."""
    await bridge.sonar.server.close()

    reply = await bridge.get("/Users")

    assert reply.status == 503
    assert int(reply.headers["Retry-After"]) > 0


async def test_auth_failures_log_a_hash_never_the_token(bridge: Bridge) -> None:
    """`scim.auth_failed` names the reason and a prefix of the token's SHA-256, never the token."""
    token = "wrong-token-value"
    with capture_logs() as logs:
        await bridge.get("/Users", token=token)

    failures = [event for event in logs if event["event"] == "scim.auth_failed"]
    assert failures == [
        {
            "event": "scim.auth_failed",
            "log_level": "warning",
            "reason": "rejected_by_sonarqube",
            "token_hash": token_hash(token)[:12],
        }
    ]
    assert token not in repr(logs)


@pytest.mark.parametrize("mode", ["sonarqube", "static"])
async def test_changes_are_recorded_under_the_actor_and_request_id(
    bridge_factory: BridgeFactory, mode: str
) -> None:
    """The audit trail names the token's owner (static: the owner of the bridge's own token) and the
    request id the client sent."""
    static = {"scim_tokens": ["scim-token"], "sonar_token": ADMIN_TOKEN} if mode == "static" else {}
    bridge = await bridge_factory(auth=mode, **static)
    token = "scim-token" if mode == "static" else bridge.token
    user = {"schemas": [USER_SCHEMA], "userName": "carol"}

    reply = await bridge.post("/Users", user, token=token, headers={"X-Request-Id": "req-42"})

    assert reply.status == 201
    (event,) = await bridge.store.audit_trail(scim_id=reply.body["id"])
    assert (event.actor, event.request_id) == ("admin", "req-42")


# -- static tokens -------------------------------------------------------------------------------------


@pytest.fixture
async def static_bridge(bridge_factory: BridgeFactory, tmp_path: Path) -> Bridge:
    """A bridge with two inline SCIM tokens and one token file, calling SonarQube with the admin token."""
    token_file = tmp_path / "scim-token"
    token_file.write_text("file-token-1\n", encoding="utf-8")
    return await bridge_factory(
        auth="static",
        scim_tokens=["current-token", "next-token"],
        scim_token_files=[token_file],
        sonar_token=ADMIN_TOKEN,
    )


@pytest.mark.parametrize("token", ["current-token", "next-token", "file-token-1"])
async def test_static_tokens_are_all_accepted(static_bridge: Bridge, token: str) -> None:
    """In static mode every configured token works, so a rotation can overlap."""
    reply = await static_bridge.get("/Users", token=token)

    assert reply.status == 200


@pytest.mark.parametrize(
    "token", ["current-token-", "current", ADMIN_TOKEN], ids=["longer", "prefix", "sonar-token"]
)
async def test_static_mode_refuses_other_tokens(static_bridge: Bridge, token: str) -> None:
    """In static mode any other token, the SonarQube token included, is a 401 invalid_token."""
    reply = await static_bridge.get("/Users", token=token)

    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"] == INVALID_TOKEN


async def test_static_token_file_is_reread_when_it_changes(static_bridge: Bridge) -> None:
    """A rewritten token file takes effect at once: the old token is refused, the new one accepted."""
    (token_file,) = static_bridge.settings.scim_token_files
    token_file.write_text("file-token-rotated\n", encoding="utf-8")

    assert (await static_bridge.get("/Users", token="file-token-1")).status == 401
    assert (await static_bridge.get("/Users", token="file-token-rotated")).status == 200


async def test_static_mode_asks_for_the_service_token_owner_once(static_bridge: Bridge) -> None:
    """The owner of the bridge's SonarQube token is looked up on the first request only."""
    for token in ("current-token", "next-token", "current-token"):
        assert (await static_bridge.get("/ServiceProviderConfig", token=token)).status == 200

    assert await current_user_calls(static_bridge) == 1


@pytest.mark.parametrize("owner", ["non-admin", "unknown"])
async def test_unusable_service_token_is_503(
    bridge_factory: BridgeFactory, tmp_path: Path, owner: str
) -> None:
    """When the bridge's own SonarQube token (here rotated in its file) is refused or not an administrator's,
    the answer is a 503 naming the setting: the SCIM client's token is fine, so no 401/403 (which would
    send Entra's administrator to the wrong place and quarantine the job)."""
    sonar_token_file = tmp_path / "sonar-token"
    sonar_token_file.write_text(ADMIN_TOKEN, encoding="utf-8")
    bridge = await bridge_factory(
        auth="static", scim_tokens=["scim-token"], sonar_token_file=sonar_token_file
    )
    rotated = await non_admin_token(bridge) if owner == "non-admin" else "revoked-token"
    sonar_token_file.write_text(rotated, encoding="utf-8")

    reply = await bridge.get("/Users", token="scim-token")

    assert reply.status == 503
    assert "sonar_token" in reply.body["detail"]
    assert int(reply.headers["Retry-After"]) > 0


@pytest.mark.parametrize("cause", ["deleted", "replaced-by-a-directory"])
async def test_an_unreadable_service_token_file_is_503_logged_once(
    bridge_factory: BridgeFactory, tmp_path: Path, cause: str
) -> None:
    """When the bridge's own token file cannot be read any more, the answer is a 503 saying so (naming the
    setting, never the file's path), with Retry-After; the problem is logged once, not per request, and the
    bridge recovers as soon as the file is back."""
    sonar_token_file = tmp_path / "sonar-token"
    sonar_token_file.write_text(ADMIN_TOKEN, encoding="utf-8")
    bridge = await bridge_factory(
        auth="static", scim_tokens=["scim-token"], sonar_token_file=sonar_token_file
    )
    assert (await bridge.get("/Users", token="scim-token")).status == 200
    sonar_token_file.unlink()
    if cause == "replaced-by-a-directory":
        sonar_token_file.mkdir()

    with capture_logs() as logs:
        replies = [await bridge.get("/Users", token="scim-token") for _ in range(3)]

    for reply in replies:
        assert reply.status == 503, reply
        assert reply.headers["Content-Type"].startswith(SCIM_JSON)
        assert int(reply.headers["Retry-After"]) > 0
        assert "sonar_token_file" in reply.body["detail"]
        assert "cannot be read" in reply.body["detail"]
        assert str(tmp_path) not in reply.body["detail"]
        assert "ConfigError" not in reply.body["detail"]
    unusable = [event for event in logs if event["event"] == "scim.service_token_unusable"]
    assert len(unusable) == 1, logs
    if cause == "replaced-by-a-directory":
        sonar_token_file.rmdir()
    sonar_token_file.write_text(ADMIN_TOKEN, encoding="utf-8")
    assert (await bridge.get("/Users", token="scim-token")).status == 200


# -- verifying tokens with SonarQube, unit by unit -----------------------------------------------------


class FakeSonar:
    """A SonarQube connection whose `api/users/current` answers from `owners` (any other token is refused),
    and can be held (`hold`) to keep verifications in flight."""

    def __init__(self, owners: dict[str, Caller]) -> None:
        self.owners = owners
        self.calls: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.hold = asyncio.Event()
        self.hold.set()

    def client(self, token: str) -> FakeClient:
        return FakeClient(self, token)

    def connection(self) -> SonarQubeConnection:
        return cast("SonarQubeConnection", self)


class FakeClient:
    def __init__(self, sonar: FakeSonar, token: str) -> None:
        self.sonar = sonar
        self.token = token

    async def current_user(self) -> Caller:
        sonar = self.sonar
        sonar.calls.append(self.token)
        sonar.in_flight += 1
        sonar.most_in_flight = max(sonar.most_in_flight, sonar.in_flight)
        try:
            await sonar.hold.wait()
        finally:
            sonar.in_flight -= 1
        if self.token not in sonar.owners:
            raise Unauthorized("unknown token", status=401)
        return sonar.owners[self.token]


async def settle() -> None:
    """Let every task that can run, run (no time passes)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_refusal_is_remembered_for_a_while_then_asked_again() -> None:
    """A refused token is refused from memory for REJECTION_CACHE_SECONDS, then SonarQube is asked again
    (and may accept it by then)."""
    clock = FakeClock()
    sonar = FakeSonar({})
    auth = SonarQubeTokenAuth(sonar.connection(), cache_seconds=60, clock=clock)

    for _ in range(3):
        with pytest.raises(UnauthorizedError):
            await auth.authenticate("new-token")
    assert sonar.calls == ["new-token"]

    clock.now += REJECTION_CACHE_SECONDS
    sonar.owners["new-token"] = ALICE
    assert (await auth.authenticate("new-token")).actor == "alice"
    assert sonar.calls == ["new-token"] * 2


async def test_a_refusal_is_remembered_no_longer_than_auth_cache_seconds() -> None:
    """With auth_cache_seconds shorter than REJECTION_CACHE_SECONDS, refusals are kept that long only."""
    clock = FakeClock()
    sonar = FakeSonar({})
    auth = SonarQubeTokenAuth(sonar.connection(), cache_seconds=5, clock=clock)
    with pytest.raises(UnauthorizedError):
        await auth.authenticate("new-token")

    clock.now += 5
    with pytest.raises(UnauthorizedError):
        await auth.authenticate("new-token")

    assert sonar.calls == ["new-token"] * 2


async def test_at_most_verification_slots_tokens_are_checked_at_once() -> None:
    """However many new tokens arrive together, SonarQube is asked about VERIFICATION_SLOTS at a time; the
    others wait their turn within their deadline and all get their verdict."""
    tokens = [f"token-{index}" for index in range(VERIFICATION_SLOTS * 3)]
    sonar = FakeSonar(dict.fromkeys(tokens, ALICE))
    sonar.hold.clear()
    auth = SonarQubeTokenAuth(sonar.connection(), cache_seconds=60, clock=FakeClock())

    async def one(token: str) -> str:
        with deadline(25):
            return (await auth.authenticate(token)).actor

    tasks = [asyncio.create_task(one(token)) for token in tokens]
    await settle()
    assert sonar.in_flight == VERIFICATION_SLOTS
    sonar.hold.set()

    assert await asyncio.gather(*tasks) == ["alice"] * len(tokens)
    assert sonar.most_in_flight == VERIFICATION_SLOTS
    assert sorted(sonar.calls) == sorted(tokens)


async def test_a_verification_that_cannot_start_within_its_deadline_is_503() -> None:
    """When every slot stays busy until the request's deadline has passed, the request is a 503 with
    Retry-After, and SonarQube is not asked about its token."""
    clock = FakeClock()
    sonar = FakeSonar({"busy": ALICE, "late": ALICE})
    sonar.hold.clear()
    auth = SonarQubeTokenAuth(sonar.connection(), cache_seconds=60, clock=clock, slots=1)
    busy = asyncio.create_task(auth.authenticate("busy"))
    await settle()

    with deadline(25, clock=clock):
        clock.now += 25  # the deadline has passed while the slot stayed taken
        with pytest.raises(ServiceUnavailableError) as caught:
            await auth.authenticate("late")

    assert caught.value.headers == {"Retry-After": str(VERIFICATION_RETRY_AFTER)}
    assert "too many tokens" in caught.value.detail
    assert sonar.calls == ["busy"]
    sonar.hold.set()
    assert (await busy).actor == "alice"


async def test_a_burst_with_one_new_token_costs_one_sonarqube_call() -> None:
    """Entra's burst of requests with a token the bridge does not know yet: the first asks SonarQube, the
    others, waiting for a slot, find its verdict (an acceptance or a refusal) and ask nothing."""
    sonar = FakeSonar({"good": ALICE})
    sonar.hold.clear()
    auth = SonarQubeTokenAuth(sonar.connection(), cache_seconds=60, clock=FakeClock(), slots=1)

    goods = [asyncio.create_task(auth.authenticate("good")) for _ in range(5)]
    bads = [asyncio.create_task(auth.authenticate("bad")) for _ in range(5)]
    await settle()
    sonar.hold.set()
    results = await asyncio.gather(*goods, *bads, return_exceptions=True)

    assert [getattr(result, "actor", None) for result in results[:5]] == ["alice"] * 5
    assert all(isinstance(result, UnauthorizedError) for result in results[5:])
    assert sonar.calls == ["good", "bad"]


# -- the verdict cache ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


ALICE = Caller(login="alice", name="Alice", is_admin=True)
BOB = Caller(login="bob", name="Bob", is_admin=False)


def test_cache_entries_expire() -> None:
    """A verdict is served until its time to live has passed, then forgotten."""
    clock = FakeClock()
    cache = VerdictCache(60, clock=clock)
    cache.put("a", ALICE)

    clock.now += 59.9
    assert cache.get("a") == ALICE
    clock.now += 0.1
    assert cache.get("a") is None


def test_cache_is_bounded_least_recently_used_first() -> None:
    """At its size limit the cache drops the verdict used least recently."""
    cache = VerdictCache(60, size=2, clock=FakeClock())
    cache.put("a", ALICE)
    cache.put("b", BOB)
    assert cache.get("a") == ALICE

    cache.put("c", ALICE)

    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (ALICE, None, ALICE)


def test_cache_with_zero_ttl_keeps_nothing() -> None:
    """auth_cache_seconds = 0 turns caching off."""
    cache = VerdictCache(0, clock=FakeClock())
    cache.put("a", ALICE)

    assert cache.get("a") is None
