"""Who is asking, and with which SonarQube client, for the length of one SCIM request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scim_bridge.sonarqube import SonarQubeClient


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The SonarQube client authenticated for this request, the caller's login and the request id."""

    sonar: SonarQubeClient
    actor: str
    request_id: str
