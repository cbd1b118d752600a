"""Discovery documents: what the bridge announces, and that it announces only what it supports."""

from __future__ import annotations

from typing import Any

import pytest
from scim2_models import Context, ResourceType, Schema, ServiceProviderConfig

from scim_bridge.scim.discovery import resource_type, resource_types, schema, schemas, service_provider_config
from scim_bridge.scim.errors import NotFoundError
from scim_bridge.scim.listing import MAX_RESULTS
from scim_bridge.scim.resources import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA

BASE = "https://sonar.example.com/api/scim/v2"


def _attribute(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(attribute for attribute in document["attributes"] if attribute["name"] == name)


def test_service_provider_config_announces_the_bridges_capabilities() -> None:
    """RFC 7643 §5: PATCH, filters (maxResults) and ETags are supported; bulk, sort, changePassword not."""
    config = service_provider_config(BASE)

    assert {key: config[key] for key in ("patch", "bulk", "filter", "changePassword", "sort", "etag")} == {
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
    }
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    assert config["meta"] == {
        "resourceType": "ServiceProviderConfig",
        "location": f"{BASE}/ServiceProviderConfig",
    }


def test_a_trailing_slash_in_the_base_url_is_not_doubled() -> None:
    """Locations join the base URL and the endpoint with one slash."""
    assert service_provider_config(f"{BASE}/")["meta"]["location"] == f"{BASE}/ServiceProviderConfig"


def test_resource_types_are_user_with_optional_enterprise_extension_and_group() -> None:
    """RFC 7643 §6: Users (enterprise extension not required) at /Users, Groups at /Groups."""
    listed = resource_types(BASE)

    assert (listed["totalResults"], [each["id"] for each in listed["Resources"]]) == (2, ["User", "Group"])
    user, group = listed["Resources"]
    assert (user["endpoint"], user["schema"], user["schemaExtensions"]) == (
        "/Users",
        USER_SCHEMA,
        [{"schema": ENTERPRISE_USER_SCHEMA, "required": False}],
    )
    assert (group["endpoint"], group["schema"], group["meta"]["location"]) == (
        "/Groups",
        GROUP_SCHEMA,
        f"{BASE}/ResourceTypes/Group",
    )


def test_a_resource_type_is_found_by_name_in_any_case() -> None:
    """`/ResourceTypes/user` finds the User resource type."""
    assert resource_type("user", BASE)["name"] == "User"


def test_schemas_are_user_enterprise_user_and_group() -> None:
    """A15: the three schemas Entra's discovery and the Logic App harness look for."""
    listed = schemas(BASE)

    assert [(each["id"], each["name"]) for each in listed["Resources"]] == [
        (USER_SCHEMA, "User"),
        (ENTERPRISE_USER_SCHEMA, "EnterpriseUser"),
        (GROUP_SCHEMA, "Group"),
    ]
    assert listed["Resources"][0]["meta"] == {
        "resourceType": "Schema",
        "location": f"{BASE}/Schemas/{USER_SCHEMA}",
    }


def test_user_schema_publishes_every_stored_attribute_but_password() -> None:
    """The bridge returns every User attribute as sent, but never keeps a password; groups are read-only."""
    user = schema(USER_SCHEMA, BASE)

    names = [attribute["name"] for attribute in user["attributes"]]
    assert "password" not in names
    assert {
        "userName",
        "name",
        "displayName",
        "active",
        "emails",
        "phoneNumbers",
        "addresses",
        "roles",
    } <= set(names)
    assert _attribute(user, "groups")["mutability"] == "readOnly"
    assert (_attribute(user, "userName")["required"], _attribute(user, "userName")["caseExact"]) == (
        True,
        False,
    )


def test_manager_is_published_as_value_only() -> None:
    """Q14: the manager is kept and returned as `{"value": id}`, so `$ref`/`displayName` are not announced."""
    manager = _attribute(schema(ENTERPRISE_USER_SCHEMA, BASE), "manager")

    assert [sub["name"] for sub in manager["subAttributes"]] == ["value"]


def test_group_members_are_published_by_value_and_ref() -> None:
    """Memberships are kept by member id, and returned with the member's `$ref`; nothing else is announced."""
    members = _attribute(schema(GROUP_SCHEMA, BASE), "members")

    assert [sub["name"] for sub in members["subAttributes"]] == ["value", "$ref"]


def test_a_schema_is_found_by_urn_in_any_case() -> None:
    """URNs are matched ignoring case."""
    assert schema(GROUP_SCHEMA.upper(), BASE)["id"] == GROUP_SCHEMA


@pytest.mark.parametrize(
    "lookup",
    [
        pytest.param(lambda: resource_type("Bulk", BASE), id="resource-type"),
        pytest.param(lambda: schema("urn:ietf:params:scim:schemas:core:2.0:Device", BASE), id="schema"),
    ],
)
def test_unknown_discovery_documents_are_404(lookup: Any) -> None:
    """An unknown resource type or schema is a 404 SCIM error."""
    with pytest.raises(NotFoundError):
        lookup()


@pytest.mark.parametrize(
    ("document", "model"),
    [
        pytest.param(
            lambda: service_provider_config(BASE), ServiceProviderConfig, id="service-provider-config"
        ),
        pytest.param(lambda: resource_type("User", BASE), ResourceType, id="resource-type"),
        pytest.param(lambda: schema(USER_SCHEMA, BASE), Schema, id="user-schema"),
        pytest.param(lambda: schema(ENTERPRISE_USER_SCHEMA, BASE), Schema, id="enterprise-schema"),
        pytest.param(lambda: schema(GROUP_SCHEMA, BASE), Schema, id="group-schema"),
    ],
)
def test_documents_are_valid_scim_responses(document: Any, model: type[Any]) -> None:
    """A client reading the documents with scim2-models in the response context accepts them."""
    model.model_validate(document(), scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
