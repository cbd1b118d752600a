"""SonarQube's state decides (docs/reliability.md): when one step of a request fails, the store still says
what Entra wants, so the retried request, or the next PATCH, finishes the work from the account's real state
in SonarQube. Finding 2 of the reliability review, case by case."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

import pytest

from scim_bridge.sonarqube.v1 import V1Client
from scim_bridge.sonarqube.v2 import V2Client
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


@pytest.mark.parametrize("completed_by", ["the same POST", "Entra's matching query"])
async def test_a_create_whose_deactivation_failed_is_finished_later(
    bridge_factory: BridgeFactory, profile: str, completed_by: str
) -> None:
    """POST `active: false` whose deactivation call fails is a 503; the retried POST, or Entra's matching
    query (its way of retrying a failed create), finishes it: the account is deactivated."""
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
        assert found["active"] is False
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


async def test_a_create_whose_link_failed_is_finished_by_entras_matching_query(
    bridge_factory: BridgeFactory, profile: str
) -> None:
    """POST whose SAML-link call fails is a 503; Entra retries with its `userName` query, which finds the
    user and would send nothing more: so that read finishes the creation, and the account is linked."""
    bridge = await bridge_factory(profile)
    await break_calls(bridge, LINK[api(profile)])
    expect_retry_later(await bridge.post("/Users", user_body()))
    await mend_calls(bridge)

    found = only(await find(bridge, "Users", 'userName eq "adele.vance@contoso.example"'))

    assert_saml_link(await sonar_user(bridge, found["userName"]), found["userName"], profile)
    record = await bridge.store.get_user(found["id"])
    assert record is not None
    assert record.settled


class Paused:
    """The bridge's own store whose `method` stops on its first call until `release` is set, so that a
    test can send another request at exactly that moment."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: Any, method: str) -> None:
        self._real = getattr(store, method)
        self.reached = asyncio.Event()
        self.release = asyncio.Event()
        monkeypatch.setattr(store, method, self)

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = await self._real(*args, **kwargs)
        if not self.reached.is_set():
            self.reached.set()
            await self.release.wait()
        return result


async def disabled_member(bridge: Bridge) -> tuple[dict[str, Any], dict[str, Any]]:
    """A user, member of a group, then disabled (SonarQube dropped the membership, the store keeps it)."""
    user = await create_user(bridge)
    group = await create_group(bridge)
    add = entra_payload("entra/a12-add-member-default", u_adele=user["id"])
    expect(await bridge.patch(f"/Groups/{group['id']}", add), 204)
    expect(await bridge.patch(f"/Users/{user['id']}", entra_payload(DISABLE)), 200)
    return user, group


