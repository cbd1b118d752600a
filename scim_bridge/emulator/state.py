"""The emulator's in-memory SonarQube: users, groups, memberships, tokens, permissions and settings.

No HTTP here. Operations enforce SonarQube's domain rules (user updater validation, default group,
last-administrator guards, deactivation cascade, reactivation: docs/sonarqube.md SQ9-SQ12, SQ18-SQ20) and
raise `EmulatorError` with SonarQube's messages. Messages that differ between v1 and v2 (look-up failures)
belong to the API layers.
"""

from __future__ import annotations

import copy
import random
import string
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from scim_bridge.emulator import rules
from scim_bridge.emulator.model import (
    ADMIN_GROUP,
    ADMIN_PERMISSION,
    DEFAULT_GROUP,
    SAML_PROVIDER,
    SONARQUBE_PROVIDER,
    UNSET,
    EmulatorError,
    Group,
    Membership,
    NewUser,
    Token,
    Unset,
    User,
    UserChanges,
    bad_request,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scim_bridge.emulator.profiles import Profile

SAML_ENABLED = "sonar.auth.saml.enabled"
SAML_USER_LOGIN = "sonar.auth.saml.user.login"
SAML_PROVIDER_NAME = "sonar.auth.saml.providerName"
# Settings with a default value, reported as inherited until set.
SETTING_DEFAULTS = {SAML_ENABLED: "false", SAML_PROVIDER_NAME: "SAML"}
SAML_LOGIN_ATTRIBUTE = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"

_TOKEN_PREFIXES = {"USER_TOKEN": "squ_", "GLOBAL_ANALYSIS_TOKEN": "sqa_", "PROJECT_ANALYSIS_TOKEN": "sqp_"}
_LAST_CONNECTION_PRECISION = timedelta(hours=1)  # SonarQube refreshes it at most hourly


@dataclass(frozen=True, slots=True)
class Seed:
    """What a fresh emulator holds besides the built-in groups: the admin's token and the SAML switch."""

    admin_token: str
    saml: bool
    seed: int | None


class Directory:
    """Every piece of state of one emulated SonarQube instance."""

    def __init__(self, profile: Profile, seed: Seed) -> None:
        self.profile = profile
        self._rng = random.Random(seed.seed)  # reproducible uuids and tokens when seeded
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.memberships: dict[str, Membership] = {}
        self.tokens: dict[str, Token] = {}
        self.settings: dict[str, str] = {}
        self._user_by_login: dict[str, str] = {}
        self._group_by_name: dict[str, str] = {}
        self._membership_by_pair: dict[tuple[str, str], str] = {}
        self._groups_of_user: defaultdict[str, set[str]] = defaultdict(set)
        self._members_of_group: defaultdict[str, set[str]] = defaultdict(set)
        # Indexes SonarQube's database has too: searches by identity stay fast with many users (bench/).
        self._users_by_external_login: defaultdict[str, set[str]] = defaultdict(set)
        self._users_by_identity: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        self._populate(seed)

    def restart_as(self, profile: Profile) -> None:
        """Behave as another SonarQube version from now on, keeping every row and uuid, as SonarQube keeps its
        database across an upgrade. Nothing stored depends on the version: the rules that differ (login
        syntax, messages, v1 group ids, which are the groups' uuids, …) are read from `profile` when used,
        so rows written under one version are valid under another."""
        self.profile = profile

    # --- seed ------------------------------------------------------------------------------------

    def _populate(self, seed: Seed) -> None:
        everyone = "Every authenticated user automatically belongs to this group"
        default = self._add_group(Group(self.new_uuid(), DEFAULT_GROUP, everyone, default=True))
        admins = self._add_group(
            Group(
                self.new_uuid(),
                ADMIN_GROUP,
                "System administrators",
                permissions=frozenset({ADMIN_PERMISSION}),
            )
        )
        admin = self._store_user(
            User(self.new_uuid(), "admin", "Administrator", external_login="admin", external_id="admin")
        )
        admin.password = "admin"  # noqa: S105 - SonarQube's well-known initial password
        self._add_membership(default, admin)
        self._add_membership(admins, admin)
        self.tokens[seed.admin_token] = Token(seed.admin_token, "emulator", admin.uuid, "USER_TOKEN", now())
        if seed.saml:
            self.settings[SAML_ENABLED] = "true"
            self.settings[SAML_USER_LOGIN] = SAML_LOGIN_ATTRIBUTE

    # --- identifiers -----------------------------------------------------------------------------

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _random_text(self, length: int, alphabet: str) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(length))

    # --- look-ups --------------------------------------------------------------------------------

    def user_by_login(self, login: str) -> User | None:
        """Exact, case-sensitive, active or not (SonarQube's `WHERE login = ?`)."""
        uuid_ = self._user_by_login.get(login)
        return None if uuid_ is None else self.users[uuid_]

    def active_user_by_login(self, login: str) -> User | None:
        user = self.user_by_login(login)
        return user if user is not None and user.active else None

    def users_by_external_login(self, external_login: str) -> list[User]:
        return [self.users[uuid_] for uuid_ in self._users_by_external_login.get(external_login, set())]

    def group_by_name(self, name: str) -> Group | None:
        """Exact, case-sensitive (PostgreSQL collation)."""
        uuid_ = self._group_by_name.get(name)
        return None if uuid_ is None else self.groups[uuid_]

    def default_group(self) -> Group:
        return next(group for group in self.groups.values() if group.default)

    def groups_of(self, user: User) -> list[Group]:
        """The user's groups, by name."""
        return sorted((self.groups[g] for g in self._groups_of_user[user.uuid]), key=lambda g: g.name)

    def members_of(self, group: Group) -> list[User]:
        return [self.users[u] for u in self._members_of_group[group.uuid]]

    def is_member(self, group: Group, user: User) -> bool:
        return (group.uuid, user.uuid) in self._membership_by_pair

    def memberships_of_user(self, user_uuid: str) -> list[Membership]:
        pairs = ((group_uuid, user_uuid) for group_uuid in self._groups_of_user.get(user_uuid, set()))
        return [self.memberships[self._membership_by_pair[pair]] for pair in pairs]

    def memberships_of_group(self, group_uuid: str) -> list[Membership]:
        pairs = ((group_uuid, user_uuid) for user_uuid in self._members_of_group.get(group_uuid, set()))
        return [self.memberships[self._membership_by_pair[pair]] for pair in pairs]

    def membership_of(self, group: Group, user: User) -> Membership | None:
        uuid_ = self._membership_by_pair.get((group.uuid, user.uuid))
        return None if uuid_ is None else self.memberships[uuid_]

    def tokens_of(self, user: User) -> list[Token]:
        return [token for token in self.tokens.values() if token.user_uuid == user.uuid]

    # --- permissions -----------------------------------------------------------------------------

    def global_permissions(self, user: User) -> set[str]:
        """Granted directly or through a group."""
        granted = set(user.permissions)
        for group_uuid in self._groups_of_user[user.uuid]:
            granted |= self.groups[group_uuid].permissions
        return granted

    def is_admin(self, user: User) -> bool:
        return user.active and ADMIN_PERMISSION in self.global_permissions(user)

    def count_admins(
        self,
        *,
        without_user: str | None = None,
        without_user_permission: str | None = None,
        without_group: str | None = None,
        without_membership: tuple[str, str] | None = None,
    ) -> int:
        """Active users holding `admin`, ignoring a user, a user's own grant, a group or one membership."""
        return sum(
            1
            for user in self.users.values()
            if user.active
            and user.uuid != without_user
            and (
                (ADMIN_PERMISSION in user.permissions and user.uuid != without_user_permission)
                or any(
                    ADMIN_PERMISSION in self.groups[g].permissions
                    and g != without_group
                    and (g, user.uuid) != without_membership
                    for g in self._groups_of_user[user.uuid]
                )
            )
        )

    def grant_user(self, user: User, permission: str) -> None:
        user.permissions = user.permissions | {permission}

    def revoke_user(self, user: User, permission: str) -> None:
        if permission not in user.permissions:
            return
        if permission == ADMIN_PERMISSION and self.count_admins(without_user_permission=user.uuid) == 0:
            raise bad_request(
                f"Last user with permission '{ADMIN_PERMISSION}'. Permission cannot be removed."
            )
        user.permissions = user.permissions - {permission}

    def grant_group(self, group: Group, permission: str) -> None:
        group.permissions = group.permissions | {permission}

    def revoke_group(self, group: Group, permission: str) -> None:
        if permission not in group.permissions:
            return
        if permission == ADMIN_PERMISSION and self.count_admins(without_group=group.uuid) == 0:
            raise bad_request(
                f"Last group with permission '{ADMIN_PERMISSION}'. Permission cannot be removed."
            )
        group.permissions = group.permissions - {permission}

    # --- users: create and reactivate ------------------------------------------------------------

    def register_user(self, new: NewUser) -> User:
        """Create the user, or reactivate the deactivated user with that login (same uuid, identity reset)."""
        existing = self.user_by_login(new.login)
        if existing is None:
            return self._create_user(new)
        if existing.active:
            raise bad_request(f"An active user with login '{existing.login}' already exists")
        return self._reactivate(existing, new)

    def _create_user(self, new: NewUser) -> User:
        messages: list[str] = []
        login_ok = rules.validate_login(
            new.login, messages, legacy_first_character=self.profile.legacy_login_first_character
        )
        rules.validate_name(new.name, messages)
        rules.validate_email_length(new.email, messages)
        if new.password is not None:
            rules.validate_password(new.password, messages)
        scm_accounts = rules.sanitize_scm_accounts(new.scm_accounts)
        if scm_accounts:
            self._validate_scm_accounts(scm_accounts, new.login, new.email, None, messages)
        if login_ok:
            self._check_identity_unique(new.login, SONARQUBE_PROVIDER, None)
        if messages:
            raise bad_request(*messages)
        user = User(
            self.new_uuid(),
            new.login,
            new.name,
            email=new.email or None,
            local=new.local,
            external_login=new.login,
            external_id=new.login,
            scm_accounts=scm_accounts,
            password=new.password if new.local else None,
        )
        self._store_user(user)
        self._add_membership(self.default_group(), user)
        return user

    def _reactivate(self, user: User, new: NewUser) -> User:
        # Local users get SonarQube's own identity back; `local=false` gets provider `sonarqube` too.
        identity = (None, None, None) if new.local else (SONARQUBE_PROVIDER, new.login, new.login)
        changes = UserChanges(
            login=new.login,
            name=new.name,
            email=new.email,
            scm_accounts=new.scm_accounts,
            external_provider=identity[0],
            external_login=identity[1],
            external_id=identity[2],
            password=new.password if new.password is not None else UNSET,
        )
        reactivated = self._apply(user, changes, reactivate=True)
        self._add_membership(self.default_group(), reactivated)
        return reactivated

    # --- users: update ---------------------------------------------------------------------------

    def update_user(self, user: User, changes: UserChanges) -> User:
        """Apply the changes; an effective change also (re)activates the user, as SonarQube's update does."""
        return self._apply(user, changes, reactivate=False)

    def _apply(self, user: User, changes: UserChanges, *, reactivate: bool) -> User:
        """Validate every change on a draft, then commit it whole or raise with every message."""
        draft = copy.copy(user)
        messages: list[str] = []
        changed = self._change_login(draft, changes.login, messages)
        changed |= self._change_name(draft, changes.name, messages)
        changed |= self._change_email(draft, changes.email, messages)
        changed |= self._change_identity(draft, changes)
        changed |= self._change_password(draft, changes.password, messages)
        changed |= self._change_scm_accounts(draft, changes, messages)
        if messages:
            raise bad_request(*messages)
        if not changed and not reactivate:
            return user
        draft.active = True
        self._replace_user(user, draft)
        return draft

    def _change_login(self, draft: User, login: str | Unset | None, messages: list[str]) -> bool:
        if login is UNSET:
            return False
        legacy = self.profile.legacy_login_first_character
        valid = rules.validate_login(login, messages, legacy_first_character=legacy)
        if not valid or login is None or login == draft.login:
            return False
        if self.user_by_login(login) is not None:
            raise bad_request(f"A user with login '{login}' already exists")
        draft.login = login
        if draft.local or draft.external_provider == SONARQUBE_PROVIDER:
            draft.external_login = draft.external_id = login
        return True

    @staticmethod
    def _change_name(draft: User, name: str | Unset | None, messages: list[str]) -> bool:
        if name is UNSET or not rules.validate_name(name, messages) or name is None or name == draft.name:
            return False
        draft.name = name
        return True

    @staticmethod
    def _change_email(draft: User, email: str | Unset | None, messages: list[str]) -> bool:
        if email is UNSET or not rules.validate_email_length(email, messages) or email == draft.email:
            return False
        draft.email = email
        return True

    def _change_identity(self, draft: User, changes: UserChanges) -> bool:
        requested = changes.identity
        if all(part is UNSET for part in requested):
            return False
        provider, login, id_ = (None if part is UNSET else part for part in requested)
        if provider is None and login is None and id_ is None:
            target = (SONARQUBE_PROVIDER, draft.login, draft.login, True)
        else:
            merged = (
                provider or draft.external_provider,
                login or draft.external_login,
                id_ or draft.external_id,
            )
            target = (*merged, False)
        if target == (draft.external_provider, draft.external_login, draft.external_id, draft.local):
            return False
        draft.external_provider, draft.external_login, draft.external_id, draft.local = target
        if not draft.local:
            draft.password = None
        self._check_identity_unique(draft.external_id, draft.external_provider, draft.uuid)
        return True

    @staticmethod
    def _change_password(draft: User, password: str | Unset | None, messages: list[str]) -> bool:
        if password is UNSET or not rules.validate_password(password, messages):
            return False
        if not draft.local:
            messages.append("Password cannot be changed when external authentication is used")
            return False
        draft.password = password
        return True

    def _change_scm_accounts(self, draft: User, changes: UserChanges, messages: list[str]) -> bool:
        if changes.scm_accounts is UNSET:
            return False
        accounts = rules.sanitize_scm_accounts(changes.scm_accounts or ())
        if set(accounts) == set(draft.scm_accounts):
            return False
        email = changes.email if isinstance(changes.email, str) else draft.email
        if not accounts or self._validate_scm_accounts(accounts, draft.login, email, draft.uuid, messages):
            draft.scm_accounts = accounts
        return True

    def _validate_scm_accounts(
        self,
        accounts: Iterable[str],
        login: str,
        email: str | None,
        own_uuid: str | None,
        messages: list[str],
    ) -> bool:
        valid = True
        for account in accounts:
            if account in {login, email}:
                messages.append("Login and email are automatically considered as SCM accounts")
                valid = False
                continue
            holders = [
                f"{other.name or other.login} ({other.login})"
                for other in self.users.values()
                if other.uuid != own_uuid and account in {other.login, other.email, *other.scm_accounts}
            ]
            if holders:
                messages.append(
                    f"The scm account '{account}' is already used by user(s) : '{', '.join(holders)}'"
                )
                valid = False
        return valid

    def _check_identity_unique(self, external_id: str, provider: str, own_uuid: str | None) -> None:
        if self._users_by_identity.get((external_id, provider), set()) - {own_uuid}:
            message = (
                f"A user with provider id '{external_id}' and identity provider '{provider}' already exists"
            )
            raise bad_request(message)

    # --- users: deactivate and anonymize ---------------------------------------------------------

    def deactivate(self, user: User, *, anonymize: bool) -> User:
        """Deactivate (idempotent): memberships, tokens, permissions go; e-mail and password are cleared."""
        if self.count_admins(without_user=user.uuid) == 0:
            raise bad_request("User is last administrator, and cannot be deactivated")
        for token in self.tokens_of(user):
            del self.tokens[token.value]
        for group_uuid in list(self._groups_of_user[user.uuid]):
            self._remove_membership(self.groups[group_uuid], user)
        user.permissions = frozenset()
        user.active = False
        user.email = user.password = None
        user.last_connection = user.sonarlint_last_connection = None
        if anonymize:
            self.anonymize(user)
        return self.users[user.uuid]

    def anonymize(self, user: User) -> None:
        """Replace login and name with `sq-removed-<random>`: the old login can never be reactivated."""
        login = self._anonymous_login()
        draft = copy.copy(user)
        draft.login = draft.name = draft.external_login = draft.external_id = login
        draft.external_provider = SONARQUBE_PROVIDER
        draft.local = True
        self._replace_user(user, draft)

    def _anonymous_login(self) -> str:
        while True:
            login = "sq-removed-" + self._random_text(6, string.ascii_letters + string.digits)
            if self.user_by_login(login) is None:
                return login

    # --- groups ----------------------------------------------------------------------------------

    def create_group(self, name: str, description: str | None) -> Group:
        rules.check_group_name(name)
        self._check_group_name_free(name)
        return self._add_group(Group(self.new_uuid(), name, description))

    def update_group(self, group: Group, *, name: str | None, description: str | Unset | None) -> None:
        """Rename (when `name` is given and differs; 9.9 also checks an unchanged name) and re-describe."""
        self.check_not_default(group)
        if name is not None and (name != group.name or self.profile.rename_to_same_name_fails):
            rules.check_group_name(name)
            self._check_group_name_free(name)
            del self._group_by_name[group.name]
            group.name = name
            self._group_by_name[name] = group.uuid
        if description is not UNSET:
            group.description = description

    def delete_group(self, group: Group) -> None:
        self.check_not_default(group)
        if self.count_admins(without_group=group.uuid) == 0:
            raise bad_request("The last system admin group cannot be deleted")
        for user_uuid in list(self._members_of_group[group.uuid]):
            self._remove_membership(group, self.users[user_uuid])
        del self.groups[group.uuid], self._group_by_name[group.name]

    def add_member(self, group: Group, user: User) -> Membership:
        """Add a membership; 9.9 ignores a present one, later versions refuse it."""
        self.check_not_default(group)
        present = self.membership_of(group, user)
        if present is not None and not self.profile.idempotent_add_user:
            raise bad_request(f"User '{user.login}' is already a member of group '{group.name}'")
        return present or self._add_membership(group, user)

    def remove_member(self, group: Group, user: User) -> None:
        """Remove a membership (idempotent) unless it is the last way anyone holds `admin`."""
        self.check_not_default(group)
        if self.count_admins(without_membership=(group.uuid, user.uuid)) == 0:
            raise bad_request("The last administrator user cannot be removed")
        if self.is_member(group, user):
            self._remove_membership(group, user)

    def check_not_default(self, group: Group) -> None:
        if group.default:
            raise bad_request(f"Default group '{group.name}' cannot be used to perform this action")

    def _check_group_name_free(self, name: str) -> None:
        if self.group_by_name(name) is not None:
            raise bad_request(f"Group '{name}' already exists")

    # --- tokens ----------------------------------------------------------------------------------

    def generate_token(self, user: User, name: str, type_: str, expires_at: datetime | None) -> Token:
        if any(token.name == name for token in self.tokens_of(user)):
            raise bad_request(f"A user token for login '{user.login}' and name '{name}' already exists")
        value = _TOKEN_PREFIXES[type_] + self._random_text(40, string.hexdigits[:16])
        token = Token(value, name, user.uuid, type_, now(), expires_at)
        self.tokens[value] = token
        return token

    def token_user(self, value: str) -> tuple[Token, User] | None:
        """The token and its active user, unless unknown or expired."""
        token = self.tokens.get(value)
        if token is None or (token.expires_at is not None and token.expires_at <= now()):
            return None
        user = self.users[token.user_uuid]
        return (token, user) if user.active else None

    def record_connection(self, user: User) -> None:
        current = now()
        if user.last_connection is None or current - user.last_connection >= _LAST_CONNECTION_PRECISION:
            user.last_connection = current

    # --- settings and identity providers ---------------------------------------------------------

    def setting(self, key: str) -> tuple[str, bool] | None:
        """The value of a setting and whether it is inherited (a default), or None when unset."""
        if key in self.settings:
            return self.settings[key], False
        if key in SETTING_DEFAULTS:
            return SETTING_DEFAULTS[key], True
        return None

    @property
    def saml_enabled(self) -> bool:
        return self.settings.get(SAML_ENABLED) == "true"

    def identity_providers(self) -> list[str]:
        """Keys of the enabled identity providers: `saml` when SAML authentication is on."""
        return [SAML_PROVIDER] if self.saml_enabled else []

    def accepts_provider(self, provider: str) -> bool:
        """An enabled identity provider's key, or an LDAP one (`LDAP…`; 9.9: `LDAP_…`)."""
        return provider in self.identity_providers() or provider.startswith(self.profile.ldap_prefix)

    def provider_error(self, label: str, provider: str) -> EmulatorError:
        enabled = ", ".join(self.identity_providers())
        return bad_request(
            f"Value of {label} ({provider}) must be one of: [{enabled}] or [LDAP, LDAP_{{serverKey}}]"
        )

    # --- storage ---------------------------------------------------------------------------------

    def _store_user(self, user: User) -> User:
        self.users[user.uuid] = user
        self._user_by_login[user.login] = user.uuid
        self._users_by_external_login[user.external_login].add(user.uuid)
        self._users_by_identity[user.external_id, user.external_provider].add(user.uuid)
        return user

    def _replace_user(self, old: User, new: User) -> None:
        """`new` in place of `old` (same uuid): stored users are only ever changed through this."""
        del self._user_by_login[old.login]
        self._users_by_external_login[old.external_login].discard(old.uuid)
        self._users_by_identity[old.external_id, old.external_provider].discard(old.uuid)
        self._store_user(new)

    def _add_group(self, group: Group) -> Group:
        self.groups[group.uuid] = group
        self._group_by_name[group.name] = group.uuid
        return group

    def _add_membership(self, group: Group, user: User) -> Membership:
        present = self.membership_of(group, user)
        if present is not None:
            return present
        membership = Membership(self.new_uuid(), group.uuid, user.uuid)
        self.memberships[membership.uuid] = membership
        self._membership_by_pair[group.uuid, user.uuid] = membership.uuid
        self._groups_of_user[user.uuid].add(group.uuid)
        self._members_of_group[group.uuid].add(user.uuid)
        return membership

    def _remove_membership(self, group: Group, user: User) -> None:
        membership_uuid = self._membership_by_pair.pop((group.uuid, user.uuid))
        del self.memberships[membership_uuid]
        self._groups_of_user[user.uuid].discard(group.uuid)
        self._members_of_group[group.uuid].discard(user.uuid)


def now() -> datetime:
    return datetime.now(UTC)
