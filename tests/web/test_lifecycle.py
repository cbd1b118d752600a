"""The bridge starts before SonarQube and follows it through start-up, outages and upgrades, without a
restart: SCIM answers 503 with Retry-After and /readyz says why until SonarQube is UP (docs/sonarqube.md
SQ3); an upgrade from 9.9 to 2025.6 moves the bridge from the v1 to the v2 API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scim_bridge.app import create_app
from scim_bridge.web.admin import READYZ, create_admin_app
from scim_bridge.web.keys import SONAR
from tests.support import ADMIN_TOKEN, PATCH_OP_SCHEMA
from tests.web.conftest import Bridge
from tests.web.entra import ADELE, create_group, create_user, expect, find, patch_user, user_body

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from aiohttp.test_utils import TestServer

    from tests.web.conftest import BridgeFactory


async def admin_of(bridge: Bridge, aiohttp_server: Callable[..., Awaitable[TestServer]]) -> TestServer:
    return await aiohttp_server(create_admin_app(bridge.server.app))


async def readiness(bridge: Bridge, admin: TestServer) -> tuple[int, dict[str, Any]]:
    async with bridge.http.get(admin.make_url(READYZ)) as resp:
        return resp.status, await resp.json()


async def look_again(bridge: Bridge) -> None:
    """What the bridge's watcher does every few seconds, done now: no test waits for real."""
    await bridge.server.app[SONAR].refresh()


