"""The scenario harness: real processes, an Entra-style driver, disruptions, and the check ("the zeros").

- **Processes.** `Emulator` runs `scim-bridge emulator` and `Bridge` runs `scim-bridge serve` on free loopback
  ports, each logging to a file of the scenario's directory; the bridge's store is one SQLite file there, and
  a bridge killed with SIGKILL is started again on the same ports and the same store.
- **The driver.** `EntraDriver` sends what Entra sends (docs/entra.md A2, A4, A6, A8, A10-A13): an initial
  cycle (per user a `userName` filter then a POST; per group a `displayName` filter then a POST, then one
  PATCH per member, at most 5 at once per group, about 10 requests at once overall, Q18 and E8), then
  incremental passes (disables, member removals and additions, a group rename; then re-enables). A request
  that fails (5xx, 429, a connection error, a timeout) fails its operation, which is tried again in a later
  cycle (E6), after a pause that honours `Retry-After` up to a cap instead of sleeping for real minutes.
  A 4xx other than 429 is a bug of the bridge and is recorded as one.
- **Disruptions**, started when the driver has sent a given number of requests: SonarQube's faults, SonarQube
  down, the state store locked by another connection, the bridge killed.
- **The zeros.** `count_zeros` compares the emulator's state with what Entra asked for; `store_view` asks the
  bridge for every resource it created (the store's side of the truth).

Everything is seeded (`Plan.generate`, the emulator's fault choices, the moments of the disruptions), so a
failing scenario is run again with the seed it prints; concurrency still varies the interleaving.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import signal
import socket
import sqlite3
import sys
import time
from collections import Counter, defaultdict
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote_plus

import aiohttp
from yarl import URL

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping
    from pathlib import Path

ADMIN_TOKEN: Final = "scenario-admin-token"
PROFILE: Final = "2025.6"
BASE_PATH: Final = "/api/scim/v2"
SCIM_JSON: Final = "application/scim+json"
USER_SCHEMA: Final = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA: Final = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTRA_GROUP_SCHEMA: Final = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
PATCH_OP_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:Error"
FAULT_KINDS: Final = ("500", "503", "429", "reset", "slow")
START_TIMEOUT: Final = 30.0  # seconds a process may take to listen (and the bridge to be ready)
POLL: Final = 0.05  # seconds between two looks at another process
_OPERATION: ContextVar[str | None] = ContextVar("operation", default=None)  # whose requests a call belongs to
_UUID: Final = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_NAMES: Final = re.compile(r"u\d{4}\.scenario@contoso\.example|Scenario Group \d{2}")
BUG_ATTEMPTS: Final = 3  # an operation refused with a 4xx this many times is given up

SCENARIOS: Final = ("faults", "sonarqube-down", "store-locked", "kills", "combined")
SEEDS: Final = {
    "faults": 61001,
    "sonarqube-down": 61002,
    "store-locked": 61003,
    "kills": 61004,
    "combined": 61005,
}
"""The fixed seed of each scenario; `python -m tests.scenarios --seed` overrides them."""


class HarnessError(Exception):
    """The harness could not do its part (a process would not start): not a finding about the bridge."""


# --- sizes, plans ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Size:
    users: int
    groups: int
    memberships: int

    def __post_init__(self) -> None:
        if self.users < 4 or self.groups < 2:
            raise ValueError("a scenario needs at least 4 users and 2 groups")
        if not 0 < self.memberships <= self.users * self.groups:
            raise ValueError(f"memberships must be between 1 and users x groups ({self.users * self.groups})")

    def __str__(self) -> str:
        return f"{self.users}/{self.groups}/{self.memberships}"


SHORT: Final = Size(40, 6, 120)
"""The size inside `make test`."""
LONG: Final = Size(300, 30, 1500)
"""The size of the long runs (`python -m tests.scenarios`)."""

Pair = tuple[int, int]  # (group index, user index)


@dataclass(frozen=True, slots=True)
class Plan:
    """What Entra asks for, in three passes: the initial cycle; an incremental pass (disables, member removals
    and additions, some of them of disabled users, a rename); a last pass that re-enables some disabled users
    while members of theirs are removed and added at the same time. Indexes name users and groups."""

    users: tuple[str, ...]
    groups: tuple[str, ...]
    memberships: frozenset[Pair]
    disables: frozenset[int]
    removals: frozenset[Pair]
    additions: frozenset[Pair]
    renamed: int
    new_name: str
    enables: frozenset[int]
    late_removals: frozenset[Pair]
    late_additions: frozenset[Pair]

    @classmethod
    def generate(cls, size: Size, seed: int) -> Plan:
        rng = random.Random(seed)
        users = tuple(f"u{index:04d}.scenario@contoso.example" for index in range(size.users))
        groups = tuple(f"Scenario Group {index:02d}" for index in range(size.groups))
        every_pair = [(group, user) for group in range(size.groups) for user in range(size.users)]
        memberships = frozenset(rng.sample(every_pair, size.memberships))
        disables = frozenset(rng.sample(range(size.users), max(2, size.users * 15 // 100)))
        enables = frozenset(rng.sample(sorted(disables), max(1, len(disables) // 2)))

        def pick(pairs: Iterable[Pair], count: int) -> set[Pair]:
            listed = sorted(pairs)
            return set(rng.sample(listed, min(count, len(listed))))

        # Removed or added while disabled: gone, or given back, at re-enable.
        removals = pick(memberships, size.memberships // 10) | pick(
            (p for p in memberships if p[1] in enables), 2
        )
        absent = set(every_pair) - memberships
        additions = pick(absent, size.memberships // 20) | pick((p for p in absent if p[1] in enables), 2)
        between = (memberships - removals) | additions
        # Changed while being re-enabled (two requests on two locks, in flight together).
        late_removals = pick((p for p in between if p[1] in enables), 3)
        late_additions = pick((p for p in set(every_pair) - between if p[1] in enables), 3)
        renamed = rng.randrange(size.groups)
        return cls(
            users=users,
            groups=groups,
            memberships=memberships,
            disables=disables,
            removals=frozenset(removals),
            additions=frozenset(additions),
            renamed=renamed,
            new_name=f"{groups[renamed]} renamed",
            enables=enables,
            late_removals=frozenset(late_removals),
            late_additions=frozenset(late_additions),
        )

    def final_name(self, group: int) -> str:
        return self.new_name if group == self.renamed else self.groups[group]

    def final_active(self, user: int) -> bool:
        return user not in self.disables or user in self.enables

    @property
    def final_memberships(self) -> frozenset[Pair]:
        return (
            ((self.memberships - self.removals) | self.additions) - self.late_removals
        ) | self.late_additions

    @property
    def expected_requests(self) -> int:
        """Requests of a run without failures."""
        changes = (
            self.disables,
            self.removals,
            self.additions,
            self.enables,
            self.late_removals,
            self.late_additions,
        )
        return 2 * len(self.users) + 2 * len(self.groups) + len(self.memberships) + 1 + sum(map(len, changes))


# --- processes -----------------------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """`count` different free loopback ports (held together while chosen, so that none is chosen twice)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def _environment() -> dict[str, str]:
    """The test's environment without any `SCIM_BRIDGE_*` setting: a scenario passes its settings as flags."""
    return {name: value for name, value in os.environ.items() if not name.startswith("SCIM_BRIDGE_")}


