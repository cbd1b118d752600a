"""The provisioning core: one object per application, holding the user and group services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scim_bridge.provisioning.base import Shared
from scim_bridge.provisioning.groups import GroupService
from scim_bridge.provisioning.users import UserService

if TYPE_CHECKING:
    from scim_bridge.config import BridgeSettings
    from scim_bridge.sonarqube import Dialect, SonarVersion
    from scim_bridge.store.base import StateStore


class Provisioner:
    """SCIM intent → SonarQube operations, for one SonarQube server and one state store."""

    def __init__(
        self, *, store: StateStore, settings: BridgeSettings, version: SonarVersion, dialect: Dialect
    ) -> None:
        shared = Shared(store=store, settings=settings, version=version, dialect=dialect)
        self.users = UserService(shared)
        self.groups = GroupService(shared)
