"""Filters: the RFC grammar parses, Entra's `eq` filters are direct look-ups, matching follows caseExact."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scim2_models import ScimFilter

from scim_bridge.scim.errors import InvalidFilterError
from scim_bridge.scim.filters import (
    MAX_FILTER_LENGTH,
    MAX_FILTER_TERMS,
    Lookup,
    count_terms,
    direct_lookup,
    matches,
    parse_filter,
    simple_lookup,
)
from scim_bridge.scim.resources import ENTERPRISE_USER_SCHEMA, USER_SCHEMA, GroupResource, UserResource
from tests.support import PAYLOADS

if TYPE_CHECKING:
    from collections.abc import Callable

    PayloadLoader = Callable[[str], Any]


def test_every_rfc_filter_example_parses(load_payload: PayloadLoader) -> None:
    """RFC 7644 §3.4.2.2: each example filter of the RFC is accepted for Users."""
    for text in load_payload("rfc/rfc7644-3.4.2.2-filters"):
        assert parse_filter(text, UserResource) == text


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            "entra/a1-probe-users-query",
            Lookup("userName", "3f5d2b9e-6a41-4c8e-9d27-0b1f4e6c8a93", case_exact=False),
        ),
        (
            "entra/a2-match-username-query",
            Lookup("userName", "adele.vance@contoso.example", case_exact=False),
        ),
        ("entra/a2-match-externalid-query", Lookup("externalId", "adelev", case_exact=True)),
    ],
)
def test_entra_user_matching_filters_are_direct_lookups(
    load_payload: PayloadLoader, payload: str, expected: Lookup
) -> None:
    """A1/A2: the probe and the matching queries are answered by one look-up, never by a listing."""
    scim_filter = parse_filter(load_payload(payload)["filter"], UserResource)

    assert direct_lookup(scim_filter) == expected


def test_entra_work_email_matching_is_a_lookup_with_the_type_left_to_check(
    load_payload: PayloadLoader,
) -> None:
    """A2: `emails[type eq "work"].value eq "x"` looks up by e-mail, then checks the type in memory."""
    scim_filter = parse_filter(load_payload("entra/a2-match-work-email-query")["filter"], UserResource)

    assert direct_lookup(scim_filter) == Lookup(
        "emails.value", "adele.vance@contoso.example", case_exact=False, residual=scim_filter
    )


@pytest.mark.parametrize("payload", ["entra/a1-probe-groups-query", "entra/a8-match-group-query"])
def test_entra_group_matching_filters_are_direct_lookups(load_payload: PayloadLoader, payload: str) -> None:
    """A1/A8: groups are matched by displayName, case-insensitively."""
    query = load_payload(payload)

    lookup = direct_lookup(parse_filter(query["filter"], GroupResource))

    assert lookup == Lookup("displayName", query["filter"].split('"')[1], case_exact=False)


def test_entra_reference_check_is_an_id_lookup_with_a_residual(load_payload: PayloadLoader) -> None:
    """A17: `id eq "x" and manager eq "y"` looks up the id and checks the manager in memory."""
    scim_filter = parse_filter(load_payload("entra/a17-reference-check-query")["filter"], UserResource)

    assert direct_lookup(scim_filter) == Lookup("id", "u-adele", case_exact=True, residual=scim_filter)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            'USERNAME eq "A"', Lookup("userName", "A", case_exact=False), id="attribute-name-any-case"
        ),
        pytest.param('userName EQ "A"', Lookup("userName", "A", case_exact=False), id="operator-any-case"),
        pytest.param(
            'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "A"',
            Lookup("userName", "A", case_exact=False),
            id="urn-qualified",
        ),
        pytest.param('id eq "u-1"', Lookup("id", "u-1", case_exact=True), id="id"),
        pytest.param(
            'emails.value eq "a@b"', Lookup("emails.value", "a@b", case_exact=False), id="emails-dot-value"
        ),
        pytest.param(
            'emails eq "a@b"', Lookup("emails.value", "a@b", case_exact=False), id="emails-by-value"
        ),
        pytest.param(
            'emails[value eq "a@b"]', Lookup("emails.value", "a@b", case_exact=False), id="emails-value-path"
        ),
        pytest.param('userName eq "a" or userName eq "b"', None, id="or-is-listed"),
        pytest.param('userName co "a"', None, id="other-operator-is-listed"),
        pytest.param('not (userName eq "a")', None, id="negation-is-listed"),
        pytest.param('displayName eq "Adele"', None, id="user-display-name-is-not-a-key"),
        pytest.param('title eq "x"', None, id="non-key-attribute"),
        pytest.param("userName eq null", None, id="null-value"),
    ],
)
def test_direct_lookup_recognises_a_single_eq_on_a_key(text: str, expected: Lookup | None) -> None:
    """Only an `eq` on a key attribute, alone or within `and`, is answered by a look-up."""
    assert direct_lookup(parse_filter(text, UserResource)) == expected


def test_a_conjunction_looks_up_the_most_selective_key() -> None:
    """Within `and`, the id wins over the userName, and the whole filter stays to be checked."""
    scim_filter = parse_filter('userName eq "a" and id eq "u-1" and active eq true', UserResource)

    assert direct_lookup(scim_filter) == Lookup("id", "u-1", case_exact=True, residual=scim_filter)


def test_group_external_id_is_a_lookup() -> None:
    """Groups are looked up by id, externalId and displayName."""
    assert direct_lookup(parse_filter('externalId eq "obj-1"', GroupResource)) == Lookup(
        "externalId", "obj-1", case_exact=True
    )


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        pytest.param('userName eq "a', "filter: invalid syntax at column 13", id="unterminated-string"),
        pytest.param("userName eq", "filter: invalid syntax at column 10", id="missing-value"),
        pytest.param('userName xx "a"', "filter: invalid syntax at column 10", id="unknown-operator"),
        pytest.param("", "filter: invalid syntax at column 1", id="empty"),
        pytest.param('fooBar eq "a"', "filter: Field not found: fooBar", id="unknown-attribute"),
        pytest.param(
            'active eq "maybe"',
            f"filter: value 'maybe' is not valid for attribute '{USER_SCHEMA}:active'",
            id="value-of-the-wrong-type",
        ),
    ],
)
def test_invalid_filters_are_invalid_filter_errors_with_the_column(text: str, detail: str) -> None:
    """RFC 7644 §3.4.2.2: a filter that does not parse or names no attribute is a 400 invalidFilter."""
    with pytest.raises(InvalidFilterError) as caught:
        parse_filter(text, UserResource)

    assert caught.value.detail == detail


@pytest.fixture
def stored_user() -> UserResource:
    """A stored user whose names differ in case from the filters below."""
    return UserResource.model_validate(
        {
            "id": "u-1",
            "userName": "Adele.Vance@Contoso.example",
            "externalId": "AdeleV",
            "emails": [{"value": "adele@contoso.example", "type": "work"}],
            ENTERPRISE_USER_SCHEMA: {"manager": {"value": "u-megan"}},
        }
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('userName eq "adele.vance@contoso.EXAMPLE"', True, id="userName-ignores-case"),
        pytest.param('externalId eq "AdeleV"', True, id="externalId-exact"),
        pytest.param('externalId eq "adelev"', False, id="externalId-is-case-exact"),
        pytest.param('emails[type eq "work"].value eq "ADELE@contoso.example"', True, id="work-email"),
        pytest.param('emails[type eq "home"].value eq "adele@contoso.example"', False, id="not-a-home-email"),
        pytest.param('id eq "u-1" and manager eq "u-megan"', True, id="a17-reference-check"),
        pytest.param('id eq "u-1" and manager eq "u-other"', False, id="a17-other-manager"),
        pytest.param('id eq "U-1"', False, id="id-is-case-exact"),
    ],
)
def test_matches_follows_each_attributes_case_exactness(
    stored_user: UserResource, text: str, expected: bool
) -> None:
    """userName and displayName compare ignoring case; externalId and id exactly (RFC 7643)."""
    assert matches(parse_filter(text, UserResource), stored_user) is expected


def test_group_display_name_matches_ignoring_case() -> None:
    """A8: a group's displayName matches whatever case Entra sends."""
    group = GroupResource(id="g-1", display_name="Sonar Developers")

    assert matches(parse_filter('displayName eq "SONAR developers"', GroupResource), group) is True