def _open_log(path: Path) -> Any:
    return path.open("ab")


async def _spawn(args: list[str], log: Path) -> asyncio.subprocess.Process:
    """A `python -m scim_bridge …` process whose output is appended to `log`."""
    sink = _open_log(log)
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "scim_bridge",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            env=_environment(),
        )
    finally:
        sink.close()  # the child has its own descriptor


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def _until(
    condition: Callable[[], Awaitable[bool]], what: str, process: asyncio.subprocess.Process, log: Path
) -> None:
    """Poll another process until `condition()` holds: there is no event to wait on across processes."""
    deadline = time.monotonic() + START_TIMEOUT
    while not await condition():
        if process.returncode is not None:
            raise HarnessError(f"{what}: the process exited with {process.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise HarnessError(f"{what}: not after {START_TIMEOUT} s:\n{_tail(log)}")
        await asyncio.sleep(POLL)


async def _stop(process: asyncio.subprocess.Process | None) -> None:
    if process is None or process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(10):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()


class Emulator:
    """`scim-bridge emulator` (SonarQube 2025.6, SAML on) in a subprocess, and its `/_emulator/` controls."""

    def __init__(self, workdir: Path, http: aiohttp.ClientSession, *, saml: bool = True) -> None:
        (self.port,) = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = http
        self.saml = saml
        self.log = workdir / "emulator.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        args = ["emulator", "--port", str(self.port), "--admin-token", ADMIN_TOKEN, "--profile", PROFILE]
        self.process = await _spawn([*args, "--saml"] if self.saml else args, self.log)
        await _until(self._listening, "the emulator to listen", self.process, self.log)

    async def _listening(self) -> bool:
        try:
            await self.control("GET", "lifecycle")
        except aiohttp.ClientError:
            return False
        return True

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.url}/_emulator/{path}", json=body) as resp:
            resp.raise_for_status()
            return await resp.json() if resp.content_type == "application/json" else None

    async def state(self) -> dict[str, Any]:
        state: dict[str, Any] = await self.control("GET", "state")
        return state

    async def set_faults(self, **faults: Any) -> None:
        await self.control("PUT", "faults", faults)

    async def set_phase(self, phase: str) -> None:
        await self.control("PUT", "lifecycle", {"phase": phase})

    async def stop(self) -> None:
        await _stop(self.process)


