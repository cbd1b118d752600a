"""The pure SCIM → SonarQube mapping: names, e-mails, group names, versions."""

from __future__ import annotations

from typing import Any

import pytest

from scim_bridge.provisioning.mapping import SonarProfile, check_group_name, sonar_profile
from scim_bridge.scim.errors import InvalidValueError
from scim_bridge.scim.resources import UserResource

BASE: dict[str, Any] = {"userName": "jdoe@contoso.com"}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"displayName": "J Doe", "name": {"formatted": "Formatted"}}, SonarProfile("J Doe", None)),
        ({"name": {"formatted": "Formatted", "givenName": "J"}}, SonarProfile("Formatted", None)),
        ({"name": {"givenName": "Jane", "familyName": "Doe"}}, SonarProfile("Jane Doe", None)),
        ({"name": {"familyName": "Doe"}}, SonarProfile("Doe", None)),
        ({}, SonarProfile("jdoe@contoso.com", None)),
        (
            {"emails": [{"value": "h@x.com", "type": "home"}, {"value": "w@x.com", "type": "work"}]},
            SonarProfile("jdoe@contoso.com", "w@x.com"),
        ),
        (
            {"emails": [{"value": "w@x.com", "type": "work"}, {"value": "p@x.com", "primary": True}]},
            SonarProfile("jdoe@contoso.com", "p@x.com"),
        ),
        ({"emails": [{"value": "o@x.com", "type": "other"}]}, SonarProfile("jdoe@contoso.com", "o@x.com")),
    ],
    ids=["displayName", "formatted", "given-family", "family-only", "userName", "work", "primary", "first"],
)
def test_sonar_profile(extra: dict[str, Any], expected: SonarProfile) -> None:
    """SonarQube's name and e-mail follow docs/provisioning.md's order of preference."""
    assert sonar_profile(UserResource.model_validate({**BASE, **extra})) == expected


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"displayName": "x" * 201}, "displayName"),
        ({"emails": [{"value": "a" * 95 + "@x.com"}]}, "emails"),
        ({"emails": [{"value": "not an address"}]}, "emails"),
    ],
    ids=["long-name", "long-email", "bad-email"],
)
def test_sonar_profile_refuses_what_sonarqube_would(extra: dict[str, Any], named: str) -> None:
    """A name or e-mail SonarQube would refuse is a 400 naming the SCIM attribute."""
    with pytest.raises(InvalidValueError, match=named):
        sonar_profile(UserResource.model_validate({**BASE, **extra}))


@pytest.mark.parametrize(
    "name", ["", "   ", "x" * 256, "Anyone", "ANYONE"], ids=["empty", "blank", "long", "anyone", "ANYONE"]
)
def test_group_names_sonarqube_refuses(name: str) -> None:
    """Blank, over-long and reserved group names are refused before SonarQube is called."""
    with pytest.raises(InvalidValueError, match="displayName"):
        check_group_name(name)
