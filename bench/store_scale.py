"""A filter GET's cost and the bridge's memory as the number of users in its store grows.

For each size (1 000, 10 000 and 100 000 users by default) the store is filled before the bridge starts:
the users are written through the store's own API, as provisioning writes them, but only into the store
(SonarQube does not have them; no request reads them back from it). Then `--real` users are created
through the bridge, so that SonarQube has them too, and the bridge is measured:

- `userName` filter GETs on those users: CPU per request (a look-up by an indexed key: it should not
  depend on the size);
- one filter no look-up answers (`displayName co "..."`: every user is evaluated in memory, read from the
  store in chunks) and the last page of the unfiltered listing: their wall time;
- the bridge's peak RSS (VmHWM) at the end.

Run `python -m bench.store_scale --small` (1 000 and 5 000 users) or with `--sizes 1000 10000 100000`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp

from bench.entra_cycle import (
    Driver,
    Request,
    Scale,
    bridge_and_emulator,
    cpu_seconds,
    filter_path,
    peak_rss_mb,
    user_body,
)
from scim_bridge.provisioning.mapping import stored_attributes
from scim_bridge.scim.resources import UserResource
from scim_bridge.store.records import UserRecord
from scim_bridge.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from collections.abc import Sequence

FILLER_OFFSET = 1_000_000
"""Filler users are numbered from here, so that they never share a userName with a real one."""


@dataclass(frozen=True, slots=True)
class Sizes:
    sizes: tuple[int, ...] = (1000, 10_000, 100_000)
    real: int = 200
    requests: int = 3000


SMALL = Sizes(sizes=(1000, 5000), requests=1500)


async def fill(path: Path, users: int) -> None:
    """`users` filler users in a new store at `path`, each as provisioning would have recorded it."""
    template = stored_attributes(UserResource.model_validate(user_body(0)))
    now = datetime.now(UTC)
    store = await SqliteStore.open(path)
    try:
        for i in range(FILLER_OFFSET, FILLER_OFFSET + users):
            body = user_body(i)
            attributes = template | {key: body[key] for key in ("userName", "displayName", "externalId")}
            attributes["emails"] = body["emails"]
            scim_id = str(uuid.uuid4())
            await store.insert_user(
                UserRecord(
                    scim_id=scim_id,
                    sonar_id=scim_id,
                    external_id=body["externalId"],
                    attributes=attributes,
                    created=now,
                    last_modified=now,
                    version=1,
                    user_name=body["userName"],
                    sonar_login=body["userName"],
                    active=True,
                    settled=True,
                )
            )
    finally:
        await store.close()


async def timed_get(driver: Driver, path: str) -> tuple[float, float, Any]:
    """Wall and bridge CPU seconds of one GET, and its body."""
    cpu = cpu_seconds(driver.target.pid)
    started = time.perf_counter()
    async with driver.http.get(driver.target.base + path, headers=driver.headers) as resp:
        body = await resp.json(content_type=None)
        assert resp.status == 200, body
    return time.perf_counter() - started, cpu_seconds(driver.target.pid) - cpu, body


async def measure(size: int, sizes: Sizes) -> dict[str, Any]:
    scale = Scale(users=sizes.real)
    with tempfile.TemporaryDirectory(prefix="store-scale-") as state:
        path = Path(state) / "s.db"
        started = time.perf_counter()
        await fill(path, size - sizes.real)
        fill_s = time.perf_counter() - started
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http,
            bridge_and_emulator(http, scale, f"sqlite:///{path}") as bridge,
        ):
            driver = Driver(http, bridge, scale)
            created = await driver.phase(
                "create user", [Request("POST", "/Users", user_body(i)) for i in range(sizes.real)]
            )
            names = [user["userName"] for user in created if user]
            gets = [Request("GET", filter_path("Users", "userName", name)) for name in names]
            await driver.phase("warm-up", gets[:50])
            batch = [gets[i % len(gets)] for i in range(sizes.requests)]
            await driver.phase("filter GET", batch)
            get = driver.phases[-1]
            scan = "/Users?filter=" + quote('displayName co "no such name"', safe="")
            scan_s, scan_cpu_s, scanned = await timed_get(driver, scan)
            last_page = f"/Users?startIndex={size - 49}&count=50"
            page_s, _, listed = await timed_get(driver, last_page)
            return {
                "users": size,
                "fill_s": round(fill_s, 1),
                "filter_get_cpu_ms": round(get.cpu_s * 1000 / sizes.requests, 3),
                "filter_get_errors": len(get.errors),
                "full_scan_filter_s": round(scan_s, 2),
                "full_scan_filter_cpu_s": round(scan_cpu_s, 2),
                "full_scan_matches": scanned["totalResults"],
                "last_page_s": round(page_s, 3),
                "listed_total": listed["totalResults"],
                "peak_rss_mb": round(peak_rss_mb(bridge.pid), 1),
            }


async def run(sizes: Sizes) -> list[dict[str, Any]]:
    return [await measure(size, sizes) for size in sizes.sizes]


def render(results: list[dict[str, Any]]) -> str:
    lines = [
        "| users in the store | filter GET CPU ms | full-scan filter s | last page s | peak RSS MB |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['users']:,} | {r['filter_get_cpu_ms']:.2f} | {r['full_scan_filter_s']:.2f} "
        f"| {r['last_page_s']:.3f} | {r['peak_rss_mb']:.0f} |"
        for r in results
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store_scale", description=__doc__)
    parser.add_argument("--small", action="store_true", help="1 000 and 5 000 users, whatever else is said")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(Sizes().sizes))
    parser.add_argument("--real", type=int, default=Sizes().real, help="users created through the bridge")
    parser.add_argument("--requests", type=int, default=Sizes().requests, help="filter GETs per size")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    sizes = SMALL if args.small else Sizes(tuple(args.sizes), args.real, args.requests)
    try:
        results = asyncio.run(run(sizes))
    except KeyboardInterrupt:
        return 130
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 1 if any(r["filter_get_errors"] or r["listed_total"] != r["users"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
