"""Plausible SCIM ids: what SonarQube and the bridge hand out passes, nothing that could bend a URL does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scim_bridge.scim.ids import MAX_ID_LENGTH, plausible_id

if TYPE_CHECKING:
    import uuid

ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("5b9c2bd1-0d3e-4f5a-8b6c-7d8e9f0a1b2c", id="uuid"),
        pytest.param("5B9C2BD1-0D3E-4F5A-8B6C-7D8E9F0A1B2C", id="uuid-upper-case"),
        pytest.param("5b9c2bd10d3e4f5a8b6c7d8e9f0a1b2c", id="uuid-hex"),
        pytest.param("AU-TpxcA-iU5OvuD2FL0", id="sonarqube-compact-uuid"),
        pytest.param("AYxo_a9Bz-Kc3bF1wQ2e", id="sonarqube-compact-uuid-underscore"),
        pytest.param("u-adele", id="corpus-placeholder"),
        pytest.param("7", id="one-character"),
        pytest.param("x" * MAX_ID_LENGTH, id="64-characters"),
    ],
)
def test_ids_sonarqube_and_the_bridge_hand_out_are_plausible(value: str) -> None:
    """Standard uuids (the bridge's on v1, SonarQube's on v2) and SonarQube's older compact uuids pass."""
    assert plausible_id(value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param(".", id="dot"),
        pytest.param("..", id="dot-dot"),
        pytest.param("../users", id="parent-path"),
        pytest.param("a/b", id="slash"),
        pytest.param("a%2Fb", id="percent-encoded"),
        pytest.param("a b", id="space"),
        pytest.param("a?b=c", id="query"),
        pytest.param("a#b", id="fragment"),
        pytest.param("a\n", id="trailing-newline"),
        pytest.param("adélie", id="non-ascii-letter"),
        pytest.param("٣", id="non-ascii-digit"),
        pytest.param("x" * (MAX_ID_LENGTH + 1), id="65-characters"),
        pytest.param(None, id="not-a-string"),
        pytest.param(42, id="a-number"),
    ],
)
def test_anything_else_is_not_plausible(value: object) -> None:
    """Dots, slashes, escapes, spaces, non-ASCII, more than 64 characters or no string at all: not an id."""
    assert not plausible_id(value)


@given(st.uuids())
def test_every_uuid_is_plausible(value: uuid.UUID) -> None:
    """Any uuid, as SonarQube 10.4+ and the bridge write it, is a plausible id."""
    assert plausible_id(str(value))


@given(st.text(alphabet=ID_ALPHABET, min_size=1, max_size=MAX_ID_LENGTH))
def test_every_short_string_of_the_alphabet_is_plausible(value: str) -> None:
    """1 to 64 of A-Z, a-z, 0-9, `_` and `-` is exactly what passes."""
    assert plausible_id(value)


@given(
    st.text(alphabet=ID_ALPHABET, max_size=20),
    st.characters().filter(lambda char: char not in ID_ALPHABET),
    st.text(alphabet=ID_ALPHABET, max_size=20),
)
def test_one_other_character_anywhere_makes_it_implausible(before: str, other: str, after: str) -> None:
    """A single character outside the alphabet, wherever it stands, is enough to refuse an id."""
    assert not plausible_id(before + other + after)
