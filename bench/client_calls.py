"""SonarQube calls and time per SonarQube-client operation, per dialect, against the emulator.

The emulator runs in this process on a loopback port with no added latency, so the times are the client's
and the emulator's own cost plus loopback HTTP; the call counts come from the emulator's journal.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from scim_bridge.config import SonarQubeSettings
from scim_bridge.emulator import EmulatorSettings, create_emulator_app
from scim_bridge.sonarqube import GroupRef, SonarQubeClient, SonarQubeConnection, UserRef

ADMIN_TOKEN = "bench-admin-token"  # noqa: S105 - the emulator's throwaway token
ROUNDS = 30


@dataclass(frozen=True, slots=True)
class Measurement:
    profile: str
    dialect: str
    operation: str
    calls: float
    median_ms: float


@dataclass(frozen=True, slots=True)
class Target:
    """What one round of an operation works on: its number and the refs the store would hold."""

    number: int
    user: UserRef
    group: GroupRef

    @property
    def login(self) -> str:
        return f"bench{self.number}"


Operation = Callable[[SonarQubeClient, Target], Awaitable[Any]]


def _operations() -> dict[str, Operation]:
    async def create(client: SonarQubeClient, t: Target) -> None:
        await client.create_user(t.login, f"Bench {t.number}", f"{t.login}@example.com")

    async def find(client: SonarQubeClient, t: Target) -> None:
        await client.find_user(t.login)

    async def update(client: SonarQubeClient, t: Target) -> None:
        await client.update_user(t.user, name=f"Renamed {t.number}")

    async def add(client: SonarQubeClient, t: Target) -> None:
        await client.add_member(t.group, t.user)

    async def add_again(client: SonarQubeClient, t: Target) -> None:
        await client.add_member(t.group, t.user)

    async def remove(client: SonarQubeClient, t: Target) -> None:
        await client.remove_member(t.group, t.user)

    async def deactivate(client: SonarQubeClient, t: Target) -> None:
        await client.deactivate_user(t.user)

    async def reactivate(client: SonarQubeClient, t: Target) -> None:
        await client.create_user(t.login, f"Bench {t.number}", f"{t.login}@example.com")

    return {
        "create user": create,
        "find user by login": find,
        "update name": update,
        "add member": add,
        "add present member": add_again,
        "remove member": remove,
        "deactivate user": deactivate,
        "reactivate user": reactivate,
    }


async def _journal_length(http: aiohttp.ClientSession, base: str) -> int:
    async with http.get(f"{base}/_emulator/journal") as resp:
        return len(await resp.json())


async def measure_profile(profile: str) -> list[Measurement]:
    app = create_emulator_app(EmulatorSettings(profile=profile, admin_token=SecretStr(ADMIN_TOKEN)))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    results: list[Measurement] = []
    try:
        settings = SonarQubeSettings(sonar_url=base)  # type: ignore[arg-type]
        async with aiohttp.ClientSession() as http, await SonarQubeConnection.open(settings) as sonar:
            client = sonar.client(ADMIN_TOKEN)
            dialect = client.capabilities.dialect.value
            update_ok = client.capabilities.edits_external_profiles  # v1 refuses them for non-local users
            group = (await client.create_group("bench-group")).ref
            for name, operation in _operations().items():
                if name.startswith("update") and not update_ok:
                    continue
                # The refs the provisioning layer keeps in its store: login and, on v2, the uuid.
                users = [(await client.find_user(f"bench{i}")) for i in range(ROUNDS)]
                refs = [u.ref if u else UserRef(f"bench{i}") for i, u in enumerate(users)]
                before = await _journal_length(http, base)
                times = []
                for i in range(ROUNDS):
                    start = time.perf_counter()
                    await operation(client, Target(i, refs[i], group))
                    times.append((time.perf_counter() - start) * 1000)
                calls = (await _journal_length(http, base) - before) / ROUNDS
                results.append(Measurement(profile, dialect, name, calls, statistics.median(times)))
    finally:
        await runner.cleanup()
    return results


def render(measurements: list[Measurement]) -> str:
    lines = [
        "| profile | dialect | operation | SonarQube calls | median ms |",
        "|---|---|---|---:|---:|",
    ]
    lines += [
        f"| {m.profile} | {m.dialect} | {m.operation} | {m.calls:g} | {m.median_ms:.2f} |"
        for m in measurements
    ]
    return "\n".join(lines)
