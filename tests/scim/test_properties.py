"""Property tests: filters and PATCH bodies from generated input fail only with SCIM errors, and the
PATCH semantics (idempotent replace, group deltas) hold for any input."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scim_bridge.scim.bodies import parse_group, parse_user
from scim_bridge.scim.errors import InvalidFilterError, ScimError
from scim_bridge.scim.filters import Lookup, direct_lookup, matches, parse_filter
from scim_bridge.scim.patch import apply_user_patch, parse_user_patch, plan_group_patch
from scim_bridge.scim.resources import ENTERPRISE_USER_SCHEMA, UserResource

SETTINGS = settings(max_examples=150, deadline=None)
SCIM_TYPES = {
    None,
    "invalidValue",
    "invalidSyntax",
    "invalidFilter",
    "invalidPath",
    "noTarget",
    "mutability",
    "tooMany",
    "invalidVers",
    "uniqueness",
}

# ---- filters, from a grammar of RFC 7644 §3.4.2.2 with names the User schema has and has not

ATTRIBUTE_PATHS = st.sampled_from(
    [
        "userName",
        "USERNAME",
        "externalId",
        "id",
        "displayName",
        "title",
        "active",
        "emails",
        "emails.value",
        "emails.type",
        "name.givenName",
        "meta.lastModified",
        f"{ENTERPRISE_USER_SCHEMA}:department",
        f"{ENTERPRISE_USER_SCHEMA}.department",
        "manager",
        "fooBar",
        "urn:example:x:attr",
    ]
)
OPERATORS = st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ", "Sw"])
LITERALS = st.one_of(
    st.text(max_size=8).map(json.dumps),
    st.integers(-5, 5).map(str),
    st.sampled_from(["true", "false", "null", '"2011-05-13T04:42:34Z"', "1.5"]),
)
COMPARISONS = st.builds(lambda path, op, value: f"{path} {op} {value}", ATTRIBUTE_PATHS, OPERATORS, LITERALS)
PRESENCES = ATTRIBUTE_PATHS.map(lambda path: f"{path} pr")


def _combined(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, b, op: f"{a} {op} {b}", inner, inner, st.sampled_from(["and", "or", "AND"])),
        inner.map(lambda text: f"not ({text})"),
        inner.map(lambda text: f"({text})"),
        inner.map(lambda text: f"emails[{text}]"),
    )


GRAMMAR_FILTERS = st.recursive(COMPARISONS | PRESENCES, _combined, max_leaves=6)


@st.composite
def damaged(draw: st.DrawFn, texts: st.SearchStrategy[str]) -> str:
    """A filter with one character removed or inserted somewhere."""
    text = draw(texts)
    position = draw(st.integers(0, len(text)))
    if draw(st.booleans()) and text:
        return text[:position] + text[position + 1 :]
    return text[:position] + draw(st.sampled_from(list('()[]". aeq'))) + text[position:]


@SETTINGS
@given(st.one_of(GRAMMAR_FILTERS, damaged(GRAMMAR_FILTERS), st.text(max_size=40)))
def test_a_filter_parses_or_is_an_invalid_filter_error(text: str) -> None:
    """Whatever the client sends, parsing yields a filter or a 400 invalidFilter, never anything else."""
    try:
        scim_filter = parse_filter(text, UserResource)
    except InvalidFilterError as exc:
        refused = exc
    else:
        direct_lookup(scim_filter)
        return
    assert (refused.status, refused.scim_type) == (400, "invalidFilter")


@SETTINGS
@given(GRAMMAR_FILTERS)
def test_a_parsed_filter_renders_back_to_the_same_filter(text: str) -> None:
    """Parse, render, parse again: the rendering is stable (flattened `and` chains may change the tree)."""
    try:
        scim_filter = parse_filter(text, UserResource)
    except InvalidFilterError:
        return

    rendered = str(scim_filter.ast)
    assert str(parse_filter(rendered, UserResource).ast) == rendered


ASCII_NAMES = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.@_-", min_size=1
)


@SETTINGS
@given(ASCII_NAMES, ASCII_NAMES)
def test_user_name_matches_ignoring_case_and_external_id_exactly(user_name: str, external_id: str) -> None:
    """userName is caseExact=false and externalId caseExact=true (RFC 7643 §4.1, §3.1)."""
    user = UserResource(id="u-1", user_name=user_name, external_id=external_id)

    assert matches(parse_filter(f"userName eq {json.dumps(user_name.swapcase())}", UserResource), user)
    assert matches(
        parse_filter(f"externalId eq {json.dumps(external_id.swapcase())}", UserResource), user
    ) is (external_id == external_id.swapcase())


@SETTINGS
@given(
    st.sampled_from(["userName", "externalId", "id", "emails.value"]),
    st.sampled_from([str.lower, str.upper, str]),
    st.text(max_size=12),
)
def test_an_eq_on_a_key_is_a_lookup_whatever_the_name_case(attribute: str, spelling: Any, value: str) -> None:
    """Attribute names are case-insensitive (RFC 7643 §2.1), and so is the look-up's recognition."""
    lookup = direct_lookup(parse_filter(f"{spelling(attribute)} eq {json.dumps(value)}", UserResource))

    assert lookup is not None
    assert (lookup.attribute, lookup.value, lookup.residual) == (attribute, value, None)
    assert isinstance(lookup, Lookup)


