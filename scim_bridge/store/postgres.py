"""The shared state store: one PostgreSQL database through an asyncpg pool, for one or several replicas.

Unlike SQLite, several bridge processes may use one database at once, so nothing here relies on being the
only writer: uniqueness is the database's (named UNIQUE constraints, mapped back to record fields), an
update's version check and its write are one atomic step (the row is locked, and the UPDATE itself is
conditional on the version), membership writes lock the rows they refer to, and migrations run under an
advisory lock. An exclusive open therefore never refuses a second process. Writes run in transactions
(READ COMMITTED); a page and its total are read in one REPEATABLE READ snapshot. `hold(*keys)` gives the
provisioning layer a lock across replicas for work that spans SonarQube calls (not used by it yet).
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, cast

import asyncpg
import structlog

from scim_bridge.store._migrations import load_migrations
from scim_bridge.store.errors import StoreConflict, StoreError, StoreMissing, StoreNotFound
from scim_bridge.store.layout import (
    AUDIT_COLUMNS,
    GROUPS,
    USERS,
    audit_values,
    check_page,
    distinct_ids,
    one_criterion,
)
from scim_bridge.store.records import AuditEvent, GroupRecord, ResourceRecord, UserRecord, casefold_key
from scim_bridge.store.url import postgres_target

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Mapping

    from asyncpg.pool import PoolConnectionProxy

    from scim_bridge.metrics import Metrics
    from scim_bridge.store._migrations import Migration
    from scim_bridge.store.records import ResourceType
    from scim_bridge.store.url import PostgresTarget

    Db = PoolConnectionProxy[asyncpg.Record]  # a pooled connection, as every operation here gets one

log = structlog.get_logger("scim_bridge.store")

RecordT = TypeVar("RecordT", bound=ResourceRecord)
POOL_MIN_SIZE: Final = 1
POOL_MAX_SIZE: Final = 10
CONNECT_TIMEOUT_SECONDS: Final = 10.0
# `hold` keeps one connection per holder for as long as a request talks to SonarQube: its own pool, so that
# holders never starve the operations they run meanwhile (that would deadlock at POOL_MAX_SIZE holders).
LOCK_POOL_MAX_SIZE: Final = 20
# The advisory lock every replica takes to migrate: one constant bigint ("scim-br" in ASCII), so that two
# replicas starting together apply each migration once.
MIGRATION_LOCK: Final = 0x7363_696D_2D62_72
_DRIVER_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)

# Violated constraint -> the record field a caller knows (the names are fixed by migration 0001). The
# backstop for concurrent writers: writes look for taken keys first, so the field does not depend on which
# index the database checks first.
_UNIQUE_FIELDS: Final = {
    "scim_users_scim_id_key": "scim_id",
    "scim_users_user_name_folded_key": "user_name",
    "scim_users_sonar_login_key": "sonar_login",
    "scim_users_sonar_id_key": "sonar_id",
    "scim_groups_scim_id_key": "scim_id",
    "scim_groups_display_name_folded_key": "display_name",
    "scim_groups_sonar_name_key": "sonar_name",
    "scim_groups_sonar_id_key": "sonar_id",
}


# -- value codecs ------------------------------------------------------------------------------------------
def _text_from_json(attributes: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(attributes), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"attributes are not JSON-serialisable: {exc}") from exc


def _utc(stamp: datetime) -> datetime:
    # Naive datetimes are taken as local time, as the SQLite store does.
    return stamp.astimezone(UTC)


def _shared_fields(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "scim_id": row["scim_id"],
        "sonar_id": row["sonar_id"],
        "external_id": row["external_id"],
        "attributes": json.loads(row["attributes"]),
        "created": row["created"],
        "last_modified": row["last_modified"],
        "version": row["version"],
    }


def _shared_params(record: ResourceRecord) -> dict[str, Any]:
    return {
        "scim_id": record.scim_id,
        "sonar_id": record.sonar_id,
        "external_id": record.external_id,
        "attributes": _text_from_json(record.attributes),
        "created": _utc(record.created),
        "last_modified": _utc(record.last_modified),
        "version": record.version,
    }


def _user_from_row(row: asyncpg.Record) -> UserRecord:
    return UserRecord(
        **_shared_fields(row),
        user_name=row["user_name"],
        sonar_login=row["sonar_login"],
        active=row["active"],
        settled=row["settled"],
    )


def _user_params(record: UserRecord) -> dict[str, Any]:
    return {
        **_shared_params(record),
        "user_name": record.user_name,
        "user_name_folded": casefold_key(record.user_name),
        "sonar_login": record.sonar_login,
        "active": record.active,
        "settled": record.settled,
    }


def _group_from_row(row: asyncpg.Record) -> GroupRecord:
    return GroupRecord(**_shared_fields(row), display_name=row["display_name"], sonar_name=row["sonar_name"])


def _group_params(record: GroupRecord) -> dict[str, Any]:
    return {
        **_shared_params(record),
        "display_name": record.display_name,
        "display_name_folded": casefold_key(record.display_name),
        "sonar_name": record.sonar_name,
    }


def _audit_from_row(row: asyncpg.Record) -> AuditEvent:
    return AuditEvent(
        at=row["at"],
        request_id=row["request_id"],
        actor=row["actor"],
        action=row["action"],
        resource_type=cast("ResourceType", row["resource_type"]),
        scim_id=row["scim_id"],
        sonar_key=row["sonar_key"],
        outcome=row["outcome"],
        detail=row["detail"],
    )


@dataclass(frozen=True, slots=True)
class _Table(Generic[RecordT]):
    """One table of SCIM resources and how its records map to rows. SQL is built from these constants;
    values are always bound as $n parameters, never formatted into SQL."""

    name: str
    resource_type: ResourceType
    columns: tuple[str, ...]  # every column but `seq`, `scim_id` first
    unique: tuple[tuple[str, str], ...]  # (field, column) in the order a conflict names them
    criteria: Mapping[str, str]  # find criterion -> column
    from_row: Callable[[asyncpg.Record], RecordT]
    params: Callable[[RecordT], dict[str, Any]]

    def values(self, record: RecordT) -> list[Any]:
        """The record's column values in `columns` order: $1 is the scim_id."""
        params = self.params(record)
        return [params[column] for column in self.columns]

    @property
    def select(self) -> str:
        return f"SELECT {', '.join(self.columns)} FROM {self.name}"  # noqa: S608 - constant names

    @property
    def insert(self) -> str:
        names = ", ".join(self.columns)
        values = ", ".join(f"${n}" for n in range(1, len(self.columns) + 1))
        return f"INSERT INTO {self.name} ({names}) VALUES ({values})"  # noqa: S608 - constant names

    @property
    def update(self) -> str:
        """Replace the row whose scim_id is $1 and whose version is the last parameter, the expected one."""
        assignments = ", ".join(f"{column} = ${n}" for n, column in enumerate(self.columns[1:], start=2))
        expected = len(self.columns) + 1
        return (
            f"UPDATE {self.name} SET {assignments}"  # noqa: S608 - constant names
            f" WHERE scim_id = $1 AND version = ${expected} RETURNING 1"
        )

    @property
    def taken(self) -> str:
        """Which unique keys another row holds: one boolean per `unique` entry, the row's own scim_id (or
        NULL on insert) as the last parameter."""
        keys = [column for _, column in self.unique]
        flags = ", ".join(f"coalesce(bool_or({column} = ${n}), false)" for n, column in enumerate(keys, 1))
        matches = " OR ".join(f"{column} = ${n}" for n, column in enumerate(keys, 1))
        return (
            f"SELECT {flags} FROM {self.name}"  # noqa: S608 - constant names
            f" WHERE ({matches}) AND scim_id IS DISTINCT FROM ${len(keys) + 1}"
        )


