"""One contract for every `SonarQubeClient` method, run over real HTTP against the emulator in every
profile: the v1 client on 9.9, 10.8, 2025.6 and 26.7, the v2 client on 10.8 and later. Where SonarQube
itself differs between dialects (v1 cannot rename a non-local user's name), the test says so."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from scim_bridge.sonarqube import (
    DEFAULT_GROUP,
    AlreadyExists,
    Dialect,
    Forbidden,
    GroupRef,
    InvalidValue,
    NotFound,
    Refused,
    SonarQubeClient,
    SonarQubeConnection,
    SonarQubeError,
    SonarVersion,
    Unauthorized,
    UserRef,
)
from scim_bridge.sonarqube import common as common_module
from scim_bridge.sonarqube.capabilities import serves_v2_api
from scim_bridge.sonarqube.transport import Credentials
from tests.sonarqube.doubles import ADMIN_TOKEN, ControlFactory, connect
from tests.support import PROFILES, EmulatorControl, EmulatorFactory

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    import aiohttp
    from aiohttp.test_utils import TestServer

COMBINATIONS = [
    (profile, dialect)
    for profile in PROFILES
    for dialect in Dialect
    if dialect is Dialect.V1 or serves_v2_api(SonarVersion.parse(profile))
]


@dataclass
class Sonar:
    """One emulated SonarQube, an admin client of the dialect under test, and the emulator's controls."""

    profile: str
    dialect: Dialect
    server: TestServer
    http: aiohttp.ClientSession
    connection: SonarQubeConnection
    client: SonarQubeClient
    control: EmulatorControl

    @property
    def v2(self) -> bool:
        return self.dialect is Dialect.V2

    async def token_for(self, login: str) -> str:
        """A new token of `login`, minted by the admin (`api/user_tokens/generate`)."""
        async with self.http.post(
            self.server.make_url("/api/user_tokens/generate"),
            data={"name": "contract", "login": login},
            headers={"Authorization": Credentials(ADMIN_TOKEN).header},
        ) as response:
            response.raise_for_status()
            token: str = (await response.json())["token"]
            return token

    async def user_state(self, login: str) -> dict[str, Any] | None:
        state = await self.control.state()
        return next((user for user in state["users"] if user["login"] == login), None)

    async def memberships(self) -> list[tuple[str, str]]:
        state = await self.control.state()
        return [(entry["group"], entry["login"]) for entry in state["memberships"]]

    async def group_names(self) -> set[str]:
        return {group["name"] for group in (await self.control.state())["groups"]}


@pytest.fixture(params=COMBINATIONS, ids=[f"{profile}-{dialect}" for profile, dialect in COMBINATIONS])
async def sonar(
    request: pytest.FixtureRequest,
    emulator: EmulatorFactory,
    control_for: ControlFactory,
    http: aiohttp.ClientSession,
) -> AsyncIterator[Sonar]:
    profile, dialect = request.param
    server = await emulator(profile, saml=True)
    connection = await connect(server, dialect)
    yield Sonar(
        profile,
        dialect,
        server,
        http,
        connection,
        connection.client(ADMIN_TOKEN),
        control_for(server),
    )
    await connection.close()


async def create(sonar: Sonar, login: str, name: str | None = None) -> UserRef:
    user = await sonar.client.create_user(login, name or login.title(), f"{login}@example.com")
    return user.ref


# -- server and caller ------------------------------------------------------------------------------------


async def test_connection_knows_version_and_dialect(sonar: Sonar) -> None:
    """The connection read the profile's version and speaks the requested dialect; its clients carry the
    same capabilities."""
    capabilities = sonar.connection.capabilities
    assert capabilities is not None
    assert str(capabilities.version).startswith(sonar.profile)
    assert capabilities.dialect is sonar.dialect
    assert sonar.client.capabilities == capabilities


