"""The StateStore contract: every backend must pass this one suite unchanged.

Backends are the params of the `store_url` fixture. `postgres` runs on a server the session starts itself
(`postgres_url` in conftest.py: a new database per test), and skips when no PostgreSQL binaries are found.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

from scim_bridge.store import (
    AuditEvent,
    GroupRecord,
    StateStore,
    StoreConflict,
    StoreError,
    StoreNotFound,
    UserRecord,
    open_store,
)

if TYPE_CHECKING:
    from pathlib import Path

MakeUser = Callable[..., UserRecord]
MakeGroup = Callable[..., GroupRecord]

# Backend id -> a URL for a fresh, empty store of that backend.
BACKENDS: dict[str, Callable[[Path], str]] = {
    "sqlite-file": lambda tmp_path: f"sqlite:///{tmp_path / 'state' / 'store.db'}",
    "sqlite-memory": lambda _tmp_path: "sqlite://:memory:",
}
# A backend served by a fixture rather than a URL factory: it needs a running server.
POSTGRES = "postgres"
# Backends whose data outlives the store object (reopen tests).
PERSISTENT_BACKENDS = ("sqlite-file", POSTGRES)


def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == POSTGRES:
        url: str = request.getfixturevalue("postgres_url")
        return url
    return BACKENDS[request.param](tmp_path)


@pytest.fixture(params=[*BACKENDS, POSTGRES])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for a fresh store of each backend."""
    return backend_url(request, tmp_path)


@pytest.fixture(params=PERSISTENT_BACKENDS)
def persistent_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for a fresh store of each backend that keeps data across opens."""
    return backend_url(request, tmp_path)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[StateStore]:
    """An open, empty store, closed after the test."""
    opened = await open_store(store_url)
    yield opened
    await opened.close()


def bump(record: Any, **changes: Any) -> Any:
    """The record's next version, with changes."""
    return dataclasses.replace(record, version=record.version + 1, **changes)


# -- users and groups: round trip and look-ups ---------------------------------------------------------------
async def test_user_round_trips_exactly(store: StateStore, make_user: MakeUser) -> None:
    """A stored user reads back equal: attributes as sent (key order, Unicode), times to the microsecond."""
    paris = timezone(timedelta(hours=1))
    record = make_user(
        "alice",
        sonar_id=None,
        external_id=None,
        active=False,
        attributes={"z": 1, "a": {"nested": [True, None, 1.5, "ü"]}, "title": "Ingénieure"},
        last_modified=datetime(2025, 3, 2, 10, 0, 0, 1, tzinfo=paris),
    )
    await store.insert_user(record)
    stored = await store.get_user("u-alice")
    assert record == stored
    assert stored is not None
    assert list(stored.attributes) == ["z", "a", "title"]
    assert stored.last_modified.utcoffset() == timedelta(0)


async def test_group_round_trips_exactly(store: StateStore, make_group: MakeGroup) -> None:
    """A stored group reads back equal."""
    record = make_group("Developers", sonar_id=None, attributes={"displayName": "Developers", "x": [1]})
    await store.insert_group(record)
    assert record == await store.get_group("g-Developers")


async def test_unknown_ids_read_as_none(store: StateStore) -> None:
    """Looking up ids the store does not hold gives None, not an error."""
    assert await store.get_user("nope") is None
    assert await store.get_group("nope") is None
    assert await store.find_user(user_name="nope") is None
    assert await store.find_group(display_name="nope") is None


