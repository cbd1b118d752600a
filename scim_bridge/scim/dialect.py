"""The one place where Microsoft Entra ID's deviations from RFC 7643/7644 are normalised before scim2-models
reads a body, a PATCH or a filter.

Most of what Entra sends, scim2-models already reads; this module adds only what it does not. Each quirk of
docs/entra.md (Q1-Q28), and where it is handled:

    Q1, Q6   `op` in any case ("Add", "Replace")      scim2-models: the op is case-folded
    Q2, Q10  `active` as "True"/"false" strings       scim2-models: pydantic's boolean parsing takes any case
    Q3       one operation per attribute              scim2-models
    Q4       remove members by `value` list           ENTRA_POLICY (users); patch.plan_group_patch (groups)
    Q5       `"$ref": null` in member values          scim2-models
    Q7       path-less ops, dotted and URN keys       scim2-models; here: `qualify_path` and `_fit` per key
    Q8       remove `members[value eq "id"]`          scim2-models (users); patch.plan_group_patch (groups)
    Q9       both PATCH dialects on every request     nothing reads `aadOptscim062020`; listing drops it
    Q11      `emails[type eq "work"].value` upsert    ENTRA_POLICY: an unmatched filter creates the entry
    Q12      `urn:...:2.0:User:department` paths      scim2-models; here: the legacy `URN.attr` spelling
    Q13-Q14  manager as id string, object or list     resources.EntraEnterpriseUser
    Q15      roles as JSON-in-a-string values         stored as sent: role values are strings
    Q16      ADSCIM group URN, `...enterprise:2.0User`  here: `schemas` keeps the URNs the model knows
    Q17      `excludedAttributes=members`             listing
    Q18      concurrent per-member group PATCHes      patch.plan_group_patch plans deltas, never a list
    Q21      explicit nulls in legacy bodies          scim2-models: null is absent
    Q22-Q23  content type, `+` in query strings       web layer
    Q24      single values wrapped in a list          here: `_fit` unwraps them for single-valued attributes
    Q25      attribute names in any case              scim2-models (names, paths, URNs, sub-attributes,
                                                      op keys); here: the message keys read before it
    Q19-Q20, Q26-Q28                                  values and provisioning behaviour, not syntax

Beyond the numbered quirks: Microsoft's validator sends an empty `Operations` list (patch treats it as a
no-op), its Postman collection sends member values as bare strings (here: `_fit` wraps them), and the
documented reference check `id eq "x" and manager eq "y"` (A17) names `manager` without its URN and
compares the complex attribute itself (here: `normalize_filter`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from inspect import isclass
from typing import Any, Final

from scim2_models import BaseModel, InvalidPathException, Path, Resource
from scim2_models.path import (
    AttributeBinding,
    AttrPath,
    Comparison,
    FilterNode,
    LogicalExpr,
    Not,
    Present,
    ValuePath,
)

from scim_bridge.scim.resources import bound

ResourceModel = type[Resource[Any]]
PATHS_REMEMBERED: Final = 1024
"""Attribute paths whose reading (qualified name, binding) is kept: resolving a path through scim2-models
on every request showed in the profiles (docs/performance.md). Bounded, since clients choose the paths."""


def normalize_resource(body: Mapping[str, Any], model: ResourceModel) -> dict[str, Any]:
    """Normalise a POST or PUT body: known schema URNs only, extension names qualified, values fitted."""
    normalized = _normalize_attributes(body, model)
    schemas_key = _find_key(normalized, "schemas")
    if schemas_key is not None:
        normalized["schemas"] = _known_schemas(normalized.pop(schemas_key), model)
    return normalized


def normalize_patch(body: Mapping[str, Any], model: ResourceModel) -> dict[str, Any]:
    """Normalise a PatchOp body: canonical message keys, then each operation's path and value."""
    normalized = _canonical_keys(body, ("schemas", "Operations"))
    operations = normalized.get("Operations")
    if isinstance(operations, list):
        normalized["Operations"] = [
            _normalize_operation(operation, model) if isinstance(operation, Mapping) else operation
            for operation in operations
        ]
    return normalized


def normalize_filter(node: FilterNode, model: ResourceModel) -> FilterNode:
    """Qualify extension attributes named without their URN, and compare a complex attribute by its value."""
    if isinstance(node, LogicalExpr):
        return replace(node, terms=tuple(normalize_filter(term, model) for term in node.terms))
    if isinstance(node, Not):
        return replace(node, expr=normalize_filter(node.expr, model))
    if isinstance(node, Comparison):
        return replace(node, attr_path=_compared_by_value(_qualified_attr_path(node.attr_path, model), model))
    if isinstance(node, Present | ValuePath):
        return replace(node, attr_path=_qualified_attr_path(node.attr_path, model))
    return node


@lru_cache(maxsize=PATHS_REMEMBERED)
def qualify_path(path: str, model: ResourceModel) -> str:
    """Give an attribute only an extension declares its URN (`manager` -> `urn:...:User:manager`)."""
    for urn in model.get_extension_models():
        if path.lower().startswith(f"{urn.lower()}."):
            return f"{urn}:{path[len(urn) + 1 :]}"  # legacy `URN.attr` spelling (Q12, Q24)
    declaring = _declaring_extension(path, model)
    return path if declaring is None else f"{declaring}:{path}"


