"""`scim-bridge reconcile`: what changed in SonarQube behind the bridge's back is found (a dry run leaves it)
and put right, per drift kind, on SonarQube 9.9 (v1) and 2025.6 (v2); protections are skipped; a lost store
is rebuilt where SonarQube has uuids; the command prints and exits 0, 1 or 2; `serve`'s periodic runner
outlives a failed run."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from scim_bridge.app import create_app
from scim_bridge.commands.reconcile import run_reconcile
from scim_bridge.config import ConfigError
from scim_bridge.provisioning.locks import KeyedLocks, id_key
from scim_bridge.provisioning.reconcile import (
    Finding,
    reconcile,
    reconcile_periodically,
    succeeded,
    summary,
)
from scim_bridge.sonarqube import SonarQubeConnection
from scim_bridge.store import open_store
from tests.support import ADMIN_TOKEN, CURRENT_PROFILE, ONE_PROFILE_PER_API, PATCH_OP_SCHEMA, V1_PROFILE
from tests.web.entra import (
    ADELE,
    MEGAN,
    NESTOR,
    create_group,
    create_user,
    expect,
    find,
    only,
    patch_user,
    sonar_members,
    sonar_user,
    user_body,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from aiohttp.test_utils import TestServer

    from scim_bridge.config import BridgeSettings
    from scim_bridge.store import StateStore
    from scim_bridge.store.records import AuditEvent
    from tests.web.conftest import Bridge, BridgeFactory

DEVS = "Developers"
ADMINS = "sonar-administrators"


async def _no_sleep(_seconds: float) -> None:
    """Retries never wait for real."""


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


async def provision(bridge: Bridge) -> dict[str, str]:
    """What Entra provisions: Adele, Megan and Nestor; Developers with Adele and Megan. Their SCIM ids."""
    ids = {name: (await create_user(bridge, user_body(name)))["id"] for name in (ADELE, MEGAN, NESTOR)}
    ids[DEVS] = (await create_group(bridge, DEVS))["id"]
    members = [{"value": ids[ADELE]}, {"value": ids[MEGAN]}]
    add = {"op": "Add", "path": "members", "value": members}
    expect(await bridge.patch(f"/Groups/{ids[DEVS]}", patch(add)), 204)
    return ids


async def run(
    bridge: Bridge,
    *,
    dry_run: bool,
    store: StateStore | None = None,
    settings: BridgeSettings | None = None,
    actor: str = "admin",
) -> list[Finding]:
    """One reconcile run against the bridge's SonarQube and (unless another is given) its store."""
    settings = settings or bridge.settings
    heard: list[Finding] = []
    async with await SonarQubeConnection.open(settings, sleep=_no_sleep) as connection:
        findings = await reconcile(
            store or bridge.store,
            connection.client(ADMIN_TOKEN),
            settings,
            actor=actor,
            dry_run=dry_run,
            on_finding=heard.append,
        )
    assert heard == findings
    return findings


async def settled_run(bridge: Bridge) -> None:
    """What Entra provisioned and SonarQube agree: a run finds nothing."""
    assert await run(bridge, dry_run=False) == []


def kinds(findings: list[Finding]) -> list[tuple[str, str | None, str | None, str]]:
    return [(finding.kind, finding.sonar_key, finding.member, finding.outcome) for finding in findings]


async def sonar_ok(bridge: Bridge, path: str, data: dict[str, str]) -> None:
    """A change made in SonarQube itself (its UI calls the same web services)."""
    reply = await bridge.sonar.post(path, data)
    assert reply.status in {200, 204}, reply


async def audit_actions(bridge: Bridge) -> list[tuple[str, str, str | None]]:
    """Reconcile's audit events, oldest first."""
    trail = await bridge.store.audit_trail(limit=1000)
    return [
        (event.action, event.outcome, event.actor)
        for event in reversed(trail)
        if event.action.startswith("reconcile_")
    ]


@pytest.fixture(params=ONE_PROFILE_PER_API, ids=lambda profile: f"sq{profile}")
async def provisioned(
    request: pytest.FixtureRequest, bridge_factory: BridgeFactory
) -> tuple[Bridge, dict[str, str]]:
    """A bridge on 9.9 (v1) and on 2025.6 (v2), with what Entra provisioned, and SonarQube in agreement."""
    bridge = await bridge_factory(request.param)
    ids = await provision(bridge)
    await settled_run(bridge)
    return bridge, ids