@pytest.mark.parametrize(
    ("criterion", "stored", "query", "found"),
    [
        pytest.param("user_name", "alice@example.com", "ALICE@EXAMPLE.COM", True, id="user_name-upper"),
        pytest.param("user_name", "ALICE@x", "alice@X", True, id="user_name-mixed"),
        pytest.param("user_name", "Straße", "STRASSE", True, id="user_name-sharp-s"),
        pytest.param("user_name", "Ǆemal", "ǆemal", True, id="user_name-titlecase-digraph"),
        pytest.param("user_name", "Ren\u00e9", "RENE\u0301", True, id="user_name-composed-vs-combining"),
        pytest.param("user_name", "alice", "alice ", False, id="user_name-no-trim"),
        pytest.param("user_name", "alice", "alicia", False, id="user_name-other"),
        pytest.param("sonar_login", "alice", "alice", True, id="sonar_login-same"),
        pytest.param("sonar_login", "alice", "Alice", False, id="sonar_login-case-exact"),
        pytest.param("external_id", "Ext-1", "Ext-1", True, id="external_id-same"),
        pytest.param("external_id", "Ext-1", "EXT-1", False, id="external_id-case-exact"),
    ],
)
async def test_find_user(
    store: StateStore, make_user: MakeUser, *, criterion: str, stored: str, query: str, found: bool
) -> None:
    """userName matches caseless (Unicode casefold, canonical forms); the other keys match exactly."""
    record = make_user("alice", **{criterion: stored})
    await store.insert_user(make_user("bob"))
    await store.insert_user(record)
    assert (record if found else None) == await store.find_user(**{criterion: query})


@pytest.mark.parametrize(
    ("criterion", "stored", "query", "found"),
    [
        pytest.param("display_name", "Developers", "developers", True, id="display_name-lower"),
        pytest.param("display_name", "Größe", "GRÖSSE", True, id="display_name-sharp-s"),
        pytest.param("display_name", "Dev", "Devs", False, id="display_name-other"),
        pytest.param("sonar_name", "Developers", "Developers", True, id="sonar_name-same"),
        pytest.param("sonar_name", "Developers", "developers", False, id="sonar_name-case-exact"),
        pytest.param("external_id", "Ext-1", "Ext-1", True, id="external_id-same"),
        pytest.param("external_id", "Ext-1", "ext-1", False, id="external_id-case-exact"),
    ],
)
async def test_find_group(
    store: StateStore, make_group: MakeGroup, *, criterion: str, stored: str, query: str, found: bool
) -> None:
    """displayName matches caseless; the SonarQube name and externalId match exactly."""
    record = make_group("dev", **{criterion: stored})
    await store.insert_group(make_group("ops"))
    await store.insert_group(record)
    assert (record if found else None) == await store.find_group(**{criterion: query})


@pytest.mark.parametrize(
    "criteria",
    [pytest.param({}, id="none"), pytest.param({"user_name": "a", "sonar_login": "a"}, id="two")],
)
async def test_find_needs_exactly_one_criterion(store: StateStore, criteria: dict[str, str]) -> None:
    """find_user and find_group refuse zero or several criteria."""
    with pytest.raises(ValueError, match="exactly one"):
        await store.find_user(**criteria)
    group_criteria = {("display_name" if k == "user_name" else "sonar_name"): v for k, v in criteria.items()}
    with pytest.raises(ValueError, match="exactly one"):
        await store.find_group(**group_criteria)


async def test_shared_external_id_finds_the_oldest(
    store: StateStore, make_user: MakeUser, t0: datetime
) -> None:
    """externalId is not unique; a look-up by it answers the earliest-created holder."""
    await store.insert_user(make_user("young", external_id="same", created=t0 + timedelta(seconds=5)))
    await store.insert_user(make_user("old", external_id="same", created=t0))
    found = await store.find_user(external_id="same")
    assert found is not None
    assert found.scim_id == "u-old"


# -- uniqueness and versions -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"scim_id": "u-alice"}, "scim_id", id="scim_id"),
        pytest.param({"user_name": "ALICE@example.COM"}, "user_name", id="user_name-case"),
        pytest.param({"user_name": "alice@example.com"}, "user_name", id="user_name-same"),
        pytest.param({"sonar_login": "alice"}, "sonar_login", id="sonar_login"),
        pytest.param({"sonar_id": "sonar-u-alice"}, "sonar_id", id="sonar_id"),
    ],
)
async def test_user_insert_conflict_names_the_field(
    store: StateStore, make_user: MakeUser, changes: dict[str, str], field: str
) -> None:
    """Inserting a user whose unique key is taken raises StoreConflict naming that key, and stores nothing."""
    await store.insert_user(make_user("alice"))
    with pytest.raises(StoreConflict) as caught:
        await store.insert_user(make_user("bob", **changes))
    assert field == caught.value.field
    assert ([make_user("alice")], 1) == await store.list_users(offset=0, limit=10)


