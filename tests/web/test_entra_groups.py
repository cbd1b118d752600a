"""Entra ID's group requests (docs/entra.md A1, A8-A14 and the group quirks) sent to the
bridge in both PATCH dialects, on every emulated SonarQube version, each result read back from SonarQube."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

import pytest

from tests.support import GROUP_SCHEMA, LIST_RESPONSE_SCHEMA, PATCH_OP_SCHEMA, read_payload
from tests.web.entra import (
    ADELE,
    EMPTY_LIST,
    MEGAN,
    create_group,
    create_user,
    dialects,
    entra_payload,
    expect,
    expect_error,
    expect_protection,
    find,
    only,
    sonar_group_names,
    sonar_members,
    sonar_user,
    sonar_writes,
    user_body,
)

if TYPE_CHECKING:
    from tests.web.conftest import Bridge

DEVS: Final = "Sonar Developers"
MEMBERSHIP_READS: Final = ("api/user_groups/users", "api/users/groups", "group-memberships")
"""SonarQube endpoints that list memberships, in v1 and v2."""


async def membership_calls(bridge: Bridge) -> list[dict[str, Any]]:
    """Every SonarQube call since the journal was cleared that reads or writes memberships."""
    journal = await bridge.sonar.control.journal()
    return [entry for entry in journal if any(part in entry["path"] for part in MEMBERSHIP_READS)]


async def patch_group(bridge: Bridge, scim_id: str, body: Any) -> None:
    """PATCH /Groups/{id} (A11-A13): 204 without a body."""
    expect(await bridge.patch(f"/Groups/{scim_id}", body), 204)


async def add_member(bridge: Bridge, group_id: str, user_id: str, dialect: str = "default") -> None:
    """One Entra member addition (A12): one member per PATCH."""
    await patch_group(bridge, group_id, entra_payload(f"entra/a12-add-member-{dialect}", u_adele=user_id))


async def group_with_members(bridge: Bridge, *user_names: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Sonar Developers with these users as members, created and added the way Entra does it."""
    group = await create_group(bridge, DEVS)
    users = [await create_user(bridge, user_body(user_name)) for user_name in user_names]
    for user in users:
        await add_member(bridge, group["id"], user["id"])
    return group, users


def member_ids(group: dict[str, Any]) -> set[str]:
    return {member["value"] for member in group.get("members", [])}


# --- A1, A8, A9: probe, match, retrieve ------------------------------------------------------------------


async def test_a1_group_probe_gets_exactly_an_empty_list(entra: Bridge) -> None:
    """The Groups probe (`excludedAttributes=members`, `displayName eq "<GUID>"`) gets A1's empty list."""
    await entra.sonar.control.clear_journal()
    reply = await entra.get("/Groups", params=read_payload("entra/a1-probe-groups-query"))
    assert expect(reply, 200) == EMPTY_LIST
    assert await sonar_writes(entra) == []
    assert await membership_calls(entra) == []


@pytest.mark.parametrize("value", [DEVS, DEVS.upper(), DEVS.lower()], ids=["exact", "upper", "lower"])
async def test_a8_match_group_by_display_name_without_members(entra: Bridge, value: str) -> None:
    """`displayName eq` matches in any case; with `excludedAttributes=members` it never touches members."""
    group, _ = await group_with_members(entra, ADELE)
    await entra.sonar.control.clear_journal()
    body = expect(
        await entra.get(
            "/Groups", params={"excludedAttributes": "members", "filter": f'displayName eq "{value}"'}
        ),
        200,
    )
    assert body["schemas"] == [LIST_RESPONSE_SCHEMA]
    assert body["totalResults"] == 1
    (found,) = body["Resources"]
    assert found["id"] == group["id"]
    assert found["displayName"] == DEVS
    assert found["externalId"] == group["externalId"]
    assert "members" not in found
    assert await membership_calls(entra) == []


async def test_a8_entra_match_query_payload(entra: Bridge) -> None:
    """The corpus' A8 query finds the group created by A10, without a `members` key."""
    group = await create_group(entra, DEVS)
    body = expect(await entra.get("/Groups", params=read_payload("entra/a8-match-group-query")), 200)
    assert [(found["id"], "members" in found) for found in body["Resources"]] == [(group["id"], False)]


