"""SCIM Users onto SonarQube users (docs/provisioning.md): create or adopt, update, deactivate and
reactivate, forget.

Every request is validated whole (mapping, protections, uniqueness) before the first SonarQube call. Writes
to one user are serialised. SonarQube is the truth for whether an account exists and is active; the store
keeps everything else, exactly as Entra sent it (docs/entra.md E1), and what Entra wants.

A change is carried out in three steps, so that a failure or a crash at any point leaves nothing a retry of
the same request cannot finish (docs/reliability.md): (1) the store records what Entra wants, marked not
settled; (2) SonarQube's account is read and brought there (reactivated or deactivated, renamed, linked to
SAML, its memberships restored); (3) the store records the state reached, settled. A request that finds its
record not settled completes step 2 whatever it asks for.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Final

import structlog

from scim_bridge.provisioning import lifecycle
from scim_bridge.provisioning.locks import id_key, name_key
from scim_bridge.provisioning.logins import login_for
from scim_bridge.provisioning.mapping import (
    SonarProfile,
    sonar_profile,
    stored_attributes,
    user_resource,
)
from scim_bridge.provisioning.protections import account_protection, login_protection
from scim_bridge.provisioning.translate import sonar_errors
from scim_bridge.scim.errors import MutabilityError, NotFoundError, UniquenessError
from scim_bridge.scim.ids import plausible_id
from scim_bridge.scim.patch import apply_user_patch
from scim_bridge.sonarqube import SAML_PROVIDER, AlreadyExists, GroupRef, InvalidValue, Refused, UserRef
from scim_bridge.store.errors import StoreConflict
from scim_bridge.store.records import UserRecord

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from scim2_models import PatchOp

    from scim_bridge.provisioning.collaborators import Collaborators
    from scim_bridge.provisioning.context import RequestContext
    from scim_bridge.scim.filters import Lookup
    from scim_bridge.scim.listing import SearchParams
    from scim_bridge.scim.representation import Representation
    from scim_bridge.scim.resources import UserResource
    from scim_bridge.scim.versions import IfMatch
    from scim_bridge.sonarqube import SonarUser

log = structlog.get_logger("scim_bridge.provisioning")

# Filters on these are answered by one store look-up; others (e-mails, display name) over the listing.
_LOOKED_UP: Final = frozenset({"id", "userName", "externalId"})


class UserService:
    """`/Users`: each method is one SCIM request."""

    def __init__(self, collaborators: Collaborators) -> None:
        self._with = collaborators
        self._store = collaborators.store

    # -- create ------------------------------------------------------------------------------------------
    async def create(self, ctx: RequestContext, resource: UserResource) -> Representation[UserResource]:
        user_name = str(resource.user_name)
        profile = sonar_profile(resource)
        login = login_for(user_name, ctx.sonar.capabilities)
        attributes = stored_attributes(resource)
        if (reason := login_protection(login, actor=ctx.actor, settings=self._with.settings)) is not None:
            raise UniquenessError(
                f"userName: SonarQube's account {login!r} is protected ({reason}): SCIM never takes it over"
            )
        async with self._with.locks.hold(name_key("User", user_name)):
            existing = await self._store.find_user(user_name=user_name)
            if existing is not None:
                if not existing.settled and existing.attributes == attributes:
                    # The same POST again, after one that died half-way: finish it.
                    return await self._finish_creation(ctx, existing, profile)
                await self._drop_if_gone(ctx, existing, user_name)
            if (holder := await self._store.find_user(sonar_login=login)) is not None:
                raise UniquenessError(
                    f"userName: {user_name!r} maps to SonarQube login {login!r},"
                    f" already held by id {holder.scim_id}"
                )
            async with sonar_errors():
                login = await self._dormant_login(ctx, user_name) or login
                account = await self._created_or_taken_over(ctx, login, user_name, profile)
            record = UserRecord(
                **lifecycle.fresh_identity(account.id, self._with.clock()),
                user_name=user_name,
                sonar_login=account.login,
                external_id=resource.external_id,
                active=resource.active is not False,
                attributes=attributes,
                settled=False,
            )
            try:
                await self._store.insert_user(record)
            except StoreConflict as exc:
                raise UniquenessError(f"userName: {exc}") from exc
            return await self._finish_creation(ctx, record, profile, account)

    async def _drop_if_gone(self, ctx: RequestContext, existing: UserRecord, user_name: str) -> None:
        """A POST for a `userName` the store holds is a 409, unless SonarQube no longer has the account (a
        SonarQube restored from an older backup, or a new one behind an old store): Entra's matching query
        found nothing then, and would meet the 409 forever. The stale record goes; the POST creates anew."""
        async with sonar_errors():
            account = await self._account(ctx, existing)
        if account is not None:
            raise UniquenessError(f"userName: {user_name!r} is already provisioned (id {existing.scim_id})")
        log.warning("provisioning.stale_record_dropped", scim_id=existing.scim_id, login=existing.sonar_login)
        await self._store.delete_user(existing.scim_id)

    async def _created_or_taken_over(
        self, ctx: RequestContext, login: str, user_name: str, profile: SonarProfile
    ) -> SonarUser:
        """A new account, or the active one SonarQube already has under that login when SCIM may take it
        over: one created by an earlier attempt of this request whose answer was lost, or one pre-created for
        SAML sign-in. Any other is refused with 409, saying why."""
        try:
            return await ctx.sonar.create_user(login, profile.name, profile.email)
        except AlreadyExists:
            found = await ctx.sonar.find_user(login, active=True)
            if found is None:
                raise
            reason = self._takeover_refusal(ctx, found, user_name)
            if reason is not None:
                raise UniquenessError(
                    f"userName: SonarQube already has an account {found.login!r} that SCIM does not take "
                    f"over: {reason}"
                ) from None
            log.info("provisioning.account_taken_over", login=found.login)
            return found

    async def _finish_creation(
        self, ctx: RequestContext, record: UserRecord, profile: SonarProfile, account: SonarUser | None = None
    ) -> Representation[UserResource]:
        """Bring the new account where the record says (SAML link, `active: false`), then mark it settled.
        A failure here leaves the record unsettled: Entra's retry of the same POST finishes it (201)."""
        async with sonar_errors():
            if account is None:
                account = await self._account(ctx, record)
            ref = await self._converge(ctx, record, account, profile, restore=False)
        return user_resource(await self._settled(ctx, record, ref, action="user_created"))

    async def _dormant_login(self, ctx: RequestContext, user_name: str) -> str | None:
        """The login of a deactivated account SAML-linked to this `userName`, which the create reactivates.

        SonarQube would otherwise reactivate that old account at the user's first SAML sign-in and leave the
        new one unused: a duplicate (docs/sonarqube.md SQ15). (A deactivated account with the same login
        needs no look-up: SonarQube's create reactivates it by itself, SQ9.) Searched here rather than in
        the `userName` filter, which keeps Entra's Test Connection probe and matching queries at two
        SonarQube calls.
        """
        if not await self._with.saml.links(ctx):
            return None
        dormant = await ctx.sonar.find_user_by_external_login(user_name, SAML_PROVIDER, active=False)
        if dormant is None or self._takeover_refusal(ctx, dormant, user_name) is not None:
            return None
        return dormant.login

    # -- read --------------------------------------------------------------------------------------------
    async def get(self, ctx: RequestContext, scim_id: str) -> Representation[UserResource]:
        record = await self._store.get_user(scim_id)
        if record is None:
            record = await self._adopt_by_id(ctx, scim_id)
        record = await self._completed(ctx, record)
        async with sonar_errors():
            account = await self._account(ctx, record)
        if account is None:
            raise NotFoundError(
                f"User {scim_id} no longer exists in SonarQube (login {record.sonar_login!r})"
            )
        return user_resource(record, active=account.active)

    async def query(
        self, ctx: RequestContext, params: SearchParams
    ) -> tuple[list[Representation[UserResource]], int]:
        lookup = params.lookup
        if lookup is None and params.filter is None:
            records, total = await self._store.list_users(offset=params.start_index - 1, limit=params.count)
            return [user_resource(record) for record in records], total
        if lookup is not None and lookup.attribute in _LOOKED_UP:
            found = await self._look_up(ctx, lookup)
            return await lifecycle.selected_page(found, lambda user: user, lookup.residual, params)
        if lookup is not None and lookup.attribute == "emails.value":
            # Candidates from the store's e-mail look-up; the whole filter decides (type, case).
            records = await self._store.find_users_by_email(lookup.value)
            return await lifecycle.selected_page(records, user_resource, params.filter, params)
        return await lifecycle.selected_from_listing(
            self._store.list_users, user_resource, params.filter, params
        )

    async def _look_up(self, ctx: RequestContext, lookup: Lookup) -> list[Representation[UserResource]]:
        match lookup.attribute:
            case "id":
                try:
                    return [await self.get(ctx, lookup.value)]
                except NotFoundError:
                    return []
            case "userName":
                record = await self._store.find_user(user_name=lookup.value) or await self._adopt(
                    ctx, lookup.value
                )
            case _:
                record = await self._store.find_user(external_id=lookup.value)
        if record is None:
            return []
        record = await self._completed(ctx, record)
        async with sonar_errors():
            account = await self._account(ctx, record)
        return [] if account is None else [user_resource(record, active=account.active)]

    async def _completed(self, ctx: RequestContext, record: UserRecord) -> UserRecord:
        """A record not settled is a change Entra asked for that did not finish (a failure, a crash). Entra
        retries a failed create with its matching query, and sends nothing when what it reads looks right:
        so a read that meets such a record finishes the change first (but a rename, which only the request
        that asked for it can redo), and audits it as the request it finishes."""
        if record.settled:
            return record
        async with self._held(record.scim_id, None) as current:
            if current.settled:
                return current
            async with sonar_errors():
                account = await self._account(ctx, current)
                ref = await self._converge(ctx, current, account, _stored_profile(current), restore=True)
            finished = "user_created" if current.version == 1 else "user_updated"  # a new record: version 1
            return await self._settled(ctx, current, ref, action=finished)

    async def _account(self, ctx: RequestContext, record: UserRecord) -> SonarUser | None:
        """The SonarQube account behind a record: by uuid in one call, or by login searching the state the
        record expects first (v1 searches active and deactivated users separately). A rename an earlier
        attempt made before it could record it is found under the login the `userName` maps to."""
        if record.sonar_id is not None and ctx.sonar.capabilities.has_resource_ids:
            return await ctx.sonar.get_user(record.sonar_id)
        for login in dict.fromkeys((record.sonar_login, login_for(record.user_name, ctx.sonar.capabilities))):
            found = await ctx.sonar.find_user(login, active=record.active) or await ctx.sonar.find_user(
                login, active=not record.active
            )
            if found is not None:
                return found
        return None

    async def _adopt(self, ctx: RequestContext, user_name: str) -> UserRecord | None:
        """A SonarQube account this `userName` already has (by login in any case, or by SAML link),
        recorded so that Entra matches it instead of creating a duplicate; never a protected one (see
        protections.py). Active accounts only: a deactivated login is reactivated by Entra's following POST
        anyway, and two look-ups keep Test Connection's probe at two calls."""
        login = login_for(user_name, ctx.sonar.capabilities)
        if login_protection(login, actor=ctx.actor, settings=self._with.settings) is not None:
            return None
        async with sonar_errors():
            sonar_user = await ctx.sonar.find_user(login, active=True, ignore_case=True)
            if sonar_user is None:
                sonar_user = await ctx.sonar.find_user_by_external_login(
                    user_name, SAML_PROVIDER, active=True
                )
        if sonar_user is None:
            return None
        return await self._record_adoption(ctx, user_name, sonar_user)

    async def _adopt_by_id(self, ctx: RequestContext, scim_id: str) -> UserRecord:
        """Where SonarQube has uuids, a SCIM id is the SonarQube uuid: a lost store does not orphan Entra's
        links. An id that cannot be one (`scim/ids.py`) is never put in a SonarQube URL."""
        if not ctx.sonar.capabilities.has_resource_ids or not plausible_id(scim_id):
            raise NotFoundError(f"User {scim_id} not found")
        async with sonar_errors():
            sonar_user = await ctx.sonar.get_user(scim_id)
        if sonar_user is None or await self._forgotten(scim_id):
            raise NotFoundError(f"User {scim_id} not found")
        user_name = (
            sonar_user.external_login if sonar_user.saml_linked and sonar_user.external_login else None
        )
        record = await self._record_adoption(ctx, user_name or sonar_user.login, sonar_user)
        if record is None:
            raise NotFoundError(f"User {scim_id} not found")
        return record

    async def _record_adoption(
        self, ctx: RequestContext, user_name: str, sonar_user: SonarUser
    ) -> UserRecord | None:
        if (reason := self._takeover_refusal(ctx, sonar_user, user_name)) is not None:
            log.info("provisioning.adoption_refused", login=sonar_user.login, reason=reason)
            return None
        async with self._with.locks.hold(name_key("User", user_name)):
            known = await self._store.find_user(user_name=user_name) or await self._store.find_user(
                sonar_login=sonar_user.login
            )
            if known is not None:
                return known
            record = lifecycle.adopted_user_record(user_name, sonar_user, self._with.clock())
            linked = _linked_as(sonar_user, user_name)
            if sonar_user.active and not linked and await self._with.saml.links(ctx):
                # Adopted accounts get the same SAML link as created ones: no second account at first sign-in.
                # A link SonarQube refuses (another account holds that identity) must not fail Entra's
                # matching query: the account is adopted unlinked, and the refusal logged for the admin.
                async with sonar_errors():
                    try:
                        await ctx.sonar.link_identity(sonar_user.ref, SAML_PROVIDER, user_name)
                    except (InvalidValue, Refused, AlreadyExists) as exc:
                        log.warning(
                            "provisioning.adoption_not_linked", login=sonar_user.login, reason=exc.message
                        )
            return await lifecycle.record_adoption(
                self._with, ctx, record, self._store.insert_user, "user_adopted"
            )

    # -- update ------------------------------------------------------------------------------------------
    async def patch(
        self, ctx: RequestContext, scim_id: str, patch: PatchOp[UserResource], *, if_match: IfMatch | None
    ) -> Representation[UserResource]:
        async with self._held(scim_id, if_match) as record:
            current = user_resource(record)
            resource = current.resource()
            stored = sonar_profile(resource)  # read before the PATCH changes the model in place
            if not apply_user_patch(resource, patch) and record.settled:
                return current
            return await self._update(ctx, record, resource, stored=stored)

    async def replace(
        self, ctx: RequestContext, scim_id: str, resource: UserResource, *, if_match: IfMatch | None
    ) -> Representation[UserResource]:
        async with self._held(scim_id, if_match) as record:
            return await self._update(ctx, record, resource, stored=_stored_profile(record))

    async def _update(
        self, ctx: RequestContext, record: UserRecord, wanted: UserResource, *, stored: SonarProfile
    ) -> Representation[UserResource]:
        """Record what Entra wants (not settled), bring SonarQube's account there, record it settled; a
        change of nothing SonarQube holds (`stored`: what it holds of `record`) is recorded settled at
        once."""
        user_name = str(wanted.user_name)
        profile = sonar_profile(wanted)
        # `active` removed (RFC 7644 §3.5.2.2: unassigned) leaves the account as it is.
        active = record.active if wanted.active is None else wanted.active
        renamed = user_name != record.user_name
        # The login follows a changed userName only: an adopted account keeps the login it had.
        login = login_for(user_name, ctx.sonar.capabilities) if renamed else record.sonar_login
        if (record.active and not active) or login != record.sonar_login:
            self._check_unprotected(ctx, record.sonar_login, "deactivated or renamed")
        action = _update_action(record.active, active)
        async with self._with.locks.hold(name_key("User", user_name)):
            if renamed:
                await self._check_free(record, user_name, login)
            # Nothing SonarQube holds changes (a manager, a department): the store alone, no call.
            store_only = record.settled and not renamed and active == record.active and profile == stored
            intent = replace(
                record,
                user_name=user_name,
                external_id=wanted.external_id,
                active=active,
                attributes=stored_attributes(wanted),
                last_modified=self._with.clock(),
                version=record.version + 1,
                settled=store_only,
            )
            # A change of the store alone is audited in its one write; any other when it is settled.
            event = self._with.audit.event(ctx, action, intent) if store_only else None
            try:
                await self._store.update_user(intent, expected_version=record.version, audit=event)
            except StoreConflict as exc:
                raise UniquenessError(f"userName: {exc}") from exc
            if event is not None:
                self._with.audit.logged(event)
                return user_resource(intent)
            return user_resource(
                await self._carried_out(ctx, record, intent, profile, login=login, action=action)
            )

    async def _carried_out(
        self,
        ctx: RequestContext,
        record: UserRecord,
        intent: UserRecord,
        profile: SonarProfile,
        *,
        login: str,
        action: str,
    ) -> UserRecord:
        """SonarQube's account brought to the recorded intent, from its real state; the intent settled and
        audited as `action`."""
        async with sonar_errors():
            account = await self._account(ctx, record)
            ref = await self._converge(ctx, intent, account, profile, restore=not record.settled, login=login)
        return await self._settled(ctx, intent, ref, action=action)

    async def _converge(
        self,
        ctx: RequestContext,
        record: UserRecord,
        account: SonarUser | None,
        profile: SonarProfile,
        *,
        restore: bool,
        login: str | None = None,
    ) -> UserRef:
        """Bring SonarQube's `account` to what `record` asks for, deciding from the account's real state:
        reactivate (and restore memberships) or deactivate, rename to `login`, link to SAML, update the
        name and e-mail. `restore` also restores memberships when an earlier attempt may not have."""
        if account is None:
            raise NotFoundError(
                f"User {record.scim_id} no longer exists in SonarQube (login {record.sonar_login!r})"
            )
        ref = account.ref
        if not record.active:
            if account.active:
                # Linked first, so that a SAML sign-in finds this account rather than making another one
                # (and on v2 a change to a deactivated account would reactivate it, docs/sonarqube.md SQ12).
                if not _linked_as(account, record.user_name) and await self._with.saml.links(ctx):
                    await ctx.sonar.link_identity(ref, SAML_PROVIDER, record.user_name)
                # SonarQube forgets e-mail and memberships (SQ10); the store keeps them for reactivation.
                await ctx.sonar.deactivate_user(ref)
            return ref
        reactivated = not account.active
        if reactivated:
            ref = await self._reactivate(ctx, account, profile)
        if login is not None and login != ref.login:
            ref = await _rename(ctx, ref, login)
        linked = not reactivated and ref.login == account.login and _linked_as(account, record.user_name)
        if not linked and await self._with.saml.links(ctx):
            await ctx.sonar.link_identity(ref, SAML_PROVIDER, record.user_name)
        if reactivated or restore:
            await self._restore_memberships(ctx, record.scim_id, ref)
        if not reactivated and _profile_differs(account, profile):
            await self._update_profile(ctx, ref, profile)
        return ref

    async def _settled(
        self, ctx: RequestContext, record: UserRecord, ref: UserRef, action: str
    ) -> UserRecord:
        """The record marked settled, with the login and uuid SonarQube's account has now, written with the
        request's audit event (`action`) in one store transaction."""
        settled = replace(record, sonar_login=ref.login, sonar_id=ref.id or record.sonar_id, settled=True)
        event = self._with.audit.event(ctx, action, settled)
        try:
            await self._store.update_user(settled, expected_version=record.version, audit=event)
        except StoreConflict as exc:
            raise UniquenessError(f"userName: {exc}") from exc
        self._with.audit.logged(event)
        return settled

    async def _reactivate(self, ctx: RequestContext, account: SonarUser, profile: SonarProfile) -> UserRef:
        """SonarQube reactivates through create, under the login it still has (docs/sonarqube.md SQ9)."""
        try:
            return (await ctx.sonar.create_user(account.login, profile.name, profile.email)).ref
        except AlreadyExists:  # active again meanwhile (a SAML sign-in, say): what was wanted
            return account.ref

    async def _restore_memberships(self, ctx: RequestContext, scim_id: str, ref: UserRef) -> None:
        """SonarQube dropped the memberships at deactivation; give back the ones Entra asked for. Each under
        its group's lock, asking the store again: a member change of that group running meanwhile is either
        already in the store or waits for this one (groups.py changes the store first)."""
        for group_id in sorted(await self._store.groups_of(scim_id)):
            async with self._with.locks.hold(id_key("Group", group_id)):
                group = await self._store.get_group(group_id)
                if group is not None and group_id in await self._store.groups_of(scim_id):
                    await ctx.sonar.add_member(GroupRef(group.sonar_name, group.sonar_id), ref)

    async def _update_profile(self, ctx: RequestContext, ref: UserRef, profile: SonarProfile) -> None:
        if not ctx.sonar.capabilities.edits_external_profiles:
            # SonarQube refuses to change a non-local user's name or e-mail here, and every account the bridge
            # creates or links is non-local (docs/sonarqube.md SQ11): no call that can only fail. SAML sign-in
            # refreshes them from the assertion; the store keeps Entra's values, so Entra sees no difference.
            return
        await ctx.sonar.update_user(ref, name=profile.name, email=profile.email or "")

    # -- delete ------------------------------------------------------------------------------------------
    async def delete(self, ctx: RequestContext, scim_id: str, *, if_match: IfMatch | None) -> None:
        async with self._held(scim_id, if_match) as record:
            self._check_unprotected(ctx, record.sonar_login, "deleted")
            anonymize = self._with.settings.on_delete == "anonymize"
            async with sonar_errors(gone_is_done=True):
                await ctx.sonar.deactivate_user(
                    UserRef(record.sonar_login, record.sonar_id), anonymize=anonymize
                )
            await self._store.delete_user(scim_id)
            await self._with.audit.record(ctx, "user_anonymized" if anonymize else "user_deleted", record)

    # -- helpers -----------------------------------------------------------------------------------------
    def _held(self, scim_id: str, if_match: IfMatch | None) -> AbstractAsyncContextManager[UserRecord]:
        """The stored record, checked against `If-Match`, with its lock held for a write."""
        return lifecycle.held_for_write(self._with, self._store.get_user, "User", scim_id, if_match)

    async def _forgotten(self, scim_id: str) -> bool:
        """Whether this bridge deleted (deactivated and forgot) the user: its GET must stay 404."""
        events = await self._store.audit_trail(scim_id=scim_id, limit=1)
        return bool(events) and events[0].action in {"user_deleted", "user_anonymized"}

    async def _check_free(self, record: UserRecord, user_name: str, login: str) -> None:
        other = await self._store.find_user(user_name=user_name)
        if other is not None and other.scim_id != record.scim_id:
            raise UniquenessError(f"userName: {user_name!r} is already provisioned (id {other.scim_id})")
        holder = await self._store.find_user(sonar_login=login)
        if holder is not None and holder.scim_id != record.scim_id:
            raise UniquenessError(
                f"userName: SonarQube login {login!r} is already held by id {holder.scim_id}"
            )

    def _check_unprotected(self, ctx: RequestContext, login: str, action: str) -> None:
        reason = login_protection(login, actor=ctx.actor, settings=self._with.settings)
        if reason is not None:
            raise MutabilityError(
                f"userName: SonarQube user {login!r} is protected ({reason}) and is never {action}"
            )

    def _takeover_refusal(self, ctx: RequestContext, account: SonarUser, user_name: str) -> str | None:
        """Why SCIM may not take `account` over for `user_name`, or None when it may."""
        reason = account_protection(account, actor=ctx.actor, settings=self._with.settings)
        if (
            reason is None
            and account.saml_linked
            and (account.external_login or "").casefold() != (user_name.casefold())
        ):
            reason = "it is linked to another SAML identity"
        return reason


def _update_action(was_active: bool, active: bool) -> str:
    if active and not was_active:
        return "user_reactivated"
    return "user_deactivated" if was_active and not active else "user_updated"


def _stored_profile(record: UserRecord) -> SonarProfile:
    """The name and e-mail SonarQube was last given for this record."""
    return sonar_profile(user_resource(record).resource())


def _linked_as(user: SonarUser, user_name: str) -> bool:
    return user.saml_linked and user.external_login == user_name


def _profile_differs(account: SonarUser, profile: SonarProfile) -> bool:
    """Whether SonarQube's name or e-mail differ from what Entra wants (SonarQube trims names)."""
    return account.name.strip() != profile.name.strip() or (account.email or "") != (profile.email or "")


async def _rename(ctx: RequestContext, ref: UserRef, login: str) -> UserRef:
    """Rename in SonarQube, or find the rename an earlier attempt made (docs/sonarqube.md SQ13)."""
    user = await lifecycle.renamed_or_found(
        lambda: ctx.sonar.rename_user(ref, login), lambda: ctx.sonar.find_user(login)
    )
    return user.ref
