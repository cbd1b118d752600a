"""Async SonarQube client: one interface (`SonarQubeClient`), two dialects (v1 web services, v2 REST).

async with await SonarQubeConnection.open(settings) as sonar:
    client = sonar.client(token)
    with deadline(25):
        user = await client.find_user("alice")
"""

from scim_bridge.sonarqube.capabilities import Capabilities
from scim_bridge.sonarqube.client import SonarQubeClient
from scim_bridge.sonarqube.connection import SonarQubeConnection
from scim_bridge.sonarqube.deadline import Deadline, current_deadline, deadline
from scim_bridge.sonarqube.errors import (
    AlreadyExists,
    AlreadyMember,
    Forbidden,
    InvalidValue,
    NotFound,
    Refused,
    SonarQubeError,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
)
from scim_bridge.sonarqube.models import (
    ADMIN_GROUP,
    DEFAULT_GROUP,
    SAML_PROVIDER,
    Caller,
    Dialect,
    GroupRef,
    SamlSettings,
    SonarGroup,
    SonarUser,
    SonarVersion,
    UserRef,
)
from scim_bridge.sonarqube.v1 import V1Client
from scim_bridge.sonarqube.v2 import V2Client

__all__ = [
    "ADMIN_GROUP",
    "DEFAULT_GROUP",
    "SAML_PROVIDER",
    "AlreadyExists",
    "AlreadyMember",
    "Caller",
    "Capabilities",
    "Deadline",
    "Dialect",
    "Forbidden",
    "GroupRef",
    "InvalidValue",
    "NotFound",
    "Refused",
    "SamlSettings",
    "SonarGroup",
    "SonarQubeClient",
    "SonarQubeConnection",
    "SonarQubeError",
    "SonarUser",
    "SonarVersion",
    "Unauthorized",
    "Unavailable",
    "UnexpectedResponse",
    "UserRef",
    "V1Client",
    "V2Client",
    "current_deadline",
    "deadline",
]
