"""/Users and /Groups (RFC 7644 §3.2-§3.6): read the request, call the provisioning service, answer.

Status codes (docs/provisioning.md): POST 201 with `Location`; GET, PUT and user PATCH 200 with the
resource; group PATCH 204 unless `attributes` asks for a body (Entra sends one PATCH per member and never
reads the answer, docs/entra.md Q17-Q18); DELETE 204. `If-Match` is read here into the versions it accepts;
the service compares it with the stored version and answers 412 when it does not match.

Creating, replacing and deleting are the same for both resource types (`create`, `replace`, `delete` make
the handler of one `Endpoint`); reading and PATCH differ, because group members are read only when shown.

An `{id}` that cannot be an id of the bridge (`scim/ids.py`) is a 404 at once, before the provisioning
layer (and SonarQube) hears of it. A POST or PUT Group body with more than MAX_MEMBERS members (1 000) is
a 413 before it is validated (`scim/patch.py` counts those of a PATCH).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar

from aiohttp import hdrs, web

from scim_bridge.scim.bodies import parse_group, parse_user
from scim_bridge.scim.errors import NotFoundError
from scim_bridge.scim.ids import plausible_id
from scim_bridge.scim.listing import SearchParams, list_response
from scim_bridge.scim.patch import parse_user_patch, plan_group_patch, refuse_too_many_members
from scim_bridge.scim.resources import GroupResource, UserResource
from scim_bridge.scim.versions import IfMatch
from scim_bridge.web.keys import PROVISIONER, SCIM_CONTEXT
from scim_bridge.web.wire import location_of, read_json_object, resource_response, scim_json

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from aiohttp.typedefs import Handler

    from scim_bridge.provisioning.context import RequestContext
    from scim_bridge.provisioning.groups import GroupService
    from scim_bridge.provisioning.service import Provisioner
    from scim_bridge.provisioning.users import UserService
    from scim_bridge.scim.representation import Representation

ResourceT = TypeVar("ResourceT", UserResource, GroupResource)


class WholeResourceService(Protocol[ResourceT]):
    """What the user and group services both offer for whole resources."""

    async def create(self, ctx: RequestContext, resource: ResourceT) -> Representation[ResourceT]: ...

    async def replace(
        self, ctx: RequestContext, scim_id: str, resource: ResourceT, *, if_match: IfMatch | None
    ) -> Representation[ResourceT]: ...

    async def delete(self, ctx: RequestContext, scim_id: str, *, if_match: IfMatch | None) -> None: ...


@dataclass(frozen=True, slots=True)
class Endpoint(Generic[ResourceT]):
    """One resource endpoint: its path segment, resource type, model, body reader and provisioning service."""

    name: str
    resource_type: str
    model: type[ResourceT]
    parse: Callable[..., ResourceT]
    service: Callable[[Provisioner], WholeResourceService[ResourceT]]


USERS: Final = Endpoint("Users", "User", UserResource, parse_user, lambda provisioner: provisioner.users)
GROUPS: Final = Endpoint(
    "Groups", "Group", GroupResource, parse_group, lambda provisioner: provisioner.groups
)
_SHOWN_ID_LENGTH: Final = 100  # an implausible id is quoted in the 404 up to this length, printable only


# -- both resource types -------------------------------------------------------------------------------


def create(endpoint: Endpoint[Any]) -> Handler:
    """`POST /<endpoint>`: 201 with the resource and its `Location`."""

    async def handler(request: web.Request) -> web.Response:
        resource = endpoint.parse(_members_counted(endpoint, await read_json_object(request)))
        params = _params(request, endpoint.model)
        created = await endpoint.service(request.app[PROVISIONER]).create(request[SCIM_CONTEXT], resource)
        return resource_response(request, created, params, endpoint=endpoint.name, status=201)

    return handler


def replace(endpoint: Endpoint[Any]) -> Handler:
    """`PUT /<endpoint>/{id}`: 200 with the resource as replaced."""

    async def handler(request: web.Request) -> web.Response:
        scim_id = _id(request, endpoint)
        resource = endpoint.parse(
            _members_counted(endpoint, await read_json_object(request)), replacement=True
        )
        params = _params(request, endpoint.model)
        service = endpoint.service(request.app[PROVISIONER])
        replaced = await service.replace(
            request[SCIM_CONTEXT], scim_id, resource, if_match=_if_match(request)
        )
        return resource_response(request, replaced, params, endpoint=endpoint.name)

    return handler


def delete(endpoint: Endpoint[Any]) -> Handler:
    """`DELETE /<endpoint>/{id}`: 204."""

    async def handler(request: web.Request) -> web.Response:
        scim_id = _id(request, endpoint)
        service = endpoint.service(request.app[PROVISIONER])
        await service.delete(request[SCIM_CONTEXT], scim_id, if_match=_if_match(request))
        return web.Response(status=204)

    return handler


# -- /Users --------------------------------------------------------------------------------------------


async def get_user(request: web.Request) -> web.Response:
    scim_id = _id(request, USERS)
    params = _params(request, UserResource)
    user = await _users(request).get(request[SCIM_CONTEXT], scim_id)
    return resource_response(request, user, params, endpoint=USERS.name)


async def query_users(request: web.Request) -> web.Response:
    params = _params(request, UserResource)
    users, total = await _users(request).query(request[SCIM_CONTEXT], params)
    return _list(request, users, total, params, endpoint=USERS.name)


async def patch_user(request: web.Request) -> web.Response:
    scim_id = _id(request, USERS)
    patch = parse_user_patch(await read_json_object(request))
    params = _params(request, UserResource)
    patched = await _users(request).patch(request[SCIM_CONTEXT], scim_id, patch, if_match=_if_match(request))
    return resource_response(request, patched, params, endpoint=USERS.name)


# -- /Groups -------------------------------------------------------------------------------------------


async def get_group(request: web.Request) -> web.Response:
    scim_id = _id(request, GROUPS)
    params = _params(request, GroupResource)
    group = await _groups(request).get(request[SCIM_CONTEXT], scim_id, with_members=wants_members(params))
    return resource_response(request, group, params, endpoint=GROUPS.name)


async def query_groups(request: web.Request) -> web.Response:
    params = _params(request, GroupResource)
    groups, total = await _groups(request).query(
        request[SCIM_CONTEXT], params, with_members=wants_members(params)
    )
    return _list(request, groups, total, params, endpoint=GROUPS.name)


async def patch_group(request: web.Request) -> web.Response:
    scim_id = _id(request, GROUPS)
    plan = plan_group_patch(await read_json_object(request))
    params = _params(request, GroupResource)
    # 204 unless `attributes` asks for a body: only then are the members read back.
    patched = await _groups(request).patch(
        request[SCIM_CONTEXT],
        scim_id,
        plan,
        if_match=_if_match(request),
        with_members=bool(params.attributes) and wants_members(params),
    )
    if not params.attributes:
        return web.Response(status=204)
    return resource_response(request, patched, params, endpoint=GROUPS.name)


def wants_members(params: SearchParams) -> bool:
    """Whether the answer shows `members`: `excludedAttributes=members`, or `attributes` without them,
    means the service must not read memberships at all (each read costs SonarQube calls)."""
    if any(_names_members(path) for path in params.excluded_attributes):
        return False
    return not params.attributes or any(_names_members(path) for path in params.attributes)


# -- helpers -------------------------------------------------------------------------------------------


def _names_members(path: str) -> bool:
    """`members`, `members.value` or the URN-qualified `urn:…:Group:members`, in any case."""
    attribute = path.rpartition(":")[2] if path.lower().startswith("urn:") else path
    return attribute.partition(".")[0].lower() == "members"


def _params(request: web.Request, model: type[UserResource | GroupResource]) -> SearchParams:
    # aiohttp decodes `+` as a space in query strings, as Entra's filters need (docs/entra.md Q23).
    return SearchParams.from_query(request.query, model)


def _list(
    request: web.Request,
    resources: Sequence[Representation[Any]],
    total: int,
    params: SearchParams,
    *,
    endpoint: str,
) -> web.Response:
    rendered = [each.render(params, location_of(request, endpoint, each)) for each in resources]
    return scim_json(list_response(rendered, total, params))


def _id(request: web.Request, endpoint: Endpoint[Any]) -> str:
    """The `{id}` of the path; one that cannot be an id of the bridge is unknown without asking anyone."""
    scim_id = request.match_info["id"]
    if not plausible_id(scim_id):
        shown = "".join(char if char.isprintable() else "\ufffd" for char in scim_id[:_SHOWN_ID_LENGTH])
        ellipsis = "…" if len(scim_id) > _SHOWN_ID_LENGTH else ""
        raise NotFoundError(f"{endpoint.resource_type} {shown}{ellipsis} not found")
    return scim_id


def _members_counted(endpoint: Endpoint[Any], body: dict[str, Any]) -> dict[str, Any]:
    """A Group `body`, once it is known to name at most MAX_MEMBERS members (`members`, in any case or
    URN-qualified), counted before anything is validated."""
    if endpoint.model is not GroupResource:
        return body
    for key, value in body.items():
        if isinstance(value, list) and key.rpartition(":")[2].lower() == "members":
            refuse_too_many_members(len(value), key)
    return body


def _if_match(request: web.Request) -> IfMatch | None:
    return IfMatch.parse(request.headers.get(hdrs.IF_MATCH))


def _users(request: web.Request) -> UserService:
    return request.app[PROVISIONER].users


def _groups(request: web.Request) -> GroupService:
    return request.app[PROVISIONER].groups
