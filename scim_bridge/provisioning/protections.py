"""Accounts and groups SCIM must never touch (docs/provisioning.md, Protections).

A protected account is never adopted, linked, deactivated, renamed, deleted or removed from a group by any
SCIM request, reads included: the owner of the token in use (the bridge would lock itself out), the logins
in `protected_logins` (default `admin`, the break-glass administrator), local accounts with a password
unless `adopt_local_accounts` is set (taking one over would turn its password off), and accounts of another
identity provider (GitHub, GitLab, LDAP: linking them to SAML would end their sign-in). SonarQube's own groups
`sonar-users` and `sonar-administrators` are never renamed or deleted, and `sonar-users`' members are
SonarQube's (docs/sonarqube.md SQ19).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from scim_bridge.sonarqube import ADMIN_GROUP, DEFAULT_GROUP, SAML_PROVIDER

if TYPE_CHECKING:
    from scim_bridge.config import BridgeSettings
    from scim_bridge.sonarqube import SonarUser

PROTECTED_GROUPS: Final = frozenset({DEFAULT_GROUP, ADMIN_GROUP})
# Non-local accounts SCIM may take over: SAML ones, and ones created through the Web API for SAML sign-in
# (provider `sonarqube` on v1, none shown on some answers) (docs/sonarqube.md SQ9, SQ14).
_TAKEN_OVER_PROVIDERS: Final = frozenset({SAML_PROVIDER, "sonarqube", None})


def login_protection(login: str, *, actor: str, settings: BridgeSettings) -> str | None:
    """Why the account with `login` is protected, or None when SCIM may act on it."""
    if login == actor:
        return "it owns the token scim-bridge uses"
    if login in settings.protected_logins:
        return "it is listed in protected_logins"
    return None


def account_protection(user: SonarUser, *, actor: str, settings: BridgeSettings) -> str | None:
    """Why an existing SonarQube account may not be taken over by SCIM, or None when it may."""
    reason = login_protection(user.login, actor=actor, settings=settings)
    if reason is None and user.local and not settings.adopt_local_accounts:
        reason = "it is a local account with a password (set adopt_local_accounts to take such accounts over)"
    if reason is None and not user.local and user.external_provider not in _TAKEN_OVER_PROVIDERS:
        reason = f"it signs in through another identity provider ({user.external_provider})"
    return reason
