"""The connection follows SonarQube through start-up, outages and upgrades (docs/sonarqube.md SQ1-SQ3):
it reads `api/system/status` without credentials and hands out clients only while SonarQube is UP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from pydantic import AnyHttpUrl

from scim_bridge.config import SonarQubeSettings
from scim_bridge.sonarqube import Dialect, SonarQubeConnection, Unavailable, V1Client, V2Client
from tests.sonarqube.doubles import SONAR_URL, TOKEN, FakeClock, endpoint, requests_to

if TYPE_CHECKING:
    from aioresponses import aioresponses

STATUS = "api/system/status"


def status(state: str, version: str = "2025.6.0.115417") -> dict[str, Any]:
    return {"payload": {"id": "20260101", "version": version, "status": state}}


async def connected(settings: SonarQubeSettings, clock: FakeClock) -> SonarQubeConnection:
    return SonarQubeConnection.create(settings, sleep=clock.sleep, clock=clock)


@pytest.mark.parametrize(
    ("version", "client_class"), [("9.9.8.100196", V1Client), ("2025.6.0.115417", V2Client)]
)
async def test_open_reads_status_and_version_without_auth(
    mocked: aioresponses, settings: SonarQubeSettings, clock: FakeClock, version: str, client_class: type
) -> None:
    """`open` asks api/system/status once, without credentials, and hands out clients of the right dialect."""
    mocked.get(endpoint(STATUS), **status("UP", version))

    async with await SonarQubeConnection.open(settings, sleep=clock.sleep, clock=clock) as connection:
        assert connection.state.up
        client = connection.client(TOKEN)
        assert isinstance(client, client_class)
        assert str(client.capabilities.version) == version
    (call,) = requests_to(mocked, "GET", STATUS)
    assert "Authorization" not in call.kwargs["headers"]


@pytest.mark.parametrize(
    ("answer", "state", "said"),
    [
        pytest.param(status("STARTING"), "STARTING", "starting", id="starting"),
        pytest.param(status("DB_MIGRATION_NEEDED"), "DB_MIGRATION_NEEDED", "/setup", id="migration"),
        pytest.param(status("RESTARTING"), "RESTARTING", "restarting", id="restarting"),
        pytest.param(
            {"exception": aiohttp.ClientConnectionError()}, "UNREACHABLE", "cannot be reached", id="down"
        ),
        pytest.param({"status": 503}, "UNREACHABLE", "503", id="503"),
        pytest.param(
            {"body": "<html>Welcome</html>", "content_type": "text/html"},
            "UNEXPECTED",
            "sonar_url",
            id="html",
        ),
        pytest.param({"status": 404}, "UNEXPECTED", "not a SonarQube", id="404"),
    ],
)
async def test_no_client_until_sonarqube_is_up(
    mocked: aioresponses,
    settings: SonarQubeSettings,
    clock: FakeClock,
    *,
    answer: dict[str, Any],
    state: str,
    said: str,
) -> None:
    """Until SonarQube says UP, the state says why, and `client` refuses with Unavailable saying the same."""
    mocked.get(endpoint(STATUS), **answer)
    connection = await connected(settings, clock)
    try:
        reached = await connection.refresh()
        assert (reached.status, said in reached.detail) == (state, True)
        with pytest.raises(Unavailable, match=said.replace("?", r"\?")) as caught:
            connection.client(TOKEN)
        assert caught.value.retry_after
    finally:
        await connection.close()


async def test_starting_then_up(mocked: aioresponses, settings: SonarQubeSettings, clock: FakeClock) -> None:
    """A SonarQube that was starting is used as soon as it says UP."""
    mocked.get(endpoint(STATUS), **status("STARTING"))
    mocked.get(endpoint(STATUS), **status("UP"))
    connection = await connected(settings, clock)
    try:
        assert (await connection.refresh()).status == "STARTING"
        assert connection.capabilities is None
        assert (await connection.refresh()).up
        assert connection.client(TOKEN).capabilities.dialect is Dialect.V2
    finally:
        await connection.close()


async def test_an_upgrade_switches_the_dialect(
    mocked: aioresponses, settings: SonarQubeSettings, clock: FakeClock
) -> None:
    """SonarQube upgraded from 10.3 to 10.4 under a running connection: v1 before, v2 after."""
    mocked.get(endpoint(STATUS), **status("UP", "10.3.0.82913"))
    mocked.get(endpoint(STATUS), **status("STARTING", "10.4.1.88267"))
    mocked.get(endpoint(STATUS), **status("UP", "10.4.1.88267"))
    connection = await connected(settings, clock)
    try:
        await connection.refresh()
        assert isinstance(connection.client(TOKEN), V1Client)
        await connection.refresh()
        await connection.refresh()
        assert isinstance(connection.client(TOKEN), V2Client)
    finally:
        await connection.close()


async def test_v2_asked_of_a_version_without_it_is_misconfigured(
    mocked: aioresponses, clock: FakeClock
) -> None:
    """`sonar_api = v2` in front of 9.9: the state names the setting; no client is handed out."""
    mocked.get(endpoint(STATUS), **status("UP", "9.9.8.100196"))
    settings = SonarQubeSettings(sonar_url=AnyHttpUrl(SONAR_URL), sonar_api="v2")
    connection = await connected(settings, clock)
    try:
        state = await connection.refresh()
        assert state.status == "MISCONFIGURED"
        assert "sonar_api" in state.detail
        with pytest.raises(Unavailable, match="sonar_api"):
            connection.client(TOKEN)
    finally:
        await connection.close()


async def test_a_call_that_finds_sonarqube_unreachable_marks_it_down(
    mocked: aioresponses, settings: SonarQubeSettings, clock: FakeClock
) -> None:
    """When a call cannot connect at all, the connection stops handing out clients until it looks again."""
    mocked.get(endpoint(STATUS), **status("UP"))
    refused = aiohttp.ClientConnectorError(_key(), OSError(111, "refused"))
    mocked.get(endpoint("api/users/current"), exception=refused, repeat=True)
    connection = await connected(settings, clock)
    try:
        await connection.refresh()
        client = connection.client(TOKEN)
        with pytest.raises(Unavailable):
            await client.current_user()
        assert connection.state.status == "UNREACHABLE"
        with pytest.raises(Unavailable, match="stopped answering"):
            connection.client(TOKEN)
    finally:
        await connection.close()


async def test_an_injected_session_stays_open(mocked: aioresponses, clock: FakeClock) -> None:
    """A session the caller brought is the caller's: closing the connection leaves it open."""
    mocked.get(endpoint(STATUS), **status("UP"))
    settings = SonarQubeSettings(sonar_url=AnyHttpUrl(SONAR_URL))
    async with aiohttp.ClientSession() as session:
        connection = await SonarQubeConnection.open(settings, session=session, sleep=clock.sleep, clock=clock)
        await connection.close()
        assert not session.closed


def _key() -> Any:
    from aiohttp.client_reqrep import ConnectionKey  # noqa: PLC0415 - internal type, only needed here

    return ConnectionKey("sonar.test", 80, False, True, None, None, None, None)  # noqa: FBT003
