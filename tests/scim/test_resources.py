"""The resource models: Entra's manager forms, e-mails kept as sent, passwords never kept."""

from __future__ import annotations

from typing import Any

import pytest
from scim2_models import Context, ScimPolicy

from scim_bridge.scim.resources import (
    ENTERPRISE_USER_SCHEMA,
    ENTRA_POLICY,
    GROUP_SCHEMA,
    USER_SCHEMA,
    EntraEnterpriseUser,
    UserResource,
)


def _created(extra: dict[str, Any]) -> UserResource:
    body = {"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "userName": "nestor@contoso.example", **extra}
    return UserResource.model_validate(
        body, scim_ctx=Context.RESOURCE_CREATION_REQUEST, scim_policy=ENTRA_POLICY
    )


@pytest.mark.parametrize(
    "manager",
    [
        pytest.param("u-megan", id="plain-id-string"),
        pytest.param({"value": "u-megan"}, id="object-without-ref"),
        pytest.param(
            {"value": "u-megan", "$ref": "../Users/u-megan", "displayName": "Megan"}, id="rfc-object"
        ),
        pytest.param([{"$ref": None, "value": "u-megan"}], id="one-element-list"),
        pytest.param({"Value": "u-megan"}, id="capitalised-value"),
    ],
)
def test_manager_is_read_in_every_entra_form_and_returned_as_value_object(manager: Any) -> None:
    """Q13/Q14: whatever form the manager arrives in, it is returned as `{"value": id}`."""
    user = _created({ENTERPRISE_USER_SCHEMA: {"manager": manager}})

    dumped = user.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)

    assert dumped[ENTERPRISE_USER_SCHEMA] == {"manager": {"value": "u-megan"}}


@pytest.mark.parametrize(
    "manager",
    [
        pytest.param("", id="empty-string"),
        pytest.param(None, id="null"),
        pytest.param([], id="empty-list"),
        pytest.param({"value": ""}, id="empty-value"),
    ],
)
def test_an_empty_manager_means_no_manager(manager: Any) -> None:
    """Microsoft's harness removes a manager with an empty value: no manager is kept."""
    user = _created({ENTERPRISE_USER_SCHEMA: {"manager": manager}})

    assert user[EntraEnterpriseUser] is None or user[EntraEnterpriseUser].manager is None


def test_email_addresses_are_kept_exactly_as_sent() -> None:
    """Values are stored as sent (docs/entra.md E1): the domain's case is kept, no address syntax imposed."""
    user = _created({"emails": [{"value": "Adele.Vance@Contoso.EXAMPLE"}, {"value": "adele@intranet"}]})

    assert [email.value for email in user.emails or ()] == ["Adele.Vance@Contoso.EXAMPLE", "adele@intranet"]


def test_a_password_is_never_kept() -> None:
    """The bridge keeps no password, not even in a dump meant for storage."""
    user = _created({"password": "s3cret!"})

    assert user.password is None
    assert "password" not in user.model_dump(scim_ctx=Context.DEFAULT)


def test_entra_policy_tolerates_what_entra_sends() -> None:
    """ENTRA_POLICY ignores unknown attributes, removes by value and creates unmatched filter targets."""
    assert (
        ScimPolicy.Unknown.ignore,
        ScimPolicy.RemoveValue.apply,
        ScimPolicy.UnmatchedPathFilter.create,
    ) == (
        ENTRA_POLICY.unknown,
        ENTRA_POLICY.remove_value_as_filter,
        ENTRA_POLICY.unmatched_path_filter,
    )


def test_schema_urns_are_the_rfc_ones() -> None:
    """The URN constants are the RFC 7643 schema URNs."""
    assert (USER_SCHEMA, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA) == (
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
    )
