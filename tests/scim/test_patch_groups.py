"""Group PATCH: every Entra shape, in both dialects, planned as deltas without the current members."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scim_bridge.scim.errors import (
    InvalidFilterError,
    InvalidPathError,
    InvalidValueError,
    MutabilityError,
    PayloadTooLargeError,
    ScimError,
)
from scim_bridge.scim.patch import (
    MAX_MEMBERS,
    MAX_OPERATIONS,
    GroupPatchPlan,
    full_group_plan,
    member_delta,
    plan_group_patch,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    PayloadLoader = Callable[[str], Any]

BJENSEN = "2819c223-7f76-453a-919d-413861904646"
JSMITH = "08e1d05d-121c-4561-8b96-473d93df9210"


def _body(*operations: Any) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("entra/a11-rename-group-default", GroupPatchPlan(display_name="Sonar Maintainers")),
        ("entra/a11-rename-group-pathless-flag", GroupPatchPlan(display_name="Sonar Maintainers")),
        ("entra/a12-add-member-default", GroupPatchPlan(add_members=("u-adele",))),
        ("entra/a12-add-member-flag", GroupPatchPlan(add_members=("u-adele",))),
        ("entra/a13-remove-member-default", GroupPatchPlan(remove_members=("u-adele",))),
        ("entra/a13-remove-member-flag", GroupPatchPlan(remove_members=("u-adele",))),
        ("entra/postman-remove-all-members", GroupPatchPlan(remove_all_members=True)),
        ("entra/postman-add-member-bare-string", GroupPatchPlan(add_members=("u-adele",))),
        ("entra/validator-empty-operations", GroupPatchPlan()),
        ("rfc/rfc7644-3.5.2.1-add-member", GroupPatchPlan(add_members=(BJENSEN,))),
        ("rfc/rfc7644-3.5.2.2-remove-member", GroupPatchPlan(remove_members=(BJENSEN,))),
        ("rfc/rfc7644-3.5.2.2-remove-all-members", GroupPatchPlan(remove_all_members=True)),
        ("rfc/rfc7644-3.5.2.2-remove-all-then-add", GroupPatchPlan(replace_members=(BJENSEN, JSMITH))),
        ("rfc/rfc7644-3.5.2.3-replace-members", GroupPatchPlan(replace_members=(BJENSEN, JSMITH))),
    ],
)
def test_entra_and_rfc_group_patches_are_planned(
    load_payload: PayloadLoader, payload: str, expected: GroupPatchPlan
) -> None:
    """A11-A13: renames and member changes in both dialects become the same plan."""
    assert plan_group_patch(load_payload(payload)) == expected


def test_removing_by_value_list_never_removes_all_members() -> None:
    """A13: `path: "members"` with a value list removes those members only, even an empty list
    (docs/entra.md Q4)."""
    plan = plan_group_patch(_body({"op": "Remove", "path": "members", "value": []}))

    assert plan == GroupPatchPlan()
    assert plan.members_after({"u-1", "u-2"}) == {"u-1", "u-2"}


def test_removing_without_value_removes_all_members() -> None:
    """RFC 7644 §3.5.2.2: `{"op": "remove", "path": "members"}` empties the group."""
    assert plan_group_patch(_body({"op": "remove", "path": "members"})).members_after({"u-1"}) == frozenset()


def test_a_filter_joined_by_or_removes_each_member_it_names() -> None:
    """`members[value eq "a" or value eq "b"]` removes both, without reading the current members."""
    plan = plan_group_patch(_body({"op": "remove", "path": 'members[value eq "a" or value eq "b"]'}))

    assert plan.remove_members == ("a", "b")


def test_member_values_keep_their_order_and_lose_duplicates() -> None:
    """Adding the same member twice in one PATCH plans one addition (docs/entra.md A12)."""
    plan = plan_group_patch(
        _body({"op": "add", "path": "members", "value": [{"value": "b"}, {"value": "a"}, {"value": "b"}]})
    )

    assert plan.add_members == ("b", "a")


def test_capitalised_member_keys_are_read() -> None:
    """Q25: `Value` and `$Ref` in member objects are the schema's `value` and `$ref`."""
    plan = plan_group_patch(
        _body({"op": "Add", "path": "Members", "value": [{"$Ref": None, "Value": "u-1"}]})
    )

    assert plan.add_members == ("u-1",)


