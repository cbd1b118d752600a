"""Versioned schema migrations shipped as package data: `migrations/<dialect>/NNNN_name.sql`.

Versions run 1..N without gaps; each backend applies the ones newer than its `schema_version` table in
order, each in its own transaction, and refuses a database whose version is newer than N.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

from scim_bridge.store.errors import StoreError

_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@functools.cache
def load_migrations(dialect: str) -> tuple[Migration, ...]:
    """The migrations for `dialect` ("sqlite", later "postgresql"), ordered by version."""
    folder = resources.files("scim_bridge.store").joinpath("migrations", dialect)
    migrations = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.fullmatch(entry.name)
        if match is None:
            raise StoreError(f"migration file {dialect}/{entry.name} is not named NNNN_name.sql")
        migrations.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    migrations.sort(key=lambda migration: migration.version)
    if [migration.version for migration in migrations] != list(range(1, len(migrations) + 1)):
        raise StoreError(f"{dialect} migrations are not numbered 1..N without gaps")
    return tuple(migrations)
