"""Store URLs: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `sqlite://:memory:` (also
`sqlite:///:memory:`, as SQLAlchemy spells it), and `postgresql://…` (not available yet).

Errors name the scheme at most: a URL may carry a password.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final, Literal

from scim_bridge.store.errors import StoreError

SQLITE_SCHEME: Final = "sqlite"
POSTGRES_SCHEMES: Final = frozenset({"postgresql", "postgres"})
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_EXAMPLES: Final = "sqlite:///relative/path.db, sqlite:////absolute/path.db or sqlite://:memory:"


def url_scheme(url: str) -> str:
    """The URL's scheme in lower case; `StoreError` (without echoing the URL) if it has none."""
    scheme, separator, _ = url.partition("://")
    if not separator or _SCHEME.fullmatch(scheme) is None:
        raise StoreError(f"the store URL must look like {_EXAMPLES} (or postgresql://…)")
    return scheme.lower()


def sqlite_location(url: str) -> Path | Literal[":memory:"]:
    """Where a `sqlite://` URL points: a file path (relative to the working directory unless it starts
    with a fourth slash) or `:memory:`."""
    if url_scheme(url) != SQLITE_SCHEME:
        raise StoreError("not a sqlite:// store URL")
    rest = url.partition("://")[2]
    if rest in {":memory:", "/:memory:"}:
        return ":memory:"
    if not rest.startswith("/"):
        raise StoreError(f"a sqlite store URL takes no host or credentials: use {_EXAMPLES}")
    path = rest[1:]
    if not path or path.endswith("/") or "?" in path or "#" in path:
        raise StoreError(f"a sqlite store URL needs a file path without query or fragment: use {_EXAMPLES}")
    return Path(path)


def check_store_url(url: str) -> str:
    """`url` when it names a store this version can open (a `StoreError` saying how to write one otherwise):
    a wrong URL is a configuration error, found before anything starts."""
    scheme = url_scheme(url)
    if scheme == SQLITE_SCHEME:
        sqlite_location(url)
        return url
    if scheme in POSTGRES_SCHEMES:
        raise StoreError(
            "PostgreSQL store needs the postgres backend, which this scim-bridge version does not have yet: "
            f"use {_EXAMPLES}"
        )
    raise StoreError(f"unsupported store URL scheme {scheme!r}: use {_EXAMPLES}")
