"""SonarQube calls per SCIM request for Entra's request catalogue, and the bridge's CPU time per request.

The emulator and the bridge run as separate processes (`scim-bridge emulator`, `scim-bridge serve`), as in
production; this process plays Entra. Call counts come from the emulator's journal; CPU time is the bridge
process's user+system time (from /proc) over many identical requests, divided by their number.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

TOKEN = "bench-admin-token"  # noqa: S105 - the emulator's throwaway token
CPU_ROUNDS = 300
SCIM = "/api/scim/v2"


@dataclass(frozen=True, slots=True)
class CallCount:
    profile: str
    request: str
    calls: int
    goal: int | None


@dataclass(frozen=True, slots=True)
class CpuCost:
    profile: str
    request: str
    cpu_ms: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _wait_until_up(http: aiohttp.ClientSession, url: str) -> None:
    for _ in range(200):
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(url) as resp:
                if resp.status < 500:
                    return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


@contextlib.asynccontextmanager
async def _processes(profile: str, http: aiohttp.ClientSession) -> AsyncIterator[tuple[str, str, int]]:
    """An emulator and a bridge in front of it; yields their base URLs and the bridge's pid."""
    sonar_port, bridge_port, admin_port = _free_port(), _free_port(), _free_port()
    command = (sys.executable, "-m", "scim_bridge", "--log-level", "warning")
    sonar = f"http://127.0.0.1:{sonar_port}"
    base = f"http://127.0.0.1:{bridge_port}{SCIM}"
    emulator_args = ("--port", str(sonar_port), "--admin-token", TOKEN, "--profile", profile, "--saml")
    processes: list[asyncio.subprocess.Process] = []
    with tempfile.TemporaryDirectory() as state:
        env = {**os.environ, "SCIM_BRIDGE_STORE": f"sqlite:///{state}/bench.db"}
        try:
            processes.append(
                await asyncio.create_subprocess_exec(
                    *command, "emulator", *emulator_args, stdout=asyncio.subprocess.DEVNULL
                )
            )
            await _wait_until_up(http, f"{sonar}/api/server/version")
            bridge = await asyncio.create_subprocess_exec(
                *command,
                "serve",
                "--port",
                str(bridge_port),
                "--admin-port",
                str(admin_port),
                "--sonar-url",
                sonar,
                stdout=asyncio.subprocess.DEVNULL,
                env=env,
            )
            processes.append(bridge)
            # Ready: SonarQube seen and the store open (until then SCIM requests are 503).
            await _wait_until_up(http, f"http://127.0.0.1:{admin_port}/readyz")
            yield sonar, base, bridge.pid
        finally:
            for process in reversed(processes):
                process.terminate()
                await process.wait()


class Entra:
    """Sends what Entra sends; counts the SonarQube calls each request caused."""

    def __init__(self, http: aiohttp.ClientSession, sonar: str, base: str) -> None:
        self.http = http
        self.sonar = sonar
        self.base = base
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"}

    async def send(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, self.base + path, json=body, headers=self.headers) as resp:
            if resp.status >= 400:
                raise RuntimeError(f"{method} {path}: {resp.status} {await resp.text()}")
            return await resp.json(content_type=None) if resp.status != 204 else None

    async def journal_length(self) -> int:
        async with self.http.get(f"{self.sonar}/_emulator/journal") as resp:
            return len(await resp.json())

    async def counted(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        before = await self.journal_length()
        result = await self.send(method, path, body)
        return await self.journal_length() - before, result


def _user(name: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "externalId": name,
        "userName": f"{name}@contoso.example",
        "active": True,
        "displayName": name.title(),
        "emails": [{"primary": True, "type": "work", "value": f"{name}@contoso.example"}],
    }


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)}


