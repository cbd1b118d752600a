"""Query parameters, resource representations and list responses (RFC 7644 §3.4.2, §3.9)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError
from scim2_models import Context, ListResponse, Meta, Resource, ScimFilter, SearchRequest

from scim_bridge.scim.errors import InvalidValueError, from_validation_error
from scim_bridge.scim.filters import Lookup, direct_lookup, parse_filter, simple_lookup
from scim_bridge.scim.resources import GroupResource, bound

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

LIST_RESPONSE_SCHEMA: Final = str(ListResponse.__schema__)
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
    """The parsed filter; None when there is none, or when `lookup` answers it whole without parsing."""
    lookup: Lookup | None
    """The look-up that answers the filter (with `residual`, part of it), if any (scim/filters.py)."""
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
        lookup = None if text is None else simple_lookup(text, model)
        scim_filter = None if text is None or lookup is not None else parse_filter(text, model)
        if scim_filter is not None:
            lookup = direct_lookup(scim_filter)
        for name in _INTEGER_PARAMETERS:
            if name in known:
                known[name] = _in_range(name, known[name])
        request = _search_request(model, known) if known else _no_parameters(model)
        count = MAX_RESULTS if request.count is None else min(request.count, MAX_RESULTS)
        # scim2-models already reads a startIndex below 1 as 1 and a negative count as 0 (RFC 7644 §3.4.2.4).
        start_index = min(request.start_index or 1, MAX_START_INDEX)
        return cls(
            filter=scim_filter, lookup=lookup, start_index=start_index, count=count, search_request=request
        )


def _search_request(model: type[Resource[Any]], parameters: Mapping[str, str]) -> SearchRequest[Any]:
    try:
        request: SearchRequest[Any] = bound(SearchRequest, model).model_validate(parameters)
    except ValidationError as exc:
        raise from_validation_error(exc) from exc
    _refuse_unknown_attributes(request, model)
    return request


@cache
def _no_parameters(model: type[Resource[Any]]) -> SearchRequest[Any]:
    """What a GET with none of the parameters (Entra's queries have only a filter) asks for: built once."""
    return _search_request(model, {})


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
    # Written directly: four fixed fields around resources already rendered one by one. (Through the
    # scim2-models message it cost a tenth of a filter GET; tests/scim/test_listing.py holds both equal.)
    return {
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "itemsPerPage": len(resources),
        "startIndex": params.start_index,
        "Resources": list(resources),
    }


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
