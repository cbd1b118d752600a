"""POST and PUT bodies: every Entra create shape is read, and what is read is returned as sent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from scim2_models import Context

from scim_bridge.scim.bodies import parse_group, parse_user
from scim_bridge.scim.errors import InvalidSyntaxError, InvalidValueError
from scim_bridge.scim.resources import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA

if TYPE_CHECKING:
    from collections.abc import Callable

    PayloadLoader = Callable[[str], Any]


def test_entra_default_create_user_round_trips(load_payload: PayloadLoader) -> None:
    """A4: the default mapping's body is returned as sent, minus the read-only meta and the empty roles."""
    body = load_payload("entra/a4-create-user")

    returned = parse_user(body).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)

    expected = {key: value for key, value in body.items() if key not in {"meta", "roles"}}
    assert returned == {**expected, "schemas": [USER_SCHEMA]}


def test_enterprise_attributes_are_kept_under_their_urn(load_payload: PayloadLoader) -> None:
    """A4: enterprise attributes arrive nested under the extension URN and stay there."""
    returned = parse_user(load_payload("entra/a4-create-user-enterprise")).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE
    )

    assert returned[ENTERPRISE_USER_SCHEMA] == {
        "department": "Marketing",
        "employeeNumber": "1042",
        "costCenter": "CC-7",
    }
    assert returned["schemas"] == [USER_SCHEMA, ENTERPRISE_USER_SCHEMA]


def test_legacy_body_with_nulls_and_a_misspelled_urn_is_read(load_payload: PayloadLoader) -> None:
    """The documented legacy sample (docs/entra.md A4): explicit nulls are absent values, the `...2.0User`
    URN is tolerated (Q16, Q21)."""
    user = parse_user(load_payload("entra/a4-create-user-legacy-nulls"))

    returned = user.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    assert "nickName" not in returned
    assert returned["addresses"] == [{"locality": "Redmond", "primary": False, "type": "work"}]
    assert returned[ENTERPRISE_USER_SCHEMA] == {"employeeNumber": "77"}
    assert returned["schemas"] == [USER_SCHEMA, ENTERPRISE_USER_SCHEMA]


def test_manager_string_in_a_create_body_is_read(load_payload: PayloadLoader) -> None:
    """Q13 / validator: the manager may arrive as a bare id in POST, and is returned as an object."""
    returned = parse_user(load_payload("entra/a4-create-user-manager-string")).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE
    )

    assert returned[ENTERPRISE_USER_SCHEMA] == {"manager": {"value": "u-megan"}}


def test_capitalised_names_and_string_booleans_are_read(load_payload: PayloadLoader) -> None:
    """Q25 and Q2: `UserName`, `Emails[].Primary: "true"`, `Active: "True"` read as the schema says."""
    user = parse_user(load_payload("entra/a4-create-user-capitalised-names"))

    assert (user.user_name, user.active, user.display_name) == (
        "diego.siciliani@contoso.example",
        True,
        "Diego",
    )
    assert [(email.value, email.primary) for email in user.emails or ()] == [
        ("diego.siciliani@contoso.example", True)
    ]
    assert user.name is not None
    assert (user.name.given_name, user.name.family_name) == ("Diego", "Siciliani")


def test_entra_create_group_ignores_the_adscim_schema(load_payload: PayloadLoader) -> None:
    """A10 / Q16: the ADSCIM group URN is accepted and not echoed back."""
    returned = parse_group(load_payload("entra/a10-create-group")).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE
    )

    assert returned == {
        "schemas": [GROUP_SCHEMA],
        "externalId": "4c1b7a2e-90d3-4f6e-8b5a-2d7c9e0f1a36",
        "displayName": "Sonar Developers",
    }


@pytest.mark.parametrize("name", ["rfc/rfc7644-3.3-create-user", "rfc/rfc7644-3.3-create-group"])
def test_rfc_create_examples_are_read(load_payload: PayloadLoader, name: str) -> None:
    """RFC 7644 §3.3: the RFC's own creation examples are valid input."""
    body = load_payload(name)

    parsed = (parse_group if "group" in name else parse_user)(body)

    assert parsed.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE) == body


def test_read_only_input_is_ignored_on_create() -> None:
    """RFC 7644 §3.3: a client's `id` and `meta` are not taken; the service assigns them."""
    user = parse_user({"id": "chosen-by-client", "meta": {"resourceType": "User"}, "userName": "a"})

    assert (user.id, user.meta) == (None, None)


def test_replacement_reads_a_whole_resource() -> None:
    """RFC 7644 §3.5.1: a PUT body is a whole resource, read-only attributes ignored."""
    group = parse_group(
        {"id": "g-1", "displayName": "Renamed", "members": [{"value": "u-1"}]}, replacement=True
    )

    assert (group.id, group.display_name, [member.value for member in group.members or ()]) == (
        None,
        "Renamed",
        ["u-1"],
    )


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param({"displayName": "x"}, "userName: required attribute is missing", id="missing-user-name"),
        pytest.param({"userName": " "}, "userName: required attribute is blank", id="blank-user-name"),
        pytest.param({"userName": ["a", "b"]}, "userName: value is not a valid string", id="two-user-names"),
        pytest.param(
            {"userName": "a", "active": "sometimes"}, "active: value is not a valid boolean", id="bad-active"
        ),
    ],
)
def test_invalid_user_bodies_name_the_attribute_and_the_rule(body: dict[str, object], detail: str) -> None:
    """A 400 invalidValue says which attribute is wrong and why."""
    with pytest.raises(InvalidValueError) as caught:
        parse_user(body)

    assert caught.value.detail == detail


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param({"externalId": "x"}, "displayName: required attribute is missing", id="missing"),
        pytest.param({"displayName": ""}, "displayName: required attribute is blank", id="blank"),
    ],
)
def test_a_group_needs_a_display_name(body: dict[str, object], detail: str) -> None:
    """RFC 7643 §4.2: displayName is required, and names a SonarQube group, so it cannot be blank."""
    with pytest.raises(InvalidValueError) as caught:
        parse_group(body)

    assert caught.value.detail == detail


def test_a_body_that_is_not_an_object_is_invalid_syntax() -> None:
    """A JSON array or string is not a resource."""
    with pytest.raises(InvalidSyntaxError):
        parse_user(["userName"])  # type: ignore[arg-type]
