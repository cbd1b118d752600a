"""The Entra dialect normalisations, each checked on its own before scim2-models reads the result."""

from __future__ import annotations

from typing import Any

import pytest
from scim2_models import ScimFilter

from scim_bridge.scim.dialect import normalize_filter, normalize_patch, normalize_resource, qualify_path
from scim_bridge.scim.resources import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    USER_SCHEMA,
    GroupResource,
    UserResource,
)

ADSCIM = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("manager", f"{ENTERPRISE_USER_SCHEMA}:manager", id="extension-attribute-without-urn"),
        pytest.param(
            "Department", f"{ENTERPRISE_USER_SCHEMA}:Department", id="capitalised-extension-attribute"
        ),
        pytest.param(
            f"{ENTERPRISE_USER_SCHEMA}.department", f"{ENTERPRISE_USER_SCHEMA}:department", id="legacy-dot"
        ),
        pytest.param(
            f"{ENTERPRISE_USER_SCHEMA}:manager", f"{ENTERPRISE_USER_SCHEMA}:manager", id="already-qualified"
        ),
        pytest.param("userName", "userName", id="core-attribute"),
        pytest.param('emails[type eq "work"].value', 'emails[type eq "work"].value', id="value-path"),
        pytest.param("fooBar", "fooBar", id="unknown-left-to-the-policy"),
        pytest.param("emails[", "emails[", id="bad-syntax-left-to-the-library"),
        pytest.param("", "", id="resource-root"),
    ],
)
def test_qualify_path_gives_extension_attributes_their_urn(path: str, expected: str) -> None:
    """The legacy `"path": "manager"` (docs/entra.md Q24) and Q12's URN paths address the enterprise
    extension."""
    assert qualify_path(path, UserResource) == expected


def test_group_paths_are_left_alone() -> None:
    """Groups have no extension, so no path is qualified."""
    assert qualify_path("members", GroupResource) == "members"


@pytest.mark.parametrize(
    ("schemas", "expected"),
    [
        pytest.param([GROUP_SCHEMA, ADSCIM], [GROUP_SCHEMA], id="q16-adscim-urn-dropped"),
        pytest.param([GROUP_SCHEMA.lower()], [GROUP_SCHEMA], id="known-urn-canonical-spelling"),
        pytest.param(["urn:x:y"], [], id="only-unknown"),
        pytest.param("not-a-list", "not-a-list", id="wrong-type-left-to-the-library"),
    ],
)
def test_schemas_keep_only_the_urns_the_model_declares(schemas: Any, expected: Any) -> None:
    """Q16: Entra's own URNs are not echoed back, and a known URN is spelled canonically."""
    assert normalize_resource({"schemas": schemas, "displayName": "G"}, GroupResource)["schemas"] == expected