# --- nothing to do, and at what cost ----------------------------------------------------------------------


async def test_a_store_with_records_leaves_what_entra_never_sent_alone(bridge_factory: BridgeFactory) -> None:
    """Only a store without records is rebuilt: beside provisioned records, a group made in SonarQube's UI,
    `sonar-administrators` and an account that signed in through SAML by itself are none of Entra's."""
    bridge = await bridge_factory(CURRENT_PROFILE)
    await provision(bridge)
    await sonar_ok(bridge, "api/user_groups/create", {"name": "made-in-the-ui"})
    await sonar_ok(bridge, "api/users/create", {"login": "jit", "name": "Signed In", "local": "false"})
    link = {"login": "jit", "newExternalProvider": "saml", "newExternalIdentity": "jit@contoso.example"}
    await sonar_ok(bridge, "api/users/update_identity_provider", link)
    assert await run(bridge, dry_run=False) == []
    assert await bridge.store.find_group(display_name="made-in-the-ui") is None


@pytest.mark.parametrize("profile", ONE_PROFILE_PER_API)
async def test_a_group_entra_matched_keeps_its_provisioned_members(
    bridge_factory: BridgeFactory, profile: str
) -> None:
    """A group Entra matches by name is recorded with the provisioned users SonarQube already has in it, so
    reconcile never takes them away; members no record holds stay SonarQube's own."""
    bridge = await bridge_factory(profile)
    adele = (await create_user(bridge, user_body(ADELE)))["id"]
    await sonar_ok(bridge, "api/user_groups/create", {"name": "Platform"})
    login = (await sonar_user(bridge, ADELE))["login"]
    await sonar_ok(bridge, "api/user_groups/add_user", {"name": "Platform", "login": login})
    await sonar_ok(bridge, "api/user_groups/add_user", {"name": "Platform", "login": "admin"})

    group = only(await find(bridge, "Groups", 'displayName eq "Platform"'))

    assert await bridge.store.members_of(group["id"]) == {adele}
    assert await run(bridge, dry_run=False) == []
    assert await sonar_members(bridge, "Platform") == {login, "admin"}


async def test_one_listing_per_group_and_no_call_per_user(provisioned: tuple[Bridge, dict[str, str]]) -> None:
    """Users: two listings; groups: one; members: one listing per managed group; no user looked up alone."""
    bridge, _ = provisioned
    await bridge.sonar.control.clear_journal()
    assert await run(bridge, dry_run=True) == []
    journal = await bridge.sonar.control.journal()
    paths = [entry["path"] for entry in journal if entry["path"] != "/api/system/status"]  # the connection's
    managed_groups = (await bridge.store.list_groups(offset=0, limit=100))[1]
    if bridge.sonar.profile == V1_PROFILE:
        expected = {
            "/api/users/search": 2,
            "/api/user_groups/search": 1,
            "/api/user_groups/users": managed_groups,
        }
    else:
        # members are listed by `users?groupId=`: one per group, besides the two user listings
        expected = {"/api/v2/users-management/users": 2 + managed_groups, "/api/v2/authorizations/groups": 1}
    expected |= {"/api/settings/values": 1}
    assert {path: paths.count(path) for path in set(paths)} == expected


# --- memberships --------------------------------------------------------------------------------------------


async def test_a_membership_removed_in_sonarqube_is_added_back(
    provisioned: tuple[Bridge, dict[str, str]],
) -> None:
    """A membership removed in SonarQube: found by a dry run (nothing changed), added back by a run."""
    bridge, _ = provisioned
    await sonar_ok(bridge, "api/user_groups/remove_user", {"name": DEVS, "login": ADELE})
    assert kinds(await run(bridge, dry_run=True)) == [("member_missing", DEVS, ADELE, "would_repair")]
    assert await sonar_members(bridge, DEVS) == {MEGAN}
    assert await audit_actions(bridge) == []

    assert kinds(await run(bridge, dry_run=False)) == [("member_missing", DEVS, ADELE, "repaired")]
    assert await sonar_members(bridge, DEVS) == {ADELE, MEGAN}
    assert await audit_actions(bridge) == [("reconcile_member_added", "ok", "admin")]
    assert await run(bridge, dry_run=False) == []


