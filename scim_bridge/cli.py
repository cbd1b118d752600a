"""The `scim-bridge` command line (README, "Running it in front of SonarQube"). Each flag has a
`SCIM_BRIDGE_*` environment twin.

Exit codes: 0 after a clean stop, 1 when the service cannot start (SonarQube unreachable, port taken), 2 for
a wrong setting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, get_args, get_origin

import structlog
from aiohttp import web
from pydantic import SecretStr

from scim_bridge import __version__
from scim_bridge.config import BridgeSettings, ConfigError, SettingsBase, load_settings
from scim_bridge.emulator.config import EmulatorSettings
from scim_bridge.logs import configure_logging
from scim_bridge.sonarqube import SonarQubeError
from scim_bridge.store import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

log = structlog.get_logger("scim_bridge.cli")

DEMO_TOKEN: Final = "demo-admin-token"  # noqa: S105 - the emulator's admin token, printed for the user
DEMO_USER: Final = "alice@example.com"
# The settings `serve` and `emulator` take as flags; every other setting comes from the environment or TOML.
_SERVE_SETTINGS: Final = ("host", "port", "sonar_url", "store", "auth", "saml_link")
_EMULATOR_SETTINGS: Final = (
    "host",
    "port",
    "admin_token",
    "profile",
    "saml",
    "latency_ms",
    "fault_rate",
    "seed",
)


class StartError(Exception):
    """The service cannot start (SonarQube unreachable, address in use); the message names the setting."""


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
    _add_emulator(commands)
    _add_demo(commands)
    return parser


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve SCIM 2.0 in front of SonarQube",
        description="Serve SCIM 2.0 at /api/scim/v2 and turn its requests into SonarQube Web API calls. "
        "Environment twins: SCIM_BRIDGE_<OPTION> (e.g. SCIM_BRIDGE_SONAR_URL).",
    )
    serve.add_argument(
        "--config",
        type=Path,
        help="TOML file with settings (flags and environment win); env SCIM_BRIDGE_CONFIG",
    )
    _setting_flags(serve, BridgeSettings, *_SERVE_SETTINGS)


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
    _setting_flags(demo, EmulatorSettings, "profile")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(level=args.log_level, fmt=args.log_format)
    try:
        if args.command == "serve":
            asyncio.run(_serve(_bridge_settings(args)))
        elif args.command == "emulator":
            _run_emulator(args)
        elif args.command == "demo":
            asyncio.run(_demo(args.port, args.sonar_port, args.profile))
    except ConfigError as exc:
        _tell(str(exc))
        return 2
    except StartError as exc:
        _tell(str(exc))
        return 1
    return 0


def _tell(message: str) -> None:
    print(f"scim-bridge: {message}", file=sys.stderr)  # noqa: T201 - the one place that talks to the operator


def _environment_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _bridge_settings(args: argparse.Namespace) -> BridgeSettings:
    return load_settings(
        BridgeSettings,
        config_file=args.config or _environment_path("SCIM_BRIDGE_CONFIG"),
        **_given(args, _SERVE_SETTINGS),
    )


def _run_emulator(args: argparse.Namespace) -> None:
    from scim_bridge.emulator import run_emulator  # noqa: PLC0415 - only this command needs it

    run_emulator(load_settings(EmulatorSettings, **_given(args, _EMULATOR_SETTINGS)))


def _setting_flags(parser: argparse.ArgumentParser, settings: type[SettingsBase], *names: str) -> None:
    """One flag per setting, named, typed and explained by the setting itself (`--sonar-url` for
    `sonar_url`). A flag not given is None, so that the environment and the TOML file still apply."""
    for name in names:
        field = settings.model_fields[name]
        default = field.get_default(call_default_factory=True)
        shown = default.get_secret_value() if isinstance(default, SecretStr) else default
        told = "" if shown is None else f" (default {shown})"
        arguments: dict[str, Any] = {"dest": name, "help": f"{field.description}{told}"}
        annotation = field.annotation
        if annotation is bool:
            arguments |= {"action": "store_true", "default": None}
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


# -- serving ---------------------------------------------------------------------------------------------


async def _serve(settings: BridgeSettings) -> None:
    """Serve until SIGINT or SIGTERM; a SonarQube or store problem at start stops before listening."""
    with _start_errors(settings):
        runner = await _start_bridge(settings)
    try:
        log.info("scim.listening", url=f"{_listening_url(runner)}{settings.base_path}")
        await _until_stopped()
    finally:
        await runner.cleanup()


async def _start_bridge(settings: BridgeSettings) -> web.AppRunner:
    """The bridge listening on its port, its SonarQube connection and store open; nothing left half-open."""
    from scim_bridge.app import create_app  # noqa: PLC0415 - the SCIM models take ~0.4 s to load

    # aiohttp's access log is off: the bridge logs one `scim.request` event per request instead.
    runner = web.AppRunner(create_app(settings), access_log=None)
    try:
        await runner.setup()  # opens the SonarQube connection and the store
        await _listen(runner, settings.host, settings.port)
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def _listen(runner: web.AppRunner, host: str, port: int) -> None:
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        raise StartError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


@contextlib.contextmanager
def _start_errors(settings: BridgeSettings) -> Iterator[None]:
    """Start-up failures of the collaborators, told with the setting to look at."""
    try:
        yield
    except SonarQubeError as exc:
        raise StartError(
            f"cannot use SonarQube at sonar_url {settings.sonar_url} (SCIM_BRIDGE_SONAR_URL): {exc}"
        ) from exc
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


def _listening_url(runner: web.AppRunner) -> str:
    """`http://host:port` of the first address the runner listens on (the real port when 0 was asked)."""
    host, port = runner.addresses[0][:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


# -- demo ------------------------------------------------------------------------------------------------


async def _demo(port: int, sonar_port: int, profile: str | None) -> None:
    """The emulator (SAML on) and the bridge on loopback, with a store that disappears afterwards."""
    from scim_bridge.emulator import create_emulator_app  # noqa: PLC0415 - only the demo needs it

    sonar = load_settings(EmulatorSettings, profile=profile, admin_token=DEMO_TOKEN, saml=True)
    emulator = web.AppRunner(create_emulator_app(sonar), access_log=None)
    await emulator.setup()
    try:
        await _listen(emulator, "127.0.0.1", sonar_port)
        with tempfile.TemporaryDirectory(prefix="scim-bridge-demo-") as state_dir:
            settings = load_settings(
                BridgeSettings,
                host="127.0.0.1",
                port=port,
                sonar_url=_listening_url(emulator),
                store=f"sqlite:///{Path(state_dir, 'demo.db')}",
                auth="sonarqube",
            )
            with _start_errors(settings):
                bridge = await _start_bridge(settings)
            try:
                banner = _demo_banner(
                    f"{_listening_url(bridge)}{settings.base_path}", _listening_url(emulator)
                )
                print(banner, flush=True)  # noqa: T201 - the demo's instructions
                await _until_stopped()
            finally:
                await bridge.cleanup()
    finally:
        await emulator.cleanup()


def _demo_banner(tenant_url: str, sonar_url: str) -> str:
    create_body = (
        '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
        f'"userName":"{DEMO_USER}","displayName":"Alice Example",'
        f'"emails":[{{"value":"{DEMO_USER}","type":"work","primary":true}}],"active":true}}'
    )
    auth = f'-H "Authorization: Bearer {DEMO_TOKEN}"'
    return "\n".join(
        [
            f"SonarQube emulator (SAML on): {sonar_url}",
            "Entra ID provisioning settings:",
            f"  Tenant URL:   {tenant_url}",
            f"  Secret Token: {DEMO_TOKEN}",
            "Find a user, create it, find it again:",
            f"  curl {auth} '{tenant_url}/Users?filter=userName%20eq%20%22{DEMO_USER}%22'",
            f"  curl {auth} -H 'Content-Type: application/scim+json' -d '{create_body}' {tenant_url}/Users",
            "Press Ctrl-C to stop.",
        ]
    )
