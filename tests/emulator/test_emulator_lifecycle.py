"""The emulator's lifecycle: starting (with a start delay), down, and restarts as another SonarQube version
(upgrades and downgrades that keep the data), driven by `/_emulator/lifecycle`."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from pydantic import SecretStr

from scim_bridge import cli
from scim_bridge.config import ConfigError, load_settings
from scim_bridge.emulator import PROFILES, EmulatorSettings, create_emulator_app
from scim_bridge.emulator.app import EMULATOR
from tests.support import ADMIN_TOKEN, ONE_PROFILE_PER_API, Sonar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aiohttp.test_utils import TestServer

    from tests.support import SonarFactory

STATUS = "api/system/status"
USERS = "api/v2/users-management/users"
GROUPS = "api/v2/authorizations/groups"
MEMBERSHIPS = "api/v2/authorizations/group-memberships"
LONG_DELAY = 3600.0  # never reached: tests end it with the control


async def lifecycle(sonar: Sonar, change: Any = None) -> tuple[int, Any]:
    """GET (no change) or PUT `change` to /_emulator/lifecycle: the status and the JSON answer."""
    url = sonar.server.make_url("/_emulator/lifecycle")
    method, options = ("GET", {}) if change is None else ("PUT", {"json": change})
    async with sonar.session.request(method, url, **options) as resp:
        return resp.status, await resp.json()


async def phase(sonar: Sonar) -> str:
    status, body = await lifecycle(sonar)
    assert status == 200
    found: str = body["phase"]
    return found


async def server_status(sonar: Sonar) -> str:
    reply = await sonar.get(STATUS, authorization=None)
    assert reply.status == 200, reply
    found: str = reply.body["status"]
    return found


def start_pending(sonar: Sonar) -> bool:
    return sonar.server.app[EMULATOR].start_pending


class Gate:
    """A `sleep` for the start delay that returns only once opened: time passes when the test says so."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.opened = asyncio.Event()

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)
        await self.opened.wait()


@pytest.fixture
def gated_sonar(
    aiohttp_server: Callable[..., Awaitable[TestServer]], http: aiohttp.ClientSession
) -> Callable[..., Awaitable[Sonar]]:
    """An emulator whose start delay is waited through `gate.sleep`."""

    async def start(gate: Gate, profile: str = "2025.6", **options: Any) -> Sonar:
        settings = EmulatorSettings(profile=profile, admin_token=SecretStr(ADMIN_TOKEN), **options)
        server = await aiohttp_server(create_emulator_app(settings, sleep=gate.sleep))
        return Sonar(server, http, profile, ADMIN_TOKEN)

    return start


# --- starting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", list(PROFILES))
async def test_start_delay_starts_in_starting_until_told(sonar_factory: SonarFactory, profile: str) -> None:
    """With a start delay the emulator is `starting` (status STARTING, unauthenticated) until phase `up`."""
    sonar = await sonar_factory(profile, start_delay=LONG_DELAY)
    version = PROFILES[profile].version
    assert await lifecycle(sonar) == (200, {"phase": "starting", "profile": profile, "version": version})
    reply = await sonar.get(STATUS, authorization=None)
    assert (reply.status, reply.body) == (
        200,
        {"id": "AAAAAAAA-EMULATOR", "version": version, "status": "STARTING"},
    )
    assert (await sonar.get("api/users/current")).status == 503
    assert start_pending(sonar)
    assert await lifecycle(sonar, {"phase": "up"}) == (
        200,
        {"phase": "up", "profile": profile, "version": version},
    )
    assert not start_pending(sonar)
    assert await server_status(sonar) == "UP"
    assert (await sonar.get("api/users/current")).status == 200


