"""A faithful, in-memory SonarQube Web API (v1 and v2) for tests, the demo and benchmarks.

`create_emulator_app(EmulatorSettings(...))` gives an aiohttp application imitating one SonarQube version
(`PROFILES`); `endpoint_specs(profile)` describes every endpoint it serves. See docs/emulator.md.
"""

from __future__ import annotations

from aiohttp import web

from scim_bridge.emulator.app import create_emulator_app
from scim_bridge.emulator.config import EmulatorSettings
from scim_bridge.emulator.profiles import PROFILES, Profile
from scim_bridge.emulator.specs import EndpointSpec, ParamSpec, endpoint_specs

__all__ = [
    "PROFILES",
    "EmulatorSettings",
    "EndpointSpec",
    "ParamSpec",
    "Profile",
    "create_emulator_app",
    "endpoint_specs",
    "run_emulator",
]


def run_emulator(settings: EmulatorSettings) -> None:
    """Serve the emulator until interrupted, after one line saying where and with which admin token."""
    profile = PROFILES[settings.profile]
    saml = "on" if settings.saml else "off"
    print(  # noqa: T201 - the one line the operator reads: where the emulator is and its token
        f"SonarQube emulator {profile.version} (profile {profile.name}, SAML {saml}) "
        f"at http://{settings.host}:{settings.port} — admin token: {settings.admin_token.get_secret_value()}",
        flush=True,
    )
    web.run_app(create_emulator_app(settings), host=settings.host, port=settings.port, print=None)
