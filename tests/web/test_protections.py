"""No request touches an account it must not (scim_bridge/provisioning/protections.py): the token's owner,
`protected_logins` and local accounts with a password are never adopted, linked, deactivated, renamed,
deleted or removed from `sonar-administrators`, reads included; SAML accounts are adopted whatever the case
of their login. Each finding of the reliability review is reproduced here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.support import PATCH_OP_SCHEMA, read_payload
from tests.web.entra import (
    ADELE,
    assert_saml_link,
    create_user,
    expect,
    expect_error,
    expect_protection,
    find,
    get_user,
    only,
    sonar_users,
    sonar_writes,
    user_body,
)

if TYPE_CHECKING:
    from tests.web.conftest import Bridge, BridgeFactory


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


async def account(bridge: Bridge, login: str) -> dict[str, Any]:
    """SonarQube's account, but for the time it last authenticated (the token in use is admin's own)."""
    state = await bridge.sonar.user_state(login)
    state.pop("lastConnectionDate", None)
    return state


async def test_a_read_never_takes_over_the_admin_account(entra: Bridge, entra_profile: str) -> None:
    """Finding 1: `userName eq "admin"` (and GET by its uuid) finds nothing and writes nothing: `admin` keeps
    its password and no SAML identity can sign in as it; POST userName admin is 409, naming the protection."""
    before = await account(entra, "admin")
    await entra.sonar.control.clear_journal()

    assert await find(entra, "Users", 'userName eq "admin"') == []
    if entra_profile != "9.9":
        assert (await entra.get(f"/Users/{before['id']}")).status == 404
    detail = expect_error(await entra.post("/Users", user_body("admin", emails=None)), 409, "uniqueness")

    assert "protected" in detail
    assert await sonar_writes(entra) == []
    assert await account(entra, "admin") == before


async def test_configured_protected_login_is_never_adopted(
    bridge_factory: BridgeFactory, entra_profile: str
) -> None:
    """A login in `protected_logins` is invisible to SCIM reads and refused on create; SonarQube unchanged."""
    bridge = await bridge_factory(entra_profile, protected_logins=["admin", "svc-ci"])
    assert (await bridge.sonar.create_user("svc-ci", name="CI service")).status == 200
    before = await account(bridge, "svc-ci")
    assert await find(bridge, "Users", 'userName eq "svc-ci"') == []
    expect_error(await bridge.post("/Users", user_body("svc-ci", emails=None)), 409, "uniqueness")
    assert await account(bridge, "svc-ci") == before


async def test_a_local_account_is_not_taken_over(entra: Bridge) -> None:
    """An account with a password is not adopted by a read, and a POST for it is 409 naming the account and
    `adopt_local_accounts`; nothing changes."""
    assert (await entra.sonar.create_user(ADELE, local=True, name="Adele")).status == 200
    before = await account(entra, ADELE)
    assert await find(entra, "Users", f'userName eq "{ADELE}"') == []
    detail = expect_error(await entra.post("/Users", user_body()), 409, "uniqueness")
    assert ADELE in detail
    assert "adopt_local_accounts" in detail
    assert await account(entra, ADELE) == before


async def test_local_accounts_are_taken_over_when_asked(bridge_factory: BridgeFactory) -> None:
    """With `adopt_local_accounts`, the read adopts the local account and links it to SAML."""
    bridge = await bridge_factory("2025.6", adopt_local_accounts=True)
    assert (await bridge.sonar.create_user(ADELE, local=True, name="Adele")).status == 200
    found = only(await find(bridge, "Users", f'userName eq "{ADELE}"'))
    assert found["id"] == (await bridge.sonar.user_state(ADELE))["id"]
    assert_saml_link(await bridge.sonar.user_state(ADELE), ADELE, "2025.6")


async def test_a_post_takes_over_an_account_made_for_saml(entra: Bridge, entra_profile: str) -> None:
    """POST for a login SonarQube already holds, active and created through the Web API for SAML sign-in (or
    by an earlier attempt of the same POST whose answer was lost): 201, that same account, linked."""
    assert (await entra.sonar.create_user(ADELE, name="Adele", email=ADELE)).status == 200
    uuid = (await entra.sonar.user_state(ADELE))["id"]
    created = await create_user(entra)
    sonar = await entra.sonar.user_state(ADELE)
    assert (sonar["id"], sonar["active"]) == (uuid, True)
    assert_saml_link(sonar, ADELE, entra_profile)
    assert (await get_user(entra, created["id"]))["userName"] == ADELE


async def test_adoption_ignores_the_case_of_the_login(entra: Bridge, entra_profile: str) -> None:
    """Finding 10: Entra's `Adele.Vance@…` matches SonarQube's SAML account `adele.vance@…` instead of
    getting a second account."""
    lower, upn = ADELE, "Adele.Vance@contoso.example"
    assert (await entra.sonar.create_user(lower, name="Adele Vance")).status == 200
    link = {"login": lower, "newExternalProvider": "saml", "newExternalIdentity": lower}
    assert (await entra.sonar.post("api/users/update_identity_provider", link)).status == 204
    uuid = (await entra.sonar.user_state(lower))["id"]

    found = only(await find(entra, "Users", f'userName eq "{upn}"'))
    expect_error(await entra.post("/Users", user_body(upn)), 409, "uniqueness")  # Entra matched: no create

    assert {user["login"] for user in await sonar_users(entra)} == {"admin", lower}
    assert (await entra.sonar.user_state(lower))["id"] == uuid
    assert (await get_user(entra, found["id"]))["userName"] == upn


async def test_the_token_owner_is_never_deactivated_or_renamed(
    bridge_factory: BridgeFactory, entra_profile: str
) -> None:
    """A user provisioned through SCIM whose token becomes the one in use: disabling, renaming or deleting
    it is refused, naming the protection, and SonarQube is not called."""
    bridge = await bridge_factory(entra_profile, protected_logins=[])
    created = await create_user(bridge, user_body("entra-sync@contoso.example"))
    login = (await bridge.sonar.control.state())["users"][-1]["login"]
    grant = {"login": login, "permission": "admin"}
    assert (await bridge.sonar.post("api/permissions/add_user", grant)).status == 204
    bridge.token = await bridge.sonar.user_token(login)
    await bridge.sonar.control.clear_journal()

    disable = read_payload("entra/a6-disable-default")
    expect_protection(await bridge.patch(f"/Users/{created['id']}", disable), login)
    rename = patch({"op": "Replace", "path": "userName", "value": "root@contoso.example"})
    expect_protection(await bridge.patch(f"/Users/{created['id']}", rename), login)
    expect_protection(await bridge.delete(f"/Users/{created['id']}"), login)
    assert await sonar_writes(bridge) == []
    assert (await bridge.sonar.user_state(login))["active"] is True


async def test_the_token_owner_stays_a_sonarqube_administrator(
    bridge_factory: BridgeFactory, entra_profile: str
) -> None:
    """Finding 6: a group PATCH removing the token's owner from `sonar-administrators` is refused before any
    SonarQube call; removing a provisioned member from it works."""
    bridge = await bridge_factory(entra_profile, protected_logins=[])
    owner = await create_user(bridge, user_body("entra-sync@contoso.example"))
    other = await create_user(bridge)
    admins = only(await find(bridge, "Groups", 'displayName eq "sonar-administrators"'))
    add = {"op": "Add", "path": "members", "value": [{"value": owner["id"]}, {"value": other["id"]}]}
    expect(await bridge.patch(f"/Groups/{admins['id']}", patch(add)), 204)
    login = next(
        u["login"]
        for u in (await bridge.sonar.control.state())["users"]
        if u["login"].startswith("entra-sync")
    )
    bridge.token = await bridge.sonar.user_token(login)
    await bridge.sonar.control.clear_journal()

    remove = {"op": "Remove", "path": "members", "value": [{"value": owner["id"]}]}
    expect_protection(await bridge.patch(f"/Groups/{admins['id']}", patch(remove)), login)
    assert await sonar_writes(bridge) == []
    remove_other = {"op": "Remove", "path": "members", "value": [{"value": other["id"]}]}
    expect(await bridge.patch(f"/Groups/{admins['id']}", patch(remove_other)), 204)