@pytest.mark.parametrize("profile", ONE_PROFILE_PER_API)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "api/server/version"),
        ("GET", "api/authentication/validate"),
        ("GET", "api/users/search"),
        ("POST", "api/users/create"),
        ("GET", USERS),
        ("GET", "api/nothing/here"),
    ],
)
async def test_starting_refuses_everything_but_the_status(
    sonar_factory: SonarFactory, profile: str, method: str, path: str
) -> None:
    """While starting, every /api request but api/system/status is a plain-text 503 without Retry-After."""
    sonar = await sonar_factory(profile, start_delay=LONG_DELAY)
    reply = await sonar.request(method, path, data={"login": "anna", "name": "Anna", "local": "false"})
    assert (reply.status, reply.body, reply.headers["Content-Type"]) == (
        503,
        "503 Service Unavailable",
        "text/plain; charset=utf-8",
    )
    assert "Retry-After" not in reply.headers
    assert [user["login"] for user in (await sonar.control.state())["users"]] == ["admin"]


async def test_starting_status_goes_through_the_v1_framework(sonar_factory: SonarFactory) -> None:
    """While starting, api/system/status.json answers too, and a POST to it is refused as when up."""
    sonar = await sonar_factory("9.9", start_delay=LONG_DELAY)
    assert (await sonar.get(f"{STATUS}.json")).body["status"] == "STARTING"
    posted = await sonar.post(STATUS)
    assert (posted.status, posted.errors) == (405, ["HTTP method GET is required"])


async def test_starting_draws_no_faults_and_is_journaled(sonar_factory: SonarFactory) -> None:
    """Starting answers are journaled with phase and outcome; faults are drawn only once up."""
    sonar = await sonar_factory(start_delay=LONG_DELAY, fault_rate=1.0, fault_kinds=("500",))
    await sonar.get(STATUS, authorization=None)
    await sonar.get("api/users/search", {"q": "adm"})
    await lifecycle(sonar, {"phase": "up"})
    await sonar.get(STATUS, authorization=None)
    assert [
        (entry["path"], entry["query"], entry["phase"], entry["status"], entry["fault"], entry["applied"])
        for entry in await sonar.control.journal()
    ] == [
        ("/api/system/status", "", "starting", 200, None, True),
        ("/api/users/search", "q=adm", "starting", 503, None, False),
        ("/api/system/status", "", "up", 500, "500", False),
    ]


async def test_start_delay_ends_by_itself(gated_sonar: Callable[..., Awaitable[Sonar]]) -> None:
    """The emulator waits the start delay from its start, then is up without being told."""
    gate = Gate()
    sonar = await gated_sonar(gate, "9.9", start_delay=30)
    assert await phase(sonar) == "starting"
    assert gate.delays == [30.0]
    gate.opened.set()
    assert await phase(sonar) == "up"
    assert await server_status(sonar) == "UP"
    assert not start_pending(sonar)


async def test_tiny_start_delay_ends_in_real_time(sonar_factory: SonarFactory) -> None:
    """A start delay of 0.05 s ends with asyncio's own clock."""
    sonar = await sonar_factory(start_delay=0.05)
    deadline = time.monotonic() + 5
    while await phase(sonar) != "up":
        assert time.monotonic() < deadline, "the start delay never ended"
    assert await server_status(sonar) == "UP"


@pytest.mark.parametrize("new_phase", ["up", "starting", "down"])
async def test_changing_the_phase_cancels_the_start_delay(
    gated_sonar: Callable[..., Awaitable[Sonar]], new_phase: str
) -> None:
    """Any phase set through the control wins over a pending end of the start delay."""
    gate = Gate()
    sonar = await gated_sonar(gate, start_delay=30)
    assert (await lifecycle(sonar, {"phase": new_phase}))[1]["phase"] == new_phase
    assert not start_pending(sonar)
    gate.opened.set()
    assert await phase(sonar) == new_phase


async def test_without_start_delay_the_emulator_is_up(sonar_factory: SonarFactory) -> None:
    """The default start delay is 0: the emulator is up at once and nothing is pending."""
    sonar = await sonar_factory("26.7")
    assert await lifecycle(sonar) == (200, {"phase": "up", "profile": "26.7", "version": "26.7.0.124771"})
    assert not start_pending(sonar)


