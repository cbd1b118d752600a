"""The state store: what SonarQube cannot hold (ids, SCIM attributes, desired memberships, meta, audit).

`open_store(url)` gives a `StateStore` (see `base.py`); records are in `records.py`, errors in `errors.py`.
"""

from __future__ import annotations

from scim_bridge.store.base import StateStore
from scim_bridge.store.errors import StoreConflict, StoreError, StoreMissing, StoreNotFound
from scim_bridge.store.records import AuditEvent, GroupRecord, ResourceType, UserRecord, casefold_key
from scim_bridge.store.sqlite import SqliteStore
from scim_bridge.store.url import POSTGRES_SCHEMES, SQLITE_SCHEME, sqlite_location, url_scheme

__all__ = [
    "AuditEvent",
    "GroupRecord",
    "ResourceType",
    "SqliteStore",
    "StateStore",
    "StoreConflict",
    "StoreError",
    "StoreMissing",
    "StoreNotFound",
    "UserRecord",
    "casefold_key",
    "open_store",
]


async def open_store(url: str, *, create: bool = True) -> StateStore:
    """Open the store at `url` with its schema up to date, creating it (and a file's directory) if needed;
    without `create`, a store that does not exist yet is a `StoreMissing` (for commands that only read)."""
    scheme = url_scheme(url)
    if scheme == SQLITE_SCHEME:
        return await SqliteStore.open(sqlite_location(url), create=create)
    if scheme in POSTGRES_SCHEMES:
        raise StoreError(
            "PostgreSQL store needs the postgres backend, which this scim-bridge version does not have yet: "
            "use a sqlite:///path.db store URL"
        )
    raise StoreError(f"unsupported store URL scheme {scheme!r}: use sqlite:// (or, later, postgresql://)")
