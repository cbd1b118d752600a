"""POST and PUT bodies: a whole User or Group, normalised for Entra, then validated by scim2-models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeVar

from pydantic import ValidationError
from scim2_models import Context, Resource

from scim_bridge.scim.dialect import normalize_resource
from scim_bridge.scim.errors import InvalidSyntaxError, InvalidValueError, from_validation_error
from scim_bridge.scim.resources import ENTRA_POLICY, GroupResource, UserResource

ResourceT = TypeVar("ResourceT", bound=Resource[Any])


def parse_user(body: Mapping[str, Any], *, replacement: bool = False) -> UserResource:
    """Read the body of `POST /Users`, or of `PUT /Users/{id}` with `replacement`."""
    return _parse(body, UserResource, replacement=replacement)


def parse_group(body: Mapping[str, Any], *, replacement: bool = False) -> GroupResource:
    """Read the body of `POST /Groups`, or of `PUT /Groups/{id}` with `replacement`."""
    return _parse(body, GroupResource, replacement=replacement)


def _parse(body: Mapping[str, Any], model: type[ResourceT], *, replacement: bool) -> ResourceT:
    """Read-only input (`id`, `meta`) is ignored, as RFC 7644 §3.3 and §3.5.1 allow."""
    if not isinstance(body, Mapping):
        raise InvalidSyntaxError("the request body must be a JSON object")
    context = Context.RESOURCE_REPLACEMENT_REQUEST if replacement else Context.RESOURCE_CREATION_REQUEST
    try:
        resource = model.model_validate(
            normalize_resource(body, model), scim_ctx=context, scim_policy=ENTRA_POLICY
        )
    except ValidationError as exc:
        raise from_validation_error(exc) from exc
    # scim2-models takes "" as a value; a blank name can name no SonarQube account or group.
    attribute, field_name = _NAMES[model]
    if not str(getattr(resource, field_name)).strip():
        raise InvalidValueError(f"{attribute}: required attribute is blank")
    return resource


_NAMES: Final[dict[type[Resource[Any]], tuple[str, str]]] = {
    UserResource: ("userName", "user_name"),
    GroupResource: ("displayName", "display_name"),
}