# --- down ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ONE_PROFILE_PER_API)
async def test_down_drops_every_api_connection(sonar_factory: SonarFactory, profile: str) -> None:
    """Down, /api requests get no answer at all and change nothing; the controls still answer."""
    sonar = await sonar_factory(profile)
    assert await lifecycle(sonar, {"phase": "down"}) == (
        200,
        {"phase": "down", "profile": profile, "version": PROFILES[profile].version},
    )
    for path in (STATUS, "api/server/version", "api/users/create"):
        with pytest.raises(aiohttp.ClientConnectionError):
            await sonar.post(path, {"login": "anna", "name": "Anna", "local": "false"})
    assert [user["login"] for user in (await sonar.control.state())["users"]] == ["admin"]
    assert [(e["phase"], e["status"], e["applied"]) for e in await sonar.control.journal()] == [
        ("down", None, False)
    ] * 3
    await lifecycle(sonar, {"phase": "up"})
    assert await server_status(sonar) == "UP"


# --- restarts as another version ----------------------------------------------------------------


async def write_data(sonar: Sonar, *, v2: bool) -> str:
    """User anna (member of devs, `scan` permission, a token) and a setting, written through v2 or v1;
    answers anna's token."""
    if v2:
        anna = await sonar.request(
            "POST", USERS, json={"login": "anna", "name": "Anna", "email": "anna@example.org", "local": False}
        )
        devs = await sonar.request("POST", GROUPS, json={"name": "devs", "description": "Developers"})
        member = {"userId": anna.body["id"], "groupId": devs.body["id"]}
        assert (await sonar.request("POST", MEMBERSHIPS, json=member)).status == 201
    else:
        assert (await sonar.create_user("anna", email="anna@example.org")).status == 200
        await sonar.post("api/user_groups/create", {"name": "devs", "description": "Developers"})
        assert (await sonar.post("api/user_groups/add_user", {"name": "devs", "login": "anna"})).status == 204
    assert (
        await sonar.post("api/permissions/add_user", {"login": "anna", "permission": "scan"})
    ).status == 204
    assert (
        await sonar.post("api/settings/set", {"key": "sonar.auth.saml.enabled", "value": "true"})
    ).status == 204
    return await sonar.user_token("anna")


async def found_ids(sonar: Sonar, *, v2: bool) -> tuple[str | None, str | None, list[str]]:
    """anna's uuid (None where the API shows none), devs' uuid (v1 shows it on 9.9 only) and anna's groups,
    looked up by login and name through v2 or v1."""
    if v2:
        (anna,) = (await sonar.get(USERS, {"q": "anna"})).body["users"]
        (devs,) = (await sonar.get(GROUPS, {"q": "devs"})).body["groups"]
        memberships = (await sonar.get(MEMBERSHIPS, {"userId": anna["id"]})).body["groupMemberships"]
        groups = (await sonar.get(GROUPS)).body["groups"]
        names = {group["id"]: group["name"] for group in groups}
        return anna["id"], devs["id"], sorted(names[m["groupId"]] for m in memberships)
    (anna,) = (await sonar.get("api/users/search", {"q": "anna"})).body["users"]
    assert anna["login"] == "anna"
    (devs,) = (await sonar.get("api/user_groups/search", {"q": "devs"})).body["groups"]
    groups = (await sonar.get("api/users/groups", {"login": "anna"})).body["groups"]
    return None, devs.get("id"), sorted(group["name"] for group in groups)


SWITCHES = [("9.9", "2025.6"), ("2025.6", "9.9"), ("9.9", "10.8"), ("26.7", "9.9"), ("10.8", "26.7")]


