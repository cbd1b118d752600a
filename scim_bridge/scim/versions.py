"""Resource versions on the wire (RFC 7644 §3.14): `meta.version` and `ETag` as weak ETags, and `If-Match`.

The web layer reads an `If-Match` header into an `IfMatch` (the versions it accepts); provisioning compares
it with the stored version while it holds the resource's lock, and answers 412 when it does not match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from scim_bridge.scim.errors import PreconditionFailedError

# A weak (`W/"3"`) or strong (`"3"`) entity tag of a version number.
_VERSION_TAG: Final = re.compile(r'(?:W/)?"(\d{1,18})"')


def weak_etag(version: int) -> str:
    """The `ETag` and `meta.version` of a resource version: `W/"3"`."""
    return f'W/"{version}"'


@dataclass(frozen=True, slots=True)
class IfMatch:
    """The versions an `If-Match` header accepts; `versions` None for `*` (any version)."""

    header: str
    versions: frozenset[int] | None

    @classmethod
    def parse(cls, header: str | None) -> IfMatch | None:
        """The condition of an `If-Match` header, None without one. Tags that are not versions of this
        service (another server's ETags) can never match, as RFC 9110 §13.1.1 wants."""
        if header is None:
            return None
        tags = [tag.strip() for tag in header.split(",")]
        if "*" in tags:
            return cls(header, None)
        matched = (_VERSION_TAG.fullmatch(tag) for tag in tags)
        return cls(header, frozenset(int(match[1]) for match in matched if match is not None))

    def check(self, current: int) -> None:
        """A 412 unless the resource's `current` version is one this condition accepts."""
        if self.versions is not None and current not in self.versions:
            raise PreconditionFailedError(
                f"If-Match {self.header} does not match the current version {weak_etag(current)}"
            )
