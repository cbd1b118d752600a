"""What the SonarQube behind the bridge can do: every version difference the bridge acts on, in one place.

`Capabilities` is built from the version `api/system/status` reports and the API dialect chosen for it,
and held by the `SonarQubeConnection`; every client it hands out carries the capabilities of its moment.
The layers above ask it questions ("may a non-local user's name change?", "how long may a login be?")
instead of testing dialects or version numbers, and read it per request, never keeping a copy made at
start. The facts behind each answer are in docs/sonarqube.md (codes SQ1-SQ30).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from scim_bridge.config import ConfigError
from scim_bridge.sonarqube.models import Dialect

if TYPE_CHECKING:
    from scim_bridge.config import SonarApi
    from scim_bridge.sonarqube.models import SonarVersion

MIN_LOGIN_LENGTH: Final = 2  # SQ6: logins are 2+ characters, and user searches refuse a shorter `q`
_LOGIN_CHARACTERS: Final = re.compile(r"[A-Za-z0-9_.\-@]+")
_V1_MAX_LOGIN: Final = 255  # SQ6: the v1 web services' limit
_V2_MAX_LOGIN: Final = 100  # SQ6: the v2 API's bean validation


def serves_v2_api(version: SonarVersion) -> bool:
    """SQ2: SonarQube 10.4 and later (every year-numbered release and Community Build) serves the v2 users,
    groups and memberships API."""
    return version.major >= 24 or (version.major, version.minor) >= (10, 4)


def is_community_build(version: SonarVersion) -> bool:
    """SQ1: Community Builds are numbered `YY.M` (24.12, 25.x, 26.x); Server releases `YYYY.N`, 9.9, 10.x."""
    return 24 <= version.major < 100


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one SonarQube version, spoken to in one dialect, accepts and does."""

    version: SonarVersion
    dialect: Dialect

    @classmethod
    def detect(cls, version: SonarVersion, requested: SonarApi = "auto") -> Capabilities:
        """The capabilities for `version`: the v2 dialect from 10.4 on, unless the `sonar_api` setting asks
        for another one (a `ConfigError` when it asks for v2 on a version without it)."""
        if requested == "auto":
            return cls(version, Dialect.V2 if serves_v2_api(version) else Dialect.V1)
        dialect = Dialect(requested)
        if dialect is Dialect.V2 and not serves_v2_api(version):
            raise ConfigError(
                f"setting 'sonar_api' (SCIM_BRIDGE_SONAR_API) is v2, but SonarQube {version} has no v2 users "
                "API (it needs SonarQube 10.4 or later): use v1 or auto"
            )
        return cls(version, dialect)

    @property
    def has_resource_ids(self) -> bool:
        """Whether users and groups are addressed by SonarQube uuids (v2), which can then serve as SCIM ids:
        a lost store orphans none of Entra's links."""
        return self.dialect is Dialect.V2

    @property
    def max_login_length(self) -> int:
        """SQ6: the longest login the dialect accepts."""
        return _V2_MAX_LOGIN if self.dialect is Dialect.V2 else _V1_MAX_LOGIN

    @property
    def login_may_start_with_underscore(self) -> bool:
        """SQ6: 9.9 refuses a login starting with `_`; later versions accept it."""
        return self.version.major != 9

    def accepts_login(self, login: str) -> bool:
        """SQ6: whether SonarQube takes `login` as it is (characters, length, first character)."""
        if not MIN_LOGIN_LENGTH <= len(login) <= self.max_login_length:
            return False
        if not _LOGIN_CHARACTERS.fullmatch(login):
            return False
        first = login[0]
        return first.isalnum() or (first == "_" and self.login_may_start_with_underscore)

    @property
    def edits_external_profiles(self) -> bool:
        """SQ11: whether the name and e-mail of a non-local (SAML-linked or API-created) user may change.
        v1 refuses it on every version; v2 allows it."""
        return self.dialect is Dialect.V2

    @property
    def links_external_id(self) -> bool:
        """SQ14: whether linking an identity also sets SonarQube's `externalId` (v2 PATCH on 2025.1+ Server
        releases and Community Builds), which makes SAML's first matching rule hit."""
        return self.dialect is Dialect.V2 and (self.version.major >= 2025 or is_community_build(self.version))
