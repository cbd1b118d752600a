"""`scim-bridge reconcile [--dry-run] [--json]`: find what changed in SonarQube behind the bridge's back (a
membership changed in SonarQube's UI, an account a SAML sign-in reactivated, a lost store) and put it right.

One line per difference found, with what was (or, with `--dry-run`, would be) done, then a summary; with
`--json`, one JSON object per line, the summary last. A progress bar goes to stderr when it is a terminal.
Exit 0 when nothing was wrong or everything was repaired (or, dry, could be), 1 when something could not be
repaired or reconcile could not run (SonarQube not UP, the token refused, a running bridge holding the
store), 2 for a wrong setting.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Final, TextIO

from scim_bridge.config import ConfigError
from scim_bridge.provisioning.reconcile import (
    UNRESOLVED,
    Finding,
    ReconcileError,
    reconcile_now,
    succeeded,
    summary,
)
from scim_bridge.sonarqube import SonarQubeConnection, SonarQubeError
from scim_bridge.store import StoreError, StoreLocked, StoreMissing, open_store

if TYPE_CHECKING:
    from scim_bridge.config import BridgeSettings
    from scim_bridge.store import StateStore

BAR_WIDTH: Final = 30


async def run_reconcile(
    settings: BridgeSettings,
    *,
    dry_run: bool,
    as_json: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """The command: reconcile, print, and the exit code (a wrong setting raises `ConfigError`: exit 2)."""
    out = out or sys.stdout
    err = err or sys.stderr
    bar = ProgressBar(err) if err.isatty() else None

    def tell(finding: Finding) -> None:
        if bar is not None:
            bar.clear()
        out.write((json.dumps(finding.as_json()) if as_json else render(finding)) + "\n")
        out.flush()

    try:
        store = await _open_store(settings, dry_run=dry_run)
        try:
            async with await SonarQubeConnection.open(settings) as connection:
                findings = await reconcile_now(
                    connection, store, settings, dry_run=dry_run, on_finding=tell, progress=bar
                )
        finally:
            await store.close()
    except (ReconcileError, SonarQubeError) as exc:
        if bar is not None:
            bar.clear()
        err.write(f"scim-bridge reconcile: {_message(exc)}\n")
        return 1
    if bar is not None:
        bar.clear()
    if as_json:
        document = {"summary": summary(findings), "ok": succeeded(findings), "dry_run": dry_run}
        out.write(json.dumps(document) + "\n")
    else:
        out.write(render_summary(findings, dry_run=dry_run) + "\n")
    out.flush()
    return 0 if succeeded(findings) else 1


async def _open_store(settings: BridgeSettings, *, dry_run: bool) -> StateStore:
    """The store, never created here; a dry run only reads, so it may open it beside a running bridge."""
    try:
        return await open_store(settings.store, create=False, exclusive=not dry_run)
    except StoreLocked as exc:
        raise ReconcileError(
            f"{exc}: the running bridge reconciles by itself (setting reconcile_interval); stop it to "
            "reconcile by hand, or look with --dry-run"
        ) from exc
    except StoreMissing as exc:
        raise ConfigError(
            f"setting 'store' (SCIM_BRIDGE_STORE): {exc}: is it the store `serve` uses? (`serve` creates it)"
        ) from exc
    except StoreError as exc:
        raise ConfigError(f"setting 'store' (SCIM_BRIDGE_STORE): {exc}") from exc


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, SonarQubeError) else str(exc)


# -- output ----------------------------------------------------------------------------------------------


def render(finding: Finding) -> str:
    """One line: outcome, kind, what it is about, what was found, what was (or would be) done, and why not."""
    subject = finding.resource_type.lower()
    if finding.sonar_key is not None:
        subject += f" {finding.sonar_key!r}"
    if finding.scim_id is not None:
        subject += f" (id {finding.scim_id})"
    line = (
        f"[{finding.outcome.replace('_', ' ')}] {finding.kind}: {subject}: {finding.found} → {finding.action}"
    )
    return line if finding.reason is None else f"{line} ({finding.reason})"


def render_summary(findings: list[Finding], *, dry_run: bool) -> str:
    if not findings:
        return "reconcile: SonarQube has what Entra asked for: nothing to repair"
    counts = summary(findings)
    told = ", ".join(
        f"{counts[outcome]} {outcome.replace('_', ' ')}" for outcome in _ORDER if counts[outcome]
    )
    line = f"reconcile: {counts['findings']} difference(s): {told}"
    if dry_run:
        line += " (dry run: nothing was changed)"
    if any(finding.outcome in UNRESOLVED for finding in findings):
        line += "; some need an administrator"
    return line


_ORDER: Final = ("repaired", "would_repair", "skipped", "failed", "unrepairable")


class ProgressBar:
    """`reconcile [#####.....] 12/40` on one terminal line, redrawn in place."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        filled = BAR_WIDTH * done // total if total else BAR_WIDTH
        self._stream.write(f"\rreconcile [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}")
        self._stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Wipe the bar, so that a line written next starts clean (it is redrawn at the next step)."""
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False