async def test_a_membership_added_in_sonarqube_is_removed(provisioned: tuple[Bridge, dict[str, str]]) -> None:
    """A provisioned user added in SonarQube is taken out; a local account added there is left, unreported."""
    bridge, _ = provisioned
    await bridge.sonar.create_user("ci-bot", local=True)
    for login in (NESTOR, "ci-bot"):
        await sonar_ok(bridge, "api/user_groups/add_user", {"name": DEVS, "login": login})
    assert kinds(await run(bridge, dry_run=True)) == [("member_unwanted", DEVS, NESTOR, "would_repair")]
    assert await sonar_members(bridge, DEVS) == {ADELE, MEGAN, NESTOR, "ci-bot"}

    assert kinds(await run(bridge, dry_run=False)) == [("member_unwanted", DEVS, NESTOR, "repaired")]
    assert await sonar_members(bridge, DEVS) == {ADELE, MEGAN, "ci-bot"}
    assert await audit_actions(bridge) == [("reconcile_member_removed", "ok", "admin")]


# --- users --------------------------------------------------------------------------------------------------


async def test_a_user_reactivated_in_sonarqube_is_deactivated(
    provisioned: tuple[Bridge, dict[str, str]],
) -> None:
    """Entra disabled Megan; SonarQube reactivated her (as a SAML sign-in would): she is deactivated again."""
    bridge, ids = provisioned
    await patch_user(bridge, ids[MEGAN], patch({"op": "Replace", "path": "active", "value": False}))
    await sonar_ok(bridge, "api/users/create", {"login": MEGAN, "name": "Megan", "local": "false"})
    assert kinds(await run(bridge, dry_run=True)) == [("user_reactivated", MEGAN, None, "would_repair")]
    assert (await sonar_user(bridge, MEGAN))["active"] is True

    assert kinds(await run(bridge, dry_run=False)) == [("user_reactivated", MEGAN, None, "repaired")]
    assert (await sonar_user(bridge, MEGAN))["active"] is False
    assert await audit_actions(bridge) == [("reconcile_user_deactivated", "ok", "admin")]
    assert await run(bridge, dry_run=False) == []


async def test_a_user_deactivated_in_sonarqube_is_reactivated_linked_and_regrouped(
    provisioned: tuple[Bridge, dict[str, str]],
) -> None:
    """Deactivated in SonarQube, active for Entra: reactivated, linked, regrouped, its record settled."""
    bridge, ids = provisioned
    record = await bridge.store.get_user(ids[ADELE])
    assert record is not None
    await bridge.store.update_user(replace(record, settled=False), expected_version=record.version)
    await sonar_ok(bridge, "api/users/deactivate", {"login": ADELE})
    assert kinds(await run(bridge, dry_run=True)) == [("user_deactivated", ADELE, None, "would_repair")]
    assert (await sonar_user(bridge, ADELE))["active"] is False

    assert kinds(await run(bridge, dry_run=False)) == [("user_deactivated", ADELE, None, "repaired")]
    account = await sonar_user(bridge, ADELE)
    assert (account["active"], account["externalProvider"], account["externalLogin"]) == (True, "saml", ADELE)
    assert await sonar_members(bridge, DEVS) == {ADELE, MEGAN}
    settled = await bridge.store.get_user(ids[ADELE])
    assert settled is not None
    assert (settled.settled, settled.version) == (True, record.version)
    assert await run(bridge, dry_run=False) == []


async def test_a_lost_saml_link_is_set_again(provisioned: tuple[Bridge, dict[str, str]]) -> None:
    """Adele's SAML external login edited away in SonarQube: she is linked as her userName again."""
    bridge, _ = provisioned
    edit = {
        "login": ADELE,
        "newExternalProvider": "saml",
        "newExternalIdentity": "someone.else@contoso.example",
    }
    await sonar_ok(bridge, "api/users/update_identity_provider", edit)
    assert kinds(await run(bridge, dry_run=True)) == [("saml_link_lost", ADELE, None, "would_repair")]
    assert (await sonar_user(bridge, ADELE))["externalLogin"] == "someone.else@contoso.example"

    assert kinds(await run(bridge, dry_run=False)) == [("saml_link_lost", ADELE, None, "repaired")]
    assert (await sonar_user(bridge, ADELE))["externalLogin"] == ADELE
    assert await audit_actions(bridge) == [("reconcile_user_linked", "ok", "admin")]


