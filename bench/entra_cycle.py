"""An Entra provisioning cycle at scale against the bridge and the emulator, each its own process.

Run `python -m bench.entra_cycle --small` (a quick run) or with `--users/--groups/--memberships/...` for a
full-scale one. Every request kind runs as its own phase, so that the bridge's CPU time (from /proc) and the
SonarQube calls (from the emulator's journal) can be attributed to that kind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

TOKEN = "bench-admin-token"  # noqa: S105 - the emulator's throwaway admin token
SCIM = "/api/scim/v2"
ROOT = Path(__file__).resolve().parent.parent
USER_SCHEMAS = [
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
]
GROUP_SCHEMAS = [
    "urn:ietf:params:scim:schemas:core:2.0:Group",
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
]
PATCH_SCHEMAS = ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]
MANAGER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"
ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?<=/)[A-Za-z0-9_-]{20,}$")
"""Resource ids in journal paths, replaced so that calls group by endpoint."""
PER_GROUP = 5
"""Entra sends up to five member PATCHes on one group at once (docs/entra.md E8)."""


@dataclass(frozen=True, slots=True)
class Scale:
    users: int = 50
    groups: int = 5
    memberships: int = 100
    concurrency: int = 10
    latency_ms: int = 5
    profile: str = "2025.6"
    changes: float = 0.1
    """Share of users (renames, disables) and memberships (removals) the incremental pass touches."""
    managers: float = 0.5
    """Share of users that get a manager."""


SMALL = Scale()


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process; fields 14 and 15 of /proc/<pid>/stat (after the command name)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def wait_for(http: aiohttp.ClientSession, url: str, *, ok: Callable[[int], bool], what: str) -> None:
    for _ in range(400):
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(url) as resp:
                if ok(resp.status):
                    return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{what} did not come up at {url}")


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL when it does not go within 10 s (the bridge drains in-flight requests)."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def processes(
    *commands: Sequence[str], cwd: Path = ROOT
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Start each command as its own process; stop them all (in reverse) however the block ends."""
    started: list[asyncio.subprocess.Process] = []
    try:
        for command in commands:
            process = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.DEVNULL, stdin=asyncio.subprocess.DEVNULL, cwd=cwd
            )
            started.append(process)
        yield started
    finally:
        for process in reversed(started):
            await stop(process)


def emulator_command(port: int, scale: Scale) -> list[str]:
    return [
        *(sys.executable, "-m", "scim_bridge", "--log-level", "warning", "emulator"),
        *("--port", str(port), "--admin-token", TOKEN, "--profile", scale.profile, "--saml"),
        *("--latency-ms", str(scale.latency_ms)),
    ]


def bridge_command(port: int, admin_port: int, sonar: str, store: str) -> list[str]:
    return [
        *(sys.executable, "-m", "scim_bridge", "--log-level", "warning", "serve"),
        *("--port", str(port), "--admin-port", str(admin_port), "--sonar-url", sonar),
        *("--store", store),
    ]


@dataclass(frozen=True, slots=True)
class Target:
    """A SCIM server under test: where it answers, the bearer token, its pid (for CPU), and the emulator
    behind it (None for a server that calls nothing)."""

    name: str
    base: str
    token: str
    pid: int
    sonar: str | None = None
    sonar_pid: int | None = None
    admin: str | None = None
    """The bridge's admin listener, for its /metrics."""


@contextlib.asynccontextmanager
async def bridge_and_emulator(
    http: aiohttp.ClientSession, scale: Scale, store: str | None = None
) -> AsyncIterator[Target]:
    """The emulator, and the bridge in front of it on `store` (a store URL; a new SQLite file if None)."""
    sonar_port, port, admin_port = free_port(), free_port(), free_port()
    sonar = f"http://127.0.0.1:{sonar_port}"
    with tempfile.TemporaryDirectory(prefix="entra-cycle-") as state:
        store = store or f"sqlite:///{Path(state) / 's.db'}"
        async with processes(emulator_command(sonar_port, scale)) as (emulator,):
            await wait_for(http, f"{sonar}/api/server/version", ok=lambda s: s == 200, what="the emulator")
            async with processes(bridge_command(port, admin_port, sonar, store)) as (bridge,):
                await wait_for(
                    http, f"http://127.0.0.1:{admin_port}/readyz", ok=lambda s: s == 200, what="the bridge"
                )
                yield Target(
                    "scim-bridge",
                    f"http://127.0.0.1:{port}{SCIM}",
                    TOKEN,
                    bridge.pid,
                    sonar,
                    emulator.pid,
                    f"http://127.0.0.1:{admin_port}",
                )


