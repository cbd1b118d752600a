"""`python -m bench`: run every benchmark and rewrite the generated part of docs/performance.md."""

from __future__ import annotations

import asyncio
import platform
import re
import sys
from pathlib import Path

from bench import client_calls
from scim_bridge.logs import configure_logging

REPORT = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
BEGIN, END = "<!-- bench:client:begin -->", "<!-- bench:client:end -->"


async def _run() -> str:
    measurements = []
    for profile in ("9.9", "2025.6"):
        measurements += await client_calls.measure_profile(profile)
    return client_calls.render(measurements)


def main() -> None:
    configure_logging(level="warning", fmt="console")
    table = asyncio.run(_run())
    machine = f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}"
    note = f"_Measured by `make bench` ({machine}; {client_calls.ROUNDS} rounds each)._"
    block = f"{BEGIN}\n{note}\n\n{table}\n{END}"
    text = REPORT.read_text(encoding="utf-8")
    REPORT.write_text(
        re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), block, text, flags=re.DOTALL), encoding="utf-8"
    )
    sys.stdout.write(table + "\n")


main()
