"""How one emulator starts: profile, admin token, SAML, latency and faults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from scim_bridge.emulator.faults import FAULT_KINDS, FaultSettings
from scim_bridge.emulator.profiles import get_profile

if TYPE_CHECKING:
    from scim_bridge.config import EmulatorSettings


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """The emulator's start-up configuration; a wrong value raises ValueError at construction."""

    profile: str = "2025.6"
    admin_token: str = "admin-token"  # noqa: S105 - the documented default of a test double
    saml: bool = False
    latency_ms: int = 0
    fault_rate: float = 0.0
    seed: int | None = None
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    slow_seconds: float = 30.0  # how long a "slow" fault delays its answer
    retry_after: int = 1  # seconds, in the Retry-After header of "429" and "503" faults

    def __post_init__(self) -> None:
        get_profile(self.profile)
        if not self.admin_token:
            raise ValueError("the admin token must not be empty")
        self.fault_settings()

    def fault_settings(self) -> FaultSettings:
        return FaultSettings(
            rate=self.fault_rate,
            kinds=self.fault_kinds,
            latency_ms=self.latency_ms,
            slow_seconds=self.slow_seconds,
            retry_after=self.retry_after,
            seed=self.seed,
        )

    @classmethod
    def from_settings(cls, settings: EmulatorSettings) -> EmulatorConfig:
        return cls(
            profile=settings.profile,
            admin_token=settings.admin_token.get_secret_value(),
            saml=settings.saml,
            latency_ms=settings.latency_ms,
            fault_rate=settings.fault_rate,
            seed=settings.seed,
        )
