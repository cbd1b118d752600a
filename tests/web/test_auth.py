"""Bearer authentication: SonarQube admin tokens (default) and static SCIM tokens, over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from scim_bridge.sonarqube import Caller
from scim_bridge.web.auth import VerdictCache, token_hash
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