async def catalogue(entra: Entra, profile: str) -> list[CallCount]:
    """Every Entra request shape once, in the order of a provisioning cycle."""
    counts: list[CallCount] = []

    async def count(request: str, goal: int | None, method: str, path: str, body: Any = None) -> Any:
        calls, result = await entra.counted(method, path, body)
        counts.append(CallCount(profile, request, calls, goal))
        return result

    await count(
        "first request: token check (cached per token for auth_cache_seconds)", None, "GET", "/Schemas"
    )
    probe = f'/Users?filter=userName+eq+"{uuid.uuid4()}"'
    await count("Test Connection probe (user filter, no match)", 2, "GET", probe)
    await count(
        "group probe (displayName filter, no match)",
        2,
        "GET",
        f'/Groups?excludedAttributes=members&filter=displayName+eq+"{uuid.uuid4()}"',
    )
    await count(
        "match user by userName (no match)", 2, "GET", '/Users?filter=userName+eq+"alice@contoso.example"'
    )
    bob = await count(
        "first create: also reads SAML settings (cached 5 min)", None, "POST", "/Users", _user("bob")
    )
    alice = await count("create user", 3, "POST", "/Users", _user("alice"))
    await count(
        "match user by userName (match)", 2, "GET", '/Users?filter=userName+eq+"alice@contoso.example"'
    )
    await count("get user by id", 1, "GET", f"/Users/{alice['id']}")
    await count(
        "update user (replace displayName)",
        None,
        "PATCH",
        f"/Users/{alice['id']}",
        _patch({"op": "Replace", "path": "displayName", "value": "Alice A."}),
    )
    await count(
        "set manager",
        None,
        "PATCH",
        f"/Users/{alice['id']}",
        _patch(
            {
                "op": "Add",
                "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                "value": bob["id"],
            }
        ),
    )
    await count(
        "match group by displayName (no match)",
        2,
        "GET",
        '/Groups?excludedAttributes=members&filter=displayName+eq+"Devs"',
    )
    group = await count(
        "create group",
        None,
        "POST",
        "/Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Devs",
            "externalId": "g1",
        },
    )
    await count(
        "get group by id (members excluded)", 1, "GET", f"/Groups/{group['id']}?excludedAttributes=members"
    )
    member = {"op": "Add", "path": "members", "value": [{"$ref": None, "value": alice["id"]}]}
    await count("add one member", 1, "PATCH", f"/Groups/{group['id']}", _patch(member))
    await count(
        "rename group",
        1,
        "PATCH",
        f"/Groups/{group['id']}",
        _patch({"op": "Replace", "path": "displayName", "value": "Developers"}),
    )
    await count(
        "disable user",
        1,
        "PATCH",
        f"/Users/{alice['id']}",
        _patch({"op": "Replace", "path": "active", "value": "False"}),
    )
    await count(
        "enable user (reactivate, 1 group)",
        None,
        "PATCH",
        f"/Users/{alice['id']}",
        _patch({"op": "Replace", "path": "active", "value": "True"}),
    )
    removal = {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": alice["id"]}]}
    await count("remove one member", None, "PATCH", f"/Groups/{group['id']}", _patch(removal))
    await count("delete user", 1, "DELETE", f"/Users/{bob['id']}")
    await count("delete group", 1, "DELETE", f"/Groups/{group['id']}")
    return counts


async def cpu_costs(entra: Entra, profile: str, pid: int) -> list[CpuCost]:
    """Bridge CPU per request for the two requests Entra sends most: a filter GET and a PATCH."""
    user = await entra.send("POST", "/Users", _user("carol"))
    flip = ("False", "True")
    requests: dict[str, Callable[[int], Awaitable[Any]]] = {
        "filter GET (userName eq, match)": lambda _i: entra.send(
            "GET", '/Users?filter=userName+eq+"carol@contoso.example"'
        ),
        "PATCH (replace displayName)": lambda i: entra.send(
            "PATCH",
            f"/Users/{user['id']}",
            _patch({"op": "Replace", "path": "displayName", "value": f"Carol {i}"}),
        ),
        "PATCH (disable / enable)": lambda i: entra.send(
            "PATCH", f"/Users/{user['id']}", _patch({"op": "Replace", "path": "active", "value": flip[i % 2]})
        ),
    }
    costs = []
    for name, send in requests.items():
        await send(1)
        before = _cpu_seconds(pid)
        for i in range(CPU_ROUNDS):
            await send(i)
        costs.append(CpuCost(profile, name, (_cpu_seconds(pid) - before) / CPU_ROUNDS * 1000))
    return costs


async def measure(profile: str) -> tuple[list[CallCount], list[CpuCost]]:
    async with aiohttp.ClientSession() as http, _processes(profile, http) as (sonar, base, pid):
        entra = Entra(http, sonar, base)
        started = time.perf_counter()
        counts = await catalogue(entra, profile)
        del started
        return counts, await cpu_costs(entra, profile, pid)


def render_counts(counts: list[CallCount]) -> str:
    profiles = list(dict.fromkeys(c.profile for c in counts))
    requests = list(dict.fromkeys(c.request for c in counts))
    table = {(c.profile, c.request): c for c in counts}
    lines = [
        "| Entra request | goal | " + " | ".join(profiles) + " |",
        "|---|---:|" + "---:|" * len(profiles),
    ]
    for request in requests:
        goal = next(c.goal for c in counts if c.request == request)
        cells = [str(table[(p, request)].calls) if (p, request) in table else "-" for p in profiles]
        lines.append(f"| {request} | {'' if goal is None else f'≤ {goal}'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_cpu(costs: list[CpuCost]) -> str:
    lines = ["| profile | request | bridge CPU ms / request |", "|---|---|---:|"]
    lines += [f"| {c.profile} | {c.request} | {c.cpu_ms:.2f} |" for c in costs]
    return "\n".join(lines)
