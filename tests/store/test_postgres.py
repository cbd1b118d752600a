"""What only the PostgreSQL backend promises: migrations under an advisory lock, several replicas on one
database, error translation, and URLs and messages that never show the password."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import asyncpg
import pytest
from structlog.testing import capture_logs

from scim_bridge.store import StoreConflict, StoreError, StoreMissing, UserRecord, open_store
from scim_bridge.store._migrations import Migration, load_migrations
from scim_bridge.store.postgres import PostgresStore
from scim_bridge.store.url import check_store_url, postgres_target
from tests.postgres_server import free_port

if TYPE_CHECKING:
    from tests.postgres_server import PostgresServer

MakeUser = Callable[..., UserRecord]


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    """A PostgreSQL store on an empty database, closed after the test."""
    opened = await PostgresStore.open(postgres_url)
    yield opened
    await opened.close()


async def sql(url: str, statement: str, *args: object) -> list[asyncpg.Record]:
    """Run one statement on the database behind the store's back."""
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(statement, *args))
    finally:
        await connection.close()


async def schema_rows(url: str) -> list[tuple[int, str]]:
    rows = await sql(url, "SELECT version, name FROM schema_version ORDER BY version")
    return [(row["version"], row["name"]) for row in rows]


def expected_schema() -> list[tuple[int, str]]:
    return [(migration.version, migration.name) for migration in load_migrations("postgres")]


async def test_open_store_picks_postgres(postgres_url: str) -> None:
    """A postgresql:// URL opens a PostgresStore whose repr names where it is, without the password."""
    store = await open_store(postgres_url)
    try:
        assert isinstance(store, PostgresStore)
        target = postgres_target(postgres_url)
        assert repr(store) == f"PostgresStore('{target}')"
        assert target.password is not None
        assert target.password not in repr(store)
    finally:
        await store.close()


async def test_migrations_run_once(postgres_url: str, make_user: MakeUser) -> None:
    """Each migration is applied and recorded once; reopening applies nothing and keeps the data."""
    with capture_logs() as logs:
        first = await PostgresStore.open(postgres_url)
    await first.insert_user(make_user("alice"))
    await first.close()
    assert expected_schema() == await schema_rows(postgres_url)
    assert [entry["version"] for entry in logs if entry["event"] == "store.migrated"] == [1]
    password = postgres_target(postgres_url).password
    assert password
    assert password not in str(logs)
    with capture_logs() as logs:
        second = await PostgresStore.open(postgres_url)
    try:
        assert not [entry for entry in logs if entry["event"] == "store.migrated"]
        assert expected_schema() == await schema_rows(postgres_url)
        assert await second.get_user("u-alice") is not None
    finally:
        await second.close()


async def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    """Four replicas opening one empty database at once all succeed and the schema is applied once."""
    stores = await asyncio.gather(*(PostgresStore.open(postgres_url) for _ in range(4)))
    for store in stores:
        await store.close()
    assert expected_schema() == await schema_rows(postgres_url)


async def test_replicas_admit_one_update_per_version(postgres_url: str, make_user: MakeUser) -> None:
    """Two replicas (two stores, two pools) updating one user from the same version: exactly one wins and
    every other update gets a version conflict."""
    first, second = PostgresStore.open(postgres_url), PostgresStore.open(postgres_url)
    replicas = await asyncio.gather(first, second)
    try:
        alice = make_user("alice")
        await replicas[0].insert_user(alice)
        updates = [dataclasses.replace(alice, version=2, attributes={"n": n}) for n in range(20)]
        results = await asyncio.gather(
            *(replicas[n % 2].update_user(update, expected_version=1) for n, update in enumerate(updates)),
            return_exceptions=True,
        )
        winners = [update for update, result in zip(updates, results, strict=True) if result is None]
        assert len(winners) == 1
        assert all(
            isinstance(result, StoreConflict) and result.field == "version" for result in results if result
        )
        assert winners[0] == await replicas[1].get_user("u-alice")
    finally:
        for replica in replicas:
            await replica.close()


async def test_exclusive_open_never_refuses_a_second_process(postgres_url: str) -> None:
    """PostgreSQL serves several replicas: a second exclusive open succeeds while the first is open."""
    first = await open_store(postgres_url, exclusive=True)
    try:
        second = await open_store(postgres_url, exclusive=True)
        await second.close()
    finally:
        await first.close()