async def test_an_account_gone_from_sonarqube_is_reported_only(
    provisioned: tuple[Bridge, dict[str, str]],
) -> None:
    """Accounts gone from SonarQube are reported, not recreated (the run fails); the group is recreated."""
    bridge, _ = provisioned
    await bridge.sonar.control.reset()
    findings = await run(bridge, dry_run=False)
    gone = {finding.sonar_key for finding in findings if finding.kind == "user_gone"}
    assert gone == {ADELE, MEGAN, NESTOR}
    assert {finding.outcome for finding in findings if finding.kind == "user_gone"} == {"unrepairable"}
    recreated = [finding for finding in findings if finding.sonar_key == DEVS]
    assert [(finding.kind, finding.outcome) for finding in recreated] == [
        ("group_missing" if bridge.sonar.profile == V1_PROFILE else "group_deleted", "repaired")
    ]
    assert await sonar_members(bridge, DEVS) == set()
    assert not succeeded(findings)


async def test_an_account_anonymised_in_sonarqube_is_left_alone(
    provisioned: tuple[Bridge, dict[str, str]],
) -> None:
    """An anonymised account is never reactivated: v2 sees its uuid under another login, v1 sees it gone."""
    bridge, _ = provisioned
    await sonar_ok(bridge, "api/users/deactivate", {"login": ADELE, "anonymize": "true"})
    (finding,) = await run(bridge, dry_run=False)
    kind = "user_gone" if bridge.sonar.profile == V1_PROFILE else "user_login_changed"
    assert (finding.kind, finding.sonar_key, finding.outcome) == (kind, ADELE, "unrepairable")
    users = (await bridge.sonar.control.state())["users"]
    assert [user["active"] for user in users if user["login"].startswith("sq-removed-")] == [False]


async def test_a_record_entra_changes_during_the_run_waits_for_the_next(
    bridge_factory: BridgeFactory,
) -> None:
    """Inside serve a comparison holds the record's lock; a record Entra changed meanwhile is left alone."""
    bridge = await bridge_factory(CURRENT_PROFILE)
    ids = await provision(bridge)
    await settled_run(bridge)
    await sonar_ok(bridge, "api/users/deactivate", {"login": ADELE})
    locks, listed = KeyedLocks(), asyncio.Event()

    def progress(done: int, _total: int) -> None:
        if done == 0:  # SonarQube and the store have been read; the comparisons begin
            listed.set()

    async with await SonarQubeConnection.open(bridge.settings, sleep=_no_sleep) as connection:
        async with locks.hold(id_key("User", ids[ADELE])):  # Entra's request on Adele is under way
            running = asyncio.create_task(
                reconcile(
                    bridge.store,
                    connection.client(ADMIN_TOKEN),
                    bridge.settings,
                    actor="admin",
                    dry_run=False,
                    on_finding=lambda _finding: None,
                    progress=progress,
                    locks=locks,
                )
            )
            await listed.wait()
            record = await bridge.store.get_user(ids[ADELE])
            assert record is not None
            changed = replace(record, version=record.version + 1)
            await bridge.store.update_user(changed, expected_version=record.version)
        findings = await running
    assert ADELE not in {finding.sonar_key for finding in findings}
    assert (await sonar_user(bridge, ADELE))["active"] is False
    assert len(locks) == 0
    assert kinds(await run(bridge, dry_run=True)) == [("user_deactivated", ADELE, None, "would_repair")]


# --- groups -------------------------------------------------------------------------------------------------


