"""Turn a SonarQube error answer (status + v1 or v2 error body) into the client's error tree.

v1 bodies are `{"errors":[{"msg":…}]}`, v2 bodies `{"message":…}`; authentication failures (401) have an
empty body. v1 has no 409: duplicates and rule violations are all 400, told apart by their message.
"""

from __future__ import annotations

import json
import re
from typing import Any

from scim_bridge.sonarqube import errors

# Substrings (lower case) of the 400 messages by which a SonarQube rule refuses an operation.
_REFUSAL_MARKERS = (
    "default group",  # "Default group 'sonar-users' cannot be used to perform this action"
    "last administrator",  # "User is last administrator, …" / "The last administrator user cannot be removed"
    "last system admin group",
    "self-deactivation",
    "not allowed to update",  # 10.x+: "It is not allowed to update name for this user"
    "cannot be updated for a non-local user",  # 9.9
    "externally managed",
    "deleting managed groups is not allowed",
    "is not deactivated",  # anonymising an active user
)

# How a 400 message names the value it refused; the first pattern that matches wins.
_FIELD_PATTERNS: tuple[tuple[re.Pattern[str], str | None], ...] = (
    (re.compile(r"^'(\w+)' (?:length|value)"), None),  # framework checks: "'login' length (1) is …"
    (re.compile(r"^The '(\w+)' parameter is missing"), None),
    (re.compile(r"Value of parameter '(\w+)'"), None),
    (re.compile(r"^Value of '(\w+)'"), None),  # v2 "Value of 'externalProvider' (x) must be one of …"
    (re.compile(r"^Value .* for field (\w+) was rejected", re.DOTALL), None),  # v2 bean validation
    (re.compile(r"^Login\b"), "login"),
    (re.compile(r"^Email\b"), "email"),
    (re.compile(r"^Name\b"), "name"),
    (re.compile(r"^(?:Group name|Anyone group)\b"), "name"),
    (re.compile(r"^Password\b"), "password"),
)

# 404 messages that mean "no such URL" (wrong base URL or API version), not "no such user or group".
_UNKNOWN_ROUTE = re.compile(r"^(?:Unknown url\b|Resource not found\.$)")


def sonarqube_messages(body: bytes) -> list[str]:
    """The messages of a v1 or v2 error body; empty when the body is not a SonarQube error."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        return []
    if not isinstance(payload, dict):
        return []
    if isinstance(payload.get("errors"), list):
        return [str(item["msg"]) for item in payload["errors"] if isinstance(item, dict) and "msg" in item]
    if isinstance(payload.get("message"), str):
        return [payload["message"]]
    return []


def field_of(message: str) -> str | None:
    """The SonarQube parameter or attribute a validation message is about, when it says so."""
    for pattern, field in _FIELD_PATTERNS:
        match = pattern.search(message)
        if match is not None:
            return field or match.group(1)
    return None


def error_for(status: int, body: bytes, endpoint: str) -> errors.SonarQubeError:
    """The error for a final, non-retryable answer with this status and body."""
    messages = sonarqube_messages(body)
    text = "; ".join(messages)
    if status == 401:
        return errors.Unauthorized("SonarQube did not accept the token", status=status, endpoint=endpoint)
    if status == 403:
        return errors.Forbidden(text or "insufficient privileges", status=status, endpoint=endpoint)
    if status == 404 and messages and not _UNKNOWN_ROUTE.match(text):
        return errors.NotFound(text, status=status, endpoint=endpoint)
    if status == 400 and messages:
        return _bad_request(messages, endpoint)
    return errors.UnexpectedResponse(
        f"SonarQube answered HTTP {status} to {endpoint}" + (f": {text}" if text else ""),
        status=status,
        endpoint=endpoint,
    )


def _bad_request(messages: list[str], endpoint: str) -> errors.SonarQubeError:
    text = "; ".join(messages)
    lowered = text.lower()
    if "is already a member of group" in lowered:
        return errors.AlreadyMember(text, status=400, endpoint=endpoint)
    if "already exists" in lowered:
        return errors.AlreadyExists(text, status=400, endpoint=endpoint)
    if any(marker in lowered for marker in _REFUSAL_MARKERS):
        return errors.Refused(text, status=400, endpoint=endpoint)
    field = next((found for found in map(field_of, messages) if found is not None), None)
    return errors.InvalidValue(text, field=field, status=400, endpoint=endpoint)
