"""The embedded state store: one SQLite file (or `:memory:`) through aiosqlite.

One connection, so one writer: aiosqlite runs it on its own thread, and an `asyncio.Lock` keeps each
operation (and each transaction) whole while other coroutines wait. The database is in WAL mode with
`synchronous=FULL`, foreign keys on and a busy timeout. Writes run in `BEGIN IMMEDIATE` transactions.
Datetimes are ISO-8601 UTC text, JSON is TEXT, and case-insensitive keys are stored casefolded.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sqlite3
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar, cast

import aiosqlite

from scim_bridge.store._migrations import load_migrations
from scim_bridge.store.errors import StoreConflict, StoreError, StoreLocked, StoreMissing, StoreNotFound
from scim_bridge.store.layout import GROUPS, USERS, check_page, distinct_ids, one_criterion
from scim_bridge.store.records import AuditEvent, GroupRecord, ResourceRecord, UserRecord, casefold_key

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Mapping

    from scim_bridge.metrics import Metrics
    from scim_bridge.store._migrations import Migration
    from scim_bridge.store.records import ResourceType

MEMORY: Final = ":memory:"
RecordT = TypeVar("RecordT", bound=ResourceRecord)
BUSY_TIMEOUT_SECONDS: Final = 5.0

# A UNIQUE failure names "table.column"; this maps the column to the record field a caller knows. It is
# the backstop: writes look for taken keys first, so the reported field does not depend on index order.
_UNIQUE_FIELDS: Final = {
    "scim_id": "scim_id",
    "user_name_folded": "user_name",
    "sonar_login": "sonar_login",
    "sonar_id": "sonar_id",
    "display_name_folded": "display_name",
    "sonar_name": "sonar_name",
}

_AUDIT_COLUMNS: Final = "at, request_id, actor, action, resource_type, scim_id, sonar_key, outcome, detail"


# -- value codecs ------------------------------------------------------------------------------------------
def _text_from_datetime(stamp: datetime) -> str:
    return stamp.astimezone(UTC).isoformat(timespec="microseconds")


def _datetime_from_text(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _text_from_json(attributes: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(attributes), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"attributes are not JSON-serialisable: {exc}") from exc


def _shared_fields(row: sqlite3.Row) -> dict[str, Any]:
    """The `ResourceRecord` fields of a user or group row."""
    return {
        "scim_id": row["scim_id"],
        "sonar_id": row["sonar_id"],
        "external_id": row["external_id"],
        "attributes": json.loads(row["attributes"]),
        "created": _datetime_from_text(row["created"]),
        "last_modified": _datetime_from_text(row["last_modified"]),
        "version": row["version"],
    }


def _shared_params(record: ResourceRecord) -> dict[str, Any]:
    """The columns every resource table has, from a user or group record."""
    return {
        "scim_id": record.scim_id,
        "sonar_id": record.sonar_id,
        "external_id": record.external_id,
        "attributes": _text_from_json(record.attributes),
        "created": _text_from_datetime(record.created),
        "last_modified": _text_from_datetime(record.last_modified),
        "version": record.version,
    }


def _user_from_row(row: sqlite3.Row) -> UserRecord:
    return UserRecord(
        **_shared_fields(row),
        user_name=row["user_name"],
        sonar_login=row["sonar_login"],
        active=bool(row["active"]),
        settled=bool(row["settled"]),
    )


def _user_params(record: UserRecord) -> dict[str, Any]:
    return {
        **_shared_params(record),
        "user_name": record.user_name,
        "user_name_folded": casefold_key(record.user_name),
        "sonar_login": record.sonar_login,
        "active": int(record.active),
        "settled": int(record.settled),
    }


def _group_from_row(row: sqlite3.Row) -> GroupRecord:
    return GroupRecord(**_shared_fields(row), display_name=row["display_name"], sonar_name=row["sonar_name"])


def _group_params(record: GroupRecord) -> dict[str, Any]:
    return {
        **_shared_params(record),
        "display_name": record.display_name,
        "display_name_folded": casefold_key(record.display_name),
        "sonar_name": record.sonar_name,
    }


def _audit_from_row(row: sqlite3.Row) -> AuditEvent:
    return AuditEvent(
        at=_datetime_from_text(row["at"]),
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
    """One table of SCIM resources and how its records map to rows. Every SQL text is built from these
    constants once; values are always bound, never formatted into SQL."""

    name: str
    resource_type: ResourceType
    columns: tuple[str, ...]  # every column but `seq`, `scim_id` first
    # Unique keys in the order a conflict names them: (field, column). The scim_id comes first so that a
    # replayed insert is recognisable.
    unique: tuple[tuple[str, str], ...]
    criteria: Mapping[str, str]  # find criterion -> column
    from_row: Callable[[sqlite3.Row], RecordT]
    params: Callable[[RecordT], dict[str, Any]]

    @property
    def select(self) -> str:
        return f"SELECT {', '.join(self.columns)} FROM {self.name}"  # noqa: S608 - constant names

    @property
    def insert(self) -> str:
        names = ", ".join(self.columns)
        values = ", ".join(f":{column}" for column in self.columns)
        return f"INSERT INTO {self.name} ({names}) VALUES ({values})"  # noqa: S608 - constant names

    @property
    def update(self) -> str:
        assignments = ", ".join(f"{column} = :{column}" for column in self.columns[1:])
        return f"UPDATE {self.name} SET {assignments} WHERE scim_id = :scim_id"  # noqa: S608 - constants


_USERS: Final = _Table(**USERS.as_fields(), from_row=_user_from_row, params=_user_params)
_GROUPS: Final = _Table(**GROUPS.as_fields(), from_row=_group_from_row, params=_group_params)


# -- small helpers -----------------------------------------------------------------------------------------


async def _refuse_taken(
    db: aiosqlite.Connection, table: _Table[Any], params: Mapping[str, Any], *, updating: bool
) -> None:
    """`StoreConflict` naming the first unique key that another row already holds."""
    this_row = params["scim_id"] if updating else None
    for field, column in table.unique:
        if params[column] is None:
            continue
        sql = f"SELECT 1 FROM {table.name} WHERE {column} = ? AND scim_id IS NOT ?"  # noqa: S608 - constants
        if list(await db.execute_fetchall(sql, (params[column], this_row))):
            raise StoreConflict(field, f"{field} is already taken")


def _conflict_from(exc: sqlite3.IntegrityError) -> StoreConflict | None:
    """The conflict a UNIQUE failure ("UNIQUE constraint failed: table.column") stands for."""
    if exc.sqlite_errorname not in {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}:
        return None
    column = str(exc).rpartition(".")[2]
    field = _UNIQUE_FIELDS.get(column)
    return None if field is None else StoreConflict(field, f"{field} is already taken")


def split_statements(script: str) -> list[str]:
    """The statements of a migration script, one per `;`-terminated chunk (comments may trail)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    leftover = [line for line in pending.splitlines() if line.strip() and not line.lstrip().startswith("--")]
    if leftover:
        raise StoreError("migration script ends with an incomplete statement")
    return statements