# ---- PATCH bodies, from the shapes Entra and the RFC use, with their parts varied

OPS = st.sampled_from(["add", "Add", "replace", "Replace", "remove", "Remove", "REPLACE", "frobnicate", 3])
USER_PATHS = st.sampled_from(
    [
        "userName",
        "displayName",
        "title",
        "active",
        "nickName",
        "name.familyName",
        "emails",
        'emails[type eq "work"].value',
        'emails[type eq "home"]',
        'addresses[type eq "work"].formatted',
        "roles",
        "id",
        "meta",
        "groups",
        "manager",
        f"{ENTERPRISE_USER_SCHEMA}:manager",
        f"{ENTERPRISE_USER_SCHEMA}:department",
        f"{ENTERPRISE_USER_SCHEMA}.employeeNumber",
        "urn:example:x:attr",
        "emails[",
        "",
    ]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=6) | st.sampled_from(["True", "false"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["value", "type", "$ref", "x"]), inner)
    ),
    max_leaves=5,
)


@st.composite
def operations(draw: st.DrawFn, paths: st.SearchStrategy[str], values: st.SearchStrategy[Any]) -> Any:
    """A PATCH operation object, possibly missing its path or value, possibly not an object at all."""
    if draw(st.integers(0, 19)) == 0:
        return draw(JSON_VALUES)
    operation: dict[str, Any] = {"op": draw(OPS)}
    if draw(st.booleans()):
        operation["path"] = draw(paths)
    if draw(st.booleans()):
        operation["value"] = draw(values)
    elif "path" not in operation:
        operation["value"] = draw(st.dictionaries(paths, values, max_size=3))
    return operation


def _assert_scim_error(exc: ScimError) -> None:
    assert exc.status in {400, 413}
    assert exc.scim_type in SCIM_TYPES
    assert exc.detail


def _user() -> UserResource:
    return UserResource.model_validate(
        {
            "id": "u-1",
            "userName": "adele@contoso.example",
            "emails": [{"value": "adele@contoso.example", "type": "work", "primary": True}],
        }
    )


@SETTINGS
@given(st.lists(operations(USER_PATHS, JSON_VALUES), max_size=4))
def test_a_generated_user_patch_applies_or_is_a_scim_error(generated: list[Any]) -> None:
    """Any PATCH body is applied whole or refused with a SCIM 400, leaving the user as it was."""
    user = _user()
    before = user.model_copy(deep=True)
    try:
        apply_user_patch(user, parse_user_patch({"Operations": generated}))
    except ScimError as exc:
        _assert_scim_error(exc)
        assert user == before


MEMBER_IDS = st.sampled_from(["u-1", "u-2", "u-3", "g-9"])
MEMBER_VALUES = st.one_of(
    st.lists(st.builds(lambda member: {"$ref": None, "value": member}, MEMBER_IDS), max_size=3),
    MEMBER_IDS,
    JSON_VALUES,
)
GROUP_PATHS = st.sampled_from(
    [
        "members",
        "Members",
        'members[value eq "u-1"]',
        'members[type eq "User"]',
        "members.value",
        "displayName",
        "externalId",
        "id",
        "urn:example:x:attr",
        "members[",
        "",
    ]
)


@SETTINGS
@given(st.lists(operations(GROUP_PATHS, MEMBER_VALUES), max_size=4))
def test_a_generated_group_patch_plans_or_is_a_scim_error(generated: list[Any]) -> None:
    """Any group PATCH body is planned or refused with a SCIM 400, never another exception."""
    try:
        plan = plan_group_patch({"Operations": generated})
    except ScimError as exc:
        _assert_scim_error(exc)
    else:
        assert not set(plan.add_members) & set(plan.remove_members)
        assert not (plan.remove_all_members and plan.replace_members is not None)


