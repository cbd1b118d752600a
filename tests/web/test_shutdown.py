"""SIGTERM against a real `scim-bridge serve` process: readiness fails at once, the SCIM request in flight
completes, then the process exits 0 (serving.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from tests.support import ADMIN_TOKEN, SCIM_JSON
from tests.web.entra import user_body

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from tests.support import Sonar, SonarFactory

pytestmark = pytest.mark.slow
WAIT = 20.0  # seconds any one step may take before the test fails


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Served:
    """A `scim-bridge serve` process and its two addresses."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, admin_port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}/api/scim/v2"
        self.admin = f"http://127.0.0.1:{admin_port}"


@pytest.fixture
async def served(sonar_factory: SonarFactory, tmp_path: Path) -> AsyncIterator[tuple[Served, Sonar]]:
    sonar = await sonar_factory("2025.6", saml=False)
    port, admin_port = free_port(), free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scim_bridge",
        "--log-format",
        "json",
        "serve",
        "--port",
        str(port),
        "--admin-port",
        str(admin_port),
        "--sonar-url",
        str(sonar.server.make_url("/")),
        "--store",
        f"sqlite:///{tmp_path / 'state.db'}",
        "--shutdown-grace",
        "10",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "SCIM_BRIDGE_SONAR_DEADLINE": "15"},
    )
    try:
        yield Served(process, port, admin_port), sonar
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def ready(http: aiohttp.ClientSession, served: Served) -> int:
    try:
        async with http.get(f"{served.admin}/readyz") as resp:
            return resp.status
    except aiohttp.ClientConnectionError:
        return 0


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll `condition()` until it holds: another process starts or stops, with no event to wait on."""
    async with asyncio.timeout(WAIT):
        while not await condition():  # noqa: ASYNC110 - see the docstring
            await asyncio.sleep(0.05)


async def test_sigterm_lets_the_request_in_flight_finish(
    served: tuple[Served, Sonar], http: aiohttp.ClientSession
) -> None:
    """After SIGTERM /readyz fails while a slow SCIM request is still in flight; the request completes with
    201 and the process exits 0."""
    bridge, sonar = served
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": SCIM_JSON}
    await until(lambda: _is(ready(http, bridge), 200))
    async with http.get(f"{bridge.url}/Users", headers=headers) as warm:  # token and SAML verdicts cached
        assert warm.status == 200
    await sonar.control.set_faults(latency_ms=1500)
    await sonar.control.clear_journal()

    creating = asyncio.create_task(http.post(f"{bridge.url}/Users", json=user_body(), headers=headers))
    await until(lambda: _has_calls(sonar))
    bridge.process.send_signal(signal.SIGTERM)
    await until(lambda: _is(ready(http, bridge), 503))
    assert not creating.done()

    async with asyncio.timeout(WAIT):
        response = await creating
    assert response.status == 201
    response.release()
    async with asyncio.timeout(WAIT):
        assert await bridge.process.wait() == 0


async def _is(status: Any, expected: int) -> bool:
    return bool(await status == expected)


async def _has_calls(sonar: Sonar) -> bool:
    return bool(await sonar.control.journal())
