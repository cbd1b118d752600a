"""The steps /Users and /Groups share, written once: a new record's identity, a stored record or 404, a
record held under its lock for a write, an adoption recorded, a rename that an earlier attempt may have
done already, and the page a filter selects."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from scim_bridge.provisioning.locks import id_key
from scim_bridge.provisioning.mapping import adopted_group_attributes, adopted_user_attributes
from scim_bridge.scim.errors import NotFoundError
from scim_bridge.scim.filters import matches
from scim_bridge.sonarqube import NotFound
from scim_bridge.store.errors import StoreConflict
from scim_bridge.store.records import GroupRecord, UserRecord

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
    from datetime import datetime

    from scim2_models import Resource, ScimFilter

    from scim_bridge.provisioning.collaborators import Collaborators
    from scim_bridge.provisioning.context import RequestContext
    from scim_bridge.scim.listing import SearchParams
    from scim_bridge.scim.representation import Representation
    from scim_bridge.scim.versions import IfMatch
    from scim_bridge.sonarqube import SonarGroup, SonarUser
    from scim_bridge.store.records import ResourceRecord, ResourceType

LISTING_CHUNK: Final = 500  # records read per store call when a filter must be evaluated over every resource
YIELD_EVERY: Final = 100  # resources a filter is evaluated over before other requests get their turn

RecordT = TypeVar("RecordT", bound="ResourceRecord")
ItemT = TypeVar("ItemT")
ResourceT = TypeVar("ResourceT", bound="Resource[Any]")
T = TypeVar("T")


def fresh_identity(sonar_id: str | None, now: datetime) -> dict[str, Any]:
    """The id and meta of a record for a new or newly adopted SonarQube resource: its SonarQube uuid is its
    SCIM id where the dialect has uuids (a lost store then orphans nothing), else a new one."""
    return {
        "scim_id": sonar_id or str(uuid.uuid4()),
        "sonar_id": sonar_id,
        "created": now,
        "last_modified": now,
        "version": 1,
    }


def adopted_user_record(user_name: str, account: SonarUser, now: datetime) -> UserRecord:
    """The record of an existing SonarQube account taken as the SCIM user `user_name` (a matching query's
    adoption, or reconcile rebuilding a lost store): what SonarQube holds of it, under its uuid if any."""
    return UserRecord(
        **fresh_identity(account.id, now),
        user_name=user_name,
        sonar_login=account.login,
        external_id=None,
        active=account.active,
        attributes=adopted_user_attributes(user_name, account),
    )


def adopted_group_record(group: SonarGroup, now: datetime) -> GroupRecord:
    """The record of an existing SonarQube group taken as the SCIM group of the same name."""
    return GroupRecord(
        **fresh_identity(group.id, now),
        display_name=group.name,
        sonar_name=group.name,
        external_id=None,
        attributes=adopted_group_attributes(group),
    )


async def stored(
    get: Callable[[str], Awaitable[RecordT | None]], resource_type: ResourceType, scim_id: str
) -> RecordT:
    """The stored record of `scim_id`, or a 404."""
    record = await get(scim_id)
    if record is None:
        raise NotFoundError(f"{resource_type} {scim_id} not found")
    return record


@asynccontextmanager
async def held_for_write(
    collaborators: Collaborators,
    get: Callable[[str], Awaitable[RecordT | None]],
    resource_type: ResourceType,
    scim_id: str,
    if_match: IfMatch | None,
) -> AsyncIterator[RecordT]:
    """The stored record, read and checked against `If-Match` under the resource's lock, which is held
    until the block ends: writes to one resource never interleave."""
    async with collaborators.locks.hold(id_key(resource_type, scim_id)):
        record = await stored(get, resource_type, scim_id)
        if if_match is not None:
            if_match.check(record.version)
        yield record


async def record_adoption(
    collaborators: Collaborators,
    ctx: RequestContext,
    record: RecordT,
    insert: Callable[[RecordT], Awaitable[None]],
    action: str,
) -> RecordT | None:
    """Store the record of an existing SonarQube resource Entra has just matched, and audit it as `action`;
    None when a concurrent request recorded the same resource first."""
    try:
        await insert(record)
    except StoreConflict:
        return None
    await collaborators.audit.record(ctx, action, record)
    return record


async def renamed_or_found(rename: Callable[[], Awaitable[T]], find: Callable[[], Awaitable[T | None]]) -> T:
    """A rename in SonarQube; when SonarQube no longer knows the old name, an earlier attempt whose answer
    was lost may have done it: then the resource found under the new name is the result."""
    try:
        return await rename()
    except NotFound:
        done = await find()
        if done is None:
            raise
        return done


async def selected_page(
    items: Iterable[ItemT],
    to_resource: Callable[[ItemT], Representation[ResourceT]],
    residual: ScimFilter[Any] | None,
    params: SearchParams,
) -> tuple[list[Representation[ResourceT]], int]:
    """The page `startIndex`/`count` ask for of the resources (made from `items`) that `residual` (the part
    of the filter a look-up did not answer) selects, and the total count. Long evaluations let other
    requests in every `YIELD_EVERY` items: a filter over every user must not stall the service."""
    page = _Page[ResourceT](params)
    await page.offer(items, to_resource, residual)
    return page.items, page.total


async def selected_from_listing(
    listing: Callable[..., Awaitable[tuple[list[ItemT], int]]],
    to_resource: Callable[[ItemT], Representation[ResourceT]],
    selection: ScimFilter[Any] | None,
    params: SearchParams,
) -> tuple[list[Representation[ResourceT]], int]:
    """As `selected_page`, over every record of a paged store listing (`list_users`), read LISTING_CHUNK
    records at a time: only the page asked for is kept, so the memory a filter takes does not grow with
    the number of users (docs/performance.md)."""
    page = _Page[ResourceT](params)
    offset = 0
    while True:
        chunk, total = await listing(offset=offset, limit=LISTING_CHUNK)
        await page.offer(chunk, to_resource, selection)
        offset += len(chunk)
        if not chunk or offset >= total:
            return page.items, page.total


class _Page(Generic[ResourceT]):
    """The resources of one page of a selection, and how many the whole selection holds."""

    def __init__(self, params: SearchParams) -> None:
        self._start = params.start_index - 1
        self._end = self._start + params.count
        self.items: list[Representation[ResourceT]] = []
        self.total = 0

    async def offer(
        self,
        items: Iterable[ItemT],
        to_resource: Callable[[ItemT], Representation[ResourceT]],
        selection: ScimFilter[Any] | None,
    ) -> None:
        for index, item in enumerate(items, start=1):
            resource = to_resource(item)
            if selection is None or matches(selection, resource.resource()):
                if self._start <= self.total < self._end:
                    self.items.append(resource)
                self.total += 1
            if index % YIELD_EVERY == 0:
                await asyncio.sleep(0)


async def every_record(page: Callable[..., Awaitable[tuple[list[RecordT], int]]]) -> list[RecordT]:
    """Every record of a paged store listing (`list_users`, `list_groups`), read in chunks."""
    records: list[RecordT] = []
    while True:
        chunk, total = await page(offset=len(records), limit=LISTING_CHUNK)
        records += chunk
        if not chunk or len(records) >= total:
            return records