async def test_absent_then_starting_then_up(
    bridge_factory: BridgeFactory, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    """Down: 503 + Retry-After and not ready; starting: the same, saying so; up: SCIM works, ready."""
    bridge = await bridge_factory(emulator={"start_delay": 3600})
    admin = await admin_of(bridge, aiohttp_server)

    for phase, said in (("down", "cannot be reached"), ("starting", "starting")):
        await bridge.sonar.control.lifecycle(phase=phase)
        await look_again(bridge)
        reply = await bridge.post("/Users", user_body(ADELE))
        assert reply.status == 503, reply
        assert int(reply.headers["Retry-After"]) > 0
        assert said in reply.body["detail"]
        status, report = await readiness(bridge, admin)
        assert (status, report["ready"]) == (503, False)
        assert any(said in reason for reason in report["reasons"]), report

    await bridge.sonar.control.lifecycle(phase="up")
    await look_again(bridge)
    assert (await create_user(bridge))["userName"] == ADELE
    status, report = await readiness(bridge, admin)
    assert (status, report["ready"], report["sonarqube"]["status"]) == (200, True, "UP"), report


async def test_a_call_that_finds_sonarqube_gone_makes_the_bridge_unready_at_once(
    bridge_factory: BridgeFactory, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    """SonarQube stopped between two looks: the first request that finds it gone turns readiness off."""
    bridge = await bridge_factory()
    admin = await admin_of(bridge, aiohttp_server)
    assert (await readiness(bridge, admin))[0] == 200
    await bridge.sonar.server.close()  # SonarQube's port refuses connections from now on

    reply = await bridge.get("/Users", params={"filter": f'userName eq "{ADELE}"'})

    assert reply.status == 503
    assert (await readiness(bridge, admin))[0] == 503


async def test_an_upgrade_moves_the_bridge_to_the_v2_api(bridge_factory: BridgeFactory) -> None:
    """SonarQube upgraded from 9.9 to 2025.6 under a running bridge: v1 calls before, v2 calls after, and
    the users and groups provisioned before are still found and changed."""
    bridge = await bridge_factory("9.9")
    user = await create_user(bridge)
    group = await create_group(bridge)
    await bridge.sonar.control.lifecycle(phase="down")
    await look_again(bridge)
    await bridge.sonar.control.lifecycle(profile="2025.6", phase="up")
    await look_again(bridge)
    await bridge.sonar.control.clear_journal()

    assert (await find(bridge, "Users", f'userName eq "{ADELE}"'))[0]["id"] == user["id"]
    add = {"op": "add", "path": "members", "value": [{"value": user["id"]}]}
    expect(
        await bridge.patch(f"/Groups/{group['id']}", {"schemas": [PATCH_OP_SCHEMA], "Operations": [add]}), 204
    )
    disable = {"op": "replace", "path": "active", "value": False}
    patched = await patch_user(bridge, user["id"], {"schemas": [PATCH_OP_SCHEMA], "Operations": [disable]})
    assert patched["active"] is False

    paths = [entry["path"] for entry in await bridge.sonar.control.journal()]
    assert any(path.startswith("/api/v2/") for path in paths), paths
    assert not any(path.startswith(("/api/users/", "/api/user_groups/")) for path in paths), paths
    assert (await bridge.sonar.user_state(user["userName"]))["active"] is False


async def test_a_cached_token_meets_a_sonarqube_that_is_not_up(bridge_factory: BridgeFactory) -> None:
    """A token already checked, then SonarQube starting again: 503 with Retry-After, never a 500."""
    bridge = await bridge_factory()
    assert (await bridge.get("/Users")).status == 200
    await bridge.sonar.control.lifecycle(phase="starting")
    await look_again(bridge)
    reply = await bridge.get("/Users")
    assert reply.status == 503, reply
    assert "starting" in reply.body["detail"]
    assert int(reply.headers["Retry-After"]) > 0


async def test_a_service_token_revoked_later_is_a_503(
    bridge_factory: BridgeFactory, aiohttp_server: Callable[..., Awaitable[TestServer]], tmp_path: Path
) -> None:
    """Static auth: the bridge's own token loses its rights after it was checked. SCIM clients get 503 (their
    token is fine: Entra retries instead of quarantining), and /readyz names the problem."""
    token_file = tmp_path / "sonar-token"
    token_file.write_text(ADMIN_TOKEN)
    bridge = await bridge_factory(auth="static", scim_tokens=["scim-token"], sonar_token_file=token_file)
    await bridge.sonar.create_user("robot")
    grant = {"login": "robot", "permission": "admin"}
    assert (await bridge.sonar.post("api/permissions/add_user", grant)).status == 204
    token_file.write_text(await bridge.sonar.user_token("robot"))  # rotated to the robot's token
    assert (await bridge.get("/Users", token="scim-token")).status == 200

    assert (await bridge.sonar.post("api/permissions/remove_user", grant)).status == 204
    reply = await bridge.get("/Users", params={"filter": f'userName eq "{ADELE}"'}, token="scim-token")

    assert reply.status == 503, reply
    assert "bridge's own SonarQube token" in reply.body["detail"]
    admin = await admin_of(bridge, aiohttp_server)
    status, report = await readiness(bridge, admin)
    assert status == 200
    assert "may not administer" in report["service_token"]


async def test_a_store_that_cannot_be_opened_yet_is_waited_for(
    bridge_factory: BridgeFactory, aiohttp_server: Callable[..., Awaitable[TestServer]], tmp_path: Path
) -> None:
    """Finding 3: a store that cannot be opened at start (its volume not mounted yet) does not stop the
    bridge: SCIM answers 503 with Retry-After without naming files, and /readyz says it is not open yet."""
    blocker = tmp_path / "volume"
    blocker.write_text("not mounted yet")
    running = await bridge_factory()
    settings = running.settings.model_copy(update={"store": f"sqlite:///{blocker / 'state.db'}"})
    connection = running.server.app[SONAR]
    bridge = Bridge(
        await aiohttp_server(create_app(settings, sonar=connection)),
        running.sonar,
        running.http,
        settings,
        running.store,
    )

    reply = await bridge.get("/Users")
    assert reply.status == 503, reply
    assert int(reply.headers["Retry-After"]) > 0
    assert str(tmp_path) not in reply.body["detail"]
    status, report = await readiness(bridge, await admin_of(bridge, aiohttp_server))
    assert status == 503
    assert any("state store" in reason and "not open yet" in reason for reason in report["reasons"]), report
