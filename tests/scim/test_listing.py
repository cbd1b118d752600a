"""Query parameters, rendering with attributes/excludedAttributes, and list responses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scim2_models import Context, GroupMember, ListResponse, Meta

from scim_bridge.scim.errors import InvalidFilterError, InvalidValueError
from scim_bridge.scim.filters import Lookup
from scim_bridge.scim.listing import (
    MAX_RESULTS,
    MAX_START_INDEX,
    SearchParams,
    list_response,
    render_resource,
)
from scim_bridge.scim.resources import GroupResource, UserResource

if TYPE_CHECKING:
    from collections.abc import Callable

    PayloadLoader = Callable[[str], Any]

LOCATION = "https://sonar.example.com/api/scim/v2/Groups/g-devs"


@pytest.fixture
def devs() -> GroupResource:
    """A group with one member."""
    return GroupResource(id="g-devs", display_name="Sonar Developers", members=[GroupMember(value="u-adele")])


@pytest.mark.parametrize(
    ("query", "start_index", "count"),
    [
        pytest.param({}, 1, MAX_RESULTS, id="defaults"),
        pytest.param({"startIndex": "6", "count": "5"}, 6, 5, id="a16-pagination"),
        pytest.param({"startIndex": "0"}, 1, MAX_RESULTS, id="start-below-1-is-1"),
        pytest.param({"startIndex": "-4"}, 1, MAX_RESULTS, id="negative-start-is-1"),
        pytest.param({"count": "-3"}, 1, 0, id="negative-count-is-0"),
        pytest.param({"count": "0"}, 1, 0, id="zero-count"),
        pytest.param({"count": str(MAX_RESULTS + 1)}, 1, MAX_RESULTS, id="count-capped"),
        pytest.param({"startindex": "3", "COUNT": "2"}, 3, 2, id="parameter-names-any-case"),
        pytest.param({"startIndex": str(2**63 + 1)}, MAX_START_INDEX, MAX_RESULTS, id="start-beyond-int64"),
        pytest.param({"startIndex": str(2**31)}, MAX_START_INDEX, MAX_RESULTS, id="start-beyond-int32"),
        pytest.param({"startIndex": "9" * 5000}, MAX_START_INDEX, MAX_RESULTS, id="start-5000-digits"),
        pytest.param(
            {"startIndex": "1_000_000_000_000"}, MAX_START_INDEX, MAX_RESULTS, id="start-underscores"
        ),
        pytest.param({"startIndex": f"-{2**63 + 1}"}, 1, MAX_RESULTS, id="start-below-int64"),
        pytest.param({"startIndex": "-" + "9" * 5000}, 1, MAX_RESULTS, id="start-minus-5000-digits"),
        pytest.param({"startIndex": "0" * 5000 + "7"}, 7, MAX_RESULTS, id="start-leading-zeros"),
        pytest.param({"count": str(2**63 + 1)}, 1, MAX_RESULTS, id="count-beyond-int64"),
        pytest.param({"count": "9" * 5000}, 1, MAX_RESULTS, id="count-5000-digits"),
        pytest.param({"count": f"-{2**63 + 1}"}, 1, 0, id="count-below-int64"),
    ],
)
def test_pagination_parameters(query: dict[str, str], start_index: int, count: int) -> None:
    """RFC 7644 §3.4.2.4: 1-based startIndex (below 1 means 1), count capped at the advertised maximum."""
    params = SearchParams.from_query(query, UserResource)

    assert (params.start_index, params.count) == (start_index, count)


@given(st.integers(), st.integers())
def test_any_integer_is_read_within_range(start_index: int, count: int) -> None:
    """Whatever integers a client sends, startIndex ends up in 1..MAX_START_INDEX (what every store can
    skip) and count in 0..MAX_RESULTS, both clamped rather than refused (RFC 7644 §3.4.2.4)."""
    params = SearchParams.from_query({"startIndex": str(start_index), "count": str(count)}, UserResource)

    assert params.start_index == min(max(start_index, 1), MAX_START_INDEX)
    assert params.count == min(max(count, 0), MAX_RESULTS)


def test_entra_flag_and_unsupported_parameters_are_ignored() -> None:
    """Q9: `aadOptscim062020` may reach the bridge and changes nothing; sorting is not supported."""
    params = SearchParams.from_query(
        {"aadOptscim062020": "", "sortBy": "userName", "filter": 'userName eq "a"'}, UserResource
    )

    assert (params.lookup, params.start_index, params.count) == (
        Lookup("userName", "a", case_exact=False),
        1,
        MAX_RESULTS,
    )


def test_the_filter_is_parsed_for_the_resource_type(load_payload: PayloadLoader) -> None:
    """A8: the group matching query's filter (a look-up by displayName) and excludedAttributes are read."""
    params = SearchParams.from_query(load_payload("entra/a8-match-group-query"), GroupResource)

    expected = Lookup("displayName", "Sonar Developers", case_exact=False)
    assert (params.lookup, params.excluded_attributes) == (expected, ("members",))