async def test_replayed_user_insert_is_a_scim_id_conflict(store: StateStore, make_user: MakeUser) -> None:
    """Inserting the very same record twice names scim_id, so a replayed create is recognisable."""
    await store.insert_user(make_user("alice"))
    with pytest.raises(StoreConflict) as caught:
        await store.insert_user(make_user("alice"))
    assert caught.value.field == "scim_id"


async def test_user_keys_that_may_repeat(store: StateStore, make_user: MakeUser) -> None:
    """Users may share an externalId, and any number may lack a SonarQube id."""
    await store.insert_user(make_user("a", external_id="same", sonar_id=None))
    await store.insert_user(make_user("b", external_id="same", sonar_id=None))
    assert (await store.list_users(offset=0, limit=0))[1] == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"scim_id": "g-dev"}, "scim_id", id="scim_id"),
        pytest.param({"display_name": "DEV"}, "display_name", id="display_name-case"),
        pytest.param({"sonar_name": "dev"}, "sonar_name", id="sonar_name"),
        pytest.param({"sonar_id": "sonar-g-dev"}, "sonar_id", id="sonar_id"),
    ],
)
async def test_group_insert_conflict_names_the_field(
    store: StateStore, make_group: MakeGroup, changes: dict[str, str], field: str
) -> None:
    """Inserting a group whose unique key is taken raises StoreConflict naming it, and stores nothing."""
    await store.insert_group(make_group("dev"))
    with pytest.raises(StoreConflict) as caught:
        await store.insert_group(make_group("ops", **changes))
    assert field == caught.value.field
    assert ([make_group("dev")], 1) == await store.list_groups(offset=0, limit=10)


async def test_groups_may_differ_only_in_sonar_name_case(store: StateStore, make_group: MakeGroup) -> None:
    """The SonarQube group name is unique exactly, not caselessly."""
    await store.insert_group(make_group("a", sonar_name="Dev"))
    await store.insert_group(make_group("b", sonar_name="dev"))
    assert (await store.list_groups(offset=0, limit=0))[1] == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"user_name": "Alice@Example.com"}, "user_name", id="user_name"),
        pytest.param({"sonar_login": "alice"}, "sonar_login", id="sonar_login"),
        pytest.param({"sonar_id": "sonar-u-alice"}, "sonar_id", id="sonar_id"),
    ],
)
async def test_user_update_conflict_names_the_field(
    store: StateStore, make_user: MakeUser, changes: dict[str, str], field: str
) -> None:
    """An update taking another user's unique key raises StoreConflict naming it, and changes nothing."""
    await store.insert_user(make_user("alice"))
    bob = make_user("bob")
    await store.insert_user(bob)
    with pytest.raises(StoreConflict) as caught:
        await store.update_user(bump(bob, **changes), expected_version=1)
    assert field == caught.value.field
    assert bob == await store.get_user("u-bob")


async def test_group_update_conflict_names_the_field(store: StateStore, make_group: MakeGroup) -> None:
    """A rename onto another group's displayName (any case) raises StoreConflict("display_name")."""
    await store.insert_group(make_group("dev"))
    ops = make_group("ops")
    await store.insert_group(ops)
    with pytest.raises(StoreConflict) as caught:
        await store.update_group(bump(ops, display_name="Dev"), expected_version=1)
    assert caught.value.field == "display_name"
    assert ops == await store.get_group("g-ops")


async def test_update_may_keep_or_recase_its_own_keys(
    store: StateStore, make_user: MakeUser, make_group: MakeGroup
) -> None:
    """A record never conflicts with itself: renaming to a different case of its own name succeeds."""
    alice, dev = make_user("alice"), make_group("dev")
    await store.insert_user(alice)
    await store.insert_group(dev)
    await store.update_user(bump(alice, user_name="ALICE@example.com"), expected_version=1)
    await store.update_group(bump(dev, display_name="DEV"), expected_version=1)
    assert bump(alice, user_name="ALICE@example.com") == await store.get_user("u-alice")
    assert bump(dev, display_name="DEV") == await store.get_group("g-dev")


