"""SonarQube logins for SCIM `userName`s.

A `userName` that SonarQube accepts as a login is used as it is. One it refuses (`o'brien@contoso.com`,
`jürgen@x`, a space, too long) gets a derived login: ASCII-folded, every other refused character replaced by
`_`, and a short hash of the exact `userName` appended, so that the derivation is deterministic (a replayed
POST derives the same login) and two different `userName`s never collide. The exact `userName` stays in the
SAML link, which is what SonarQube matches at login.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from scim_bridge.sonarqube.models import Dialect, SonarVersion

MIN_LOGIN_LENGTH = 2
_HASH_LENGTH = 8
_REFUSED = re.compile(r"[^A-Za-z0-9_.\-@]")


@dataclass(frozen=True, slots=True)
class LoginRules:
    """What one SonarQube server accepts as a login."""

    underscore_first: bool  # 9.9 refuses a leading `_`; later versions accept it
    max_length: int  # v1 web services take 255 characters, the v2 API 100

    @classmethod
    def for_server(cls, version: SonarVersion, dialect: Dialect) -> LoginRules:
        return cls(
            underscore_first=version.major != 9,
            max_length=100 if dialect is Dialect.V2 else 255,
        )

    def accepts(self, login: str) -> bool:
        if not MIN_LOGIN_LENGTH <= len(login) <= self.max_length or _REFUSED.search(login):
            return False
        first = login[0]
        return first.isascii() and (first.isalnum() or (first == "_" and self.underscore_first))


def login_for(user_name: str, rules: LoginRules) -> str:
    """The SonarQube login for a SCIM `userName`: itself when SonarQube accepts it, else a derived one."""
    if rules.accepts(user_name):
        return user_name
    folded = unicodedata.normalize("NFKD", user_name).encode("ascii", "ignore").decode("ascii")
    base = _REFUSED.sub("_", folded)
    if not base or not rules.accepts(base[0] + "x"):
        base = "u" + base
    suffix = "-" + hashlib.sha256(user_name.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    return base[: rules.max_length - len(suffix)] + suffix