@pytest.mark.parametrize(
    ("operations", "expected"),
    [
        pytest.param(
            [{"op": "replace", "path": "externalId", "value": "ext-1"}],
            GroupPatchPlan(external_id="ext-1", external_id_changed=True),
            id="set-external-id",
        ),
        pytest.param(
            [{"op": "remove", "path": "externalId"}],
            GroupPatchPlan(external_id=None, external_id_changed=True),
            id="remove-external-id",
        ),
        pytest.param(
            [{"op": "replace", "path": "externalId", "value": None}],
            GroupPatchPlan(external_id=None, external_id_changed=True),
            id="null-external-id",
        ),
        pytest.param(
            [
                {
                    "op": "replace",
                    "value": {"displayName": "A", "externalId": "e", "members": [{"value": "m"}]},
                }
            ],
            GroupPatchPlan(
                display_name="A", external_id="e", external_id_changed=True, replace_members=("m",)
            ),
            id="pathless-replace-with-members",
        ),
        pytest.param(
            [{"op": "add", "value": {"members": [{"value": "m"}], "schemas": ["x"], "meta": {}}}],
            GroupPatchPlan(add_members=("m",)),
            id="pathless-add-ignores-read-only-keys",
        ),
        pytest.param(
            [
                {"op": "replace", "path": "displayName", "value": "A"},
                {"op": "replace", "path": "displayName", "value": "B"},
            ],
            GroupPatchPlan(display_name="B"),
            id="last-rename-wins",
        ),
        pytest.param(
            [
                {"op": "add", "path": "members", "value": [{"value": "a"}]},
                {"op": "remove", "path": 'members[value eq "a"]'},
            ],
            GroupPatchPlan(remove_members=("a",)),
            id="add-then-remove",
        ),
        pytest.param(
            [
                {"op": "remove", "path": "members", "value": [{"value": "a"}]},
                {"op": "add", "path": "members", "value": [{"value": "a"}]},
            ],
            GroupPatchPlan(add_members=("a",)),
            id="remove-then-add",
        ),
        pytest.param(
            [
                {"op": "replace", "path": "members", "value": [{"value": "a"}, {"value": "b"}]},
                {"op": "remove", "path": 'members[value eq "a"]'},
                {"op": "add", "path": "members", "value": [{"value": "c"}]},
            ],
            GroupPatchPlan(replace_members=("b", "c")),
            id="changes-after-a-replacement-fold-into-it",
        ),
        pytest.param(
            [{"op": "replace", "path": "members", "value": []}],
            GroupPatchPlan(remove_all_members=True),
            id="replace-with-nothing-removes-all",
        ),
        pytest.param(
            [
                {"op": "add", "path": "members", "value": [{"value": "a"}]},
                {"op": "replace", "path": "members", "value": None},
            ],
            GroupPatchPlan(remove_all_members=True),
            id="replace-with-null-removes-all",
        ),
        pytest.param(
            [
                {
                    "op": "add",
                    "path": "urn:ietf:params:scim:schemas:extension:contoso:2.0:Group:tag",
                    "value": "x",
                }
            ],
            GroupPatchPlan(),
            id="unknown-attribute-ignored",
        ),
    ],
)
def test_operations_fold_into_one_plan(operations: list[dict[str, Any]], expected: GroupPatchPlan) -> None:
    """Operations apply in order; the plan holds their net effect as deltas or one replacement."""
    assert plan_group_patch(_body(*operations)) == expected


