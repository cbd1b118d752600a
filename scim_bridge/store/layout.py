"""What both store backends share: the layout of the resource tables (their columns, the unique keys in the
order a conflict names them, the look-up criteria) and the checks of a call's arguments. Each backend adds
its own SQL and its own conversions of records to rows (`sqlite.py`, `postgres.py`)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Final

from scim_bridge.store.records import casefold_key

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from scim_bridge.store.records import AuditEvent, ResourceType

AUDIT_COLUMNS: Final = "at, request_id, actor, action, resource_type, scim_id, sonar_key, outcome, detail"


@dataclass(frozen=True, slots=True)
class TableLayout:
    """One table of SCIM resources, in terms every backend's SQL is built from."""

    name: str
    resource_type: ResourceType
    columns: tuple[str, ...]  # every column but `seq`, `scim_id` first
    # Unique keys in the order a conflict names them: (field, column). The scim_id comes first so that a
    # replayed insert is recognisable.
    unique: tuple[tuple[str, str], ...]
    criteria: Mapping[str, str]  # find criterion -> column

    def as_fields(self) -> dict[str, Any]:
        """The layout as keyword arguments of a backend's own table description."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


_SHARED_COLUMNS: Final = ("sonar_id", "external_id", "attributes", "created", "last_modified", "version")

USERS: Final = TableLayout(
    name="scim_users",
    resource_type="User",
    columns=(
        "scim_id",
        "user_name",
        "user_name_folded",
        "sonar_login",
        "active",
        "settled",
        *_SHARED_COLUMNS,
    ),
    unique=(
        ("scim_id", "scim_id"),
        ("user_name", "user_name_folded"),
        ("sonar_login", "sonar_login"),
        ("sonar_id", "sonar_id"),
    ),
    criteria={
        "user_name": "user_name_folded",
        "sonar_login": "sonar_login",
        "external_id": "external_id",
    },
)
GROUPS: Final = TableLayout(
    name="scim_groups",
    resource_type="Group",
    columns=("scim_id", "display_name", "display_name_folded", "sonar_name", *_SHARED_COLUMNS),
    unique=(
        ("scim_id", "scim_id"),
        ("display_name", "display_name_folded"),
        ("sonar_name", "sonar_name"),
        ("sonar_id", "sonar_id"),
    ),
    criteria={
        "display_name": "display_name_folded",
        "sonar_name": "sonar_name",
        "external_id": "external_id",
    },
)


def one_criterion(columns: Mapping[str, str], criteria: Mapping[str, str | None]) -> tuple[str, str]:
    """The look-up column and value of the single criterion given; `ValueError` unless exactly one is."""
    given = [(name, value) for name, value in criteria.items() if value is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(criteria)}")
    name, value = given[0]
    key = casefold_key(value) if columns[name].endswith("_folded") else value
    return columns[name], key


def check_page(offset: int, limit: int) -> None:
    if offset < 0 or limit < 0:
        raise ValueError("offset and limit must not be negative")


def distinct_ids(user_ids: Iterable[str]) -> list[str]:
    if isinstance(user_ids, str):
        raise TypeError("user_ids must be an iterable of ids, not one string")
    return list(dict.fromkeys(user_ids))


def audit_values(event: AuditEvent, at: Any) -> tuple[Any, ...]:
    """An audit event's values in AUDIT_COLUMNS order; `at` as the backend stores timestamps."""
    return (
        at,
        event.request_id,
        event.actor,
        event.action,
        event.resource_type,
        event.scim_id,
        event.sonar_key,
        event.outcome,
        event.detail,
    )
