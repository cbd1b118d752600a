"""What the client hands back: small frozen values, the same whichever API dialect produced them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_GROUP = "sonar-users"
ADMIN_GROUP = "sonar-administrators"
SAML_PROVIDER = "saml"


class Dialect(StrEnum):
    """Which SonarQube Web API the client speaks: v1 web services (`api/users/*`) or v2 REST (`api/v2/*`)."""

    V1 = "v1"
    V2 = "v2"


_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:\.(\d+))?")


@dataclass(frozen=True, slots=True, order=True)
class SonarVersion:
    """A SonarQube version as SonarQube prints it: `9.9.8.100196`, `2025.6.0.115417`, `26.7`."""

    major: int
    minor: int
    patch: int = 0
    build: int = 0

    @classmethod
    def parse(cls, text: str) -> SonarVersion:
        match = _VERSION.match(text.strip())
        if match is None:
            raise ValueError(f"not a SonarQube version: {text[:40]!r}")
        major, minor, patch, build = (int(part) if part else 0 for part in match.groups())
        return cls(major, minor, patch, build)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}.{self.build}"


@dataclass(frozen=True, slots=True)
class UserRef:
    """How to address a user: by login (v1) and, where known, by uuid (v2, saves a look-up)."""

    login: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class GroupRef:
    """How to address a group: by name (v1) and, where known, by uuid (v2, saves a look-up)."""

    name: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class SonarUser:
    """A SonarQube user, active or deactivated. `id` is the uuid where the dialect exposes one (v2)."""

    login: str
    name: str
    email: str | None
    active: bool
    local: bool
    external_provider: str | None
    external_login: str | None
    id: str | None = None
    external_id: str | None = None  # only the v2 API shows it

    @property
    def ref(self) -> UserRef:
        return UserRef(self.login, self.id)

    @property
    def saml_linked(self) -> bool:
        return self.external_provider == SAML_PROVIDER


@dataclass(frozen=True, slots=True)
class SonarGroup:
    """A SonarQube group. `id` is the uuid where the dialect exposes one."""

    name: str
    id: str | None = None

    @property
    def ref(self) -> GroupRef:
        return GroupRef(self.name, self.id)


@dataclass(frozen=True, slots=True)
class Caller:
    """The owner of the token in use and whether it holds "Administer System"."""

    login: str
    name: str
    is_admin: bool


@dataclass(frozen=True, slots=True)
class SamlSettings:
    """Whether SonarQube has SAML sign-in on, and the assertion attribute it takes groups from (if any)."""

    enabled: bool
    group_attribute: str | None
