"""Reconcile: find what changed in SonarQube behind the bridge's back, and put it right.

Entra sends each change once and never reads group members back, so whatever changes in SonarQube on its
own stays wrong until something compares: a membership an administrator removed or added in SonarQube's UI,
an account a SAML sign-in reactivated, a SAML link edited away, a group renamed or deleted, a lost store.
`reconcile` compares what the store says Entra wants with SonarQube's real state and, unless `dry_run`,
repairs each difference; every difference is one `Finding`, every repair one audit event.

SonarQube calls: two user listings (active, deactivated), one group listing, SAML's settings (`saml_link
auto`), one member listing per managed group; one look-up per record the listings miss; then the repairs,
each replay-safe as the client's calls are. A failed repair is reported and the run goes on.

Rules kept: protected logins (the token's owner, `protected_logins`) are never acted on; `sonar-users` is
SonarQube's own (never compared); `sonar-administrators` is never renamed or recreated, only its provisioned
members are added or removed; members that no record holds are never removed (they are not Entra's to take
away). When the store holds no record at all (it was lost), and SonarQube has uuids (10.4+), SAML-linked
accounts and groups are recorded under their uuid, so that Entra's ids resolve again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from contextlib import suppress
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Final, Literal, TypeVar

import structlog

from scim_bridge.config import ConfigError, FileSecret
from scim_bridge.provisioning.collaborators import utc_now
from scim_bridge.provisioning.lifecycle import (
    adopted_group_record,
    adopted_user_record,
    every_record,
)
from scim_bridge.provisioning.locks import KeyedLocks, id_key
from scim_bridge.provisioning.mapping import (
    sonar_profile,
    user_resource,
)
from scim_bridge.provisioning.protections import PROTECTED_GROUPS, login_protection
from scim_bridge.scim.errors import ScimError
from scim_bridge.sonarqube import (
    DEFAULT_GROUP,
    SAML_PROVIDER,
    AlreadyExists,
    GroupRef,
    NotFound,
    SonarQubeError,
    Unauthorized,
    UserRef,
)
from scim_bridge.store.errors import StoreConflict, StoreError
from scim_bridge.store.records import AuditEvent, GroupRecord, UserRecord

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable
    from contextlib import AbstractAsyncContextManager
    from datetime import datetime

    from scim_bridge.config import BridgeSettings
    from scim_bridge.sonarqube import SonarGroup, SonarQubeClient, SonarQubeConnection, SonarUser
    from scim_bridge.store.base import StateStore
    from scim_bridge.store.records import ResourceRecord, ResourceType

log = structlog.get_logger("scim_bridge.reconcile")

FindingKind = Literal[
    "member_missing",  # Entra wants the membership, the user is active, SonarQube lacks it
    "member_unwanted",  # SonarQube has a membership of a managed group that Entra does not want
    "user_reactivated",  # active in SonarQube (a SAML sign-in, an administrator), Entra wants it inactive
    "user_deactivated",  # deactivated in SonarQube, Entra wants it active
    "saml_link_lost",  # active, linking applies, SonarQube's external identity is not saml/userName
    "user_login_changed",  # v2: the account behind the uuid has another login now (renamed or anonymised)
    "user_gone",  # no SonarQube account, active or deactivated: nothing can be recreated safely
    "group_renamed",  # v2: the group behind the uuid has another name
    "group_deleted",  # v2: no group has the uuid any more
    "group_missing",  # v1: no group has the name (deleted, or renamed: v1 cannot tell)
    "user_unrecorded",  # v2: a SAML-linked account no record holds (a lost store)
    "group_unrecorded",  # v2: a group no record holds (a lost store)
    "ids_not_rebuildable",  # v1: SAML-linked accounts no record holds, and no uuids to rebuild ids from
    "check_failed",  # SonarQube or the store failed while one record was compared
]
Outcome = Literal["repaired", "would_repair", "failed", "skipped", "unrepairable"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("repaired", "would_repair", "failed", "skipped", "unrepairable")
UNRESOLVED: Final[frozenset[Outcome]] = frozenset({"failed", "unrepairable"})
# Entra deleted it (the bridge deactivated or anonymised it and forgot it): never recorded again.
DELETED_ACTIONS: Final = frozenset({"user_deleted", "user_anonymized", "group_deleted"})
HALF_DONE: Final = "a request of Entra's stopped half-way (the record is not settled)"
_EXAMPLES: Final = 5  # logins named in a finding about many accounts

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One difference between what Entra wants and what SonarQube has, and what became of it."""

    kind: FindingKind
    resource_type: ResourceType
    scim_id: str | None
    sonar_key: str | None  # the SonarQube login or group name
    found: str  # what was found, in a sentence
    action: str  # what was done, or would be done (dry run), or would be needed
    outcome: Outcome
    member: str | None = None  # the member's login, for membership findings (the subject is the group)
    reason: str | None = None  # why it failed or was skipped

    def as_json(self) -> dict[str, str | None]:
        return asdict(self)


