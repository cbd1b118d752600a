"""`scim-bridge check` against the emulator: exit 0 only when provisioning would work, and every verdict
says what was found and what to do."""

from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import AnyHttpUrl, SecretStr
from structlog.testing import capture_logs

from scim_bridge.cli import _check
from scim_bridge.commands.check import Verdict, run_checks, succeeded
from scim_bridge.config import BridgeSettings
from tests.support import ADMIN_TOKEN

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support import Sonar, SonarFactory


def settings_for(sonar: Sonar | None, tmp_path: Path, **changes: Any) -> BridgeSettings:
    if sonar is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{probe.getsockname()[1]}/"  # closed once the probe is gone
    else:
        url = str(sonar.server.make_url("/"))
    given: dict[str, Any] = {
        "sonar_url": AnyHttpUrl(url),
        "store": f"sqlite:///{tmp_path / 'state.db'}",
        "sonar_token": SecretStr(ADMIN_TOKEN),
        "sonar_connect_timeout": 1.0,
    }
    return BridgeSettings(**(given | changes))


def by_subject(verdicts: list[Verdict]) -> dict[str, list[Verdict]]:
    found: dict[str, list[Verdict]] = {}
    for verdict in verdicts:
        found.setdefault(verdict.subject, []).append(verdict)
    return found


async def test_everything_in_order(sonar_factory: SonarFactory, tmp_path: Path) -> None:
    """An admin token on a SonarQube with SAML: every verdict ok, version, dialect and edition said."""
    sonar = await sonar_factory("2025.6", saml=True)
    verdicts = await run_checks(settings_for(sonar, tmp_path))
    assert succeeded(verdicts)
    assert {verdict.level for verdict in verdicts} == {"ok"}
    subjects = by_subject(verdicts)
    assert set(subjects) == {"configuration", "store", "sonarqube", "token", "edition", "saml"}
    assert "2025.6.0.115417 is up" in subjects["sonarqube"][0].found
    assert "v2 API" in subjects["sonarqube"][0].found
    assert "community edition" in subjects["edition"][0].found


async def test_a_non_admin_token_fails(sonar_factory: SonarFactory, tmp_path: Path) -> None:
    """A token whose user may not administer SonarQube: the token verdict fails and says what to use."""
    sonar = await sonar_factory("9.9")
    await sonar.create_user("plain")
    token = await sonar.user_token("plain")
    verdicts = await run_checks(settings_for(sonar, tmp_path, sonar_token=SecretStr(token)))
    assert not succeeded(verdicts)
    (verdict,) = by_subject(verdicts)["token"]
    assert (verdict.level, "'plain'" in verdict.found) == ("error", True)
    assert verdict.advice is not None
    assert "Administer System" in verdict.advice


@pytest.mark.parametrize("token", [None, "squ_not-a-token"], ids=["missing", "refused"])
async def test_a_missing_or_refused_token_fails(
    sonar_factory: SonarFactory, tmp_path: Path, token: str | None
) -> None:
    """No token to test, or one SonarQube refuses: provisioning cannot be said to work."""
    sonar = await sonar_factory("2025.6")
    settings = settings_for(sonar, tmp_path, sonar_token=None if token is None else SecretStr(token))
    verdicts = await run_checks(settings)
    assert not succeeded(verdicts)
    assert by_subject(verdicts)["token"][0].level == "error"


async def test_a_wrong_url_fails(tmp_path: Path) -> None:
    """Nothing listens at sonar_url: SonarQube's verdict fails, naming the URL and the setting."""
    settings = settings_for(None, tmp_path)
    verdicts = await run_checks(settings)
    assert not succeeded(verdicts)
    (verdict,) = by_subject(verdicts)["sonarqube"]
    assert str(settings.sonar_url) in verdict.found
    assert verdict.advice is not None
    assert "SCIM_BRIDGE_SONAR_URL" in verdict.advice


async def test_a_starting_sonarqube_fails(sonar_factory: SonarFactory, tmp_path: Path) -> None:
    """SonarQube still starting: not yet, and the verdict says it is starting."""
    sonar = await sonar_factory("2025.6", start_delay=3600)
    verdicts = await run_checks(settings_for(sonar, tmp_path))
    assert not succeeded(verdicts)
    assert "starting" in by_subject(verdicts)["sonarqube"][0].found


@pytest.mark.parametrize(("saml_link", "level"), [("auto", "ok"), ("on", "warning")], ids=["auto", "on"])
async def test_saml_off(sonar_factory: SonarFactory, tmp_path: Path, saml_link: str, level: str) -> None:
    """SAML off in SonarQube: fine with saml_link auto, a warning with on; provisioning works either way."""
    sonar = await sonar_factory("2025.6", saml=False)
    verdicts = await run_checks(settings_for(sonar, tmp_path, saml_link=saml_link))
    assert succeeded(verdicts)
    assert by_subject(verdicts)["saml"][0].level == level


async def test_saml_group_sync_is_a_warning(sonar_factory: SonarFactory, tmp_path: Path) -> None:
    """SonarQube's SAML group synchronisation undoes provisioned memberships: warned, with the fix."""
    sonar = await sonar_factory("2025.6", saml=True)
    reply = await sonar.post("api/settings/set", {"key": "sonar.auth.saml.group.name", "value": "groups"})
    assert reply.status == 204
    verdicts = await run_checks(settings_for(sonar, tmp_path))
    warnings = [verdict for verdict in by_subject(verdicts)["saml"] if verdict.level == "warning"]
    assert succeeded(verdicts)
    assert "'groups'" in warnings[0].found


async def test_the_command_prints_and_exits(
    sonar_factory: SonarFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Human output: a line per verdict and the conclusion; --json: the same as one document; exit 0 or 1."""
    sonar = await sonar_factory("9.9", saml=True)
    assert await _check(settings_for(sonar, tmp_path), as_json=False) == 0
    text = capsys.readouterr().out
    assert "[ok  ] sonarqube: SonarQube 9.9.8.100196 is up" in text
    assert text.rstrip().endswith("provisioning would work")

    with capture_logs():  # the command's own output only: its logs go to stderr when run as a command
        assert await _check(settings_for(None, tmp_path), as_json=True) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert {check["subject"] for check in report["checks"]} >= {"configuration", "store", "sonarqube"}


async def test_a_store_not_created_yet_is_fine(sonar_factory: SonarFactory, tmp_path: Path) -> None:
    """Before the first `serve` there is no store: check says `serve` creates it, and creates nothing."""
    sonar = await sonar_factory("2025.6", saml=True)
    settings = settings_for(sonar, tmp_path / "later")
    verdicts = await run_checks(settings)
    assert succeeded(verdicts)
    assert "serve` creates it" in by_subject(verdicts)["store"][0].found
    assert not (tmp_path / "later").exists()
