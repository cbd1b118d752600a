"""The `scim-bridge` command line (DESIGN §2). Each flag has a `SCIM_BRIDGE_*` environment twin."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, get_args

from scim_bridge import __version__
from scim_bridge.config import ConfigError, EmulatorProfileName, EmulatorSettings, load_settings
from scim_bridge.logs import configure_logging

if TYPE_CHECKING:
    from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scim-bridge",
        description="SCIM 2.0 provisioning for every SonarQube edition.",
    )
    parser.add_argument("--version", action="version", version=f"scim-bridge {__version__}")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default="auto", choices=["auto", "json", "console"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    emulator = commands.add_parser(
        "emulator",
        help="run the built-in SonarQube Web API emulator (for tests, demos and benchmarks)",
        description="An in-memory SonarQube Web API (v1 and v2) for tests, demos and benchmarks. "
        "Environment twins: SCIM_BRIDGE_EMULATOR_<OPTION>.",
    )
    emulator.add_argument("--host", help="listen address (default 127.0.0.1)")
    emulator.add_argument("--port", type=int, help="listen port (default 9000, like SonarQube)")
    emulator.add_argument("--admin-token", help="token of the seeded 'admin' user")
    emulator.add_argument(
        "--profile",
        choices=get_args(EmulatorProfileName),
        help="SonarQube version to imitate (default 2025.6)",
    )
    emulator.add_argument(
        "--saml", action="store_true", default=None, help="start with SAML authentication enabled"
    )
    emulator.add_argument("--latency-ms", type=int, help="fixed latency added to every answer")
    emulator.add_argument("--fault-rate", type=float, help="share of requests answered with a fault (0..1)")
    emulator.add_argument("--seed", type=int, help="seed that makes faults reproducible")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(level=args.log_level, fmt=args.log_format)
    try:
        if args.command == "emulator":
            from scim_bridge.emulator import run_emulator  # noqa: PLC0415 - only this command needs it

            settings = load_settings(
                EmulatorSettings,
                host=args.host,
                port=args.port,
                admin_token=args.admin_token,
                profile=args.profile,
                saml=args.saml,
                latency_ms=args.latency_ms,
                fault_rate=args.fault_rate,
                seed=args.seed,
            )
            run_emulator(settings)
    except ConfigError as exc:
        print(f"scim-bridge: {exc}", file=sys.stderr)  # noqa: T201 - the one place that talks to the operator
        return 2
    return 0
