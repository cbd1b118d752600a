"""Per-resource serialisation of writes: inside one process, and across replicas through the store.

Two POSTs for one `userName`, or five concurrent member PATCHes on one group, must not interleave their
read-decide-write steps. A lock per key is created on first use and dropped when nobody holds or waits for it,
so the table never grows with the number of resources ever seen. Replicas sharing a PostgreSQL store also
hold the store's lock of each key (`StateStore.hold`, an advisory lock), taken after the process's own, so
that a request waits in memory rather than on a database connection; with SQLite (one process) that is a
no-op.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from scim_bridge.store.records import casefold_key

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from contextlib import AbstractAsyncContextManager

    from scim_bridge.store.records import ResourceType


def name_key(resource_type: ResourceType, name: str) -> str:
    """The lock of a `userName` or group `displayName`, in any case: held while one is taken or moved."""
    return f"{resource_type}-name:{casefold_key(name)}"


def id_key(resource_type: ResourceType, scim_id: str) -> str:
    """The lock of one resource: held while it is changed."""
    return f"{resource_type}:{scim_id}"


class KeyedLocks:
    """An asyncio lock per key (`name_key`, `id_key`)."""

    def __init__(self, across: Callable[..., AbstractAsyncContextManager[None]] | None = None) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._across = across  # the same keys held against other processes (StateStore.hold)

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
            if self._across is None:
                yield
            else:
                async with self._across(*ordered):
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
