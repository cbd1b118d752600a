"""Fixtures for the SCIM vocabulary tests: the request payload corpus and a stored Entra user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from scim_bridge.scim.resources import ENTERPRISE_USER_SCHEMA, UserResource
from tests.support import read_payload

PayloadLoader = Callable[[str], Any]


@pytest.fixture(scope="session")
def load_payload() -> PayloadLoader:
    """The payload reader, for tests that take the corpus by name."""
    return read_payload


@pytest.fixture
def adele() -> UserResource:
    """A user as the bridge holds it after Entra's create (A4): work e-mail, address, mobile phone."""
    return UserResource.model_validate(
        {
            "id": "u-adele",
            "externalId": "adelev",
            "userName": "adele.vance@contoso.example",
            "active": True,
            "displayName": "Adele Vance",
            "name": {"givenName": "Adele", "familyName": "Vance"},
            "emails": [{"value": "adele.vance@contoso.example", "type": "work", "primary": True}],
            ENTERPRISE_USER_SCHEMA: {"department": "Sales"},
        }
    )
