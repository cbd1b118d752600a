"""Logins: userNames SonarQube accepts are kept; others get a deterministic, valid, distinct login."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scim_bridge.provisioning.logins import login_for
from scim_bridge.sonarqube.capabilities import Capabilities
from scim_bridge.sonarqube.models import Dialect, SonarVersion

LTA = Capabilities(SonarVersion(9, 9, 8), Dialect.V1)
V2 = Capabilities(SonarVersion(2025, 6), Dialect.V2)


@pytest.mark.parametrize(
    ("rules", "user_name"),
    [
        (LTA, "first.last@contoso.com"),
        (V2, "first.last@contoso.com"),
        (V2, "_tech"),
        (LTA, "a1"),
        (V2, "x" * 100),
    ],
    ids=["upn-9.9", "upn-v2", "underscore-v2", "short", "v2-max"],
)
def test_accepted_user_names_are_kept(rules: Capabilities, user_name: str) -> None:
    """A userName SonarQube accepts as a login is used unchanged."""
    assert login_for(user_name, rules) == user_name


@pytest.mark.parametrize(
    ("rules", "user_name", "prefix"),
    [
        (LTA, "o'brien@contoso.com", "o_brien@contoso.com-"),
        (LTA, "first+tag@contoso.com", "first_tag@contoso.com-"),
        (LTA, "jürgen@contoso.com", "jurgen@contoso.com-"),
        (LTA, "_tech", "u_tech-"),
        (LTA, "Ann Lee", "Ann_Lee-"),
        (V2, "x", "x-"),
        (V2, "名前", "u-"),
    ],
    ids=["apostrophe", "plus", "umlaut", "underscore-9.9", "space", "too-short", "no-ascii"],
)
def test_refused_user_names_get_a_derived_login(rules: Capabilities, user_name: str, prefix: str) -> None:
    """A refused userName is ASCII-folded, cleaned and suffixed with a hash of the exact userName."""
    login = login_for(user_name, rules)
    assert login.startswith(prefix)
    assert rules.accepts_login(login)


def test_long_user_names_fit_the_dialect() -> None:
    """A userName longer than the v2 limit is shortened to 100 characters, hash included."""
    login = login_for("a" * 150 + "@contoso.com", V2)
    assert len(login) == 100
    assert V2.accepts_login(login)


@given(st.text(min_size=1, max_size=300))
def test_every_user_name_gets_a_valid_deterministic_login(user_name: str) -> None:
    """Whatever the userName, the login is valid on both dialects and the same every time."""
    for rules in (LTA, V2):
        login = login_for(user_name, rules)
        assert rules.accepts_login(login)
        assert login == login_for(user_name, rules)


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_different_refused_user_names_do_not_collide(first: str, second: str) -> None:
    """Two different userNames never share a derived login."""
    if first != second:
        either_kept = LTA.accepts_login(first) or LTA.accepts_login(second)
        assert login_for(first, LTA) != login_for(second, LTA) or either_kept
