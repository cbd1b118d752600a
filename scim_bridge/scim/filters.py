"""Filters: parsed with the full RFC 7644 grammar, answered by a direct look-up when they allow one.

Entra only ever sends `<attribute> eq "<value>"` (A1, A2, A8), sometimes joined by `and` (A17); those are
answered by looking the resource up by one key. Any other filter is evaluated in memory over a listing.

Because that evaluation visits every record, a filter is refused (400 `invalidFilter`) when it is longer than
MAX_FILTER_LENGTH characters (2 000) or has more than MAX_FILTER_TERMS attribute expressions (50: comparisons
and `pr` tests, those inside `[...]` included); Entra's longest has two. `invalidFilter` rather than
`tooMany`: RFC 7644 §3.12 keeps `tooMany` for a filter that "yields many more results than the server is
willing to calculate or process", which is about what it selects, while these limits are on the filter
itself, whatever it selects: a "filter comparison combination [that] is not supported" (`invalidFilter`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast

from pydantic import ValidationError
from scim2_models import BaseModel, Resource, SCIMException, ScimFilter, SearchRequest
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from scim_bridge.scim.dialect import normalize_filter
from scim_bridge.scim.errors import InvalidFilterError, from_scim_exception, from_validation_error
from scim_bridge.scim.resources import GroupResource, UserResource, bound

if TYPE_CHECKING:
    from scim2_models.path import AttributeBinding, FilterNode

MAX_FILTER_LENGTH: Final = 2000
"""Characters in one filter, at most (after URL decoding)."""
MAX_FILTER_TERMS: Final = 50
"""Attribute expressions (comparisons and `pr`) in one filter, at most."""

ResourceT = TypeVar("ResourceT", bound=Resource[Any])
LookupAttribute = Literal["userName", "externalId", "id", "emails.value", "displayName"]

# The attributes a resource can be looked up by, keyed by the (field, sub-field) scim2-models resolves.
_LOOKUP_KEYS: Final[dict[type[BaseModel], dict[tuple[str, str | None], LookupAttribute]]] = {
    UserResource: {
        ("id", None): "id",
        ("user_name", None): "userName",
        ("external_id", None): "externalId",
        ("emails", "value"): "emails.value",
    },
    GroupResource: {
        ("id", None): "id",
        ("external_id", None): "externalId",
        ("display_name", None): "displayName",
    },
}
# When a conjunction offers several keys, the most selective one is looked up.
_PREFERENCE: Final[tuple[LookupAttribute, ...]] = (
    "id",
    "userName",
    "externalId",
    "emails.value",
    "displayName",
)


# Entra's matching queries (A1, A2, A8) are one `<key attribute> eq "<value>"` with a value that needs no
# escape: recognised here without the full parser, which costs more than the rest of such a GET. Anything
# else, an escape or a control character included, goes through the parser. Each attribute's caseExact is
# the schema's; tests/scim/test_filters.py holds both paths to the same look-up.
_SIMPLE_EQ: Final = re.compile(
    r'\s*([A-Za-z][A-Za-z0-9_-]*)\s+eq\s+"([^"\\\x00-\x1f\x7f]*)"\s*', re.IGNORECASE
)
_SIMPLE_KEYS: Final[dict[type[BaseModel], dict[str, tuple[LookupAttribute, bool]]]] = {
    UserResource: {"id": ("id", True), "username": ("userName", False), "externalid": ("externalId", True)},
    GroupResource: {
        "id": ("id", True),
        "displayname": ("displayName", False),
        "externalid": ("externalId", True),
    },
}


@dataclass(frozen=True, slots=True)
class Lookup:
    """Find the resources whose `attribute` equals `value` (ignoring case unless `case_exact`)."""

    attribute: LookupAttribute
    value: str
    case_exact: bool
    residual: ScimFilter[Any] | None = None
    """A filter the looked-up resources must still match, in memory; None when the look-up is exact."""


def parse_filter(text: str, model: type[ResourceT]) -> ScimFilter[ResourceT]:
    """Parse and bind a filter; syntax errors (with their column), unknown attributes and filters beyond
    MAX_FILTER_LENGTH or MAX_FILTER_TERMS are invalidFilter."""
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilterError(
            f"filter: {len(text)} characters long; at most {MAX_FILTER_LENGTH} characters are accepted"
        )
    try:
        node = ScimFilter(text).ast
    except SCIMException as exc:
        raise from_scim_exception(exc, context="filter") from exc
    terms = count_terms(node)
    if terms > MAX_FILTER_TERMS:
        raise InvalidFilterError(
            f"filter: {terms} comparisons; at most {MAX_FILTER_TERMS} (`pr` tests included) are accepted"
        )
    normalized = normalize_filter(node, model)
    try:
        request = bound(SearchRequest, model).model_validate(
            {"filter": text if normalized == node else str(normalized)}
        )
    except ValidationError as exc:
        raise from_validation_error(exc) from exc
    return cast("ScimFilter[ResourceT]", request.filter)


def simple_lookup(text: str, model: type[Resource[Any]]) -> Lookup | None:
    """The look-up a filter `<key attribute> eq "<value>"` asks for, read without the parser; None for any
    other filter (which `parse_filter` then reads, refusing what is wrong)."""
    if len(text) > MAX_FILTER_LENGTH:
        return None
    match = _SIMPLE_EQ.fullmatch(text)
    key = None if match is None else _SIMPLE_KEYS.get(model, {}).get(match[1].lower())
    if match is None or key is None:
        return None
    attribute, case_exact = key
    return Lookup(attribute, match[2], case_exact)


def count_terms(node: FilterNode) -> int:
    """The attribute expressions of a filter: its comparisons and `pr` tests, inside `[...]` too."""
    count = 0
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, Comparison | Present):
            count += 1
        elif isinstance(current, LogicalExpr):
            pending.extend(current.terms)
        elif isinstance(current, Not):
            pending.append(current.expr)
        elif isinstance(current, ValuePath):
            pending.append(current.val_filter)
    return count


def direct_lookup(scim_filter: ScimFilter[Any]) -> Lookup | None:
    """The look-up answering an `eq` filter on a key attribute, alone or within an `and`, if any."""
    terms = _conjuncts(scim_filter.ast)
    candidates = [lookup for term in terms if (lookup := _term_lookup(scim_filter, term)) is not None]
    if not candidates:
        return None
    lookup = min(candidates, key=lambda candidate: _PREFERENCE.index(candidate.attribute))
    if len(terms) > 1:
        return Lookup(lookup.attribute, lookup.value, lookup.case_exact, residual=scim_filter)
    return lookup


def matches(scim_filter: ScimFilter[ResourceT], resource: ResourceT) -> bool:
    """Evaluate a filter in memory; strings compare by each attribute's caseExact."""
    return scim_filter.match(resource)


