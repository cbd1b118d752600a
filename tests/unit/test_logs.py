"""Logging never writes tokens or Authorization values."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
import structlog

from scim_bridge.logs import REDACTED, configure_logging, redact_secrets

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"token": "squ_abc"}, {"token": REDACTED}),
        ({"sonar_token": "squ_abc"}, {"sonar_token": REDACTED}),
        ({"Authorization": "Basic c3F1Og=="}, {"Authorization": REDACTED}),
        ({"token_hash": "5e88"}, {"token_hash": "5e88"}),
        ({"detail": "sent Bearer squ_abc.def to x"}, {"detail": f"sent Bearer {REDACTED} to x"}),
        (
            {"headers": {"authorization": "Bearer x", "accept": "*/*"}},
            {"headers": {"authorization": REDACTED, "accept": "*/*"}},
        ),
        ({"user": "alice", "group": "devs"}, {"user": "alice", "group": "devs"}),
    ],
    ids=["token", "suffix", "header", "hash-kept", "inline-bearer", "nested", "ids-kept"],
)
def test_redaction(event: dict[str, object], expected: dict[str, object]) -> None:
    """Secret-looking keys and Basic/Bearer credentials are replaced; ids and hashes are kept."""
    assert redact_secrets(None, "info", dict(event)) == expected


@pytest.fixture
def configured_logging() -> Iterator[None]:
    """Logging as `configure_logging` sets it, undone afterwards: its stream is this test's captured one."""
    yield
    structlog.reset_defaults()


def test_json_output_is_redacted(capsys: pytest.CaptureFixture[str], configured_logging: None) -> None:
    """A configured JSON logger writes one JSON line per event without the token."""
    configure_logging(level="info", fmt="json")
    structlog.get_logger().info("sonarqube.user_created", login="alice", token="squ_secret")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "sonarqube.user_created"
    assert record["login"] == "alice"
    assert "squ_secret" not in line