_USERS: Final = _Table(**USERS.as_fields(), from_row=_user_from_row, params=_user_params)
_GROUPS: Final = _Table(**GROUPS.as_fields(), from_row=_group_from_row, params=_group_params)


# -- small helpers -----------------------------------------------------------------------------------------


async def _append_audit(db: Db, event: AuditEvent) -> None:
    await db.execute(
        f"INSERT INTO audit_events ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",  # noqa: S608 - constant columns
        *audit_values(event, _utc(event.at)),
    )


async def _refuse_taken(db: Db, table: _Table[RecordT], record: RecordT, *, updating: bool) -> None:
    """`StoreConflict` naming the first unique key that another row already holds."""
    params = table.params(record)
    keys = [params[column] for _, column in table.unique]
    row = await db.fetchrow(table.taken, *keys, record.scim_id if updating else None)
    assert row is not None  # noqa: S101 - an aggregate always answers one row
    for (field, _), taken in zip(table.unique, row, strict=True):
        if taken:
            raise StoreConflict(field, f"{field} is already taken")


def _translated(what: str, exc: BaseException) -> StoreError:
    """The `StoreError` a driver error stands for; a UNIQUE violation becomes the conflict it means."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        field = _UNIQUE_FIELDS.get(exc.constraint_name or "")
        if field is not None:
            return StoreConflict(field, f"{field} is already taken")
    if isinstance(exc, asyncpg.InterfaceError) and "pool is closed" in str(exc):
        return StoreError("the store is closed")
    return StoreError(f"{what}: {exc}")


class PostgresStore:
    """The `StateStore` on one PostgreSQL database. Build it with `await PostgresStore.open(url)`."""

    def __init__(
        self, pool: asyncpg.Pool, target: PostgresTarget, lock_pool: asyncpg.Pool | None = None
    ) -> None:
        self._pool: asyncpg.Pool | None = pool
        self._lock_pool = lock_pool  # for `hold`
        self._target = target
        self._metrics: Metrics | None = None

    def observe(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"PostgresStore({str(self._target)!r})"

    @classmethod
    async def open(
        cls, url: str, *, create: bool = True, exclusive: bool = True, password: str | None = None
    ) -> PostgresStore:
        """Connect to the database at `url` and bring its schema up to date (creating it unless `create` is
        false: then a database without the schema is a `StoreMissing`). The database itself must exist.

        `exclusive` is accepted for the `open_store` signature and changes nothing: PostgreSQL is meant for
        several replicas, which every write here is safe against, so a second process is never refused.
        `password` (e.g. read from a secret file) wins over one in the URL.
        """
        del exclusive  # see the docstring
        target = postgres_target(url)
        connect: dict[str, Any] = {
            "host": target.host,
            "port": target.port,
            "user": target.user,
            "password": password if password is not None else target.password,
            "database": target.database,
            "ssl": target.sslmode,
            "timeout": CONNECT_TIMEOUT_SECONDS,
            "server_settings": {"application_name": "scim-bridge"},
        }
        try:
            pool = await asyncpg.create_pool(min_size=POOL_MIN_SIZE, max_size=POOL_MAX_SIZE, **connect)
        except asyncpg.InvalidCatalogNameError as exc:
            message = f"there is no database {target.database!r} on {target.host}:{target.port}"
            if not create:
                raise StoreMissing(message) from exc
            raise StoreError(f"{message}: create it (createdb) and grant it to {target.user!r}") from exc
        except (*_DRIVER_ERRORS, TimeoutError) as exc:
            # asyncpg's messages name the host and user at most, never the password.
            reason = str(exc) or type(exc).__name__
            raise StoreError(f"cannot connect to PostgreSQL at {target}: {reason}") from exc
        # min_size 0: this connects nothing now (so cannot fail), and a bridge that never calls `hold` never
        # opens these connections.
        lock_pool = await asyncpg.create_pool(min_size=0, max_size=LOCK_POOL_MAX_SIZE, **connect)
        store = cls(pool, target, lock_pool)
        try:
            await store._check_encoding()
            await store._migrate(load_migrations("postgres"), create=create)
        except BaseException:
            await store.close()
            raise
        return store

    # -- plumbing ----------------------------------------------------------------------------------------
    @asynccontextmanager
    async def _connection(self, what: str) -> AsyncIterator[Db]:
        """A pooled connection for one operation (`what`, also its metrics label); driver errors become
        `StoreError`s."""
        started = time.perf_counter()
        try:
            if self._pool is None:
                raise StoreError("the store is closed")
            try:
                async with self._pool.acquire() as db:
                    yield db
            except _DRIVER_ERRORS as exc:
                raise _translated(what, exc) from exc
        finally:
            if self._metrics is not None:
                self._metrics.store_operation(what, time.perf_counter() - started)

    @asynccontextmanager
    async def _transaction(self, what: str) -> AsyncIterator[Db]:
        """A write transaction: committed if the block succeeds, rolled back otherwise (also on cancel)."""
        async with self._connection(what) as db, db.transaction():
            yield db

    async def _check_encoding(self) -> None:
        # Records hold any Unicode; a database in another encoding would refuse some of them at random.
        async with self._connection("check encoding") as db:
            encoding = await db.fetchval("SHOW server_encoding")
        if encoding != "UTF8":
            raise StoreError(f"the database {self._target} uses encoding {encoding}, not UTF8")

    async def _migrate(self, migrations: tuple[Migration, ...], *, create: bool = True) -> None:
        """Apply the migrations newer than the database, each in its own transaction, holding the migration
        advisory lock throughout so that replicas starting together take turns."""
        known = len(migrations)
        async with self._connection("migrate schema") as db:
            await db.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                while True:
                    async with db.transaction():
                        if not await db.fetchval("SELECT to_regclass('schema_version') IS NOT NULL"):
                            if not create:
                                raise StoreMissing(f"the database {self._target} holds no scim-bridge store")
                            await db.execute(
                                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY,"
                                " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
                            )
                        current = await db.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
                        if current > known:
                            raise StoreError(
                                f"the database {self._target} has schema version {current}, newer than the "
                                f"{known} this scim-bridge knows: run a newer scim-bridge or restore a backup"
                            )
                        if current == known:
                            return
                        migration = migrations[current]
                        # Without arguments, asyncpg sends the script as one simple query: all statements.
                        await db.execute(migration.sql)
                        await db.execute(
                            "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, now())",
                            migration.version,
                            migration.name,
                        )
                    log.info(
                        "store.migrated",
                        store=str(self._target),
                        version=migration.version,
                        migration=migration.name,
                    )
            finally:
                await db.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

    async def _fetch_all(self, what: str, sql: str, *params: Any) -> list[asyncpg.Record]:
        async with self._connection(what) as db:
            return list(await db.fetch(sql, *params))

    async def _fetch_one(self, what: str, sql: str, *params: Any) -> asyncpg.Record | None:
        async with self._connection(what) as db:
            return await db.fetchrow(sql, *params)

    async def _get(self, table: _Table[RecordT], scim_id: str) -> RecordT | None:
        row = await self._fetch_one(
            f"get {table.resource_type}", f"{table.select} WHERE scim_id = $1", scim_id
        )
        return None if row is None else table.from_row(row)

    async def _find(self, table: _Table[RecordT], criteria: Mapping[str, str | None]) -> RecordT | None:
        column, key = one_criterion(table.criteria, criteria)
        row = await self._fetch_one(
            f"find {table.resource_type}",
            f"{table.select} WHERE {column} = $1 ORDER BY created, seq LIMIT 1",
            key,
        )
        return None if row is None else table.from_row(row)

    async def _list(self, table: _Table[RecordT], offset: int, limit: int) -> tuple[list[RecordT], int]:
        check_page(offset, limit)
        async with (
            self._connection(f"list {table.name}") as db,
            # One snapshot, so that the total counts the rows the page was taken from.
            db.transaction(isolation="repeatable_read", readonly=True),
        ):
            total = await db.fetchval(f"SELECT count(*) FROM {table.name}")  # noqa: S608 - constant
            rows = await db.fetch(f"{table.select} ORDER BY created, seq LIMIT $1 OFFSET $2", limit, offset)
            return [table.from_row(row) for row in rows], total

    async def _insert(self, table: _Table[RecordT], record: RecordT) -> None:
        values = table.values(record)  # before the transaction: a JSON error needs no round trip
        async with self._transaction(f"insert {table.resource_type}") as db:
            await _refuse_taken(db, table, record, updating=False)
            await db.execute(table.insert, *values)

    async def _update(
        self, table: _Table[RecordT], record: RecordT, expected_version: int, audit: AuditEvent | None
    ) -> None:
        values = table.values(record)
        async with self._transaction(f"update {table.resource_type}") as db:
            # The row lock makes the version check and the write one step for every replica: a concurrent
            # updater waits here, then sees the version this one wrote. Not-found and version come before
            # uniqueness, as in SQLite.
            stored = await db.fetchval(
                f"SELECT version FROM {table.name} WHERE scim_id = $1 FOR UPDATE",  # noqa: S608 - constant
                record.scim_id,
            )
            if stored is None:
                raise StoreNotFound(table.resource_type, (record.scim_id,))
            if stored != expected_version:
                raise StoreConflict("version", f"stored version is {stored}, expected {expected_version}")
            await _refuse_taken(db, table, record, updating=True)
            # Conditional on the version as well, so the guarantee is in the statement itself.
            if await db.fetchval(table.update, *values, expected_version) is None:
                raise StoreConflict("version", f"the stored version is no longer {expected_version}")
            if audit is not None:
                await _append_audit(db, audit)

    async def _delete(self, table: _Table[Any], scim_id: str) -> bool:
        async with self._transaction(f"delete {table.resource_type}") as db:
            sql = f"DELETE FROM {table.name} WHERE scim_id = $1 RETURNING 1"  # noqa: S608 - constant table
            return await db.fetchval(sql, scim_id) is not None

    # -- users -------------------------------------------------------------------------------------------
    async def get_user(self, scim_id: str) -> UserRecord | None:
        return await self._get(_USERS, scim_id)

    async def find_user(
        self,
        *,
        user_name: str | None = None,
        sonar_login: str | None = None,
        external_id: str | None = None,
    ) -> UserRecord | None:
        criteria = {
            "user_name": user_name,
            "sonar_login": sonar_login,
            "external_id": external_id,
        }
        return await self._find(_USERS, criteria)

    async def find_users_by_email(self, email: str) -> list[UserRecord]:
        # The e-mails live in the attributes JSON; `emails` that is not an array matches nothing (rather
        # than failing the query), and lower() folds at least ASCII, so callers re-check.
        rows = await self._fetch_all(
            "find users by e-mail",
            f"{_USERS.select} WHERE EXISTS ("  # noqa: S608 - constant names
            " SELECT 1 FROM json_array_elements(CASE WHEN json_typeof(attributes -> 'emails') = 'array'"
            " THEN attributes -> 'emails' ELSE '[]'::json END) AS email"
            " WHERE lower(email ->> 'value') = lower($1)) ORDER BY created, seq",
            email,
        )
        return [_user_from_row(row) for row in rows]

    async def list_users(self, *, offset: int, limit: int) -> tuple[list[UserRecord], int]:
        return await self._list(_USERS, offset, limit)

    async def insert_user(self, record: UserRecord) -> None:
        await self._insert(_USERS, record)

    async def update_user(
        self, record: UserRecord, *, expected_version: int, audit: AuditEvent | None = None
    ) -> None:
        await self._update(_USERS, record, expected_version, audit)

    async def delete_user(self, scim_id: str) -> bool:
        return await self._delete(_USERS, scim_id)

    # -- groups ------------------------------------------------------------------------------------------
    async def get_group(self, scim_id: str) -> GroupRecord | None:
        return await self._get(_GROUPS, scim_id)

    async def find_group(
        self,
        *,
        display_name: str | None = None,
        sonar_name: str | None = None,
        external_id: str | None = None,
    ) -> GroupRecord | None:
        criteria = {
            "display_name": display_name,
            "sonar_name": sonar_name,
            "external_id": external_id,
        }
        return await self._find(_GROUPS, criteria)

    async def list_groups(self, *, offset: int, limit: int) -> tuple[list[GroupRecord], int]:
        return await self._list(_GROUPS, offset, limit)

    async def insert_group(self, record: GroupRecord, members: Iterable[str] = ()) -> None:
        ids = distinct_ids(members)
        values = _GROUPS.values(record)
        async with self._transaction("insert Group") as db:
            await _refuse_taken(db, _GROUPS, record, updating=False)
            await self._require_users(db, ids)
            await db.execute(_GROUPS.insert, *values)
            await db.execute(
                "INSERT INTO group_members (group_id, user_id) SELECT $1, unnest($2::text[])",
                record.scim_id,
                ids,
            )

    async def update_group(
        self, record: GroupRecord, *, expected_version: int, audit: AuditEvent | None = None
    ) -> None:
        await self._update(_GROUPS, record, expected_version, audit)

    async def delete_group(self, scim_id: str) -> bool:
        return await self._delete(_GROUPS, scim_id)

    # -- desired memberships -----------------------------------------------------------------------------
    # FOR KEY SHARE: a replica deleting the group or a user waits until this transaction ends, so the
    # existence checked here still holds at the insert (no foreign-key error to translate).
    @staticmethod
    async def _require_group(db: Db, group_id: str) -> None:
        sql = "SELECT 1 FROM scim_groups WHERE scim_id = $1 FOR KEY SHARE"
        if await db.fetchval(sql, group_id) is None:
            raise StoreNotFound("Group", (group_id,))

    @staticmethod
    async def _require_users(db: Db, user_ids: list[str]) -> None:
        if not user_ids:
            return
        rows = await db.fetch(
            "SELECT scim_id FROM scim_users WHERE scim_id = ANY($1::text[]) FOR KEY SHARE", user_ids
        )
        missing = set(user_ids) - {row["scim_id"] for row in rows}
        if missing:
            raise StoreNotFound("User", tuple(sorted(missing)))

    async def add_members(self, group_id: str, user_ids: Iterable[str]) -> None:
        ids = distinct_ids(user_ids)
        async with self._transaction("add members") as db:
            await self._require_group(db, group_id)
            await self._require_users(db, ids)
            await db.execute(
                "INSERT INTO group_members (group_id, user_id) SELECT $1, unnest($2::text[])"
                " ON CONFLICT DO NOTHING",
                group_id,
                ids,
            )

    async def remove_members(self, group_id: str, user_ids: Iterable[str]) -> None:
        ids = distinct_ids(user_ids)
        async with self._transaction("remove members") as db:
            await self._require_group(db, group_id)
            await db.execute(
                "DELETE FROM group_members WHERE group_id = $1 AND user_id = ANY($2::text[])", group_id, ids
            )

    async def members_of(self, group_id: str) -> set[str]:
        sql = "SELECT user_id FROM group_members WHERE group_id = $1"
        return {row["user_id"] for row in await self._fetch_all("list members", sql, group_id)}

    async def groups_of(self, user_id: str) -> set[str]:
        sql = "SELECT group_id FROM group_members WHERE user_id = $1"
        return {row["group_id"] for row in await self._fetch_all("list groups of user", sql, user_id)}

    # -- audit and lifecycle -----------------------------------------------------------------------------
    async def append_audit(self, event: AuditEvent) -> None:
        async with self._transaction("append audit event") as db:
            await _append_audit(db, event)

    async def audit_trail(
        self,
        *,
        scim_id: str | None = None,
        sonar_key: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        check_page(0, limit)
        conditions: dict[str, Any] = {"scim_id = ": scim_id, "sonar_key = ": sonar_key}
        if since is not None:
            conditions["at >= "] = _utc(since)
        given = [(condition, value) for condition, value in conditions.items() if value is not None]
        where = " AND ".join(f"{condition}${n}" for n, (condition, _) in enumerate(given, 1)) or "true"
        rows = await self._fetch_all(
            "read audit trail",
            f"SELECT {AUDIT_COLUMNS} FROM audit_events WHERE {where}"  # noqa: S608 - constant conditions
            f" ORDER BY at DESC, seq DESC LIMIT ${len(given) + 1}",
            *(value for _, value in given),
            limit,
        )
        return [_audit_from_row(row) for row in rows]

    async def check_writable(self) -> None:
        # A standby or a read-only default makes the transaction read-only; missing grants are the other
        # way a reachable database refuses writes. Nothing is written.
        async with self._transaction("check writable") as db:
            if await db.fetchval("SELECT current_setting('transaction_read_only')") == "on":
                raise StoreError(f"the database {self._target} is read-only (a standby?)")
            if not await db.fetchval(
                "SELECT bool_and(has_table_privilege(t, 'SELECT, INSERT, UPDATE, DELETE'))"
                " FROM unnest(ARRAY['scim_users', 'scim_groups', 'group_members', 'audit_events']) AS t"
            ):
                raise StoreError(f"the user {self._target.user!r} may not write the store's tables")

    @asynccontextmanager
    async def hold(self, *keys: str) -> AsyncIterator[None]:
        """Hold the advisory locks of `keys` (e.g. `id_key(...)`) until the block ends, against every
        replica on this database: what `KeyedLocks` does inside one process. Keys are taken in sorted order
        (no two holders deadlock on them; a deadlock PostgreSQL detects otherwise is a `StoreError`).
        Take the process's own `KeyedLocks` first, so that a process waits in memory, not on a connection."""
        ordered = sorted(set(keys))
        lock_pool = self._lock_pool
        if self._pool is None or lock_pool is None:
            raise StoreError("the store is closed")
        started = time.perf_counter()
        try:
            db = await lock_pool.acquire()
        except _DRIVER_ERRORS as exc:
            raise _translated("hold locks", exc) from exc
        try:
            # Session locks, not transaction ones: no transaction stays open during SonarQube calls.
            try:
                for key in ordered:
                    await db.execute("SELECT pg_advisory_lock($1)", _lock_id(key))
            except _DRIVER_ERRORS as exc:
                raise _translated("hold locks", exc) from exc
            if self._metrics is not None:
                self._metrics.store_operation("hold locks", time.perf_counter() - started)
            yield  # the block's own errors pass through untouched
        finally:
            # Releasing resets the connection, which runs pg_advisory_unlock_all (also after a failure or a
            # cancel); a connection that cannot be reset is closed, and the server drops its locks with it.
            with suppress(*_DRIVER_ERRORS):
                await lock_pool.release(db)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        lock_pool, self._lock_pool = self._lock_pool, None
        try:
            for each in (pool, lock_pool):
                if each is not None:
                    await each.close()
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"closing {self._target}: {exc}") from exc


def _lock_id(key: str) -> int:
    """The bigint advisory-lock id of a lock key: the same in every replica and every Python run (unlike
    `hash`)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