def _declaring_extension(path: str, model: ResourceModel) -> str | None:
    """The URN of the extension declaring an attribute the path names without a URN, if the core does not."""
    if not path or path.lower().startswith("urn:") or _binding(model, path) is not None:
        return None
    extensions = model.get_extension_models()
    return next((urn for urn in extensions if _binding(model, f"{urn}:{path}") is not None), None)


def _normalize_operation(operation: Mapping[str, Any], model: ResourceModel) -> dict[str, Any]:
    normalized = _canonical_keys(operation, ("op", "path", "value"))
    path = normalized.get("path")
    if isinstance(path, str):
        normalized["path"] = path = qualify_path(path, model)
        binding = _binding(model, path)
        # A value under a filtered path describes the selected entries, so it is left as it is.
        if binding is not None and "value" in normalized and not _is_filtered(model, path):
            normalized["value"] = _fit(binding, normalized["value"])
    elif path is None and isinstance(normalized.get("value"), Mapping):
        normalized["value"] = _normalize_attributes(normalized["value"], model)
    return normalized


def _normalize_attributes(
    attributes: Mapping[str, Any], model: ResourceModel, prefix: str = ""
) -> dict[str, Any]:
    """Fit each attribute's value to its schema; an extension's object is normalised key by key."""
    normalized: dict[str, Any] = {}
    for key, value in attributes.items():
        name = qualify_path(prefix + key, model)
        extension = _extension_model(model, name)
        binding = _binding(model, name)
        if extension is not None and isinstance(value, Mapping):
            normalized[name] = _normalize_attributes(value, model, prefix=f"{name}:")
        elif binding is not None:
            normalized[name] = _fit(binding, value)
        else:
            normalized[name] = value
    if prefix:
        # Inside an extension object the keys are the extension's own attribute names.
        return {key.removeprefix(prefix): value for key, value in normalized.items()}
    return normalized


def _fit(binding: AttributeBinding, value: Any) -> Any:
    """Unwrap a one-element list given to a single-valued attribute (Q24); wrap a single value given to a
    multi-valued complex attribute, and bare strings given for its entries, as `{"value": ...}` objects."""
    if binding.target_is_multivalued:
        if not _is_complex(binding) or value is None:
            return value
        entries = value if isinstance(value, list) else [value]
        return [{"value": entry} if isinstance(entry, str) else entry for entry in entries]
    if not isinstance(value, list) or len(value) != 1:
        return value
    entry = value[0]
    if _is_complex(binding) or not isinstance(entry, Mapping):
        return entry
    value_key = _find_key(entry, "value")
    return value if value_key is None else entry[value_key]


def _known_schemas(schemas: Any, model: ResourceModel) -> Any:
    """Keep the schema URNs the model declares, spelled canonically; drop Entra's own and misspelled ones."""
    if not isinstance(schemas, list):
        return schemas
    known = {urn.lower(): urn for urn in (str(model.__schema__), *model.get_extension_models())}
    return [known[urn.lower()] for urn in schemas if isinstance(urn, str) and urn.lower() in known]


def _qualified_attr_path(attr_path: AttrPath, model: ResourceModel) -> AttrPath:
    urn = None if attr_path.uri else _declaring_extension(str(attr_path), model)
    return attr_path if urn is None else replace(attr_path, uri=urn)


def _compared_by_value(attr_path: AttrPath, model: ResourceModel) -> AttrPath:
    """`manager eq "id"` compares the manager's `value`, as a multi-valued attribute's comparison does."""
    binding = _binding(model, str(attr_path))
    if binding is None or attr_path.sub_attr is not None or binding.target_is_multivalued:
        return attr_path  # scim2-models compares a multi-valued attribute by its value already
    target = binding.target_type
    if isclass(target) and issubclass(target, BaseModel) and "value" in target.model_fields:
        return replace(attr_path, sub_attr="value")
    return attr_path


@lru_cache(maxsize=PATHS_REMEMBERED)
def _binding(model: ResourceModel, path: str) -> AttributeBinding | None:
    try:
        return bound(Path, model)(path).resolve()  # type: ignore[no-any-return]
    except InvalidPathException:
        return None  # scim2-models reports the syntax error when it reads the message


@lru_cache(maxsize=PATHS_REMEMBERED)
def _extension_model(model: ResourceModel, name: str) -> type[BaseModel] | None:
    extensions = model.get_extension_models()
    return next((ext for urn, ext in extensions.items() if urn.lower() == name.lower()), None)


@lru_cache(maxsize=PATHS_REMEMBERED)
def _is_filtered(model: ResourceModel, path: str) -> bool:
    return bound(Path, model)(path).value_filter is not None


def _is_complex(binding: AttributeBinding) -> bool:
    target = binding.target_type
    return isclass(target) and issubclass(target, BaseModel)


def _find_key(mapping: Mapping[str, Any], name: str) -> str | None:
    return next((key for key in mapping if key.lower() == name.lower()), None)


def _canonical_keys(mapping: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Copy a mapping with the given keys spelled as the RFC spells them, whatever case they arrived in."""
    canonical = {name.lower(): name for name in names}
    return {canonical.get(key.lower(), key): value for key, value in mapping.items()}
