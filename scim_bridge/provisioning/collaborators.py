"""What the user and group services work with, created once per application: the store, the settings, the
per-resource locks, the clock, the SAML linking policy and the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from scim_bridge.config import BridgeSettings
    from scim_bridge.provisioning.audit import AuditTrail
    from scim_bridge.provisioning.locks import KeyedLocks
    from scim_bridge.provisioning.saml import SamlPolicy
    from scim_bridge.store.base import StateStore


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Collaborators:
    store: StateStore
    settings: BridgeSettings
    locks: KeyedLocks
    saml: SamlPolicy
    audit: AuditTrail
    clock: Callable[[], datetime]
