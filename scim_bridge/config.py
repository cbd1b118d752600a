"""Settings: command-line flags over `SCIM_BRIDGE_*` environment over an optional TOML file over defaults.

Settings are loaded once by the command line and passed down; nothing reads them globally. A wrong value
fails at start with the setting's name, its environment variable and the reason (`ConfigError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AnyHttpUrl,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from scim_bridge.store.errors import StoreError
from scim_bridge.store.url import check_store_url

ENV_PREFIX = "SCIM_BRIDGE_"

SonarApi = Literal["auto", "v1", "v2"]
AuthMode = Literal["sonarqube", "static"]
SamlLink = Literal["auto", "on", "off"]
OnOff = Literal["on", "off"]

PortNumber = Annotated[int, Field(ge=0, le=65535)]
PositiveSeconds = Annotated[float, Field(gt=0, le=3600)]


class ConfigError(Exception):
    """A setting is missing or wrong; the message names each setting and the rule it breaks."""


class FileSecret:
    """A secret read from a file and re-read when the file changes (Kubernetes rotates mounted secrets)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._value = ""

    def get(self) -> str:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._value = self.path.read_text(encoding="utf-8").strip()
                self._stamp = stamp
        except OSError as exc:
            raise ConfigError(f"secret file {self.path}: {exc.strerror}") from exc
        return self._value