async def test_a_member_removed_during_its_reactivation_stays_removed(
    bridge_factory: BridgeFactory, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-enable restores the user's memberships; a removal from one of its groups sent while it does so
    is never undone by it (the restore asks the store again under the group's lock)."""
    bridge = await bridge_factory(profile)
    user, group = await disabled_member(bridge)
    paused = Paused(monkeypatch, bridge.store, "groups_of")  # the restore's first look at the groups
    enable = asyncio.create_task(bridge.patch(f"/Users/{user['id']}", entra_payload(ENABLE)))
    await paused.reached.wait()
    remove = entra_payload("entra/a13-remove-member-default", u_adele=user["id"])
    expect(await bridge.patch(f"/Groups/{group['id']}", remove), 204)
    paused.release.set()
    expect(await enable, 200)

    account = await sonar_user(bridge, user["userName"])
    assert account["active"] is True
    assert group["displayName"] not in await sonar_groups_of(bridge, account["login"])
    assert await bridge.store.members_of(group["id"]) == set()


async def test_a_member_added_during_its_reactivation_is_not_a_404(
    bridge_factory: BridgeFactory, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group PATCH adding a user whose re-enable has been recorded but not yet made in SonarQube is 204
    (not SonarQube's 404 for the deactivated user, which Entra would read as "the group is gone"), and the
    reactivation then gives the user that membership."""
    bridge = await bridge_factory(profile)
    user, _ = await disabled_member(bridge)
    other = await create_group(bridge, "Sonar Testers")
    paused = Paused(monkeypatch, bridge.store, "update_user")  # the re-enable's intent, recorded
    enable = asyncio.create_task(bridge.patch(f"/Users/{user['id']}", entra_payload(ENABLE)))
    await paused.reached.wait()
    add = entra_payload("entra/a12-add-member-default", u_adele=user["id"])
    expect(await bridge.patch(f"/Groups/{other['id']}", add), 204)
    paused.release.set()
    expect(await enable, 200)

    account = await sonar_user(bridge, user["userName"])
    assert {"Sonar Developers", "Sonar Testers"} <= await sonar_groups_of(bridge, account["login"])


async def test_a_member_added_to_a_user_read_disabled_while_it_is_re_enabled_is_added(
    bridge_factory: BridgeFactory, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group PATCH that read its new member as disabled, while a re-enable of that user runs to the end
    (restoring the memberships the store held then) before the PATCH records the member: the user still
    ends in the group in SonarQube (found by the store-locked scenario)."""
    bridge = await bridge_factory(profile)
    user, _ = await disabled_member(bridge)
    other = await create_group(bridge, "Sonar Testers")
    paused = Paused(monkeypatch, bridge.store, "get_user")  # the PATCH has read its member, disabled
    add = entra_payload("entra/a12-add-member-default", u_adele=user["id"])
    adding = asyncio.create_task(bridge.patch(f"/Groups/{other['id']}", add))
    await paused.reached.wait()
    expect(await bridge.patch(f"/Users/{user['id']}", entra_payload(ENABLE)), 200)
    paused.release.set()
    expect(await adding, 204)

    account = await sonar_user(bridge, user["userName"])
    assert {"Sonar Developers", "Sonar Testers"} <= await sonar_groups_of(bridge, account["login"])


async def test_a_member_added_while_sonarqube_reactivates_the_user_is_added(
    bridge_factory: BridgeFactory, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member add that SonarQube refuses because the user is deactivated, while the user is reactivated
    in between (a re-enable landing at that moment), is 204 and the membership is made: not a 404, and not
    left to a restore that has already run."""
    bridge = await bridge_factory(profile)
    user = await create_user(bridge)
    group = await create_group(bridge)
    login = (await sonar_user(bridge, user["userName"]))["login"]
    reply = await bridge.sonar.post("api/users/deactivate", {"login": login})
    assert reply.status == 200, reply
    reactivated: list[str] = []

    def reactivating_first(look_up: Any) -> Any:
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not reactivated:  # SonarQube reactivates the account just before the bridge looks at it
                made = await bridge.sonar.post(
                    "api/users/create", {"login": login, "name": "A", "local": "false"}
                )
                reactivated.append(str(made.status))
            return await look_up(*args, **kwargs)

        return wrapped

    for client in (V1Client, V2Client):
        monkeypatch.setattr(client, "get_user", reactivating_first(client.get_user))
        monkeypatch.setattr(client, "find_user", reactivating_first(client.find_user))
    add = entra_payload("entra/a12-add-member-default", u_adele=user["id"])
    expect(await bridge.patch(f"/Groups/{group['id']}", add), 204)

    assert reactivated == ["200"]
    assert group["displayName"] in await sonar_groups_of(bridge, login)


async def test_a_change_sonarqube_does_not_hold_makes_no_call(
    bridge_factory: BridgeFactory, profile: str
) -> None:
    """A PATCH of an attribute SonarQube does not hold (the manager) is recorded, settled, without a single
    SonarQube call: SonarQube's state cannot change what it does."""
    bridge = await bridge_factory(profile)
    user = await create_user(bridge)
    manager = await create_user(bridge, user_body("megan.bowen@contoso.example"))
    await bridge.get("/ServiceProviderConfig")  # the token's verdict is cached: no call for it either
    await bridge.sonar.control.clear_journal()

    body = entra_payload("entra/a5-manager-add-default", u_megan=manager["id"])
    expect(await bridge.patch(f"/Users/{user['id']}", body), 200)

    assert [
        entry for entry in await bridge.sonar.control.journal() if entry["path"] != "/api/system/status"
    ] == []


async def test_a_record_whose_account_sonarqube_lost_does_not_block_entra(
    bridge_factory: BridgeFactory, profile: str
) -> None:
    """Behind the bridge's store, a SonarQube restored without the account (or a new one): the matching
    query finds nothing, and Entra's POST then creates the account again instead of meeting a 409 forever."""
    bridge = await bridge_factory(profile)
    await create_user(bridge)
    await bridge.sonar.control.reset()  # a SonarQube that never had the account

    assert await find(bridge, "Users", 'userName eq "adele.vance@contoso.example"') == []
    created = expect(await bridge.post("/Users", user_body()), 201)

    assert_saml_link(await sonar_user(bridge, created["userName"]), created["userName"], profile)
