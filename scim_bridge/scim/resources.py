"""The SCIM resource models the bridge serves, shaped for Microsoft Entra ID, and the policy it reads them in.

scim2-models provides the RFC 7643 models. Three of their rules do not fit a bridge that must give Entra
back exactly what it sent:

- the enterprise `manager` requires a `$ref` Entra never sends, and Entra sends the manager as a bare id
  string (or, in old samples, as a one-element list); `EntraEnterpriseUser` accepts every form and keeps
  only the id, so the manager is always returned as `{"value": id}` (quirks Q13 and Q14);
- `emails.value` is validated as an e-mail address and its domain rewritten in lower case, which would make
  the returned value differ from the sent one and Entra re-PATCH it forever; `EntraUser` keeps it as sent;
- `password` is never stored: SonarQube accounts provisioned through SCIM sign in through the identity
  provider, and the bridge keeps no secret it does not need.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Final

from pydantic import field_validator
from scim2_models import (
    AnyExtension,
    CaseExact,
    ComplexAttribute,
    Email,
    EnterpriseUser,
    Group,
    Required,
    ScimPolicy,
    User,
)

USER_SCHEMA: Final = str(User.__schema__)
ENTERPRISE_USER_SCHEMA: Final = str(EnterpriseUser.__schema__)
GROUP_SCHEMA: Final = str(Group.__schema__)

ENTRA_POLICY: Final = ScimPolicy(
    # Entra adds schema URNs of its own (the ADSCIM group URN) and custom-extension attributes the bridge
    # does not model: they are dropped, never refused.
    unknown=ScimPolicy.Unknown.ignore,
    # Entra's default PATCH dialect removes members with `path: "members"` plus a value list.
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    # `emails[type eq "work"].value` with no work e-mail yet means "add one" to Entra.
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


class EntraManager(ComplexAttribute):
    """The user's manager, held by the SCIM `id` of the manager's User resource and nothing else."""

    value: Annotated[str | None, Required.true, CaseExact.true] = None
    """The id of the SCIM resource representing the User's manager."""


class EntraEnterpriseUser(EnterpriseUser):
    """The enterprise User extension, with a manager in every form Entra sends."""

    # The RFC model's manager requires `$ref`, which Entra never sends; this one holds the id alone.
    manager: EntraManager | None = None  # type: ignore[assignment]
    """The User's manager, by the id of the manager's User resource."""

    @field_validator("manager", mode="before")
    @classmethod
    def _manager_id(cls, value: Any) -> Any:
        """Reduce `"id"`, `{"value": "id"}` and `[{"$ref": null, "value": "id"}]` to `{"value": "id"}`."""
        if isinstance(value, EntraManager):
            return value  # scim2-models assigns a model while applying a PATCH
        if isinstance(value, list) and len(value) <= 1:
            value = value[0] if value else None
        if isinstance(value, dict):
            value = next((item for key, item in value.items() if key.lower() == "value"), None)
        if value is None or value == "":
            return None
        return {"value": value}


class EntraEmail(Email):
    """An e-mail address kept exactly as sent: the core model would rewrite its domain."""

    value: str | None = None
    """Email addresses for the user."""


class EntraUser(User[AnyExtension]):
    """The core User as the bridge stores it: e-mails kept as sent, passwords never kept."""

    # list[EntraEmail] is not a subtype of the parent's list[Email] for mypy (lists are invariant).
    emails: list[EntraEmail] | None = None  # type: ignore[assignment]

    @field_validator("password", mode="after")
    @classmethod
    def _password_never_stored(cls, _value: Any) -> None:
        """Discard a password: SCIM-provisioned SonarQube accounts sign in through the identity provider."""


UserResource = EntraUser[EntraEnterpriseUser]
GroupResource = Group


@cache
def bound(generic: Any, model: Any) -> Any:
    """`generic[model]` (`PatchOp[UserResource]`, `Path[GroupResource]`...), built once per process.

    scim2-models caches the classes it parameterises only weakly, so without a strong reference each request
    would build them again.
    """
    return generic[model]
