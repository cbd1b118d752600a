"""`scim-bridge check`: would provisioning work with these settings, against this SonarQube, now?

Each verdict says what was found and, when something is wrong, what to do about it. Errors make the command
fail (exit 1); warnings do not: they name things that work but will surprise (SAML off, SAML group sync).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from scim_bridge.config import FileSecret
from scim_bridge.sonarqube import SonarQubeConnection, SonarQubeError, Unauthorized
from scim_bridge.store import StoreError, StoreMissing, open_store

if TYPE_CHECKING:
    from scim_bridge.config import BridgeSettings
    from scim_bridge.sonarqube import SonarQubeClient

Level = Literal["ok", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """One finding: what it is about, how it stands, what was found, and what to do when it is not ok."""

    subject: str
    level: Level
    found: str
    advice: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return asdict(self)


async def run_checks(settings: BridgeSettings) -> list[Verdict]:
    """Every verdict, in the order an administrator would fix things."""
    verdicts = [_configuration(settings), await _store(settings)]
    connection = await SonarQubeConnection.open(settings)
    try:
        state = connection.state
        if not state.up:
            advice = "wait for SonarQube to be UP, or fix sonar_url (SCIM_BRIDGE_SONAR_URL)"
            return [*verdicts, Verdict("sonarqube", "error", state.detail, advice)]
        capabilities = connection.capabilities
        dialect = "?" if capabilities is None else capabilities.dialect.value
        verdicts.append(
            Verdict(
                "sonarqube",
                "ok",
                f"{state.detail} at {settings.sonar_url}; the bridge speaks its {dialect} API",
            )
        )
        token = _token(settings)
        if token is None:
            advice = "pass the token Entra will use: --sonar-token or SCIM_BRIDGE_SONAR_TOKEN(_FILE)"
            return [*verdicts, Verdict("token", "error", "no SonarQube token to test", advice)]
        client = connection.client(token)
        token_verdict = await _token_verdict(client)
        verdicts.append(token_verdict)
        if token_verdict.level == "ok":
            verdicts += [await _edition(client), *await _saml(settings, client)]
    finally:
        await connection.close()
    return verdicts


def succeeded(verdicts: list[Verdict]) -> bool:
    return all(verdict.level != "error" for verdict in verdicts)


def render(verdicts: list[Verdict]) -> str:
    """Human output: one line a verdict, then what to do, indented."""
    marks = {"ok": "ok  ", "warning": "WARN", "error": "FAIL"}
    lines = []
    for verdict in verdicts:
        lines.append(f"[{marks[verdict.level]}] {verdict.subject}: {verdict.found}")
        if verdict.advice:
            lines.append(f"       → {verdict.advice}")
    lines.append("provisioning would work" if succeeded(verdicts) else "provisioning would NOT work")
    return "\n".join(lines)


# -- the checks ----------------------------------------------------------------------------------------------


def _configuration(settings: BridgeSettings) -> Verdict:
    scheme = settings.store.partition("://")[0]
    tls = "HTTPS" if settings.tls_cert else "HTTP"
    found = (
        f"valid: auth {settings.auth}, saml_link {settings.saml_link}, store {scheme}, "
        f"proxy {settings.proxy}, {tls} on {settings.host}:{settings.port}, "
        f"admin on {settings.admin_host}:{settings.admin_port}"
    )
    return Verdict("configuration", "ok", found)


async def _store(settings: BridgeSettings) -> Verdict:
    try:
        store = await open_store(settings.store, create=False, exclusive=False)
    except StoreMissing as exc:
        return Verdict("store", "ok", f"{exc} yet: `serve` creates it")
    except StoreError as exc:
        return Verdict(
            "store", "error", str(exc), "fix store (SCIM_BRIDGE_STORE) or its directory's permissions"
        )
    try:
        await store.check_writable()
    except StoreError as exc:
        return Verdict("store", "error", f"not writable: {exc}", "check the file's owner and free disk space")
    finally:
        await store.close()
    return Verdict("store", "ok", "reachable, schema up to date, writable")


def _token(settings: BridgeSettings) -> str | None:
    if settings.sonar_token_file is not None:
        return FileSecret(settings.sonar_token_file).get()
    return None if settings.sonar_token is None else settings.sonar_token.get_secret_value()


async def _token_verdict(client: SonarQubeClient) -> Verdict:
    try:
        caller = await client.current_user()
    except Unauthorized:
        return Verdict(
            "token",
            "error",
            "SonarQube does not accept the token (unknown, expired or its user deactivated)",
            "generate a new user token of an administrator in SonarQube (My Account → Security)",
        )
    except SonarQubeError as exc:
        return Verdict(
            "token", "error", f"SonarQube could not check it: {exc}", "try again when SonarQube is up"
        )
    if not caller.is_admin:
        return Verdict(
            "token",
            "error",
            f"the token's user {caller.login!r} may not administer SonarQube",
            "use a token of a user with the global 'Administer System' permission",
        )
    return Verdict("token", "ok", f"belongs to {caller.login!r}, who may administer SonarQube")


async def _edition(client: SonarQubeClient) -> Verdict:
    try:
        edition = await client.edition()
    except SonarQubeError:
        edition = None
    return Verdict("edition", "ok", f"{edition or 'an unknown'} edition: SCIM works the same on every one")


async def _saml(settings: BridgeSettings, client: SonarQubeClient) -> list[Verdict]:
    try:
        saml = await client.saml_settings()
    except SonarQubeError as exc:
        return [Verdict("saml", "error", f"SonarQube's SAML settings could not be read: {exc}")]
    wanted = settings.saml_link != "off"
    verdicts = []
    if saml.enabled and wanted:
        verdicts.append(
            Verdict("saml", "ok", "SAML is on: provisioned users are linked to their SAML identity")
        )
    elif saml.enabled:
        verdicts.append(
            Verdict(
                "saml",
                "warning",
                "SAML is on but saml_link is off: provisioned users are not linked",
                "users may get a second account at their first SAML sign-in: set saml_link auto",
            )
        )
    elif settings.saml_link == "on":
        verdicts.append(
            Verdict(
                "saml",
                "warning",
                "saml_link is on but SonarQube's SAML authentication is off: SonarQube will refuse the links",
                "turn SAML on in SonarQube (Administration → Authentication) or set saml_link auto",
            )
        )
    else:
        verdicts.append(Verdict("saml", "ok", "SAML is off: users are provisioned without a SAML link"))
    if saml.enabled and saml.group_attribute:
        verdicts.append(
            Verdict(
                "saml",
                "warning",
                f"SAML group synchronisation is on (attribute {saml.group_attribute!r}): SonarQube rewrites "
                "each user's groups at sign-in, undoing memberships Entra provisions",
                "clear 'Group attribute' in SonarQube's SAML settings when Entra provisions groups",
            )
        )
    return verdicts
