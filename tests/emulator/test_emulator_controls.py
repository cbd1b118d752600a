"""The emulator's test controls (`/_emulator/`), its injected faults and latency, and its command line."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from pydantic import SecretStr, ValidationError

from scim_bridge.emulator import EmulatorSettings

if TYPE_CHECKING:
    from tests.support import Sonar, SonarFactory

CREATE = "api/users/create"


async def create(sonar: Sonar, login: str) -> int | None:
    """Create a non-local user; None when the connection was dropped without an answer."""
    try:
        reply = await sonar.post(CREATE, {"login": login, "name": login, "local": "false"})
    except aiohttp.ClientError:
        return None
    return reply.status


async def user_logins(sonar: Sonar) -> list[str]:
    return [user["login"] for user in (await sonar.control.state())["users"]]


# --- state, journal, reset ------------------------------------------------------------------------


async def test_state_describes_the_seed(sonar_factory: SonarFactory) -> None:
    """A fresh emulator holds admin in sonar-users and sonar-administrators; token values are never shown."""
    sonar = await sonar_factory("2025.6", saml=True)
    state = await sonar.control.state()
    assert (state["profile"], state["version"], state["samlEnabled"]) == ("2025.6", "2025.6.0.115417", True)
    (admin,) = state["users"]
    assert {key: admin[key] for key in ("login", "name", "local", "active", "tokens", "hasPassword")} == {
        "login": "admin",
        "name": "Administrator",
        "local": True,
        "active": True,
        "tokens": 1,
        "hasPassword": True,
    }
    assert [(g["name"], g["default"], g["permissions"], g["description"]) for g in state["groups"]] == [
        ("sonar-administrators", False, ["admin"], "System administrators"),
        ("sonar-users", True, [], "Every authenticated user automatically belongs to this group"),
    ]
    assert [(m["group"], m["login"]) for m in state["memberships"]] == [
        ("sonar-administrators", "admin"),
        ("sonar-users", "admin"),
    ]
    assert state["settings"]["sonar.auth.saml.enabled"] == "true"
    assert sonar.token not in json.dumps(state)


async def test_seeded_identifiers_are_reproducible(sonar_factory: SonarFactory) -> None:
    """With a seed, uuids repeat across emulators and after a reset; without one they differ."""
    first, second = await sonar_factory(seed=7), await sonar_factory(seed=7)
    assert (await first.user_state("admin"))["id"] == (await second.user_state("admin"))["id"]
    await create(first, "anna")
    anna = (await first.user_state("anna"))["id"]
    await first.control.reset()
    await create(first, "anna")
    assert (await first.user_state("anna"))["id"] == anna
    unseeded = await sonar_factory()
    assert (await unseeded.user_state("admin"))["id"] != (await first.user_state("admin"))["id"]


async def test_journal_records_every_api_request(sonar_factory: SonarFactory) -> None:
    """The journal lists /api requests in order with their phase and status (not the controls); DELETE clears
    it."""
    sonar = await sonar_factory("9.9")
    await sonar.get("api/users/search", {"q": "adm"})
    await sonar.get("api/users/search", authorization=None)
    await create(sonar, "anna")
    await sonar.control.state()
    assert await sonar.control.journal() == [
        {
            "method": "GET",
            "path": "/api/users/search",
            "query": "q=adm",
            "phase": "up",
            "status": 200,
            "fault": None,
            "applied": True,
        },
        {
            "method": "GET",
            "path": "/api/users/search",
            "query": "",
            "phase": "up",
            "status": 401,
            "fault": None,
            "applied": True,
        },
        {
            "method": "POST",
            "path": "/api/users/create",
            "query": "",
            "phase": "up",
            "status": 200,
            "fault": None,
            "applied": True,
        },
    ]
    await sonar.control.clear_journal()
    assert await sonar.control.journal() == []


async def test_reset_goes_back_to_the_seed(sonar_factory: SonarFactory) -> None:
    """reset forgets users, groups and settings created since the start, and clears the journal."""
    sonar = await sonar_factory("26.7", seed=1)
    initial = await sonar.control.state()
    await create(sonar, "anna")
    await sonar.post("api/user_groups/create", {"name": "devs"})
    await sonar.post("api/settings/set", {"key": "sonar.auth.saml.enabled", "value": "true"})
    await sonar.control.reset()
    assert await sonar.control.state() == initial
    assert await sonar.control.journal() == []


# --- fault settings -------------------------------------------------------------------------------


async def test_fault_settings_round_trip(sonar_factory: SonarFactory, http: aiohttp.ClientSession) -> None:
    """GET shows the faults; PUT changes some and answers the result; bad values are 400."""
    sonar = await sonar_factory(fault_rate=0.25, seed=3, latency_ms=5)
    url = sonar.server.make_url("/_emulator/faults")
    async with http.get(url) as resp:
        assert await resp.json() == {
            "rate": 0.25,
            "kinds": ["500", "503", "429", "reset", "slow"],
            "latency_ms": 5,
            "slow_seconds": 30.0,
            "retry_after": 1,
            "seed": 3,
            "paths": [],
        }
    changed = await sonar.control.set_faults(rate=0, kinds=["503"], retry_after=9)
    assert (changed["rate"], changed["kinds"], changed["retry_after"], changed["latency_ms"]) == (
        0,
        ["503"],
        9,
        5,
    )
    for body in ({"bogus": 1}, {"rate": 2}, {"kinds": ["teapot"]}, {"latency_ms": -1}, {"seed": "x"}, [1]):
        async with http.put(url, json=body) as resp:
            assert resp.status == 400, body
            assert "error" in await resp.json()


# --- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "path", "body"),
    [
        ("9.9", CREATE, {"errors": [{"msg": "An error has occurred. Please contact your administrator"}]}),
        (
            "2025.6",
            "api/v2/users-management/users",
            {"message": "An unexpected error occurred. Please contact support if the problem persists."},
        ),
    ],
)
async def test_500_fault_answers_like_sonarqube(
    sonar_factory: SonarFactory, profile: str, path: str, body: dict[str, Any]
) -> None:
    """A "500" fault answers SonarQube's internal-error body for the API used, and applies nothing."""
    sonar = await sonar_factory(profile, fault_rate=1.0, fault_kinds=("500",))
    reply = await sonar.post(path, {"login": "anna", "name": "Anna", "local": "false"})
    assert (reply.status, reply.body) == (500, body)
    assert await user_logins(sonar) == ["admin"]
    (entry,) = await sonar.control.journal()
    assert (entry["status"], entry["fault"], entry["applied"]) == (500, "500", False)


