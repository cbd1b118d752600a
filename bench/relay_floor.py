"""The CPU floor of a filter GET: the bridge against a bare aiohttp relay making the same SonarQube call.

For `GET /Users?filter=userName eq "x"` on a provisioned user the bridge makes one SonarQube call: it finds
the account's id in its store and reads `GET /api/v2/users-management/users/{id}` to confirm it still exists.
The relay makes that same call and answers a ListResponse of the same shape, with nothing else: no token
check, no store (a dict from userName to id, loaded at start, stands in for it), no validation, no logging.
Both run as their own process in front of the same emulator and get the same requests at the same
concurrency; the ratio of their CPU time per request is what the bridge's own work costs.

Run `python -m bench.relay_floor --small`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from bench.entra_cycle import (
    SCIM,
    Driver,
    Phase,
    Request,
    Scale,
    Target,
    bridge_and_emulator,
    cpu_seconds,
    filter_path,
    free_port,
    processes,
    user_body,
    wait_for,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SONAR = web.AppKey("sonar", aiohttp.ClientSession)
SONAR_URL = web.AppKey("sonar_url", str)
IDS = web.AppKey("ids", dict)


@dataclass(frozen=True, slots=True)
class Floor:
    users: int = 50
    requests: int = 1000
    concurrency: int = 10
    latency_ms: int = 5


SMALL = Floor()


# --- the relay -----------------------------------------------------------------------------------


async def users(request: web.Request) -> web.Response:
    # `userName eq "x"`: the value between the quotes; anything else is not what this floor measures.
    value = request.query.get("filter", "").partition('"')[2].rpartition('"')[0]
    ids: dict[str, str] = request.app[IDS]
    resources = []
    if value in ids:
        url = f"{request.app[SONAR_URL]}/api/v2/users-management/users/{ids[value]}"
        headers = {"Authorization": request.headers.get("Authorization", "")}
        async with request.app[SONAR].get(url, headers=headers) as resp:
            if resp.status == 200:
                resources.append(_user(await resp.json(), str(request.url.origin())))
    body = {
        "schemas": [LIST],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
    return web.json_response(body, content_type="application/scim+json")


def _user(account: dict[str, Any], origin: str) -> dict[str, Any]:
    """The bridge's User shape, from what SonarQube holds."""
    user: dict[str, Any] = {
        "schemas": [USER],
        "id": account["id"],
        "meta": {"resourceType": "User", "location": f"{origin}{SCIM}/Users/{account['id']}"},
        "userName": account["login"],
        "displayName": account["name"],
        "active": account["active"],
    }
    if account.get("email"):
        user["emails"] = [{"value": account["email"], "type": "work", "primary": True}]
    return user


def relay_app(sonar_url: str, ids: dict[str, str]) -> web.Application:
    app = web.Application()
    app[SONAR_URL] = sonar_url.rstrip("/")
    app[IDS] = ids

    async def session(app: web.Application) -> Any:
        async with aiohttp.ClientSession() as http:
            app[SONAR] = http
            yield

    app.cleanup_ctx.append(session)
    app.router.add_get(f"{SCIM}/Users", users)
    return app


def serve_relay(port: int, sonar_url: str, ids_file: Path) -> None:
    ids = json.loads(ids_file.read_text(encoding="utf-8"))
    web.run_app(relay_app(sonar_url, ids), host="127.0.0.1", port=port, print=None, access_log=None)


# --- the measurement -----------------------------------------------------------------------------


async def cpu_per_request(driver: Driver, paths: list[str], rounds: int) -> dict[str, Any]:
    """CPU ms per request of the target over `rounds` filter GETs, the wall seconds they took, the SonarQube
    calls they made (the same for both, or the comparison is void), the errors."""
    await driver.phase("warm-up", [Request("GET", path) for path in paths[:20]])
    requests = [Request("GET", paths[i % len(paths)]) for i in range(rounds)]
    await driver.journal("DELETE")
    before = cpu_seconds(driver.target.pid)
    started = time.perf_counter()
    phase = Phase("filter GET")
    driver.progress.start(f"{driver.target.name}: filter GET", rounds)
    await asyncio.gather(*(driver.send(phase, request) for request in requests))
    wall = time.perf_counter() - started
    cpu = cpu_seconds(driver.target.pid) - before
    calls = len(await driver.journal("GET"))
    return {
        "cpu_ms_per_request": round(cpu * 1000 / rounds, 3),
        "wall_s": round(wall, 3),
        "sonar_calls_per_request": round(calls / rounds, 3),
        "errors": len(phase.errors),
    }


