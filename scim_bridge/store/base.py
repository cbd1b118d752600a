"""The one interface the rest of scim-bridge uses to keep state, whatever the backend.

Implementations: `SqliteStore` (`sqlite.py`, the embedded default). Every backend passes the same contract
suite (`tests/store/test_contract.py`) and raises only `StoreError` subclasses (see `errors.py`).

Rules every backend keeps:
- `user_name` and `display_name` are unique and matched case-insensitively through `casefold_key`
  (SCIM `caseExact=false`); `sonar_login`, `sonar_name` and `external_id` match exactly.
  `scim_id`, `sonar_login`, `sonar_name` and a non-null `sonar_id` are unique; `external_id` is not.
- Records are stored as given: the caller sets `version`, `created` and `last_modified`. An update
  succeeds only if the stored version equals `expected_version` (optimistic concurrency).
- Memberships are desired state: adding a present member and removing an absent one are no-ops; they do
  not change the group's version (the caller updates the group record when it must). Deleting a user or a
  group removes its memberships; the audit trail is never touched by deletions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable
    from contextlib import AbstractAsyncContextManager
    from datetime import datetime

    from scim_bridge.metrics import Metrics
    from scim_bridge.store.records import AuditEvent, GroupRecord, UserRecord


class StateStore(Protocol):
    """What SonarQube cannot hold: ids, SCIM attributes, desired memberships, meta and the audit trail."""

    # -- users ---------------------------------------------------------------------------------------
    async def get_user(self, scim_id: str) -> UserRecord | None:
        """The user with this SCIM id, or `None`."""
        ...

    async def find_user(
        self,
        *,
        user_name: str | None = None,
        sonar_login: str | None = None,
        external_id: str | None = None,
    ) -> UserRecord | None:
        """The user matching exactly one criterion (`ValueError` otherwise); the oldest on `external_id`."""
        ...

    async def find_users_by_email(self, email: str) -> list[UserRecord]:
        """Users with an e-mail equal to `email` ignoring (at least ASCII) case, oldest first: candidates for
        an `emails.value eq` filter, which the caller evaluates exactly."""
        ...

    async def list_users(self, *, offset: int, limit: int) -> tuple[list[UserRecord], int]:
        """A page of users ordered by creation, and the total count."""
        ...

    async def insert_user(self, record: UserRecord) -> None:
        """Add a user; `StoreConflict` if its scim_id, user_name, sonar_login or sonar_id is taken."""
        ...

    async def update_user(
        self, record: UserRecord, *, expected_version: int, audit: AuditEvent | None = None
    ) -> None:
        """Replace the user with `record.scim_id`, and append `audit` in the same transaction (both or
        neither); `StoreConflict("version")` if the stored version differs, `StoreConflict` as for insert on
        uniqueness, `StoreNotFound` if it does not exist."""
        ...

    async def delete_user(self, scim_id: str) -> bool:
        """Forget the user and its memberships; whether it existed."""
        ...

    # -- groups --------------------------------------------------------------------------------------
    async def get_group(self, scim_id: str) -> GroupRecord | None:
        """The group with this SCIM id, or `None`."""
        ...

    async def find_group(
        self,
        *,
        display_name: str | None = None,
        sonar_name: str | None = None,
        external_id: str | None = None,
    ) -> GroupRecord | None:
        """The group matching exactly one criterion (`ValueError` otherwise); the oldest on `external_id`."""
        ...

    async def list_groups(self, *, offset: int, limit: int) -> tuple[list[GroupRecord], int]:
        """A page of groups ordered by creation, and the total count."""
        ...

    async def insert_group(self, record: GroupRecord, members: Iterable[str] = ()) -> None:
        """Add a group with the users of `members` (SCIM ids), all or nothing; `StoreConflict` if its
        scim_id, display_name, sonar_name or sonar_id is taken, `StoreNotFound` for an unknown user."""
        ...

    async def update_group(
        self, record: GroupRecord, *, expected_version: int, audit: AuditEvent | None = None
    ) -> None:
        """Replace the group with `record.scim_id`, with `audit` as for `update_user`; errors as there."""
        ...

    async def delete_group(self, scim_id: str) -> bool:
        """Forget the group and its memberships; whether it existed."""
        ...

    # -- desired memberships ---------------------------------------------------------------------------
    async def add_members(self, group_id: str, user_ids: Iterable[str]) -> None:
        """Make the users members (present ones stay); `StoreNotFound` for an unknown group or user."""
        ...

    async def remove_members(self, group_id: str, user_ids: Iterable[str]) -> None:
        """Remove the users from the group (absent ones are ignored); `StoreNotFound` for an unknown group."""
        ...

    async def members_of(self, group_id: str) -> set[str]:
        """The SCIM ids of the group's members (empty for an unknown group)."""
        ...

    async def groups_of(self, user_id: str) -> set[str]:
        """The SCIM ids of the groups the user belongs to (empty for an unknown user)."""
        ...

    # -- audit and lifecycle -------------------------------------------------------------------------
    async def append_audit(self, event: AuditEvent) -> None:
        """Record one audit event."""
        ...

    async def audit_trail(
        self,
        *,
        scim_id: str | None = None,
        sonar_key: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """The newest audit events first, optionally only of one resource, of one SonarQube login or group
        name, and from a point in time on."""
        ...

    def hold(self, *keys: str) -> AbstractAsyncContextManager[None]:
        """Hold `keys` against every other process using this store until the block ends (taken in sorted
        order); a no-op where one process owns the store (SQLite)."""
        ...

    async def check_writable(self) -> None:
        """Prove the store would accept a write now (readiness), writing nothing; `StoreError` otherwise."""
        ...

    def observe(self, metrics: Metrics) -> None:
        """Report the time of each operation to `metrics` from now on."""
        ...

    async def close(self) -> None:
        """Release the connection; later calls raise `StoreError`. Closing twice is harmless."""
        ...