async def test_admin_caller(sonar: Sonar) -> None:
    """The seeded admin's token belongs to `admin`, who may administer SonarQube."""
    caller = await sonar.client.current_user()
    assert (caller.login, caller.is_admin) == ("admin", True)


async def test_non_admin_caller_is_forbidden_to_write(sonar: Sonar) -> None:
    """A plain user's token is recognised as non-admin, and administration is Forbidden to it."""
    await create(sonar, "plain")
    plain = sonar.connection.client(await sonar.token_for("plain"))

    caller = await plain.current_user()
    assert (caller.login, caller.is_admin) == ("plain", False)
    with pytest.raises(Forbidden):
        await plain.create_group("not-allowed")


async def test_unknown_token_is_unauthorized(sonar: Sonar) -> None:
    """A token SonarQube does not know is Unauthorized, for reads and writes alike."""
    stranger = sonar.connection.client("squ_not-a-real-token")
    with pytest.raises(Unauthorized):
        await stranger.current_user()
    with pytest.raises(Unauthorized):
        await stranger.find_user("admin")


async def test_edition(sonar: Sonar) -> None:
    """The edition comes from api/navigation/global (the emulator is a Community edition)."""
    assert await sonar.client.edition() == "community"


async def test_saml_settings(sonar: Sonar) -> None:
    """SAML is reported enabled on an emulator started with SAML, without group synchronisation."""
    saml = await sonar.client.saml_settings()
    assert (saml.enabled, saml.group_attribute) == (True, None)


# -- users ------------------------------------------------------------------------------------------------


async def test_create_user(sonar: Sonar) -> None:
    """A created user is active, non-local, in `sonar-users`, and holds the given name and e-mail."""
    user = await sonar.client.create_user("alice", "Alice Liddell", "alice@example.com")

    assert (user.login, user.name, user.email, user.active, user.local) == (
        "alice",
        "Alice Liddell",
        "alice@example.com",
        True,
        False,
    )
    assert (user.id is not None) is sonar.v2
    state = await sonar.user_state("alice")
    assert state is not None
    assert (state["active"], state["local"], state["email"]) == (True, False, "alice@example.com")
    assert (DEFAULT_GROUP, "alice") in await sonar.memberships()


async def test_create_user_without_email(sonar: Sonar) -> None:
    """An e-mail of None creates a user without e-mail."""
    user = await sonar.client.create_user("noemail", "No Email", None)
    assert user.email is None


async def test_create_existing_login_is_already_exists(sonar: Sonar) -> None:
    """Creating a login that an active user holds is AlreadyExists (not a silent success)."""
    await create(sonar, "alice")
    with pytest.raises(AlreadyExists):
        await sonar.client.create_user("alice", "Another Alice", None)


@pytest.mark.parametrize(
    ("login", "name", "email", "field"),
    [
        ("bad login", "Bad", None, "login"),
        ("x", "Too Short", None, "login"),
        ("bob", "Bob", "not-an-email", "email"),
        ("bob", "", None, "name"),
    ],
)
async def test_create_user_invalid_value(
    sonar: Sonar, login: str, name: str, email: str | None, field: str
) -> None:
    """SonarQube's refusal of a login, e-mail or name is InvalidValue naming that field."""
    with pytest.raises(InvalidValue) as caught:
        await sonar.client.create_user(login, name, email)
    assert caught.value.field == field


async def test_reactivate_user(sonar: Sonar) -> None:
    """Creating a deactivated login reactivates the same account, in `sonar-users` only, SAML link reset."""
    alice = await create(sonar, "alice")
    group = await sonar.client.create_group("devs")
    await sonar.client.add_member(group.ref, alice)
    await sonar.client.link_identity(alice, "saml", "alice@corp.example")
    await sonar.client.deactivate_user(alice)

    again = await sonar.client.create_user("alice", "Alice Again", None)

    assert (again.active, again.name, again.id) == (True, "Alice Again", alice.id)
    assert again.external_provider == "sonarqube"
    assert [entry for entry in await sonar.memberships() if entry[1] == "alice"] == [(DEFAULT_GROUP, "alice")]