async def test_a_group_renamed_in_sonarqube_gets_its_name_back(
    provisioned: tuple[Bridge, dict[str, str]],
) -> None:
    """A renamed group gets its name back: v2 renames it (found by uuid), v1 recreates it with its members."""
    bridge, _ = provisioned
    await sonar_ok(bridge, "api/user_groups/update", {"currentName": DEVS, "name": "Devs (renamed)"})
    kind = "group_missing" if bridge.sonar.profile == V1_PROFILE else "group_renamed"
    dry = await run(bridge, dry_run=True)
    assert kinds(dry)[0] == (kind, DEVS, None, "would_repair")
    assert DEVS not in {group["name"] for group in (await bridge.sonar.control.state())["groups"]}

    assert kinds(await run(bridge, dry_run=False))[0] == (kind, DEVS, None, "repaired")
    assert await sonar_members(bridge, DEVS) == {ADELE, MEGAN}
    assert await run(bridge, dry_run=False) == []


async def test_a_group_deleted_in_sonarqube_is_recreated(provisioned: tuple[Bridge, dict[str, str]]) -> None:
    """A deleted group is recreated with its members; on v2 its record takes the new uuid; its id answers."""
    bridge, ids = provisioned
    before = await bridge.store.get_group(ids[DEVS])
    await sonar_ok(bridge, "api/user_groups/delete", {"name": DEVS})
    kind = "group_missing" if bridge.sonar.profile == V1_PROFILE else "group_deleted"
    would = [(kind, DEVS, None, "would_repair")] + [
        ("member_missing", DEVS, login, "would_repair") for login in (ADELE, MEGAN)
    ]
    assert sorted(kinds(await run(bridge, dry_run=True))) == sorted(would)

    findings = await run(bridge, dry_run=False)
    assert sorted(kinds(findings)) == sorted((k, key, member, "repaired") for k, key, member, _ in would)
    assert await sonar_members(bridge, DEVS) == {ADELE, MEGAN}
    after = await bridge.store.get_group(ids[DEVS])
    assert before is not None
    assert after is not None
    new_uuid = (await bridge.sonar.group_state(DEVS))["id"]
    assert after.sonar_id == (None if bridge.sonar.profile == V1_PROFILE else new_uuid)
    assert after.version == before.version
    assert expect(await bridge.get(f"/Groups/{ids[DEVS]}"), 200)["displayName"] == DEVS
    assert ("reconcile_group_recreated", "ok", "admin") in await audit_actions(bridge)


# --- protections and failures -------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["protected_logins", "actor"])
async def test_a_protected_login_is_skipped(bridge_factory: BridgeFactory, how: str) -> None:
    """A protected login's drift (protected_logins, the token's owner) is skipped; SonarQube stays as is."""
    bridge = await bridge_factory(CURRENT_PROFILE)
    await provision(bridge)
    await settled_run(bridge)
    await sonar_ok(bridge, "api/users/deactivate", {"login": MEGAN})
    settings, actor = bridge.settings, "admin"
    if how == "actor":
        actor = MEGAN
    else:
        settings = settings.model_copy(update={"protected_logins": ["admin", MEGAN]})
    (finding,) = await run(bridge, dry_run=False, settings=settings, actor=actor)
    assert (finding.kind, finding.outcome) == ("user_deactivated", "skipped")
    assert finding.reason is not None
    assert "protected" in finding.reason
    assert (await sonar_user(bridge, MEGAN))["active"] is False
    assert succeeded([finding])


async def test_sonar_administrators_keeps_its_name_and_its_own_members(bridge_factory: BridgeFactory) -> None:
    """sonar-administrators is never renamed back; provisioned members added by hand go, `admin` stays."""
    bridge = await bridge_factory(CURRENT_PROFILE)
    await provision(bridge)
    only(await find(bridge, "Groups", f'displayName eq "{ADMINS}"'))
    await settled_run(bridge)
    await sonar_ok(bridge, "api/user_groups/add_user", {"name": ADMINS, "login": NESTOR})
    await sonar_ok(bridge, "api/user_groups/update", {"currentName": ADMINS, "name": "Admins"})
    findings = await run(bridge, dry_run=False)
    assert sorted(kinds(findings)) == [
        ("group_renamed", ADMINS, None, "skipped"),
        ("member_unwanted", ADMINS, NESTOR, "repaired"),
    ]
    assert await sonar_members(bridge, "Admins") == {"admin"}


