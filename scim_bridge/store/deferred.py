"""A state store that could not be opened at start (a volume not mounted yet, a directory without write
permission): the bridge starts anyway, as it does without SonarQube, and keeps trying. Until the store opens,
every operation raises `StoreError` saying why (SCIM clients get 503, /readyz says not ready); afterwards
the deferred store hands every call to the real one."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

import structlog

from scim_bridge.store.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from scim_bridge.metrics import Metrics
    from scim_bridge.store.base import StateStore

log = structlog.get_logger("scim_bridge.store")

RETRY_SECONDS: Final = 2.0


class DeferredStore:
    """Stands in for the store `opener` opens, until it does (`keep_trying`)."""

    def __init__(self, opener: Callable[[], Awaitable[StateStore]], problem: str) -> None:
        self._opener = opener
        self._problem = problem
        self._store: StateStore | None = None
        self._metrics: Metrics | None = None

    async def keep_trying(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Try to open the store every few seconds until it opens (cancelled when the bridge stops)."""
        while self._store is None:
            await sleep(RETRY_SECONDS)
            try:
                store = await self._opener()
            except StoreError as exc:
                self._problem = str(exc)
                continue
            if self._metrics is not None:
                store.observe(self._metrics)
            self._store = store
            log.info("store.opened")

    def observe(self, metrics: Metrics) -> None:
        self._metrics = metrics
        if self._store is not None:
            self._store.observe(metrics)

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()

    @asynccontextmanager
    async def hold(self, *keys: str) -> AsyncIterator[None]:
        # Explicit: the fallback below makes coroutine functions, not context managers.
        if self._store is None:
            raise StoreError(f"the state store is not open yet: {self._problem}")
        async with self._store.hold(*keys):
            yield

    def __getattr__(self, name: str) -> Any:
        if self._store is not None:
            return getattr(self._store, name)

        async def not_open(*_args: object, **_kwargs: object) -> Any:
            raise StoreError(f"the state store is not open yet: {self._problem}")

        return not_open