async def test_update_user(sonar: Sonar) -> None:
    """v2 changes name and e-mail of a non-local user; v1 SonarQube refuses that (Refused)."""
    alice = await create(sonar, "alice")
    if not sonar.v2:
        with pytest.raises(Refused):
            await sonar.client.update_user(alice, name="Alice B.")
        return

    updated = await sonar.client.update_user(alice, name="Alice B.", email="ab@example.com")
    assert (updated.name, updated.email) == ("Alice B.", "ab@example.com")
    cleared = await sonar.client.update_user(alice, email="")
    assert (cleared.name, cleared.email) == ("Alice B.", None)
    state = await sonar.user_state("alice")
    assert state is not None
    assert (state["name"], state["email"]) == ("Alice B.", None)


async def test_update_without_changes_returns_the_user(sonar: Sonar) -> None:
    """An update that changes nothing makes no write and returns the user as it is."""
    alice = await create(sonar, "alice")
    user = await sonar.client.update_user(alice)
    assert (user.login, user.active) == ("alice", True)


async def test_rename_user(sonar: Sonar) -> None:
    """Renaming changes the login of the same account; renaming to the same login is a no-op."""
    alice = await create(sonar, "alice")

    renamed = await sonar.client.rename_user(alice, "alice.new")
    assert (renamed.login, renamed.id) == ("alice.new", alice.id)
    assert await sonar.client.find_user("alice") is None
    assert await sonar.user_state("alice.new") is not None

    same = await sonar.client.rename_user(renamed.ref, "alice.new")
    assert same.login == "alice.new"


async def test_rename_user_to_a_taken_login_is_already_exists(sonar: Sonar) -> None:
    """A rename to another user's login is AlreadyExists."""
    alice = await create(sonar, "alice")
    await create(sonar, "bob")
    with pytest.raises(AlreadyExists):
        await sonar.client.rename_user(alice, "bob")


async def test_link_identity_to_saml(sonar: Sonar) -> None:
    """A linked user is found by its SAML external login; v2 on 2025.1+ also sets the external id."""
    alice = await create(sonar, "alice")
    await sonar.client.link_identity(alice, "saml", "alice@corp.example")

    found = await sonar.client.find_user_by_external_login("alice@corp.example", "saml")
    assert found is not None
    assert (found.login, found.saml_linked, found.external_login) == ("alice", True, "alice@corp.example")
    state = await sonar.user_state("alice")
    assert state is not None
    assert (state["externalProvider"], state["externalLogin"]) == ("saml", "alice@corp.example")
    if sonar.v2 and sonar.profile != "10.8":
        assert state["externalId"] == "alice@corp.example"


async def test_link_identity_needs_saml_enabled(sonar: Sonar, emulator: EmulatorFactory) -> None:
    """Linking to `saml` while SAML is off is InvalidValue naming the provider parameter."""
    server = await emulator(sonar.profile, saml=False)
    async with await connect(server, sonar.dialect) as connection:
        client = connection.client(ADMIN_TOKEN)
        alice = (await client.create_user("alice", "Alice", None)).ref
        with pytest.raises(InvalidValue) as caught:
            await client.link_identity(alice, "saml", "alice@corp.example")
    assert caught.value.field == ("externalProvider" if sonar.v2 else "newExternalProvider")


async def test_deactivate_user(sonar: Sonar) -> None:
    """Deactivation keeps the account (inactive, e-mail cleared, no memberships) and is idempotent."""
    alice = await create(sonar, "alice")
    group = await sonar.client.create_group("devs")
    await sonar.client.add_member(group.ref, alice)

    await sonar.client.deactivate_user(alice)
    await sonar.client.deactivate_user(alice)

    user = await sonar.client.find_user("alice")
    assert user is not None
    assert (user.active, user.email) == (False, None)
    assert [entry for entry in await sonar.memberships() if entry[1] == "alice"] == []


