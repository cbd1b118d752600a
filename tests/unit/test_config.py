"""Settings: precedence, TOML, secret files, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scim_bridge.config import ConfigError, FileSecret, SonarQubeSettings, load_settings
from scim_bridge.emulator import EmulatorSettings


def test_defaults_match_design() -> None:
    """Without flags, environment or file, SonarQube is expected on 127.0.0.1:9000 with a 25 s deadline."""
    settings = load_settings(SonarQubeSettings)
    assert str(settings.sonar_url) == "http://127.0.0.1:9000/"
    assert settings.sonar_api == "auto"
    assert settings.sonar_deadline == 25.0


def test_flags_beat_environment_beat_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag overrides SCIM_BRIDGE_* which overrides the TOML file, which overrides the default."""
    config = tmp_path / "bridge.toml"
    config.write_text('sonar_url = "http://toml:9000"\nsonar_api = "v1"\nsonar_deadline = 5\n')
    monkeypatch.setenv("SCIM_BRIDGE_SONAR_API", "v2")
    monkeypatch.setenv("SCIM_BRIDGE_SONAR_DEADLINE", "7")
    settings = load_settings(SonarQubeSettings, config_file=config, sonar_deadline=9.0, sonar_api=None)
    assert str(settings.sonar_url) == "http://toml:9000/"
    assert settings.sonar_api == "v2"
    assert settings.sonar_deadline == 9.0


def test_emulator_environment_twins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Emulator options read SCIM_BRIDGE_EMULATOR_<OPTION>."""
    monkeypatch.setenv("SCIM_BRIDGE_EMULATOR_PROFILE", "9.9")
    monkeypatch.setenv("SCIM_BRIDGE_EMULATOR_SAML", "true")
    settings = load_settings(EmulatorSettings, port=9100)
    assert (settings.profile, settings.saml, settings.port) == ("9.9", True, 9100)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ({"sonar_url": "not a url"}, "setting 'sonar_url' (SCIM_BRIDGE_SONAR_URL)"),
        ({"sonar_api": "v3"}, "setting 'sonar_api' (SCIM_BRIDGE_SONAR_API)"),
        ({"sonar_deadline": -1.0}, "setting 'sonar_deadline' (SCIM_BRIDGE_SONAR_DEADLINE)"),
        ({"sonar_token_file": Path("/nonexistent/token")}, "sonar_token_file"),
    ],
    ids=["url", "api", "deadline", "token-file"],
)
def test_bad_values_name_the_setting(flags: dict[str, Any], named: str) -> None:
    """A wrong value fails with the setting's name, its environment variable and the rule."""
    with pytest.raises(ConfigError, match=r"invalid configuration") as caught:
        load_settings(SonarQubeSettings, **flags)
    assert named in str(caught.value)


def test_bad_emulator_profile_names_its_variable() -> None:
    """An unknown emulator profile names SCIM_BRIDGE_EMULATOR_PROFILE."""
    with pytest.raises(ConfigError, match=r"SCIM_BRIDGE_EMULATOR_PROFILE"):
        load_settings(EmulatorSettings, profile="8.9")


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    """A misspelt key in the TOML file is an error, not silently ignored."""
    config = tmp_path / "bridge.toml"
    config.write_text('sonar_ulr = "http://x"\n')
    with pytest.raises(ConfigError, match=r"sonar_ulr"):
        load_settings(SonarQubeSettings, config_file=config)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    """Naming a config file that does not exist fails at start."""
    with pytest.raises(ConfigError, match=r"does not exist"):
        load_settings(SonarQubeSettings, config_file=tmp_path / "absent.toml")


def test_token_and_token_file_are_exclusive(tmp_path: Path) -> None:
    """Giving the token both inline and as a file is ambiguous and refused."""
    token_file = tmp_path / "token"
    token_file.write_text("t\n")
    with pytest.raises(ConfigError, match=r"not both"):
        load_settings(SonarQubeSettings, sonar_token="x", sonar_token_file=token_file)


def test_file_secret_is_reread_when_rotated(tmp_path: Path) -> None:
    """A secret file is read stripped, and read again once its content changes."""
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    secret = FileSecret(token_file)
    assert secret.get() == "first"
    token_file.write_text("second-token\n")
    assert secret.get() == "second-token"


def test_file_secret_reports_unreadable_file(tmp_path: Path) -> None:
    """A secret file that disappears is reported with its path."""
    secret = FileSecret(tmp_path / "gone")
    with pytest.raises(ConfigError, match=r"gone"):
        secret.get()


def test_secret_is_hidden_in_repr() -> None:
    """The SonarQube token never shows in the settings' repr."""
    settings = load_settings(SonarQubeSettings, sonar_token="squ_very_secret")
    assert "squ_very_secret" not in repr(settings)
