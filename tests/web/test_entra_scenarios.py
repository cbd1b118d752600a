"""Entra ID provisioning sequences across several requests (docs/entra.md E6-E11): cycles, soft delete
and restore, renames, adoption of existing SonarQube accounts, retries, and the bridge's protections."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

import pytest

from tests.support import ENTERPRISE_USER_SCHEMA, read_payload
from tests.web.entra import (
    ADELE,
    EMPTY_LIST,
    MEGAN,
    NESTOR,
    assert_saml_link,
    create_group,
    create_user,
    echoed,
    entra_payload,
    expect,
    expect_error,
    find,
    get_user,
    only,
    patch_user,
    sonar_groups_of,
    sonar_members,
    sonar_user,
    sonar_users,
    sonar_writes,
    user_body,
    valid_login,
)

if TYPE_CHECKING:
    from tests.web.conftest import Bridge

DEVS: Final = "Sonar Developers"
REVIEWERS: Final = "Sonar Reviewers"
COMPARED: Final = (
    "userName",
    "externalId",
    "displayName",
    "name",
    "emails",
    "active",
    "title",
    "phoneNumbers",
)


async def add_member(bridge: Bridge, group_id: str, user_id: str) -> None:
    body = entra_payload("entra/a12-add-member-default", u_adele=user_id)
    expect(await bridge.patch(f"/Groups/{group_id}", body), 204)


async def remove_member(bridge: Bridge, group_id: str, user_id: str) -> None:
    body = entra_payload("entra/a13-remove-member-default", u_adele=user_id)
    expect(await bridge.patch(f"/Groups/{group_id}", body), 204)


def rename(user_name: str) -> dict[str, Any]:
    body: dict[str, Any] = read_payload("entra/a5-replace-username-default")
    body["Operations"][0]["value"] = user_name
    return body


# --- cycles ---------------------------------------------------------------------------------------------


async def test_initial_cycle_then_a_second_cycle_with_nothing_to_change(
    entra: Bridge, entra_profile: str
) -> None:
    """Initial cycle (probe, match, create, members, manager), then a second cycle that finds all as sent."""
    for resource in ("Users", "Groups"):
        probe = await entra.get(
            f"/{resource}", params=read_payload(f"entra/a1-probe-{resource.lower()}-query")
        )
        assert expect(probe, 200) == EMPTY_LIST
    desired = [user_body(), read_payload("entra/a4-create-user-enterprise"), user_body(NESTOR)]
    ids: dict[str, str] = {}
    for body in desired:
        assert await find(entra, "Users", f'userName eq "{body["userName"]}"') == []
        ids[body["userName"]] = (await create_user(entra, body))["id"]
    assert await find(entra, "Groups", f'displayName eq "{DEVS}"', excludedAttributes="members") == []
    group = await create_group(entra, DEVS)
    await asyncio.gather(*(add_member(entra, group["id"], user_id) for user_id in ids.values()))
    manager = entra_payload("entra/a5-manager-add-default", u_megan=ids[MEGAN])
    await patch_user(entra, ids[ADELE], manager)

    for body in desired:
        sonar = await sonar_user(entra, body["userName"])
        assert (sonar["active"], sonar["name"]) == (True, body["displayName"])
        assert sonar["email"] == body["emails"][0]["value"]
        assert_saml_link(sonar, body["userName"], entra_profile)
    assert await sonar_members(entra, DEVS) == set(ids)

    await entra.sonar.control.clear_journal()
    for body in desired:
        found = only(await find(entra, "Users", f'userName eq "{body["userName"]}"'))
        assert found["id"] == ids[body["userName"]]
        echoed(found, body, *(key for key in (*COMPARED, ENTERPRISE_USER_SCHEMA) if key in body))
    adele = only(await find(entra, "Users", f'userName eq "{ADELE}"'))
    assert adele[ENTERPRISE_USER_SCHEMA]["manager"] == {"value": ids[MEGAN]}
    found_group = only(await find(entra, "Groups", f'displayName eq "{DEVS}"', excludedAttributes="members"))
    assert (found_group["id"], found_group["externalId"]) == (group["id"], group["externalId"])
    assert await sonar_writes(entra) == []


async def test_lost_create_response_then_retry(entra: Bridge) -> None:
    """A POST whose answer was lost is retried: 409 `uniqueness`; the next match finds the first user."""
    created = await create_user(entra)
    expect_error(await entra.post("/Users", user_body()), 409, "uniqueness")
    found = only(await find(entra, "Users", f'userName eq "{ADELE}"'))
    assert found["id"] == created["id"]
    patched = await patch_user(entra, found["id"], read_payload("entra/a5-add-nickname-default"))
    assert patched["nickName"] == "Addy"


# --- soft delete and restore ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("disable", "enable"),
    [
        pytest.param("entra/a6-disable-default", "entra/a6-enable-default", id="default-strings"),
        pytest.param(
            "entra/a6-disable-lowercase-string", "entra/a6-enable-lowercase-string", id="lowercase-strings"
        ),
        pytest.param("entra/a6-disable-flag", "entra/a6-enable-flag", id="flag-booleans"),
        pytest.param("entra/a6-disable-pathless-flag", "entra/a6-enable-pathless-flag", id="flag-path-less"),
    ],
)
async def test_a6_disable_then_enable_restores_the_sonarqube_account(
    entra: Bridge, entra_profile: str, disable: str, enable: str
) -> None:
    """Disable clears e-mail and groups in SonarQube; enable restores name, e-mail, SAML link and groups."""
    created = await create_user(entra)
    for name in (DEVS, REVIEWERS):
        await add_member(entra, (await create_group(entra, name))["id"], created["id"])
    before = await entra.sonar.user_state(ADELE)
    assert await sonar_groups_of(entra, ADELE) == {"sonar-users", DEVS, REVIEWERS}

    assert (await patch_user(entra, created["id"], read_payload(disable)))["active"] is False
    disabled = await entra.sonar.user_state(ADELE)
    assert (disabled["active"], disabled["email"]) == (False, None)
    assert await sonar_groups_of(entra, ADELE) == set()

    enabled = await patch_user(entra, created["id"], read_payload(enable))
    assert enabled["active"] is True
    echoed(enabled, user_body(), "userName", "externalId", "displayName", "name", "emails")
    after = await entra.sonar.user_state(ADELE)
    assert after["active"] is True
    assert after["id"] == before["id"]
    fields = ("login", "name", "email", "local", "externalProvider", "externalLogin")
    assert {key: after[key] for key in fields} == {key: before[key] for key in fields}
    assert after["email"] == "Adele.Vance@Contoso.Example"
    assert_saml_link(after, ADELE, entra_profile)
    assert await sonar_groups_of(entra, ADELE) == {"sonar-users", DEVS, REVIEWERS}
    assert (await get_user(entra, created["id"]))["active"] is True


async def test_membership_added_while_disabled_is_applied_on_enable(entra: Bridge) -> None:
    """A member added while the user is disabled is remembered (204) and added in SonarQube on enable."""
    created = await create_user(entra)
    group = await create_group(entra, DEVS)
    await patch_user(entra, created["id"], read_payload("entra/a6-disable-default"))
    await add_member(entra, group["id"], created["id"])
    assert await sonar_members(entra, DEVS) == set()
    await patch_user(entra, created["id"], read_payload("entra/a6-enable-default"))
    assert await sonar_members(entra, DEVS) == {ADELE}


async def test_membership_removed_while_disabled_is_not_restored(entra: Bridge) -> None:
    """A member removed while the user is disabled stays removed when the user is re-enabled."""
    created = await create_user(entra)
    group = await create_group(entra, DEVS)
    await add_member(entra, group["id"], created["id"])
    await patch_user(entra, created["id"], read_payload("entra/a6-disable-flag"))
    await remove_member(entra, group["id"], created["id"])
    await patch_user(entra, created["id"], read_payload("entra/a6-enable-flag"))
    assert await sonar_groups_of(entra, ADELE) == {"sonar-users"}


async def test_deleted_user_can_be_created_again(entra: Bridge, entra_profile: str) -> None:
    """After DELETE, a new POST of the same `userName` is 201 and reactivates the same SonarQube account."""
    first = await create_user(entra)
    uuid = (await entra.sonar.user_state(ADELE))["id"]
    expect(await entra.delete(f"/Users/{first['id']}"), 204)
    again = await create_user(entra)
    echoed(again, user_body(), "userName", "externalId", "displayName", "name", "emails", "active")
    sonar = await entra.sonar.user_state(ADELE)
    assert (sonar["id"], sonar["active"], sonar["email"]) == (uuid, True, "Adele.Vance@Contoso.Example")
    assert_saml_link(sonar, ADELE, entra_profile)
    assert [user["id"] for user in await find(entra, "Users", f'userName eq "{ADELE}"')] == [again["id"]]


# --- renames --------------------------------------------------------------------------------------------


async def test_rename_keeps_the_account_its_groups_and_its_scim_id(entra: Bridge, entra_profile: str) -> None:
    """A renamed user keeps its SonarQube account, groups and SCIM id; later member PATCHes still work."""
    created = await create_user(entra)
    devs = await create_group(entra, DEVS)
    await add_member(entra, devs["id"], created["id"])
    uuid = (await entra.sonar.user_state(ADELE))["id"]
    await patch_user(entra, created["id"], rename("adele.vance@fabrikam.example"))
    sonar = await entra.sonar.user_state("adele.vance@fabrikam.example")
    assert sonar["id"] == uuid
    assert_saml_link(sonar, "adele.vance@fabrikam.example", entra_profile)
    assert await sonar_groups_of(entra, "adele.vance@fabrikam.example") == {"sonar-users", DEVS}
    reviewers = await create_group(entra, REVIEWERS)
    await add_member(entra, reviewers["id"], created["id"])
    await remove_member(entra, devs["id"], created["id"])
    assert await sonar_groups_of(entra, "adele.vance@fabrikam.example") == {"sonar-users", REVIEWERS}


async def test_derived_login_user_through_its_lifecycle(entra: Bridge, entra_profile: str) -> None:
    """A `userName` SonarQube refuses keeps its exact SAML link through groups, disable, enable, rename."""
    user_name = "jürgen.müller@contoso.com"
    created = await create_user(entra, user_body(user_name))
    group = await create_group(entra, DEVS)
    await add_member(entra, group["id"], created["id"])
    login = (await sonar_user(entra, user_name))["login"]
    assert valid_login(login, entra_profile)
    await patch_user(entra, created["id"], read_payload("entra/a6-disable-default"))
    await patch_user(entra, created["id"], read_payload("entra/a6-enable-default"))
    sonar = await sonar_user(entra, user_name)
    assert (sonar["login"], sonar["active"], sonar["email"]) == (login, True, user_name)
    assert_saml_link(sonar, user_name, entra_profile)
    assert await sonar_members(entra, DEVS) == {login}
    renamed = await patch_user(entra, created["id"], rename("juergen.mueller@contoso.com"))
    assert renamed["userName"] == "juergen.mueller@contoso.com"
    sonar = await sonar_user(entra, "juergen.mueller@contoso.com")
    assert sonar["login"] == "juergen.mueller@contoso.com"
    assert_saml_link(sonar, "juergen.mueller@contoso.com", entra_profile)
    assert await sonar_members(entra, DEVS) == {"juergen.mueller@contoso.com"}


# --- adoption of existing SonarQube accounts ------------------------------------------------------------


async def test_existing_sonarqube_user_is_adopted(entra: Bridge, entra_profile: str) -> None:
    """A user already in SonarQube is found by `userName eq` with an id; the next PATCH works and links it."""
    assert (await entra.sonar.create_user(ADELE, name="Adele", email=ADELE)).status == 200
    found = only(await find(entra, "Users", f'userName eq "{ADELE}"'))
    assert found["id"]
    assert (found["userName"], found["active"]) == (ADELE, True)
    patched = await patch_user(entra, found["id"], read_payload("entra/a5-add-nickname-default"))
    assert (patched["userName"], patched["nickName"]) == (ADELE, "Addy")
    assert (await get_user(entra, found["id"]))["nickName"] == "Addy"
    sonar = await entra.sonar.user_state(ADELE)
    assert sonar["active"] is True
    assert_saml_link(sonar, ADELE, entra_profile)
    group = await create_group(entra, DEVS)
    await add_member(entra, group["id"], found["id"])
    assert await sonar_members(entra, DEVS) == {ADELE}
    assert {user["login"] for user in await sonar_users(entra)} == {"admin", ADELE}


async def test_existing_user_is_found_by_its_saml_external_login(entra: Bridge) -> None:
    """A SonarQube user whose SAML external login is the `userName` (login differs) is found and patched,
    and keeps its login: only a change of `userName` renames."""
    assert (await entra.sonar.create_user("avance", name="Adele Vance")).status == 200
    link = {"login": "avance", "newExternalProvider": "saml", "newExternalIdentity": ADELE}
    assert (await entra.sonar.post("api/users/update_identity_provider", link)).status == 204
    uuid = (await entra.sonar.user_state("avance"))["id"]
    found = only(await find(entra, "Users", f'userName eq "{ADELE}"'))
    assert found["userName"] == ADELE
    patched = await patch_user(entra, found["id"], read_payload("entra/a5-add-nickname-flag"))
    assert (patched["userName"], patched["nickName"]) == (ADELE, "Addy")
    sonar = await sonar_user(entra, ADELE)
    assert (sonar["id"], sonar["login"]) == (uuid, "avance")
    assert (sonar["active"], sonar["externalProvider"], sonar["externalLogin"]) == (True, "saml", ADELE)
    assert len(await sonar_users(entra)) == 2


async def test_deactivated_saml_account_is_reused_not_duplicated(entra: Bridge, entra_profile: str) -> None:
    """A deactivated account SAML-linked to the `userName` under another login is reactivated by the POST.

    The `userName` filter searches active accounts only (two SonarQube calls for Entra's probes); the POST
    looks for such a dormant account, so SonarQube never holds two accounts for one person.
    """
    assert (await entra.sonar.create_user("avance", name="Adele Vance")).status == 200
    link = {"login": "avance", "newExternalProvider": "saml", "newExternalIdentity": ADELE}
    assert (await entra.sonar.post("api/users/update_identity_provider", link)).status == 204
    uuid = (await entra.sonar.user_state("avance"))["id"]
    assert (await entra.sonar.post("api/users/deactivate", {"login": "avance"})).status == 200
    assert await find(entra, "Users", f'userName eq "{ADELE}"') == []
    created = await create_user(entra)
    sonar = await entra.sonar.user_state("avance")
    assert (sonar["id"], sonar["active"]) == (uuid, True)
    assert_saml_link(sonar, ADELE, entra_profile)
    assert {user["login"] for user in await sonar_users(entra)} == {"admin", "avance"}
    assert (await get_user(entra, created["id"]))["userName"] == ADELE


async def test_post_of_a_deactivated_sonarqube_login_reactivates_it(
    entra: Bridge, entra_profile: str
) -> None:
    """POST for a login SonarQube holds deactivated: 201, the same account reactivated with Entra's values."""
    assert (await entra.sonar.create_user(ADELE, name="Old Name", email="old@contoso.example")).status == 200
    uuid = (await entra.sonar.user_state(ADELE))["id"]
    assert (await entra.sonar.post("api/users/deactivate", {"login": ADELE})).status == 200
    created = await create_user(entra)
    echoed(created, user_body(), "userName", "displayName", "emails", "active")
    sonar = await entra.sonar.user_state(ADELE)
    assert (sonar["id"], sonar["active"]) == (uuid, True)
    assert (sonar["name"], sonar["email"]) == ("Adele Vance", "Adele.Vance@Contoso.Example")
    assert_saml_link(sonar, ADELE, entra_profile)