async def test_self_deactivation_is_refused(sonar: Sonar) -> None:
    """The token's own user cannot be deactivated: Refused."""
    with pytest.raises(Refused):
        await sonar.client.deactivate_user(UserRef("admin"))


async def test_find_user_matches_the_login_exactly(sonar: Sonar) -> None:
    """`q` is a contains filter: find_user still returns exactly the login asked for, or None."""
    for login in ("bobby", "xbob", "bob", "bob.smith"):
        await create(sonar, login, "Bob Someone")

    found = await sonar.client.find_user("bob")
    assert found is not None
    assert found.login == "bob"
    assert await sonar.client.find_user("BOB") is None
    assert await sonar.client.find_user("nobody") is None
    assert await sonar.client.find_user("b") is None


async def test_find_user_with_a_long_upn_login(sonar: Sonar) -> None:
    """An Entra UPN login (over 15 characters: 9.9 then matches `q` exactly) is found, deactivated too."""
    upn = "firstname.lastname@contoso.example"
    await create(sonar, "firstname.lastname")
    user = (await sonar.client.create_user(upn, "Firstname Lastname", upn)).ref
    found = await sonar.client.find_user(upn)
    assert found is not None
    assert found.login == upn
    await sonar.client.deactivate_user(user)
    found = await sonar.client.find_user(upn)
    assert found is not None
    assert (found.login, found.active) == (upn, False)


async def test_find_user_includes_deactivated(sonar: Sonar) -> None:
    """find_user and find_user_by_external_login also return deactivated users."""
    alice = await create(sonar, "alice")
    await sonar.client.link_identity(alice, "saml", "alice@corp.example")
    await sonar.client.deactivate_user(alice)

    by_login = await sonar.client.find_user("alice")
    by_external = await sonar.client.find_user_by_external_login("alice@corp.example", "saml")
    assert by_login is not None
    assert by_external is not None
    assert (by_login.active, by_external.login, by_external.active) == (False, "alice", False)


async def test_find_by_external_login_checks_the_provider(sonar: Sonar) -> None:
    """A user whose external login matches under another provider is not returned."""
    await create(sonar, "alice")  # provider `sonarqube`, external login `alice`
    assert await sonar.client.find_user_by_external_login("alice", "saml") is None
    found = await sonar.client.find_user_by_external_login("alice", "sonarqube")
    assert found is not None
    assert found.login == "alice"


async def test_get_user_by_id(sonar: Sonar) -> None:
    """v2 finds users (deactivated too) by uuid and answers None for unknown ones; v1 has no ids."""
    alice = await create(sonar, "alice")
    if not sonar.v2:
        with pytest.raises(SonarQubeError, match="v2 API"):
            await sonar.client.get_user("anything")
        return
    assert alice.id is not None
    await sonar.client.deactivate_user(alice)
    user = await sonar.client.get_user(alice.id)
    assert user is not None
    assert (user.login, user.active) == ("alice", False)
    assert await sonar.client.get_user("no-such-id") is None


@pytest.mark.parametrize("operation", ["update", "rename", "link", "deactivate"])
async def test_unknown_user_is_not_found(sonar: Sonar, operation: str) -> None:
    """Writes addressed to a login that does not exist are NotFound."""
    ghost = UserRef("ghost")
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "update": lambda: sonar.client.update_user(ghost, name="Ghost"),
        "rename": lambda: sonar.client.rename_user(ghost, "ghost2"),
        "link": lambda: sonar.client.link_identity(ghost, "saml", "ghost@corp.example"),
        "deactivate": lambda: sonar.client.deactivate_user(ghost),
    }
    with pytest.raises(NotFound):
        await calls[operation]()


# -- groups -----------------------------------------------------------------------------------------------


