"""HTTPS on the main listener (`tls_cert`, `tls_key`): TLS 1.2 at least, and the files re-read when they
change, so that a rotated certificate (cert-manager, a renewed one) is served without a restart."""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Final

import structlog

from scim_bridge.config import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

log = structlog.get_logger("scim_bridge.web")

RELOAD_CHECK_SECONDS: Final = 10.0


class ServerCertificate:
    """An `ssl.SSLContext` for the listener, loaded from PEM files and reloaded in place when they change:
    connections opened afterwards get the new certificate, open ones keep theirs."""

    def __init__(self, cert: Path, key: Path) -> None:
        self._cert = cert
        self._key = key
        self._stamp: tuple[int, ...] | None = None
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            self.reload()
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"settings 'tls_cert' / 'tls_key': cannot load them: {exc}") from exc

    def reload(self) -> bool:
        """Load the files again if either changed since the last load; whether they did."""
        cert, key = self._cert.stat(), self._key.stat()
        stamp = (cert.st_mtime_ns, cert.st_size, key.st_mtime_ns, key.st_size)
        if stamp == self._stamp:
            return False
        self.context.load_cert_chain(self._cert, self._key)
        self._stamp = stamp
        return True

    async def watch(self, interval: float = RELOAD_CHECK_SECONDS) -> None:
        """Reload changed files every `interval` seconds until cancelled; a broken new pair is logged and
        the certificate in use kept."""
        while True:
            await asyncio.sleep(interval)
            try:
                if self.reload():
                    log.info("tls.certificate_reloaded")
            except (OSError, ssl.SSLError) as exc:
                log.error("tls.certificate_reload_failed", reason=str(exc))  # noqa: TRY400 - no traceback needed
