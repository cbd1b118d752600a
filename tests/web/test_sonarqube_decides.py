"""SonarQube's state decides (docs/reliability.md): when one step of a request fails, the store still says
what Entra wants, so the retried request, or the next PATCH, finishes the work from the account's real state
in SonarQube. Finding 2 of the reliability review, case by case."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import pytest

from scim_bridge.store import StoreError
from tests.support import ONE_PROFILE_PER_API, PATCH_OP_SCHEMA, V1_PROFILE
from tests.web.entra import (
    assert_saml_link,
    create_group,
    create_user,
    entra_payload,
    expect,
    find,
    only,
    sonar_groups_of,
    sonar_user,
    user_body,
)

if TYPE_CHECKING:
    from tests.support import Reply
    from tests.web.conftest import Bridge, BridgeFactory

DEACTIVATE: Final = {"v1": "POST /api/users/deactivate", "v2": "DELETE /api/v2/users-management/users"}
LINK: Final = {"v1": "POST /api/users/update_identity_provider", "v2": "PATCH /api/v2/users-management/users"}
DISABLE: Final = "entra/a6-disable-default"
ENABLE: Final = "entra/a6-enable-default"


def api(profile: str) -> str:
    return "v1" if profile == V1_PROFILE else "v2"


async def break_calls(bridge: Bridge, target: str) -> None:
    """Every SonarQube call to `target` ("METHOD /path") fails with SonarQube's 500 from now on."""
    await bridge.sonar.control.set_faults(rate=1.0, kinds=["500"], paths=[target])


async def mend_calls(bridge: Bridge) -> None:
    await bridge.sonar.control.set_faults(rate=0.0, paths=[])


def expect_retry_later(reply: Reply) -> str:
    """A 503 with `Retry-After` whose detail does not claim that SonarQube was left unchanged."""
    body = expect(reply, 503)
    assert "Retry-After" in reply.headers, reply
    assert "not changed" not in body["detail"], body
    detail: str = body["detail"]
    return detail


async def sonar_active(bridge: Bridge, user_name: str) -> bool:
    active: bool = (await sonar_user(bridge, user_name))["active"]
    return active


@pytest.fixture(params=ONE_PROFILE_PER_API, ids=lambda profile: f"sq{profile}")
def profile(request: pytest.FixtureRequest) -> str:
    chosen: str = request.param
    return chosen


@pytest.mark.parametrize("completed_by", ["the same POST", "Entra's PATCH after its matching query"])
async def test_a_create_whose_deactivation_failed_is_finished_later(
    bridge_factory: BridgeFactory, profile: str, completed_by: str
) -> None:
    """POST `active: false` whose deactivation call fails is a 503; the matching query then shows the
    account active (SonarQube's truth), and either the retried POST or the disabling PATCH deactivates it."""
    bridge = await bridge_factory(profile)
    body = user_body(active=False)
    await break_calls(bridge, DEACTIVATE[api(profile)])
    expect_retry_later(await bridge.post("/Users", body))
    assert await sonar_active(bridge, body["userName"]) is True
    await mend_calls(bridge)

    if completed_by == "the same POST":
        created = expect(await bridge.post("/Users", body), 201)
        assert created["active"] is False
    else:
        found = only(await find(bridge, "Users", f'userName eq "{body["userName"]}"'))
        assert found["active"] is True  # what SonarQube says, so Entra sends its PATCH
        expect(await bridge.patch(f"/Users/{found['id']}", entra_payload(DISABLE)), 200)
    assert await sonar_active(bridge, body["userName"]) is False


@pytest.mark.parametrize("next_request", ["the same PATCH", "a disabling PATCH"])
async def test_a_reactivation_whose_link_failed_is_finished_or_undone(
    bridge_factory: BridgeFactory, profile: str, next_request: str
) -> None:
    """Re-enabling a user whose SAML-link call fails is a 503; the retried PATCH then links the account and
    restores its groups, and a disabling PATCH instead really deactivates it (never a no-op)."""
    bridge = await bridge_factory(profile)
    user = await create_user(bridge)
    group = await create_group(bridge)
    add = entra_payload("entra/a12-add-member-default", u_adele=user["id"])
    expect(await bridge.patch(f"/Groups/{group['id']}", add), 204)
    expect(await bridge.patch(f"/Users/{user['id']}", entra_payload(DISABLE)), 200)

    await break_calls(bridge, LINK[api(profile)])
    expect_retry_later(await bridge.patch(f"/Users/{user['id']}", entra_payload(ENABLE)))
    await mend_calls(bridge)

    account = await sonar_user(bridge, user["userName"])
    if next_request == "the same PATCH":
        expect(await bridge.patch(f"/Users/{user['id']}", entra_payload(ENABLE)), 200)
        account = await sonar_user(bridge, user["userName"])
        assert account["active"] is True
        assert_saml_link(account, user["userName"], profile)
        assert await sonar_groups_of(bridge, account["login"]) >= {group["displayName"]}
    else:
        expect(await bridge.patch(f"/Users/{user['id']}", entra_payload(DISABLE)), 200)
        assert await sonar_active(bridge, user["userName"]) is False


class FailingWrites:
    """The bridge's own store whose `method` fails as a locked database would, on its calls number `calls`
    (counted from 1); every other call goes through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: Any, method: str, calls: set[int]) -> None:
        self._real = getattr(store, method)
        self._calls = calls
        self.count = 0
        monkeypatch.setattr(store, method, self)

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        if self.count in self._calls:
            raise StoreError("database is locked")
        return await self._real(*args, **kwargs)


@pytest.mark.parametrize("next_request", ["a re-enabling PATCH", "a displayName PATCH"])
async def test_a_deactivation_whose_store_write_failed_stays_decided_by_sonarqube(
    bridge_factory: BridgeFactory, profile: str, next_request: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disabling PATCH whose last store write fails (database locked) is a 503 that says to retry; a
    re-enabling PATCH then reactivates the account, and a displayName PATCH leaves it deactivated."""
    bridge = await bridge_factory(profile)
    user = await create_user(bridge)
    # The PATCH writes twice: what Entra wants, then the state reached. The second write fails.
    FailingWrites(monkeypatch, bridge.store, "update_user", calls={2})
    reply = await bridge.patch(f"/Users/{user['id']}", entra_payload(DISABLE))
    assert "repeating this request is safe" in expect_retry_later(reply)
    assert await sonar_active(bridge, user["userName"]) is False

    if next_request == "a re-enabling PATCH":
        expect(await bridge.patch(f"/Users/{user['id']}", entra_payload(ENABLE)), 200)
        assert await sonar_active(bridge, user["userName"]) is True
    else:
        rename = {
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{"op": "Replace", "path": "displayName", "value": "A. Vance"}],
        }
        patched = expect(await bridge.patch(f"/Users/{user['id']}", rename), 200)
        assert patched["active"] is False
        assert await sonar_active(bridge, user["userName"]) is False


async def test_a_busy_store_is_a_503_never_a_500(
    bridge_factory: BridgeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 3: a store that fails on a read or a write answers 503 with `Retry-After`, never 500; the
    retried request succeeds."""
    bridge = await bridge_factory()
    FailingWrites(monkeypatch, bridge.store, "insert_user", calls={1})
    expect_retry_later(await bridge.post("/Users", user_body()))
    created = await create_user(bridge)
    FailingWrites(monkeypatch, bridge.store, "get_user", calls={1})
    expect_retry_later(await bridge.get(f"/Users/{created['id']}"))
    expect(await bridge.get(f"/Users/{created['id']}"), 200)