class SqliteStore:
    """The `StateStore` on one SQLite database. Build it with `await SqliteStore.open(path)`."""

    def __init__(self, db: aiosqlite.Connection, location: str, process_lock: int | None = None) -> None:
        self._db: aiosqlite.Connection | None = db
        self._location = location
        self._lock = asyncio.Lock()
        self._process_lock = process_lock  # the open lock file that keeps other bridge processes out
        self._metrics: Metrics | None = None

    def observe(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"SqliteStore({self._location!r})"

    @classmethod
    async def open(
        cls, location: Path | Literal[":memory:"], *, create: bool = True, exclusive: bool = True
    ) -> SqliteStore:
        """Open the database at `location` (creating it unless `create` is false), configure it and bring its
        schema up to date. With `exclusive`, no other process may hold the store open exclusively at the same
        time (`StoreLocked` otherwise): the bridge's per-resource locks only work inside one process.

        A new file is created readable by its owner only: it holds personal data.
        """
        where = MEMORY if location == MEMORY else str(_database_file(Path(location), create=create))
        process_lock = _lock_out_other_processes(where) if exclusive and where != MEMORY else None
        try:
            db = await aiosqlite.connect(where, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        except sqlite3.Error as exc:
            _release(process_lock)
            raise StoreError(f"cannot open SQLite database {where}: {exc}") from exc
        store = cls(db, where, process_lock)
        try:
            await store._configure()
            await store._migrate(load_migrations("sqlite"))
        except BaseException:
            await store.close()
            raise
        return store

    # -- plumbing ----------------------------------------------------------------------------------------
    @asynccontextmanager
    async def _connection(self, what: str) -> AsyncIterator[aiosqlite.Connection]:
        """The connection, held alone for one operation (`what`, also its metrics label); sqlite3 errors
        become `StoreError`s."""
        started = time.perf_counter()
        try:
            async with self._lock:
                if self._db is None:
                    raise StoreError("the store is closed")
                try:
                    yield self._db
                except sqlite3.IntegrityError as exc:
                    conflict = _conflict_from(exc)
                    if conflict is not None:
                        raise conflict from exc
                    raise StoreError(f"{what}: {exc}") from exc
                except sqlite3.Error as exc:
                    raise StoreError(f"{what}: {exc}") from exc
        finally:
            if self._metrics is not None:
                self._metrics.store_operation(what, time.perf_counter() - started)

    @asynccontextmanager
    async def _transaction(self, what: str) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction: committed if the block succeeds, rolled back otherwise (also on cancel)."""
        async with self._connection(what) as db:
            try:
                await db.execute("BEGIN IMMEDIATE")
                yield db
            except BaseException:
                # Queued on the connection's thread before the lock is released, so nothing slips in.
                await db.rollback()
                raise
            await db.commit()

    async def _configure(self) -> None:
        async with self._connection("configure SQLite") as db:
            db.row_factory = sqlite3.Row
            await db.execute("PRAGMA journal_mode = WAL")
            # FULL: a change acknowledged to Entra survives a power loss (docs/reliability.md); in WAL mode it
            # costs one fsync per transaction.
            await db.execute("PRAGMA synchronous = FULL")
            await db.execute("PRAGMA foreign_keys = ON")
            await db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")

    async def _migrate(self, migrations: tuple[Migration, ...]) -> None:
        """Apply the migrations newer than the database, each in its own transaction."""
        known = len(migrations)
        while True:
            async with self._transaction("migrate schema") as db:
                await db.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version ("
                    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
                rows = list(await db.execute_fetchall("SELECT MAX(version) FROM schema_version"))
                current = rows[0][0] or 0
                if current > known:
                    raise StoreError(
                        f"the database {self._location} has schema version {current}, newer than the "
                        f"{known} this scim-bridge knows: run a newer scim-bridge or restore a backup"
                    )
                if current == known:
                    return
                migration = migrations[current]
                for statement in split_statements(migration.sql):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, _text_from_datetime(datetime.now(UTC))),
                )

    async def _fetch_all(self, what: str, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        async with self._connection(what) as db:
            return list(await db.execute_fetchall(sql, params))

    async def _fetch_one(self, what: str, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = await self._fetch_all(what, sql, params)
        return rows[0] if rows else None

    async def _get(self, table: _Table[RecordT], scim_id: str) -> RecordT | None:
        sql = f"{table.select} WHERE scim_id = ?"
        row = await self._fetch_one(f"get {table.resource_type}", sql, (scim_id,))
        return None if row is None else table.from_row(row)

    async def _find(self, table: _Table[RecordT], criteria: Mapping[str, str | None]) -> RecordT | None:
        column, key = one_criterion(table.criteria, criteria)
        row = await self._fetch_one(
            f"find {table.resource_type}",
            f"{table.select} WHERE {column} = ? ORDER BY created, seq LIMIT 1",
            (key,),
        )
        return None if row is None else table.from_row(row)

    async def _list(self, table: _Table[RecordT], offset: int, limit: int) -> tuple[list[RecordT], int]:
        check_page(offset, limit)
        async with self._connection(f"list {table.name}") as db:
            counted = await db.execute_fetchall(f"SELECT COUNT(*) FROM {table.name}")  # noqa: S608 - constant
            total = next(iter(counted))[0]
            rows = await db.execute_fetchall(
                f"{table.select} ORDER BY created, seq LIMIT ? OFFSET ?", (limit, offset)
            )
            return [table.from_row(row) for row in rows], total

    async def _insert(self, table: _Table[RecordT], record: RecordT) -> None:
        params = table.params(record)
        async with self._transaction(f"insert {table.resource_type}") as db:
            await _refuse_taken(db, table, params, updating=False)
            await db.execute(table.insert, params)

    async def _update(self, table: _Table[RecordT], record: RecordT, expected_version: int) -> None:
        params = table.params(record)
        async with self._transaction(f"update {table.resource_type}") as db:
            sql = f"SELECT version FROM {table.name} WHERE scim_id = ?"  # noqa: S608 - constant table
            rows = list(await db.execute_fetchall(sql, (record.scim_id,)))
            if not rows:
                raise StoreNotFound(table.resource_type, (record.scim_id,))
            if rows[0][0] != expected_version:
                raise StoreConflict("version", f"stored version is {rows[0][0]}, expected {expected_version}")
            await _refuse_taken(db, table, params, updating=True)
            await db.execute(table.update, params)

    async def _delete(self, table: _Table[Any], scim_id: str) -> bool:
        async with self._transaction(f"delete {table.resource_type}") as db:
            sql = f"DELETE FROM {table.name} WHERE scim_id = ?"  # noqa: S608 - constant table
            cursor = await db.execute(sql, (scim_id,))
            return cursor.rowcount > 0

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
        # The e-mails live in the attributes JSON; SQLite's lower() folds ASCII only, so callers re-check.
        rows = await self._fetch_all(
            "find users by e-mail",
            f"{_USERS.select} WHERE EXISTS ("  # noqa: S608 - constant names
            " SELECT 1 FROM json_each(scim_users.attributes, '$.emails') AS email"
            " WHERE lower(json_extract(email.value, '$.value')) = lower(?)) ORDER BY created, seq",
            (email,),
        )
        return [_user_from_row(row) for row in rows]

    async def list_users(self, *, offset: int, limit: int) -> tuple[list[UserRecord], int]:
        return await self._list(_USERS, offset, limit)

    async def insert_user(self, record: UserRecord) -> None:
        await self._insert(_USERS, record)

    async def update_user(self, record: UserRecord, *, expected_version: int) -> None:
        await self._update(_USERS, record, expected_version)

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
        async with self._transaction("insert Group") as db:
            params = _GROUPS.params(record)
            await _refuse_taken(db, _GROUPS, params, updating=False)
            await self._require_users(db, ids)
            await db.execute(_GROUPS.insert, params)
            await db.executemany(
                "INSERT INTO group_members (group_id, user_id) VALUES (?, ?)",
                [(record.scim_id, user_id) for user_id in ids],
            )

    async def update_group(self, record: GroupRecord, *, expected_version: int) -> None:
        await self._update(_GROUPS, record, expected_version)

    async def delete_group(self, scim_id: str) -> bool:
        return await self._delete(_GROUPS, scim_id)

    # -- desired memberships -----------------------------------------------------------------------------
    @staticmethod
    async def _require_group(db: aiosqlite.Connection, group_id: str) -> None:
        rows = list(await db.execute_fetchall("SELECT 1 FROM scim_groups WHERE scim_id = ?", (group_id,)))
        if not rows:
            raise StoreNotFound("Group", (group_id,))

    @staticmethod
    async def _require_users(db: aiosqlite.Connection, user_ids: list[str]) -> None:
        rows = await db.execute_fetchall(
            "SELECT scim_id FROM scim_users WHERE scim_id IN (SELECT value FROM json_each(?))",
            (json.dumps(user_ids),),
        )
        missing = set(user_ids) - {row[0] for row in rows}
        if missing:
            raise StoreNotFound("User", tuple(sorted(missing)))

    async def add_members(self, group_id: str, user_ids: Iterable[str]) -> None:
        ids = distinct_ids(user_ids)
        async with self._transaction("add members") as db:
            await self._require_group(db, group_id)
            await self._require_users(db, ids)
            await db.executemany(
                "INSERT INTO group_members (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(group_id, user_id) for user_id in ids],
            )

    async def remove_members(self, group_id: str, user_ids: Iterable[str]) -> None:
        ids = distinct_ids(user_ids)
        async with self._transaction("remove members") as db:
            await self._require_group(db, group_id)
            await db.execute(
                "DELETE FROM group_members"
                " WHERE group_id = ? AND user_id IN (SELECT value FROM json_each(?))",
                (group_id, json.dumps(ids)),
            )

    async def members_of(self, group_id: str) -> set[str]:
        rows = await self._fetch_all(
            "list members", "SELECT user_id FROM group_members WHERE group_id = ?", (group_id,)
        )
        return {row[0] for row in rows}

    async def groups_of(self, user_id: str) -> set[str]:
        rows = await self._fetch_all(
            "list groups of user", "SELECT group_id FROM group_members WHERE user_id = ?", (user_id,)
        )
        return {row[0] for row in rows}

    # -- audit and lifecycle -----------------------------------------------------------------------------
    async def append_audit(self, event: AuditEvent) -> None:
        async with self._transaction("append audit event") as db:
            await db.execute(
                f"INSERT INTO audit_events ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - constant columns
                (
                    _text_from_datetime(event.at),
                    event.request_id,
                    event.actor,
                    event.action,
                    event.resource_type,
                    event.scim_id,
                    event.sonar_key,
                    event.outcome,
                    event.detail,
                ),
            )

    async def audit_trail(
        self,
        *,
        scim_id: str | None = None,
        sonar_key: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        check_page(0, limit)
        conditions = {"scim_id = ?": scim_id, "sonar_key = ?": sonar_key}
        if since is not None:
            conditions["at >= ?"] = _text_from_datetime(since)
        given = [(condition, value) for condition, value in conditions.items() if value is not None]
        where = " AND ".join(condition for condition, _ in given) or "1"
        rows = await self._fetch_all(
            "read audit trail",
            f"SELECT {_AUDIT_COLUMNS} FROM audit_events WHERE {where}"  # noqa: S608 - constant conditions
            " ORDER BY at DESC, seq DESC LIMIT ?",
            (*(value for _, value in given), limit),
        )
        return [_audit_from_row(row) for row in rows]

    @asynccontextmanager
    async def hold(self, *keys: str) -> AsyncIterator[None]:
        del keys  # one process per file: its own KeyedLocks already serialise every write
        yield

    async def check_writable(self) -> None:
        # Taking the write lock proves the file is writable and no other writer holds it; nothing is written.
        async with self._transaction("check writable") as db:
            await db.execute("SELECT 1")

    async def close(self) -> None:
        async with self._lock:
            db, self._db = self._db, None
            process_lock, self._process_lock = self._process_lock, None
            try:
                if db is not None:
                    await db.close()
            except sqlite3.Error as exc:
                raise StoreError(f"closing {self._location}: {exc}") from exc
            finally:
                _release(process_lock)


def _lock_out_other_processes(database: str) -> int:
    """Hold `<database>.lock` exclusively for as long as the store is open: a second bridge process on the
    same file would lose updates, its locks being per process. (Blocking, but once at start.)"""
    path = f"{database}.lock"
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot create the lock file {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(descriptor)
        raise StoreLocked(
            f"another scim-bridge process is using the state store {database} (it holds {path}); "
            "one process per SQLite file"
        ) from exc
    return descriptor


def _release(process_lock: int | None) -> None:
    if process_lock is not None:
        os.close(process_lock)  # closing the descriptor releases the lock


def _database_file(path: Path, *, create: bool) -> Path:
    """The database file's absolute path; with `create`, its directory and an empty file readable by its
    owner only are created if missing. (Blocking, but once at start.)"""
    if not create:
        if not path.is_file():
            raise StoreMissing(f"there is no state store at {path.absolute()}")
        return path.absolute()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the SQLite database {path}: {exc.strerror}") from exc
    return path.absolute()
