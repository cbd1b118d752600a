"""User PATCH: every Entra shape, in both dialects, parsed and applied by scim2-models all-or-nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from scim_bridge.scim.errors import (
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    MutabilityError,
    NoTargetError,
    PayloadTooLargeError,
    ScimError,
)
from scim_bridge.scim.patch import MAX_OPERATIONS, apply_user_patch, parse_user_patch
from scim_bridge.scim.resources import ENTERPRISE_USER_SCHEMA as ENT
from scim_bridge.scim.resources import EntraEnterpriseUser, UserResource

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    PayloadLoader = Callable[[str], Any]


def _patched(user: UserResource, body: Mapping[str, Any]) -> bool:
    return apply_user_patch(user, parse_user_patch(body))


def _body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)}


@pytest.mark.parametrize(
    ("payload", "path", "expected"),
    [
        ("entra/a5-replace-username-default", "userName", "adele.v@contoso.example"),
        ("entra/a5-replace-username-flag", "userName", "adele.v@contoso.example"),
        ("entra/a5-add-nickname-default", "nickName", "Addy"),
        ("entra/a5-add-nickname-flag", "nickName", "Addy"),
        ("entra/a5-replace-family-name-default", "name.familyName", "Vance-Smith"),
        ("entra/a5-replace-family-name-flag", "name.familyName", "Vance-Smith"),
        ("entra/a5-replace-work-email-default", 'emails[type eq "work"].value', ["adele@fabrikam.example"]),
        ("entra/a5-replace-work-email-flag", 'emails[type eq "work"].value', ["adele@fabrikam.example"]),
        (
            "entra/a5-replace-address-and-phone-default",
            'addresses[type eq "work"].formatted',
            ["1 Microsoft Way, Redmond"],
        ),
        (
            "entra/a5-replace-address-and-phone-default",
            'phoneNumbers[type eq "mobile"].value',
            ["+1 555 0199"],
        ),
        ("entra/a5-replace-address-and-phone-flag", 'phoneNumbers[type eq "mobile"].value', ["+1 555 0199"]),
        ("entra/a5-add-department-urn-default", f"{ENT}:department", "Retail"),
        ("entra/a5-add-department-urn-flag", f"{ENT}:department", "Retail"),
        ("entra/a5-mixed-replace-add-default", 'addresses[type eq "work"].streetAddress', ["1 Main St"]),
        ("entra/a5-mixed-replace-add-default", f"{ENT}:employeeNumber", "2048"),
        ("entra/a5-pathless-dotted-flag", "displayName", "Adele V."),
        ("entra/a5-pathless-dotted-flag", "name.givenName", "Adele"),
        ("entra/a5-pathless-dotted-flag", f"{ENT}:employeeNumber", "2049"),
        ("entra/a5-manager-add-default", f"{ENT}:manager.value", "u-megan"),
        ("entra/a5-manager-add-flag", f"{ENT}:manager.value", "u-megan"),
        ("entra/a5-manager-replace-default", f"{ENT}:manager.value", "u-nestor"),
        ("entra/a5-manager-replace-flag", f"{ENT}:manager.value", "u-nestor"),
        ("entra/a5-manager-legacy-list", f"{ENT}:manager.value", "u-megan"),
        (
            "entra/a5-roles-add-default",
            "roles.value",
            ['{"id":"7b1f0c2d","value":"SonarAdmin","displayName":"Sonar Admin"}'],
        ),
        ("entra/a5-roles-replace-flag", "roles.value", ["SonarAdmin"]),
        ("entra/a6-disable-default", "active", False),
        ("entra/a6-disable-lowercase-string", "active", False),
        ("entra/a6-disable-flag", "active", False),
        ("entra/a6-disable-pathless-flag", "active", False),
        ("entra/legacy-replace-wrapped-display-name", "displayName", "Adele (legacy)"),
        ("rfc/rfc7644-3.5.2.1-add-pathless", "nickName", "Babs"),
        ("rfc/rfc7644-3.5.2.1-add-pathless", 'emails[type eq "home"].value', ["babs@jensen.org"]),
        ("rfc/rfc7644-3.5.2.3-replace-work-address", 'addresses[type eq "work"].postalCode', ["91608"]),
        (
            "rfc/rfc7644-3.5.2.3-replace-work-street",
            'addresses[type eq "work"].streetAddress',
            ["1010 Broadway Ave"],
        ),
        ("rfc/rfc7644-3.5.2.3-replace-pathless", "emails.value", ["bjensen@example.com", "babs@jensen.org"]),
    ],
)
def test_entra_and_rfc_user_patches_set_the_attribute(
    adele: UserResource, load_payload: PayloadLoader, payload: str, path: str, expected: Any
) -> None:
    """A5/A6: each shape Entra sends (default and aadOptscim062020 dialects) sets what it names."""
    assert _patched(adele, load_payload(payload)) is True

    assert adele[path] == expected


@pytest.mark.parametrize("payload", ["entra/a6-enable-default", "entra/a6-enable-flag"])
def test_reenabling_sets_active_in_both_dialects(
    adele: UserResource, load_payload: PayloadLoader, payload: str
) -> None:
    """A6: re-assignment sends `active` true, as "True" (default) or a boolean (flag)."""
    adele.active = False

    assert _patched(adele, load_payload(payload)) is True
    assert adele.active is True


@pytest.mark.parametrize(
    "payload",
    [
        "entra/a5-manager-remove-empty-default",
        "entra/a5-manager-remove-empty-flag",
        "rfc/rfc7644-3.5.2.2-remove-manager",
    ],
)
def test_manager_is_removed_by_an_empty_value_or_a_remove(
    adele: UserResource, load_payload: PayloadLoader, payload: str
) -> None:
    """Microsoft's harness removes a manager with an empty replace; RFC 7644 with a remove."""
    adele[f"{ENT}:manager"] = {"value": "u-megan"}

    assert _patched(adele, load_payload(payload)) is True
    assert adele[EntraEnterpriseUser] is None or adele[EntraEnterpriseUser].manager is None