async def test_a8_existing_sonarqube_group_is_adopted(entra: Bridge) -> None:
    """A group already in SonarQube is found by `displayName eq` with an id, and can then be PATCHed."""
    assert (await entra.sonar.post("api/user_groups/create", {"name": "Platform Team"})).status == 200
    found = await find(entra, "Groups", 'displayName eq "platform team"', excludedAttributes="members")
    assert [group["displayName"] for group in found] == ["Platform Team"]
    group_id = found[0]["id"]
    assert group_id
    fetched = expect(await entra.get(f"/Groups/{group_id}", params={"excludedAttributes": "members"}), 200)
    assert (fetched["id"], fetched["displayName"]) == (group_id, "Platform Team")
    adele = await create_user(entra)
    await add_member(entra, group_id, adele["id"])
    assert await sonar_members(entra, "Platform Team") == {ADELE}


async def test_a8_built_in_group_is_found(entra: Bridge) -> None:
    """SonarQube's own `sonar-administrators` is found by name, as SonarQube's Entra guide expects."""
    found = await find(entra, "Groups", 'displayName eq "sonar-administrators"', excludedAttributes="members")
    assert [group["displayName"] for group in found] == ["sonar-administrators"]
    assert "members" not in found[0]


async def test_a9_get_group_with_and_without_members(entra: Bridge) -> None:
    """With `excludedAttributes=members` GET has no `members` and reads none; a plain GET lists them."""
    group, (adele,) = await group_with_members(entra, ADELE)
    await entra.sonar.control.clear_journal()
    reply = await entra.get(f"/Groups/{group['id']}", params=read_payload("entra/a9-get-group-query"))
    body = expect(reply, 200)
    assert (body["id"], body["displayName"]) == (group["id"], DEVS)
    assert "members" not in body
    assert await membership_calls(entra) == []
    assert member_ids(expect(await entra.get(f"/Groups/{group['id']}"), 200)) == {adele["id"]}


# --- A10: create ----------------------------------------------------------------------------------------


async def test_a10_create_group_with_the_adscim_schema_urn(entra: Bridge) -> None:
    """POST /Groups with the ADSCIM URN: 201 with id, meta and the values sent; SonarQube has the group."""
    sent = read_payload("entra/a10-create-group")
    reply = await entra.post("/Groups", sent)
    created = expect(reply, 201)
    assert created["id"]
    assert GROUP_SCHEMA in created["schemas"]
    assert (created["displayName"], created["externalId"]) == (sent["displayName"], sent["externalId"])
    assert created.get("members", []) == []
    meta = created["meta"]
    assert meta["resourceType"] == "Group"
    assert meta["location"].endswith(f"{entra.settings.base_path}/Groups/{created['id']}")
    assert reply.headers.get("Location") == meta["location"]
    assert meta["version"].startswith('W/"')
    fetched = expect(
        await entra.get(f"/Groups/{created['id']}", params={"excludedAttributes": "members"}), 200
    )
    assert (fetched["displayName"], fetched["externalId"]) == (sent["displayName"], sent["externalId"])
    assert DEVS in await sonar_group_names(entra)
    assert await sonar_members(entra, DEVS) == set()


@pytest.mark.parametrize(
    ("display_name", "in_sonarqube"),
    [(DEVS, False), (DEVS.lower(), False), ("Platform Team", True)],
    ids=["same-name", "other-case", "existing-sonarqube-group"],
)
async def test_a10_duplicate_display_name_is_409_uniqueness(
    entra: Bridge, display_name: str, in_sonarqube: bool
) -> None:
    """A group name already taken (through SCIM in any case, or in SonarQube) is 409 `uniqueness`."""
    if in_sonarqube:
        assert (await entra.sonar.post("api/user_groups/create", {"name": display_name})).status == 200
    else:
        await create_group(entra, DEVS)
    before = await sonar_group_names(entra)
    body = read_payload("entra/a10-create-group") | {"displayName": display_name}
    expect_error(await entra.post("/Groups", body), 409, "uniqueness")
    assert await sonar_group_names(entra) == before


async def test_a10_reserved_group_name_is_refused(entra: Bridge) -> None:
    """`Anyone` is SonarQube's reserved virtual group: 400 with a SCIM error, nothing created."""
    body = read_payload("entra/a10-create-group") | {"displayName": "Anyone"}
    expect_error(await entra.post("/Groups", body), 400)
    assert "Anyone" not in await sonar_group_names(entra)