class SettingsBase(BaseSettings):
    """Loading rules: flags > environment > TOML file > defaults; unknown keys refused."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)
    toml_file: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env files: the environment is explicit
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - secrets come from *_file settings
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_file))
        return tuple(sources)


class SonarQubeSettings(SettingsBase):
    """How scim-bridge reaches SonarQube."""

    sonar_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:9000"), description="SonarQube's base URL (a path prefix is fine)"
    )
    sonar_api: SonarApi = Field(
        "auto",
        description="v1 or v2 to override the Web API chosen from SonarQube's version (v2 needs 10.4+)",
    )
    sonar_token: SecretStr | None = Field(
        None, description="static auth: the SonarQube token the bridge uses"
    )
    sonar_token_file: Path | None = Field(
        None, description="a file holding sonar_token, re-read when it changes"
    )
    sonar_connect_timeout: PositiveSeconds = Field(
        5.0, description="seconds to open a connection to SonarQube"
    )
    sonar_read_timeout: PositiveSeconds = Field(10.0, description="seconds to wait for one SonarQube answer")
    sonar_deadline: PositiveSeconds = Field(
        25.0, description="seconds all SonarQube retries of one SCIM request may take (Entra gives up at 60)"
    )
    sonar_max_connections: Annotated[int, Field(ge=1, le=1000)] = Field(
        32, description="connections to SonarQube at most"
    )

    @model_validator(mode="after")
    def _one_token_source(self) -> SonarQubeSettings:
        if self.sonar_token is not None and self.sonar_token_file is not None:
            raise ValueError("set sonar_token or sonar_token_file, not both")
        if self.sonar_token_file is not None and not self.sonar_token_file.is_file():
            raise ValueError(f"sonar_token_file {self.sonar_token_file} is not a readable file")
        return self


class BridgeSettings(SonarQubeSettings):
    """`scim-bridge serve`: the SCIM service in front of SonarQube."""

    host: str = Field("127.0.0.1", description="listen address")
    port: PortNumber = Field(9080, description="listen port")
    base_path: Annotated[str, Field(pattern=r"^(/[A-Za-z0-9._~-]+)+$")] = Field(
        "/api/scim/v2", description="where the SCIM service answers"
    )
    store: str = Field(
        "sqlite:///state/scim-bridge.db",
        description="state store URL: sqlite:///path.db, or postgresql://USER[:PASSWORD]@HOST[:PORT]/DB",
    )
    auth: AuthMode = Field(
        "sonarqube",
        description="sonarqube: the bearer token is a SonarQube admin token, checked with SonarQube and used "
        "for the calls (SonarQube's own Entra set-up); static: it must be one of scim_tokens, and SonarQube "
        "is called with sonar_token",
    )
    scim_tokens: list[SecretStr] = Field(
        default_factory=list, description="static auth: the accepted bearer tokens (a JSON list)"
    )
    scim_token_files: list[Path] = Field(
        default_factory=list, description="static auth: files holding one accepted token each, re-read"
    )
    auth_cache_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        60.0, description="how long SonarQube's verdict on a token is trusted"
    )
    saml_link: SamlLink = Field(
        "auto", description="link users to their SAML identity: auto (when SonarQube has SAML on), on, off"
    )
    protected_logins: list[str] = Field(
        default_factory=lambda: ["admin"],
        description="accounts SCIM never adopts, links, changes, deletes or removes from groups (nor the "
        "token's owner)",
    )
    adopt_local_accounts: bool = Field(
        default=False,
        description="let Entra take over local SonarQube accounts (with a password) whose login matches a "
        "userName: they are linked to SAML and lose their password",
    )
    on_delete: Literal["deactivate", "anonymize"] = Field(
        "deactivate",
        description="what SCIM DELETE does to a SonarQube account: deactivate it, or also anonymise it "
        "(SonarQube 9.7+: its login and name are gone for good)",
    )
    public_url: AnyHttpUrl | None = Field(
        None,
        description="the bridge's address as SCIM clients reach it (https://sonar.example.com), for Location "
        "and meta.location; without it, the request's own, forwarded headers believed from trusted_proxies",
    )
    reconcile_interval: Annotated[float, Field(ge=0, le=7 * 24 * 3600)] = Field(
        0,
        description="seconds between reconcile runs inside serve (0: never; `scim-bridge reconcile` by hand)",
    )
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = Field(
        1024 * 1024, description="larger request bodies are refused with 413"
    )
    proxy: OnOff = Field(
        "on", description="on: every path outside base_path streams through to SonarQube; off: only SCIM"
    )
    proxy_timeout: PositiveSeconds = Field(
        120.0, description="seconds SonarQube may stay silent on a proxied request before it is a 504"
    )
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="addresses (CIDR) whose X-Forwarded-For/Proto/Host are believed, e.g. the ingress",
    )
    admin_host: str = Field("127.0.0.1", description="listen address of /healthz, /readyz and /metrics")
    admin_port: PortNumber = Field(9081, description="listen port of /healthz, /readyz and /metrics")
    tls_cert: Path | None = Field(
        None, description="PEM certificate chain: HTTPS on port (re-read on change)"
    )
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert (re-read on change)")
    shutdown_grace: Annotated[float, Field(ge=0, le=600)] = Field(
        20.0, description="seconds in-flight requests may take to finish after SIGTERM"
    )

    @field_validator("store")
    @classmethod
    def _a_store_url(cls, url: str) -> str:
        try:
            return check_store_url(url)
        except StoreError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _tls_is_complete(self) -> BridgeSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("set tls_cert and tls_key together")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not path.is_file():
                raise ValueError(f"{path} is not a readable file")
        return self

    @model_validator(mode="after")
    def _static_auth_is_complete(self) -> BridgeSettings:
        if self.auth == "static":
            if not self.scim_tokens and not self.scim_token_files:
                raise ValueError("auth 'static' needs scim_tokens or scim_token_files")
            if self.sonar_token is None and self.sonar_token_file is None:
                raise ValueError("auth 'static' needs sonar_token or sonar_token_file to call SonarQube")
        for path in self.scim_token_files:
            if not path.is_file():
                raise ValueError(f"scim_token_files: {path} is not a readable file")
        return self

    @model_validator(mode="after")
    def _reconcile_has_a_token(self) -> BridgeSettings:
        # SCIM requests bring their own token; the periodic runs have none but the bridge's.
        if self.reconcile_interval > 0 and self.sonar_token is None and self.sonar_token_file is None:
            raise ValueError("reconcile_interval needs sonar_token or sonar_token_file (an administrator's)")
        return self


S = TypeVar("S", bound=SettingsBase)


def load_settings(cls: type[S], *, config_file: Path | None = None, **flags: Any) -> S:
    """Build settings from flags (None means "not given"), the environment and an optional TOML file."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    given = {name: value for name, value in flags.items() if value is not None}
    bound: type[S] = type(cls.__name__, (cls,), {"toml_file": config_file})
    try:
        return bound(**given)
    except ValidationError as exc:
        raise ConfigError(_describe(cls, exc)) from exc


def _describe(cls: type[SettingsBase], exc: ValidationError) -> str:
    prefix = str(cls.model_config.get("env_prefix", ENV_PREFIX))
    lines = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a rule between settings: its message names them
            lines.append(message)
            continue
        name = ".".join(str(part) for part in error["loc"])
        lines.append(f"setting '{name}' ({prefix}{name.split('.')[0].upper()}): {message}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