def test_unmatched_filter_path_creates_the_entry(adele: UserResource) -> None:
    """Q11: replacing `emails[type eq "home"].value` when there is no home e-mail adds one."""
    body = _body({"op": "Replace", "path": 'emails[type eq "home"].value', "value": "adele@home.example"})

    assert _patched(adele, body) is True
    assert adele["emails.value"] == ["adele.vance@contoso.example", "adele@home.example"]


def test_empty_operations_change_nothing(adele: UserResource, load_payload: PayloadLoader) -> None:
    """Microsoft's validator sends an empty Operations list: a no-op that succeeds (docs/entra.md V1)."""
    before = adele.model_copy(deep=True)

    assert _patched(adele, load_payload("entra/validator-empty-operations")) is False
    assert adele == before


def test_setting_the_current_value_is_not_a_change(adele: UserResource) -> None:
    """A PATCH that sets what is already there reports no change, so nothing is sent to SonarQube."""
    assert _patched(adele, _body({"op": "Replace", "path": "displayName", "value": "Adele Vance"})) is False


def test_attributes_the_bridge_does_not_model_are_ignored(adele: UserResource) -> None:
    """Custom extension attributes (docs/entra.md E12) are dropped, not refused, so Entra's cycle goes on."""
    body = _body(
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:contoso:2.0:User:badge", "value": "7"},
        {"op": "Replace", "path": "title", "value": "Engineer"},
    )

    assert _patched(adele, body) is True
    assert adele.title == "Engineer"


def test_a_failing_operation_leaves_the_resource_untouched(adele: UserResource) -> None:
    """All or nothing: the second operation fails, so the first one is not applied either."""
    before = adele.model_copy(deep=True)
    patch = parse_user_patch(
        _body(
            {"op": "Replace", "path": "title", "value": "Engineer"},
            {"op": "Replace", "path": "displayName", "value": 5},
        )
    )

    with pytest.raises(InvalidValueError) as caught:
        apply_user_patch(adele, patch)

    assert adele == before
    assert caught.value.detail == (
        'Operations[1] (replace "displayName"): displayName: value is not a valid string'
    )