def test_legacy_misspelled_enterprise_urn_is_dropped() -> None:
    """The legacy `...enterprise:2.0User` URN (docs/entra.md Q16) names no schema; the extension is listed
    from its data."""
    body = {
        "Schemas": [USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
        "userName": "a",
    }

    assert normalize_resource(body, UserResource)["schemas"] == [USER_SCHEMA]


@pytest.mark.parametrize(
    ("attribute", "value", "expected"),
    [
        pytest.param("displayName", [{"$ref": None, "value": "Adele"}], "Adele", id="q24-wrapped-object"),
        pytest.param("displayName", ["Adele"], "Adele", id="q24-wrapped-scalar"),
        pytest.param("active", [{"value": "False"}], "False", id="q24-wrapped-boolean-string"),
        pytest.param("name", [{"givenName": "Adele"}], {"givenName": "Adele"}, id="q24-wrapped-complex"),
        pytest.param("displayName", ["a", "b"], ["a", "b"], id="two-values-left-to-the-library"),
        pytest.param("displayName", [{"display": "x"}], [{"display": "x"}], id="object-without-value-left"),
        pytest.param(
            "emails", {"value": "a@b.example"}, [{"value": "a@b.example"}], id="single-object-listed"
        ),
        pytest.param("emails", "a@b.example", [{"value": "a@b.example"}], id="bare-string-listed"),
        pytest.param("roles", [], [], id="empty-list-kept"),
    ],
)
def test_values_are_fitted_to_single_or_multi_valued_attributes(
    attribute: str, value: Any, expected: Any
) -> None:
    """Q24: a one-element list for a single value is that value; a lone value of a list is listed."""
    assert normalize_resource({"userName": "a", attribute: value}, UserResource)[attribute] == expected


def test_extension_objects_are_fitted_key_by_key() -> None:
    """Attributes inside the enterprise extension are fitted like core ones, keeping their spelling."""
    body = {"userName": "a", ENTERPRISE_USER_SCHEMA: {"Department": ["Sales"], "manager": "u-megan"}}

    assert normalize_resource(body, UserResource)[ENTERPRISE_USER_SCHEMA] == {
        "Department": "Sales",
        "manager": "u-megan",
    }


def test_patch_message_keys_are_canonical_in_any_case() -> None:
    """Q25: `operations`, `Op`, `Path`, `Value` are read as the RFC spells them."""
    body = {"SCHEMAS": [], "operations": [{"Op": "Replace", "Path": "displayName", "Value": "x"}]}

    assert normalize_patch(body, UserResource) == {
        "schemas": [],
        "Operations": [{"op": "Replace", "path": "displayName", "value": "x"}],
    }


def test_patch_path_is_qualified_and_its_value_fitted() -> None:
    """The legacy manager op (docs/entra.md Q13, Q24): `manager` gets its URN, the one-element list its
    object."""
    body = {"Operations": [{"op": "Add", "path": "manager", "value": [{"$ref": None, "value": "u-megan"}]}]}

    assert normalize_patch(body, UserResource)["Operations"] == [
        {
            "op": "Add",
            "path": f"{ENTERPRISE_USER_SCHEMA}:manager",
            "value": {"$ref": None, "value": "u-megan"},
        }
    ]


def test_pathless_value_keys_are_qualified_and_fitted() -> None:
    """Q7: keys of a path-less value are paths; unqualified extension names get their URN."""
    body = {"Operations": [{"op": "replace", "value": {"department": "Retail", "name.givenName": ["Adele"]}}]}

    assert normalize_patch(body, UserResource)["Operations"][0]["value"] == {
        f"{ENTERPRISE_USER_SCHEMA}:department": "Retail",
        "name.givenName": "Adele",
    }


def test_member_values_are_listed_objects() -> None:
    """Microsoft's Postman collection: a bare member id, or one object, stands for a list of members."""
    body = {
        "Operations": [
            {"op": "add", "path": "members", "value": "u-1"},
            {"op": "remove", "path": "members", "value": {"value": "u-2"}},
        ]
    }

    assert [operation["value"] for operation in normalize_patch(body, GroupResource)["Operations"]] == [
        [{"value": "u-1"}],
        [{"value": "u-2"}],
    ]


def test_a_value_under_a_filtered_path_is_left_as_it_is() -> None:
    """The value of `members[value eq "x"]` describes the selected entry, not a list of members."""
    operation = {"op": "add", "path": 'members[value eq "x"]', "value": {"display": "X"}}

    assert normalize_patch({"Operations": [operation]}, GroupResource)["Operations"] == [operation]


def test_malformed_operations_are_left_to_the_library() -> None:
    """What is not an operation object is passed on unchanged, for scim2-models to refuse."""
    assert normalize_patch({"Operations": ["x", 1]}, UserResource)["Operations"] == ["x", 1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            'id eq "u" and manager eq "m"',
            f'id eq "u" and {ENTERPRISE_USER_SCHEMA}:manager.value eq "m"',
            id="a17-manager-compared-by-value",
        ),
        pytest.param(
            'department eq "d" or not (manager pr)',
            f'{ENTERPRISE_USER_SCHEMA}:department eq "d" or not ({ENTERPRISE_USER_SCHEMA}:manager pr)',
            id="extension-attributes-in-every-node",
        ),
        pytest.param('emails eq "a@b"', 'emails eq "a@b"', id="multi-valued-left-to-the-library"),
        pytest.param('userName eq "a"', 'userName eq "a"', id="core-unchanged"),
    ],
)
def test_filters_name_extension_attributes_with_their_urn(text: str, expected: str) -> None:
    """A17: `manager eq "id"` means the manager whose id is "id"."""
    assert str(normalize_filter(ScimFilter(text).ast, UserResource)) == expected
