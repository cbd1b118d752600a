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
        await self._store.append_audit(
            AuditEvent(
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
        )
        log.info(
            "provisioning.audit",
            action=action,
            scim_id=resource.scim_id,
            sonar_key=resource.sonar_key,
            outcome=outcome,
        )