def summary(findings: Iterable[Finding]) -> dict[str, int]:
    """How many findings had each outcome (every outcome named), and how many there were."""
    counted = Counter(finding.outcome for finding in findings)
    return {"findings": sum(counted.values())} | {outcome: counted[outcome] for outcome in OUTCOMES}


def succeeded(findings: Iterable[Finding]) -> bool:
    """Whether nothing was left wrong: every difference repaired, would be repaired, or skipped on purpose."""
    return all(finding.outcome not in UNRESOLVED for finding in findings)


async def reconcile(
    store: StateStore,
    client: SonarQubeClient,
    settings: BridgeSettings,
    *,
    actor: str,
    dry_run: bool,
    on_finding: Callable[[Finding], None],
    progress: Callable[[int, int], None] | None = None,
    locks: KeyedLocks | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> list[Finding]:
    """Compare the store with SonarQube and, unless `dry_run`, repair every difference.

    `actor` is the login of the token's owner (protected, and named in the audit trail); `on_finding` hears of
    each finding as it is made; `progress(done, total)` after each record compared; `locks` are the running
    bridge's per-resource locks (inside `serve`), so that a repair never interleaves with Entra's request on
    the same resource. SonarQube failures of the first listings raise `SonarQubeError`; later ones are
    findings.
    """
    run = _Run(
        store=store,
        client=client,
        settings=settings,
        actor=actor,
        dry_run=dry_run,
        on_finding=on_finding,
        locks=locks,
        clock=clock,
    )
    return await run.everything(progress or _no_progress)


class ReconcileError(Exception):
    """Reconcile cannot run now: SonarQube is not UP, or refuses the token; the message says why."""


def service_token(settings: BridgeSettings) -> str | None:
    """The SonarQube token reconcile uses: `sonar_token_file` (re-read), else `sonar_token`."""
    if settings.sonar_token_file is not None:
        return FileSecret(settings.sonar_token_file).get()
    return None if settings.sonar_token is None else settings.sonar_token.get_secret_value()


async def reconcile_now(
    connection: SonarQubeConnection,
    store: StateStore,
    settings: BridgeSettings,
    *,
    dry_run: bool,
    on_finding: Callable[[Finding], None] = lambda _finding: None,
    progress: Callable[[int, int], None] | None = None,
    locks: KeyedLocks | None = None,
) -> list[Finding]:
    """`reconcile` with the token of the settings, as its owner: what `scim-bridge reconcile` and `serve`'s
    periodic runs do. `ConfigError` without a token; `ReconcileError` when SonarQube is not UP or the token's
    owner may not administer it; `SonarQubeError` when SonarQube fails the first listings."""
    token = service_token(settings)
    if not token:
        raise ConfigError(
            "reconcile needs the SonarQube token of an administrator: set sonar_token or sonar_token_file "
            "(SCIM_BRIDGE_SONAR_TOKEN or SCIM_BRIDGE_SONAR_TOKEN_FILE, or --sonar-token)"
        )
    if not connection.state.up:
        raise ReconcileError(connection.state.detail)
    client = connection.client(token)
    try:
        caller = await client.current_user()
    except Unauthorized as exc:
        raise ReconcileError(
            "SonarQube does not accept sonar_token (unknown, expired, or its user deactivated)"
        ) from exc
    if not caller.is_admin:
        raise ReconcileError(f"the token's user {caller.login!r} may not administer SonarQube")
    return await reconcile(
        store,
        client,
        settings,
        actor=caller.login,
        dry_run=dry_run,
        on_finding=on_finding,
        progress=progress,
        locks=locks,
    )


async def reconcile_periodically(
    interval: float,
    run: Callable[[], Awaitable[list[Finding]]],
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Inside `serve`: `run()` (a `reconcile`), log `reconcile.finished` with its counts, sleep `interval`
    seconds, and again, until cancelled. A run that fails is logged as `reconcile.failed`, never fatal."""
    if interval <= 0:
        raise ValueError("reconcile_interval must be positive to reconcile periodically")
    while True:
        try:
            findings = await run()
        except Exception as exc:  # noqa: BLE001 - the loop must outlive any one run; the log says what failed
            log.warning("reconcile.failed", error=type(exc).__name__, reason=str(exc)[:300])
        else:
            log.info("reconcile.finished", **summary(findings))
        await sleep(interval)


def _no_progress(_done: int, _total: int) -> None:
    """No progress is shown."""


# -- what a run keeps --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Subject:
    """What a finding is about, and what its audit event names."""

    resource_type: ResourceType
    scim_id: str | None
    sonar_key: str | None

    @classmethod
    def of(cls, record: ResourceRecord) -> _Subject:
        return cls(record.resource_type, record.scim_id, record.sonar_key)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Drift:
    """A difference before its outcome is known."""

    kind: FindingKind
    subject: _Subject
    found: str
    action: str
    audit_action: str | None = None  # None: nothing to audit (reports only)
    member: str | None = None
    detail: str | None = None  # for the audit event

    def finding(self, outcome: Outcome, reason: str | None = None) -> Finding:
        return Finding(
            kind=self.kind,
            resource_type=self.subject.resource_type,
            scim_id=self.subject.scim_id,
            sonar_key=self.subject.sonar_key,
            found=self.found,
            action=self.action,
            outcome=outcome,
            member=self.member,
            reason=reason,
        )


@dataclass(slots=True)
class _SonarUsers:
    """SonarQube's accounts, both states, as the listings found them."""

    by_id: dict[str, SonarUser]
    by_login: dict[str, SonarUser]

    @classmethod
    def of(cls, users: Iterable[SonarUser]) -> _SonarUsers:
        listed = list(users)
        return cls({user.id: user for user in listed if user.id}, {user.login: user for user in listed})


@dataclass(slots=True)
class _Records:
    """The store's users, indexed the ways SonarQube names them; rebuilt records join as they are made."""

    by_scim_id: dict[str, UserRecord]
    by_sonar_id: dict[str, UserRecord]
    by_login: dict[str, UserRecord]

    @classmethod
    def of(cls, records: Iterable[UserRecord]) -> _Records:
        index = cls({}, {}, {})
        for record in records:
            index.add(record)
        return index

    def add(self, record: UserRecord) -> None:
        self.by_scim_id[record.scim_id] = record
        self.by_login[record.sonar_login] = record
        if record.sonar_id:
            self.by_sonar_id[record.sonar_id] = record

    def member(self, ref: UserRef) -> UserRecord | None:
        """The record of a SonarQube member: by uuid where SonarQube gives one, else by login."""
        found = self.by_sonar_id.get(ref.id) if ref.id else None
        return found or self.by_login.get(ref.login)


class _Run:
    """One reconcile run: the snapshot it compares, what it has repaired so far, and its findings."""

    def __init__(
        self,
        *,
        store: StateStore,
        client: SonarQubeClient,
        settings: BridgeSettings,
        actor: str,
        dry_run: bool,
        on_finding: Callable[[Finding], None],
        locks: KeyedLocks | None,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._sonar = client
        self._settings = settings
        self._actor = actor
        self._dry_run = dry_run
        self._on_finding = on_finding
        # Run by hand beside replicas on one PostgreSQL store, the store's locks keep runs and requests apart.
        self._locks = locks if locks is not None else KeyedLocks(across=store.hold)
        self._clock = clock
        self._run_id = f"reconcile-{uuid.uuid4().hex[:12]}"  # the audit events' request id: one per run
        self._findings: list[Finding] = []
        self._records = _Records.of(())
        self._accounts = _SonarUsers.of(())
        self._groups_by_id: dict[str, SonarGroup] = {}
        self._groups_by_name: dict[str, SonarGroup] = {}
        self._active: dict[str, bool] = {}  # scim id → active in SonarQube, as this run leaves it
        self._links = False

    @property
    def _has_ids(self) -> bool:
        return self._sonar.capabilities.has_resource_ids

    async def everything(self, progress: Callable[[int, int], None]) -> list[Finding]:
        users = await every_record(self._store.list_users)
        groups = await every_record(self._store.list_groups)
        self._records = _Records.of(users)
        active, deactivated = await self._sonar.users(active=True), await self._sonar.users(active=False)
        self._accounts = _SonarUsers.of([*active, *deactivated])
        sonar_groups = await self._sonar.groups()
        self._groups_by_id = {group.id: group for group in sonar_groups if group.id}
        self._groups_by_name = {group.name: group for group in sonar_groups}
        self._links = await self._linking()
        if not users and not groups:
            # A store without a single record was lost (or is new beside a SonarQube provisioned before).
            # Only then are unrecorded accounts and groups taken as Entra's: otherwise they are accounts
            # that signed in through SAML by themselves and groups made in SonarQube, not Entra's to manage.
            if self._has_ids:
                await self._rebuild(groups, sonar_groups)
            else:
                await self._tell_unrebuildable()
        records: list[UserRecord | GroupRecord] = [*users, *groups]
        progress(0, len(records))
        for done, record in enumerate(records, start=1):
            async with self._held(record):
                await self._guarded(_Subject.of(record), self._compare(record))
            progress(done, len(records))
        return self._findings

    async def _compare(self, snapshot: UserRecord | GroupRecord) -> None:
        """Compare one record as it is now; one that Entra changed since the run began waits for the next run
        (the SonarQube listings predate the change)."""
        if isinstance(snapshot, UserRecord):
            user = await self._store.get_user(snapshot.scim_id)
            if user is not None and user.version == snapshot.version:
                await self._check_user(user)
            return
        group = await self._store.get_group(snapshot.scim_id)
        if group is not None and group.version == snapshot.version:
            await self._check_group(group)

    # -- users -------------------------------------------------------------------------------------------
    async def _check_user(self, record: UserRecord) -> None:
        account = await self._account(record)
        if account is None:
            drift = _Drift(
                kind="user_gone",
                subject=_Subject.of(record),
                found=f"SonarQube has no account {record.sonar_login!r}{_uuid_text(record.sonar_id)}, "
                "active or deactivated",
                action="none: an account cannot be recreated safely; restore it in SonarQube, or unassign "
                "the user in Entra",
            )
            self._report(drift, "unrepairable")
            return
        self._active[record.scim_id] = account.active
        if account.login != record.sonar_login:
            self._report(_login_changed(record, account), "unrepairable")
        elif record.active and not account.active:
            await self._reactivate(record, account)
        elif account.active and not record.active:
            await self._deactivate(record, account)
        elif record.active and self._links and not _linked_as(account, record.user_name):
            await self._relink(record, account)

    async def _account(self, record: UserRecord) -> SonarUser | None:
        """The record's SonarQube account from the listings, else looked up (a listing may stop short)."""
        if self._has_ids and record.sonar_id:
            listed = self._accounts.by_id.get(record.sonar_id)
            return listed or await self._sonar.get_user(record.sonar_id)
        return self._accounts.by_login.get(record.sonar_login) or await self._sonar.find_user(
            record.sonar_login
        )

    async def _reactivate(self, record: UserRecord, account: SonarUser) -> None:
        linked = ", link it to SAML" if self._links else ""
        drift = _Drift(
            kind="user_deactivated",
            subject=_Subject.of(record),
            found=f"deactivated in SonarQube ({_why(record, 'an administrator or SonarQube did it')}), Entra "
            "wants it active",
            action=f"reactivate it{linked} and give back its memberships",
            audit_action="reconcile_user_reactivated",
        )

        async def repair() -> None:
            profile = sonar_profile(user_resource(record).resource())  # name and e-mail as Entra sent them
            ref = account.ref
            with suppress(AlreadyExists):  # active again meanwhile: what was asked
                # SonarQube reactivates through create, with the SAML link lost (docs/sonarqube.md SQ9).
                ref = (await self._sonar.create_user(account.login, profile.name, profile.email)).ref
            self._active[record.scim_id] = True
            if self._links:
                await self._sonar.link_identity(ref, SAML_PROVIDER, record.user_name)
            await self._restore_memberships(record, ref)
            await self._settled(record)

        await self._settle(drift, repair, self._protection(account.login))

    async def _restore_memberships(self, record: UserRecord, ref: UserRef) -> None:
        """SonarQube dropped the memberships at deactivation; give back the ones Entra asked for."""
        for group_id in sorted(await self._store.groups_of(record.scim_id)):
            group = await self._store.get_group(group_id)
            if group is None or group.sonar_name == DEFAULT_GROUP:
                continue
            with suppress(NotFound):  # the group is gone: its own comparison recreates it with its members
                await self._sonar.add_member(_group_ref(group), ref)

    async def _deactivate(self, record: UserRecord, account: SonarUser) -> None:
        drift = _Drift(
            kind="user_reactivated",
            subject=_Subject.of(record),
            found=f"active in SonarQube ({_why(record, 'a SAML sign-in or an administrator did it')}), Entra "
            "wants it deactivated",
            action="deactivate it",
            audit_action="reconcile_user_deactivated",
        )

        async def repair() -> None:
            await self._sonar.deactivate_user(account.ref)
            self._active[record.scim_id] = False
            await self._settled(record)

        await self._settle(drift, repair, self._protection(account.login))

    async def _relink(self, record: UserRecord, account: SonarUser) -> None:
        drift = _Drift(
            kind="saml_link_lost",
            subject=_Subject.of(record),
            found=f"its identity in SonarQube is {_identity(account)}, not saml/{record.user_name}",
            action=f"link it to SAML as {record.user_name!r}",
            audit_action="reconcile_user_linked",
        )

        async def repair() -> None:
            await self._sonar.link_identity(account.ref, SAML_PROVIDER, record.user_name)
            await self._settled(record)

        await self._settle(drift, repair, self._protection(account.login))

    async def _settled(self, record: UserRecord) -> None:
        """SonarQube now has what the record asks for. Its version stays: nothing Entra sees has changed."""
        if record.settled:
            return
        try:
            await self._store.update_user(replace(record, settled=True), expected_version=record.version)
        except StoreConflict:
            log.info("reconcile.record_changed", scim_id=record.scim_id)  # Entra's request settles it

    # -- groups ------------------------------------------------------------------------------------------
    async def _check_group(self, record: GroupRecord) -> None:
        if record.sonar_name == DEFAULT_GROUP:
            return  # SonarQube's own: every active user is a member (docs/sonarqube.md SQ19)
        group = await self._group(record)
        if group is not None and group.name != record.sonar_name:
            group = await self._rename_back(record, group)
        elif group is None:
            group = await self._recreate(record)
            if group is None:  # not recreated: failed, skipped, or a dry run
                if self._dry_run and record.sonar_name not in PROTECTED_GROUPS:
                    await self._compare_members(record, _group_ref(record), [])
                return
        await self._compare_members(record, group.ref, await self._sonar.group_members(group.ref))

    async def _group(self, record: GroupRecord) -> SonarGroup | None:
        """The record's SonarQube group: by uuid where SonarQube has them (a renamed group is still found),
        else by its name."""
        if self._has_ids and record.sonar_id:
            listed = self._groups_by_id.get(record.sonar_id)
            return listed or await self._sonar.get_group(record.sonar_id)
        return self._groups_by_name.get(record.sonar_name)

    async def _rename_back(self, record: GroupRecord, group: SonarGroup) -> SonarGroup:
        drift = _Drift(
            kind="group_renamed",
            subject=_Subject.of(record),
            found=f"renamed in SonarQube to {group.name!r}",
            action=f"rename it back to {record.sonar_name!r}",
            audit_action="reconcile_group_renamed",
        )

        async def repair() -> SonarGroup:
            return await self._sonar.rename_group(group.ref, record.sonar_name)

        return await self._settle(drift, repair, _group_protection(record.sonar_name)) or group

    async def _recreate(self, record: GroupRecord) -> SonarGroup | None:
        if self._has_ids and record.sonar_id:
            kind: FindingKind = "group_deleted"
            found = f"no SonarQube group has its uuid {record.sonar_id} any more: deleted"
        else:
            kind = "group_missing"
            found = "SonarQube has no group of that name: deleted, or renamed (the v1 API cannot tell which)"
        drift = _Drift(
            kind=kind,
            subject=_Subject.of(record),
            found=found,
            action="recreate it and add its members back",
            audit_action="reconcile_group_recreated",
        )

        async def repair() -> SonarGroup:
            # A group of that name made by hand meanwhile is taken as the recreated one.
            group = self._groups_by_name.get(record.sonar_name) or await self._sonar.create_group(
                record.sonar_name
            )
            if group.id is not None and group.id != record.sonar_id:
                await self._store.update_group(
                    replace(record, sonar_id=group.id), expected_version=record.version
                )
            return group

        return await self._settle(drift, repair, _group_protection(record.sonar_name))

    async def _compare_members(self, record: GroupRecord, group: GroupRef, members: list[UserRef]) -> None:
        wanted = await self._store.members_of(record.scim_id)
        present: set[str] = set()
        for member in members:
            user = self._records.member(member)
            if user is None:
                continue  # not provisioned through SCIM: not Entra's to take out (a local account, `admin`)
            if user.scim_id in wanted:
                present.add(user.scim_id)
            elif user.active:
                # (A member Entra wants deactivated is left: its deactivation ends every membership.)
                await self._remove(record, group, member, user)
        for user_id in sorted(wanted - present):
            user = self._records.by_scim_id.get(user_id)
            # Entra's memberships of a deactivated user wait in the store for its reactivation.
            if user is not None and user.active and self._active.get(user_id, False):
                await self._add(record, group, user)

    async def _add(self, record: GroupRecord, group: GroupRef, user: UserRecord) -> None:
        login = self._login_of(user)
        drift = _Drift(
            kind="member_missing",
            subject=_Subject.of(record),
            found=f"{login!r} is not a member in SonarQube, Entra wants it",
            action="add the membership back",
            audit_action="reconcile_member_added",
            member=login,
            detail=f"member {user.scim_id} ({login})",
        )
        await self._settle(
            drift,
            lambda: self._sonar.add_member(group, UserRef(login, user.sonar_id)),
            self._protection(login),
        )

    async def _remove(self, record: GroupRecord, group: GroupRef, member: UserRef, user: UserRecord) -> None:
        drift = _Drift(
            kind="member_unwanted",
            subject=_Subject.of(record),
            found=f"{member.login!r} is a member in SonarQube, Entra does not want it",
            action="remove the membership",
            audit_action="reconcile_member_removed",
            member=member.login,
            detail=f"member {user.scim_id} ({member.login})",
        )
        remove = lambda: self._sonar.remove_member(group, member)  # noqa: E731 - one call, named for reading
        await self._settle(drift, remove, self._protection(member.login))

    def _login_of(self, user: UserRecord) -> str:
        """The user's login in SonarQube now: the listing's, which a v2 uuid finds even after a rename."""
        account = self._accounts.by_id.get(user.sonar_id) if user.sonar_id else None
        return user.sonar_login if account is None else account.login

    # -- a lost store -------------------------------------------------------------------------------------
    async def _rebuild(self, groups: list[GroupRecord], sonar_groups: list[SonarGroup]) -> None:
        """SonarQube 10.4+: record every SAML-linked account and every group that no record holds, under its
        uuid, which is the SCIM id Entra has for it: Entra's ids resolve again after a lost store."""
        for account in sorted(self._accounts.by_login.values(), key=lambda account: account.login):
            if account.id and account.external_login and self._unrecorded(account):
                subject = _Subject("User", account.id, account.login)
                await self._guarded(subject, self._rebuild_user(account, account.id, account.external_login))
        names = {group.sonar_name for group in groups}
        ids = {group.sonar_id for group in groups if group.sonar_id} | {group.scim_id for group in groups}
        for group in sorted(sonar_groups, key=lambda group: group.name):
            if group.id and group.name != DEFAULT_GROUP and group.name not in names and group.id not in ids:
                await self._guarded(
                    _Subject("Group", group.id, group.name), self._rebuild_group(group, group.id)
                )

    def _unrecorded(self, account: SonarUser) -> bool:
        """A SAML-linked account that no record holds, by login or uuid."""
        records = self._records
        return account.saml_linked and not (
            account.login in records.by_login
            or (
                account.id is not None
                and (account.id in records.by_sonar_id or account.id in records.by_scim_id)
            )
        )

    async def _rebuild_user(self, account: SonarUser, uuid_: str, user_name: str) -> None:
        if await self._forgotten(uuid_):
            return  # Entra deleted it: the bridge deactivated and forgot it on purpose
        state = "an active" if account.active else "a deactivated"
        drift = _Drift(
            kind="user_unrecorded",
            subject=_Subject("User", uuid_, account.login),
            found=f"{state} SAML-linked account that no record holds",
            action=f"record it under its uuid, with userName {user_name!r}",
            audit_action="reconcile_user_rebuilt",
        )
        holder = await self._store.find_user(user_name=user_name)
        if holder is not None:
            self._report(drift, "unrepairable", f"userName {user_name!r} is held by id {holder.scim_id}")
            return
        record = adopted_user_record(user_name, account, self._clock())

        async def insert() -> bool:
            await self._store.insert_user(record)
            return True

        skip = self._protection(account.login)
        if await self._settle(drift, insert, skip) or (self._dry_run and skip is None):
            # Its memberships count for the groups rebuilt next (in a dry run: would count).
            self._records.add(record)
            self._active[record.scim_id] = account.active

    async def _rebuild_group(self, group: SonarGroup, uuid_: str) -> None:
        if await self._forgotten(uuid_):
            return
        members = await self._sonar.group_members(group.ref)
        member_ids = sorted({user.scim_id for member in members if (user := self._records.member(member))})
        drift = _Drift(
            kind="group_unrecorded",
            subject=_Subject("Group", uuid_, group.name),
            found="a group that no record holds",
            action=f"record it under its uuid, with its {len(member_ids)} provisioned member(s) as Entra's",
            audit_action="reconcile_group_rebuilt",
            detail=f"members {len(member_ids)}",
        )
        holder = await self._store.find_group(display_name=group.name)
        if holder is not None:
            self._report(drift, "unrepairable", f"displayName {group.name!r} is held by id {holder.scim_id}")
            return
        record = adopted_group_record(group, self._clock())

        async def insert() -> bool:
            # With its members: a group recorded without them would lose them at the next run.
            await self._store.insert_group(record, member_ids)
            return True

        await self._settle(drift, insert)

    async def _tell_unrebuildable(self) -> None:
        """SonarQube before 10.4 (v1): no uuids, so a lost store's ids are lost; say so when it shows."""
        orphans = [
            account.login
            for account in sorted(self._accounts.by_login.values(), key=lambda account: account.login)
            if account.saml_linked
            and account.login not in self._records.by_login
            and not await self._forgotten_login(account.login)
        ]
        if not orphans:
            return
        examples = ", ".join(orphans[:_EXAMPLES]) + (", …" if len(orphans) > _EXAMPLES else "")
        drift = _Drift(
            kind="ids_not_rebuildable",
            subject=_Subject("User", None, None),
            found=f"{len(orphans)} SAML-linked account(s) that no record holds: {examples}",
            action=f"none: SonarQube {self._sonar.capabilities.version} has no uuids to rebuild Entra's ids "
            "from; if the store was lost, restart provisioning in Entra (clearing its state), which matches "
            "every user again by userName",
        )
        self._report(drift, "unrepairable")

    async def _forgotten(self, scim_id: str) -> bool:
        """Whether the bridge deleted this resource for Entra (its audit trail outlives the record)."""
        events = await self._store.audit_trail(scim_id=scim_id, limit=1)
        return bool(events) and events[0].action in DELETED_ACTIONS

    async def _forgotten_login(self, login: str) -> bool:
        events = await self._store.audit_trail(sonar_key=login, limit=1)
        return bool(events) and events[0].action in DELETED_ACTIONS

    # -- repairs, findings and the audit trail ---------------------------------------------------------
    async def _settle(
        self, drift: _Drift, repair: Callable[[], Awaitable[T]], skip: str | None = None
    ) -> T | None:
        """Report the drift and, unless skipped or a dry run, repair it: the repair's result, None when not
        repaired. A failure is a finding, never the end of the run."""
        if skip is not None:
            self._report(drift, "skipped", skip)
            return None
        if self._dry_run:
            self._report(drift, "would_repair")
            return None
        try:
            result = await repair()
        except (SonarQubeError, StoreError, ScimError) as exc:
            reason = _reason(exc)
            await self._audit(drift, "failed", reason)
            self._report(drift, "failed", reason)
            return None
        await self._audit(drift, "ok")
        self._report(drift, "repaired")
        return result

    async def _guarded(self, subject: _Subject, check: Awaitable[None]) -> None:
        """Run one record's comparison; SonarQube or the store failing there is a finding about it."""
        try:
            await check
        except (SonarQubeError, StoreError) as exc:
            drift = _Drift(
                kind="check_failed",
                subject=subject,
                found="it could not be compared",
                action="none: the next run compares it again",
            )
            self._report(drift, "failed", _reason(exc))

    def _report(self, drift: _Drift, outcome: Outcome, reason: str | None = None) -> None:
        finding = drift.finding(outcome, reason)
        self._findings.append(finding)
        (log.warning if outcome in UNRESOLVED else log.info)(
            "reconcile.finding",
            kind=finding.kind,
            scim_id=finding.scim_id,
            sonar_key=finding.sonar_key,
            member=finding.member,
            outcome=outcome,
        )
        self._on_finding(finding)

    async def _audit(self, drift: _Drift, outcome: str, reason: str | None = None) -> None:
        subject = drift.subject
        if drift.audit_action is None or subject.scim_id is None:
            return
        detail = "; ".join(part for part in (drift.detail, reason) if part) or None
        event = AuditEvent(
            at=self._clock(),
            request_id=self._run_id,
            actor=self._actor,
            action=drift.audit_action,
            resource_type=subject.resource_type,
            scim_id=subject.scim_id,
            sonar_key=subject.sonar_key,
            outcome=outcome,
            detail=detail,
        )
        try:
            await self._store.append_audit(event)
        except StoreError as exc:
            log.warning("reconcile.audit_not_written", scim_id=subject.scim_id, reason=str(exc))

    # -- helpers -------------------------------------------------------------------------------------------
    def _held(self, record: ResourceRecord) -> AbstractAsyncContextManager[None]:
        """The record's lock: Entra's request on it and a repair never interleave."""
        return self._locks.hold(id_key(record.resource_type, record.scim_id))

    def _protection(self, login: str) -> str | None:
        reason = login_protection(login, actor=self._actor, settings=self._settings)
        return None if reason is None else f"{login!r} is protected: {reason}"

    async def _linking(self) -> bool:
        """Whether accounts are linked to SAML: `saml_link` on or off; `auto` as SonarQube's setting says."""
        if self._settings.saml_link != "auto":
            return self._settings.saml_link == "on"
        return (await self._sonar.saml_settings()).enabled


def _group_protection(name: str) -> str | None:
    if name not in PROTECTED_GROUPS:
        return None
    return f"{name!r} is SonarQube's own group: the bridge never renames, deletes or recreates it"


def _group_ref(record: GroupRecord) -> GroupRef:
    return GroupRef(record.sonar_name, record.sonar_id)


def _linked_as(account: SonarUser, user_name: str) -> bool:
    return account.saml_linked and account.external_login == user_name


def _identity(account: SonarUser) -> str:
    return f"{account.external_provider or 'none'}/{account.external_login or ''}"


def _uuid_text(sonar_id: str | None) -> str:
    return "" if sonar_id is None else f" (uuid {sonar_id})"


def _login_changed(record: UserRecord, account: SonarUser) -> _Drift:
    if not record.settled:
        cause, advice = HALF_DONE, "Entra's next change to the user completes it"
    else:
        cause = "renamed or anonymised in SonarQube"
        advice = f"rename it back to {record.sonar_login!r} in SonarQube, or unassign the user in Entra"
    return _Drift(
        kind="user_login_changed",
        subject=_Subject.of(record),
        found=f"the account behind its uuid is now {account.login!r} ({cause})",
        action=f"none: its activity and SAML link are left as they are; {advice}",
    )


def _why(record: UserRecord, usual: str) -> str:
    """What most likely caused a difference in the account's activity."""
    return usual if record.settled else HALF_DONE


def _reason(exc: Exception) -> str:
    if isinstance(exc, SonarQubeError):
        return f"SonarQube: {exc.message}"
    if isinstance(exc, ScimError):
        return exc.detail
    return str(exc)
