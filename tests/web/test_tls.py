"""HTTPS on the main listener (`tls_cert`, `tls_key`): TLS 1.2 at least, and a rotated certificate served
without a restart (web/tls.py)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import warnings
from typing import TYPE_CHECKING

import aiohttp
import pytest
import trustme
from pydantic import AnyHttpUrl
from yarl import URL

from scim_bridge.config import BridgeSettings, ConfigError
from scim_bridge.serving import RunningBridge
from scim_bridge.web.tls import ServerCertificate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


def closed_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/"


def issue(ca: trustme.CA, tmp_path: Path) -> tuple[Path, Path, trustme.LeafCert]:
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    leaf.private_key_pem.write_to_path(str(key))
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    return cert, key, leaf


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def running(ca: trustme.CA, tmp_path: Path) -> AsyncIterator[RunningBridge]:
    cert, key, _ = issue(ca, tmp_path)
    settings = BridgeSettings(
        port=0,
        admin_port=0,
        sonar_url=AnyHttpUrl(closed_url()),  # SonarQube absent: the bridge serves anyway
        store=f"sqlite:///{tmp_path / 'state.db'}",
        tls_cert=cert,
        tls_key=key,
        shutdown_grace=0,
    )
    bridge = await RunningBridge.start(settings)
    yield bridge
    await bridge.stop()


def client_context(ca: trustme.CA, *, newest: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if newest is not None:
        with warnings.catch_warnings():  # old TLS versions are deprecated: that is what is tested
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            context.maximum_version = newest
    return context


async def served_certificate(running: RunningBridge, context: ssl.SSLContext) -> bytes:
    """The DER certificate a new TLS connection to the bridge is shown (after checking the bridge answers
    over it)."""
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http,
        http.get(f"{running.url}/api/scim/v2/ServiceProviderConfig") as resp,
    ):
        assert resp.status == 401  # served over HTTPS: the bearer token is what is missing
    url = URL(running.url)
    _reader, writer = await asyncio.open_connection(url.host, url.port, ssl=context)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        assert ssl_object.version() in {"TLSv1.2", "TLSv1.3"}
        der: bytes = ssl_object.getpeercert(binary_form=True)
        return der
    finally:
        writer.close()
        await writer.wait_closed()


async def test_https_is_served(running: RunningBridge, ca: trustme.CA) -> None:
    """The main listener speaks HTTPS with the configured certificate; its URL says https."""
    assert running.url.startswith("https://")
    assert await served_certificate(running, client_context(ca))


async def test_tls_older_than_1_2_is_refused(running: RunningBridge, ca: trustme.CA) -> None:
    """A client that offers nothing newer than TLS 1.1 gets no connection."""
    with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
        await served_certificate(running, client_context(ca, newest=ssl.TLSVersion.TLSv1_1))


async def test_a_rotated_certificate_is_served_without_a_restart(
    running: RunningBridge, ca: trustme.CA, tmp_path: Path
) -> None:
    """New files in place: after the next look, new connections get the new certificate."""
    before = await served_certificate(running, client_context(ca))
    issue(ca, tmp_path)
    certificate = running._certificate
    assert certificate is not None
    assert certificate.reload() is True
    assert certificate.reload() is False  # unchanged files are not loaded again
    assert await served_certificate(running, client_context(ca)) != before


def test_unreadable_files_are_a_setting_error(tmp_path: Path) -> None:
    """A certificate that does not load stops the start with the settings' names."""
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    with pytest.raises(ConfigError, match="tls_cert"):
        ServerCertificate(broken, broken)