async def test_create_group(sonar: Sonar) -> None:
    """A created group has its name (and, on v2, its uuid) and exists in SonarQube."""
    group = await sonar.client.create_group("devs")
    assert group.name == "devs"
    assert (group.id is not None) is sonar.v2
    assert "devs" in await sonar.group_names()


@pytest.mark.parametrize(
    ("name", "error"), [("devs", AlreadyExists), ("anyone", InvalidValue), ("", InvalidValue)]
)
async def test_create_group_refused(sonar: Sonar, name: str, error: type[SonarQubeError]) -> None:
    """A taken name is AlreadyExists; `Anyone` (any case) and an empty name are InvalidValue on `name`."""
    await sonar.client.create_group("devs")
    with pytest.raises(error) as caught:
        await sonar.client.create_group(name)
    if isinstance(caught.value, InvalidValue):
        assert caught.value.field == "name"


async def test_find_group_ignores_case(sonar: Sonar) -> None:
    """find_group compares names case-insensitively (SCIM displayName) and ignores partial matches."""
    await sonar.client.create_group("Developers")
    await sonar.client.create_group("Developers-EU")

    found = await sonar.client.find_group("developers")
    assert found is not None
    assert found.name == "Developers"
    assert await sonar.client.find_group("Develop") is None
    assert await sonar.client.find_group("") is None


async def test_rename_group(sonar: Sonar) -> None:
    """Renaming keeps the group (and its members); renaming to the same name is a no-op on every version."""
    alice = await create(sonar, "alice")
    group = await sonar.client.create_group("devs")
    await sonar.client.add_member(group.ref, alice)

    renamed = await sonar.client.rename_group(group.ref, "developers")
    assert (renamed.name, renamed.id) == ("developers", group.id)
    assert ("developers", "alice") in await sonar.memberships()
    assert "devs" not in await sonar.group_names()

    same = await sonar.client.rename_group(renamed.ref, "developers")
    assert same.name == "developers"


@pytest.mark.parametrize(("target", "error"), [("taken", AlreadyExists), (DEFAULT_GROUP, Refused)])
async def test_rename_group_refused(sonar: Sonar, target: str, error: type[SonarQubeError]) -> None:
    """Renaming onto a taken name is AlreadyExists; renaming the default group is Refused."""
    await sonar.client.create_group("taken")
    devs = await sonar.client.create_group("devs")
    source = await sonar.client.find_group(DEFAULT_GROUP) if target == DEFAULT_GROUP else devs
    assert source is not None
    with pytest.raises(error):
        await sonar.client.rename_group(source.ref, "taken" if target == "taken" else "renamed-default")


async def test_delete_group(sonar: Sonar) -> None:
    """A deleted group is gone; deleting it again (no lost answer) is NotFound."""
    group = await sonar.client.create_group("devs")
    await sonar.client.delete_group(group.ref)

    assert "devs" not in await sonar.group_names()
    assert await sonar.client.find_group("devs") is None
    with pytest.raises(NotFound):
        await sonar.client.delete_group(group.ref)


async def test_default_group_cannot_be_deleted(sonar: Sonar) -> None:
    """Deleting `sonar-users` is Refused."""
    default = await sonar.client.find_group(DEFAULT_GROUP)
    assert default is not None
    with pytest.raises(Refused):
        await sonar.client.delete_group(default.ref)


async def test_get_group_by_id(sonar: Sonar) -> None:
    """v2 finds groups by uuid and answers None for unknown ones; v1 has no ids."""
    group = await sonar.client.create_group("devs")
    if not sonar.v2:
        with pytest.raises(SonarQubeError, match="v2 API"):
            await sonar.client.get_group("anything")
        return
    assert group.id is not None
    assert await sonar.client.get_group(group.id) == group
    assert await sonar.client.get_group("no-such-id") is None


# -- memberships ------------------------------------------------------------------------------------------