# --- A11, A12, A13: PATCH -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("entra/a11-rename-group-default", id="default"),
        pytest.param("entra/a11-rename-group-pathless-flag", id="flag-path-less"),
    ],
)
async def test_a11_rename_group(entra: Bridge, name: str) -> None:
    """A `displayName` replace: 204; the same SonarQube group is renamed and keeps its members."""
    group, _ = await group_with_members(entra, ADELE)
    uuid = (await entra.sonar.group_state(DEVS))["id"]
    await patch_group(entra, group["id"], entra_payload(name, g_devs=group["id"]))
    assert (await entra.sonar.group_state("Sonar Maintainers"))["id"] == uuid
    assert DEVS not in await sonar_group_names(entra)
    assert await sonar_members(entra, "Sonar Maintainers") == {ADELE}
    fetched = expect(await entra.get(f"/Groups/{group['id']}", params={"excludedAttributes": "members"}), 200)
    assert fetched["displayName"] == "Sonar Maintainers"
    assert await find(entra, "Groups", f'displayName eq "{DEVS}"', excludedAttributes="members") == []
    found = await find(entra, "Groups", 'displayName eq "Sonar Maintainers"', excludedAttributes="members")
    assert [entry["id"] for entry in found] == [group["id"]]


@pytest.mark.parametrize("dialect", ["default", "flag"])
async def test_a12_add_member(entra: Bridge, dialect: str) -> None:
    """One member per PATCH (`"$ref": null` by default, Q5): 204 and the SonarQube membership exists."""
    group = await create_group(entra, DEVS)
    adele = await create_user(entra)
    await add_member(entra, group["id"], adele["id"], dialect)
    assert await sonar_members(entra, DEVS) == {ADELE}
    assert member_ids(expect(await entra.get(f"/Groups/{group['id']}"), 200)) == {adele["id"]}


@pytest.mark.parametrize("dialect", ["default", "flag"])
async def test_a12_adding_a_present_member_succeeds(entra: Bridge, dialect: str) -> None:
    """Adding a member twice is 204 both times (SonarQube ≥ 10.4's "already a member" is success)."""
    group = await create_group(entra, DEVS)
    adele = await create_user(entra)
    await add_member(entra, group["id"], adele["id"], dialect)
    await add_member(entra, group["id"], adele["id"], dialect)
    assert await sonar_members(entra, DEVS) == {ADELE}


async def test_postman_member_as_a_bare_string(entra: Bridge) -> None:
    """Microsoft's Postman collection sends the member as a bare id string: it is read as one member."""
    group = await create_group(entra, DEVS)
    adele = await create_user(entra)
    await patch_group(
        entra, group["id"], entra_payload("entra/postman-add-member-bare-string", u_adele=adele["id"])
    )
    assert await sonar_members(entra, DEVS) == {ADELE}


async def test_a12_unknown_member_refuses_the_whole_patch(entra: Bridge) -> None:
    """An unknown member id: 400 before any SonarQube call, so the valid member is not added either."""
    group = await create_group(entra, DEVS)
    adele = await create_user(entra)
    body = {
        "schemas": [PATCH_OP_SCHEMA],
        "Operations": [
            {"op": "Add", "path": "members", "value": [{"$ref": None, "value": adele["id"]}]},
            {"op": "Add", "path": "members", "value": [{"$ref": None, "value": "7d9c0a51-no-such-user"}]},
        ],
    }
    await entra.sonar.control.clear_journal()
    detail = expect_error(await entra.patch(f"/Groups/{group['id']}", body), 400)
    assert "7d9c0a51-no-such-user" in detail
    assert await sonar_writes(entra) == []
    assert await sonar_members(entra, DEVS) == set()


@pytest.mark.parametrize("name", dialects("a13-remove-member"))
async def test_a13_remove_member_removes_only_that_member(entra: Bridge, name: str) -> None:
    """Default value-list removal and flag `members[value eq "id"]` remove that member, never the others."""
    group, (adele, _megan) = await group_with_members(entra, ADELE, MEGAN)
    await patch_group(entra, group["id"], entra_payload(name, u_adele=adele["id"]))
    assert await sonar_members(entra, DEVS) == {MEGAN}
    assert (await sonar_user(entra, ADELE))["active"] is True


