"""How one emulator starts (`scim-bridge emulator`, the demo, tests): address, SonarQube version, admin
token, SAML, start delay, latency and faults. Flags over `SCIM_BRIDGE_EMULATOR_*` environment over defaults.

The fault fields are checked by `FaultSettings`, the runtime fault configuration that `/_emulator/faults`
changes later: their rules are written once, there.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from scim_bridge.config import ENV_PREFIX, PortNumber, SettingsBase
from scim_bridge.emulator.faults import FAULT_KINDS, FaultSettings
from scim_bridge.emulator.profiles import PROFILES, get_profile


class EmulatorSettings(SettingsBase):
    """The emulator's start-up configuration; a wrong value is refused at construction."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}EMULATOR_")

    host: str = Field("127.0.0.1", description="listen address")
    port: PortNumber = Field(9000, description="listen port (SonarQube's own)")
    admin_token: Annotated[SecretStr, Field(min_length=1)] = Field(
        SecretStr("admin-token"), description="token of the seeded 'admin' user"
    )
    profile: str = Field(
        "2025.6", description="SonarQube version to imitate", json_schema_extra={"enum": list(PROFILES)}
    )
    saml: bool = Field(default=False, description="start with SAML authentication enabled")
    start_delay: float = Field(
        0.0,
        ge=0,
        allow_inf_nan=False,
        description="seconds to spend starting (api/system/status says STARTING, other /api calls get 503) "
        "before serving",
    )
    latency_ms: int = Field(0, description="fixed latency added to every answer, in milliseconds")
    fault_rate: float = Field(0.0, description="share of requests answered with a fault (0..1)")
    seed: int | None = Field(None, description="seed that makes faults reproducible")
    fault_kinds: tuple[str, ...] = Field(FAULT_KINDS, description="the faults to choose from")
    fault_paths: tuple[str, ...] = Field(
        (), description="only calls whose path or 'METHOD path' starts with one of these fail (none: all)"
    )
    slow_seconds: float = Field(30.0, description="how long a 'slow' fault delays its answer")
    retry_after: int = Field(1, description="seconds in the Retry-After of '429' and '503' faults")

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, name: str) -> str:
        return get_profile(name).name

    @model_validator(mode="after")
    def _faults_are_valid(self) -> EmulatorSettings:
        self.fault_settings()
        return self

    def fault_settings(self) -> FaultSettings:
        """The fault configuration the emulator starts with."""
        return FaultSettings(
            rate=self.fault_rate,
            kinds=self.fault_kinds,
            latency_ms=self.latency_ms,
            slow_seconds=self.slow_seconds,
            retry_after=self.retry_after,
            seed=self.seed,
            paths=self.fault_paths,
        )
