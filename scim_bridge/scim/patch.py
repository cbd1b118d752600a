"""PATCH requests: parsed and validated whole before anything is applied.

Users are patched by scim2-models on the resource model (all operations or none). Groups are not: Entra
sends one PATCH per member, several at once for one group, so a group PATCH is turned into a plan of deltas
(`GroupPatchPlan`) that never needs the current member list; applying it is the provisioning layer's job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast

from pydantic import ValidationError
from scim2_models import (
    Context,
    GroupMember,
    InvalidPathException,
    PatchOp,
    PatchOperation,
    Path,
    SCIMException,
)
from scim2_models.path import CompareOperator, Comparison, FilterNode, LogicalExpr, LogicalOperator

from scim_bridge.scim.dialect import normalize_patch
from scim_bridge.scim.errors import (
    InvalidFilterError,
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    PayloadTooLargeError,
    ScimError,
    from_scim_exception,
    from_validation_error,
)
from scim_bridge.scim.resources import ENTRA_POLICY, GroupResource, UserResource, bound

PATCH_OP_SCHEMA: Final = str(PatchOp.__schema__)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scim2_models import Resource

MAX_OPERATIONS: Final = 1000
"""More operations than this in one PATCH are refused with 413: Entra sends one to a few."""
MAX_MEMBERS: Final = 1000
"""More members than this in one request (one POST or PUT Group body, or the values of one PATCH, all its
operations together) are refused with 413: Entra names one member per operation, a few operations at a time.