async def test_a_failed_repair_is_reported_and_the_others_go_on(bridge_factory: BridgeFactory) -> None:
    """A repair SonarQube refuses is reported and audited as failed; the other repairs still happen."""
    bridge = await bridge_factory(CURRENT_PROFILE, saml_link="on")
    await provision(bridge)
    await settled_run(bridge)
    edit = {
        "login": ADELE,
        "newExternalProvider": "saml",
        "newExternalIdentity": "someone.else@contoso.example",
    }
    await sonar_ok(bridge, "api/users/update_identity_provider", edit)
    await sonar_ok(bridge, "api/settings/set", {"key": "sonar.auth.saml.enabled", "value": "false"})
    await sonar_ok(bridge, "api/user_groups/remove_user", {"name": DEVS, "login": MEGAN})
    findings = await run(bridge, dry_run=False)
    assert kinds(findings) == [
        ("saml_link_lost", ADELE, None, "failed"),
        ("member_missing", DEVS, MEGAN, "repaired"),
    ]
    assert findings[0].reason is not None
    assert "saml" in findings[0].reason
    assert await sonar_members(bridge, DEVS) == {ADELE, MEGAN}
    assert await audit_actions(bridge) == [
        ("reconcile_user_linked", "failed", "admin"),
        ("reconcile_member_added", "ok", "admin"),
    ]
    assert not succeeded(findings)
    assert summary(findings) | {"repaired": 1, "failed": 1} == summary(findings)


# --- a lost store -------------------------------------------------------------------------------------------


