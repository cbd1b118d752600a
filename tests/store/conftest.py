"""Record factories for the state-store tests (a user or group whose fields derive from one short key),
and an empty database per test on the session's PostgreSQL server (tests/conftest.py)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from scim_bridge.store import GroupRecord, UserRecord

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.postgres_server import PostgresServer

T0 = datetime(2025, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)


def user(key: str, /, **changes: Any) -> UserRecord:
    """A user `u-<key>` named `<key>@example.com`, created at T0; keyword arguments override fields."""
    fields: dict[str, Any] = {
        "scim_id": f"u-{key}",
        "user_name": f"{key}@example.com",
        "sonar_login": key,
        "sonar_id": f"sonar-u-{key}",
        "external_id": f"ext-u-{key}",
        "active": True,
        "attributes": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": f"{key}@example.com",
            "name": {"givenName": key.title(), "familyName": "Müller-Łukasz"},
            "emails": [{"value": f"{key}@example.com", "type": "work", "primary": True}],
        },
        "created": T0,
        "last_modified": T0,
        "version": 1,
    }
    return UserRecord(**(fields | changes))


def group(key: str, /, **changes: Any) -> GroupRecord:
    """A group `g-<key>` named `<key>`, created at T0; keyword arguments override fields."""
    fields: dict[str, Any] = {
        "scim_id": f"g-{key}",
        "display_name": key,
        "sonar_name": key,
        "sonar_id": f"sonar-g-{key}",
        "external_id": f"ext-g-{key}",
        "attributes": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": key},
        "created": T0,
        "last_modified": T0,
        "version": 1,
    }
    return GroupRecord(**(fields | changes))


@pytest.fixture
def make_user() -> Callable[..., UserRecord]:
    """See `user`."""
    return user


@pytest.fixture
def make_group() -> Callable[..., GroupRecord]:
    """See `group`."""
    return group


@pytest.fixture
def t0() -> datetime:
    """The creation time of every factory record."""
    return T0


_database_numbers = itertools.count(1)


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database on the session's server: tests never see each other's rows."""
    return await postgres_server.new_database(f"test_{next(_database_numbers)}")
