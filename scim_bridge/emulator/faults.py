"""Injected faults and latency for `/api/**` requests, chosen per request by a seeded random generator.

Kinds: "500" (SonarQube's internal-error answer), "503" and "429" (with `Retry-After`; the request is not
applied), "reset" (the connection is dropped without an answer, half the time before the request is
applied and half the time after), "slow" (applied, then answered `slow_seconds` late). `paths` narrows
the faults to some calls, such as `DELETE /api/v2/users-management/users` or `/api/users/deactivate`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

FAULT_KINDS = ("500", "503", "429", "reset", "slow")


class FaultSettingsError(ValueError):
    """A fault setting is unknown or out of range; the message says which and why."""


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """How often requests fail, how, and how slowly everything answers (defaults: `EmulatorSettings`)."""

    rate: float
    kinds: tuple[str, ...]
    latency_ms: int
    slow_seconds: float
    retry_after: int
    seed: int | None
    paths: tuple[str, ...]
    """Only requests whose path, or method and path (`POST /api/users/create`), start with one of these
    draw faults; none: every `/api/` request."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise FaultSettingsError(f"rate must be between 0 and 1, not {self.rate}")
        unknown = sorted(set(self.kinds) - set(FAULT_KINDS))
        if unknown:
            raise FaultSettingsError(f"unknown fault kinds {unknown}; known: {list(FAULT_KINDS)}")
        for name in ("latency_ms", "slow_seconds", "retry_after"):
            if getattr(self, name) < 0:
                raise FaultSettingsError(f"{name} must not be negative")

    def changed(self, changes: Mapping[str, Any]) -> FaultSettings:
        """These settings with `changes` applied (JSON values: kinds as a list)."""
        known = {field.name: field for field in fields(self)}
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise FaultSettingsError(f"unknown fault settings {unknown}; known: {sorted(known)}")
        converted = {name: _converted(name, value) for name, value in changes.items()}
        return replace(self, **converted)

    def as_json(self) -> dict[str, Any]:
        return {field.name: _jsonable(getattr(self, field.name)) for field in fields(self)}


_TYPES: dict[str, tuple[type, ...]] = {
    "rate": (int, float),
    "latency_ms": (int,),
    "slow_seconds": (int, float),
    "retry_after": (int,),
}


def _converted(name: str, value: Any) -> Any:
    if name in {"kinds", "paths"}:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise FaultSettingsError(f"{name} must be a list of strings")
        return tuple(value)
    if name == "seed":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise FaultSettingsError("seed must be an integer or null")
        return value
    if isinstance(value, bool) or not isinstance(value, _TYPES[name]):
        raise FaultSettingsError(f"{name} must be a number")
    return value


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True, slots=True)
class Fault:
    """The fault chosen for one request; `before_apply` only matters for "reset"."""

    kind: str
    before_apply: bool = False


class FaultInjector:
    """Chooses, per request and in arrival order, whether and how it fails."""

    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._random = random.Random(settings.seed)

    def configure(self, changes: Mapping[str, Any]) -> None:
        """Apply new settings; a `seed` among them restarts the sequence of choices."""
        self.settings = self.settings.changed(changes)
        if "seed" in changes:
            self.restart()

    def restart(self) -> None:
        """Start the sequence of choices again from the seed."""
        self._random = random.Random(self.settings.seed)

    def pick(self, method: str, path: str) -> Fault | None:
        """The fault for a request, if it draws one."""
        paths = self.settings.paths
        if paths and not any(path.startswith(p) or f"{method} {path}".startswith(p) for p in paths):
            return None
        if not self.settings.kinds or self._random.random() >= self.settings.rate:
            return None
        kind = self._random.choice(self.settings.kinds)
        return Fault(kind, before_apply=kind == "reset" and self._random.random() < 0.5)  # a coin toss
