"""The audit trail: one event per change, in the store (for `who changed this account, and when?`) and in
the log, with ids only: the SCIM id, the SonarQube login or group name, the actor and the request id."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from scim_bridge.store.records import AuditEvent

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from scim_bridge.provisioning.context import RequestContext
    from scim_bridge.store.base import StateStore
    from scim_bridge.store.records import ResourceRecord

log = structlog.get_logger("scim_bridge.provisioning")


class AuditTrail:
    """Writes audit events for the changes one bridge makes."""

    def __init__(self, store: StateStore, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    async def record(
        self,
        ctx: RequestContext,
        action: str,
        resource: ResourceRecord,
        *,
        outcome: str = "ok",
        detail: str | None = None,
    ) -> None:
        """One event: `action` (e.g. `user_created`) done to `resource` for the request in `ctx`."""
        event = self.event(ctx, action, resource, outcome=outcome, detail=detail)
        await self._store.append_audit(event)
        self.logged(event)

    def event(
        self,
        ctx: RequestContext,
        action: str,
        resource: ResourceRecord,
        *,
        outcome: str = "ok",
        detail: str | None = None,
    ) -> AuditEvent:
        """The event `record` writes, for a caller that writes it with its change in one store transaction
        (`update_user(..., audit=event)`), then calls `logged`."""
        return AuditEvent(
            at=self._clock(),
            request_id=ctx.request_id,
            actor=ctx.actor,
            action=action,
            resource_type=resource.resource_type,
            scim_id=resource.scim_id,
            sonar_key=resource.sonar_key,
            outcome=outcome,
            detail=detail,
        )

    @staticmethod
    def logged(event: AuditEvent) -> None:
        """The log line of an event the store has written."""
        log.info(
            "provisioning.audit",
            action=event.action,
            scim_id=event.scim_id,
            sonar_key=event.sonar_key,
            outcome=event.outcome,
        )
