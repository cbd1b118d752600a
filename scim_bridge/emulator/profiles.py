"""The SonarQube versions the emulator imitates, and every behaviour that differs between them.

One `Profile` per version is the single source of truth: handlers ask the profile, never the version string.
The switches follow docs/sonarqube.md (version matrix); each names the behaviour it selects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Profile:
    """What one SonarQube version does differently from the others."""

    name: str
    version: str
    # Web API v2 (`/api/v2/users-management/...`, `/api/v2/authorizations/...`) is served.
    v2_api: bool
    # `Authorization: Bearer <token>` authenticates (9.9 only documents Basic `token:`).
    bearer_tokens: bool
    # 9.9: v1 group actions also take `id` (group uuid) and `user_groups/search` shows group ids.
    group_ids_in_v1: bool
    # 9.9: v1 group actions look the group up before checking the caller's permission.
    group_lookup_before_permission: bool
    # 9.9: `add_user` of a present member is a no-op; later versions answer 400 "already a member".
    idempotent_add_user: bool
    # 9.9: renaming a group to its own name fails with "Group '…' already exists".
    rename_to_same_name_fails: bool
    # 9.9: a login must not start with `.-_@`; later versions: it must start with `_` or an alphanumeric.
    legacy_login_first_character: bool
    # 9.9: `api/users/update` messages for name/e-mail changes of non-local users.
    nonlocal_name_message: str
    nonlocal_email_message: str
    # 9.9: `api/users/create` refuses an empty login or name itself (later: the user updater's messages).
    create_checks_emptiness: bool
    # 9.9: users/search runs on Elasticsearch (q ≤ 15 chars contains, > 15 exact; 10 000 result window;
    # `externalIdentity` filters the fetched page only).
    elasticsearch_user_search: bool
    # 10.0+: `managed` flags in v1 responses, `sonarLintLastConnectionDate` in users/search.
    managed_fields: bool
    # 9.9: update_identity_provider sets the external id to the external login; later versions keep it.
    identity_provider_sets_external_id: bool
    # Provider keys taken as LDAP: prefix (9.9 `LDAP_`, later `LDAP`) and aliases replaced by `LDAP_default`.
    ldap_prefix: str
    ldap_aliases: frozenset[str]
    # v2 user PATCH applies `externalId` (2025.1+); on 10.8 its availability is unverified, so it is ignored.
    v2_patch_external_id: bool
    # 2026 code: v2 rejects query parameters the endpoint does not declare.
    v2_rejects_unknown_parameters: bool
    # 10.4+: `add_user` of a deactivated user answers "User '<uuid>' not found" (9.9: by login).
    add_user_deactivated_by_uuid: bool


_MODERN_NONLOCAL_NAME = "It is not allowed to update name for this user"
_MODERN_NONLOCAL_EMAIL = "It is not allowed to update email for this user"

_LTS_9_9 = Profile(
    name="9.9",
    version="9.9.8.100196",
    v2_api=False,
    bearer_tokens=False,
    group_ids_in_v1=True,
    group_lookup_before_permission=True,
    idempotent_add_user=True,
    rename_to_same_name_fails=True,
    legacy_login_first_character=True,
    nonlocal_name_message="Name cannot be updated for a non-local user",
    nonlocal_email_message="Email cannot be updated for a non-local user",
    create_checks_emptiness=True,
    elasticsearch_user_search=True,
    managed_fields=False,
    identity_provider_sets_external_id=True,
    ldap_prefix="LDAP_",
    ldap_aliases=frozenset({"sonarqube"}),
    v2_patch_external_id=False,
    v2_rejects_unknown_parameters=False,
    add_user_deactivated_by_uuid=False,
)

_SERVER_10_8 = Profile(
    name="10.8",
    version="10.8.1.101195",
    v2_api=True,
    bearer_tokens=True,
    group_ids_in_v1=False,
    group_lookup_before_permission=False,
    idempotent_add_user=False,
    rename_to_same_name_fails=False,
    legacy_login_first_character=False,
    nonlocal_name_message=_MODERN_NONLOCAL_NAME,
    nonlocal_email_message=_MODERN_NONLOCAL_EMAIL,
    create_checks_emptiness=False,
    elasticsearch_user_search=False,
    managed_fields=True,
    identity_provider_sets_external_id=False,
    ldap_prefix="LDAP",
    ldap_aliases=frozenset({"sonarqube", "LDAP"}),
    v2_patch_external_id=False,
    v2_rejects_unknown_parameters=False,
    add_user_deactivated_by_uuid=True,
)

_SERVER_2025_6 = replace(_SERVER_10_8, name="2025.6", version="2025.6.0.115417", v2_patch_external_id=True)

_COMMUNITY_26_7 = replace(
    _SERVER_2025_6, name="26.7", version="26.7.0.124771", v2_rejects_unknown_parameters=True
)

PROFILES: MappingProxyType[str, Profile] = MappingProxyType(
    {profile.name: profile for profile in (_LTS_9_9, _SERVER_10_8, _SERVER_2025_6, _COMMUNITY_26_7)}
)


def get_profile(name: str) -> Profile:
    """The profile called `name`; a ValueError lists the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown emulator profile {name!r}; known: {', '.join(PROFILES)}") from None
