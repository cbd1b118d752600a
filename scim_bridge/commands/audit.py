"""`scim-bridge audit`: the audit trail from the state store, for an administrator asking "who changed this
account, when, and why". Each line: when, what (`user_created`, `user_deactivated`, …), the outcome, the
SonarQube login or group, the SCIM id, the token's owner that asked, and the request id to find the
request's log lines by."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from scim_bridge.config import ConfigError
from scim_bridge.store import open_store

if TYPE_CHECKING:
    from scim_bridge.store import AuditEvent

MOST_EVENTS: Final = 10_000  # newest first; narrow with --since or --user beyond that
_DURATION: Final = re.compile(r"(\d+)([smhdw])")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def since_from(duration: str | None, now: datetime) -> datetime | None:
    """The point in time `duration` (`90s`, `30m`, `24h`, `7d`, `2w`) before `now`; None for none."""
    if duration is None:
        return None
    match = _DURATION.fullmatch(duration.strip())
    if match is None:
        raise ConfigError(f"--since {duration!r}: give a number and a unit, e.g. 30m, 24h or 7d")
    return now - timedelta(**{_UNITS[match[2]]: int(match[1])})


async def audit_events(store_url: str, *, since: datetime | None, login: str | None) -> list[AuditEvent]:
    """The events in the store at `store_url`, newest first."""
    store = await open_store(store_url, create=False, exclusive=False)
    try:
        return await store.audit_trail(since=since, sonar_key=login, limit=MOST_EVENTS)
    finally:
        await store.close()


def as_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": event.at.astimezone(UTC).isoformat(),
        "action": event.action,
        "outcome": event.outcome,
        "resource_type": event.resource_type,
        "scim_id": event.scim_id,
        "sonar_key": event.sonar_key,
        "actor": event.actor,
        "request_id": event.request_id,
        "detail": event.detail,
    }


def render(events: list[AuditEvent]) -> str:
    """A table, newest first."""
    if not events:
        return "no audit events"
    rows = [("when (UTC)", "action", "outcome", "sonarqube", "scim id", "by", "request id", "detail")]
    rows += [
        (
            event.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            event.action,
            event.outcome,
            event.sonar_key or "",
            event.scim_id,
            event.actor or "",
            event.request_id or "",
            event.detail or "",
        )
        for event in events
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )
