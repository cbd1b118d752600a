"""Which strings may be SCIM ids at all: anything else is unknown at once, and never reaches a SonarQube URL.

A SCIM id of the bridge is SonarQube's own uuid on Web API v2 (10.4+) and a uuid the bridge made on v1:
`5b9c2bd1-0d3e-4f5a-8b6c-7d8e9f0a1b2c`, or, for accounts and groups SonarQube created before it used
standard uuids, its older compact uuids such as `AU-TpxcA-iU5OvuD2FL0` (base64url: letters, digits, `-` and
`_`; docs/sonarqube.md SQ2 calls them opaque strings). So a plausible id is 1 to 64 of `A-Z a-z 0-9 _ -`:
no dot, slash, percent sign or space, nothing SonarQube's URLs could read as more than one path segment.
"""

from __future__ import annotations

import re
from typing import Final

MAX_ID_LENGTH: Final = 64
_PLAUSIBLE_ID: Final = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_ID_LENGTH}}}")


def plausible_id(value: object) -> bool:
    """Whether `value` could be a SCIM id of this bridge: a string of 1 to 64 ASCII letters, digits, `_`
    or `-`. An id that is not is unknown without looking, and must never be put in a SonarQube URL."""
    return isinstance(value, str) and _PLAUSIBLE_ID.fullmatch(value) is not None
