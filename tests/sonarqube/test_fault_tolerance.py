"""200 mixed operations against an emulator that fails 30 % of its requests (500, 503, 429, dropped
connections before and after applying, slow answers) end in exactly the intended SonarQube state."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from scim_bridge.sonarqube import (
    ADMIN_GROUP,
    DEFAULT_GROUP,
    AlreadyExists,
    Dialect,
    GroupRef,
    NotFound,
    SonarQubeClient,
    Unavailable,
    UnexpectedResponse,
    UserRef,
    deadline,
)
from tests.sonarqube.doubles import ADMIN_TOKEN, ControlFactory, connect

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from tests.support import EmulatorFactory


pytestmark = pytest.mark.slow

OPERATIONS = 200
SEED = 1128
T = TypeVar("T")
FAULT_KINDS = ("500", "503", "429", "reset", "slow")
REISSUES = 5  # how often the driver re-sends an operation that ended Unavailable/UnexpectedResponse


@dataclass
class Intent:
    """What SonarQube should hold once every operation has been applied exactly once."""

    active: dict[str, UserRef] = field(default_factory=dict)  # login -> ref
    deactivated: dict[str, UserRef] = field(default_factory=dict)
    groups: dict[str, GroupRef] = field(default_factory=dict)  # name -> ref
    members: set[tuple[str, str]] = field(default_factory=set)  # (group name, login)


class Driver:
    """Plays random operations and keeps `intent` in step; re-sends an operation only when it ended
    Unavailable or UnexpectedResponse, as Entra re-sends a request the bridge answered 5xx."""

    def __init__(self, client: SonarQubeClient, rng: random.Random) -> None:
        self.client = client
        self.rng = rng
        self.intent = Intent()
        self.reissued = 0
        self._serial = 0

    async def play(self, count: int) -> None:
        for _ in range(count):
            operation = self.rng.choice(self._possible_operations())
            with deadline(10.0):
                await operation()

    def _possible_operations(self) -> list[Callable[[], Awaitable[None]]]:
        intent = self.intent
        possible: list[Callable[[], Awaitable[None]]] = [self.create_user, self.create_group]
        if intent.deactivated:
            possible.append(self.reactivate_user)
        if len(intent.active) > 3:
            possible.append(self.deactivate_user)
        if intent.groups:
            possible += [self.rename_group]
        if len(intent.groups) > 2:
            possible.append(self.delete_group)
        if intent.groups and intent.active:
            possible += [self.add_member] * 4
        if intent.members:
            possible += [self.remove_member] * 2
        return possible

    # -- operations --------------------------------------------------------------------------------------
    async def create_user(self) -> None:
        login = self._new_name("user")
        user = await self._reissued(
            lambda: self.client.create_user(login, login.title(), f"{login}@example.com"),
            already_done=lambda: self._user_is_active(login),
        )
        self.intent.active[login] = user.ref if user else UserRef(login)

    async def reactivate_user(self) -> None:
        login = self.rng.choice(sorted(self.intent.deactivated))
        user = await self._reissued(
            lambda: self.client.create_user(login, login.title(), None),
            already_done=lambda: self._user_is_active(login),
        )
        self.intent.deactivated.pop(login)
        self.intent.active[login] = user.ref if user else UserRef(login)

    async def deactivate_user(self) -> None:
        login = self.rng.choice(sorted(self.intent.active))
        await self._reissued(lambda: self.client.deactivate_user(self.intent.active[login]))
        self.intent.deactivated[login] = self.intent.active.pop(login)
        self.intent.members = {(group, member) for group, member in self.intent.members if member != login}

    async def create_group(self) -> None:
        name = self._new_name("group")
        group = await self._reissued(
            lambda: self.client.create_group(name),
            already_done=lambda: self._group_exists(name),
        )
        self.intent.groups[name] = group.ref if group else GroupRef(name)

    async def rename_group(self) -> None:
        old = self.rng.choice(sorted(self.intent.groups))
        new = self._new_name("group")
        renamed = await self._reissued(
            lambda: self.client.rename_group(self.intent.groups[old], new),
            already_done=lambda: self._group_exists(new),
        )
        self.intent.groups.pop(old)
        self.intent.groups[new] = renamed.ref if renamed else GroupRef(new)
        self.intent.members = {
            (new if group == old else group, login) for group, login in self.intent.members
        }

    async def delete_group(self) -> None:
        name = self.rng.choice(sorted(self.intent.groups))
        await self._reissued(
            lambda: self.client.delete_group(self.intent.groups[name]),
            already_done=lambda: self._group_gone(name),
        )
        self.intent.groups.pop(name)
        self.intent.members = {(group, login) for group, login in self.intent.members if group != name}

    async def add_member(self) -> None:
        group = self.rng.choice(sorted(self.intent.groups))
        login = self.rng.choice(sorted(self.intent.active))
        await self._reissued(
            lambda: self.client.add_member(self.intent.groups[group], self.intent.active[login])
        )
        self.intent.members.add((group, login))

    async def remove_member(self) -> None:
        group, login = self.rng.choice(sorted(self.intent.members))
        await self._reissued(
            lambda: self.client.remove_member(self.intent.groups[group], self.intent.active[login])
        )
        self.intent.members.discard((group, login))

    # -- re-sending ----------------------------------------------------------------------------------------
    async def _reissued(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        already_done: Callable[[], Awaitable[bool]] | None = None,
    ) -> T | None:
        """Run `operation`; after an Unavailable/UnexpectedResponse, send it again. A re-sent create, rename
        or delete may meet its own earlier, applied attempt ("already exists"/"not found"): accept that
        only when `already_done` confirms it, so a real conflict still fails the test."""
        for attempt in range(REISSUES + 1):
            try:
                return await operation()
            except (Unavailable, UnexpectedResponse):
                if attempt == REISSUES:
                    raise
                self.reissued += 1
            except (AlreadyExists, NotFound):
                if attempt == 0 or already_done is None or not await self._reissued(already_done):
                    raise
                return None
        raise AssertionError("unreachable")

    async def _user_is_active(self, login: str) -> bool:
        user = await self.client.find_user(login)
        return user is not None and user.active

    async def _group_exists(self, name: str) -> bool:
        group = await self.client.find_group(name)
        return group is not None and group.name == name

    async def _group_gone(self, name: str) -> bool:
        return await self.client.find_group(name) is None

    def _new_name(self, kind: str) -> str:
        self._serial += 1
        return f"{kind}{self._serial:03d}"


def assert_state_matches(state: dict[str, Any], intent: Intent) -> None:
    logins = [user["login"] for user in state["users"]]
    assert len(logins) == len(set(logins)), "duplicate users"
    users = {user["login"]: user for user in state["users"]}
    assert set(users) == {"admin"} | set(intent.active) | set(intent.deactivated)
    assert {login for login, user in users.items() if user["active"]} == {"admin"} | set(intent.active)

    groups = [group["name"] for group in state["groups"]]
    assert sorted(groups) == sorted({DEFAULT_GROUP, ADMIN_GROUP} | set(intent.groups))

    memberships = [(entry["group"], entry["login"]) for entry in state["memberships"]]
    assert len(memberships) == len(set(memberships)), "duplicate memberships"
    default_members = {login for group, login in memberships if group == DEFAULT_GROUP}
    assert default_members == {"admin"} | set(intent.active)
    managed = {entry for entry in memberships if entry[0] not in {DEFAULT_GROUP, ADMIN_GROUP}}
    assert managed == intent.members


@pytest.mark.parametrize(("profile", "dialect"), [("9.9", Dialect.V1), ("2025.6", Dialect.V2)])
async def test_faults_never_corrupt_the_state(
    emulator: EmulatorFactory, control_for: ControlFactory, profile: str, dialect: Dialect
) -> None:
    """With 30 % faulty answers, 200 operations leave exactly the intended users, groups and members."""
    server = await emulator(profile)
    control = control_for(server)
    async with await connect(server, dialect, sonar_read_timeout=0.1) as connection:
        await control.set_faults(rate=0.3, seed=SEED, slow_seconds=0.3, kinds=list(FAULT_KINDS))
        driver = Driver(connection.client(ADMIN_TOKEN), random.Random(SEED))
        await driver.play(OPERATIONS)

    assert_state_matches(await control.state(), driver.intent)
    faults = {entry["fault"] for entry in await control.journal()}
    assert set(FAULT_KINDS) <= faults  # every kind of fault was met
