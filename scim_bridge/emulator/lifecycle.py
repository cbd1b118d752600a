"""The emulator's lifecycle: the phase it is in (`up`, `starting`, `down`) and the changes
`PUT /_emulator/lifecycle` asks for (another phase, another profile, or both).

- `up`: SonarQube is running; every `/api/**` request is served.
- `starting`: SonarQube's web server is initialising: `GET api/system/status` answers `"status": "STARTING"`
  (docs/sonarqube.md SQ3), every other `/api/**` request a plain `503`.
- `down`: nothing listens: every `/api/**` request has its connection dropped without an answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from scim_bridge.emulator.profiles import get_profile

if TYPE_CHECKING:
    from scim_bridge.emulator.profiles import Profile

Phase = Literal["up", "starting", "down"]
PHASES: tuple[Phase, ...] = get_args(Phase)
# What `api/system/status` reports in each phase in which it answers.
SERVER_STATUS: dict[Phase, str] = {"up": "UP", "starting": "STARTING"}


class LifecycleError(ValueError):
    """A lifecycle change names an unknown phase or profile, or is not one; the message says which."""


@dataclass(frozen=True, slots=True)
class LifecycleChange:
    """What one `PUT /_emulator/lifecycle` asks for: None leaves that part as it is."""

    phase: Phase | None
    profile: Profile | None


def lifecycle_change(document: Any) -> LifecycleChange:
    """Read `{"phase": …}` and/or `{"profile": …}`; anything else is a `LifecycleError`."""
    if not isinstance(document, dict):
        raise LifecycleError("the body must be a JSON object")
    unknown = sorted(set(document) - {"phase", "profile"})
    if unknown:
        raise LifecycleError(f"unknown lifecycle settings {unknown}; known: ['phase', 'profile']")
    if not document:
        raise LifecycleError("give a 'phase', a 'profile' or both")
    return LifecycleChange(
        phase=_phase(document["phase"]) if "phase" in document else None,
        profile=_profile(document["profile"]) if "profile" in document else None,
    )


def _phase(value: Any) -> Phase:
    for phase in PHASES:
        if value == phase:
            return phase
    raise LifecycleError(f"unknown phase {value!r}; known: {', '.join(PHASES)}")


def _profile(value: Any) -> Profile:
    if not isinstance(value, str):
        raise LifecycleError(f"profile must be a string, not {value!r}")
    try:
        return get_profile(value)
    except ValueError as error:
        raise LifecycleError(str(error)) from None
