"""SCIM Groups onto SonarQube groups (docs/provisioning.md): create or adopt, rename, member deltas, delete.

Member changes are deltas: adding one member costs one SonarQube call whatever the group size, and the
group's member list is never read from SonarQube. Members that are deactivated in SonarQube are kept in the
store only (SonarQube refuses them, docs/sonarqube.md SQ20); they are added back when the user is
reactivated.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from scim_bridge.provisioning import lifecycle
from scim_bridge.provisioning.locks import name_key
from scim_bridge.provisioning.mapping import (
    check_group_name,
    group_resource,
    stored_attributes,
)
from scim_bridge.provisioning.protections import PROTECTED_GROUPS, login_protection
from scim_bridge.provisioning.translate import sonar_errors
from scim_bridge.scim.errors import InvalidValueError, MutabilityError, NotFoundError, UniquenessError
from scim_bridge.scim.ids import plausible_id
from scim_bridge.scim.patch import GroupPatchPlan
from scim_bridge.sonarqube import ADMIN_GROUP, DEFAULT_GROUP, GroupRef, NotFound, UserRef
from scim_bridge.store.errors import StoreConflict
from scim_bridge.store.records import GroupRecord, UserRecord

if TYPE_CHECKING:
    from collections.abc import Iterable
    from contextlib import AbstractAsyncContextManager

    from scim_bridge.provisioning.collaborators import Collaborators
    from scim_bridge.provisioning.context import RequestContext
    from scim_bridge.scim.filters import Lookup
    from scim_bridge.scim.listing import SearchParams
    from scim_bridge.scim.representation import Representation
    from scim_bridge.scim.resources import GroupResource
    from scim_bridge.scim.versions import IfMatch
    from scim_bridge.sonarqube import SonarGroup

_LOOKED_UP: Final = frozenset({"id", "displayName", "externalId"})


class GroupService:
    """`/Groups`: each method is one SCIM request."""

    def __init__(self, collaborators: Collaborators) -> None:
        self._with = collaborators
        self._store = collaborators.store

    # -- create ------------------------------------------------------------------------------------------
    async def create(self, ctx: RequestContext, resource: GroupResource) -> Representation[GroupResource]:
        name = check_group_name(str(resource.display_name))
        attributes = stored_attributes(resource)
        member_ids = tuple(str(member.value) for member in resource.members or [])
        async with self._with.locks.hold(name_key("Group", name)):
            members = await self._users(member_ids)
            existing = await self._store.find_group(display_name=name)
            if existing is not None:
                raise UniquenessError(f"displayName: {name!r} is already provisioned (id {existing.scim_id})")
            async with sonar_errors():
                group = await ctx.sonar.create_group(name)
            record = GroupRecord(
                **lifecycle.fresh_identity(group.id, self._with.clock()),
                display_name=name,
                sonar_name=group.name,
                external_id=resource.external_id,
                attributes=attributes,
            )
            await self._store.insert_group(record)
            await self._change_members(ctx, record, members, add=member_ids, remove=())
            await self._with.audit.record(
                ctx, "group_created", record, detail=_members_detail(member_ids, ())
            )
            return group_resource(record, list(member_ids))

    # -- read --------------------------------------------------------------------------------------------
    async def get(
        self, ctx: RequestContext, scim_id: str, *, with_members: bool
    ) -> Representation[GroupResource]:
        record = await self._store.get_group(scim_id)
        if record is None:
            record = await self._adopt_by_id(ctx, scim_id)
        if await self._sonar_group(ctx, record) is None:
            raise NotFoundError(f"Group {scim_id} no longer exists in SonarQube (name {record.sonar_name!r})")
        return await self._resource(record, with_members=with_members)

    async def query(
        self, ctx: RequestContext, params: SearchParams, *, with_members: bool
    ) -> tuple[list[Representation[GroupResource]], int]:
        lookup = params.lookup
        if lookup is None and params.filter is None:
            records, total = await self._store.list_groups(offset=params.start_index - 1, limit=params.count)
            return [await self._resource(record, with_members=with_members) for record in records], total
        if lookup is not None and lookup.attribute in _LOOKED_UP:
            records, residual = await self._look_up(ctx, lookup), lookup.residual
        else:
            records, residual = await lifecycle.every_record(self._store.list_groups), params.filter
        # A filter on members needs them, even when the answer leaves them out.
        found = [
            await self._resource(record, with_members=with_members or residual is not None)
            for record in records
        ]
        page, total = await lifecycle.selected_page(found, lambda group: group, residual, params)
        if not with_members and residual is not None:
            page = [group.without_members() for group in page]
        return page, total

    async def _look_up(self, ctx: RequestContext, lookup: Lookup) -> list[GroupRecord]:
        match lookup.attribute:
            case "id":
                record = await self._store.get_group(lookup.value)
                if record is None:
                    try:
                        record = await self._adopt_by_id(ctx, lookup.value)
                    except NotFoundError:
                        return []
            case "displayName":
                record = await self._store.find_group(display_name=lookup.value)
                if record is None:
                    return await self._adopt(ctx, lookup.value)
            case _:
                record = await self._store.find_group(external_id=lookup.value)
        if record is None or await self._sonar_group(ctx, record) is None:
            return []
        return [record]

    async def _resource(self, record: GroupRecord, *, with_members: bool) -> Representation[GroupResource]:
        members = sorted(await self._store.members_of(record.scim_id)) if with_members else None
        return group_resource(record, members)

    async def _sonar_group(self, ctx: RequestContext, record: GroupRecord) -> SonarGroup | None:
        async with sonar_errors():
            if record.sonar_id is not None and ctx.sonar.capabilities.has_resource_ids:
                return await ctx.sonar.get_group(record.sonar_id)
            return await ctx.sonar.find_group(record.sonar_name)

    async def _adopt(self, ctx: RequestContext, name: str) -> list[GroupRecord]:
        """A SonarQube group of that name is recorded, so Entra matches it ("groups are mapped by name")."""
        async with sonar_errors():
            group = await ctx.sonar.find_group(name)
        if group is None:
            return []
        record = await self._record_adoption(ctx, group)
        return [] if record is None else [record]

    async def _adopt_by_id(self, ctx: RequestContext, scim_id: str) -> GroupRecord:
        """Where SonarQube has uuids, a group's SCIM id is its SonarQube uuid: a lost store orphans
        nothing. An id that cannot be one (`scim/ids.py`) is never put in a SonarQube URL."""
        group = None
        if ctx.sonar.capabilities.has_resource_ids and plausible_id(scim_id):
            async with sonar_errors():
                group = await ctx.sonar.get_group(scim_id)
        record = None if group is None else await self._record_adoption(ctx, group)
        if record is None:
            raise NotFoundError(f"Group {scim_id} not found")
        return record

    async def _record_adoption(self, ctx: RequestContext, group: SonarGroup) -> GroupRecord | None:
        """Record a group SonarQube has, with its members that are provisioned users as the ones Entra
        wants: Entra adds its own later and never removes what it did not add, and `reconcile` must not
        take away members that were there before."""
        async with self._with.locks.hold(name_key("Group", group.name)):
            known = await self._store.find_group(sonar_name=group.name)
            if known is not None:
                return known
            record = lifecycle.adopted_group_record(group, self._with.clock())
            members = await self._provisioned_members(ctx, group)
            return await lifecycle.record_adoption(
                self._with,
                ctx,
                record,
                lambda adopted: self._store.insert_group(adopted, members),
                "group_adopted",
            )

    async def _provisioned_members(self, ctx: RequestContext, group: SonarGroup) -> list[str]:
        """The SCIM ids of the group's members in SonarQube that the store holds."""
        if group.name == DEFAULT_GROUP:
            return []  # SonarQube's own: every active user, never Entra's to manage
        async with sonar_errors():
            members = await ctx.sonar.group_members(group.ref)
        ids: list[str] = []
        for member in members:
            user = await self._store.find_user(sonar_login=member.login)
            if user is not None:
                ids.append(user.scim_id)
        return ids

    # -- update ------------------------------------------------------------------------------------------
    async def patch(
        self,
        ctx: RequestContext,
        scim_id: str,
        plan: GroupPatchPlan,
        *,
        if_match: IfMatch | None,
        with_members: bool = False,
    ) -> Representation[GroupResource]:
        """Apply a PATCH plan; the group is returned with its members only when asked (Entra never is)."""
        async with self._held(scim_id, if_match) as record:
            members = await self._users((*plan.add_members, *(plan.replace_members or ())))
            updated = await self._apply(ctx, record, plan, members)
            return await self._resource(updated, with_members=with_members)

    async def replace(
        self, ctx: RequestContext, scim_id: str, resource: GroupResource, *, if_match: IfMatch | None
    ) -> Representation[GroupResource]:
        plan = GroupPatchPlan(
            display_name=str(resource.display_name),
            external_id=resource.external_id,
            external_id_changed=True,
            replace_members=tuple(str(member.value) for member in resource.members or []),
        )
        return await self.patch(ctx, scim_id, plan, if_match=if_match, with_members=True)

    async def _apply(
        self, ctx: RequestContext, record: GroupRecord, plan: GroupPatchPlan, members: dict[str, UserRecord]
    ) -> GroupRecord:
        """Rename, then member deltas, then the store: all checks are done before the first SonarQube call."""
        name = record.display_name
        if plan.display_name is not None and plan.display_name != record.display_name:
            name = check_group_name(plan.display_name)
            self._check_unprotected(record, "renamed")
            other = await self._store.find_group(display_name=name)
            if other is not None and other.scim_id != record.scim_id:
                raise UniquenessError(f"displayName: {name!r} is already provisioned (id {other.scim_id})")
        if plan.replace_members is None and not plan.remove_all_members:
            # Entra's deltas: the current members are not needed, whatever the size of the group.
            added, removed = plan.add_members, plan.remove_members
        else:
            current = await self._store.members_of(record.scim_id)
            after = plan.members_after(current)
            added, removed = tuple(sorted(after - current)), tuple(sorted(current - after))
        if (added or removed) and record.sonar_name == DEFAULT_GROUP:
            raise MutabilityError(f"members: SonarQube manages the members of {DEFAULT_GROUP!r} itself")
        leaving = await self._users(removed, known_only=True)
        if record.sonar_name == ADMIN_GROUP:
            self._check_administrators_stay(ctx, leaving.values())
        sonar_name, sonar_id = record.sonar_name, record.sonar_id
        if name != record.display_name:
            renamed = await self._rename(ctx, record, name)
            sonar_name, sonar_id = renamed.name, renamed.id or sonar_id
        updated = replace(
            record,
            display_name=name,
            sonar_name=sonar_name,
            sonar_id=sonar_id,
            external_id=plan.external_id if plan.external_id_changed else record.external_id,
            attributes=_attributes_after(record, name, plan),
            last_modified=self._with.clock(),
            version=record.version + 1,
        )
        await self._change_members(ctx, updated, members | leaving, added, removed)
        # One audit event per request, written with the update: a rename or another attribute changed,
        # else only members.
        action = "group_updated" if updated.attributes != record.attributes else "group_members_changed"
        event = (
            self._with.audit.event(ctx, action, updated, detail=_members_detail(added, removed))
            if action == "group_updated" or added or removed
            else None
        )
        try:
            await self._store.update_group(updated, expected_version=record.version, audit=event)
        except StoreConflict as exc:
            raise UniquenessError(f"displayName: {exc}") from exc
        if event is not None:
            self._with.audit.logged(event)
        return updated

    async def _change_members(
        self,
        ctx: RequestContext,
        record: GroupRecord,
        users: dict[str, UserRecord],
        add: Iterable[str],
        remove: Iterable[str],
    ) -> None:
        """The store first remembers the wanted members, then one SonarQube call per active member changed.
        In that order a user's reactivation running meanwhile (it restores memberships from the store, under
        this group's lock) never misses an added member nor brings back a removed one. The caller records
        the request's audit event."""
        group = GroupRef(record.sonar_name, record.sonar_id)
        added, removed = tuple(add), tuple(remove)
        if added:
            await self._store.add_members(record.scim_id, added)
        if removed:
            await self._store.remove_members(record.scim_id, removed)
        async with sonar_errors():
            for user_id in added:
                user = users[user_id]
                if await self._active_now(user):
                    await self._add_member(ctx, group, UserRef(user.sonar_login, user.sonar_id))
        for user_id in removed:
            member = users.get(user_id)
            if member is not None and await self._active_now(member):
                # The user gone from SonarQube: so is the membership.
                async with sonar_errors(gone_is_done=True):
                    await ctx.sonar.remove_member(group, UserRef(member.sonar_login, member.sonar_id))

    async def _active_now(self, user: UserRecord) -> bool:
        """Whether a member's SonarQube account is to be changed: a user recorded inactive when the request
        began is read again, now that the store holds the member change. A re-enable recorded before this
        read is seen here; one recorded after it restores the memberships from the store, which by then
        holds this change. Read before the change, a re-enable in between would miss it both ways."""
        if user.active:
            return True
        current = await self._store.get_user(user.scim_id)
        return current is not None and current.active

    @staticmethod
    async def _add_member(ctx: RequestContext, group: GroupRef, user: UserRef) -> None:
        """Add in SonarQube; a user SonarQube finds deactivated (a disable or re-enable of it in flight, or
        a deactivation in SonarQube's UI) gets the membership from the store at its reactivation, or from
        `reconcile`: not an error of this group's request. A user active again by the time it is looked
        at was reactivated in between: the add is made again, and only a second refusal is an error (then
        it is the group SonarQube does not know)."""
        try:
            await ctx.sonar.add_member(group, user)
        except NotFound:
            account = (
                await ctx.sonar.get_user(user.id)
                if user.id is not None and ctx.sonar.capabilities.has_resource_ids
                else await ctx.sonar.find_user(user.login, active=True)
            )
            if account is not None and account.active:
                await ctx.sonar.add_member(group, account.ref)

    # -- delete ------------------------------------------------------------------------------------------
    async def delete(self, ctx: RequestContext, scim_id: str, *, if_match: IfMatch | None) -> None:
        async with self._held(scim_id, if_match) as record:
            self._check_unprotected(record, "deleted")
            async with sonar_errors(gone_is_done=True):
                await ctx.sonar.delete_group(GroupRef(record.sonar_name, record.sonar_id))
            await self._store.delete_group(scim_id)
            await self._with.audit.record(ctx, "group_deleted", record)

    # -- helpers -----------------------------------------------------------------------------------------
    def _held(self, scim_id: str, if_match: IfMatch | None) -> AbstractAsyncContextManager[GroupRecord]:
        """The stored record, checked against `If-Match`, with its lock held for a write."""
        return lifecycle.held_for_write(self._with, self._store.get_group, "Group", scim_id, if_match)

    async def _rename(self, ctx: RequestContext, record: GroupRecord, name: str) -> SonarGroup:
        """Rename in SonarQube, or find the rename an earlier attempt made."""
        async with sonar_errors():
            return await lifecycle.renamed_or_found(
                lambda: ctx.sonar.rename_group(GroupRef(record.sonar_name, record.sonar_id), name),
                lambda: ctx.sonar.find_group(name),
            )

    async def _users(self, ids: Iterable[str], *, known_only: bool = False) -> dict[str, UserRecord]:
        """The user records of member ids; an unknown id is a 400 naming it (before any SonarQube call)."""
        users: dict[str, UserRecord] = {}
        for user_id in dict.fromkeys(ids):
            record = await self._store.get_user(user_id)
            if record is not None:
                users[user_id] = record
            elif not known_only:
                raise InvalidValueError(f"members: no User with id {user_id!r} is provisioned")
        return users

    def _check_administrators_stay(self, ctx: RequestContext, leaving: Iterable[UserRecord]) -> None:
        """The token's owner and protected logins are never removed from `sonar-administrators`."""
        for user in leaving:
            reason = login_protection(user.sonar_login, actor=ctx.actor, settings=self._with.settings)
            if reason is not None:
                raise MutabilityError(
                    f"members: SonarQube user {user.sonar_login!r} is protected ({reason}) and is never "
                    f"removed from {ADMIN_GROUP!r}"
                )

    @staticmethod
    def _check_unprotected(record: GroupRecord, action: str) -> None:
        if record.sonar_name in PROTECTED_GROUPS:
            raise MutabilityError(
                f"displayName: SonarQube's own group {record.sonar_name!r} is protected and is never {action}"
            )


def _attributes_after(record: GroupRecord, name: str, plan: GroupPatchPlan) -> dict[str, Any]:
    attributes = {**record.attributes, "displayName": name}
    if plan.external_id_changed:
        if plan.external_id is None:
            attributes.pop("externalId", None)
        else:
            attributes["externalId"] = plan.external_id
    return attributes


def _members_detail(added: tuple[str, ...], removed: tuple[str, ...]) -> str | None:
    return f"members added {len(added)}, removed {len(removed)}" if added or removed else None
