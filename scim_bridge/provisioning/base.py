"""What the user and group services share: store, settings, locks, clock, SAML policy, audit, errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import structlog

from scim_bridge.provisioning.locks import KeyedLocks
from scim_bridge.provisioning.logins import LoginRules
from scim_bridge.provisioning.mapping import weak_etag
from scim_bridge.provisioning.translate import scim_error
from scim_bridge.scim.errors import PreconditionFailedError
from scim_bridge.sonarqube import SonarQubeError
from scim_bridge.store.records import AuditEvent, ResourceType

if TYPE_CHECKING:
    from scim_bridge.config import BridgeSettings
    from scim_bridge.provisioning.context import RequestContext
    from scim_bridge.sonarqube import Dialect, SonarVersion
    from scim_bridge.store.base import StateStore

log = structlog.get_logger("scim_bridge.provisioning")

SAML_SETTINGS_TTL = 300.0  # how long SonarQube's "SAML enabled" answer is trusted, in seconds
LISTING_CHUNK = 500  # records read per store call when a filter must be evaluated over every resource

RecordT = TypeVar("RecordT")
Clock = Callable[[], datetime]
Monotonic = Callable[[], float]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _SamlVerdict:
    enabled: bool
    until: float


class Shared:
    """State and helpers the user and group services both use, created once per application."""

    def __init__(
        self,
        *,
        store: StateStore,
        settings: BridgeSettings,
        version: SonarVersion,
        dialect: Dialect,
        clock: Clock = utc_now,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self.store = store
        self.settings = settings
        self.dialect = dialect
        self.login_rules = LoginRules.for_server(version, dialect)
        self.locks = KeyedLocks()
        self.clock = clock
        self._monotonic = monotonic
        self._saml: _SamlVerdict | None = None

    async def saml_linking(self, ctx: RequestContext) -> bool:
        """Whether users are linked to SAML: `saml_link` on/off, or (auto) whether SonarQube has SAML on."""
        if self.settings.saml_link != "auto":
            return self.settings.saml_link == "on"
        now = self._monotonic()
        if self._saml is None or now >= self._saml.until:
            async with sonar_errors():
                saml = await ctx.sonar.saml_settings()
            if saml.enabled and saml.group_attribute:
                # SonarQube then rewrites every SAML user's groups at each sign-in from the assertion, which
                # undoes memberships Entra provisions unless the assertion carries the same group names.
                log.warning("provisioning.saml_group_sync_on", group_attribute=saml.group_attribute)
            self._saml = _SamlVerdict(saml.enabled, now + SAML_SETTINGS_TTL)
        return self._saml.enabled

    async def audit(
        self,
        ctx: RequestContext,
        *,
        action: str,
        resource_type: ResourceType,
        scim_id: str,
        sonar_key: str | None,
        outcome: str = "ok",
        detail: str | None = None,
    ) -> None:
        """One audit event in the store and one log event, ids only."""
        await self.store.append_audit(
            AuditEvent(
                at=self.clock(),
                request_id=ctx.request_id,
                actor=ctx.actor,
                action=action,
                resource_type=resource_type,
                scim_id=scim_id,
                sonar_key=sonar_key,
                outcome=outcome,
                detail=detail,
            )
        )
        log.info("provisioning.audit", action=action, scim_id=scim_id, sonar_key=sonar_key, outcome=outcome)


async def every_record(page: Callable[..., Awaitable[tuple[list[RecordT], int]]]) -> list[RecordT]:
    """Every record of a paged store listing (`list_users`, `list_groups`), read in chunks."""
    records: list[RecordT] = []
    while True:
        chunk, total = await page(offset=len(records), limit=LISTING_CHUNK)
        records += chunk
        if not chunk or len(records) >= total:
            return records


def check_version(current: int, if_match: str | None) -> None:
    """RFC 7644 §3.14: a stale `If-Match` is 412; `*` matches any version."""
    if if_match is None:
        return
    tags = {tag.strip() for tag in if_match.split(",")}
    if "*" not in tags and weak_etag(current) not in tags and f'"{current}"' not in tags:
        raise PreconditionFailedError(
            f"If-Match {if_match} does not match the current version {weak_etag(current)}"
        )


@asynccontextmanager
async def sonar_errors() -> AsyncIterator[None]:
    """Translate SonarQube failures into SCIM errors at this boundary."""
    try:
        yield
    except SonarQubeError as exc:
        raise scim_error(exc) from exc
