"""A store that cannot be opened at start is waited for, like SonarQube (scim_bridge/store/deferred.py):
every call fails with a `StoreError` saying why until the store opens, then goes to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from scim_bridge.store import StoreError, open_store
from scim_bridge.store.deferred import DeferredStore
from tests.store.conftest import user

if TYPE_CHECKING:
    from pathlib import Path


async def test_calls_fail_until_the_store_opens_then_reach_it(tmp_path: Path) -> None:
    """Before: `StoreError` naming the problem, for reads and the readiness check alike. The retry loop
    tries again after each wait; once the path is usable, the store opens and serves every call."""
    blocker = tmp_path / "volume"
    blocker.write_text("not mounted yet")  # a file where the store's directory must be: no open can succeed
    url = f"sqlite:///{blocker / 'state.db'}"
    with pytest.raises(StoreError) as first:
        await open_store(url)
    deferred = DeferredStore(lambda: open_store(url), str(first.value))
    for call in (deferred.get_user("u-1"), deferred.check_writable()):
        with pytest.raises(StoreError, match="not open yet"):
            await call

    waits: list[float] = []

    async def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:  # the volume appears during the second wait
            blocker.unlink()

    await deferred.keep_trying(sleep=wait)
    try:
        assert len(waits) == 2
        await deferred.insert_user(user("anna"))
        found = await deferred.get_user("u-anna")
        assert found is not None
        assert found.sonar_login == "anna"
    finally:
        await deferred.close()
