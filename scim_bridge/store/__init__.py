"""The state store: what SonarQube cannot hold (ids, SCIM attributes, desired memberships, meta, audit).

`open_store(url)` gives a `StateStore` (see `base.py`); records are in `records.py`, errors in `errors.py`.
"""

from __future__ import annotations

from scim_bridge.store.base import StateStore
from scim_bridge.store.errors import StoreConflict, StoreError, StoreLocked, StoreMissing, StoreNotFound
from scim_bridge.store.postgres import PostgresStore
from scim_bridge.store.records import AuditEvent, GroupRecord, ResourceType, UserRecord, casefold_key
from scim_bridge.store.sqlite import SqliteStore
from scim_bridge.store.url import POSTGRES_SCHEMES, check_store_url, sqlite_location, url_scheme

__all__ = [
    "AuditEvent",
    "GroupRecord",
    "ResourceType",
    "SqliteStore",
    "StateStore",
    "StoreConflict",
    "StoreError",
    "StoreLocked",
    "StoreMissing",
    "StoreNotFound",
    "UserRecord",
    "casefold_key",
    "open_store",
]


async def open_store(url: str, *, create: bool = True, exclusive: bool = True) -> StateStore:
    """Open the store at `url` with its schema up to date, creating it (and a file's directory) if needed.

    Without `create`, a store that does not exist yet is a `StoreMissing`; without `exclusive`, the store is
    opened beside a running bridge (for commands that only read: `check`, `audit`). An exclusive open while
    another process holds the store is a `StoreLocked` (SQLite only: PostgreSQL serves several replicas).
    """
    check_store_url(url)
    if url_scheme(url) in POSTGRES_SCHEMES:
        return await PostgresStore.open(url, create=create, exclusive=exclusive)
    return await SqliteStore.open(sqlite_location(url), create=create, exclusive=exclusive)
