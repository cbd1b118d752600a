"""`python -m bench`: run every benchmark and rewrite the generated parts of docs/performance.md."""

from __future__ import annotations

import asyncio
import platform
import re
import sys
from pathlib import Path

from bench import client_calls, scim_calls
from scim_bridge.emulator import PROFILES
from scim_bridge.logs import configure_logging

REPORT = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
CLIENT_PROFILES = ("9.9", "2025.6")
"""The client benchmark measures one version per Web API generation: 9.9 (v1 only) and 2025.6 (v2)."""


async def _client_section() -> str:
    measurements = []
    for profile in CLIENT_PROFILES:
        measurements += await client_calls.measure_profile(profile)
    return client_calls.render(measurements) + f"\n\n_{client_calls.ROUNDS} rounds each._"


async def _scim_sections() -> tuple[str, str]:
    counts, costs = [], []
    for profile in PROFILES:
        profile_counts, profile_costs = await scim_calls.measure(profile)
        counts += profile_counts
        costs += profile_costs
    cpu_note = (
        f"_{scim_calls.CPU_ROUNDS} requests each; the bridge process's user+system CPU time from /proc._"
    )
    return scim_calls.render_counts(counts), scim_calls.render_cpu(costs) + "\n\n" + cpu_note


def _replace(text: str, name: str, content: str, machine: str) -> str:
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    block = f"{begin}\n_Measured by `make bench` on {machine}._\n\n{content}\n{end}"
    return re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _m: block, text, flags=re.DOTALL)


def main() -> None:
    configure_logging(level="warning", fmt="console")
    machine = f"Python {platform.python_version()}, {platform.machine()}, {platform.system()}"
    client = asyncio.run(_client_section())
    calls, cpu = asyncio.run(_scim_sections())
    text = REPORT.read_text(encoding="utf-8")
    for name, content in (("client", client), ("scim-calls", calls), ("scim-cpu", cpu)):
        text = _replace(text, name, content, machine)
        sys.stdout.write(f"\n{content}\n")
    REPORT.write_text(text, encoding="utf-8")


main()
