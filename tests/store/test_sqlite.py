"""What only the SQLite backend promises: its pragmas, its migrations, its file, and error translation."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import pytest

from scim_bridge.store import SqliteStore, StoreError, StoreLocked, UserRecord
from scim_bridge.store._migrations import Migration, load_migrations
from scim_bridge.store.sqlite import split_statements

if TYPE_CHECKING:
    from pathlib import Path

MakeUser = Callable[..., UserRecord]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "store.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    """A file-backed SQLite store, closed after the test."""
    opened = await SqliteStore.open(db_path)
    yield opened
    await opened.close()


def schema_rows(path: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(path) as raw:
        rows = raw.execute("SELECT version, name, applied_at FROM schema_version ORDER BY version").fetchall()
    raw.close()
    return rows


def file_modes(path: Path) -> tuple[int, int]:
    """The permission bits of a file and of its directory."""
    return stat.S_IMODE(path.stat().st_mode), stat.S_IMODE(path.parent.stat().st_mode)


def write_garbage(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database, just text long enough to look like a header" * 20)


def set_schema_version(path: Path, version: int) -> None:
    with sqlite3.connect(path) as raw:
        raw.execute("INSERT INTO schema_version VALUES (?, 'future', '2099-01-01T00:00')", (version,))
    raw.close()


@pytest.mark.parametrize(
    ("pragma", "expected"),
    [("journal_mode", "wal"), ("synchronous", 2), ("foreign_keys", 1), ("busy_timeout", 5000)],
)
async def test_pragmas(store: SqliteStore, pragma: str, expected: object) -> None:
    """The connection runs in WAL mode with synchronous=FULL, foreign keys on and a busy timeout."""
    assert expected == await store._run(
        "test", lambda db: db.execute(f"PRAGMA {pragma}").fetchone()[0], write=False
    )


async def test_new_file_is_private(store: SqliteStore, db_path: Path) -> None:
    """A new database file is readable by its owner only, in a directory only its owner may enter."""
    assert file_modes(db_path) == (0o600, 0o700)


def test_shipped_migrations_are_contiguous_and_split() -> None:
    """Shipped SQLite migrations are numbered 1..N and each splits into complete statements."""
    migrations = load_migrations("sqlite")
    assert list(range(1, len(migrations) + 1)) == [migration.version for migration in migrations]
    for migration in migrations:
        assert all(sqlite3.complete_statement(statement) for statement in split_statements(migration.sql))


async def test_migrations_run_once(db_path: Path, make_user: MakeUser) -> None:
    """Each migration is recorded once; reopening applies nothing again and keeps the data."""
    first = await SqliteStore.open(db_path)
    await first.insert_user(make_user("alice"))
    await first.close()
    applied = schema_rows(db_path)
    assert [(m.version, m.name) for m in load_migrations("sqlite")] == [row[:2] for row in applied]
    second = await SqliteStore.open(db_path)
    try:
        assert applied == schema_rows(db_path)
        assert await second.get_user("u-alice") is not None
    finally:
        await second.close()


async def test_future_schema_version_is_refused(db_path: Path) -> None:
    """A database migrated by a newer scim-bridge is refused with a clear error, and left untouched."""
    await (await SqliteStore.open(db_path)).close()
    known = len(load_migrations("sqlite"))
    set_schema_version(db_path, known + 1)
    with pytest.raises(StoreError, match=rf"schema version {known + 1}, newer than the {known}"):
        await SqliteStore.open(db_path)
    assert known + 1 == schema_rows(db_path)[-1][0]


async def test_failed_migration_is_rolled_back(store: SqliteStore) -> None:
    """A migration that fails part-way leaves no trace: neither its tables nor its version row."""
    known = load_migrations("sqlite")
    broken = Migration(len(known) + 1, "broken", "CREATE TABLE half_done (a TEXT);\nSELECT * FROM missing;\n")
    with pytest.raises(StoreError, match="missing"):
        await store._migrate((*known, broken))
    tables = await store._run(
        "test", lambda db: db.execute("SELECT name FROM sqlite_master").fetchall(), write=False
    )
    assert "half_done" not in {row[0] for row in tables}
    versions = await store._run(
        "test", lambda db: db.execute("SELECT version FROM schema_version").fetchall(), write=False
    )
    assert len(known) == max(row[0] for row in versions)
    assert await store.list_users(offset=0, limit=1) == ([], 0)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param("CREATE TABLE a (x);\n", ["CREATE TABLE a (x);"], id="one"),
        pytest.param(
            "-- head\nCREATE TABLE a (x);\n\nCREATE TABLE b (y);\n",
            ["-- head\nCREATE TABLE a (x);", "CREATE TABLE b (y);"],
            id="comment-leads",
        ),
        pytest.param(
            "CREATE TABLE a (\n  x TEXT -- why; not a split\n);\n-- trailing note\n",
            ["CREATE TABLE a (\n  x TEXT -- why; not a split\n);"],
            id="comment-with-semicolon",
        ),
        pytest.param("INSERT INTO a VALUES ('x;y');\n", ["INSERT INTO a VALUES ('x;y');"], id="in-string"),
        pytest.param("", [], id="empty"),
    ],
)
def test_split_statements(script: str, expected: list[str]) -> None:
    """Migration scripts split at statement ends only, never inside strings or comments."""
    assert expected == split_statements(script)


def test_split_statements_refuses_a_dangling_statement() -> None:
    """A script whose last statement lacks its semicolon is an error, not silently dropped."""
    with pytest.raises(StoreError, match="incomplete"):
        split_statements("CREATE TABLE a (x);\nCREATE TABLE b (y)\n")


async def test_not_a_database_is_a_store_error(db_path: Path) -> None:
    """Opening a file that is not SQLite raises StoreError caused by the sqlite3 error."""
    write_garbage(db_path)
    with pytest.raises(StoreError, match="not a database") as caught:
        await SqliteStore.open(db_path)
    assert isinstance(caught.value.__cause__, sqlite3.Error)


async def test_sqlite_errors_are_translated(store: SqliteStore) -> None:
    """A failing statement surfaces as StoreError naming the operation, chained to the sqlite3 error."""
    await store._run("test", lambda db: db.execute("DROP TABLE audit_events"), write=True)
    with pytest.raises(StoreError, match="read audit trail: no such table") as caught:
        await store.audit_trail()
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)


async def test_cancelled_write_leaves_the_store_usable(store: SqliteStore, make_user: MakeUser) -> None:
    """A write whose caller is cancelled is done whole or not at all, and does not block the next one."""
    alice = make_user("alice")
    task = asyncio.create_task(store.insert_user(alice))
    await asyncio.sleep(0)  # let it hand its unit of work to the database thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await store.insert_user(make_user("bob"))  # queued behind alice's unit, if that runs
    assert not await store._run("test", lambda db: db.in_transaction, write=False)
    assert [record.scim_id for record in (await store.list_users(offset=0, limit=10))[0]] in (
        ["u-bob"],
        ["u-alice", "u-bob"],
    )
    assert await store.get_user("u-alice") in (None, alice)


async def test_repr_names_the_location(store: SqliteStore, db_path: Path) -> None:
    """The store's repr says where its data lives."""
    assert f"SqliteStore({str(db_path)!r})" == repr(store)


