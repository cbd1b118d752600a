"""The provisioning core: one object per application, holding the user and group services."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from scim_bridge.provisioning.audit import AuditTrail
from scim_bridge.provisioning.collaborators import Collaborators, utc_now
from scim_bridge.provisioning.groups import GroupService
from scim_bridge.provisioning.locks import KeyedLocks
from scim_bridge.provisioning.saml import SamlPolicy
from scim_bridge.provisioning.users import UserService

if TYPE_CHECKING:
    from scim_bridge.config import BridgeSettings
    from scim_bridge.store.base import StateStore


class Provisioner:
    """SCIM intent → SonarQube operations, on one state store. Which SonarQube it talks to, and what that
    SonarQube can do, comes with each request (`RequestContext.sonar`)."""

    def __init__(self, *, store: StateStore, settings: BridgeSettings) -> None:
        collaborators = Collaborators(
            store=store,
            settings=settings,
            locks=KeyedLocks(across=store.hold),
            saml=SamlPolicy(settings.saml_link, time.monotonic),
            audit=AuditTrail(store, utc_now),
            clock=utc_now,
        )
        self.users = UserService(collaborators)
        self.groups = GroupService(collaborators)
        self.locks = collaborators.locks  # reconcile runs inside serve take the same per-resource locks
