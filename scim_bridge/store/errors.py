"""The state-store error tree. Every sqlite3 or asyncpg error is translated into one of these
inside this package (`raise ... from exc`); callers above never see a database driver's exception.

    StoreError            the store cannot do what was asked (I/O, corruption, closed, bad URL, schema)
    ├── StoreConflict     a uniqueness rule or the expected version refused a write; `field` names which
    ├── StoreNotFound     a write addressed users or groups the store does not hold
    ├── StoreMissing      a store opened only to be read does not exist
    └── StoreLocked       another process holds the store
"""

from __future__ import annotations

from typing import Literal


class StoreError(Exception):
    """Base of every error raised by a state store."""


class StoreConflict(StoreError):  # noqa: N818 - the name the design gives it
    """A write collided: `field` is `scim_id`, `user_name`, `sonar_login`, `sonar_id`, `display_name`,
    `sonar_name` or `version` (the stored version differs from the expected one)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class StoreNotFound(StoreError):  # noqa: N818 - pairs with StoreConflict
    """An update or a membership change named users or groups that the store does not hold."""

    def __init__(self, resource_type: Literal["User", "Group"], scim_ids: tuple[str, ...]) -> None:
        super().__init__(f"unknown {resource_type} id(s): {', '.join(scim_ids)}")
        self.resource_type = resource_type
        self.scim_ids = scim_ids


class StoreMissing(StoreError):  # noqa: N818 - pairs with StoreNotFound
    """The store does not exist, and was opened without creating it."""


class StoreLocked(StoreError):  # noqa: N818 - pairs with StoreMissing
    """Another scim-bridge process holds the store (SQLite: one process per file)."""