@pytest.mark.parametrize(
    ("query", "error_class", "detail"),
    [
        pytest.param({"count": "ten"}, InvalidValueError, "count: value is not a valid integer", id="count"),
        pytest.param(
            {"startIndex": "1.5"}, InvalidValueError, "startIndex: value is not a valid integer", id="start"
        ),
        pytest.param(
            {"startIndex": "9" * 5000 + "x"},
            InvalidValueError,
            "startIndex: value is not a valid integer",
            id="start-long-but-no-integer",
        ),
        pytest.param(
            {"count": "1e999"}, InvalidValueError, "count: value is not a valid integer", id="count-exponent"
        ),
        pytest.param(
            {"attributes": "userName,shoeSize"},
            InvalidValueError,
            "attributes: shoeSize is not an attribute of User",
            id="unknown-attribute",
        ),
        pytest.param(
            {"excludedAttributes": "members"},
            InvalidValueError,
            "excludedAttributes: members is not an attribute of User",
            id="members-is-no-user-attribute",
        ),
        pytest.param(
            {"filter": "userName eq"}, InvalidFilterError, "filter: invalid syntax at column 10", id="filter"
        ),
    ],
)
def test_wrong_parameters_are_refused_naming_them(
    query: dict[str, str], error_class: type[Exception], detail: str
) -> None:
    """A wrong query parameter is a 400 that says which one and why."""
    with pytest.raises(error_class) as caught:
        SearchParams.from_query(query, UserResource)

    assert str(caught.value) == detail


def test_excluded_members_leave_no_members_key(load_payload: PayloadLoader, devs: GroupResource) -> None:
    """A8/A9 / Q17: with `excludedAttributes=members` the group is returned without any `members` key."""
    params = SearchParams.from_query(load_payload("entra/a9-get-group-query"), GroupResource)

    rendered = render_resource(devs, params, LOCATION)

    assert rendered == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "g-devs",
        "meta": {"resourceType": "Group", "location": LOCATION},
        "displayName": "Sonar Developers",
    }


def test_attributes_keep_id_always(load_payload: PayloadLoader, adele: UserResource) -> None:
    """A17 / RFC 7643 §7: `attributes=id` returns the id (and schemas) only; id is always returned."""
    params = SearchParams.from_query(load_payload("entra/a17-reference-check-query"), UserResource)

    assert render_resource(adele, params, "loc") == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "u-adele",
    }


def test_rendering_without_parameters_returns_every_attribute(devs: GroupResource) -> None:
    """A POST or GET without parameters returns the resource whole, members with their User's `$ref`."""
    users = LOCATION.rsplit("/", 2)[0] + "/Users/"
    assert render_resource(devs, None, LOCATION)["members"] == [
        {"value": "u-adele", "$ref": users + "u-adele"}
    ]


def test_rendering_keeps_the_stored_meta_and_does_not_touch_the_resource(devs: GroupResource) -> None:
    """meta.created/version set by the provisioning layer are kept; the resource itself is not changed."""
    devs.meta = Meta(version='W/"3"')

    rendered = render_resource(devs, None, LOCATION)

    assert rendered["meta"] == {"resourceType": "Group", "location": LOCATION, "version": 'W/"3"'}
    assert devs.meta is not None
    assert devs.meta.location is None


def test_list_response_counts_exactly(devs: GroupResource) -> None:
    """RFC 7644 §3.4.2: totalResults is the whole count, itemsPerPage the page, startIndex echoed (A16)."""
    params = SearchParams.from_query({"startIndex": "6", "count": "5"}, GroupResource)
    page = [render_resource(devs, params, LOCATION)]

    response = list_response(page, 11, params)

    assert {key: value for key, value in response.items() if key != "Resources"} == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 11,
        "startIndex": 6,
        "itemsPerPage": 1,
    }
    assert response["Resources"] == page


def test_an_empty_list_response_is_what_entra_expects_from_its_probe(load_payload: PayloadLoader) -> None:
    """A1: a filter that matches nothing is a 200 with an empty ListResponse."""
    params = SearchParams.from_query(load_payload("entra/a1-probe-users-query"), UserResource)

    assert list_response([], 0, params) == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }


@pytest.mark.parametrize(("total", "start_index", "count"), [(0, 1, 0), (11, 6, 5), (3, 100, 0)])
def test_list_response_envelope_is_what_scim2_models_writes(total: int, start_index: int, count: int) -> None:
    """The envelope written directly equals scim2-models' own ListResponse for the same numbers."""
    params = SearchParams.from_query({"startIndex": str(start_index), "count": str(count)}, UserResource)
    page = [{"id": str(index)} for index in range(min(count, total))]
    expected = ListResponse[UserResource](
        total_results=total, start_index=start_index, items_per_page=len(page)
    ).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)

    assert list_response(page, total, params) == {**expected, "Resources": page}