@pytest.mark.parametrize(
    ("operation", "error_class", "detail"),
    [
        pytest.param(
            {"op": "Frobnicate", "path": "userName", "value": "x"},
            InvalidValueError,
            'Operations[1] (Frobnicate "userName"): op: '
            "'frobnicate' is not a PATCH operation: add, remove or replace",
            id="unknown-op",
        ),
        pytest.param(
            {"op": "Remove"},
            NoTargetError,
            "Operations[1] (Remove without path): Remove operation requires a path",
            id="remove-without-path",
        ),
        pytest.param(
            {"op": "Remove", "path": "userName"},
            MutabilityError,
            'Operations[1] (Remove "userName"): required attribute cannot be removed',
            id="remove-required",
        ),
        pytest.param(
            {"op": "Replace", "path": "id", "value": "other"},
            MutabilityError,
            "Operations[1] (Replace \"id\"): 'id' is read-only",
            id="read-only",
        ),
        pytest.param(
            {"op": "Replace", "path": "emails[type eq", "value": "x"},
            InvalidPathError,
            'Operations[1] (Replace "emails[type eq"): path: invalid syntax at column 13',
            id="path-syntax",
        ),
        pytest.param(
            {"op": "Add", "path": "title"},
            InvalidValueError,
            'Operations[1] (Add "title"): value is required for add operations',
            id="add-without-value",
        ),
        pytest.param(
            "replace title",
            InvalidValueError,
            "Operations[1]: value is not an object (the attribute is complex)",
            id="operation-not-an-object",
        ),
    ],
)
def test_an_invalid_operation_is_refused_naming_its_index_path_and_rule(
    operation: Any, error_class: type[ScimError], detail: str
) -> None:
    """Every operation is validated before anything is applied; the detail points at the culprit."""
    body = _body({"op": "replace", "path": "title", "value": "ok"}, operation)

    with pytest.raises(error_class) as caught:
        parse_user_patch(body)

    assert caught.value.detail == detail


@pytest.mark.parametrize(
    ("body", "error_class"),
    [
        pytest.param(["not", "an", "object"], InvalidSyntaxError, id="body-not-an-object"),
        pytest.param({"Operations": "replace"}, InvalidValueError, id="operations-not-a-list"),
        pytest.param(
            {"schemas": ["urn:x"], "Operations": [{"op": "add", "path": "title", "value": "x"}]},
            InvalidSyntaxError,
            id="wrong-message-schema",
        ),
    ],
)
def test_a_malformed_message_is_refused(body: Any, error_class: type[ScimError]) -> None:
    """A body that is no PatchOp message gets a 400 with the right scimType."""
    with pytest.raises(error_class):
        parse_user_patch(body)


def test_too_many_operations_are_refused_with_413() -> None:
    """A PATCH beyond the operation limit is refused before any validation work, naming the limit."""
    body = _body(*[{"op": "add", "path": "title", "value": "x"}] * (MAX_OPERATIONS + 1))

    with pytest.raises(PayloadTooLargeError, match=f"at most {MAX_OPERATIONS}"):
        parse_user_patch(body)


def test_the_operation_limit_itself_is_accepted(adele: UserResource) -> None:
    """Exactly MAX_OPERATIONS operations are fine."""
    body = _body(*[{"op": "replace", "path": "title", "value": "x"}] * MAX_OPERATIONS)

    assert _patched(adele, body) is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [("False", False), ("false", False), ("FALSE", False), ("fAlSe", False), ("True", True), ("tRUE", True)],
)
def test_active_accepts_boolean_strings_in_any_case(adele: UserResource, value: str, expected: bool) -> None:
    """Q2/Q10: `active` as a string in any case, as the default `Switch()` mapping or a lowered one sends."""
    adele.active = not expected

    _patched(adele, _body({"op": "Replace", "path": "active", "value": value}))

    assert adele.active is expected


@pytest.mark.parametrize(
    ("operation", "path", "expected"),
    [
        pytest.param(
            {"op": "Replace", "path": 'Emails[Type eq "work"].Value', "value": "a@fabrikam.example"},
            "emails.value",
            ["a@fabrikam.example"],
            id="path-segments",
        ),
        pytest.param(
            {
                "op": "Add",
                "path": "emails",
                "value": [{"Value": "h@home.example", "Type": "home", "Primary": "True"}],
            },
            "emails[primary eq true].value",
            ["h@home.example"],
            id="value-objects",
        ),
        pytest.param(
            {"op": "replace", "value": {"Name": {"GivenName": "Addy"}, "DISPLAYNAME": "Addy V"}},
            "name.givenName",
            "Addy",
            id="pathless-keys",
        ),
        pytest.param(
            {"op": "add", "path": f"{ENT.lower()}:Department", "value": "Retail"},
            f"{ENT}:department",
            "Retail",
            id="urn-and-extension-attribute",
        ),
    ],
)
def test_attribute_names_are_read_in_any_case(
    adele: UserResource, operation: dict[str, Any], path: str, expected: Any
) -> None:
    """Q25: RFC 7643 §2.1 makes attribute names case-insensitive, in paths, values and URNs alike."""
    assert _patched(adele, _body(operation)) is True

    assert adele[path] == expected
