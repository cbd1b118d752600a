"""Where the bridge's CPU goes: py-spy samples the bridge process while a workload runs, and each sample's
innermost frame is charged to a component (scim2-models and pydantic, the store, aiohttp's client, ...).

    python -m bench.profile get   --requests 3000 --out get.txt     # userName filter GETs (a match)
    python -m bench.profile patch --requests 3000 --out patch.txt   # user PATCHes (replace displayName)
    python -m bench.profile member --requests 3000 --out member.txt # group PATCHes adding one member each
    python -m bench.profile create --requests 3000 --out create.txt # user POSTs (new users)
    python -m bench.profile shares get.txt                          # the table again, from a saved profile

py-spy (a dev dependency) attaches to a running process with ptrace: as root, or with
`kernel.yama.ptrace_scope = 0`. Samples only count Python frames on the CPU (idle threads are left out);
time in the kernel (thread wake-ups, socket calls) shows as the frame that made the call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from bench.entra_cycle import (
    Driver,
    Request,
    Scale,
    bridge_and_emulator,
    filter_path,
    group_body,
    member,
    patch,
    user_body,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

# First match wins: (component, substrings of a frame's file path).
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pydantic + scim2-models", ("/scim2_models/", "/pydantic/", "/pydantic_core/")),
    ("store (sqlite3, asyncpg)", ("/sqlite3/", "/asyncpg/", "/scim_bridge/store/")),
    ("aiohttp client", ("/aiohttp/client", "/aiohttp/connector", "/aiohttp/streams")),
    ("aiohttp server", ("/aiohttp/",)),
    ("tenacity", ("/tenacity/",)),
    ("structlog + logging", ("/structlog/", "/logging/")),
    ("prometheus-client", ("/prometheus_client/",)),
    ("bridge's own code", ("/scim_bridge/",)),
    ("asyncio + selectors", ("/asyncio/", "/selectors.py", "/uvloop/")),
    ("threads (hand-offs)", ("/threading.py", "/concurrent/", "/queue.py")),
    ("json", ("/json/",)),
)
GROUPS = 20
"""Groups the `member` profile adds members to: with 200 users, 4 000 distinct additions."""
OTHER = "other (stdlib, yarl, multidict, ...)"


def component(frame: str) -> str:
    """The component a py-spy frame (`function (path:line)`) belongs to."""
    where = "/" + frame.rpartition("(")[2]  # py-spy prints paths relative to sys.path: "aiohttp/web.py:1"
    for name, markers in COMPONENTS:
        if any(marker in where for marker in markers):
            return name
    return OTHER


def shares(raw: str) -> dict[str, float]:
    """Share of samples per component, from py-spy's raw (collapsed stack) output, largest first."""
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        innermost = stack.rsplit(";", 1)[-1]
        counts[component(innermost)] += int(count)
    total = sum(counts.values()) or 1
    return {name: round(100 * n / total, 1) for name, n in counts.most_common()}


def render(result: dict[str, float], title: str) -> str:
    lines = [title, "| component | share of samples % |", "|---|---:|"]
    lines += [f"| {name} | {share:.1f} |" for name, share in result.items()]
    return "\n".join(lines)


@contextlib.asynccontextmanager
async def sampled(pid: int, out: Path) -> AsyncIterator[None]:
    """py-spy recording `pid` (every thread, 200 samples a second) for the block."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [py_spy, "record", "--pid", str(pid), "--rate", "200", "--gil", "--threads"]
    recorder = await asyncio.create_subprocess_exec(
        *command, "--format", "raw", "--output", str(out), stdout=asyncio.subprocess.DEVNULL
    )
    await asyncio.sleep(1)  # attach before the workload starts
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        await recorder.wait()


async def profile(kind: str, requests: int, users: int, out: Path) -> dict[str, Any]:
    scale = Scale(users=users, concurrency=10, latency_ms=5)
    async with aiohttp.ClientSession() as http, bridge_and_emulator(http, scale) as bridge:
        driver = Driver(http, bridge, scale)
        created = await driver.phase(
            "create user", [Request("POST", "/Users", user_body(i)) for i in range(users)]
        )
        made = [(user["id"], user["userName"]) for user in created if user]
        if kind == "create":
            work = [Request("POST", "/Users", user_body(users + i)) for i in range(requests + 50)]
        elif kind == "get":
            work = [Request("GET", filter_path("Users", "userName", name)) for _, name in made]
        elif kind == "member":
            groups = await driver.phase(
                "create group", [Request("POST", "/Groups", group_body(g)) for g in range(GROUPS)]
            )
            work = [
                Request("PATCH", f"/Groups/{group['id']}", patch("Add", "members", member(scim_id)), g)
                for scim_id, _ in made
                for g, group in enumerate(groups)
            ]
        else:
            work = [
                Request("PATCH", f"/Users/{scim_id}", patch("Replace", "displayName", f"Name {n}"))
                for scim_id, _ in made
                for n in range(2)
            ]
        await driver.phase("warm-up", work[:50])
        # Creates and member additions are not repeated: each request of the batch changes something new.
        fresh = kind in {"create", "member"}
        batch = work[50 : 50 + requests] if fresh else [work[i % len(work)] for i in range(requests)]
        async with sampled(bridge.pid, out):
            await driver.phase(kind, batch)
        phase = driver.phases[-1]
    return {"kind": kind, "requests": len(batch), "cpu_ms_per_request": phase.cpu_s * 1000 / len(batch)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("kind", choices=("get", "patch", "member", "create", "shares"))
    parser.add_argument("file", nargs="?", type=Path, help="for `shares`: a saved raw profile")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("profile.txt"), help="py-spy's raw output")
    args = parser.parse_args(argv)
    if args.kind == "shares":
        print(render(shares(args.file.read_text(encoding="utf-8")), str(args.file)))
        return 0
    result = asyncio.run(profile(args.kind, args.requests, args.users, args.out))
    title = f"{args.kind}: {result['cpu_ms_per_request']:.2f} ms CPU / request (while sampled)"
    print(render(shares(args.out.read_text(encoding="utf-8")), title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
