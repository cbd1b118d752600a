"""A throw-away PostgreSQL server for the tests: `initdb` in a temporary directory, `pg_ctl start` on a free
loopback port, each test given a database of its own, everything removed at the end.

The binaries are taken from PATH or /usr/lib/postgresql/*/bin (Debian's layout); without them the tests that
need a server skip, saying how to get one. PostgreSQL refuses to run as root, so as root (CI) the server
runs as `nobody` through `runuser`, in a directory handed to that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import asyncpg

if TYPE_CHECKING:
    from collections.abc import Iterator

INSTALL_HINT: Final = "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
SUPERUSER: Final = "scim_test"
UNPRIVILEGED: Final = "nobody"
# Durability is not under test here; these make initdb, CREATE DATABASE and commits fast.
_FAST: Final = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def find_bindir() -> Path | None:
    """The directory holding `initdb` and `pg_ctl`, newest Debian version first; None if there is none."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = sorted(debian.glob("*/bin"), key=lambda path: _major(path.parent.name), reverse=True)
        candidates += versions
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _major(name: str) -> int:
    return int(name) if name.isdigit() else -1


def free_port() -> int:
    """A loopback TCP port nobody listens on (just now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class PostgresServer:
    """A running server: connect with a password over TCP on 127.0.0.1:`port`."""

    port: int
    password: str
    root: Path

    def url(self, database: str, *, password: str | None = None) -> str:
        """A store URL for `database` as the superuser (with another `password` if given)."""
        secret = self.password if password is None else password
        return f"postgresql://{SUPERUSER}:{secret}@127.0.0.1:{self.port}/{database}"

    async def new_database(self, name: str) -> str:
        """Create the empty database `name` (a quick copy of template0) and return its store URL."""
        admin = await asyncpg.connect(self.url("postgres"))
        try:
            await admin.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        finally:
            await admin.close()
        return self.url(name)

    @property
    def log_text(self) -> str:
        """The server log, for a failing test's report."""
        return (self.root / "server.log").read_text(encoding="utf-8", errors="replace")


def _run(command: list[str], *, as_user: str | None, cwd: Path) -> None:
    prefix = ["runuser", "-u", as_user, "--"] if as_user else []
    result = subprocess.run(  # noqa: S603 - fixed binaries and arguments
        prefix + command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr or result.stdout}")


@contextlib.contextmanager
def running_server(bindir: Path) -> Iterator[PostgresServer]:
    """Start a fresh server from `bindir`, yield it, then stop it and delete its files."""
    # Under /tmp: `nobody` must reach it (a root TMPDIR may be private), and the socket path stays short.
    shared_tmp = "/tmp" if Path("/tmp").is_dir() else None  # noqa: S108 - a fresh mkdtemp inside
    root = Path(tempfile.mkdtemp(prefix="scim-bridge-pg-", dir=shared_tmp))
    as_user = UNPRIVILEGED if os.geteuid() == 0 else None
    if as_user is not None:
        account = pwd.getpwnam(as_user)
        os.chown(root, account.pw_uid, account.pw_gid)
    password = secrets.token_hex(16)
    password_file = root / "password"
    password_file.write_text(password, encoding="utf-8")
    if as_user is not None:
        os.chown(password_file, account.pw_uid, account.pw_gid)
    data = root / "data"
    started = False
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                f"--pwfile={password_file}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",  # so that a wrong password is refused, as in production
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            as_user=as_user,
            cwd=root,
        )
        port = free_port()
        settings = ("listen_addresses=127.0.0.1", "max_connections=300", *_FAST)
        options = " ".join(["-p", str(port), "-k", str(root), *(f"-c {setting}" for setting in settings)])
        log = root / "server.log"
        try:
            _run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o", options, "start"],
                as_user=as_user,
                cwd=root,
            )
        except RuntimeError as exc:
            server_log = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
            raise RuntimeError(f"{exc}\nserver log:\n{server_log}") from exc
        started = True
        yield PostgresServer(port=port, password=password, root=root)
    finally:
        if started:
            _run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                as_user=as_user,
                cwd=root,
            )
        shutil.rmtree(root, ignore_errors=True)