SIMPLE_PATHS = st.sampled_from(
    ["displayName", "title", "nickName", "name.givenName", f"{ENTERPRISE_USER_SCHEMA}:department"]
)


@SETTINGS
@given(SIMPLE_PATHS, st.text(min_size=1, max_size=10), st.sampled_from(["replace", "Replace", "add"]))
def test_replace_is_idempotent(path: str, value: str, op: str) -> None:
    """Sending the same replace twice changes the user once: the second is a no-op (Entra re-sends)."""
    user = _user()
    patch = parse_user_patch({"Operations": [{"op": op, "path": path, "value": value}]})

    apply_user_patch(user, patch)
    after_once = user.model_copy(deep=True)

    assert apply_user_patch(user, patch) is False
    assert user == after_once
    assert user[path] == value


MEMBER_OPERATIONS: st.SearchStrategy[tuple[str, list[str]]] = st.one_of(
    st.tuples(st.just("add"), st.lists(MEMBER_IDS, max_size=3)),
    st.tuples(st.just("remove"), st.lists(MEMBER_IDS, max_size=3)),
    st.tuples(st.just("remove-filter"), st.lists(MEMBER_IDS, min_size=1, max_size=2)),
    st.tuples(st.just("replace"), st.lists(MEMBER_IDS, max_size=3)),
    st.tuples(st.just("remove-all"), st.just([])),
)


def _member_operation(kind: str, member_ids: list[str]) -> dict[str, Any]:
    values = [{"value": member_id} for member_id in member_ids]
    if kind == "remove-filter":
        return {"op": "remove", "path": "members[" + " or ".join(f'value eq "{m}"' for m in member_ids) + "]"}
    if kind == "remove-all":
        return {"op": "remove", "path": "members"}
    return {"op": kind, "path": "members", "value": values}


def _applied_in_order(current: set[str], kind: str, member_ids: list[str]) -> set[str]:
    """RFC 7644 §3.5.2 read literally, one operation at a time, on the member set."""
    if kind == "add":
        return current | set(member_ids)
    if kind in {"remove", "remove-filter"}:
        return current - set(member_ids)
    if kind == "replace":
        return set(member_ids)
    return set()


@SETTINGS
@given(st.sets(MEMBER_IDS), st.lists(MEMBER_OPERATIONS, max_size=5))
def test_a_group_plan_has_the_effect_of_its_operations_in_order(
    current: set[str], member_operations: list[tuple[str, list[str]]]
) -> None:
    """The plan, computed without the members, leaves any group as applying each operation in turn would."""
    plan = plan_group_patch({"Operations": [_member_operation(*each) for each in member_operations]})

    expected = set(current)
    for kind, member_ids in member_operations:
        expected = _applied_in_order(expected, kind, member_ids)
    assert plan.members_after(current) == expected


@SETTINGS
@given(st.sets(MEMBER_IDS), MEMBER_IDS)
def test_adding_then_removing_a_non_member_changes_nothing(current: set[str], member_id: str) -> None:
    """Add then remove of someone who was not a member leaves the group as it was (remove is idempotent)."""
    plan = plan_group_patch(
        {"Operations": [_member_operation("add", [member_id]), _member_operation("remove", [member_id])]}
    )

    assert plan.members_after(current - {member_id}) == current - {member_id}
    assert plan.add_members == ()


# ---- POST and PUT bodies

BODY_KEYS = st.one_of(
    st.sampled_from(
        [
            "schemas",
            "userName",
            "UserName",
            "displayName",
            "active",
            "emails",
            "name",
            "name.givenName",
            "roles",
            "groups",
            "members",
            "meta",
            "id",
            "password",
            "manager",
            "department",
            ENTERPRISE_USER_SCHEMA,
            "urn:example:x:attr",
        ]
    ),
    st.text(max_size=8),
)


@SETTINGS
@given(st.dictionaries(BODY_KEYS, JSON_VALUES, max_size=5), st.booleans())
def test_a_generated_body_is_read_or_is_a_scim_error(body: dict[str, Any], replacement: bool) -> None:
    """Any POST or PUT body becomes a User and a Group, or a SCIM 400, never another exception."""
    for parse in (parse_user, parse_group):
        try:
            parse(body, replacement=replacement)
        except ScimError as exc:
            _assert_scim_error(exc)
