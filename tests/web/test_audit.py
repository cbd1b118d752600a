"""Logs and the audit trail over an Entra cycle: no token in any log line, exactly one audit event per change
(SCIM id, SonarQube login or group, operation, outcome, request id), and `scim-bridge audit` lists them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from structlog.testing import capture_logs

from scim_bridge.cli import _audit, main
from scim_bridge.commands.audit import since_from
from scim_bridge.config import ConfigError
from tests.support import PATCH_OP_SCHEMA
from tests.web.entra import ADELE, MEGAN, expect, user_body

if TYPE_CHECKING:
    from pathlib import Path

    from tests.web.conftest import Bridge, BridgeFactory


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


async def entra_cycle(bridge: Bridge) -> list[tuple[str, str]]:
    """Entra's requests for two users and a group, each with its request id; the changes it makes, as
    (request id, audit action)."""
    changes: list[tuple[str, str]] = []

    async def send(method: str, path: str, body: Any, status: int, action: str | None) -> Any:
        request_id = f"req-{len(changes)}-{action}"
        reply = await bridge.request(method, path, json=body, headers={"X-Request-Id": request_id})
        answer = expect(reply, status)
        if action is not None:
            changes.append((request_id, action))
        return answer

    await send("GET", f'/Users?filter=userName+eq+"{ADELE}"', None, 200, None)
    adele = await send("POST", "/Users", user_body(ADELE), 201, "user_created")
    megan = await send("POST", "/Users", user_body(MEGAN), 201, "user_created")
    await send(
        "PATCH",
        f"/Users/{adele['id']}",
        patch({"op": "Replace", "path": "displayName", "value": "A"}),
        200,
        "user_updated",
    )
    group = await send("POST", "/Groups", {"displayName": "Developers"}, 201, "group_created")
    add = {"op": "Add", "path": "members", "value": [{"value": adele["id"]}, {"value": megan["id"]}]}
    await send("PATCH", f"/Groups/{group['id']}", patch(add), 204, "group_members_changed")
    renamed = {"op": "Replace", "path": "displayName", "value": "Developers EU"}
    await send("PATCH", f"/Groups/{group['id']}", patch(renamed), 204, "group_updated")
    disable = {"op": "Replace", "path": "active", "value": "False"}
    await send("PATCH", f"/Users/{megan['id']}", patch(disable), 200, "user_deactivated")
    enable = {"op": "Replace", "path": "active", "value": "True"}
    await send("PATCH", f"/Users/{megan['id']}", patch(enable), 200, "user_reactivated")
    await send("DELETE", f"/Groups/{group['id']}", None, 204, "group_deleted")
    await send("DELETE", f"/Users/{adele['id']}", None, 204, "user_deleted")
    return changes


async def test_no_token_in_any_log_line_and_one_audit_event_per_change(
    bridge_factory: BridgeFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every log event of a cycle is free of the token (plain, Basic or Bearer); each change has exactly one
    audit event with its request id; `scim-bridge audit` lists them, and `--user` narrows to one login."""
    bridge = await bridge_factory(store=f"sqlite:///{tmp_path / 'state.db'}")
    secrets = {bridge.token, base64.b64encode(f"{bridge.token}:".encode()).decode()}
    with capture_logs() as events:
        changes = await entra_cycle(bridge)
    logged = repr(events)
    assert not any(secret in logged for secret in secrets)
    assert any(event["event"] == "scim.request" for event in events)

    trail = await bridge.store.audit_trail(limit=1000)
    assert sorted((event.request_id, event.action) for event in trail) == sorted(changes)
    assert all(event.outcome == "ok" and event.actor == "admin" and event.sonar_key for event in trail)

    capsys.readouterr()  # what the bridge logged outside the capture
    with capture_logs():
        await _audit(bridge.settings, None, None, as_json=True)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["request_id"], line["action"]) for line in reversed(lines)] == changes
    with capture_logs():
        await _audit(bridge.settings, "1h", ADELE, as_json=False)
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("when (UTC)")
    assert len(table) == 1 + sum(1 for line in lines if line["sonar_key"] == ADELE)
    assert all(ADELE in row for row in table[1:])


@pytest.mark.parametrize(
    ("duration", "ago"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_since_durations(duration: str, ago: timedelta) -> None:
    """`--since` takes a number and a unit: s, m, h, d or w."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert since_from(duration, now) == now - ago


@pytest.mark.parametrize("duration", ["", "1", "1y", "h", "-1h", "1.5h"])
def test_a_wrong_duration_is_a_setting_error(duration: str) -> None:
    """A duration that is not a number and a unit is refused, saying how to write one."""
    with pytest.raises(ConfigError, match="24h"):
        since_from(duration, datetime.now(UTC))


def test_audit_of_a_missing_store_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`audit` on a store path where there is none: exit 2, naming the path; nothing is created."""
    missing = tmp_path / "nowhere" / "state.db"
    assert main(["audit", "--store", f"sqlite:///{missing}"]) == 2
    assert f"there is no state store at {missing}" in capsys.readouterr().err
    assert not missing.parent.exists()