async def test_update_requires_the_expected_version(
    store: StateStore, make_user: MakeUser, make_group: MakeGroup
) -> None:
    """An update succeeds only against the stored version; a stale one raises StoreConflict("version")."""
    alice, dev = make_user("alice"), make_group("dev")
    await store.insert_user(alice)
    await store.insert_group(dev)
    await store.update_user(bump(alice, active=False), expected_version=1)
    await store.update_group(bump(dev, display_name="Devs"), expected_version=1)
    with pytest.raises(StoreConflict) as user_conflict:
        await store.update_user(bump(alice, user_name="x@example.com"), expected_version=1)
    with pytest.raises(StoreConflict) as group_conflict:
        await store.update_group(bump(dev, display_name="Ops"), expected_version=1)
    assert (user_conflict.value.field, group_conflict.value.field) == ("version", "version")
    assert bump(alice, active=False) == await store.get_user("u-alice")
    assert bump(dev, display_name="Devs") == await store.get_group("g-dev")


async def test_update_of_unknown_record_is_not_found(
    store: StateStore, make_user: MakeUser, make_group: MakeGroup
) -> None:
    """Updating a record the store does not hold raises StoreNotFound and creates nothing."""
    with pytest.raises(StoreNotFound) as user_missing:
        await store.update_user(make_user("ghost"), expected_version=1)
    with pytest.raises(StoreNotFound) as group_missing:
        await store.update_group(make_group("ghost"), expected_version=1)
    assert (user_missing.value.resource_type, user_missing.value.scim_ids) == ("User", ("u-ghost",))
    assert (group_missing.value.resource_type, group_missing.value.scim_ids) == ("Group", ("g-ghost",))
    assert await store.get_user("u-ghost") is None


async def test_freed_keys_can_be_reused(store: StateStore, make_user: MakeUser) -> None:
    """After a rename or a delete, the old unique keys are free for another record."""
    alice = make_user("alice")
    await store.insert_user(alice)
    await store.update_user(
        bump(alice, user_name="alice2@example.com", sonar_login="alice2"), expected_version=1
    )
    await store.insert_user(
        make_user("bob", user_name="alice@example.com", sonar_login="alice", sonar_id=None)
    )
    assert await store.delete_user("u-alice")
    await store.insert_user(
        make_user("alice", user_name="ALICE2@example.com", sonar_login="alice2", sonar_id="sonar-u-alice")
    )
    assert (await store.list_users(offset=0, limit=0))[1] == 2


@pytest.mark.parametrize(
    "attributes",
    [
        pytest.param({"when": datetime(2025, 1, 1, tzinfo=UTC)}, id="datetime"),
        pytest.param({"x": float("nan")}, id="nan"),
    ],
)
async def test_attributes_must_be_json(
    store: StateStore, make_user: MakeUser, attributes: dict[str, Any]
) -> None:
    """Attributes that are not portable JSON are refused with StoreError, and nothing is stored."""
    with pytest.raises(StoreError, match="JSON"):
        await store.insert_user(make_user("alice", attributes=attributes))
    assert await store.get_user("u-alice") is None


# -- deletion and memberships --------------------------------------------------------------------------------
async def test_delete_user_removes_its_memberships(
    store: StateStore, make_user: MakeUser, make_group: MakeGroup
) -> None:
    """Deleting a user forgets it and its memberships; deleting again answers False."""
    for key in ("alice", "bob"):
        await store.insert_user(make_user(key))
    await store.insert_group(make_group("dev"))
    await store.add_members("g-dev", ["u-alice", "u-bob"])
    assert await store.delete_user("u-alice") is True
    assert await store.get_user("u-alice") is None
    assert {"u-bob"} == await store.members_of("g-dev")
    assert set() == await store.groups_of("u-alice")
    assert await store.delete_user("u-alice") is False


