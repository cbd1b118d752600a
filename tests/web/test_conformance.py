"""RFC 7643/7644 conformance: scim2-tester's whole check suite against a live bridge in front of an emulator.

Human equivalent, against `scim-bridge demo` (scim2-cli installed):
`scim2 --url http://127.0.0.1:9080/api/scim/v2 --header "Authorization: Bearer demo-admin-token" test`
(its two SKIPPED results are `POST /.search`, which the bridge does not support and says so).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import CheckResult, Status, check_server

from tests.support import ONE_PROFILE_PER_API, PATCH_OP_SCHEMA, PROFILES, USER_SCHEMA

if TYPE_CHECKING:
    from tests.web.conftest import BridgeFactory

FAILING = (Status.ERROR, Status.CRITICAL)


def _run_checks(base_url: str, token: str) -> list[CheckResult]:
    """scim2-tester's whole suite with its synchronous client, as `scim2 … test` runs it."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx2.Client(base_url=base_url, headers=headers, timeout=30) as http:
        scim = SyncSCIMClient(http)
        scim.discover()
        return check_server(scim)


def _describe(result: CheckResult) -> str:
    where = f"[{result.resource_type}] " if result.resource_type else ""
    return f"{result.status.name} {where}{result.title}: {result.reason}\n    data: {result.data!r}"


@pytest.mark.parametrize("profile", PROFILES)
async def test_scim2_tester_finds_no_error(bridge_factory: BridgeFactory, profile: str) -> None:
    """scim2-tester reports no ERROR or CRITICAL result against the bridge, whatever the SonarQube version."""
    bridge = await bridge_factory(profile)
    results = await asyncio.to_thread(_run_checks, bridge.url(""), bridge.token)
    failures = [result for result in results if result.status in FAILING]
    summary = {status.name: sum(r.status is status for r in results) for status in Status}
    assert not failures, f"{len(failures)} failing checks of {summary}:\n" + "\n".join(
        map(_describe, failures)
    )


@pytest.mark.parametrize("profile", PROFILES)
async def test_a_deleted_user_is_gone_for_every_operation(
    bridge_factory: BridgeFactory, profile: str
) -> None:
    """RFC 7644 §3.6 and docs/provisioning.md: after DELETE, every operation on the user's id answers 404,
    though the SonarQube account is only deactivated (SonarQube cannot delete users)."""
    bridge = await bridge_factory(profile)
    created = await bridge.post("/Users", {"schemas": [USER_SCHEMA], "userName": "alice"})
    path = f"/Users/{created.body['id']}"
    assert (await bridge.delete(path)).status == 204

    replies = {
        "GET": await bridge.get(path),
        "PUT": await bridge.put(path, {"schemas": [USER_SCHEMA], "userName": "alice"}),
        "PATCH": await bridge.patch(
            path,
            {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "title", "value": "x"}]},
        ),
        "DELETE": await bridge.delete(path),
    }

    assert {method: reply.status for method, reply in replies.items()} == dict.fromkeys(replies, 404)
    assert (await bridge.sonar.user_state("alice"))["active"] is False


@pytest.mark.parametrize("profile", ONE_PROFILE_PER_API)
async def test_removing_active_leaves_it_unassigned(bridge_factory: BridgeFactory, profile: str) -> None:
    """RFC 7644 §3.5.2.2: `remove active` leaves the attribute unassigned; it must not reactivate a
    deactivated SonarQube account (scim2-tester's check_remove_attribute)."""
    bridge = await bridge_factory(profile)
    created = await bridge.post("/Users", {"schemas": [USER_SCHEMA], "userName": "alice", "active": False})
    path = f"/Users/{created.body['id']}"

    reply = await bridge.patch(
        path, {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "remove", "path": "active"}]}
    )

    assert reply.status == 200, reply
    assert reply.body.get("active") is None, reply.body
    assert (await bridge.get(path)).body.get("active") is None
    assert (await bridge.sonar.user_state("alice"))["active"] is False
