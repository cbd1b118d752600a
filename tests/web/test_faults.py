"""A provisioning cycle while SonarQube fails: nothing is lost, nothing is duplicated."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import pytest

from tests.support import GROUP_SCHEMA, ONE_PROFILE_PER_API, PATCH_OP_SCHEMA
from tests.web.entra import user_body

if TYPE_CHECKING:
    from tests.support import Reply
    from tests.web.conftest import Bridge, BridgeFactory

USERS: Final = 8
MAX_TRIES: Final = 25


class RetryingEntra:
    """Entra's behaviour on failures: a 503 is retried later; a POST that meets 409 is matched by filter."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.retries = 0

    async def send(self, method: str, path: str, body: Any = None) -> Reply:
        for _ in range(MAX_TRIES):
            reply = await self.bridge.request(method, path, json=body)
            if reply.status < 400:
                return reply
            assert reply.status == 503, reply  # "try again later" is the only failure SonarQube may cause
            assert "Retry-After" in reply.headers
            self.retries += 1
        raise AssertionError(f"{method} {path} still failing after {MAX_TRIES} tries")

    async def create_user(self, body: dict[str, Any]) -> str:
        for _ in range(MAX_TRIES):
            reply = await self.bridge.request("POST", "/Users", json=body)
            if reply.status == 201:
                return str(reply.body["id"])
            if reply.status == 409:  # created, answer lost: the next cycle's matching query finds it
                found = await self.send("GET", f'/Users?filter=userName eq "{body["userName"]}"')
                return str(found.body["Resources"][0]["id"])
            assert reply.status == 503, reply
            self.retries += 1
        raise AssertionError(f"POST /Users {body['userName']} still failing after {MAX_TRIES} tries")


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


@pytest.mark.slow
@pytest.mark.parametrize("profile", ONE_PROFILE_PER_API)
async def test_a_cycle_through_sonarqube_faults_ends_in_the_intended_state(
    bridge_factory: BridgeFactory, profile: str
) -> None:
    """With 30 % of SonarQube calls failing (500, 503, 429, connections reset before or after SonarQube
    applied them), an Entra that retries what failed ends with every user, link, group and membership once."""
    bridge = await bridge_factory(profile, emulator={"seed": 11})
    await bridge.sonar.control.set_faults(rate=0.3, kinds=["500", "503", "429", "reset"])
    entra = RetryingEntra(bridge)

    names = [f"user{i}@contoso.example" for i in range(USERS)]
    ids = [await entra.create_user(user_body(name, displayName=f"User {i}")) for i, name in enumerate(names)]
    group = await entra.send("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Developers"})
    group_path = f"/Groups/{group.body['id']}"
    for scim_id in ids:
        member = {"op": "Add", "path": "members", "value": [{"$ref": None, "value": scim_id}]}
        await entra.send("PATCH", group_path, _patch(member))
    await entra.send("PATCH", group_path, _patch({"op": "Replace", "path": "displayName", "value": "Devs"}))
    for scim_id in ids[:3]:  # disabled, then enabled again: memberships must come back
        await entra.send(
            "PATCH", f"/Users/{scim_id}", _patch({"op": "Replace", "path": "active", "value": "False"})
        )
    for scim_id in ids[:2]:
        await entra.send(
            "PATCH", f"/Users/{scim_id}", _patch({"op": "Replace", "path": "active", "value": "True"})
        )
    removal = {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": ids[-1]}]}
    await entra.send("PATCH", group_path, _patch(removal))

    await bridge.sonar.control.set_faults(rate=0.0)
    state = await bridge.sonar.control.state()
    users = {user["login"]: user for user in state["users"]}
    assert sorted(users) == sorted([*names, "admin"])
    assert {name for name in names if users[name]["active"]} == set(names) - {names[2]}
    assert all(users[name]["externalLogin"] == name for name in names)
    memberships = sorted((m["group"], m["login"]) for m in state["memberships"] if m["group"] == "Devs")
    assert memberships == sorted(("Devs", name) for name in names if name not in {names[2], names[-1]})
    assert [group["name"] for group in state["groups"]].count("Devs") == 1
    assert entra.retries > 0  # the faults did happen