async def test_future_schema_version_is_refused(postgres_url: str) -> None:
    """A database migrated by a newer scim-bridge is refused with a clear error, and left untouched."""
    await (await PostgresStore.open(postgres_url)).close()
    known = len(load_migrations("postgres"))
    await sql(postgres_url, "INSERT INTO schema_version VALUES ($1, 'future', now())", known + 1)
    with pytest.raises(StoreError, match=rf"schema version {known + 1}, newer than the {known}"):
        await PostgresStore.open(postgres_url)
    assert known + 1 == (await schema_rows(postgres_url))[-1][0]


async def test_failed_migration_is_rolled_back(store: PostgresStore, postgres_url: str) -> None:
    """A migration that fails part-way leaves neither its tables nor its version row, and the store works."""
    known = load_migrations("postgres")
    broken = Migration(len(known) + 1, "broken", "CREATE TABLE half_done (a TEXT);\nSELECT * FROM missing;\n")
    with pytest.raises(StoreError, match="missing"):
        await store._migrate((*known, broken))
    assert not (await sql(postgres_url, "SELECT to_regclass('half_done') IS NOT NULL AS present"))[0][
        "present"
    ]
    assert expected_schema() == await schema_rows(postgres_url)
    assert await store.list_users(offset=0, limit=1) == ([], 0)


async def test_without_create_an_empty_database_is_missing(postgres_url: str) -> None:
    """Opening without `create` a database that holds no store is a StoreMissing, and creates nothing."""
    with pytest.raises(StoreMissing, match="holds no scim-bridge store"):
        await open_store(postgres_url, create=False, exclusive=False)
    assert not (await sql(postgres_url, "SELECT to_regclass('schema_version') IS NOT NULL AS p"))[0]["p"]


async def test_a_database_that_does_not_exist(postgres_server: PostgresServer) -> None:
    """A missing database is a StoreMissing without `create`, and otherwise a StoreError saying to create
    it: the store creates tables, never databases."""
    url = postgres_server.url("no_such_database")
    with pytest.raises(StoreMissing, match="no database 'no_such_database'"):
        await open_store(url, create=False)
    with pytest.raises(StoreError, match="createdb"):
        await open_store(url)


async def test_wrong_password_names_the_host_not_the_password(postgres_server: PostgresServer) -> None:
    """A refused login is a StoreError naming the server and the user, never either password."""
    url = postgres_server.url("postgres", password="hunter2-wrong")
    with pytest.raises(StoreError, match=rf"127\.0\.0\.1:{postgres_server.port}") as caught:
        await open_store(url)
    message = str(caught.value)
    assert "password authentication failed" in message
    assert "hunter2" not in message
    assert postgres_server.password not in message


async def test_unreachable_server_names_the_host_not_the_password() -> None:
    """A server that does not answer is a StoreError naming host and port, never the password."""
    closed_port = free_port()
    url = f"postgresql://scim:hunter2@127.0.0.1:{closed_port}/scim"
    with pytest.raises(
        StoreError, match=rf"cannot connect to PostgreSQL at .*127\.0\.0\.1:{closed_port}"
    ) as caught:
        await open_store(url)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("postgresql://db:5432/scim", "needs a user and a host", id="no-user"),
        pytest.param("postgresql://scim:hunter2@/scim", "needs a user and a host", id="no-host"),
        pytest.param("postgresql://scim:hunter2@db:5432", "one database name", id="no-database"),
        pytest.param("postgresql://scim:hunter2@db/a/b", "one database name", id="path"),
        pytest.param("postgresql://scim:hunter2@db:port/scim", "malformed", id="bad-port"),
        pytest.param("postgresql://scim:hunter2@db:99999/scim", "malformed", id="port-range"),
        pytest.param("postgresql://scim:hunter2@db/scim?options=x", "only sslmode", id="query"),
        pytest.param("postgresql://scim:hunter2@db/scim?sslmode=always", "sslmode must be", id="sslmode"),
        pytest.param("mysql://root:hunter2@db/scim", "postgresql://USER", id="other-scheme"),
    ],
)
def test_bad_postgres_urls(url: str, message: str) -> None:
    """Malformed PostgreSQL URLs are refused saying what is wrong, never echoing the password."""
    with pytest.raises(StoreError, match=message) as caught:
        check_store_url(url)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "postgresql://scim:s%40cr%3At@db.example:6432/scim_bridge?sslmode=verify-full",
            ("scim", "s@cr:t", "db.example", 6432, "scim_bridge", "verify-full"),
            id="full",
        ),
        pytest.param("postgres://scim@db/scim", ("scim", None, "db", 5432, "scim", None), id="minimal"),
        pytest.param("postgresql://scim:pw@[::1]/scim", ("scim", "pw", "::1", 5432, "scim", None), id="ipv6"),
    ],
)
def test_postgres_url_parts(url: str, expected: tuple[object, ...]) -> None:
    """User, password and database are percent-decoded; the port defaults to 5432; sslmode is kept."""
    target = postgres_target(url)
    assert expected == (
        target.user,
        target.password,
        target.host,
        target.port,
        target.database,
        target.sslmode,
    )
    assert check_store_url(url) == url
    if target.password:
        assert target.password not in f"{target} {target!r}"