413 rather than 400 `tooMany`: RFC 7644 §3.12 keeps `tooMany` for a filter that yields too many results;
a request larger than the service accepts is 413, as for the bulk limits (§3.7.4). ServiceProviderConfig has
no field for either limit (it has `filter.maxResults` and bulk's, and bulk is not supported): both are
documented in docs/operations.md instead.
"""

_OPERATIONS_LOC: Final = ("Operations", 0)
_IGNORED_GROUP_FIELDS: Final = frozenset({"id", "meta", "schemas"})  # read-only or derived by the bridge


def parse_user_patch(body: Mapping[str, Any]) -> PatchOp[UserResource]:
    """Read a User PATCH in either Entra dialect; every operation is checked against the User schema."""
    return cast("PatchOp[UserResource]", _parse(body, UserResource))


def apply_user_patch(resource: UserResource, patch: PatchOp[UserResource]) -> bool:
    """Apply a parsed PATCH in place, all operations or none; return whether the resource changed."""
    try:
        return patch.patch(resource, scim_policy=ENTRA_POLICY)
    except (SCIMException, ValidationError) as exc:
        raise _failed_operation(resource, patch, exc) from exc


@dataclass(frozen=True, slots=True)
class GroupPatchPlan:
    """What a group PATCH changes: the current members are never needed to plan it.

    At most one of the member changes is set: the `add_members` / `remove_members` deltas, which never share
    a member and are what Entra sends; `replace_members` (the group ends up with exactly these members) or
    `remove_all_members` (the group ends up empty), which only RFC clients send and which need the current
    members to apply. Later operations are folded into earlier ones.
    """

    display_name: str | None = None
    external_id: str | None = None
    external_id_changed: bool = False
    """Whether the PATCH sets `external_id`; with `external_id` None it removes it."""
    add_members: tuple[str, ...] = ()
    remove_members: tuple[str, ...] = ()
    replace_members: tuple[str, ...] | None = None
    remove_all_members: bool = False

    def members_after(self, current: Iterable[str]) -> frozenset[str]:
        """The member ids of a group that had `current` once this plan is applied."""
        if self.remove_all_members:
            return frozenset()
        if self.replace_members is not None:
            return frozenset(self.replace_members)
        return (frozenset(current) - frozenset(self.remove_members)) | frozenset(self.add_members)


def plan_group_patch(body: Mapping[str, Any]) -> GroupPatchPlan:
    """Read a Group PATCH in either Entra dialect into a plan; every operation and member is checked first."""
    return member_delta(body) or full_group_plan(body)


def member_delta(body: Mapping[str, Any]) -> GroupPatchPlan | None:
    """The plan of Entra's member change, read directly: one `add` or `remove` of `members` whose value is
    a list of `{"value": "<id>"}` (with `"$ref": null` in Entra's default dialect), or one `remove` of
    `members[value eq "<id>"]`. Entra sends one such PATCH per membership (docs/entra.md A12, A13), and
    validating it as a scim2-models message cost a fifth of its CPU. None for any other body, which
    `full_group_plan` reads; tests/scim/test_patch_groups.py holds both to the same plan."""
    operations = body.get("Operations") if body.keys() == {"schemas", "Operations"} else None
    if body.get("schemas") != [PATCH_OP_SCHEMA] or not isinstance(operations, list) or len(operations) != 1:
        return None
    operation = operations[0]
    if not isinstance(operation, dict) or not isinstance(operation.get("op"), str):
        return None
    op = operation["op"].lower()
    if op == "remove" and operation.keys() == {"op", "path"} and isinstance(operation["path"], str):
        removed = _MEMBER_FILTER.fullmatch(operation["path"])
        return None if removed is None else GroupPatchPlan(remove_members=(removed[1],))
    if (
        op not in {"add", "remove"}
        or operation.keys() != {"op", "path", "value"}
        or operation["path"] != "members"
    ):
        return None
    member_ids = _plain_member_ids(operation["value"])
    if member_ids is None:
        return None
    return (
        GroupPatchPlan(add_members=member_ids) if op == "add" else GroupPatchPlan(remove_members=member_ids)
    )


# `members[value eq "<id>"]` with an id that needs no escape and is not blank.
_MEMBER_FILTER: Final = re.compile(
    r'members\[value eq "([^"\\\x00-\x1f\x7f]*[^"\\\s][^"\\\x00-\x1f\x7f]*)"\]'
)


def _plain_member_ids(value: Any) -> tuple[str, ...] | None:
    """The distinct ids of a list of `{"value": "<id>"}` (`"$ref": null` allowed), in order; None if the
    value is anything else."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_MEMBERS:
        return None
    member_ids: dict[str, None] = {}  # an ordered set: the client's order is kept
    for entry in value:
        if not isinstance(entry, dict) or not {"value"} <= entry.keys() <= {"value", "$ref"}:
            return None
        member_id = entry["value"]
        if entry.get("$ref") is not None or not isinstance(member_id, str) or not member_id.strip():
            return None
        member_ids[member_id] = None
    return tuple(member_ids)


def full_group_plan(body: Mapping[str, Any]) -> GroupPatchPlan:
    """Any Group PATCH read in full: validated by scim2-models, then folded one operation at a time."""
    patch = _parse(body, GroupResource)
    planner = _GroupPlanner()
    for index, operation in enumerate(patch.operations or []):
        planner.plan(index, operation)
    return planner.result()


def refuse_too_many_members(count: int, where: str) -> None:
    """The 413 for a request that names more than MAX_MEMBERS members (`where` says which part of it)."""
    if count > MAX_MEMBERS:
        raise PayloadTooLargeError(
            f"{where}: {count} members in one request; at most {MAX_MEMBERS} are accepted "
            "(send more in several PATCH requests)"
        )


def _parse(body: Mapping[str, Any], model: type[Resource[Any]]) -> Any:
    """Normalise and validate a PatchOp; an empty `Operations` list is a no-op (Microsoft's validator)."""
    if not isinstance(body, Mapping):
        raise InvalidSyntaxError("the PATCH body must be a JSON object")
    message = normalize_patch(body, model)
    operations = message.get("Operations")
    if isinstance(operations, list) and len(operations) > MAX_OPERATIONS:
        raise PayloadTooLargeError(
            f"the PATCH carries {len(operations)} operations; at most {MAX_OPERATIONS} are accepted"
        )
    patch_class = bound(PatchOp, model)
    if operations == []:
        return patch_class()
    try:
        return patch_class.model_validate(
            message, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=ENTRA_POLICY
        )
    except ValidationError as exc:
        raise _invalid_operation(message, model, exc) from exc


def _invalid_operation(
    message: dict[str, Any], model: type[Resource[Any]], exc: ValidationError
) -> ScimError:
    """Name the first operation that fails on its own; otherwise the message itself is at fault."""
    operations = message.get("Operations")
    for index, operation in enumerate(operations if isinstance(operations, list) else []):
        try:
            bound(PatchOp, model).model_validate(
                {"Operations": [operation]},
                scim_ctx=Context.RESOURCE_PATCH_REQUEST,
                scim_policy=ENTRA_POLICY,
            )
        except ValidationError as operation_exc:
            return from_validation_error(
                operation_exc, context=_label(index, operation), strip_loc=_OPERATIONS_LOC
            )
    return from_validation_error(exc)


def _failed_operation(
    resource: UserResource, patch: PatchOp[UserResource], exc: SCIMException | ValidationError
) -> ScimError:
    """Replay the operations one by one on a copy to name the one scim2-models refused."""
    trial = resource.model_copy(deep=True)
    for index, operation in enumerate(patch.operations or []):
        try:
            # Already validated: rebuilding the message from the operation needs no second validation.
            single = bound(PatchOp, UserResource).model_construct(operations=[operation])
            single.patch(trial, scim_policy=ENTRA_POLICY)
        except (SCIMException, ValidationError) as operation_exc:
            return _translated(operation_exc, _label(index, operation))
    return _translated(exc, "")


def _translated(exc: SCIMException | ValidationError, context: str) -> ScimError:
    if isinstance(exc, ValidationError):
        return from_validation_error(exc, context=context)
    return from_scim_exception(exc, context=context)


def _label(index: int, operation: Any) -> str:
    """`Operations[2] (remove "members")`: where a detail starts, so the client finds the operation."""
    op: Any
    path: Any
    if isinstance(operation, PatchOperation):
        op, path = operation.op.value, operation.path
    elif isinstance(operation, Mapping):
        op, path = operation.get("op"), operation.get("path")
    else:
        return f"Operations[{index}]"
    target = f'"{path}"' if path else "without path"
    return f"Operations[{index}] ({op} {target})"


@dataclass
class _GroupPlanner:
    """Folds operations, in order, into the deltas of a `GroupPatchPlan`."""

    display_name: str | None = None
    external_id: str | None = None
    external_id_changed: bool = False
    adds: dict[str, None] = field(default_factory=dict)  # dicts as ordered sets: the client's order is kept
    removes: dict[str, None] = field(default_factory=dict)
    replacement: dict[str, None] | None = None
    members_named: int = 0  # member values of every operation so far, for MAX_MEMBERS

    def plan(self, index: int, operation: PatchOperation[Any]) -> None:
        label = _label(index, operation)
        op = operation.op.value
        if operation.path is not None:
            self._plan_path(label, op, operation.path, operation.value)
            return
        for key, value in (operation.value or {}).items():  # validated: a path-less value is an object
            path = _group_path(key)
            if path is not None:
                self._plan_path(f"{label} {key}", op, path, value)

    def _plan_path(self, label: str, op: str, path: Path[Any], value: Any) -> None:
        binding = path.resolve()
        if binding is None or binding.field_name in _IGNORED_GROUP_FIELDS:
            return  # an attribute Groups do not have is ignored, as ENTRA_POLICY says
        if binding.field_name != "members":
            self._plan_attribute(label, binding.field_name, None if op == "remove" else value)
        elif binding.sub_field_name is not None:
            raise InvalidPathError(f"{label}: members are patched as a whole, not by sub-attribute")
        elif path.value_filter is not None:
            if op != "remove":
                raise InvalidPathError(f"{label}: a members filter can only select members to remove")
            self._remove(self._counted(label, _filter_member_ids(label, path.value_filter)))
        elif value is None:  # remove without a value, or replace with null (RFC 7644 §3.5.2.2-3)
            self.adds, self.removes, self.replacement = {}, {}, {}
        elif op == "remove":
            self._remove(self._member_ids(label, value))
        elif op == "replace":
            self.adds, self.removes, self.replacement = {}, {}, {}
            self._add(self._member_ids(label, value))
        else:
            self._add(self._member_ids(label, value))

    def _member_ids(self, label: str, value: Any) -> list[str]:
        """The member ids of a `members` value, counted before any is validated."""
        self._count(label, len(value) if isinstance(value, list) else 1)
        return _member_ids(label, value)

    def _counted(self, label: str, member_ids: list[str]) -> list[str]:
        self._count(label, len(member_ids))
        return member_ids

    def _count(self, label: str, members: int) -> None:
        self.members_named += members
        refuse_too_many_members(self.members_named, f"{label}: members")

    def _plan_attribute(self, label: str, field_name: str, value: Any) -> None:
        if field_name == "display_name":
            if not isinstance(value, str) or not value.strip():
                raise InvalidValueError(f"{label}: displayName must be a non-empty string")
            self.display_name = value
        else:
            if value is not None and not isinstance(value, str):
                raise InvalidValueError(f"{label}: externalId must be a string")
            self.external_id, self.external_id_changed = value, True

    def _add(self, member_ids: list[str]) -> None:
        target = self.adds if self.replacement is None else self.replacement
        for member_id in member_ids:
            target[member_id] = None
            self.removes.pop(member_id, None)

    def _remove(self, member_ids: list[str]) -> None:
        for member_id in member_ids:
            if self.replacement is None:
                self.removes[member_id] = None
                self.adds.pop(member_id, None)
            else:
                self.replacement.pop(member_id, None)

    def result(self) -> GroupPatchPlan:
        return GroupPatchPlan(
            display_name=self.display_name,
            external_id=self.external_id,
            external_id_changed=self.external_id_changed,
            add_members=tuple(self.adds),
            remove_members=tuple(self.removes),
            replace_members=tuple(self.replacement) if self.replacement else None,
            remove_all_members=self.replacement == {},
        )


def _group_path(key: str) -> Path[Any] | None:
    try:
        return bound(Path, GroupResource)(key)  # type: ignore[no-any-return]
    except InvalidPathException:
        return None  # scim2-models already dropped a key that is no attribute path, as ENTRA_POLICY says


def _member_ids(label: str, value: Any) -> list[str]:
    """The member ids of a `members` value: objects whose `value` is a non-empty string (`$ref` ignored)."""
    entries = value if isinstance(value, list) else [value]
    member_ids = []
    for position, entry in enumerate(entries):
        where = f"{label}: members[{position}]"
        if not isinstance(entry, dict):
            raise InvalidValueError(f'{where} must be an object such as {{"value": "<member id>"}}')
        try:
            member = GroupMember.model_validate(entry, scim_policy=ENTRA_POLICY)
        except ValidationError as exc:
            raise from_validation_error(exc, context=where) from exc
        if not member.value or not member.value.strip():
            raise InvalidValueError(f"{where}.value must be a non-empty string")
        member_ids.append(member.value)
    return member_ids


def _filter_member_ids(label: str, node: FilterNode) -> list[str]:
    """The ids a removal filter names: `value eq "id"` comparisons, joined by `or`."""
    if isinstance(node, LogicalExpr) and node.op == LogicalOperator.or_:
        return [member_id for term in node.terms for member_id in _filter_member_ids(label, term)]
    if (
        isinstance(node, Comparison)
        and node.op == CompareOperator.eq
        and node.attr_path.attr.lower() == "value"
        and node.attr_path.sub_attr is None
        and isinstance(node.value, str)
        and node.value.strip()
    ):
        return [node.value]
    raise InvalidFilterError(f'{label}: a members filter selects members by value eq "<id>", joined by or')
