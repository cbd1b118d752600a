"""The `scim-bridge` command line (README, "Running it in front of SonarQube"). Each flag has a
`SCIM_BRIDGE_*` environment twin.

serve      the bridge, whatever SonarQube is doing (it waits for SonarQube and follows it)
check      would provisioning work with these settings? (docs/deploy.md)
audit      who changed which account or group, when
reconcile  find what changed in SonarQube behind the bridge's back, and repair it (docs/operations.md)
emulator   the built-in SonarQube emulator (docs/emulator.md)
demo       the emulator and the bridge in one process

Exit codes: 0 after a clean stop (or `check` finding nothing wrong, or `reconcile` leaving nothing wrong), 1
when the service cannot start (a port or the store taken), `check` found an error or `reconcile` could not
repair something, 2 for a wrong setting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, get_args, get_origin

import aiohttp
import structlog
import uvloop
from aiohttp import web
from pydantic import SecretStr

from scim_bridge import __version__
from scim_bridge.config import BridgeSettings, ConfigError, SettingsBase, load_settings
from scim_bridge.emulator.config import EmulatorSettings
from scim_bridge.logs import configure_logging
from scim_bridge.store import StoreError, StoreLocked

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

log = structlog.get_logger("scim_bridge.cli")

DEMO_TOKEN: Final = "demo-admin-token"  # noqa: S105 - the emulator's admin token, printed for the user
DEMO_USER: Final = "alice@example.com"
# The settings commands take as flags; every other setting comes from the environment or the TOML file.
_SERVE_SETTINGS: Final = (
    "host",
    "port",
    "admin_host",
    "admin_port",
    "sonar_url",
    "store",
    "auth",
    "saml_link",
    "adopt_local_accounts",
    "on_delete",
    "proxy",
    "public_url",
    "trusted_proxies",
    "tls_cert",
    "tls_key",
    "shutdown_grace",
    "reconcile_interval",
)
_CHECK_SETTINGS: Final = ("sonar_url", "store", "auth", "saml_link", "sonar_token")
_RECONCILE_SETTINGS: Final = ("sonar_url", "store", "saml_link", "sonar_token")
_EMULATOR_SETTINGS: Final = (
    "host",
    "port",
    "admin_token",
    "profile",
    "saml",
    "start_delay",
    "latency_ms",
    "fault_rate",
    "seed",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scim-bridge",
        description="SCIM 2.0 provisioning for every SonarQube edition.",
    )
    parser.add_argument("--version", action="version", version=f"scim-bridge {__version__}")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default="auto", choices=["auto", "json", "console"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_check(commands)
    _add_audit(commands)
    _add_reconcile(commands)
    _add_emulator(commands)
    _add_demo(commands)
    return parser


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve SCIM 2.0 in front of SonarQube, and proxy everything else to it",
        description="Serve SCIM 2.0 at /api/scim/v2 and turn its requests into SonarQube Web API calls; "
        "stream every other path through to SonarQube. Environment twins: SCIM_BRIDGE_<OPTION> "
        "(e.g. SCIM_BRIDGE_SONAR_URL).",
    )
    _config_flag(serve)
    _setting_flags(serve, BridgeSettings, *_SERVE_SETTINGS)


def _add_check(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check",
        help="check that provisioning would work: settings, SonarQube, the token, SAML, the store",
        description="Check the settings, SonarQube (reachable, status, version, API), the token Entra will "
        "use (SCIM_BRIDGE_SONAR_TOKEN or --sonar-token; static auth: the bridge's own), SAML and the state "
        "store. Exit 0 only when provisioning would work.",
    )
    _config_flag(check)
    _setting_flags(check, BridgeSettings, *_CHECK_SETTINGS)
    check.add_argument("--json", action="store_true", help="one JSON document instead of text")


def _add_reconcile(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reconcile = commands.add_parser(
        "reconcile",
        help="find what changed in SonarQube behind the bridge's back, and put it right",
        description="Compare what Entra asked for (the state store) with SonarQube: memberships changed in "
        "SonarQube's UI, accounts reactivated or deactivated there, lost SAML links, renamed or deleted "
        "groups, a lost store (SonarQube 10.4+); repair each difference. Needs an administrator's token "
        "(--sonar-token or SCIM_BRIDGE_SONAR_TOKEN(_FILE)) and the store to itself (--dry-run also works "
        "beside serve). Exit 0 when nothing is left wrong, 1 when something could not be repaired.",
    )
    _config_flag(reconcile)
    _setting_flags(reconcile, BridgeSettings, *_RECONCILE_SETTINGS)
    reconcile.add_argument("--dry-run", action="store_true", help="report the differences, change nothing")
    reconcile.add_argument("--json", action="store_true", help="one JSON object per line, the summary last")


def _add_audit(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser(
        "audit",
        help="list the audit trail: who changed which account or group, when",
        description="List the changes the bridge made, newest first, from its state store.",
    )
    _config_flag(audit)
    _setting_flags(audit, BridgeSettings, "store")
    audit.add_argument("--since", help="only the last DURATION: 30m, 24h, 7d, 2w")
    audit.add_argument("--user", metavar="LOGIN", help="only what concerns this SonarQube login (or group)")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")


def _add_emulator(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    emulator = commands.add_parser(
        "emulator",
        help="run the built-in SonarQube Web API emulator (for tests, demos and benchmarks)",
        description="An in-memory SonarQube Web API (v1 and v2) for tests, demos and benchmarks. "
        "Environment twins: SCIM_BRIDGE_EMULATOR_<OPTION>.",
    )
    _setting_flags(emulator, EmulatorSettings, *_EMULATOR_SETTINGS)


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        help="the SonarQube emulator and the bridge in one process, ready for curl or Entra",
        description="Start the SonarQube emulator (SAML on) and the bridge in front of it, with a throw-away "
        "state store, and print the Tenant URL, the secret token and curl examples. Port 0 picks a free one.",
    )
    demo.add_argument("--port", type=int, default=9080, help="the bridge's port (default 9080)")
    demo.add_argument("--sonar-port", type=int, default=9000, help="the emulator's port (default 9000)")
    demo.add_argument(
        "--admin-port", type=int, default=9081, help="the bridge's admin listener's port (default 9081)"
    )
    _setting_flags(demo, EmulatorSettings, "profile")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(level=args.log_level, fmt=args.log_format)
    # Only this module imports what the command needs: the SCIM models take ~0.4 s to load.
    from scim_bridge.serving import StartError  # noqa: PLC0415

    try:
        if args.command == "serve":
            # uvloop's event loop: about a tenth less CPU per request than asyncio's (docs/performance.md).
            uvloop.run(_serve(_bridge_settings(args, _SERVE_SETTINGS)))
        elif args.command == "check":
            return asyncio.run(_check(_bridge_settings(args, _CHECK_SETTINGS), as_json=args.json))
        elif args.command == "audit":
            asyncio.run(_audit(_bridge_settings(args, ("store",)), args.since, args.user, as_json=args.json))
        elif args.command == "reconcile":
            from scim_bridge.commands.reconcile import run_reconcile  # noqa: PLC0415 - see above

            settings = _bridge_settings(args, _RECONCILE_SETTINGS)
            return asyncio.run(run_reconcile(settings, dry_run=args.dry_run, as_json=args.json))
        elif args.command == "emulator":
            _run_emulator(args)
        elif args.command == "demo":
            uvloop.run(_demo(args.port, args.sonar_port, args.admin_port, args.profile))
    except ConfigError as exc:
        _tell(str(exc))
        return 2
    except StartError as exc:
        _tell(str(exc))
        return 1
    return 0


def _tell(message: str) -> None:
    print(f"scim-bridge: {message}", file=sys.stderr)  # noqa: T201 - the one place that talks to the operator


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - a command's answer


def _config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help="TOML file with settings (flags and environment win); env SCIM_BRIDGE_CONFIG",
    )


def _bridge_settings(args: argparse.Namespace, names: Sequence[str]) -> BridgeSettings:
    config = args.config or (Path(value) if (value := os.environ.get("SCIM_BRIDGE_CONFIG")) else None)
    return load_settings(BridgeSettings, config_file=config, **_given(args, names))


def _run_emulator(args: argparse.Namespace) -> None:
    from scim_bridge.emulator import run_emulator  # noqa: PLC0415 - only this command needs it

    run_emulator(load_settings(EmulatorSettings, **_given(args, _EMULATOR_SETTINGS)))


def _setting_flags(parser: argparse.ArgumentParser, settings: type[SettingsBase], *names: str) -> None:
    """One flag per setting, named, typed and explained by the setting itself (`--sonar-url` for
    `sonar_url`). A flag not given is None, so that the environment and the TOML file still apply."""
    for name in names:
        field = settings.model_fields[name]
        default = field.get_default(call_default_factory=True)
        shown = "(hidden)" if isinstance(default, SecretStr) else default
        told = "" if shown in (None, []) else f" (default {shown})"
        arguments: dict[str, Any] = {"dest": name, "help": f"{field.description}{told}"}
        annotation = field.annotation
        if annotation is bool:
            arguments |= {"action": "store_true", "default": None}
        elif get_origin(annotation) is list:
            arguments |= {"nargs": "+", "metavar": "VALUE"}
        else:
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            literal = get_args(annotation) if get_origin(annotation) is Literal else None
            arguments |= {"type": _flag_type(annotation), "choices": literal or extra.get("enum")}
        parser.add_argument(f"--{name.replace('_', '-')}", **arguments)


def _flag_type(annotation: Any) -> Callable[[str], Any]:
    """How a flag's text is read: numbers and paths as such, everything else as text for the settings
    to validate (`int | None` reads as `int`)."""
    members = [member for member in get_args(annotation) if member is not type(None)] or [annotation]
    kind = members[0]
    return kind if kind in {int, float, Path} else str


def _given(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names}


# -- serve -----------------------------------------------------------------------------------------------


async def _serve(settings: BridgeSettings) -> None:
    """Serve until SIGINT or SIGTERM, then drain (serving.py)."""
    from scim_bridge.serving import RunningBridge, StartError  # noqa: PLC0415 - see main

    try:
        running = await RunningBridge.start(settings)
    except StoreLocked as exc:
        raise StartError(f"setting 'store' (SCIM_BRIDGE_STORE): {exc}") from exc
    try:
        await _until_stopped()
    finally:
        await running.stop()


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    """A state store that cannot be opened, told with the setting to look at."""
    try:
        yield
    except StoreError as exc:
        raise ConfigError(f"setting 'store' (SCIM_BRIDGE_STORE): {exc}") from exc


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


# -- check and audit -------------------------------------------------------------------------------------


async def _check(settings: BridgeSettings, *, as_json: bool) -> int:
    from scim_bridge.commands.check import render, run_checks, succeeded  # noqa: PLC0415 - see main

    verdicts = await run_checks(settings)
    if as_json:
        report = {"ok": succeeded(verdicts), "checks": [verdict.as_json() for verdict in verdicts]}
        _say(json.dumps(report, indent=2))
    else:
        _say(render(verdicts))
    return 0 if succeeded(verdicts) else 1


async def _audit(settings: BridgeSettings, since: str | None, login: str | None, *, as_json: bool) -> None:
    from scim_bridge.commands.audit import as_json as event_json  # noqa: PLC0415 - see main
    from scim_bridge.commands.audit import audit_events, render, since_from  # noqa: PLC0415

    start = since_from(since, datetime.now(UTC))
    with _store_errors():
        events = await audit_events(settings.store, since=start, login=login)
    if as_json:
        _say("\n".join(json.dumps(event_json(event)) for event in events))
    else:
        _say(render(events))


# -- demo ------------------------------------------------------------------------------------------------


async def _demo(port: int, sonar_port: int, admin_port: int, profile: str | None) -> None:
    """The emulator (SAML on) and the bridge on loopback, with a store that disappears afterwards."""
    from scim_bridge.emulator import create_emulator_app  # noqa: PLC0415 - only the demo needs it
    from scim_bridge.serving import RunningBridge, listen, listening_url  # noqa: PLC0415 - see main

    sonar = load_settings(EmulatorSettings, profile=profile, admin_token=DEMO_TOKEN, saml=True)
    emulator = web.AppRunner(create_emulator_app(sonar), access_log=None)
    await emulator.setup()
    try:
        await listen(emulator, "127.0.0.1", sonar_port)
        with tempfile.TemporaryDirectory(prefix="scim-bridge-demo-") as state_dir:
            settings = load_settings(
                BridgeSettings,
                host="127.0.0.1",
                port=port,
                admin_port=admin_port,
                sonar_url=listening_url(emulator),
                store=f"sqlite:///{Path(state_dir, 'demo.db')}",
                auth="sonarqube",
                shutdown_grace=1.0,
            )
            running = await RunningBridge.start(settings)
            try:
                await _until_ready(running.admin_url)
                _say(
                    _demo_banner(running.url + settings.base_path, listening_url(emulator), running.admin_url)
                )
                await _until_stopped()
            finally:
                await running.stop()
    finally:
        await emulator.cleanup()


async def _until_ready(admin_url: str) -> None:
    """Wait (10 s at most) for `/readyz`, so that the banner's commands work as soon as it is printed: the
    bridge answers 503 until it has seen SonarQube once."""
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{admin_url}/readyz") as resp:
                    if resp.status == HTTPStatus.OK:
                        return
            await asyncio.sleep(0.1)


def _demo_banner(tenant_url: str, sonar_url: str, admin_url: str) -> str:
    create_body = (
        '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
        f'"userName":"{DEMO_USER}","displayName":"Alice Example",'
        f'"emails":[{{"value":"{DEMO_USER}","type":"work","primary":true}}],"active":true}}'
    )
    auth = f'-H "Authorization: Bearer {DEMO_TOKEN}"'
    bridge = tenant_url.rsplit("/api/", 1)[0]
    return "\n".join(
        [
            f"SonarQube emulator (SAML on): {sonar_url}",
            "Entra ID provisioning settings:",
            f"  Tenant URL:   {tenant_url}",
            f"  Secret Token: {DEMO_TOKEN}",
            "Find a user, create it, find it again:",
            f"  curl {auth} '{tenant_url}/Users?filter=userName%20eq%20%22{DEMO_USER}%22'",
            f"  curl {auth} -H 'Content-Type: application/scim+json' -d '{create_body}' {tenant_url}/Users",
            "SonarQube through the bridge, and the bridge's own health and metrics:",
            f"  curl {bridge}/api/server/version",
            f"  curl {admin_url}/readyz",
            f"  curl {admin_url}/metrics",
            "Press Ctrl-C to stop.",
        ]
    )
