"""Query parameters, resource representations and list responses (RFC 7644 §3.4.2, §3.9)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError
from scim2_models import Context, ListResponse, Meta, Resource, ScimFilter, SearchRequest

from scim_bridge.scim.errors import InvalidValueError, from_validation_error
from scim_bridge.scim.filters import parse_filter
from scim_bridge.scim.resources import GroupResource, UserResource, bound

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

MAX_RESULTS: Final = 200
"""The most resources one page holds; ServiceProviderConfig advertises it as `filter.maxResults`."""
MAX_START_INDEX: Final = 2**31 - 1
"""A larger `startIndex` is read as this one: beyond any possible result, so the page is empty (RFC 7644
§3.4.2.4 has no error for it), and small enough for any store's OFFSET."""

_INTEGER_PARAMETERS: Final = ("startIndex", "count")
_MAX_DIGITS: Final = len(str(MAX_START_INDEX))  # an integer with more digits is out of range either way

# The query parameters the bridge reads, by their lower-case name. Any other one, Entra's
# `aadOptscim062020` flag included, is ignored; sorting is not supported and ignored too.
_PARAMETERS: Final = {
    name.lower(): name for name in ("filter", "startIndex", "count", "attributes", "excludedAttributes")
}


@dataclass(frozen=True, slots=True)
class SearchParams:
    """What a GET on a resource or a collection asks for."""

    filter: ScimFilter[Any] | None
    start_index: int
    """1-based index of the first result."""
    count: int
    """How many results at most, already capped at MAX_RESULTS."""
    search_request: SearchRequest[Any]
    """The `attributes` / `excludedAttributes` choice, as scim2-models applies it when rendering."""

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(str(path) for path in self.search_request.attributes or ())

    @property
    def excluded_attributes(self) -> tuple[str, ...]:
        return tuple(str(path) for path in self.search_request.excluded_attributes or ())

    @classmethod
    def from_query(cls, query: Mapping[str, str], model: type[Resource[Any]]) -> SearchParams:
        """Read the query string of a GET on `model`'s endpoint; a wrong value is a 400 naming it."""
        known = {
            _PARAMETERS[key.lower()]: value for key, value in query.items() if key.lower() in _PARAMETERS
        }
        text = known.pop("filter", None)
        scim_filter = None if text is None else parse_filter(text, model)
        for name in _INTEGER_PARAMETERS:
            if name in known:
                known[name] = _in_range(name, known[name])
        try:
            request = bound(SearchRequest, model).model_validate(known)
        except ValidationError as exc:
            raise from_validation_error(exc) from exc
        _refuse_unknown_attributes(request, model)
        count = MAX_RESULTS if request.count is None else min(request.count, MAX_RESULTS)
        # scim2-models already reads a startIndex below 1 as 1 and a negative count as 0 (RFC 7644 §3.4.2.4).
        start_index = min(request.start_index or 1, MAX_START_INDEX)
        return cls(filter=scim_filter, start_index=start_index, count=count, search_request=request)


def _in_range(name: str, value: str) -> str:
    """An integer parameter too long to be in range, as its bound: a huge positive one as MAX_START_INDEX
    (then capped by each parameter's own maximum), a huge negative one as -1 (read as each one's minimum).
    Anything shorter is left for validation, which names the parameter when it is no integer."""
    text = value.strip()
    sign = text[:1] if text[:1] in {"+", "-"} else ""
    body = text[len(sign) :]
    digits = body.replace("_", "")
    integer = (
        digits.isascii()
        and digits.isdigit()
        and "__" not in body
        and not body.startswith("_")
        and not body.endswith("_")
    )
    if len(digits.lstrip("0")) <= _MAX_DIGITS:
        return value
    if not integer:
        raise InvalidValueError(f"{name}: value is not a valid integer")
    return "-1" if sign == "-" else str(MAX_START_INDEX)


def render_resource(resource: Resource[Any], params: SearchParams | None, location: str) -> dict[str, Any]:
    """The JSON representation of a resource: `meta.location` set, `attributes` honoured, `id` always."""
    meta = resource.meta or Meta()
    update: dict[str, Any] = {
        "meta": meta.model_copy(
            update={"location": location, "resource_type": meta.resource_type or _resource_type(resource)}
        )
    }
    if isinstance(resource, GroupResource) and resource.members:
        # Members are Users (the bridge provisions no nested groups): their `$ref` is the User's location.
        users = location.rsplit("/", 2)[0] + "/Users/"
        update["members"] = [
            member.model_copy(update={"ref": users + str(member.value)}) for member in resource.members
        ]
    shown = resource.model_copy(update=update)
    return shown.model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE,
        response_parameters=None if params is None else params.search_request,
    )


def list_response(resources: Sequence[Mapping[str, Any]], total: int, params: SearchParams) -> dict[str, Any]:
    """A ListResponse around rendered resources: exact `totalResults`, the requested `startIndex` echoed."""
    # The envelope is built by scim2-models; the resources in it are already rendered one by one.
    envelope = bound(ListResponse, UserResource | GroupResource)(
        total_results=total, start_index=params.start_index, items_per_page=len(resources)
    ).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    return {**envelope, "Resources": list(resources)}


def _refuse_unknown_attributes(request: SearchRequest[Any], model: type[Resource[Any]]) -> None:
    """scim2-models ignores names no schema declares; the bridge tells the client instead."""
    for parameter, paths in (
        ("attributes", request.attributes),
        ("excludedAttributes", request.excluded_attributes),
    ):
        unknown = [str(path) for path in paths or () if path.model is None and path.resolve() is None]
        if unknown:
            raise InvalidValueError(
                f"{parameter}: {', '.join(unknown)} is not an attribute of {_resource_type(model)}"
            )


def _resource_type(resource: Resource[Any] | type[Resource[Any]]) -> str:
    """`User` or `Group`: the resource type a schema URN ends with, as scim2-models names resource types."""
    return str(resource.__schema__).rpartition(":")[2]