async def run(floor: Floor) -> dict[str, Any]:
    scale = Scale(users=floor.users, concurrency=floor.concurrency, latency_ms=floor.latency_ms)
    async with aiohttp.ClientSession() as http, bridge_and_emulator(http, scale) as bridge:
        setup = Driver(http, bridge, scale)
        created = await setup.phase(
            "create user", [Request("POST", "/Users", user_body(i)) for i in range(floor.users)]
        )
        ids = {user["userName"]: user["id"] for user in created if user}
        paths = [filter_path("Users", "userName", name) for name in ids]
        with tempfile.TemporaryDirectory(prefix="relay-floor-") as state:
            ids_file = Path(state) / "ids.json"
            ids_file.write_text(json.dumps(ids), encoding="utf-8")
            port = free_port()
            command = [sys.executable, "-m", "bench.relay_floor", "--serve-relay", str(port)]
            command += ["--sonar-url", bridge.sonar or "", "--ids", str(ids_file)]
            async with processes(command) as (relay_process,):
                relay = Target(
                    "relay", f"http://127.0.0.1:{port}{SCIM}", bridge.token, relay_process.pid, bridge.sonar
                )
                await wait_for(http, relay.base + "/Users", ok=lambda s: s == 200, what="the relay")
                # Same emulator, same requests, same concurrency; the bridge first, then the relay.
                results = {}
                for target in (bridge, relay):
                    driver = Driver(http, target, scale)
                    results[target.name] = await cpu_per_request(driver, paths, floor.requests)
    ratio = results["scim-bridge"]["cpu_ms_per_request"] / max(results["relay"]["cpu_ms_per_request"], 1e-9)
    return {"floor": asdict(floor), **results, "cpu_ratio_bridge_to_relay": round(ratio, 2)}


def render(result: dict[str, Any]) -> str:
    lines = [
        f"filter GET (userName eq, match), {result['floor']}",
        "| server | CPU ms / request | SonarQube calls / request | wall s | errors |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("scim-bridge", "relay"):
        r = result[name]
        lines.append(
            f"| {name} | {r['cpu_ms_per_request']:.3f} | {r['sonar_calls_per_request']:.2f} "
            f"| {r['wall_s']:.2f} | {r['errors']} |"
        )
    lines.append(f"CPU ratio bridge / relay: {result['cpu_ratio_bridge_to_relay']:.2f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relay_floor", description=__doc__)
    parser.add_argument(
        "--small", action="store_true", help="the quick defaults, whatever the other flags say"
    )
    parser.add_argument(
        "--users", type=int, default=SMALL.users, help="distinct users the GETs cycle through"
    )
    parser.add_argument(
        "--requests", type=int, default=SMALL.requests, help="filter GETs sent to each server"
    )
    parser.add_argument("--concurrency", type=int, default=SMALL.concurrency)
    parser.add_argument("--latency-ms", type=int, default=SMALL.latency_ms, help="the emulator's latency")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--serve-relay", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--sonar-url", help=argparse.SUPPRESS)
    parser.add_argument("--ids", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_relay:  # the relay's own process, started by `run`
        serve_relay(args.serve_relay, args.sonar_url, args.ids)
        return 0
    floor = SMALL if args.small else Floor(args.users, args.requests, args.concurrency, args.latency_ms)
    try:
        result = asyncio.run(run(floor))
    except KeyboardInterrupt:  # the servers were stopped on the way out; no traceback for a Ctrl-C
        return 130
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 1 if result["scim-bridge"]["errors"] or result["relay"]["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
