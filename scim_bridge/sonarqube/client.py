"""The one interface the rest of scim-bridge uses to talk to SonarQube, whatever its version.

Two implementations exist: `V1Client` (web services `api/users/*`, `api/user_groups/*`; every version) and
`V2Client` (`api/v2/*`; SonarQube 10.4+), chosen from `api/system/status` by `SonarQubeConnection`, which
hands each client the `Capabilities` of the version it talks to. Every method raises only `SonarQubeError`
subclasses (see `errors.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from scim_bridge.sonarqube.capabilities import Capabilities
    from scim_bridge.sonarqube.models import Caller, GroupRef, SamlSettings, SonarGroup, SonarUser, UserRef


class SonarQubeClient(Protocol):
    """User and group administration on one SonarQube server, with one token."""

    @property
    def capabilities(self) -> Capabilities:
        """What the SonarQube this client talks to accepts and does (docs/sonarqube.md)."""
        ...

    # -- server --------------------------------------------------------------------------------------
    async def current_user(self) -> Caller:
        """The token's owner and whether it may administer SonarQube (raises `Unauthorized`)."""
        ...

    async def edition(self) -> str | None:
        """SonarQube's edition (`community`, `developer`, `enterprise`, `datacenter`), when it tells."""
        ...

    async def saml_settings(self) -> SamlSettings:
        """Whether SAML authentication is on, and which assertion attributes give login and groups."""
        ...

    # -- users ---------------------------------------------------------------------------------------
    async def get_user(self, user_id: str) -> SonarUser | None:
        """The user with this uuid, active or deactivated; `None` when unknown. Only on dialects with ids."""
        ...

    async def find_user(
        self, login: str, *, active: bool | None = None, ignore_case: bool = False
    ) -> SonarUser | None:
        """The user with this login: exactly (SonarQube's logins are case-sensitive), or with `ignore_case`
        in any case; `active` None finds either state."""
        ...

    async def users(self, *, active: bool) -> list[SonarUser]:
        """Every user in one state, all pages (9.9 stops at 10 000, docs/sonarqube.md SQ8)."""
        ...

    async def find_user_by_external_login(
        self, external_login: str, provider: str, *, active: bool | None = None
    ) -> SonarUser | None:
        """The user linked to `provider` with this external login; `active` None finds either state."""
        ...

    async def create_user(self, login: str, name: str, email: str | None) -> SonarUser:
        """Create a non-local user, or reactivate the deactivated user with this login.

        A replay after a lost response that finds the same user already created succeeds.
        """
        ...

    async def update_user(
        self, user: UserRef, *, name: str | None = None, email: str | None = None
    ) -> SonarUser:
        """Change name and/or e-mail (`""` clears the e-mail); `None` leaves a field unchanged."""
        ...

    async def rename_user(self, user: UserRef, new_login: str) -> SonarUser:
        """Change the login; returns the user as it is afterwards."""
        ...

    async def link_identity(self, user: UserRef, provider: str, external_login: str) -> None:
        """Link the user to an identity provider (`saml`) so its first login lands on this account."""
        ...

    async def deactivate_user(self, user: UserRef, *, anonymize: bool = False) -> None:
        """Deactivate (idempotent): SonarQube drops memberships, tokens, permissions and the e-mail. With
        `anonymize`, the login and name are replaced for good too (docs/sonarqube.md SQ22)."""
        ...

    # -- groups --------------------------------------------------------------------------------------
    async def get_group(self, group_id: str) -> SonarGroup | None:
        """The group with this uuid; `None` when unknown. Only on dialects with ids."""
        ...

    async def groups(self) -> list[SonarGroup]:
        """Every group, all pages."""
        ...

    async def group_members(self, group: GroupRef) -> list[UserRef]:
        """Every active member of the group, all pages (login always, uuid where the dialect has it)."""
        ...

    async def find_group(self, name: str) -> SonarGroup | None:
        """The group with this name, compared case-insensitively as SCIM's `displayName` is."""
        ...

    async def create_group(self, name: str) -> SonarGroup:
        """Create a group; a replay after a lost response that finds it created succeeds."""
        ...

    async def rename_group(self, group: GroupRef, new_name: str) -> SonarGroup:
        """Rename a group (a no-op when the name is unchanged)."""
        ...

    async def delete_group(self, group: GroupRef) -> None:
        """Delete a group; a replay that finds it already gone succeeds."""
        ...

    async def add_member(self, group: GroupRef, user: UserRef) -> None:
        """Add a member; adding a present member succeeds (10.4+ "already a member" is success)."""
        ...

    async def remove_member(self, group: GroupRef, user: UserRef) -> None:
        """Remove a member; removing an absent member succeeds."""
        ...
