"""The same Entra cycle against the bridge and against python-scim's scim2-server, CPU per request compared.

scim2-server (https://github.com/python-scim/scim2-server) is an in-memory SCIM server built on scim2-models,
as the bridge is; here it runs as its ASGI application under uvicorn, in its own process, with its default
schemas (User with the enterprise extension, Group) and no authentication. It calls no SonarQube, so its
CPU per request is what SCIM parsing, validation and PATCH application cost in a peer; the bridge's also
includes its store, SonarQube calls and their translation.

Needs the bench extras: `pip install scim2-server uvicorn`. Run `python -m bench.peer_compare --small`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import time
from typing import TYPE_CHECKING, Any

import aiohttp

from bench.entra_cycle import (
    GROUP_SCHEMAS,
    Driver,
    Scale,
    Target,
    add_scale_arguments,
    bridge_and_emulator,
    free_port,
    processes,
    report,
    scale_of,
    wait_for,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from scim2_server.applications.asgi import ASGIApplication


def scim2_app() -> ASGIApplication:
    """scim2-server's ASGI application over in-memory storage: uvicorn's `--factory` target."""
    # Imported here: only the uvicorn process needs scim2-server, and the bench runs without it otherwise.
    from scim2_models import ScimProvider  # noqa: PLC0415
    from scim2_server.applications.asgi import ASGIApplication  # noqa: PLC0415
    from scim2_server.memory import AsyncInMemoryStorage  # noqa: PLC0415
    from scim2_server.service import ScimService  # noqa: PLC0415
    from scim2_server.utils import (  # noqa: PLC0415
        load_default_resource_types,
        load_default_schemas,
        load_default_service_provider_config,
    )

    provider = ScimProvider.from_discovery(
        load_default_schemas().values(),
        load_default_resource_types().values(),
        config=load_default_service_provider_config(),
    )
    return ASGIApplication(AsyncInMemoryStorage(), provider, ScimService(provider))


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    found = {}
    for package in ("scim2-server", "uvicorn", "scim2-models", "aiohttp"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "missing"
    return found


async def run(scale: Scale) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=scale.concurrency * 2 + 4)
    results: dict[str, Any] = {"versions": versions()}
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        async with bridge_and_emulator(http, scale) as bridge:
            driver = Driver(http, bridge, scale)
            started = time.perf_counter()
            await driver.cycle()
            results["scim-bridge"] = report(driver, time.perf_counter() - started)
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", "bench.peer_compare:scim2_app", "--factory"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
        async with processes(command) as (server,):
            peer = Target("scim2-server", f"http://127.0.0.1:{port}/v2", "unused", server.pid)
            await wait_for(
                http, f"{peer.base}/ServiceProviderConfig", ok=lambda s: s == 200, what="scim2-server"
            )
            # scim2-server refuses three of Entra's non-standard forms with a 400 (the Microsoft group URN,
            # a bare-string manager, a member removal carrying a value); it gets RFC 7644's equivalents.
            driver = Driver(http, peer, scale, group_schemas=GROUP_SCHEMAS[:1], entra_forms=False)
            started = time.perf_counter()
            await driver.cycle()
            results["scim2-server"] = report(driver, time.perf_counter() - started)
    return results


def render(results: dict[str, Any]) -> str:
    bridge, peer = results["scim-bridge"], results["scim2-server"]
    lines = [
        f"Entra cycle, scale {bridge['scale']}; versions {results['versions']}",
        "| request | n | scim-bridge CPU ms | scim2-server CPU ms | ratio | scim2-server errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, b in bridge["kinds"].items():
        p = peer["kinds"][kind]
        ratio = b["cpu_ms_per_request"] / p["cpu_ms_per_request"] if p["cpu_ms_per_request"] else float("nan")
        lines.append(
            f"| {kind} | {b['requests']} | {b['cpu_ms_per_request']:.2f} | {p['cpu_ms_per_request']:.2f} "
            f"| {ratio:.2f} | {p['errors']} |"
        )
    total = bridge["cpu_ms_per_request"] / max(peer["cpu_ms_per_request"], 1e-9)
    b_all, p_all = bridge["cpu_ms_per_request"], peer["cpu_ms_per_request"]
    lines.append(
        f"| all | {bridge['requests']} | {b_all:.2f} | {p_all:.2f} | {total:.2f} | {peer['errors']} |"
    )
    lines.append(
        f"peak RSS: scim-bridge {bridge['peak_rss_mb']:.1f} MB, scim2-server {peer['peak_rss_mb']:.1f} MB"
    )
    lines += [f"scim-bridge error: {e}" for e in bridge["error_samples"]]
    lines += [f"scim2-server error: {e}" for e in peer["error_samples"]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer_compare", description=__doc__)
    add_scale_arguments(parser)
    args = parser.parse_args(argv)
    missing = [name for name in ("scim2_server", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        # Not an error: the comparison needs the bench extras, the other benchmarks do not.
        print(f"peer_compare skipped: {', '.join(missing)} not installed (pip install scim2-server uvicorn)")
        return 0
    try:
        results = asyncio.run(run(scale_of(args)))
    except KeyboardInterrupt:  # the servers were stopped on the way out; no traceback for a Ctrl-C
        return 130
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 1 if results["scim-bridge"]["errors"] or results["scim2-server"]["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