async def test_delete_group_removes_its_memberships(
    store: StateStore, make_user: MakeUser, make_group: MakeGroup
) -> None:
    """Deleting a group forgets it and its memberships, not its members."""
    await store.insert_user(make_user("alice"))
    for key in ("dev", "ops"):
        await store.insert_group(make_group(key))
        await store.add_members(f"g-{key}", ["u-alice"])
    assert await store.delete_group("g-dev") is True
    assert {"g-ops"} == await store.groups_of("u-alice")
    assert set() == await store.members_of("g-dev")
    assert await store.get_user("u-alice") is not None
    assert await store.delete_group("g-dev") is False


async def test_memberships_are_idempotent_sets(
    store: StateStore, make_user: MakeUser, make_group: MakeGroup
) -> None:
    """Adding a present member or removing an absent one changes nothing and raises nothing."""
    for key in ("a", "b", "c"):
        await store.insert_user(make_user(key))
    await store.insert_group(make_group("dev"))
    await store.add_members("g-dev", ["u-a", "u-b", "u-a"])
    await store.add_members("g-dev", iter(["u-b"]))
    await store.remove_members("g-dev", ["u-c", "u-unknown"])
    assert {"u-a", "u-b"} == await store.members_of("g-dev")
    await store.remove_members("g-dev", ["u-a"])
    await store.remove_members("g-dev", ["u-a"])
    assert {"u-b"} == await store.members_of("g-dev")
    assert {"g-dev"} == await store.groups_of("u-b")


async def test_a_group_is_inserted_with_its_members_or_not_at_all(
    store: StateStore, make_user: MakeUser, make_group: MakeGroup
) -> None:
    """insert_group with members records both in one step; an unknown member leaves neither."""
    await store.insert_user(make_user("a"))
    with pytest.raises(StoreNotFound) as caught:
        await store.insert_group(make_group("dev"), ["u-a", "u-x"])
    assert caught.value.scim_ids == ("u-x",)
    assert await store.get_group("g-dev") is None
    await store.insert_group(make_group("dev"), ["u-a", "u-a"])
    assert {"u-a"} == await store.members_of("g-dev")


async def test_membership_changes_leave_the_group_record_alone(
    store: StateStore, make_user: MakeUser, make_group: MakeGroup
) -> None:
    """Memberships do not touch the group's version or lastModified: the caller decides those."""
    await store.insert_user(make_user("a"))
    dev = make_group("dev")
    await store.insert_group(dev)
    await store.add_members("g-dev", ["u-a"])
    await store.remove_members("g-dev", ["u-a"])
    assert dev == await store.get_group("g-dev")


@pytest.mark.parametrize("operation", ["add_members", "remove_members"])
async def test_membership_of_unknown_group_is_not_found(
    store: StateStore, make_user: MakeUser, operation: str
) -> None:
    """Changing the members of a group the store does not hold raises StoreNotFound naming the group."""
    await store.insert_user(make_user("a"))
    with pytest.raises(StoreNotFound) as caught:
        await getattr(store, operation)("g-ghost", ["u-a"])
    assert (caught.value.resource_type, caught.value.scim_ids) == ("Group", ("g-ghost",))


async def test_unknown_member_is_not_found_and_nothing_changes(
    store: StateStore, make_user: MakeUser, make_group: MakeGroup
) -> None:
    """Adding users the store does not hold raises StoreNotFound naming all of them; no member changes."""
    for key in ("a", "b"):
        await store.insert_user(make_user(key))
    await store.insert_group(make_group("dev"))
    await store.add_members("g-dev", ["u-a"])
    with pytest.raises(StoreNotFound) as caught:
        await store.add_members("g-dev", ["u-b", "u-y", "u-x"])
    assert (caught.value.resource_type, caught.value.scim_ids) == ("User", ("u-x", "u-y"))
    assert {"u-a"} == await store.members_of("g-dev")


async def test_member_ids_must_not_be_one_string(store: StateStore, make_group: MakeGroup) -> None:
    """A bare string is refused rather than read as a list of one-character ids."""
    await store.insert_group(make_group("dev"))
    with pytest.raises(TypeError):
        await store.add_members("g-dev", "u-a")


async def test_members_of_unknown_ids_are_empty(store: StateStore) -> None:
    """Reading memberships of ids the store does not hold gives empty sets."""
    assert set() == await store.members_of("g-ghost")
    assert set() == await store.groups_of("u-ghost")