# -- limits --------------------------------------------------------------------------------------------


def _terms(count: int, joiner: str = " or ") -> str:
    return joiner.join(f'userName eq "u{index}"' for index in range(count))


def _padded(length: int) -> str:
    """A one-term filter exactly `length` characters long."""
    prefix = 'userName eq "'
    return prefix + "x" * (length - len(prefix) - 1) + '"'


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(_terms(MAX_FILTER_TERMS), id="max-terms"),
        pytest.param(_terms(MAX_FILTER_TERMS, " and "), id="max-terms-and"),
        pytest.param(_padded(MAX_FILTER_LENGTH), id="max-length"),
        pytest.param(
            " or ".join(f'emails[type eq "work" and value eq "u{index}"]' for index in range(25)),
            id="max-terms-in-value-paths",
        ),
    ],
)
def test_filters_within_the_limits_parse(text: str) -> None:
    """A filter of MAX_FILTER_TERMS comparisons, or MAX_FILTER_LENGTH characters, is still accepted."""
    assert parse_filter(text, UserResource) is not None


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        pytest.param(
            _terms(MAX_FILTER_TERMS + 1),
            f"filter: {MAX_FILTER_TERMS + 1} comparisons; at most {MAX_FILTER_TERMS}",
            id="terms",
        ),
        pytest.param(
            " and ".join(["title pr"] * (MAX_FILTER_TERMS + 1)),
            f"at most {MAX_FILTER_TERMS}",
            id="present-tests",
        ),
        pytest.param(
            " or ".join(f'emails[type eq "work" and value eq "u{index}"]' for index in range(26)),
            f"filter: 52 comparisons; at most {MAX_FILTER_TERMS}",
            id="terms-inside-value-paths",
        ),
        pytest.param(
            "not (" + _terms(MAX_FILTER_TERMS + 1) + ")", f"at most {MAX_FILTER_TERMS}", id="negated-terms"
        ),
        pytest.param(
            _padded(MAX_FILTER_LENGTH + 1),
            f"filter: {MAX_FILTER_LENGTH + 1} characters long; at most {MAX_FILTER_LENGTH} characters",
            id="length",
        ),
        pytest.param(
            "(" * 5000 + "userName pr" + ")" * 5000, f"at most {MAX_FILTER_LENGTH}", id="deep-parens"
        ),
    ],
)
def test_filters_beyond_the_limits_are_invalid_filter(text: str, detail: str) -> None:
    """More than MAX_FILTER_TERMS comparisons (`pr` and those in `[...]` included) or MAX_FILTER_LENGTH
    characters is a 400 invalidFilter naming the limit, whether the filter is well-formed or not."""
    with pytest.raises(InvalidFilterError) as caught:
        parse_filter(text, UserResource)

    assert detail in caught.value.detail