@pytest.mark.parametrize("name", dialects("a13-remove-member"))
async def test_a13_removing_a_non_member_succeeds(entra: Bridge, name: str) -> None:
    """Removing a user who is not a member is 204 (idempotent, Entra replays) and changes nothing."""
    group, _ = await group_with_members(entra, MEGAN)
    adele = await create_user(entra)
    await patch_group(entra, group["id"], entra_payload(name, u_adele=adele["id"]))
    await patch_group(entra, group["id"], entra_payload(name, u_adele=adele["id"]))
    assert await sonar_members(entra, DEVS) == {MEGAN}


async def test_postman_remove_without_value_removes_all_members(entra: Bridge) -> None:
    """`{"op": "remove", "path": "members"}` without a value (RFC, Postman) empties the group."""
    group, _ = await group_with_members(entra, ADELE, MEGAN)
    await patch_group(entra, group["id"], read_payload("entra/postman-remove-all-members"))
    assert await sonar_members(entra, DEVS) == set()
    assert DEVS in await sonar_group_names(entra)


async def test_q18_five_concurrent_single_member_patches(entra: Bridge) -> None:
    """Five one-member PATCHes on one group at once (initial sync) are all 204 and all five are members."""
    group = await create_group(entra, DEVS)
    names = [f"member{n}.test@contoso.example" for n in range(5)]
    users = [await create_user(entra, user_body(user_name)) for user_name in names]
    bodies = [entra_payload("entra/a12-add-member-default", u_adele=user["id"]) for user in users]
    replies = await asyncio.gather(*(entra.patch(f"/Groups/{group['id']}", body) for body in bodies))
    assert [reply.status for reply in replies] == [204] * 5, replies
    assert await sonar_members(entra, DEVS) == set(names)
    assert member_ids(expect(await entra.get(f"/Groups/{group['id']}"), 200)) == {
        user["id"] for user in users
    }


async def test_q18_concurrent_removals(entra: Bridge) -> None:
    """Concurrent one-member removals (default value-list form) each remove exactly their member."""
    names = [f"member{n}.test@contoso.example" for n in range(5)]
    group, users = await group_with_members(entra, *names)
    bodies = [entra_payload("entra/a13-remove-member-default", u_adele=user["id"]) for user in users[:4]]
    replies = await asyncio.gather(*(entra.patch(f"/Groups/{group['id']}", body) for body in bodies))
    assert [reply.status for reply in replies] == [204] * 4, replies
    assert await sonar_members(entra, DEVS) == {names[4]}


# --- A14: delete ----------------------------------------------------------------------------------------


async def test_a14_delete_group(entra: Bridge) -> None:
    """DELETE /Groups/{id}: 204, the SonarQube group is gone, the members' accounts stay; later GET 404."""
    group, _ = await group_with_members(entra, ADELE)
    expect(await entra.delete(f"/Groups/{group['id']}"), 204)
    assert DEVS not in await sonar_group_names(entra)
    assert (await sonar_user(entra, ADELE))["active"] is True
    expect_error(await entra.get(f"/Groups/{group['id']}"), 404)
    assert await find(entra, "Groups", f'displayName eq "{DEVS}"', excludedAttributes="members") == []


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_a14_unknown_group_id_is_404(entra: Bridge, method: str) -> None:
    """An unknown group id answers 404 with a SCIM Error body."""
    body = read_payload("entra/a11-rename-group-default") if method == "PATCH" else None
    expect_error(await entra.request(method, "/Groups/5b0e9c3a-2d4f-4a6b-8c1e-7f9a0b3c5d2e", json=body), 404)


# --- protections ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("group_name", ["sonar-users", "sonar-administrators"])
@pytest.mark.parametrize("action", ["rename", "delete"])
async def test_protected_groups_are_never_renamed_or_deleted(
    entra: Bridge, group_name: str, action: str
) -> None:
    """`sonar-users`/`sonar-administrators` (found by filter) refuse rename and delete by a protection."""
    found = only(await find(entra, "Groups", f'displayName eq "{group_name}"', excludedAttributes="members"))
    members = await sonar_members(entra, group_name)
    await entra.sonar.control.clear_journal()
    if action == "rename":
        reply = await entra.patch(f"/Groups/{found['id']}", read_payload("entra/a11-rename-group-default"))
    else:
        reply = await entra.delete(f"/Groups/{found['id']}")
    expect_protection(reply, group_name)
    assert await sonar_writes(entra) == []
    assert group_name in await sonar_group_names(entra)
    assert "Sonar Maintainers" not in await sonar_group_names(entra)
    assert await sonar_members(entra, group_name) == members