async def test_large_membership(store: StateStore, make_user: MakeUser, make_group: MakeGroup) -> None:
    """A group of a thousand members is added, read and emptied in two halves."""
    ids = [f"u-{n}" for n in range(1000)]
    for n in range(1000):
        await store.insert_user(make_user(str(n)))
    await store.insert_group(make_group("all"))
    await store.add_members("g-all", ids)
    assert set(ids) == await store.members_of("g-all")
    await store.remove_members("g-all", ids[:500])
    assert set(ids[500:]) == await store.members_of("g-all")
    await store.remove_members("g-all", ids)
    assert set() == await store.members_of("g-all")


# -- listing -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("offset", "limit", "expected"),
    [
        pytest.param(0, 3, ["u-0", "u-1", "u-2"], id="first-page"),
        pytest.param(3, 3, ["u-3", "u-4", "u-5"], id="middle-page"),
        pytest.param(6, 3, ["u-6"], id="last-partial-page"),
        pytest.param(7, 3, [], id="past-the-end"),
        pytest.param(0, 0, [], id="count-only"),
        pytest.param(0, 100, [f"u-{n}" for n in range(7)], id="all"),
    ],
)
async def test_list_users_pages_by_creation(
    store: StateStore, make_user: MakeUser, t0: datetime, *, offset: int, limit: int, expected: list[str]
) -> None:
    """Users are listed by creation time (insertion order breaks ties) with the exact total."""
    # Inserted out of creation order; u-5 and u-6 share a creation time and keep insertion order.
    created = {"3": 3, "0": 0, "5": 5, "1": 1, "6": 5, "4": 4, "2": 2}
    for key, seconds in created.items():
        await store.insert_user(make_user(key, created=t0 + timedelta(seconds=seconds)))
    page, total = await store.list_users(offset=offset, limit=limit)
    assert (expected, 7) == ([record.scim_id for record in page], total)


async def test_list_groups_pages_by_creation(store: StateStore, make_group: MakeGroup, t0: datetime) -> None:
    """Groups are listed by creation time with the exact total."""
    for key, seconds in {"b": 2, "a": 1, "c": 3}.items():
        await store.insert_group(make_group(key, created=t0 + timedelta(seconds=seconds)))
    page, total = await store.list_groups(offset=1, limit=5)
    assert ([record.scim_id for record in page], total) == (["g-b", "g-c"], 3)


@pytest.mark.parametrize(("offset", "limit"), [(-1, 10), (0, -1)])
async def test_negative_paging_is_refused(store: StateStore, offset: int, limit: int) -> None:
    """A negative offset or limit is a caller error."""
    with pytest.raises(ValueError, match="negative"):
        await store.list_users(offset=offset, limit=limit)
    with pytest.raises(ValueError, match="negative"):
        await store.list_groups(offset=offset, limit=limit)


# -- audit trail ---------------------------------------------------------------------------------------------
def audit(at: datetime, scim_id: str, action: str, **changes: Any) -> AuditEvent:
    fields: dict[str, Any] = {
        "at": at,
        "request_id": f"req-{action}",
        "actor": "sha256:1f2e",
        "action": action,
        "resource_type": "User",
        "scim_id": scim_id,
        "sonar_key": "alice",
        "outcome": "ok",
    }
    return AuditEvent(**(fields | changes))


async def test_audit_trail_newest_first_and_filtered(store: StateStore, t0: datetime) -> None:
    """The trail lists newest first (append order breaks ties), filters by resource and honours the limit."""
    events = [
        audit(t0 + timedelta(seconds=2), "u-a", "user.updated", detail="displayName"),
        audit(t0, "u-a", "user.created"),
        audit(t0 + timedelta(seconds=1), "g-d", "group.created", resource_type="Group", sonar_key=None),
        audit(t0 + timedelta(seconds=2), "u-a", "user.deactivated", outcome="failed", request_id=None),
    ]
    for event in events:
        await store.append_audit(event)
    assert [events[3], events[0], events[2], events[1]] == await store.audit_trail()
    assert [events[3], events[0], events[1]] == await store.audit_trail(scim_id="u-a")
    assert [events[3], events[0]] == await store.audit_trail(scim_id="u-a", limit=2)
    assert await store.audit_trail(scim_id="u-none") == []