# --- Entra's requests ----------------------------------------------------------------------------


def user_body(i: int) -> dict[str, Any]:
    """a4-create-user.json's shape."""
    given, family = f"User{i}", "Bench"
    return {
        "schemas": USER_SCHEMAS,
        "externalId": f"user{i}",
        "userName": f"user{i}.bench@contoso.example",
        "active": True,
        "displayName": f"{given} {family}",
        "emails": [{"primary": True, "type": "work", "value": f"User{i}.Bench@Contoso.Example"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": f"{given} {family}", "familyName": family, "givenName": given},
        "roles": [],
    }


def group_body(g: int, schemas: Sequence[str] = GROUP_SCHEMAS) -> dict[str, Any]:
    """a10-create-group.json's shape."""
    return {
        "schemas": list(schemas),
        "externalId": str(uuid.UUID(int=g + 1)),
        "displayName": f"Bench Group {g}",
        "meta": {"resourceType": "Group"},
    }


def patch(op: str, path: str, value: Any) -> dict[str, Any]:
    return {"schemas": PATCH_SCHEMAS, "Operations": [{"op": op, "path": path, "value": value}]}


def member(user_id: str) -> list[dict[str, Any]]:
    """a12/a13's member value: Entra sends `$ref: null`."""
    return [{"$ref": None, "value": user_id}]


def filter_path(resource: str, attribute: str, value: str, *, exclude_members: bool = False) -> str:
    query = "excludedAttributes=members&" if exclude_members else ""
    return f"/{resource}?{query}filter=" + quote(f'{attribute} eq "{value}"', safe="")


def memberships(scale: Scale) -> list[tuple[int, int]]:
    """(group, user) pairs, spread round-robin over the groups, each pair once."""
    count = min(scale.memberships, scale.users * scale.groups)
    return [
        (i % scale.groups, (i // scale.groups + i % scale.groups * 7) % scale.users) for i in range(count)
    ]


# --- measurement -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Phase:
    """One request kind: what was sent, how long each took, what it cost."""

    kind: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    conflicts: int = 0
    sonar_calls: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    sonar_paths: dict[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    def summary(self, latency_ms: float) -> dict[str, Any]:
        n = max(self.requests, 1)
        per_request = self.sonar_calls / n
        # Added latency: the round trip minus what SonarQube's latency alone would cost for the kind's average
        # call count; calls a request makes in parallel can make it negative.
        added = sorted(lat * 1000 - per_request * latency_ms for lat in self.latencies) or [0.0]
        return {
            "requests": self.requests,
            "sonar_calls": self.sonar_calls,
            "calls_per_request": round(per_request, 3),
            "cpu_ms_per_request": round(self.cpu_s * 1000 / n, 3),
            "added_ms_p50": round(percentile(added, 0.50), 2),
            "added_ms_p99": round(percentile(added, 0.99), 2),
            "wall_s": round(self.wall_s, 3),
            "conflicts": self.conflicts,
            "errors": len(self.errors),
            "sonar_paths": self.sonar_paths,
        }


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


class Progress:
    """A one-line progress bar on stderr, only when it is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.kind, self.total, self.done = "", 0, 0

    def start(self, kind: str, total: int) -> None:
        self.kind, self.total, self.done = kind, total, 0
        self.draw()

    def step(self) -> None:
        self.done += 1
        if self.done == self.total or self.done % 10 == 0:
            self.draw()

    def draw(self) -> None:
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (width - filled)
        sys.stderr.write(f"\r{self.kind[:34]:<34} [{bar}] {self.done}/{self.total}\x1b[K")
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    body: Any = None
    group: int | None = None
    """Member PATCHes name their group: at most PER_GROUP of them run on one group at once."""


class Driver:
    """Sends Entra's requests to a target, one phase per request kind."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        target: Target,
        scale: Scale,
        *,
        progress: Progress | None = None,
        group_schemas: Sequence[str] = GROUP_SCHEMAS,
        entra_forms: bool = True,
    ) -> None:
        """`group_schemas` and `entra_forms=False` adapt the requests for a peer that refuses Entra's
        non-standard forms (the Microsoft group URN, a bare-string manager, a member removal carrying a
        value): it then gets RFC 7644's equivalents, which do the same work."""
        self.group_schemas = group_schemas
        self.entra_forms = entra_forms
        self.http = http
        self.target = target
        self.scale = scale
        self.progress = progress or Progress()
        self.headers = {"Authorization": f"Bearer {target.token}", "Content-Type": "application/scim+json"}
        self.limit = asyncio.Semaphore(scale.concurrency)
        self.per_group: defaultdict[int, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(PER_GROUP)
        )
        self.phases: list[Phase] = []

    async def journal(self, method: str) -> list[dict[str, Any]]:
        """The emulator's journal (GET) or clear it (DELETE); nothing when the target calls no SonarQube."""
        if self.target.sonar is None:
            return []
        async with self.http.request(method, f"{self.target.sonar}/_emulator/journal") as resp:
            resp.raise_for_status()
            entries: list[dict[str, Any]] = await resp.json() if method == "GET" else []
            return entries

    async def send(self, phase: Phase, request: Request) -> Any:
        group = self.per_group[request.group] if request.group is not None else contextlib.nullcontext()
        async with group, self.limit:
            started = time.perf_counter()
            async with self.http.request(
                request.method, self.target.base + request.path, json=request.body, headers=self.headers
            ) as resp:
                text = await resp.text()
                phase.latencies.append(time.perf_counter() - started)
        self.progress.step()
        if resp.status == 409:
            phase.conflicts += 1  # expected when a matching query raced a create; never counted as an error
            return None
        if resp.status >= 300:
            phase.errors.append(f"{request.method} {request.path}: {resp.status} {text[:300]}")
            return None
        return json.loads(text) if text else None

    async def phase(self, kind: str, requests: Sequence[Request]) -> list[Any]:
        """Run one kind's requests (`concurrency` at once), measuring SonarQube calls and CPU around them."""
        phase = Phase(kind)
        self.progress.start(kind, len(requests))
        await self.journal("DELETE")
        cpu = cpu_seconds(self.target.pid)
        started = time.perf_counter()
        results = await asyncio.gather(*(self.send(phase, request) for request in requests))
        phase.wall_s = time.perf_counter() - started
        phase.cpu_s = cpu_seconds(self.target.pid) - cpu
        entries = await self.journal("GET")
        phase.sonar_calls = len(entries)
        phase.sonar_paths = dict(Counter(f"{e['method']} {ID.sub('{id}', e['path'])}" for e in entries))
        self.phases.append(phase)
        return list(results)

    def manager(self, manager_id: str) -> dict[str, Any]:
        """a5-manager-add: Entra sends the manager's id as a bare string."""
        return patch("Add", MANAGER, manager_id if self.entra_forms else {"value": manager_id})

    def removal(self, user_id: str) -> dict[str, Any]:
        """a13: Entra names the member in the value; RFC 7644 in a path filter, with no value."""
        if self.entra_forms:
            return patch("Remove", "members", member(user_id))
        operation = {"op": "remove", "path": f'members[value eq "{user_id}"]'}
        return {"schemas": PATCH_SCHEMAS, "Operations": [operation]}

    async def cycle(self) -> None:
        """Entra's initial cycle, then an incremental one (docs/entra.md E9)."""
        user_ids, group_ids = await self.initial()
        await self.incremental(user_ids, group_ids)

    async def initial(self) -> tuple[list[str], list[str]]:
        s = self.scale
        probe = filter_path("Users", "userName", str(uuid.uuid4()))
        await self.phase("probe (userName filter, random)", [Request("GET", probe)])
        users = [user_body(i) for i in range(s.users)]
        await self.phase(
            "match user (no match)",
            [Request("GET", filter_path("Users", "userName", user["userName"])) for user in users],
        )
        created = await self.phase("create user", [Request("POST", "/Users", user) for user in users])
        user_ids = [u["id"] if u else "" for u in created]
        groups = [group_body(g, self.group_schemas) for g in range(s.groups)]
        await self.phase(
            "match group (no match)",
            [
                Request(
                    "GET", filter_path("Groups", "displayName", group["displayName"], exclude_members=True)
                )
                for group in groups
            ],
        )
        created = await self.phase("create group", [Request("POST", "/Groups", group) for group in groups])
        group_ids = [g["id"] if g else "" for g in created]
        # References come in a second pass, once every object exists (docs/entra.md E9).
        await self.phase(
            "add member",
            [
                Request("PATCH", f"/Groups/{group_ids[g]}", patch("Add", "members", member(user_ids[u])), g)
                for g, u in memberships(s)
            ],
        )
        managed = range(1, s.users, max(1, round(1 / s.managers))) if s.managers > 0 else range(0)
        await self.phase(
            "set manager",
            [Request("PATCH", f"/Users/{user_ids[i]}", self.manager(user_ids[i - 1])) for i in managed],
        )
        return user_ids, group_ids

    async def incremental(self, user_ids: list[str], group_ids: list[str]) -> None:
        s = self.scale
        changed = max(1, int(s.users * s.changes))
        await self.phase(
            "rename user (replace userName)",
            [
                Request(
                    "PATCH",
                    f"/Users/{user_ids[i]}",
                    patch("Replace", "userName", f"user{i}.renamed@contoso.example"),
                )
                for i in range(changed)
            ],
        )
        # Entra sends the booleans as the strings "False" / "True" (a6).
        for kind, value in (("disable user", "False"), ("enable user", "True")):
            await self.phase(
                kind,
                [
                    Request("PATCH", f"/Users/{user_ids[i]}", patch("Replace", "active", value))
                    for i in range(s.users - changed, s.users)
                ],
            )
        removed = memberships(s)[:: max(1, round(1 / s.changes))] if s.changes > 0 else []
        await self.phase(
            "remove member",
            [Request("PATCH", f"/Groups/{group_ids[g]}", self.removal(user_ids[u]), g) for g, u in removed],
        )


# --- the report ----------------------------------------------------------------------------------


def report(driver: Driver, wall_s: float, others_cpu_s: dict[str, float] | None = None) -> dict[str, Any]:
    """The cycle's figures; `others_cpu_s`: the CPU seconds the other processes on the machine (the
    emulator, this driver) spent over the cycle, to show how busy the machine was."""
    s = driver.scale
    phases = driver.phases
    calls = sum(p.sonar_calls for p in phases)
    requests = sum(p.requests for p in phases)
    cpu = sum(p.cpu_s for p in phases)
    # The best any bridge could do: every SonarQube call pays the latency, `concurrency` of them at once.
    lower = calls * s.latency_ms / 1000 / s.concurrency
    return {
        "target": driver.target.name,
        "scale": asdict(s),
        "requests": requests,
        "wall_s": round(wall_s, 3),
        "sonar_calls": calls,
        "lower_bound_s": round(lower, 3),
        "overhead_ratio": round(wall_s / lower, 2) if lower else None,
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_request": round(cpu * 1000 / max(requests, 1), 3),
        "peak_rss_mb": round(peak_rss_mb(driver.target.pid), 1),
        "errors": sum(len(p.errors) for p in phases),
        "conflicts": sum(p.conflicts for p in phases),
        "error_samples": [f"{p.kind} ({len(p.errors)}x): {p.errors[0]}" for p in phases if p.errors],
        "kinds": {p.kind: p.summary(s.latency_ms) for p in phases},
        "others_cpu_s": {name: round(seconds, 3) for name, seconds in (others_cpu_s or {}).items()},
        "cores": os.cpu_count(),
    }


def render(result: dict[str, Any]) -> str:
    lines = [
        f"{result['target']}: {result['requests']} SCIM requests, scale {result['scale']}",
        (
            f"wall {result['wall_s']:.2f} s; SonarQube calls {result['sonar_calls']}; "
            f"lower bound {result['lower_bound_s']:.2f} s; overhead ratio {result['overhead_ratio']}"
        ),
        (
            f"CPU {result['cpu_s']:.2f} s ({result['cpu_ms_per_request']:.2f} ms/request); "
            f"peak RSS {result['peak_rss_mb']:.1f} MB; errors {result['errors']}; 409s {result['conflicts']}"
        ),
        "",
        "| request | n | SonarQube calls / request | CPU ms / request | added ms p50 | added ms p99 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {kind} | {k['requests']} | {k['calls_per_request']:.2f} | {k['cpu_ms_per_request']:.2f} "
        f"| {k['added_ms_p50']:.1f} | {k['added_ms_p99']:.1f} |"
        for kind, k in result["kinds"].items()
    ]
    lines.append(
        f"CPU is read from /proc in {1000 / os.sysconf('SC_CLK_TCK'):.0f} ms ticks: kinds with few requests "
        "are coarse; the probe also pays the first request's warm-up and token check."
    )
    for name, what in (("store_seconds", "store operations"), ("sonarqube_seconds", "SonarQube calls")):
        waits = sorted(result.get(name, {}).items(), key=lambda item: -item[1]["seconds"])
        shown = ", ".join(
            f"{label} {v['count']:.0f}x {v['seconds'] * 1000 / max(v['count'], 1):.1f} ms"
            for label, v in waits[:6]
        )
        if shown:
            lines.append(f"{what} as the bridge timed them (count, mean): {shown}")
    if result["others_cpu_s"]:
        others = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result["others_cpu_s"].items())
        busy = (result["cpu_s"] + sum(result["others_cpu_s"].values())) / (result["wall_s"] * result["cores"])
        lines.append(
            f"CPU of the other processes: {others}; the machine's {result['cores']} cores {busy:.0%} busy"
        )
    lines += [f"error: {e}" for e in result["error_samples"]]
    return "\n".join(lines)


async def run(scale: Scale, store: str) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=scale.concurrency * 2 + 4)
    async with (
        bench_store(store) as store_url,
        aiohttp.ClientSession(timeout=timeout, connector=connector) as http,
        bridge_and_emulator(http, scale, store_url) as target,
    ):
        driver = Driver(http, target, scale)
        assert target.sonar_pid is not None
        emulator_before, driver_before = cpu_seconds(target.sonar_pid), time.process_time()
        started = time.perf_counter()
        await driver.cycle()
        wall = time.perf_counter() - started
        others = {
            "emulator": cpu_seconds(target.sonar_pid) - emulator_before,
            "driver": time.process_time() - driver_before,
        }
        return {**report(driver, wall, others), "store": store, **await bridge_timings(driver)}


# A histogram's sum and count in Prometheus' text format: `<name>_sum{<first label>="<value>",...} 1.5`.
TIMINGS = {
    "store_seconds": re.compile(
        r'scim_bridge_store_operation_seconds_(sum|count)\{operation="([^"]+)"\} (\S+)'
    ),
    "sonarqube_seconds": re.compile(
        r'scim_bridge_sonarqube_call_seconds_(sum|count)\{endpoint="([^"]+)",method="[^"]+"\} (\S+)'
    ),
}


async def bridge_timings(driver: Driver) -> dict[str, dict[str, dict[str, float]]]:
    """From the bridge's /metrics, per store operation and per SonarQube endpoint: how many, and the seconds
    they took in all, as the bridge saw them. Time a request spends waiting shows here, not as CPU."""
    assert driver.target.admin is not None
    async with driver.http.get(f"{driver.target.admin}/metrics") as resp:
        text = await resp.text()
    timings = {}
    for name, pattern in TIMINGS.items():
        found: defaultdict[str, dict[str, float]] = defaultdict(lambda: {"sum": 0.0, "count": 0.0})
        for kind, label, value in pattern.findall(text):
            found[label][kind] += float(value)
        timings[name] = {
            label: {"count": v["count"], "seconds": round(v["sum"], 2)} for label, v in sorted(found.items())
        }
    return timings


@contextlib.asynccontextmanager
async def bench_store(kind: str) -> AsyncIterator[str | None]:
    """The store URL for `kind`: None (a new SQLite file per bridge) for sqlite; for postgres, a database on
    a throw-away PostgreSQL server started here, as the test suite starts one (tests/postgres_server.py)."""
    if kind == "sqlite":
        yield None
        return
    from tests.postgres_server import INSTALL_HINT, find_bindir, running_server  # noqa: PLC0415 - only here

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit(INSTALL_HINT)
    with running_server(bindir) as server:
        yield await server.new_database("bench")


def add_scale_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--small", action="store_true", help="the quick defaults, whatever the other flags say"
    )
    parser.add_argument("--users", type=int, default=SMALL.users)
    parser.add_argument("--groups", type=int, default=SMALL.groups)
    parser.add_argument("--memberships", type=int, default=SMALL.memberships)
    parser.add_argument("--concurrency", type=int, default=SMALL.concurrency)
    parser.add_argument("--latency-ms", type=int, default=SMALL.latency_ms, help="the emulator's latency")
    parser.add_argument("--profile", default=SMALL.profile, help="SonarQube version the emulator imitates")
    parser.add_argument("--changes", type=float, default=SMALL.changes, help="share changed incrementally")
    parser.add_argument(
        "--managers", type=float, default=SMALL.managers, help="share of users with a manager"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="the bridge's state store (postgres: a throw-away server, needs PostgreSQL's binaries)",
    )


def scale_of(args: argparse.Namespace) -> Scale:
    if args.small:
        return SMALL
    return Scale(
        users=args.users,
        groups=args.groups,
        memberships=args.memberships,
        concurrency=args.concurrency,
        latency_ms=args.latency_ms,
        profile=args.profile,
        changes=args.changes,
        managers=args.managers,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.entra_cycle", description=__doc__)
    add_scale_arguments(parser)
    add_store_argument(parser)
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(run(scale_of(args), args.store))
    except KeyboardInterrupt:  # the servers were stopped on the way out; no traceback for a Ctrl-C
        return 130
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
