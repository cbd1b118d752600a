"""Store URLs: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `sqlite://:memory:` (also
`sqlite:///:memory:`, as SQLAlchemy spells it), and `postgresql://USER[:PASSWORD]@HOST[:PORT]/DB` (also
`postgres://`, with an optional `?sslmode=…`).

Errors name the scheme at most: a URL may carry a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, cast, get_args
from urllib.parse import parse_qsl, unquote, urlsplit

from scim_bridge.store.errors import StoreError

SQLITE_SCHEME: Final = "sqlite"
POSTGRES_SCHEMES: Final = frozenset({"postgresql", "postgres"})
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_EXAMPLES: Final = "sqlite:///relative/path.db, sqlite:////absolute/path.db or sqlite://:memory:"
_POSTGRES_FORM: Final = "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=MODE]"
POSTGRES_DEFAULT_PORT: Final = 5432
# libpq's sslmode values, which asyncpg takes as they are.
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
SSL_MODES: Final = frozenset(get_args(SslMode))


def url_scheme(url: str) -> str:
    """The URL's scheme in lower case; `StoreError` (without echoing the URL) if it has none."""
    scheme, separator, _ = url.partition("://")
    if not separator or _SCHEME.fullmatch(scheme) is None:
        raise StoreError(f"the store URL must look like {_EXAMPLES} (or {_POSTGRES_FORM})")
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


@dataclass(frozen=True, slots=True)
class PostgresTarget:
    """Where a `postgresql://` URL points. `str()` and `repr()` leave the password out."""

    user: str
    host: str
    port: int
    database: str
    sslmode: SslMode | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{self.user}@{host}:{self.port}/{self.database}"


def postgres_target(url: str) -> PostgresTarget:
    """The parts of a `postgresql://` (or `postgres://`) URL; `StoreError` naming the form otherwise. User,
    password and database may be percent-encoded; without a password, asyncpg looks in `PGPASSWORD` and
    `~/.pgpass`."""
    if url_scheme(url) not in POSTGRES_SCHEMES:
        raise StoreError("not a postgresql:// store URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        # urllib's message may quote the netloc, password included.
        raise StoreError(f"the PostgreSQL store URL is malformed: use {_POSTGRES_FORM}") from None
    if not parts.hostname or not parts.username:
        raise StoreError(f"the PostgreSQL store URL needs a user and a host: use {_POSTGRES_FORM}")
    database = unquote(parts.path.removeprefix("/"))
    if not database or "/" in database or parts.fragment:
        raise StoreError(f"the PostgreSQL store URL needs one database name: use {_POSTGRES_FORM}")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"sslmode"})
    if unknown:
        raise StoreError(f"the PostgreSQL store URL takes only sslmode as a query option, not {unknown}")
    sslmode = options.get("sslmode")
    if sslmode is not None and sslmode not in SSL_MODES:
        raise StoreError(f"sslmode must be one of {', '.join(sorted(SSL_MODES))}")
    return PostgresTarget(
        user=unquote(parts.username),
        password=None if parts.password is None else unquote(parts.password),
        host=parts.hostname,
        port=POSTGRES_DEFAULT_PORT if port is None else port,
        database=database,
        sslmode=cast("SslMode | None", sslmode),
    )


def check_store_url(url: str) -> str:
    """`url` when it names a store this version can open (a `StoreError` saying how to write one otherwise):
    a wrong URL is a configuration error, found before anything starts."""
    scheme = url_scheme(url)
    if scheme == SQLITE_SCHEME:
        sqlite_location(url)
        return url
    if scheme in POSTGRES_SCHEMES:
        postgres_target(url)
        return url
    raise StoreError(f"unsupported store URL scheme {scheme!r}: use {_EXAMPLES} or {_POSTGRES_FORM}")
