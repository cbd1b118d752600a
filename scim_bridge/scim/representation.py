"""A resource as the bridge answers it: its SCIM JSON, kept as JSON.

What the store keeps of a resource is scim2-models' own dump of it, made when the resource was accepted
(docs/performance.md: validating it again and dumping it again on every answer was the largest share of a
GET's CPU). So an answer that asks for every attribute is that JSON with `id`, `meta` and the members'
`$ref`; only an answer that selects attributes (`attributes`, `excludedAttributes`) or a filter evaluated
in memory goes through the scim2-models model, which applies each attribute's `returned` characteristic.
tests/provisioning/test_rendering.py holds the two paths to the same output.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from scim2_models import Resource

from scim_bridge.scim.listing import render_resource

if TYPE_CHECKING:
    from scim_bridge.scim.listing import SearchParams

ResourceT = TypeVar("ResourceT", bound=Resource[Any])


@dataclass(frozen=True, slots=True)
class Representation(Generic[ResourceT]):
    """A User or Group: `body` is its SCIM JSON without `meta.location` (which depends on the request) and
    without the members' `$ref`, valid for `model`."""

    model: type[ResourceT]
    body: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.body["id"])

    @property
    def version(self) -> str:
        """The weak ETag of this state of the resource."""
        return str(self.body["meta"]["version"])

    def resource(self) -> ResourceT:
        """The scim2-models model, for filters, PATCH and attribute selection."""
        return self.model.model_validate(self.body)

    def without_members(self) -> Representation[ResourceT]:
        return Representation(
            self.model, {key: value for key, value in self.body.items() if key != "members"}
        )

    def render(self, params: SearchParams | None, location: str) -> dict[str, Any]:
        """The JSON answered: `meta.location` set, members' `$ref` set, `attributes` honoured."""
        if params is not None and (params.attributes or params.excluded_attributes):
            return render_resource(self.resource(), params, location)
        shown = {**self.body, "meta": {**self.body["meta"], "location": location}}
        if "members" in shown:
            # Members are Users (no nested groups): their `$ref` is the User's location.
            users = location.rsplit("/", 2)[0] + "/Users/"
            shown["members"] = [{**member, "$ref": users + member["value"]} for member in shown["members"]]
        return shown


def meta(resource_type: str, created: datetime, last_modified: datetime, version: str) -> dict[str, Any]:
    """`meta` without `location`, its timestamps written as scim2-models writes them (UTC, `Z`)."""
    return {
        "resourceType": resource_type,
        "created": _timestamp(created),
        "lastModified": _timestamp(last_modified),
        "version": version,
    }


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
