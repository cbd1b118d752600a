"""The discovery documents of RFC 7644 §4: ServiceProviderConfig, ResourceTypes and Schemas.

The schemas are generated from the models the bridge validates with, then cut to what the bridge really
supports: the bridge stores every User attribute and returns it as sent, so the core User schema is whole
but for `password`, which is never kept; group members are kept by `value` alone. Entra's schema discovery
and Microsoft's validator only accept what these documents publish (docs/entra.md A15).
`/Bulk` and `/Me` are not supported, and the configuration says so.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final, TypeVar

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    ETag,
    External,
    Filter,
    ListResponse,
    Meta,
    Patch,
    Reference,
    Resource,
    ResourceType,
    Schema,
    ServiceProviderConfig,
    Sort,
)

from scim_bridge.scim.errors import NotFoundError
from scim_bridge.scim.listing import MAX_RESULTS
from scim_bridge.scim.resources import EntraEnterpriseUser, GroupResource, UserResource

DocumentT = TypeVar("DocumentT", ResourceType, Schema)
_UNSUPPORTED_USER_ATTRIBUTES: Final = frozenset({"password"})
_SUPPORTED_MEMBER_ATTRIBUTES: Final = frozenset({"value", "$ref"})


def service_provider_config(base_url: str) -> dict[str, Any]:
    """`GET /ServiceProviderConfig`: PATCH, filters and ETags yes; bulk, sorting and password changes no.

    Of the bridge's limits per request, RFC 7643 §5 has a field for one only: `filter.maxResults`
    (`listing.MAX_RESULTS`). `bulk.maxOperations` and `bulk.maxPayloadSize` are 0 because bulk is not
    supported; `patch` has no field for limits. The others, `patch.MAX_OPERATIONS` and `patch.MAX_MEMBERS`
    per request, `filters.MAX_FILTER_LENGTH` and `filters.MAX_FILTER_TERMS` per filter, the body size
    (`max_body_bytes`) and the JSON nesting of a body (`web.wire.MAX_JSON_DEPTH`), are documented in
    docs/operations.md instead.
    """
    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="OAuth Bearer Token",
                description="The secret token configured for the provisioning client, sent as a bearer token",
                spec_uri=Reference[External]("https://www.rfc-editor.org/info/rfc6750"),
                primary=True,
            )
        ],
    )
    return _render(config, "ServiceProviderConfig", f"{_base(base_url)}/ServiceProviderConfig")


def resource_types(base_url: str) -> dict[str, Any]:
    """`GET /ResourceTypes`: User (enterprise extension optional) and Group."""
    return _list([resource_type(str(each.id), base_url) for each in _resource_types()])


def resource_type(name: str, base_url: str) -> dict[str, Any]:
    """`GET /ResourceTypes/{name}`; the name is matched ignoring case."""
    found = _by_id(_resource_types(), name)
    if found is None:
        raise NotFoundError(f"no resource type {name!r}: this service serves User and Group")
    return _render(found, "ResourceType", f"{_base(base_url)}/ResourceTypes/{found.id}")


def schemas(base_url: str) -> dict[str, Any]:
    """`GET /Schemas`: the core User, the enterprise User extension and the core Group schemas."""
    return _list([schema(str(each.id), base_url) for each in _schemas()])


def schema(urn: str, base_url: str) -> dict[str, Any]:
    """`GET /Schemas/{urn}`; the URN is matched ignoring case."""
    found = _by_id(_schemas(), urn)
    if found is None:
        raise NotFoundError(f"no schema {urn!r} is published by this service")
    return _render(found, "Schema", f"{_base(base_url)}/Schemas/{found.id}")


def _by_id(documents: tuple[DocumentT, ...], wanted: str) -> DocumentT | None:
    return next((each for each in documents if str(each.id).lower() == wanted.lower()), None)


@cache
def _resource_types() -> tuple[ResourceType, ...]:
    user = ResourceType.from_resource(UserResource).model_copy(update={"description": "User Account"})
    return (user, ResourceType.from_resource(GroupResource))


@cache
def _schemas() -> tuple[Schema, ...]:
    user = UserResource.to_schema()
    user_attributes = [
        each for each in user.attributes or () if each.name not in _UNSUPPORTED_USER_ATTRIBUTES
    ]
    group = GroupResource.to_schema()
    group_attributes = [
        each.model_copy(
            update={
                "sub_attributes": [
                    sub for sub in each.sub_attributes or () if sub.name in _SUPPORTED_MEMBER_ATTRIBUTES
                ]
            }
        )
        if each.name == "members"
        else each
        for each in group.attributes or ()
    ]
    # The models are subclassed for Entra; the schemas keep the names RFC 7643 gives them.
    return (
        user.model_copy(
            update={"name": "User", "description": "User Account", "attributes": user_attributes}
        ),
        EntraEnterpriseUser.to_schema().model_copy(
            update={"name": "EnterpriseUser", "description": "Enterprise User"}
        ),
        group.model_copy(update={"attributes": group_attributes}),
    )


def _render(document: Resource[Any], resource_type_name: str, location: str) -> dict[str, Any]:
    located = document.model_copy(update={"meta": Meta(resource_type=resource_type_name, location=location)})
    return located.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


def _list(documents: list[dict[str, Any]]) -> dict[str, Any]:
    envelope = ListResponse[Schema | ResourceType](
        total_results=len(documents), start_index=1, items_per_page=len(documents)
    ).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    return {**envelope, "Resources": documents}


def _base(base_url: str) -> str:
    return base_url.rstrip("/")