def _conjuncts(node: FilterNode) -> tuple[FilterNode, ...]:
    if isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_:
        return node.terms
    return (node,)


def _term_lookup(scim_filter: ScimFilter[Any], term: FilterNode) -> Lookup | None:
    """A look-up for one `eq` term; `emails[type eq "work" and value eq "x"]` keeps itself as residual."""
    if isinstance(term, Comparison):
        return _comparison_lookup(scim_filter, term.attr_path, term)
    if not isinstance(term, ValuePath) or term.attr_path.sub_attr is not None:
        return None
    inner_terms = _conjuncts(term.val_filter)
    for inner in inner_terms:
        if isinstance(inner, Comparison) and inner.attr_path.sub_attr is None:
            attr_path = AttrPath(term.attr_path.attr, inner.attr_path.attr, term.attr_path.uri)
            lookup = _comparison_lookup(scim_filter, attr_path, inner)
            if lookup is not None:
                residual = None if len(inner_terms) == 1 else scim_filter
                return Lookup(lookup.attribute, lookup.value, lookup.case_exact, residual)
    return None


def _comparison_lookup(scim_filter: ScimFilter[Any], attr_path: AttrPath, term: Comparison) -> Lookup | None:
    if term.op != CompareOperator.eq or not isinstance(term.value, str) or scim_filter.model is None:
        return None
    binding: AttributeBinding | None = scim_filter.resolve_comparison(attr_path, strict=False)
    if binding is None or binding.model is not scim_filter.model:
        return None
    attribute = _LOOKUP_KEYS.get(scim_filter.model, {}).get((binding.field_name, binding.sub_field_name))
    if attribute is None:
        return None
    return Lookup(attribute, term.value, binding.case_exact)