def test_entras_own_filters_stay_far_within_the_limits() -> None:
    """Every filter of the Entra corpus (tests/payloads/entra/*query*) is well under both limits."""
    texts = [
        query["filter"]
        for path in sorted(PAYLOADS.glob("entra/*query*.json"))
        if "filter" in (query := json.loads(path.read_text(encoding="utf-8")))
    ]

    assert len(texts) >= 7  # A1 (two), A2 (three), A8, A17
    for text in texts:
        model = GroupResource if "displayName" in text else UserResource
        assert len(text) <= MAX_FILTER_LENGTH // 10, text
        assert count_terms(ScimFilter(text).ast) <= MAX_FILTER_TERMS // 10, text
        assert parse_filter(text, model) is not None


@given(st.integers(min_value=1, max_value=MAX_FILTER_TERMS + 10))
def test_the_term_limit_is_exact(count: int) -> None:
    """Exactly the filters with more than MAX_FILTER_TERMS comparisons are refused."""
    text = _terms(count)
    if count <= MAX_FILTER_TERMS:
        assert count_terms(parse_filter(text, UserResource).ast) == count
    else:
        with pytest.raises(InvalidFilterError):
            parse_filter(text, UserResource)


_KEY_ATTRIBUTES = st.sampled_from(
    [(UserResource, name) for name in ("userName", "USERNAME", "externalId", "id", "emails.value", "active")]
    + [(GroupResource, name) for name in ("displayName", "displayname", "externalId", "id", "members")]
)


@given(_KEY_ATTRIBUTES, st.text(max_size=40), st.sampled_from(["eq", "EQ", "Eq", "ne"]), st.booleans())
def test_simple_lookup_agrees_with_the_parser(
    model_and_attribute: tuple[type[UserResource | GroupResource], str],
    value: str,
    operator: str,
    spaced: bool,
) -> None:
    """A filter read without the parser gives the look-up the parser gives; what it cannot read, it leaves."""
    model, attribute = model_and_attribute
    gap = "  " if spaced else " "
    text = f"{attribute}{gap}{operator} {json.dumps(value)}"
    fast = simple_lookup(text, model)
    if fast is None:
        return
    assert fast == direct_lookup(parse_filter(text, model))


@pytest.mark.parametrize(
    "text",
    [
        'userName eq "a\\"b"',
        'userName eq "a" and active eq true',
        'emails.value eq "a@b"',
        'name.givenName eq "x"',
    ],
)
def test_simple_lookup_leaves_other_filters_to_the_parser(text: str) -> None:
    """Escapes, conjunctions and attributes that are no key go through the full parser."""
    assert simple_lookup(text, UserResource) is None


def test_simple_lookup_leaves_overlong_filters_to_the_parser() -> None:
    """A filter over MAX_FILTER_LENGTH is never read by the short path, so the parser refuses it."""
    assert simple_lookup(f'userName eq "{"x" * MAX_FILTER_LENGTH}"', UserResource) is None