async def test_audit_trail_by_sonarqube_key_and_time(store: StateStore, t0: datetime) -> None:
    """The trail filters by SonarQube login or group name, and from a point in time on (inclusive)."""
    events = [
        audit(t0, "u-a", "user.created"),
        audit(t0 + timedelta(seconds=5), "u-a", "user.updated"),
        audit(t0 + timedelta(seconds=9), "u-b", "user.created", sonar_key="bob"),
    ]
    for event in events:
        await store.append_audit(event)
    assert [events[1], events[0]] == await store.audit_trail(sonar_key="alice")
    assert [events[2], events[1]] == await store.audit_trail(since=t0 + timedelta(seconds=5))
    assert [events[1]] == await store.audit_trail(sonar_key="alice", since=t0 + timedelta(seconds=1))


async def test_audit_outlives_the_resource(store: StateStore, make_user: MakeUser, t0: datetime) -> None:
    """Deleting a user keeps its audit events."""
    await store.insert_user(make_user("alice"))
    await store.append_audit(audit(t0, "u-alice", "user.created"))
    await store.delete_user("u-alice")
    assert len(await store.audit_trail(scim_id="u-alice")) == 1


# -- lifecycle ----------------------------------------------------------------------------------------------
async def test_close(store_url: str, make_user: MakeUser) -> None:
    """After close every call raises StoreError, and closing again is harmless."""
    opened = await open_store(store_url)
    await opened.close()
    await opened.close()
    with pytest.raises(StoreError, match="closed"):
        await opened.insert_user(make_user("a"))
    with pytest.raises(StoreError, match="closed"):
        await opened.get_user("u-a")


async def test_reopen_keeps_everything(
    persistent_url: str, make_user: MakeUser, make_group: MakeGroup
) -> None:
    """Closing and reopening a persistent store keeps users, groups, memberships and the audit trail."""
    alice, dev = make_user("alice"), make_group("dev")
    event = audit(alice.created, "u-alice", "user.created")
    first = await open_store(persistent_url)
    await first.insert_user(alice)
    await first.insert_group(dev)
    await first.add_members("g-dev", ["u-alice"])
    await first.append_audit(event)
    await first.close()
    second = await open_store(persistent_url)
    try:
        assert alice == await second.get_user("u-alice")
        assert dev == await second.get_group("g-dev")
        assert {"u-alice"} == await second.members_of("g-dev")
        assert [event] == await second.audit_trail()
    finally:
        await second.close()


# -- concurrency ---------------------------------------------------------------------------------------------
async def test_concurrent_inserts_all_land(store: StateStore, make_user: MakeUser) -> None:
    """Fifty concurrent inserts of distinct users all succeed and are all counted."""
    await asyncio.gather(*(store.insert_user(make_user(f"n{n}")) for n in range(50)))
    page, total = await store.list_users(offset=0, limit=100)
    assert (len({record.scim_id for record in page}), total) == (50, 50)


async def test_concurrent_claims_of_one_user_name_admit_one(store: StateStore, make_user: MakeUser) -> None:
    """Of fifty concurrent inserts claiming the same userName (in different cases) exactly one wins."""
    spellings = ["alice@example.com", "ALICE@EXAMPLE.COM", "Alice@Example.Com"]
    claims = [make_user(f"n{n}", user_name=spellings[n % 3]) for n in range(50)]
    results = await asyncio.gather(*(store.insert_user(claim) for claim in claims), return_exceptions=True)
    assert results.count(None) == 1
    assert all(
        isinstance(result, StoreConflict) and result.field == "user_name" for result in results if result
    )
    assert (await store.list_users(offset=0, limit=0))[1] == 1


