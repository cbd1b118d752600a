"""`scim-bridge serve` refuses to start on a wrong setting or a taken port; `scim-bridge demo` works."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
from typing import TYPE_CHECKING

import pytest
import structlog

from scim_bridge.cli import main
from scim_bridge.store import open_store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import aiohttp


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The command runs in an empty directory, and leaves structlog as it found it."""
    monkeypatch.chdir(tmp_path)
    yield
    structlog.reset_defaults()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("argv", "environment", "named"),
    [
        (["--port", "70000"], {}, "setting 'port' (SCIM_BRIDGE_PORT)"),
        ([], {"SCIM_BRIDGE_AUTH": "ldap"}, "setting 'auth' (SCIM_BRIDGE_AUTH)"),
        (["--auth", "static"], {}, "auth 'static' needs scim_tokens"),
        ([], {"SCIM_BRIDGE_MAX_BODY_BYTES": "10"}, "setting 'max_body_bytes'"),
        (["--store", "mysql://db/scim"], {}, "setting 'store' (SCIM_BRIDGE_STORE)"),
        (["--config", "missing.toml"], {}, "config file missing.toml does not exist"),
    ],
    ids=["port-flag", "auth-env", "static-without-tokens", "body-limit-env", "store-url", "config-file"],
)
def test_serve_refuses_a_wrong_setting(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    environment: dict[str, str],
    named: str,
) -> None:
    """A wrong setting, by flag, environment or file, stops `serve` with exit code 2 and names it."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    status = main(["serve", "--sonar-url", f"http://127.0.0.1:{closed_port()}", *argv])

    assert status == 2
    assert named in capsys.readouterr().err


def test_serve_on_a_taken_port_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    """A port another process holds stops `serve` with exit code 1 and says which address."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        status = main(["serve", "--port", str(port), "--admin-port", "0", "--store", "sqlite://:memory:"])
    assert status == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


async def test_serve_on_a_store_another_process_holds_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 3: a second bridge on the same SQLite file refuses to start (exit 1), naming the setting and
    the other process; the first one keeps the file."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    holder = await open_store(url)
    try:
        status = await asyncio.to_thread(
            main,
            [
                "serve",
                "--port",
                "0",
                "--admin-port",
                "0",
                "--store",
                url,
                "--sonar-url",
                "http://127.0.0.1:9",
            ],
        )
    finally:
        await holder.close()
    assert status == 1
    err = capsys.readouterr().err
    assert "setting 'store' (SCIM_BRIDGE_STORE)" in err
    assert "another scim-bridge process" in err


async def read_banner(stdout: asyncio.StreamReader) -> str:
    lines: list[str] = []
    while not lines or not lines[-1].startswith("Press Ctrl-C"):
        line = await stdout.readline()
        assert line, "the demo stopped before printing its banner"
        lines.append(line.decode().strip())
    return "\n".join(lines)


async def test_demo_prints_working_instructions(http: aiohttp.ClientSession) -> None:
    """`demo` prints the Tenant URL, the token and curl commands that work, and stops cleanly on Ctrl-C."""
    demo = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scim_bridge",
        "--log-format",
        "json",
        "demo",
        "--port",
        "0",
        "--sonar-port",
        "0",
        "--admin-port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert demo.stdout is not None
        async with asyncio.timeout(10):
            banner = await read_banner(demo.stdout)
        token = re.search(r"Secret Token: (\S+)", banner)
        query_url = re.search(r"curl .* '(http://\S+/Users\?filter=\S+)'", banner)
        create = re.search(r"-d '(\{.*\})' (http://\S+/Users)", banner)
        assert token is not None
        assert query_url is not None
        assert create is not None
        assert re.search(r"Tenant URL: +http://127\.0\.0\.1:\d+/api/scim/v2\n", banner)
        headers = {"Authorization": f"Bearer {token[1]}"}

        async with http.get(query_url[1], headers=headers) as resp:
            first = await resp.json(content_type=None)
            assert (resp.status, first.get("totalResults")) == (200, 0), first
        async with http.post(
            create[2], data=create[1], headers={**headers, "Content-Type": "application/scim+json"}
        ) as resp:
            assert resp.status == 201
            assert (await resp.json(content_type=None))["userName"] == json.loads(create[1])["userName"]
        async with http.get(query_url[1], headers=headers) as resp:
            assert (await resp.json(content_type=None))["totalResults"] == 1
        for url in re.findall(r"curl (http://\S+)\n", banner + "\n"):
            async with http.get(url) as resp:
                assert resp.status == 200, url  # SonarQube through the bridge, readiness, metrics

        demo.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            assert await demo.wait() == 0
    finally:
        if demo.returncode is None:
            demo.kill()
            await demo.wait()
