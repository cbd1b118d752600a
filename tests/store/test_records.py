"""Records and the caseless key: plain values with the few rules every backend relies on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scim_bridge import store
from scim_bridge.store import AuditEvent, GroupRecord, UserRecord, casefold_key


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        pytest.param("ALICE@x", "alice@X", True, id="ascii"),
        pytest.param("Straße", "STRASSE", True, id="sharp-s"),
        pytest.param("ΣΊΣΥΦΟΣ", "σίσυφος", True, id="greek-final-sigma"),
        pytest.param("Ren\u00e9", "Rene\u0301", True, id="composed-vs-combining"),
        pytest.param("\u212b", "\u00e5", True, id="angstrom-sign"),
        pytest.param("alice", "alice ", False, id="whitespace-counts"),
        pytest.param("ﬁle", "file", True, id="ligature-casefolds"),
        pytest.param("①", "1", False, id="no-compatibility-folding"),
    ],
)
def test_casefold_key(left: str, right: str, same: bool) -> None:
    """Caseless keys follow Unicode canonical caseless matching, without compatibility folding."""
    assert same == (casefold_key(left) == casefold_key(right))


def test_records_refuse_naive_datetimes() -> None:
    """A datetime without a timezone would sort wrongly against stored UTC times, so it is refused."""
    naive = datetime(2025, 1, 1)  # noqa: DTZ001 - the point of the test
    aware = datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="created"):
        UserRecord(
            scim_id="u", user_name="u", sonar_login="u", sonar_id=None, external_id=None, active=True,
            attributes={}, created=naive, last_modified=aware, version=1,
        )  # fmt: skip
    with pytest.raises(ValueError, match="last_modified"):
        GroupRecord(
            scim_id="g", display_name="g", sonar_name="g", sonar_id=None, external_id=None,
            attributes={}, created=aware, last_modified=naive, version=1,
        )  # fmt: skip
    with pytest.raises(ValueError, match="at"):
        AuditEvent(
            at=naive, request_id=None, actor=None, action="user.created", resource_type="User",
            scim_id="u", sonar_key=None, outcome="ok",
        )  # fmt: skip


def test_public_surface() -> None:
    """The package exports exactly its documented names; every error it raises derives from StoreError."""
    assert sorted(store.__all__) == [
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
    assert issubclass(store.StoreConflict, store.StoreError)
    assert issubclass(store.StoreNotFound, store.StoreError)
    assert issubclass(store.StoreMissing, store.StoreError)