class Bridge:
    """`scim-bridge serve` in a subprocess on two fixed ports and one SQLite store; it can be killed and
    started again on the same ports and store."""

    def __init__(self, workdir: Path, sonar_url: str, http: aiohttp.ClientSession) -> None:
        self.port, self.admin_port = free_ports(2)
        self.sonar_url = sonar_url
        self.http = http
        self.store = workdir / "state.db"
        self.store_url = f"sqlite:///{self.store}"
        self.log = workdir / "bridge.log"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def scim_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{BASE_PATH}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        """Start (or start again) and wait until `/readyz` answers 200."""
        args = [
            "--log-format",
            "json",
            "serve",
            "--port",
            str(self.port),
            "--admin-port",
            str(self.admin_port),
            "--sonar-url",
            f"{self.sonar_url}/",
            "--store",
            self.store_url,
        ]
        self.process = await _spawn(args, self.log)
        self.starts += 1
        await _until(self._ready, "the bridge to be ready", self.process, self.log)

    async def _ready(self) -> bool:
        try:
            async with self.http.get(f"http://127.0.0.1:{self.admin_port}/readyz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, requests in flight cut."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def stop(self) -> None:
        await _stop(self.process)

    def logged_errors(self) -> list[str]:
        """The error events of its JSON log (every start appends to the same file), one line each."""
        found: list[str] = []
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return found
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("level") in {"error", "critical", "exception"}:
                exception = str(event.get("exception") or "").strip().splitlines()
                found.append(
                    f"{event.get('event')} request_id={event.get('request_id')}"
                    + (f": {exception[-1]}" if exception else "")
                )
        return found


class StoreLock:
    """Another SQLite connection holding the bridge's store in an exclusive transaction (not a bridge
    process: just what any tool that opens the file could do)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    def _take(self) -> None:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        connection.execute("BEGIN EXCLUSIVE")
        self._connection = connection

    def _release(self) -> None:
        if self._connection is not None:
            self._connection.execute("ROLLBACK")
            self._connection.close()
            self._connection = None

    async def hold(self, seconds: float) -> None:
        await asyncio.to_thread(self._take)
        try:
            await asyncio.sleep(seconds)
        finally:
            await asyncio.to_thread(self._release)


# --- the driver ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failed:
    """One attempt that did not succeed: what was sent and what came back."""

    request: str
    outcome: str  # "503 Retry-After 10: <detail>", "connection error (…)", "timeout", "409: <detail>"
    retry_after: float | None = None
    bug: bool = False  # a 4xx other than 429, or an answer Entra could not use

    def __str__(self) -> str:
        return f"{self.request} → {self.outcome}"


@dataclass(slots=True)
class Answer:
    status: int
    body: Any
    request: str  # "PATCH /Groups/… [request id]"

    def __str__(self) -> str:
        return f"{self.request} → {self.status}"


@dataclass
class Ledger:
    """Every request sent and what came back."""

    requests: int = 0
    successes: int = 0  # 2xx answers: the driver's progress, which disruptions are timed by
    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0
    timeouts: int = 0
    answered_failures: list[Failed] = field(default_factory=list)  # 5xx and 429 answers
    bad_answers: list[str] = field(default_factory=list)  # failures not answered as 503/429 + Retry-After
    bugs: list[Failed] = field(default_factory=list)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _detail(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("detail") or body)[:160]
    return repr(body)[:160]


class ScimClient:
    """Entra's HTTP side: bearer token, SCIM JSON bodies, filters encoded as Entra encodes them (Q23), and
    a ledger of every answer. Whatever is not a 2xx comes back as `Failed`."""

    def __init__(self, session: aiohttp.ClientSession, base: str, *, timeout: float) -> None:
        self.session = session
        self.base = base
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.ledger = Ledger()
        self.trail: defaultdict[str, list[str]] = defaultdict(list)  # operation -> its requests and answers
        self._milestones: list[tuple[int, asyncio.Event]] = []

    async def reached(self, successes: int) -> None:
        """Wait until `successes` requests have been answered with a 2xx (failures do not count: a dead
        bridge fails requests much faster than a live one answers them)."""
        if self.ledger.successes >= successes:
            return
        event = asyncio.Event()
        self._milestones.append((successes, event))
        await event.wait()

    def _succeeded(self) -> None:
        self.ledger.successes += 1
        for successes, event in self._milestones:
            if self.ledger.successes >= successes:
                event.set()

    async def call(self, method: str, path: str, body: Any = None) -> Answer | Failed:
        answer = await self._call(method, path, body)
        if (operation := _OPERATION.get()) is not None:
            self.trail[operation].append(str(answer))
        return answer

    async def _call(self, method: str, path: str, body: Any) -> Answer | Failed:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = f"{SCIM_JSON}; charset=utf-8"
        request = f"{method} {path}"
        self.ledger.requests += 1
        try:
            async with self.session.request(
                method, URL(self.base + path, encoded=True), data=data, headers=headers, timeout=self.timeout
            ) as resp:
                raw = await resp.read()
                status, content_type = resp.status, resp.content_type
                retry_after = resp.headers.get("Retry-After")
                request += f" [{resp.headers.get('X-Request-Id')}]"
        except TimeoutError:
            self.ledger.timeouts += 1
            return Failed(request, "timeout", None)
        except aiohttp.ClientError as exc:
            self.ledger.connection_errors += 1
            return Failed(request, f"connection error ({type(exc).__name__})", None)
        self.ledger.statuses[status] += 1
        parsed: Any = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw[:200].decode(errors="replace")
        if status < 300:
            self._succeeded()
            return Answer(status, parsed, request)
        scim_error = (
            content_type == SCIM_JSON
            and isinstance(parsed, dict)
            and parsed.get("schemas") == [ERROR_SCHEMA]
            and str(parsed.get("status")) == str(status)
        )
        if not scim_error:
            self.ledger.bad_answers.append(
                f"{request} → {status} not a SCIM Error ({content_type}): {parsed!r}"
            )
        if status == 429 or status >= 500:
            seconds = _retry_after(retry_after)
            failed = Failed(request, f"{status} Retry-After {retry_after}: {_detail(parsed)}", seconds)
            self.ledger.answered_failures.append(failed)
            if status not in {429, 503}:
                self.ledger.bad_answers.append(f"{request} → {status}: {_detail(parsed)}")
            elif seconds is None or seconds <= 0:
                self.ledger.bad_answers.append(f"{request} → {status} without a usable Retry-After")
            return failed
        failed = Failed(request, f"{status}: {_detail(parsed)}", None, bug=True)
        self.ledger.bugs.append(failed)
        return failed


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


def _filter(attribute: str, value: str) -> str:
    return "filter=" + quote_plus(f'{attribute} eq "{value}"')


def _user_body(name: str) -> dict[str, Any]:
    """Entra's create body (A4) for a `userName` of the plan."""
    local = name.partition("@")[0]
    return {
        "schemas": [USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": local,
        "userName": name,
        "active": True,
        "displayName": f"Scenario {local}",
        "emails": [{"primary": True, "type": "work", "value": name}],
        "name": {"formatted": f"Scenario {local}", "familyName": local, "givenName": "Scenario"},
    }


@dataclass(eq=False)
class Op:
    """One thing Entra wants done, tried once per cycle until it succeeds."""

    name: str
    attempt: Callable[[], Awaitable[Failed | None]]
    stage: int = 0  # within a cycle, stage 0 (objects) runs before stage 1 (references: members)
    ready: Callable[[], bool] = lambda: True  # the ids it needs are known
    group: int | None = None
    attempts: int = 0
    bug_attempts: int = 0
    done: bool = False
    last: str = "never tried"


@dataclass(frozen=True, slots=True)
class Pacing:
    """How the driver spreads its requests and waits between cycles."""

    concurrency: int = 10
    per_group: int = 5
    wait_cap: float = 0.2  # the longest pause between two cycles, whatever Retry-After says
    max_cycles: int = 300
    pass_deadline: float = 60.0  # seconds one pass may take before its retry budget is exhausted
    timeout: float = 60.0  # Entra's own timeout (E8)


class EntraDriver:
    """Entra's provisioning job against the bridge: the passes of a `Plan`, each in cycles of retries."""

    def __init__(self, client: ScimClient, plan: Plan, pacing: Pacing) -> None:
        self.client = client
        self.plan = plan
        self.pacing = pacing
        self.user_ids: dict[int, str] = {}
        self.group_ids: dict[int, str] = {}
        self.ops: dict[str, Op] = {}
        self.cycles = 0
        self.never_succeeded: list[str] = []
        self._slots = asyncio.Semaphore(pacing.concurrency)
        self._group_slots: defaultdict[int, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(pacing.per_group)
        )

    @property
    def retries(self) -> int:
        return sum(max(0, op.attempts - 1) for op in self.ops.values())

    async def run(self) -> None:
        plan = self.plan
        initial = [self._ensure_user(user) for user in range(len(plan.users))]
        initial += [self._ensure_group(group) for group in range(len(plan.groups))]
        initial += [self._member("add", pair, stage=1) for pair in sorted(plan.memberships)]
        await self._pass("initial", initial)
        incremental = [self._set_active(user, active=False) for user in sorted(plan.disables)]
        incremental += [self._member("remove", pair) for pair in sorted(plan.removals)]
        incremental += [self._member("add", pair) for pair in sorted(plan.additions)]
        incremental.append(self._rename(plan.renamed, plan.new_name))
        await self._pass("incremental", incremental)
        last = []
        for user in sorted(plan.enables):  # each user's member changes sent together with its re-enable
            last.append(self._set_active(user, active=True))
            last += [self._member("remove", pair) for pair in sorted(plan.late_removals) if pair[1] == user]
            last += [self._member("add", pair) for pair in sorted(plan.late_additions) if pair[1] == user]
        await self._pass("re-enable", last)

    async def _pass(self, name: str, ops: list[Op]) -> None:
        for op in ops:
            self.ops[op.name] = op
        pending = ops
        started = time.monotonic()
        cycles = 0
        while pending:
            late = time.monotonic() - started > self.pacing.pass_deadline
            runnable = [op for op in pending if op.ready()]
            if late or not runnable or cycles >= self.pacing.max_cycles:
                why = "retry budget exhausted" if runnable else "what it depends on never succeeded"
                self.never_succeeded += [f"[{name}] {op.name}: {why}; {self._last(op)}" for op in pending]
                return
            cycles += 1
            self.cycles += 1
            failures: list[Failed] = []
            for stage in (0, 1):
                batch = [op for op in pending if op.stage == stage and op.ready()]
                results = await asyncio.gather(*(self._try(op) for op in batch))
                failures += [failed for failed in results if failed is not None]
            given_up = [op for op in pending if op.bug_attempts >= BUG_ATTEMPTS]
            self.never_succeeded += [f"[{name}] {op.name}: refused; {self._last(op)}" for op in given_up]
            pending = [op for op in pending if not op.done and op not in given_up]
            if pending:  # Entra's back-off grows while cycles keep failing; Retry-After, capped, wins
                retry_after = max((f.retry_after or 0.0 for f in failures), default=0.0)
                backoff = 0.02 * 2 ** min(cycles, 10)
                await asyncio.sleep(min(self.pacing.wait_cap, max(retry_after, backoff)))

    @staticmethod
    def _last(op: Op) -> str:
        return f"{op.attempts} attempts, last: {op.last}"

    async def _try(self, op: Op) -> Failed | None:
        if op.group is not None:
            async with self._group_slots[op.group], self._slots:
                return await self._attempt(op)
        async with self._slots:
            return await self._attempt(op)

    async def _attempt(self, op: Op) -> Failed | None:
        op.attempts += 1
        _OPERATION.set(op.name)  # each attempt runs in a task of its own: the setting stays in it
        failed = await op.attempt()
        op.done, op.last = failed is None, str(failed or "done")
        if failed is not None:
            op.bug_attempts += failed.bug
        return failed

    # -- the operations ----------------------------------------------------------------------------------

    def _ensure_user(self, user: int) -> Op:
        """A2 then A4: match by `userName`; create when nothing matches; PATCH `active` when it differs."""
        name = self.plan.users[user]

        async def attempt() -> Failed | None:
            found = await self.client.call("GET", f"/Users?{_filter('userName', name)}")
            if isinstance(found, Failed):
                return found
            resources = found.body.get("Resources", []) if isinstance(found.body, dict) else None
            if resources is None or len(resources) > 1:
                return self._unusable(f"GET /Users?filter=userName eq {name}", found)
            if resources:
                self.user_ids[user] = resources[0]["id"]
                if resources[0].get("active") is not True:
                    return await self._patch_user(user, "True")
                return None
            created = await self.client.call("POST", "/Users", _user_body(name))
            if isinstance(created, Failed):
                return created
            if created.status != 201 or not isinstance(created.body, dict) or "id" not in created.body:
                return self._unusable("POST /Users", created)
            self.user_ids[user] = created.body["id"]
            return None

        return Op(f"user {name}", attempt)

    def _ensure_group(self, group: int) -> Op:
        """A8 then A10: match by `displayName` without members; create when nothing matches."""
        name = self.plan.groups[group]

        async def attempt() -> Failed | None:
            found = await self.client.call(
                "GET", f"/Groups?excludedAttributes=members&{_filter('displayName', name)}"
            )
            if isinstance(found, Failed):
                return found
            resources = found.body.get("Resources", []) if isinstance(found.body, dict) else None
            if resources is None or len(resources) > 1:
                return self._unusable(f"GET /Groups?filter=displayName eq {name}", found)
            if resources:
                self.group_ids[group] = resources[0]["id"]
                return None
            body = {"schemas": [GROUP_SCHEMA, ENTRA_GROUP_SCHEMA], "externalId": f"g{group:03d}"}
            created = await self.client.call("POST", "/Groups", body | {"displayName": name})
            if isinstance(created, Failed):
                return created
            if created.status != 201 or not isinstance(created.body, dict) or "id" not in created.body:
                return self._unusable("POST /Groups", created)
            self.group_ids[group] = created.body["id"]
            return None

        return Op(f"group {name}", attempt, group=group)

    def _member(self, action: str, pair: Pair, *, stage: int = 0) -> Op:
        """A12/A13: one member per PATCH, in the default dialect."""
        group, user = pair

        async def attempt() -> Failed | None:
            operation = {
                "op": "Add" if action == "add" else "Remove",
                "path": "members",
                "value": [{"$ref": None, "value": self.user_ids[user]}],
            }
            return self._done(
                await self.client.call("PATCH", f"/Groups/{self.group_ids[group]}", _patch(operation))
            )

        return Op(
            f"{action} member {self.plan.users[user]} {'to' if action == 'add' else 'from'} "
            f"{self.plan.groups[group]}",
            attempt,
            stage=stage,
            ready=lambda: user in self.user_ids and group in self.group_ids,
            group=group,
        )

    def _set_active(self, user: int, *, active: bool) -> Op:
        """A6 in the default dialect: `active` as the string "False" or "True" (Q2)."""

        async def attempt() -> Failed | None:
            return await self._patch_user(user, "True" if active else "False")

        return Op(
            f"{'enable' if active else 'disable'} {self.plan.users[user]}",
            attempt,
            ready=lambda: user in self.user_ids,
        )

    async def _patch_user(self, user: int, active: str) -> Failed | None:
        operation = {"op": "Replace", "path": "active", "value": active}
        return self._done(await self.client.call("PATCH", f"/Users/{self.user_ids[user]}", _patch(operation)))

    def _rename(self, group: int, new_name: str) -> Op:
        """A11 in the default dialect."""

        async def attempt() -> Failed | None:
            operation = {"op": "Replace", "path": "displayName", "value": new_name}
            return self._done(
                await self.client.call("PATCH", f"/Groups/{self.group_ids[group]}", _patch(operation))
            )

        return Op(
            f"rename {self.plan.groups[group]} to {new_name}",
            attempt,
            ready=lambda: group in self.group_ids,
            group=group,
        )

    @staticmethod
    def _done(answer: Answer | Failed) -> Failed | None:
        return answer if isinstance(answer, Failed) else None

    def _unusable(self, request: str, answer: Answer) -> Failed:
        failed = Failed(request, f"{answer.status} that Entra cannot use: {_detail(answer.body)}", bug=True)
        self.client.ledger.bugs.append(failed)
        return failed


# --- the zeros -----------------------------------------------------------------------------------------


@dataclass
class Zeros:
    """Each list must be empty: one line per user, group or membership that differs from Entra's wish."""

    missing_memberships: list[str] = field(default_factory=list)
    extra_memberships: list[str] = field(default_factory=list)
    missing_users: list[str] = field(default_factory=list)
    duplicate_users: list[str] = field(default_factory=list)
    stray_users: list[str] = field(default_factory=list)
    wrong_active: list[str] = field(default_factory=list)
    unlinked_users: list[str] = field(default_factory=list)
    group_problems: list[str] = field(default_factory=list)
    store_view: list[str] = field(default_factory=list)
    bad_answers: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: len(items) for name, items in vars(self).items()}

    @property
    def all_zero(self) -> bool:
        return not any(self.counts().values())


def count_zeros(plan: Plan, baseline: Mapping[str, Any], state: Mapping[str, Any]) -> Zeros:
    """Compare the emulator's `state` with what Entra asked for; `baseline` is the state before the run
    (SonarQube's own accounts and groups, which Entra does not manage)."""
    zeros = Zeros()
    own_logins = {user["login"] for user in baseline["users"]}
    own_groups = {group["name"] for group in baseline["groups"]}
    default_groups = {group["name"] for group in state["groups"] if group.get("default")}
    wanted = {name.casefold(): index for index, name in enumerate(plan.users)}

    accounts: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for account in state["users"]:
        if account["login"] in own_logins:
            continue
        keys = {str(account.get(key) or "").casefold() for key in ("login", "externalLogin")}
        matched = {wanted[key] for key in keys if key in wanted}
        if not matched:
            zeros.stray_users.append(f"account {account['login']!r} (Entra never asked for it)")
        for user in matched:
            accounts[user].append(account)
    login_of: dict[int, str] = {}
    for user, name in enumerate(plan.users):
        found = accounts.get(user, [])
        if not found:
            zeros.missing_users.append(f"{name}: no SonarQube account")
            continue
        if len(found) > 1:
            zeros.duplicate_users.append(f"{name}: {len(found)} accounts {[a['login'] for a in found]}")
        account = found[0]
        login_of[user] = account["login"]
        if account["active"] != plan.final_active(user):
            zeros.wrong_active.append(
                f"{name}: active={account['active']}, Entra asked {plan.final_active(user)}"
            )
        if state.get("samlEnabled") and (
            account.get("externalProvider") != "saml" or account.get("externalLogin") != name
        ):
            zeros.unlinked_users.append(
                f"{name}: externalProvider={account.get('externalProvider')!r} "
                f"externalLogin={account.get('externalLogin')!r}"
            )

    names = Counter(group["name"] for group in state["groups"])
    final_names = {plan.final_name(group) for group in range(len(plan.groups))}
    for group_name in sorted(final_names):
        if names[group_name] != 1:
            zeros.group_problems.append(f"group {group_name!r}: {names[group_name]} in SonarQube, wanted 1")
    for group_name in sorted(set(names) - final_names - own_groups):
        zeros.group_problems.append(
            f"group {group_name!r} in SonarQube, Entra never asked for it (or renamed it)"
        )

    ours = set(login_of.values())
    expected = {
        (plan.final_name(group), login_of[user])
        for group, user in plan.final_memberships
        if plan.final_active(user) and user in login_of
    }
    actual = {
        (membership["group"], membership["login"])
        for membership in state["memberships"]
        if membership["group"] not in default_groups
        and (membership["login"] in ours or membership["group"] not in own_groups)
    }
    zeros.missing_memberships += [f"{login} not in {group!r}" for group, login in sorted(expected - actual)]
    zeros.extra_memberships += [f"{login} in {group!r}" for group, login in sorted(actual - expected)]
    return zeros


async def store_view(driver: EntraDriver, client: ScimClient, zeros: Zeros, *, tries: int = 20) -> None:
    """Ask the bridge for every user and group Entra holds an id of (A3, A9; a plain group GET lists members
    from the store): each must answer as Entra asked, `active` and members included."""
    plan = driver.plan

    async def get(path: str) -> Answer | Failed:
        answer: Answer | Failed = Failed(path, "never asked")
        for _ in range(tries):
            answer = await client.call("GET", path)
            if isinstance(answer, Answer) or answer.bug:
                return answer
            await asyncio.sleep(0.2)
        return answer

    async def user(index: int) -> None:
        name = plan.users[index]
        if index not in driver.user_ids:
            zeros.store_view.append(f"{name}: Entra never learnt its id")
            return
        answer = await get(f"/Users/{driver.user_ids[index]}")
        if isinstance(answer, Failed):
            zeros.store_view.append(f"{name}: {answer}")
        elif answer.body.get("userName") != name or answer.body.get("active") != plan.final_active(index):
            zeros.store_view.append(
                f"{name}: GET answers userName={answer.body.get('userName')!r} "
                f"active={answer.body.get('active')!r}, Entra asked active={plan.final_active(index)}"
            )

    async def group(index: int) -> None:
        name = plan.final_name(index)
        if index not in driver.group_ids:
            zeros.store_view.append(f"group {name!r}: Entra never learnt its id")
            return
        answer = await get(f"/Groups/{driver.group_ids[index]}")
        if isinstance(answer, Failed):
            zeros.store_view.append(f"group {name!r}: {answer}")
            return
        wanted = {driver.user_ids.get(u, f"?{u}") for g, u in plan.final_memberships if g == index}
        members = {member["value"] for member in answer.body.get("members") or []}
        by_id = {uid: plan.users[u] for u, uid in driver.user_ids.items()}
        if answer.body.get("displayName") != name:
            zeros.store_view.append(
                f"group {name!r}: GET answers displayName {answer.body.get('displayName')!r}"
            )
        zeros.store_view += [
            f"group {name!r}: the store lacks member {by_id.get(m, m)}" for m in wanted - members
        ]
        zeros.store_view += [
            f"group {name!r}: the store has extra member {by_id.get(m, m)}" for m in members - wanted
        ]

    slots = asyncio.Semaphore(driver.pacing.concurrency)

    async def limited(job: Awaitable[None]) -> None:
        async with slots:
            await job

    jobs: Iterable[Awaitable[None]] = [
        *(user(index) for index in range(len(plan.users))),
        *(group(index) for index in range(len(plan.groups))),
    ]
    await asyncio.gather(*(limited(job) for job in jobs))


# --- scenarios -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Knobs:
    """How hard a scenario pushes: the short versions use small values, the long runs the real ones."""

    outage: float = 5.0  # seconds SonarQube is down (past the ~4 s the bridge's own retries ride out)
    lock: float = 6.0  # seconds the store is locked (beyond the store's 5 s busy timeout, or nothing fails)
    kills: int = 5
    fault_rate: float = 0.2
    slow_seconds: float = 0.2
    pacing: Pacing = Pacing()


SHORT_KNOBS: Final = Knobs()
LONG_KNOBS: Final = Knobs(outage=10.0, lock=10.0, kills=8, pacing=Pacing(wait_cap=0.5, pass_deadline=600.0))


@dataclass
class ScenarioResult:
    name: str
    seed: int
    size: Size
    wall_seconds: float = 0.0
    ledger: Ledger = field(default_factory=Ledger)
    check_ledger: Ledger = field(default_factory=Ledger)
    zeros: Zeros = field(default_factory=Zeros)
    retries: int = 0
    cycles: int = 0
    disruption: str = ""
    never_succeeded: list[str] = field(default_factory=list)
    bridge_errors: list[str] = field(default_factory=list)
    harness_error: str | None = None
    histories: dict[str, list[str]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # SCIM id -> userName or displayName

    @property
    def ok(self) -> bool:
        return (
            self.zeros.all_zero
            and not self.never_succeeded
            and not self.ledger.bugs
            and not self.check_ledger.bugs
            and self.harness_error is None
        )

    def describe(self, limit: int = 25) -> str:
        """Everything that is not zero, with the requests and answers behind it."""
        lines = [
            (
                f"scenario {self.name} (seed {self.seed}, {self.size} users/groups/memberships): "
                f"{'ok' if self.ok else 'FAILED'} in {self.wall_seconds:.1f} s; {self.disruption}"
            ),
            (
                f"  {self.ledger.requests} requests, answers {dict(sorted(self.ledger.statuses.items()))}, "
                f"{self.ledger.connection_errors} connection errors, {self.ledger.timeouts} timeouts, "
                f"{self.retries} retries in {self.cycles} cycles"
            ),
        ]

        def section(title: str, items: Iterable[object]) -> None:
            listed = [self._named(str(item)) for item in items]
            if listed:
                lines.append(f"  {title} ({len(listed)}):")
                lines.extend(f"    {item}" for item in listed[:limit])
                if len(listed) > limit:
                    lines.append(f"    … {len(listed) - limit} more")

        if self.harness_error:
            lines.append(f"  harness error: {self.harness_error}")
        for name, items in vars(self.zeros).items():
            section(name.replace("_", " "), items)
        section("4xx answers (bugs)", [*self.ledger.bugs, *self.check_ledger.bugs])
        section("never succeeded", self.never_succeeded)
        section("error events in the bridge's log", self.bridge_errors)
        findings = [set(_NAMES.findall(item)) for items in vars(self.zeros).values() for item in items]
        section(
            "what Entra sent for them, with the bridge's request ids",
            [
                f"{op}: {_collapsed(history)}"
                for op, history in sorted(self.histories.items())
                if any(_related(op, names) for names in findings)
            ],
        )
        return "\n".join(lines)

    def _named(self, text: str) -> str:
        """Ids followed by the name Entra knows them by."""
        return _UUID.sub(lambda found: f"{found[0]} ({self.names.get(found[0], '?')})", text)

    def row(self) -> dict[str, str]:
        """One line of the results table."""
        counts = self.zeros.counts()
        answered = Counter(f.outcome.split(" ", 1)[0] for f in self.ledger.answered_failures)
        return {
            "scenario": self.name,
            "seed": str(self.seed),
            "users/groups/memberships": str(self.size),
            "disruption": self.disruption,
            "requests": str(self.ledger.requests),
            "503": str(answered["503"]),
            "429": str(answered["429"]),
            "other 5xx": str(sum(n for status, n in answered.items() if status not in {"503", "429"})),
            "conn. errors/timeouts": f"{self.ledger.connection_errors}/{self.ledger.timeouts}",
            "retries": str(self.retries),
            "cycles": str(self.cycles),
            "wall": f"{self.wall_seconds:.1f} s",
            "missing/extra memberships": f"{counts['missing_memberships']}/{counts['extra_memberships']}",
            "missing/duplicate/stray users": (
                f"{counts['missing_users']}/{counts['duplicate_users']}/{counts['stray_users']}"
            ),
            "wrong active": str(counts["wrong_active"]),
            "unlinked": str(counts["unlinked_users"]),
            "group problems": str(counts["group_problems"]),
            "store view": str(counts["store_view"]),
            "bad answers": str(counts["bad_answers"]),
            "4xx": str(len(self.ledger.bugs) + len(self.check_ledger.bugs)),
            "never succeeded": str(len(self.never_succeeded)),
            "verdict": "ok" if self.ok else "FAILED",
        }


def _related(operation: str, names: set[str]) -> bool:
    """A member change of the user and group a finding names, or an operation on one of them alone (its
    creation, rename, disable or enable)."""
    if not names:
        return False
    if operation.startswith(("add member", "remove member")):
        return all(name in operation for name in names)
    return any(name in operation for name in names)


def _collapsed(history: list[str]) -> str:
    """`a | a | a | b` as `a x3 | b`."""
    runs = [(outcome, len(list(run))) for outcome, run in itertools.groupby(history)]
    return " | ".join(outcome if count == 1 else f"{outcome} x{count}" for outcome, count in runs)


@dataclass
class Stage:
    """What a disruption acts on."""

    emulator: Emulator
    bridge: Bridge
    client: ScimClient
    plan: Plan
    knobs: Knobs
    rng: random.Random
    notes: list[str] = field(default_factory=list)
    kills: list[int] = field(default_factory=list)


async def _faults(stage: Stage) -> None:
    await stage.emulator.set_faults(
        rate=stage.knobs.fault_rate,
        kinds=list(FAULT_KINDS),
        slow_seconds=stage.knobs.slow_seconds,
        retry_after=1,
        seed=stage.rng.randrange(2**31),
    )
    stage.notes.append(f"{stage.knobs.fault_rate:.0%} of SonarQube calls faulted ({', '.join(FAULT_KINDS)})")


def _moment(stage: Stage, low: float = 0.2, high: float = 0.4) -> int:
    """A number of answered requests within the initial cycle (a share of a run without failures)."""
    return max(1, int(stage.plan.expected_requests * stage.rng.uniform(low, high)))


async def _sonarqube_down(stage: Stage) -> None:
    at = _moment(stage)
    await stage.client.reached(at)
    stage.notes.append(f"SonarQube down for {stage.knobs.outage:g} s after {at} answered requests")
    await stage.emulator.set_phase("down")
    try:
        await asyncio.sleep(stage.knobs.outage)
    finally:
        await stage.emulator.set_phase("up")


async def _store_locked(stage: Stage) -> None:
    at = _moment(stage)
    await stage.client.reached(at)
    stage.notes.append(
        f"store locked (BEGIN EXCLUSIVE) for {stage.knobs.lock:g} s after {at} answered requests"
    )
    await StoreLock(stage.bridge.store).hold(stage.knobs.lock)


async def _kills(stage: Stage, count: int) -> None:
    total = stage.plan.expected_requests
    low, width = total * 0.05, total * 0.8 / count
    moments = [int(low + width * (index + stage.rng.random())) for index in range(count)]
    for at in moments:  # one in each of `count` equal slices of the run, at least one answer apart
        await stage.client.reached(max(at, stage.client.ledger.successes + 1))
        await asyncio.sleep(stage.rng.uniform(0, 0.03))  # somewhere inside a request, not between two
        await stage.bridge.kill()
        stage.kills.append(stage.client.ledger.successes)
        await stage.bridge.start()


async def _disrupt(name: str, stage: Stage) -> None:
    if name in {"faults", "combined"}:
        await _faults(stage)
    if name == "sonarqube-down":
        await _sonarqube_down(stage)
    elif name == "store-locked":
        await _store_locked(stage)
    elif name in {"kills", "combined"}:
        await _kills(stage, stage.knobs.kills if name == "kills" else 1)


def _fresh(workdir: Path) -> None:
    """A scenario starts from nothing: an empty store, fresh logs."""
    workdir.mkdir(parents=True, exist_ok=True)
    for leftover in workdir.glob("*"):
        if leftover.is_file():
            leftover.unlink()


async def run_scenario(
    name: str, size: Size, workdir: Path, *, seed: int | None = None, knobs: Knobs = SHORT_KNOBS
) -> ScenarioResult:
    """Start the emulator and the bridge in `workdir`, drive Entra's cycles through the disruption, then
    count the zeros. Never raises for a finding: everything is in the result."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    seed = SEEDS[name] if seed is None else seed
    result = ScenarioResult(name, seed, size)
    plan = Plan.generate(size, seed)
    rng = random.Random(seed)
    _fresh(workdir)
    started = time.monotonic()
    async with aiohttp.ClientSession() as control, aiohttp.ClientSession() as session:
        emulator = Emulator(workdir, control)
        bridge = Bridge(workdir, emulator.url, control)
        try:
            await emulator.start()
            await bridge.start()
            baseline = await emulator.state()
            client = ScimClient(session, bridge.scim_url, timeout=knobs.pacing.timeout)
            driver = EntraDriver(client, plan, knobs.pacing)
            stage = Stage(emulator, bridge, client, plan, knobs, rng)
            started = time.monotonic()
            await _drive(name, driver, stage, result)
            result.wall_seconds = time.monotonic() - started
            await emulator.set_faults(rate=0.0)
            await emulator.set_phase("up")
            if not bridge.running:
                await bridge.start()
            result.ledger, result.retries, result.cycles = client.ledger, driver.retries, driver.cycles
            result.never_succeeded = driver.never_succeeded
            result.zeros = count_zeros(plan, baseline, await emulator.state())
            checker = ScimClient(session, bridge.scim_url, timeout=knobs.pacing.timeout)
            await store_view(driver, checker, result.zeros)
            result.check_ledger = checker.ledger
            result.zeros.bad_answers = [*client.ledger.bad_answers, *checker.ledger.bad_answers]
            result.histories = dict(client.trail)
            result.names = {uid: plan.users[index] for index, uid in driver.user_ids.items()}
            result.names |= {gid: plan.final_name(index) for index, gid in driver.group_ids.items()}
            journal = await emulator.control("GET", "journal")
            (workdir / "journal.json").write_text(json.dumps(journal, indent=1), encoding="utf-8")
        except HarnessError as exc:
            result.harness_error = str(exc)
        finally:
            result.wall_seconds = result.wall_seconds or time.monotonic() - started
            await bridge.stop()
            await emulator.stop()
            result.bridge_errors = bridge.logged_errors()
    return result


async def _drive(name: str, driver: EntraDriver, stage: Stage, result: ScenarioResult) -> None:
    """Run Entra's passes and the disruption side by side; a disruption left half-way is undone."""
    driving = asyncio.create_task(driver.run())
    disrupting = asyncio.create_task(_disrupt(name, stage))
    await asyncio.wait({driving, disrupting}, return_when=asyncio.FIRST_EXCEPTION)
    if disrupting.done() and disrupting.exception() is not None:
        driving.cancel()
    elif not disrupting.done():
        disrupting.cancel()
    outcomes = await asyncio.gather(driving, disrupting, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, HarnessError):
            raise outcome
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
            raise outcome
    if stage.kills:
        stage.notes.append(f"bridge SIGKILLed {len(stage.kills)}x (after {stage.kills} answered requests)")
    wanted_kills = {"kills": stage.knobs.kills, "combined": 1}.get(name, 0)
    if len(stage.kills) < wanted_kills:
        result.harness_error = (
            f"only {len(stage.kills)} of {wanted_kills} kills happened before the run ended"
        )
    if name in {"sonarqube-down", "store-locked"} and len(stage.notes) == 0:
        result.harness_error = "the run ended before the disruption started"
    result.disruption = "; ".join(stage.notes)