async def test_one_process_per_file(tmp_path: Path) -> None:
    """A second exclusive open of the same file (another bridge) is refused while the first holds it; a
    reader (check, audit) may open it beside; once closed, the file is free again."""
    path = tmp_path / "state.db"
    first = await SqliteStore.open(path)
    try:
        with pytest.raises(StoreLocked, match="another scim-bridge process"):
            await SqliteStore.open(path)
        reader = await SqliteStore.open(path, exclusive=False)
        await reader.close()
    finally:
        await first.close()
    again = await SqliteStore.open(path)
    await again.close()


class _BusyReader:
    """A read connection that SQLite answers busy, as it can while it recovers a WAL file."""

    def execute(self, *_args: object) -> sqlite3.Cursor:
        busy = sqlite3.OperationalError("database is locked")
        busy.sqlite_errorname = "SQLITE_BUSY"
        raise busy

    def close(self) -> None:
        """Nothing to close."""


async def test_a_read_answered_busy_on_the_event_loop_is_made_on_the_database_thread(
    store: SqliteStore, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads run on the event loop through a connection that never waits; one SQLite answers busy there is
    made again on the database thread, which waits as writes do, and finds what is stored."""
    alice = make_user("alice")
    await store.insert_user(alice)
    monkeypatch.setattr(store, "_reader", _BusyReader())

    assert await store.get_user(alice.scim_id) == alice


async def test_reads_see_every_write_that_was_answered(store: SqliteStore, make_user: MakeUser) -> None:
    """A read on the event loop sees each write the database thread has answered, at once."""
    for index in range(50):
        user = make_user(f"user{index}")
        await store.insert_user(user)
        assert await store.get_user(user.scim_id) == user
