"""Per-resource serialisation of writes inside one process.

Two POSTs for one `userName`, or five concurrent member PATCHes on one group, must not interleave their
read-decide-write steps. A lock per key is created on first use and dropped when nobody holds or waits for it,
so the table never grows with the number of resources ever seen.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from scim_bridge.store.records import casefold_key

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from scim_bridge.store.records import ResourceType


def name_key(resource_type: ResourceType, name: str) -> str:
    """The lock of a `userName` or group `displayName`, in any case: held while one is taken or moved."""
    return f"{resource_type}-name:{casefold_key(name)}"


def id_key(resource_type: ResourceType, scim_id: str) -> str:
    """The lock of one resource: held while it is changed."""
    return f"{resource_type}:{scim_id}"


class KeyedLocks:
    """An asyncio lock per key (`name_key`, `id_key`)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, *keys: str) -> AsyncIterator[None]:
        """Hold the locks of all `keys`, taken in sorted order so that two holders never deadlock."""
        ordered = sorted(set(keys))
        acquired: list[str] = []
        try:
            for key in ordered:
                lock = self._checkout(key)
                try:
                    await lock.acquire()
                except BaseException:
                    self._release_reference(key)
                    raise
                acquired.append(key)
            yield
        finally:
            for key in reversed(acquired):
                self._locks[key][0].release()
                self._release_reference(key)

    def _checkout(self, key: str) -> asyncio.Lock:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        return lock

    def _release_reference(self, key: str) -> None:
        lock, users = self._locks[key]
        if users == 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