@pytest.mark.parametrize(
    ("operation", "error_class", "detail"),
    [
        pytest.param(
            {"op": "add", "path": "members", "value": [{"value": ""}]},
            InvalidValueError,
            'Operations[1] (add "members"): members[0].value must be a non-empty string',
            id="empty-member-id",
        ),
        pytest.param(
            {"op": "add", "path": "members", "value": [{"value": 7}]},
            InvalidValueError,
            'Operations[1] (add "members"): members[0]: value: value is not a valid string',
            id="member-id-not-a-string",
        ),
        pytest.param(
            {"op": "add", "path": "members", "value": [{"display": "no id"}]},
            InvalidValueError,
            'Operations[1] (add "members"): members[0].value must be a non-empty string',
            id="member-without-value",
        ),
        pytest.param(
            {"op": "add", "path": "members", "value": [7]},
            InvalidValueError,
            'Operations[1] (add "members"): members[0] must be an object such as {"value": "<member id>"}',
            id="member-not-an-object",
        ),
        pytest.param(
            {"op": "replace", "path": "displayName", "value": " "},
            InvalidValueError,
            'Operations[1] (replace "displayName"): displayName must be a non-empty string',
            id="blank-display-name",
        ),
        pytest.param(
            {"op": "replace", "path": "externalId", "value": 5},
            InvalidValueError,
            'Operations[1] (replace "externalId"): externalId must be a string',
            id="external-id-not-a-string",
        ),
        pytest.param(
            {"op": "remove", "path": "displayName"},
            MutabilityError,
            'Operations[1] (remove "displayName"): required attribute cannot be removed',
            id="remove-required-display-name",
        ),
        pytest.param(
            {"op": "remove", "path": 'members[type eq "User"]'},
            InvalidFilterError,
            'Operations[1] (remove "members[type eq "User"]"): '
            'a members filter selects members by value eq "<id>", joined by or',
            id="member-filter-not-by-value",
        ),
        pytest.param(
            {"op": "add", "path": 'members[value eq "a"]', "value": {"display": "A"}},
            InvalidPathError,
            'Operations[1] (add "members[value eq "a"]"): a members filter can only select members to remove',
            id="filter-on-add",
        ),
        pytest.param(
            {"op": "remove", "path": "members.value"},
            InvalidPathError,
            'Operations[1] (remove "members.value"): members are patched as a whole, not by sub-attribute',
            id="member-sub-attribute",
        ),
        pytest.param(
            {"op": "replace", "value": {"displayName": 3}},
            InvalidValueError,
            "Operations[1] (replace without path) displayName: displayName must be a non-empty string",
            id="pathless-bad-value",
        ),
    ],
)
def test_an_invalid_operation_is_refused_naming_its_index_path_and_rule(
    operation: dict[str, Any], error_class: type[ScimError], detail: str
) -> None:
    """Every operation and member id is checked before the plan is returned."""
    with pytest.raises(error_class) as caught:
        plan_group_patch(_body({"op": "add", "path": "members", "value": [{"value": "ok"}]}, operation))

    assert caught.value.detail == detail


def test_too_many_operations_are_refused_with_413() -> None:
    """More than MAX_OPERATIONS operations in one PATCH is a 413 naming the limit."""
    body = _body(*[{"op": "add", "path": "members", "value": [{"value": "m"}]}] * (MAX_OPERATIONS + 1))

    with pytest.raises(PayloadTooLargeError, match=str(MAX_OPERATIONS)):
        plan_group_patch(body)


def _members(count: int, prefix: str = "m") -> list[dict[str, str]]:
    return [{"value": f"{prefix}{index}"} for index in range(count)]


def _member_filter(count: int) -> str:
    return "members[" + " or ".join(f'value eq "m{index}"' for index in range(count)) + "]"