async def test_a_lost_store_is_rebuilt_where_sonarqube_has_uuids(
    bridge_factory: BridgeFactory, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    """v2: a lost store is rebuilt (a dry run writes nothing): Entra's old ids answer 200, with members."""
    bridge = await bridge_factory(CURRENT_PROFILE)
    ids = await provision(bridge)
    lost = await open_store("sqlite://:memory:")
    try:
        dry = await run(bridge, dry_run=True, store=lost)
        expected = [("user_unrecorded", login, None, "would_repair") for login in (ADELE, MEGAN, NESTOR)] + [
            ("group_unrecorded", DEVS, None, "would_repair"),
            ("group_unrecorded", ADMINS, None, "would_repair"),
        ]
        assert kinds(dry) == expected
        assert (await lost.list_users(offset=0, limit=10))[1] == 0

        rebuilt = await run(bridge, dry_run=False, store=lost)
        assert kinds(rebuilt) == [(kind, key, member, "repaired") for kind, key, member, _ in expected]
        assert await run(bridge, dry_run=False, store=lost) == []
        async with await SonarQubeConnection.open(bridge.settings, sleep=_no_sleep) as connection:
            server = await aiohttp_server(create_app(bridge.settings, sonar=connection, store=lost))
            again = bridge.__class__(server, bridge.sonar, bridge.http, bridge.settings, lost)
            adele = expect(await again.get(f"/Users/{ids[ADELE]}"), 200)
            assert (adele["userName"], adele["active"]) == (ADELE, True)
            group = expect(await again.get(f"/Groups/{ids[DEVS]}"), 200)
            assert {member["value"] for member in group["members"]} == {ids[ADELE], ids[MEGAN]}
            await server.close()
    finally:
        await lost.close()


@pytest.mark.parametrize("profile", ONE_PROFILE_PER_API, ids=lambda profile: f"sq{profile}")
async def test_a_user_entra_deleted_is_not_rebuilt(bridge_factory: BridgeFactory, profile: str) -> None:
    """A user Entra deleted (deactivated, forgotten) is neither recorded again nor reported as unrecorded."""
    bridge = await bridge_factory(profile)
    ids = await provision(bridge)
    expect(await bridge.delete(f"/Users/{ids[MEGAN]}"), 204)
    findings = await run(bridge, dry_run=False)
    assert [finding for finding in findings if MEGAN in f"{finding.sonar_key} {finding.found}"] == []
    expect(await bridge.get(f"/Users/{ids[MEGAN]}"), 404)


async def test_v1_says_a_lost_store_cannot_be_rebuilt(bridge_factory: BridgeFactory) -> None:
    """v1: beside a lost store, one unrepairable finding says the ids cannot be rebuilt; nothing written."""
    bridge = await bridge_factory(V1_PROFILE)
    await provision(bridge)
    lost = await open_store("sqlite://:memory:")
    try:
        (finding,) = await run(bridge, dry_run=False, store=lost)
        assert (finding.kind, finding.outcome) == ("ids_not_rebuildable", "unrepairable")
        assert "3 SAML-linked" in finding.found
        assert ADELE in finding.found
        assert "9.9" in finding.action
        assert (await lost.list_users(offset=0, limit=10))[1] == 0
    finally:
        await lost.close()


# --- the command --------------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    """stderr as a terminal: the progress bar is drawn."""

    def isatty(self) -> bool:
        return True


async def command(
    settings: BridgeSettings, *, dry_run: bool = False, as_json: bool = False
) -> tuple[int, str, str]:
    """`scim-bridge reconcile` as the CLI runs it: exit code, stdout, stderr."""
    out, err = io.StringIO(), Terminal()
    with capture_logs():  # the command's own output only: its logs go to stderr when run as a command
        code = await run_reconcile(settings, dry_run=dry_run, as_json=as_json, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


async def file_bridge(
    bridge_factory: BridgeFactory, tmp_path: Path, profile: str = CURRENT_PROFILE
) -> Bridge:
    bridge = await bridge_factory(profile, store=f"sqlite:///{tmp_path / 'state.db'}")
    await provision(bridge)
    await settled_run(bridge)
    return bridge


def command_settings(bridge: Bridge, token: str = ADMIN_TOKEN) -> BridgeSettings:
    return bridge.settings.model_copy(update={"sonar_token": SecretStr(token)})


async def test_the_command_prints_each_finding_and_a_summary(
    bridge_factory: BridgeFactory, tmp_path: Path
) -> None:
    """Dry run beside the bridge: exit 0, what it would do; a real run needs the store alone, then repairs."""
    bridge = await file_bridge(bridge_factory, tmp_path)
    await sonar_ok(bridge, "api/user_groups/remove_user", {"name": DEVS, "login": ADELE})
    settings = command_settings(bridge)

    code, out, err = await command(settings, dry_run=True)
    assert code == 0
    assert f"[would repair] member_missing: group '{DEVS}'" in out
    assert f"'{ADELE}' is not a member in SonarQube" in out
    assert out.rstrip().endswith("1 difference(s): 1 would repair (dry run: nothing was changed)")
    assert "reconcile [" in err
    assert "] 4/4" in err

    code, out, err = await command(settings)
    assert (code, out) == (1, "")
    assert "another scim-bridge process" in err
    assert "--dry-run" in err

    await bridge.store.close()  # the bridge stops
    code, out, _ = await command(settings)
    assert code == 0
    assert "[repaired] member_missing" in out
    assert await sonar_members(bridge, DEVS) == {ADELE, MEGAN}
    assert (await command(settings))[:2] == (
        0,
        "reconcile: SonarQube has what Entra asked for: nothing to repair\n",
    )


async def test_the_command_as_json_and_exit_1_when_something_is_left(
    bridge_factory: BridgeFactory, tmp_path: Path
) -> None:
    """--json: one object per finding, the summary last; exit 1 when accounts gone cannot be repaired."""
    bridge = await file_bridge(bridge_factory, tmp_path, V1_PROFILE)
    await bridge.store.close()
    await bridge.sonar.control.reset()
    code, out, _ = await command(command_settings(bridge), as_json=True)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert {line["kind"] for line in lines[:-1]} == {"user_gone", "group_missing"}
    assert lines[-1]["ok"] is False
    assert lines[-1]["summary"]["unrepairable"] == 3
    assert lines[-1]["summary"]["findings"] == len(lines) - 1


@pytest.mark.parametrize("why", ["starting", "refused", "not_admin"])
async def test_the_command_exits_1_when_it_cannot_run(
    bridge_factory: BridgeFactory, tmp_path: Path, why: str
) -> None:
    """SonarQube not UP, the token refused or not an administrator's: exit 1, the reason on stderr."""
    bridge = await bridge_factory(
        CURRENT_PROFILE,
        store=f"sqlite:///{tmp_path / 'state.db'}",
        emulator={"start_delay": 3600} if why == "starting" else None,
    )
    await bridge.store.close()
    token = ADMIN_TOKEN
    if why == "refused":
        token = "squ_not-a-token"
    elif why == "not_admin":
        await bridge.sonar.create_user("plain")
        token = await bridge.sonar.user_token("plain")
    code, out, err = await command(command_settings(bridge, token))
    assert (code, out) == (1, "")
    reason = {"starting": "starting", "refused": "does not accept", "not_admin": "'plain' may not administer"}
    assert reason[why] in err


async def test_a_wrong_setting_is_a_config_error(bridge_factory: BridgeFactory, tmp_path: Path) -> None:
    """No token, or a store that does not exist: `ConfigError` (exit 2), naming the setting."""
    bridge = await bridge_factory(CURRENT_PROFILE, store=f"sqlite:///{tmp_path / 'state.db'}")
    await bridge.store.close()
    with pytest.raises(ConfigError, match="sonar_token"):
        await command(bridge.settings)
    missing = command_settings(bridge).model_copy(update={"store": f"sqlite:///{tmp_path / 'none.db'}"})
    with pytest.raises(ConfigError, match="setting 'store'"):
        await command(missing)
    assert not (tmp_path / "none.db").exists()


# --- serve's periodic runs ----------------------------------------------------------------------------------


class _Stop(BaseException):
    """Ends the periodic loop in a test (as cancellation would)."""


async def test_periodic_runs_survive_a_failure_and_log_their_counts() -> None:
    """A failed run is logged as reconcile.failed and the loop goes on; a run's counts are logged."""
    finding = Finding(
        kind="member_missing",
        resource_type="Group",
        scim_id="g",
        sonar_key=DEVS,
        found="",
        action="",
        outcome="repaired",
    )
    runs: list[str] = []

    async def run_once() -> list[Finding]:
        runs.append("run")
        if len(runs) == 1:
            raise RuntimeError("SonarQube is down")
        return [finding]

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            raise _Stop

    with capture_logs() as events, pytest.raises(_Stop):
        await reconcile_periodically(300, run_once, sleep=sleep)
    logged = [event for event in events if event["event"].startswith("reconcile.")]
    assert [event["event"] for event in logged] == ["reconcile.failed", "reconcile.finished"]
    assert logged[0]["error"] == "RuntimeError"
    assert (logged[1]["findings"], logged[1]["repaired"], logged[1]["failed"]) == (1, 1, 0)
    assert slept == [300, 300]


async def nothing_found() -> list[Finding]:
    return []


async def test_periodic_runs_need_a_positive_interval() -> None:
    """An interval of 0 means "never": asking for periodic runs with it is a mistake."""
    with pytest.raises(ValueError, match="positive"):
        await reconcile_periodically(0, nothing_found)


async def test_serve_reconciles_in_the_background_when_asked(
    provisioned: tuple[Bridge, dict[str, str]],
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With `reconcile_interval` (and the bridge's own token), a bridge repairs drift by itself, from its
    start: a membership removed in SonarQube's UI is back without any SCIM request."""
    bridge, _ = provisioned
    repaired = asyncio.Event()
    append_audit = bridge.store.append_audit

    async def heard(event: AuditEvent) -> None:
        await append_audit(event)
        if event.action.startswith("reconcile_"):
            repaired.set()

    monkeypatch.setattr(bridge.store, "append_audit", heard)
    login = (await sonar_user(bridge, ADELE))["login"]
    await sonar_ok(bridge, "api/user_groups/remove_user", {"name": DEVS, "login": login})
    settings = bridge.settings.model_copy(
        update={"reconcile_interval": 3600.0, "sonar_token": SecretStr(ADMIN_TOKEN)}
    )
    async with await SonarQubeConnection.open(settings, sleep=_no_sleep) as connection:
        server = await aiohttp_server(create_app(settings, sonar=connection, store=bridge.store))
        async with asyncio.timeout(10):
            await repaired.wait()
        await server.close()
    assert login in await sonar_members(bridge, DEVS)
    assert (await audit_actions(bridge))[-1] == ("reconcile_member_added", "ok", "admin")
