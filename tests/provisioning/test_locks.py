"""Keyed locks serialise holders of one key and forget keys nobody uses."""

from __future__ import annotations

import asyncio

from scim_bridge.provisioning.locks import KeyedLocks


async def test_same_key_is_serialised() -> None:
    """Holders of one key never overlap."""
    locks = KeyedLocks()
    inside = 0
    overlaps = 0

    async def work() -> None:
        nonlocal inside, overlaps
        async with locks.hold("group:1"):
            inside += 1
            overlaps += inside > 1
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(work() for _ in range(20)))
    assert overlaps == 0
    assert len(locks) == 0


async def test_different_keys_run_together() -> None:
    """Holders of different keys do not wait for each other."""
    locks = KeyedLocks()
    entered = asyncio.Event()

    async def first() -> None:
        async with locks.hold("user:a"):
            await entered.wait()

    async def second() -> None:
        async with locks.hold("user:b"):
            entered.set()

    await asyncio.wait_for(asyncio.gather(first(), second()), timeout=5)


async def test_several_keys_in_any_order_do_not_deadlock() -> None:
    """Two holders asking for the same keys in opposite orders both finish."""
    locks = KeyedLocks()

    async def hold(*keys: str) -> None:
        async with locks.hold(*keys):
            await asyncio.sleep(0)

    await asyncio.wait_for(
        asyncio.gather(*(hold("a", "b") if i % 2 else hold("b", "a") for i in range(10))), 5
    )
    assert len(locks) == 0


async def test_cancelled_waiter_releases_its_reference() -> None:
    """A waiter cancelled while queued leaves no stale entry behind."""
    locks = KeyedLocks()
    async with locks.hold("k"):
        waiter = asyncio.create_task(_hold_once(locks, "k"))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
    assert len(locks) == 0


async def _hold_once(locks: KeyedLocks, key: str) -> None:
    async with locks.hold(key):
        pass