@pytest.mark.parametrize("kind", ["503", "429"])
async def test_throttling_faults_carry_retry_after(sonar_factory: SonarFactory, kind: str) -> None:
    """ "503" and "429" faults say when to retry and apply nothing."""
    sonar = await sonar_factory(fault_rate=1.0, fault_kinds=(kind,), retry_after=7)
    assert await create(sonar, "anna") == int(kind)
    reply = await sonar.get("api/users/current")
    assert (reply.status, reply.headers["Retry-After"]) == (int(kind), "7")
    await sonar.control.set_faults(rate=0)
    assert await user_logins(sonar) == ["admin"]


async def test_reset_fault_drops_the_connection_before_or_after_applying(sonar_factory: SonarFactory) -> None:
    """A "reset" fault closes the connection without an answer, half the time after applying the request."""
    sonar = await sonar_factory(fault_rate=1.0, fault_kinds=("reset",), seed=11)
    logins = [f"user{i}" for i in range(8)]
    assert [await create(sonar, login) for login in logins] == [None] * len(logins)
    journal = await sonar.control.journal()
    applied = {login for login, entry in zip(logins, journal, strict=True) if entry["applied"]}
    assert 0 < len(applied) < len(logins)
    assert {entry["status"] for entry in journal} == {None}
    assert set(await user_logins(sonar)) == applied | {"admin"}


async def test_slow_fault_applies_then_answers_late(sonar_factory: SonarFactory) -> None:
    """A "slow" fault applies the request and answers after slow_seconds."""
    sonar = await sonar_factory(fault_rate=1.0, fault_kinds=("slow",), slow_seconds=0.2)
    started = time.monotonic()
    assert await create(sonar, "anna") == 200
    assert time.monotonic() - started >= 0.2
    assert "anna" in await user_logins(sonar)


