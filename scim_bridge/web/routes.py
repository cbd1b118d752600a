"""The SCIM route table under the base path. Any other method on these paths is a 405 listing the allowed
ones, any other path under the base a 404 (both rendered as SCIM errors by the middleware)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scim_bridge.web import discovery, resources

if TYPE_CHECKING:
    from aiohttp import web
    from aiohttp.typedefs import Handler

_ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/ServiceProviderConfig", discovery.get_service_provider_config),
    ("GET", "/ResourceTypes", discovery.list_resource_types),
    ("GET", "/ResourceTypes/{name}", discovery.get_resource_type),
    ("GET", "/Schemas", discovery.list_schemas),
    ("GET", "/Schemas/{urn}", discovery.get_schema),
    # POST searches (RFC 7644 §3.4.3) before `/{id}`, which would take `.search` for an id.
    ("POST", "/.search", discovery.unsupported),
    ("POST", "/Users/.search", discovery.unsupported),
    ("POST", "/Groups/.search", discovery.unsupported),
    ("GET", "/Users", resources.query_users),
    ("POST", "/Users", resources.create_user),
    ("GET", "/Users/{id}", resources.get_user),
    ("PUT", "/Users/{id}", resources.replace_user),
    ("PATCH", "/Users/{id}", resources.patch_user),
    ("DELETE", "/Users/{id}", resources.delete_user),
    ("GET", "/Groups", resources.query_groups),
    ("POST", "/Groups", resources.create_group),
    ("GET", "/Groups/{id}", resources.get_group),
    ("PUT", "/Groups/{id}", resources.replace_group),
    ("PATCH", "/Groups/{id}", resources.patch_group),
    ("DELETE", "/Groups/{id}", resources.delete_group),
    ("*", "/Bulk", discovery.unsupported),
    ("*", "/Me", discovery.unsupported),
)


def add_scim_routes(app: web.Application, base_path: str) -> None:
    for method, path, handler in _ROUTES:
        app.router.add_route(method, f"{base_path}{path}", handler)
