"""The SCIM route table under the base path. Any other method on these paths is a 405 listing the allowed
ones, any other path under the base a 404 (both rendered as SCIM errors by the middleware)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scim_bridge.web import discovery, resources

if TYPE_CHECKING:
    from aiohttp import web
    from aiohttp.typedefs import Handler

Route = tuple[str, str, "Handler"]


def _resource_routes(
    endpoint: resources.Endpoint[Any], query: Handler, get: Handler, patch: Handler
) -> list[Route]:
    """/Users or /Groups: list, create, and per id read, replace, patch and delete."""
    collection, item = f"/{endpoint.name}", f"/{endpoint.name}/{{id}}"
    return [
        ("GET", collection, query),
        ("POST", collection, resources.create(endpoint)),
        ("GET", item, get),
        ("PUT", item, resources.replace(endpoint)),
        ("PATCH", item, patch),
        ("DELETE", item, resources.delete(endpoint)),
    ]


_ROUTES: tuple[Route, ...] = (
    ("GET", "/ServiceProviderConfig", discovery.get_service_provider_config),
    ("GET", "/ResourceTypes", discovery.list_resource_types),
    ("GET", "/ResourceTypes/{name}", discovery.get_resource_type),
    ("GET", "/Schemas", discovery.list_schemas),
    ("GET", "/Schemas/{urn}", discovery.get_schema),
    # POST searches (RFC 7644 §3.4.3) before `/{id}`, which would take `.search` for an id.
    ("POST", "/.search", discovery.unsupported),
    ("POST", "/Users/.search", discovery.unsupported),
    ("POST", "/Groups/.search", discovery.unsupported),
    *_resource_routes(resources.USERS, resources.query_users, resources.get_user, resources.patch_user),
    *_resource_routes(resources.GROUPS, resources.query_groups, resources.get_group, resources.patch_group),
    ("*", "/Bulk", discovery.unsupported),
    ("*", "/Me", discovery.unsupported),
)


def add_scim_routes(app: web.Application, base_path: str) -> None:
    for method, path, handler in _ROUTES:
        app.router.add_route(method, f"{base_path}{path}", handler)