async def test_members_are_added_and_removed_idempotently(sonar: Sonar) -> None:
    """Adding a present member and removing an absent one succeed; SonarQube never holds a duplicate."""
    alice = await create(sonar, "alice")
    group = await sonar.client.create_group("devs")

    await sonar.client.add_member(group.ref, alice)
    await sonar.client.add_member(group.ref, alice)
    assert (await sonar.memberships()).count(("devs", "alice")) == 1

    await sonar.client.remove_member(group.ref, alice)
    await sonar.client.remove_member(group.ref, alice)
    assert ("devs", "alice") not in await sonar.memberships()


async def test_members_by_name_only(sonar: Sonar) -> None:
    """References without ids work on both dialects (v2 looks the ids up)."""
    await create(sonar, "alice")
    await sonar.client.create_group("devs")

    await sonar.client.add_member(GroupRef("devs"), UserRef("alice"))
    assert ("devs", "alice") in await sonar.memberships()
    await sonar.client.remove_member(GroupRef("devs"), UserRef("alice"))
    assert ("devs", "alice") not in await sonar.memberships()


async def test_default_group_membership_is_refused(sonar: Sonar) -> None:
    """Members of `sonar-users` cannot be added or removed through the API: Refused."""
    alice = await create(sonar, "alice")
    default = await sonar.client.find_group(DEFAULT_GROUP)
    assert default is not None
    with pytest.raises(Refused):
        await sonar.client.remove_member(default.ref, alice)


async def test_last_administrator_cannot_leave_the_admin_group(sonar: Sonar) -> None:
    """Removing the only administrator from `sonar-administrators` is Refused."""
    admins = await sonar.client.find_group("sonar-administrators")
    admin = await sonar.client.find_user("admin")
    assert admins is not None
    assert admin is not None
    with pytest.raises(Refused):
        await sonar.client.remove_member(admins.ref, admin.ref)


@pytest.mark.parametrize("missing", ["user", "group"])
async def test_add_member_to_unknown_is_not_found(sonar: Sonar, missing: str) -> None:
    """Adding an unknown user, or to an unknown group, is NotFound."""
    alice = await create(sonar, "alice")
    await sonar.client.create_group("devs")
    group, user = (GroupRef("devs"), UserRef("ghost")) if missing == "user" else (GroupRef("ghosts"), alice)
    with pytest.raises(NotFound):
        await sonar.client.add_member(group, user)


async def test_listings_span_pages(sonar: Sonar, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every search and listing reads all pages it needs (page size lowered to 2 here)."""
    # 9.9 applies `externalIdentity` to each fetched page only, so that search must read every page too.
    monkeypatch.setattr(common_module, "PAGE_SIZE", 2)
    logins = [f"member{number}" for number in range(5)]
    users = [await create(sonar, login, "Member") for login in logins]
    groups = [await sonar.client.create_group(f"team{number}") for number in range(5)]
    for user in users:
        await sonar.client.add_member(groups[0].ref, user)
    await sonar.client.deactivate_user(users[4])

    assert sorted(member.login for member in await sonar.client.group_members(groups[0].ref)) == logins[:4]
    active = {user.login for user in await sonar.client.users(active=True)}
    assert active >= set(logins[:4])
    assert "member4" not in active
    assert [user.login for user in await sonar.client.users(active=False)] == ["member4"]
    assert {group.name for group in await sonar.client.groups()} >= {f"team{number}" for number in range(5)}
    await sonar.client.create_user("member4", "Member", None)  # reactivated

    last = await sonar.client.find_user("member4")
    assert last is not None
    assert last.login == "member4"
    await sonar.client.link_identity(users[4], "saml", "member4@corp.example")
    linked = await sonar.client.find_user_by_external_login("member4@corp.example", "saml")
    assert linked is not None
    assert linked.login == "member4"
    last_group = await sonar.client.find_group("TEAM4")
    assert last_group is not None
    assert last_group.name == "team4"