async def test_driver_errors_are_translated(store: PostgresStore, postgres_url: str) -> None:
    """A failing statement surfaces as StoreError naming the operation, chained to the asyncpg error."""
    await sql(postgres_url, "DROP TABLE audit_events")
    with pytest.raises(
        StoreError, match='read audit trail: relation "audit_events" does not exist'
    ) as caught:
        await store.audit_trail()
    assert isinstance(caught.value.__cause__, asyncpg.PostgresError)


async def test_read_only_database_is_not_writable(store: PostgresStore, postgres_url: str) -> None:
    """check_writable passes on a writable database and fails on one that defaults to read-only."""
    await store.check_writable()
    database = postgres_target(postgres_url).database
    await sql(postgres_url, f"ALTER DATABASE {database} SET default_transaction_read_only = on")
    reopened = await PostgresStore.open(postgres_url)
    try:
        with pytest.raises(StoreError, match="read-only"):
            await reopened.check_writable()
    finally:
        await reopened.close()


async def test_a_database_not_in_utf8_is_refused(postgres_server: PostgresServer) -> None:
    """A database in another encoding than UTF8 is refused at open: it could not hold every record."""
    await sql(
        postgres_server.url("postgres"),
        "CREATE DATABASE latin TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'",
    )
    with pytest.raises(StoreError, match="encoding LATIN1, not UTF8"):
        await open_store(postgres_server.url("latin"))


async def test_cancelled_write_leaves_the_store_usable(
    store: PostgresStore, postgres_url: str, make_user: MakeUser
) -> None:
    """A write cancelled mid-transaction (here: waiting on a table lock) is rolled back, and the store's
    connections stay usable."""
    blocker = await asyncpg.connect(postgres_url)
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE scim_users IN ACCESS EXCLUSIVE MODE")
            task = asyncio.create_task(store.insert_user(make_user("alice")))
            await asyncio.sleep(0.2)  # it has begun its transaction and waits for the lock
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        await blocker.close()
    for key in ("bob", "carol", "dave"):  # more writes than the pool has idle connections after the cancel
        await store.insert_user(make_user(key))
    assert await store.get_user("u-alice") is None
    assert (await store.list_users(offset=0, limit=0))[1] == 3


# -- hold: the cross-replica lock (for the provisioning layer) -----------------------------------------------
@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database, as two bridge replicas would have."""
    first, second = await asyncio.gather(PostgresStore.open(postgres_url), PostgresStore.open(postgres_url))
    yield first, second
    await first.close()
    await second.close()


async def test_hold_serialises_one_key_across_replicas(replicas: tuple[PostgresStore, PostgresStore]) -> None:
    """While one replica holds a key, another replica's hold of it waits; other keys do not wait."""
    first, second = replicas
    order: list[str] = []
    async with first.hold("User:u-1", "Group:g-1"):
        waiting = asyncio.create_task(_hold_and_note(second, "User:u-1", order))
        await asyncio.wait_for(_hold_and_note(second, "User:u-2", order), timeout=5)
        await asyncio.sleep(0.2)
        assert not waiting.done()
        order.append("first released")
    await asyncio.wait_for(waiting, timeout=5)
    assert order == ["User:u-2", "first released", "User:u-1"]


async def _hold_and_note(store: PostgresStore, key: str, order: list[str]) -> None:
    async with store.hold(key):
        order.append(key)


async def test_hold_lets_the_block_errors_through_and_releases(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    """An error inside the block (even an OSError, as network errors are) is not translated, and the key
    is free again afterwards; so is a key whose waiter was cancelled."""
    first, second = replicas
    with pytest.raises(ConnectionResetError):
        async with first.hold("User:u-1"):
            raise ConnectionResetError
    async with first.hold("Group:g-1"):
        waiter = asyncio.create_task(_hold_and_note(second, "Group:g-1", []))
        await asyncio.sleep(0.1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    async with asyncio.timeout(5), second.hold("User:u-1", "Group:g-1"):
        pass


async def test_hold_on_a_closed_store(store: PostgresStore) -> None:
    """Holding locks of a closed store is a StoreError."""
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        async with store.hold("User:u-1"):
            pass
