"""What each SonarQube version can do, as the capabilities object answers it (docs/sonarqube.md)."""

from __future__ import annotations

from typing import Any

import pytest

from scim_bridge.config import ConfigError
from scim_bridge.sonarqube import Capabilities, Dialect, SonarVersion

DIALECTS = [
    ("9.9.8.100196", "auto", Dialect.V1),
    ("10.3.0.82913", "auto", Dialect.V1),
    ("10.4.1.88267", "auto", Dialect.V2),
    ("10.8.1.101195", "auto", Dialect.V2),
    ("2025.6.0.115417", "auto", Dialect.V2),
    ("26.7.0.124771", "auto", Dialect.V2),
    ("2025.6.0.115417", "v1", Dialect.V1),
    ("10.8.1.101195", "v2", Dialect.V2),
]


def capabilities(version: str, requested: Any = "auto") -> Capabilities:
    return Capabilities.detect(SonarVersion.parse(version), requested)


@pytest.mark.parametrize(("version", "requested", "dialect"), DIALECTS)
def test_dialect_follows_version_and_setting(version: str, requested: Any, dialect: Dialect) -> None:
    """SQ2: v2 from 10.4 on (and year- or CB-numbered releases), unless `sonar_api` says otherwise."""
    assert capabilities(version, requested).dialect is dialect


def test_v2_on_a_version_without_it_is_a_config_error() -> None:
    """Asking for v2 on 9.9 fails with the setting's name and the reason."""
    with pytest.raises(ConfigError, match=r"sonar_api.*10\.4"):
        capabilities("9.9.8.100196", "v2")


# version, requested dialect: ids as SCIM ids, longest login, leading `_`, external profiles, externalId link
ANSWERS = [
    ("9.9.8.100196", "auto", (False, 255, False, False, False)),
    ("10.3.0.82913", "auto", (False, 255, True, False, False)),
    ("10.8.1.101195", "auto", (True, 100, True, True, False)),
    ("10.8.1.101195", "v1", (False, 255, True, False, False)),
    ("2025.1.0.102418", "auto", (True, 100, True, True, True)),
    ("2025.6.0.115417", "v1", (False, 255, True, False, False)),
    ("26.7.0.124771", "auto", (True, 100, True, True, True)),
]


@pytest.mark.parametrize(("version", "requested", "answers"), ANSWERS)
def test_capability_answers(version: str, requested: Any, answers: tuple[object, ...]) -> None:
    """SQ6, SQ11, SQ14: each question has the answer its version and dialect give."""
    sonar = capabilities(version, requested)
    assert (
        sonar.has_resource_ids,
        sonar.max_login_length,
        sonar.login_may_start_with_underscore,
        sonar.edits_external_profiles,
        sonar.links_external_id,
    ) == answers


@pytest.mark.parametrize(
    ("login", "on_9_9", "on_2025"),
    [
        ("alice", True, True),
        ("a", False, False),
        ("_tech", False, True),
        (".dot", False, False),
        ("first.last@contoso.com", True, True),
        ("o'brien", False, False),
        ("jürgen", False, False),
        ("x" * 100, True, True),
        ("x" * 101, True, False),
        ("x" * 256, False, False),
    ],
)
def test_logins_sonarqube_accepts(login: str, on_9_9: bool, on_2025: bool) -> None:
    """SQ6: characters, length per dialect and the first-character rule per version."""
    assert capabilities("9.9.8.100196").accepts_login(login) is on_9_9
    assert capabilities("2025.6.0.115417").accepts_login(login) is on_2025