@pytest.mark.parametrize(("before", "after"), SWITCHES)
async def test_a_restart_as_another_version_keeps_the_data(
    sonar_factory: SonarFactory, before: str, after: str
) -> None:
    """Users, groups, memberships, tokens, permissions and settings, uuids included, survive an upgrade or
    a downgrade, and are found by login and name through the new version's API."""
    sonar = await sonar_factory(before)
    before_v2, after_v2 = PROFILES[before].v2_api, PROFILES[after].v2_api
    token = await write_data(sonar, v2=before_v2)
    state = await sonar.control.state()
    uuid = {"anna": next(u["id"] for u in state["users"] if u["login"] == "anna")}
    uuid["devs"] = next(g["id"] for g in state["groups"] if g["name"] == "devs")
    version = PROFILES[after].version
    assert await lifecycle(sonar, {"profile": after}) == (
        200,
        {"phase": "up", "profile": after, "version": version},
    )
    assert await sonar.control.state() == state | {"profile": after, "version": version}
    anna, devs, groups = await found_ids(sonar, v2=after_v2)
    assert anna == (uuid["anna"] if after_v2 else None)
    assert devs == (uuid["devs"] if after_v2 or PROFILES[after].group_ids_in_v1 else None)
    assert groups == ["devs", "sonar-users"]
    assert (await sonar.get("api/authentication/validate", authorization=None)).body == {"valid": False}
    assert (await sonar.as_user(token).get("api/authentication/validate")).body == {"valid": True}


@pytest.mark.parametrize(("before", "after"), SWITCHES)
async def test_after_a_restart_every_behaviour_follows_the_new_version(
    sonar_factory: SonarFactory, before: str, after: str
) -> None:
    """The version string, the v2 routes, Bearer tokens and per-version rules are the new version's."""
    sonar = await sonar_factory(before)
    await sonar.create_user("anna")
    await sonar.post("api/user_groups/create", {"name": "devs"})
    await sonar.post("api/user_groups/add_user", {"name": "devs", "login": "anna"})
    await lifecycle(sonar, {"profile": after})
    profile = PROFILES[after]
    assert (await sonar.get("api/server/version")).body == profile.version
    assert (await server_status(sonar), (await sonar.get(STATUS)).body["version"]) == ("UP", profile.version)
    v2 = await sonar.get(USERS)
    assert (v2.status, v2.body if not profile.v2_api else "served") == (
        (200, "served") if profile.v2_api else (404, {"errors": [{"msg": f"Unknown url : {USERS}"}]})
    )
    bearer = await sonar.get("api/users/current", authorization=f"Bearer {sonar.token}")
    assert bearer.status == (200 if profile.bearer_tokens else 401)
    again = await sonar.post("api/user_groups/add_user", {"name": "devs", "login": "anna"})
    assert again.status == (204 if profile.idempotent_add_user else 400)
    legacy = await sonar.create_user("_bob")
    assert legacy.status == (400 if profile.legacy_login_first_character else 200)


async def test_phase_and_profile_change_together_or_apart(sonar_factory: SonarFactory) -> None:
    """A profile alone keeps the phase; phase and profile in one PUT change both."""
    sonar = await sonar_factory("9.9")
    await lifecycle(sonar, {"phase": "down"})
    assert (await lifecycle(sonar, {"profile": "2025.6"}))[1] == {
        "phase": "down",
        "profile": "2025.6",
        "version": "2025.6.0.115417",
    }
    assert (await lifecycle(sonar, {"phase": "starting", "profile": "26.7"}))[1] == {
        "phase": "starting",
        "profile": "26.7",
        "version": "26.7.0.124771",
    }
    assert await server_status(sonar) == "STARTING"
    assert (await sonar.control.state())["profile"] == "26.7"


