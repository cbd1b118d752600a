"""The embedded state store: one SQLite file (or `:memory:`) through the standard library's `sqlite3`.

One writing connection, opened, used and closed on the store's own single database thread. Each write is
one synchronous unit of work (its whole `BEGIN IMMEDIATE` ... `COMMIT`) run there in one hand-off from the
event loop: a hand-off per statement cost much of the bridge's CPU, and keeping writes on that thread keeps
busy waits and fsyncs off the loop. The one thread runs units one after another, so none interleaves with
another. Reads of a file database run on the event loop through a read-only connection that never waits
(`_fetch_all`); those of `:memory:` and listings go through the thread. The database is in WAL mode with
`synchronous=FULL`, foreign keys on and a busy timeout. Datetimes are ISO-8601 UTC text, JSON is TEXT, and
case-insensitive keys are stored casefolded.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import queue
import sqlite3
import threading
import time
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar, cast

from scim_bridge.store._migrations import load_migrations
from scim_bridge.store.errors import StoreConflict, StoreError, StoreLocked, StoreMissing, StoreNotFound
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

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence

    from scim_bridge.metrics import Metrics
    from scim_bridge.store._migrations import Migration
    from scim_bridge.store.records import ResourceType

MEMORY: Final = ":memory:"
RecordT = TypeVar("RecordT", bound=ResourceRecord)
T = TypeVar("T")
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


# -- small helpers: each runs on the database thread, inside its caller's unit of work --------------------
def _refuse_taken(
    db: sqlite3.Connection, table: _Table[Any], params: Mapping[str, Any], *, updating: bool
) -> None:
    """`StoreConflict` naming the first unique key (in `table.unique` order) that another row already holds.
    One statement for all the keys: each statement of a write gives the GIL back and waits for it again,
    which costs most when the event loop is busy (docs/performance.md)."""
    keys = [(field, column) for field, column in table.unique if params[column] is not None]
    taken = ", ".join(f"MAX({column} = ?)" for _, column in keys)
    either = " OR ".join(f"{column} = ?" for _, column in keys)
    values = [params[column] for _, column in keys]
    this_row = params["scim_id"] if updating else None
    sql = f"SELECT {taken} FROM {table.name} WHERE ({either}) AND scim_id IS NOT ?"  # noqa: S608 - constants
    held = db.execute(sql, (*values, *values, this_row)).fetchone()
    for (field, _), hit in zip(keys, held, strict=True):
        if hit:
            raise StoreConflict(field, f"{field} is already taken")


def _require_group(db: sqlite3.Connection, group_id: str) -> None:
    if not db.execute("SELECT 1 FROM scim_groups WHERE scim_id = ?", (group_id,)).fetchall():
        raise StoreNotFound("Group", (group_id,))


def _require_users(db: sqlite3.Connection, user_ids: list[str]) -> None:
    rows = db.execute(
        "SELECT scim_id FROM scim_users WHERE scim_id IN (SELECT value FROM json_each(?))",
        (json.dumps(user_ids),),
    ).fetchall()
    missing = set(user_ids) - {row[0] for row in rows}
    if missing:
        raise StoreNotFound("User", tuple(sorted(missing)))


def _configure(db: sqlite3.Connection) -> None:
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode = WAL")
    # FULL: a change acknowledged to Entra survives a power loss (docs/reliability.md); in WAL mode it costs
    # one fsync per transaction.
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")


def _append_audit(db: sqlite3.Connection, event: AuditEvent) -> None:
    db.execute(
        f"INSERT INTO audit_events ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - constant columns
        audit_values(event, _text_from_datetime(event.at)),
    )


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


_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[T]", "Callable[[], T]"]
"""A unit of work for the database thread: the loop to answer on, the future to answer, the work."""


class _DatabaseThread:
    """One thread running units of work one after another, each handed over in one queue put and answered
    in one `call_soon_threadsafe`: half the cost per hand-off of `run_in_executor`, whose executor machinery
    showed in the profiles (docs/performance.md)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        # A daemon: a store never closed must not keep the interpreter from exiting.
        self._thread = threading.Thread(target=self._serve, name="scim-bridge-sqlite", daemon=True)
        self._thread.start()

    def call(self, work: Callable[[], T]) -> asyncio.Future[T]:
        """`work()` run on the thread after everything handed over before it."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, answer, work))
        return answer

    def stop(self) -> None:
        """End the thread once the units already handed over are done."""
        self._queue.put(None)

    def _serve(self) -> None:
        while (job := self._queue.get()) is not None:
            loop, answer, work = job
            if answer.cancelled():
                continue  # its caller gave up before it started: it never runs
            try:
                result = work()
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine, which re-raises it
                _answer(loop, answer, None, exc)
            else:
                _answer(loop, answer, result, None)


def _answer(
    loop: asyncio.AbstractEventLoop, answer: asyncio.Future[Any], result: Any, error: BaseException | None
) -> None:
    def settle() -> None:
        if answer.cancelled():
            return
        if error is None:
            answer.set_result(result)
        else:
            answer.set_exception(error)

    with suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
        loop.call_soon_threadsafe(settle)


class SqliteStore:
    """The `StateStore` on one SQLite database. Build it with `await SqliteStore.open(path)`."""

    def __init__(self, location: str, process_lock: int | None = None) -> None:
        self._location = location
        self._process_lock = process_lock  # the open lock file that keeps other bridge processes out
        self._metrics: Metrics | None = None
        # The database thread: the connection is opened, used and closed there only, one unit at a time.
        self._thread = _DatabaseThread()
        self._db: sqlite3.Connection | None = None  # touched on the database thread only
        # Reads of a file database run on the event loop through a connection of their own (see `_fetch_all`).
        self._reader: sqlite3.Connection | None = None
        self._closing: asyncio.Future[None] | None = None  # the closing, once `close` was called

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
        store = cls(where, process_lock)
        try:
            await store._thread.call(store._connect)
            await store._run("configure SQLite", _configure, write=False)
            await store._migrate(load_migrations("sqlite"))
            if where != MEMORY:  # each `:memory:` connection is a database of its own
                store._reader = _reader(where)
        except BaseException:
            await store.close()  # also releases the process lock
            raise
        return store

    # -- plumbing ----------------------------------------------------------------------------------------
    def _connect(self) -> None:
        """Open the connection, on the database thread."""
        try:
            self._db = sqlite3.connect(self._location, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self._location}: {exc}") from exc

    async def _run(self, what: str, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """The result of `work` done on the database thread as one unit (`what`, also its metrics label), in
        one `BEGIN IMMEDIATE` transaction if it may `write`; sqlite3 errors become `StoreError`s. A unit the
        thread has started runs whole even if its caller is cancelled; one not yet started never runs."""
        started = time.perf_counter()
        try:
            if self._closing is not None:
                raise StoreError("the store is closed")
            return await self._thread.call(lambda: self._unit(what, work, write=write))
        finally:
            if self._metrics is not None:
                self._metrics.store_operation(what, time.perf_counter() - started)

    def _unit(self, what: str, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """The body of `_run`, on the database thread: committed if `work` succeeds, rolled back otherwise."""
        db = self._db
        if db is None:
            raise StoreError("the store is closed")
        try:
            if write:
                db.execute("BEGIN IMMEDIATE")
                try:
                    result = work(db)
                    db.commit()
                except BaseException:
                    db.rollback()  # a no-op if SQLite has already rolled back
                    raise
            else:
                result = work(db)
        except sqlite3.IntegrityError as exc:
            raise (_conflict_from(exc) or StoreError(f"{what}: {exc}")) from exc
        except sqlite3.Error as exc:
            raise StoreError(f"{what}: {exc}") from exc
        return result

    async def _migrate(self, migrations: tuple[Migration, ...]) -> None:
        """Apply the migrations newer than the database, each in its own transaction."""
        known = len(migrations)

        def apply_next(db: sqlite3.Connection) -> bool:
            """Apply the next migration, if any; whether the schema was up to date."""
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            current: int = db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
            if current > known:
                raise StoreError(
                    f"the database {self._location} has schema version {current}, newer than the "
                    f"{known} this scim-bridge knows: run a newer scim-bridge or restore a backup"
                )
            if current == known:
                return True
            migration = migrations[current]
            for statement in split_statements(migration.sql):
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, _text_from_datetime(datetime.now(UTC))),
            )
            return False

        up_to_date = False
        while not up_to_date:
            up_to_date = await self._run("migrate schema", apply_next, write=True)

    async def _fetch_all(self, what: str, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """The rows of one query. On a file database it runs right here on the event loop, through the read
        connection: in WAL mode a reader never waits for the writer and never syncs to disk, while a
        hand-off to the database thread cost a read several times the read itself, waiting behind writes
        and for the GIL (docs/performance.md). Should SQLite answer busy all the same (it can while it
        recovers a WAL file), the query goes to the database thread, which waits as writes do."""
        reader = self._reader
        if reader is not None and self._closing is None:
            started = time.perf_counter()
            try:
                return reader.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorname not in {"SQLITE_BUSY", "SQLITE_LOCKED"}:
                    raise StoreError(f"{what}: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreError(f"{what}: {exc}") from exc
            finally:
                if self._metrics is not None:
                    self._metrics.store_operation(what, time.perf_counter() - started)
        return await self._run(what, lambda db: db.execute(sql, params).fetchall(), write=False)

    async def _fetch_one(self, what: str, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
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

        def count_and_page(db: sqlite3.Connection) -> tuple[list[RecordT], int]:
            total: int = db.execute(f"SELECT COUNT(*) FROM {table.name}").fetchone()[0]  # noqa: S608 - constant
            rows = db.execute(f"{table.select} ORDER BY created, seq LIMIT ? OFFSET ?", (limit, offset))
            return [table.from_row(row) for row in rows], total

        return await self._run(f"list {table.name}", count_and_page, write=False)

    async def _insert(self, table: _Table[RecordT], record: RecordT) -> None:
        params = table.params(record)

        def insert(db: sqlite3.Connection) -> None:
            _refuse_taken(db, table, params, updating=False)
            db.execute(table.insert, params)

        await self._run(f"insert {table.resource_type}", insert, write=True)

    async def _update(
        self, table: _Table[RecordT], record: RecordT, expected_version: int, audit: AuditEvent | None
    ) -> None:
        params = table.params(record)

        def update(db: sqlite3.Connection) -> None:
            sql = f"SELECT version FROM {table.name} WHERE scim_id = ?"  # noqa: S608 - constant table
            rows = db.execute(sql, (record.scim_id,)).fetchall()
            if not rows:
                raise StoreNotFound(table.resource_type, (record.scim_id,))
            if rows[0][0] != expected_version:
                raise StoreConflict("version", f"stored version is {rows[0][0]}, expected {expected_version}")
            _refuse_taken(db, table, params, updating=True)
            db.execute(table.update, params)
            if audit is not None:
                _append_audit(db, audit)

        await self._run(f"update {table.resource_type}", update, write=True)

    async def _delete(self, table: _Table[Any], scim_id: str) -> bool:
        sql = f"DELETE FROM {table.name} WHERE scim_id = ?"  # noqa: S608 - constant table
        return await self._run(
            f"delete {table.resource_type}", lambda db: db.execute(sql, (scim_id,)).rowcount > 0, write=True
        )

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

        def insert(db: sqlite3.Connection) -> None:
            params = _GROUPS.params(record)
            _refuse_taken(db, _GROUPS, params, updating=False)
            _require_users(db, ids)
            db.execute(_GROUPS.insert, params)
            db.executemany(
                "INSERT INTO group_members (group_id, user_id) VALUES (?, ?)",
                [(record.scim_id, user_id) for user_id in ids],
            )

        await self._run("insert Group", insert, write=True)

    async def update_group(
        self, record: GroupRecord, *, expected_version: int, audit: AuditEvent | None = None
    ) -> None:
        await self._update(_GROUPS, record, expected_version, audit)

    async def delete_group(self, scim_id: str) -> bool:
        return await self._delete(_GROUPS, scim_id)

    # -- desired memberships -----------------------------------------------------------------------------
    async def add_members(self, group_id: str, user_ids: Iterable[str]) -> None:
        ids = distinct_ids(user_ids)

        def add(db: sqlite3.Connection) -> None:
            _require_group(db, group_id)
            _require_users(db, ids)
            db.executemany(
                "INSERT INTO group_members (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(group_id, user_id) for user_id in ids],
            )

        await self._run("add members", add, write=True)

    async def remove_members(self, group_id: str, user_ids: Iterable[str]) -> None:
        ids = distinct_ids(user_ids)

        def remove(db: sqlite3.Connection) -> None:
            _require_group(db, group_id)
            db.execute(
                "DELETE FROM group_members"
                " WHERE group_id = ? AND user_id IN (SELECT value FROM json_each(?))",
                (group_id, json.dumps(ids)),
            )

        await self._run("remove members", remove, write=True)

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
        await self._run("append audit event", lambda db: _append_audit(db, event), write=True)

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
            f"SELECT {AUDIT_COLUMNS} FROM audit_events WHERE {where}"  # noqa: S608 - constant conditions
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
        def select_one(db: sqlite3.Connection) -> None:
            db.execute("SELECT 1")

        await self._run("check writable", select_one, write=True)

    async def close(self) -> None:
        if self._closing is None:
            # Queued behind every unit already handed over, so those finish first; later calls are refused.
            self._closing = self._thread.call(self._close_connection)
            reader, self._reader = self._reader, None
            if reader is not None:
                reader.close()
            self._thread.stop()  # the thread ends once its queue is done
            await asyncio.shield(self._closing)  # a cancelled caller must not stop the closing
        else:
            await asyncio.wait({self._closing})  # closing twice is harmless: wait for the first, quietly

    def _close_connection(self) -> None:
        """Close the connection and release the process lock, on the database thread."""
        db, self._db = self._db, None
        process_lock, self._process_lock = self._process_lock, None
        try:
            if db is not None:
                db.close()
        except sqlite3.Error as exc:
            raise StoreError(f"closing {self._location}: {exc}") from exc
        finally:
            _release(process_lock)


def _reader(database: str) -> sqlite3.Connection:
    """A read-only connection to `database` that never waits for a lock (busy timeout 0)."""
    try:
        reader = sqlite3.connect(database, timeout=0, isolation_level=None)
        reader.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open SQLite database {database} for reading: {exc}") from exc
    reader.row_factory = sqlite3.Row
    return reader


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
