"""Whether provisioned accounts are linked to their SAML identity (setting `saml_link`).

`on` and `off` decide alone; `auto` links when SonarQube has SAML authentication on, which is read from
SonarQube (docs/sonarqube.md SQ17) and trusted for a few minutes, so that a cycle of requests costs one look.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import structlog

from scim_bridge.provisioning.translate import sonar_errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from scim_bridge.config import SamlLink
    from scim_bridge.provisioning.context import RequestContext

log = structlog.get_logger("scim_bridge.provisioning")

SAML_SETTINGS_TTL: Final = 300.0  # how long SonarQube's "SAML enabled" answer is trusted, in seconds


@dataclass(slots=True)
class _Verdict:
    enabled: bool
    until: float


class SamlPolicy:
    """The `saml_link` setting, with SonarQube's own answer cached for `auto`."""

    def __init__(self, setting: SamlLink, monotonic: Callable[[], float]) -> None:
        self._setting = setting
        self._monotonic = monotonic
        self._verdict: _Verdict | None = None
        # Entra's first burst of creates would otherwise each ask SonarQube the same question at once.
        self._asking = asyncio.Lock()

    async def links(self, ctx: RequestContext) -> bool:
        """Whether users are linked to SAML now."""
        if self._setting != "auto":
            return self._setting == "on"
        if (verdict := self._fresh()) is not None:
            return verdict.enabled
        async with self._asking:
            if (verdict := self._fresh()) is not None:  # asked by whoever held the lock before
                return verdict.enabled
            async with sonar_errors():
                saml = await ctx.sonar.saml_settings()
            if saml.enabled and saml.group_attribute:
                # SonarQube then rewrites every SAML user's groups at each sign-in from the assertion, which
                # undoes memberships Entra provisions unless the assertion carries the same group names
                # (docs/sonarqube.md SQ16).
                log.warning("provisioning.saml_group_sync_on", group_attribute=saml.group_attribute)
            self._verdict = _Verdict(saml.enabled, self._monotonic() + SAML_SETTINGS_TTL)
            return saml.enabled

    def _fresh(self) -> _Verdict | None:
        verdict = self._verdict
        return verdict if verdict is not None and self._monotonic() < verdict.until else None