async def test_concurrent_updates_of_one_version_admit_one(store: StateStore, make_user: MakeUser) -> None:
    """Of fifty concurrent updates from the same version exactly one wins; the rest get a version conflict."""
    alice = make_user("alice")
    await store.insert_user(alice)
    updates = [bump(alice, attributes={"title": f"t{n}"}) for n in range(50)]
    results = await asyncio.gather(
        *(store.update_user(update, expected_version=1) for update in updates), return_exceptions=True
    )
    winners = [update for update, result in zip(updates, results, strict=True) if result is None]
    assert len(winners) == 1
    assert all(
        isinstance(result, StoreConflict) and result.field == "version" for result in results if result
    )
    assert winners[0] == await store.get_user("u-alice")


async def test_concurrent_mixed_writes_stay_consistent(
    store: StateStore, make_user: MakeUser, make_group: MakeGroup
) -> None:
    """Interleaved inserts, version chains, membership changes and audits keep every invariant."""
    await store.insert_group(make_group("dev"))
    base = [make_user(f"m{n}") for n in range(25)]
    await asyncio.gather(*(store.insert_user(record) for record in base))

    async def churn(record: UserRecord) -> None:
        current = record
        for _ in range(3):
            nxt = bump(current, active=not current.active)
            await store.update_user(nxt, expected_version=current.version)
            current = nxt
        await store.add_members("g-dev", [record.scim_id])
        await store.append_audit(audit(record.created, record.scim_id, "user.updated"))

    await asyncio.gather(
        *(churn(record) for record in base),
        *(store.insert_user(make_user(f"x{n}")) for n in range(25)),
    )
    page, total = await store.list_users(offset=0, limit=100)
    assert total == 50
    assert {4} == {record.version for record in page if record.scim_id.startswith("u-m")}
    assert {record.scim_id for record in base} == await store.members_of("g-dev")
    assert len(await store.audit_trail(limit=100)) == 25


async def test_find_users_by_email_any_of_their_emails_in_any_case(
    store: StateStore, make_user: MakeUser
) -> None:
    """Every user having the e-mail among its `emails` is a candidate, whatever the (ASCII) case."""
    home = {"value": "shared@Example.com", "type": "home"}
    await store.insert_user(make_user("alice"))
    bob = make_user("bob")
    bob_attributes = {**bob.attributes, "emails": [*bob.attributes["emails"], home]}
    await store.insert_user(dataclasses.replace(bob, attributes=bob_attributes))
    await store.insert_user(make_user("carol", attributes={"userName": "carol@example.com"}))

    assert [u.scim_id for u in await store.find_users_by_email("ALICE@example.com")] == ["u-alice"]
    assert [u.scim_id for u in await store.find_users_by_email("shared@example.COM")] == ["u-bob"]
    assert await store.find_users_by_email("nobody@example.com") == []


async def test_a_user_records_whether_sonarqube_is_settled(store: StateStore, make_user: MakeUser) -> None:
    """`settled` is kept as written, and an update may change it without a new version."""
    alice = make_user("alice", settled=False)
    await store.insert_user(alice)
    assert await store.get_user("u-alice") == alice
    settled = dataclasses.replace(alice, settled=True)
    await store.update_user(settled, expected_version=alice.version)
    assert await store.get_user("u-alice") == settled


async def test_update_and_its_audit_event_are_one_write(
    store: StateStore, make_user: MakeUser, make_group: MakeGroup, t0: datetime
) -> None:
    """An update's audit event is appended with it, and neither is kept when the update is refused."""
    alice, dev = make_user("alice"), make_group("dev")
    await store.insert_user(alice)
    await store.insert_group(dev)
    renamed = audit(t0, "u-alice", "user_updated")
    members = audit(t0, "g-dev", "group_members_changed", resource_type="Group", sonar_key="dev")
    await store.update_user(bump(alice, active=False), expected_version=1, audit=renamed)
    await store.update_group(bump(dev, display_name="Devs"), expected_version=1, audit=members)
    with pytest.raises(StoreConflict):
        await store.update_user(bump(alice), expected_version=1, audit=audit(t0, "u-alice", "stale"))
    with pytest.raises(StoreNotFound):
        await store.update_group(make_group("ghost"), expected_version=1, audit=audit(t0, "g-ghost", "ghost"))
    assert await store.audit_trail() == [members, renamed]  # newest first
    assert bump(alice, active=False) == await store.get_user("u-alice")