async def test_latency_applies_to_api_requests_only(sonar_factory: SonarFactory) -> None:
    """latency_ms delays every /api answer; faults and latency never touch the controls."""
    sonar = await sonar_factory(latency_ms=150, fault_rate=1.0, fault_kinds=("500",))
    started = time.monotonic()
    assert (await sonar.get("api/server/version")).status == 500
    assert time.monotonic() - started >= 0.15
    assert (await sonar.control.state())["profile"] == "2025.6"


@pytest.mark.parametrize("target", ["/api/users/create", "POST /api/users/create"])
async def test_faults_can_be_narrowed_to_some_calls(sonar_factory: SonarFactory, target: str) -> None:
    """With `paths`, only calls whose path (or method and path) starts with one of them draw faults."""
    sonar = await sonar_factory("9.9", fault_rate=1.0, fault_kinds=("500",), fault_paths=(target,))
    assert await create(sonar, "anna") == 500
    assert (await sonar.get("api/users/search")).status == 200
    await sonar.control.set_faults(paths=["GET /api/users/search"])
    assert await create(sonar, "anna") == 200
    assert (await sonar.get("api/users/search")).status == 500


async def test_fault_choices_are_reproducible(sonar_factory: SonarFactory) -> None:
    """The same seed gives the same faults for the same requests; setting the seed again restarts them."""

    async def statuses(sonar: Sonar) -> list[int]:
        return [(await sonar.get("api/server/version")).status for _ in range(20)]

    options = {"fault_rate": 0.5, "fault_kinds": ("500", "503", "429"), "seed": 5}
    first = await statuses(await sonar_factory(**options))
    second_sonar = await sonar_factory(**options)
    assert await statuses(second_sonar) == first
    assert len(set(first)) > 1
    await second_sonar.control.set_faults(seed=5)
    assert await statuses(second_sonar) == first


# --- configuration and command line ---------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"profile": "8.9"},
        {"fault_rate": 1.5},
        {"fault_kinds": ("boom",)},
        {"latency_ms": -1},
        {"admin_token": ""},
    ],
)
def test_settings_refuse_bad_values(options: dict[str, Any]) -> None:
    """EmulatorSettings refuse an unknown profile and out-of-range fault settings at construction."""
    with pytest.raises(ValidationError):
        EmulatorSettings(**options)


def test_settings_give_the_starting_faults() -> None:
    """The fault flags become the fault configuration the emulator starts with."""
    settings = EmulatorSettings(
        profile="9.9", admin_token=SecretStr("tok"), saml=True, latency_ms=3, fault_rate=0.5, seed=4
    )
    faults = settings.fault_settings()
    assert (faults.rate, faults.latency_ms, faults.seed) == (0.5, 3, 4)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_command_line_serves_the_emulator(http: aiohttp.ClientSession) -> None:
    """`scim-bridge emulator` prints where it listens and answers the version to its admin token."""
    port = free_port()
    argv = ["-m", "scim_bridge", "emulator", "--port", str(port), "--admin-token", "T", "--profile", "2025.6"]
    process = await asyncio.create_subprocess_exec(sys.executable, *argv, stdout=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=10)).decode()
        where = f"at http://127.0.0.1:{port} — admin token: T"
        assert line.strip() == f"SonarQube emulator 2025.6.0.115417 (profile 2025.6, SAML off) {where}"
        version = await _first_answer(http, f"http://127.0.0.1:{port}/api/server/version")
        assert version == "2025.6.0.115417"
    finally:
        process.terminate()
        await process.wait()


async def _first_answer(http: aiohttp.ClientSession, url: str) -> str:
    """The body of the first successful GET, retrying while the server starts listening."""
    headers = {"Authorization": aiohttp.encode_basic_auth("T")}
    for _ in range(50):
        try:
            async with http.get(url, headers=headers) as resp:
                return await resp.text()
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    pytest.fail(f"nothing answered at {url}")
