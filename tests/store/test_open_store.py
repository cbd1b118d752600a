"""Store URLs: which backend and location each names, and errors that never echo a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from scim_bridge.store import SqliteStore, StoreError, open_store
from scim_bridge.store.url import sqlite_location


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("sqlite:///relative/path.db", Path("relative/path.db"), id="relative"),
        pytest.param("sqlite:///store.db", Path("store.db"), id="relative-bare"),
        pytest.param("sqlite:////abs/path.db", Path("/abs/path.db"), id="absolute"),
        pytest.param("sqlite:////var/lib/scim bridge/x.db", Path("/var/lib/scim bridge/x.db"), id="space"),
        pytest.param("SQLite:///x.db", Path("x.db"), id="scheme-any-case"),
        pytest.param("sqlite://:memory:", ":memory:", id="memory"),
        pytest.param("sqlite:///:memory:", ":memory:", id="memory-sqlalchemy-style"),
    ],
)
def test_sqlite_location(url: str, expected: Path | str) -> None:
    """Three slashes then a relative path, four for an absolute one, or :memory:."""
    assert expected == sqlite_location(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("sqlite://host/x.db", "no host", id="host"),
        pytest.param("sqlite://admin:hunter2@host/x.db", "no host", id="credentials"),
        pytest.param("sqlite://", "no host", id="nothing"),
        pytest.param("sqlite:///", "file path", id="no-path"),
        pytest.param("sqlite:///state/", "file path", id="directory"),
        pytest.param("sqlite:///x.db?mode=ro", "without query", id="query"),
    ],
)
def test_bad_sqlite_urls(url: str, message: str) -> None:
    """Malformed sqlite URLs are refused with the accepted forms, never with the URL's secrets."""
    with pytest.raises(StoreError, match=message) as caught:
        sqlite_location(url)
    assert "hunter2" not in str(caught.value)
    assert "sqlite:////absolute/path.db" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("mysql://root:hunter2@db/scim", "unsupported store URL scheme 'mysql'", id="unknown"),
        pytest.param("root:hunter2@db/scim", "must look like", id="no-scheme"),
        pytest.param("hunter2@x://db", "must look like", id="garbage-before-separator"),
        pytest.param("", "must look like", id="empty"),
    ],
)
async def test_open_store_refusals(url: str, message: str) -> None:
    """Other backends and malformed URLs raise StoreError naming the scheme at most."""
    with pytest.raises(StoreError, match=message) as caught:
        await open_store(url)
    assert "hunter2" not in str(caught.value)


async def test_open_store_relative_path_creates_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative sqlite path is taken from the working directory and its parent directories are created."""
    monkeypatch.chdir(tmp_path)
    store = await open_store("sqlite:///state/deep/bridge.db")
    try:
        assert await store.list_users(offset=0, limit=1) == ([], 0)
        assert isinstance(store, SqliteStore)
    finally:
        await store.close()
    assert (tmp_path / "state" / "deep" / "bridge.db").is_file()


async def test_open_store_absolute_path(tmp_path: Path) -> None:
    """An absolute sqlite path (four slashes) is used as is."""
    target = tmp_path / "a" / "b.db"
    store = await open_store(f"sqlite:///{target}")
    await store.close()
    assert target.is_file()


async def test_open_store_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite://:memory: opens a working store and writes no file."""
    monkeypatch.chdir(tmp_path)
    store = await open_store("sqlite://:memory:")
    try:
        assert await store.list_users(offset=0, limit=1) == ([], 0)
    finally:
        await store.close()
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - a test's tmp dir listing


async def test_open_store_unusable_location(tmp_path: Path) -> None:
    """A path whose parent is a file raises StoreError naming the path."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the SQLite database"):
        await open_store(f"sqlite:///{blocker}/store.db")