@pytest.mark.parametrize(
    "operations",
    [
        pytest.param([{"op": "add", "path": "members", "value": _members(MAX_MEMBERS)}], id="one-add"),
        pytest.param(
            [
                {"op": "add", "path": "members", "value": _members(MAX_MEMBERS // 2, "a")},
                {"op": "remove", "path": "members", "value": _members(MAX_MEMBERS // 2, "r")},
            ],
            id="add-and-remove",
        ),
        pytest.param([{"op": "replace", "value": {"members": _members(MAX_MEMBERS)}}], id="pathless-replace"),
        pytest.param([{"op": "remove", "path": _member_filter(MAX_MEMBERS)}], id="remove-by-filter"),
    ],
)
def test_a_patch_may_name_max_members_members(operations: list[dict[str, Any]]) -> None:
    """Up to MAX_MEMBERS member values in one PATCH, all its operations together, are planned."""
    plan = plan_group_patch(_body(*operations))

    named = plan.add_members + plan.remove_members + (plan.replace_members or ())
    assert len(named) == MAX_MEMBERS


@pytest.mark.parametrize(
    "operations",
    [
        pytest.param([{"op": "add", "path": "members", "value": _members(MAX_MEMBERS + 1)}], id="one-add"),
        pytest.param(
            [
                {"op": "add", "path": "members", "value": _members(MAX_MEMBERS // 2 + 1, "a")},
                {"op": "remove", "path": "members", "value": _members(MAX_MEMBERS // 2, "r")},
            ],
            id="add-and-remove",
        ),
        pytest.param(
            [{"op": "replace", "value": {"members": _members(MAX_MEMBERS + 1)}}], id="pathless-replace"
        ),
        pytest.param(
            [{"op": "add", "path": "members", "value": _members(2)}] * (MAX_MEMBERS // 2 + 1),
            id="two-per-operation",
        ),
        pytest.param([{"op": "remove", "path": _member_filter(MAX_MEMBERS + 1)}], id="remove-by-filter"),
        pytest.param(
            [{"op": "add", "path": "members", "value": [*_members(MAX_MEMBERS), "not-an-object"]}],
            id="counted-before-validated",
        ),
    ],
)
def test_more_members_than_max_members_are_refused_with_413(operations: list[dict[str, Any]]) -> None:
    """More than MAX_MEMBERS member values in one PATCH, all operations together, is a 413 naming the limit
    and the operation where it was crossed (counted before each member is validated)."""
    with pytest.raises(PayloadTooLargeError) as caught:
        plan_group_patch(_body(*operations))

    assert f"at most {MAX_MEMBERS} are accepted" in caught.value.detail
    assert caught.value.detail.startswith("Operations[")


@pytest.mark.parametrize(
    ("plan", "current", "expected"),
    [
        pytest.param(GroupPatchPlan(), {"a"}, {"a"}, id="nothing"),
        pytest.param(
            GroupPatchPlan(add_members=("b",), remove_members=("a",)), {"a", "c"}, {"b", "c"}, id="deltas"
        ),
        pytest.param(GroupPatchPlan(replace_members=("x",)), {"a"}, {"x"}, id="replacement"),
        pytest.param(GroupPatchPlan(remove_all_members=True), {"a"}, set(), id="remove-all"),
    ],
)
def test_members_after_applies_the_plan(plan: GroupPatchPlan, current: set[str], expected: set[str]) -> None:
    """`members_after` is what the group holds once the plan is applied to `current`."""
    assert plan.members_after(current) == expected


_MEMBER_ENTRIES = st.one_of(
    st.fixed_dictionaries({"value": st.sampled_from(["u-1", "u-2", " u-3 ", "", "  ", "ü-4"])}),
    st.fixed_dictionaries({"value": st.sampled_from(["u-1", "u-2"]), "display": st.just("Adele")}),
    st.fixed_dictionaries({"value": st.sampled_from(["u-1", "u-2"]), "$ref": st.sampled_from([None, "x"])}),
    st.fixed_dictionaries({"value": st.one_of(st.none(), st.integers(), st.just(["u-1"]))}),
    st.just("u-1"),
)
_OPS = st.sampled_from(["Add", "add", "ADD", "Remove", "remove", "Replace"])
_MEMBER_OPERATIONS = st.one_of(
    st.fixed_dictionaries(
        {
            "op": _OPS,
            "path": st.sampled_from(["members", "Members", "displayName"]),
            "value": st.one_of(st.lists(_MEMBER_ENTRIES, max_size=4), st.just({"value": "u-1"})),
        }
    ),
    st.fixed_dictionaries(
        {
            "op": _OPS,
            "path": st.builds(
                'members[value eq "{}"]'.format, st.sampled_from(["u-1", " ", "", "a b", "ü", '\\"'])
            ),
        }
    ),
)


@given(st.lists(_MEMBER_OPERATIONS, min_size=1, max_size=2))
def test_member_delta_read_directly_is_the_full_reading(operations: list[dict[str, Any]]) -> None:
    """Entra's member change read without scim2-models gives the plan the full reading gives, or is left
    to it; whatever the full reading refuses, the direct one leaves to it."""
    body = _body(*operations)
    direct = member_delta(body)
    if direct is None:
        return
    assert direct == full_group_plan(body)


@pytest.mark.parametrize(
    "payload",
    [
        "entra/a12-add-member-default",
        "entra/a12-add-member-flag",
        "entra/a13-remove-member-default",
        "entra/a13-remove-member-flag",
    ],
)
def test_entras_member_changes_are_read_directly(load_payload: PayloadLoader, payload: str) -> None:
    """A12-A13: Entra's member changes, in both dialects, take the direct reading, to the same plan."""
    body = load_payload(payload)
    assert member_delta(body) == full_group_plan(body)
    assert member_delta(body) is not None