async def test_a_profile_change_leaves_the_start_delay_running(
    gated_sonar: Callable[..., Awaitable[Sonar]],
) -> None:
    """Restarting as another version while starting keeps the pending end of the start delay."""
    gate = Gate()
    sonar = await gated_sonar(gate, "9.9", start_delay=30)
    await lifecycle(sonar, {"profile": "2025.6"})
    assert start_pending(sonar)
    gate.opened.set()
    assert await lifecycle(sonar) == (200, {"phase": "up", "profile": "2025.6", "version": "2025.6.0.115417"})


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"profile": "8.9"}, "unknown emulator profile '8.9'; known: 9.9, 10.8, 2025.6, 26.7"),
        ({"phase": "sleeping"}, "unknown phase 'sleeping'; known: up, starting, down"),
        ({"phase": None}, "unknown phase None; known: up, starting, down"),
        ({"profile": 9.9}, "profile must be a string, not 9.9"),
        ({"phase": "down", "profile": "8.9"}, "unknown emulator profile '8.9'"),
        ({}, "give a 'phase', a 'profile' or both"),
        ({"version": "9.9"}, "unknown lifecycle settings ['version']; known: ['phase', 'profile']"),
        (["up"], "the body must be a JSON object"),
    ],
)
async def test_bad_lifecycle_changes_are_refused(sonar_factory: SonarFactory, body: Any, error: str) -> None:
    """An unknown phase or profile, or a body that is no change, is a 400 that changes nothing."""
    sonar = await sonar_factory("10.8", start_delay=LONG_DELAY)
    status, answer = await lifecycle(sonar, body)
    assert status == 400
    assert answer["error"].startswith(error)
    assert await lifecycle(sonar) == (
        200,
        {"phase": "starting", "profile": "10.8", "version": "10.8.1.101195"},
    )
    assert start_pending(sonar)


async def test_unreadable_lifecycle_body_is_refused(sonar_factory: SonarFactory) -> None:
    """A PUT body that is not JSON is a 400 with an error."""
    sonar = await sonar_factory()
    async with sonar.session.put(sonar.server.make_url("/_emulator/lifecycle"), data=b"up") as resp:
        assert resp.status == 400
        assert "error" in await resp.json()


async def test_reset_is_up_with_the_seed_of_the_current_profile(sonar_factory: SonarFactory) -> None:
    """reset after a restart as another version seeds that version, phase up, no pending start."""
    sonar = await sonar_factory("9.9", start_delay=LONG_DELAY, seed=3)
    await lifecycle(sonar, {"profile": "2025.6"})
    await sonar.create_user("anna")
    await sonar.control.reset()
    assert await lifecycle(sonar) == (200, {"phase": "up", "profile": "2025.6", "version": "2025.6.0.115417"})
    assert not start_pending(sonar)
    state = await sonar.control.state()
    assert ([user["login"] for user in state["users"]], state["version"]) == (["admin"], "2025.6.0.115417")


# --- configuration and command line ---------------------------------------------------------------


def test_start_delay_reads_flag_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """start_delay defaults to 0, reads SCIM_BRIDGE_EMULATOR_START_DELAY, and a flag beats the environment."""
    assert load_settings(EmulatorSettings).start_delay == 0
    monkeypatch.setenv("SCIM_BRIDGE_EMULATOR_START_DELAY", "2.5")
    assert load_settings(EmulatorSettings).start_delay == 2.5
    assert load_settings(EmulatorSettings, start_delay=4.0).start_delay == 4.0


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_bad_start_delay_names_its_variable(value: float) -> None:
    """A negative or non-finite start delay is refused, naming SCIM_BRIDGE_EMULATOR_START_DELAY."""
    with pytest.raises(ConfigError, match=r"SCIM_BRIDGE_EMULATOR_START_DELAY"):
        load_settings(EmulatorSettings, start_delay=value)


def test_start_delay_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """`scim-bridge emulator --start-delay 1.5` starts the emulator with that start delay."""
    started: list[EmulatorSettings] = []
    monkeypatch.setattr("scim_bridge.emulator.run_emulator", started.append)
    assert cli.main(["emulator", "--start-delay", "1.5", "--profile", "9.9"]) == 0
    assert [(settings.start_delay, settings.profile) for settings in started] == [(1.5, "9.9")]
