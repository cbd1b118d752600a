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
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from scim_bridge.sonarqube import Capabilities

_HASH_LENGTH: Final = 8
_REFUSED: Final = re.compile(r"[^A-Za-z0-9_.\-@]")


def login_for(user_name: str, sonar: Capabilities) -> str:
    """The SonarQube login for a SCIM `userName`: itself when SonarQube accepts it (docs/sonarqube.md SQ6),
    else a derived one."""
    if sonar.accepts_login(user_name):
        return user_name
    folded = unicodedata.normalize("NFKD", user_name).encode("ascii", "ignore").decode("ascii")
    base = _REFUSED.sub("_", folded)
    if not base or not sonar.accepts_login(base[0] + "x"):
        base = "u" + base
    suffix = "-" + hashlib.sha256(user_name.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    return base[: sonar.max_login_length - len(suffix)] + suffix
