"""Who may provision: `Authorization: Bearer <token>`, checked one of two ways (setting `auth`).

- `sonarqube` (default, SonarQube's own Entra set-up): the bearer token is a SonarQube user token whose
  owner holds "Administer System"; SonarQube is then called with that very token. The verdict is cached
  for `auth_cache_seconds` under the token's SHA-256 hash, so Entra's request bursts cost one check.
- `static`: the bearer token must be one of the configured SCIM tokens (inline or files re-read on change,
  so two can be valid during a rotation); SonarQube is called with the bridge's own `sonar_token`.

Refusals: no bearer token, or a token nobody accepts, is 401 with an RFC 6750 challenge; a valid
SonarQube token of a non-administrator is 403; SonarQube unreachable during the check is 503.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

import structlog

from scim_bridge.config import ConfigError, FileSecret
from scim_bridge.provisioning.translate import DEFAULT_RETRY_AFTER, scim_error
from scim_bridge.scim.errors import ForbiddenError, ScimError, ServiceUnavailableError, UnauthorizedError
from scim_bridge.sonarqube import Caller, SonarQubeError, Unauthorized

if TYPE_CHECKING:
    from collections.abc import Callable

    from scim_bridge.config import BridgeSettings
    from scim_bridge.metrics import Metrics
    from scim_bridge.sonarqube import SonarQubeClient, SonarQubeConnection
    from scim_bridge.sonarqube.deadline import Clock

log = structlog.get_logger("scim_bridge.web")

REALM: Final = "scim-bridge"
CHALLENGE: Final = f'Bearer realm="{REALM}"'
INVALID_TOKEN_CHALLENGE: Final = f'{CHALLENGE}, error="invalid_token"'
CACHE_SIZE: Final = 1024
SERVICE_TOKEN_RECHECK_SECONDS: Final = 30.0  # a refused service token is asked about again after this


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The SonarQube client a request works with, and the login its changes are recorded under."""

    sonar: SonarQubeClient
    actor: str


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Authenticated:
        """Accept `token` or raise the SCIM error that refuses it (401, 403 or 503)."""
        ...

    async def service_token_problem(self) -> str | None:
        """What is wrong with the bridge's own SonarQube token, if it has one (static mode); None when
        nothing is, or when SonarQube cannot tell now."""
        ...

    def refused_later(self, token: str, error: UnauthorizedError | ForbiddenError) -> ScimError:
        """SonarQube refused the token in the middle of a request that `authenticate` had let through (it
        was revoked, or its user lost "Administer System"): forget what was known of it, and say so."""
        ...


def authenticator_for(
    settings: BridgeSettings, connection: SonarQubeConnection, metrics: Metrics | None = None
) -> Authenticator:
    """The authenticator the `auth` setting chooses."""
    if settings.auth == "static":
        return StaticTokenAuth(connection, settings, metrics)
    return SonarQubeTokenAuth(connection, cache_seconds=settings.auth_cache_seconds)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (scheme in any case), else a 401 without an
    error code: RFC 6750 §3.1 keeps it for requests that tried a bearer token."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        reason = "missing" if authorization is None else "malformed"
        log.warning("scim.auth_failed", reason=reason)
        raise UnauthorizedError(
            "send the secret token as 'Authorization: Bearer <token>'", challenge=CHALLENGE
        )
    return token


def token_hash(token: str) -> str:
    """The SHA-256 of a token: what caches key on and, cut short, what logs show instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


class VerdictCache:
    """SonarQube's answer about a token, for `ttl` seconds, keyed by the token's hash; least recently used
    entries go first when `size` is reached."""

    def __init__(self, ttl: float, *, size: int = CACHE_SIZE, clock: Clock = time.monotonic) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Caller]] = OrderedDict()

    def get(self, key: str) -> Caller | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, caller = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return caller

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def put(self, key: str, caller: Caller) -> None:
        if self._ttl <= 0:
            return
        self._entries[key] = (self._clock() + self._ttl, caller)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


class SonarQubeTokenAuth:
    """The bearer token is a SonarQube token of an administrator; SonarQube is called with it."""

    def __init__(
        self, connection: SonarQubeConnection, *, cache_seconds: float, clock: Clock = time.monotonic
    ) -> None:
        self._connection = connection
        self._verdicts = VerdictCache(cache_seconds, clock=clock)

    async def authenticate(self, token: str) -> Authenticated:
        key = token_hash(token)
        caller = self._verdicts.get(key)
        if caller is None:
            caller = await self._ask_sonarqube(token, key)
            # Non-administrators are cached too: their next attempts are refused without asking again.
            self._verdicts.put(key, caller)
        if not caller.is_admin:
            log.warning("scim.auth_failed", reason="not_admin", login=caller.login, token_hash=key[:12])
            raise ForbiddenError(
                f'the token\'s user {caller.login!r} lacks the "Administer System" permission in SonarQube'
            )
        return Authenticated(client_for(self._connection, token), caller.login)

    async def service_token_problem(self) -> str | None:
        return None  # the bridge has no token of its own: each request brings one

    def refused_later(self, token: str, error: UnauthorizedError | ForbiddenError) -> ScimError:
        self._verdicts.forget(token_hash(token))
        return error

    async def _ask_sonarqube(self, token: str, key: str) -> Caller:
        try:
            return await client_for(self._connection, token).current_user()
        except Unauthorized as exc:
            log.warning("scim.auth_failed", reason="rejected_by_sonarqube", token_hash=key[:12])
            raise UnauthorizedError(
                "SonarQube does not accept the token: it is unknown, expired or its user is deactivated",
                challenge=INVALID_TOKEN_CHALLENGE,
            ) from exc
        except SonarQubeError as exc:  # unavailable or answering oddly: "try again later"
            raise scim_error(exc) from exc


class StaticTokenAuth:
    """The bearer token must be a configured SCIM token; SonarQube is called with the bridge's own token."""

    def __init__(
        self,
        connection: SonarQubeConnection,
        settings: BridgeSettings,
        metrics: Metrics | None = None,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self._connection = connection
        self._metrics = metrics
        self._clock = clock
        self._inline_tokens = [token.get_secret_value() for token in settings.scim_tokens]
        self._token_files = [FileSecret(path) for path in settings.scim_token_files]
        self._service_token = _service_token_source(settings)
        # What SonarQube last said of the service token, by its hash: its owner, or why it refused it (asked
        # again after a while, or at once when the token file brings another token).
        self._owner: tuple[str, Caller] | None = None
        self._refusal: tuple[str, str, float] | None = None  # (hash, reason, clock time to ask again)

    async def authenticate(self, token: str) -> Authenticated:
        if not self._accepts(token):
            log.warning("scim.auth_failed", reason="unknown_token", token_hash=token_hash(token)[:12])
            raise UnauthorizedError(
                "the token is not a configured SCIM token", challenge=INVALID_TOKEN_CHALLENGE
            )
        service_token = self._service_token()
        owner = await self._owner_of(service_token)
        return Authenticated(client_for(self._connection, service_token), owner.login)

    async def service_token_problem(self) -> str | None:
        try:
            await self._owner_of(self._service_token())
        except ServiceTokenUnusableError as exc:
            return exc.detail
        except ScimError:
            return None  # SonarQube cannot say now; readiness reports SonarQube itself
        return None

    def refused_later(self, token: str, error: UnauthorizedError | ForbiddenError) -> ScimError:  # noqa: ARG002 - the SCIM token is not what SonarQube refused
        # The SCIM client's token is fine: what SonarQube refuses is the bridge's own.
        key = token_hash(self._service_token())
        reason = "SonarQube no longer accepts it" if isinstance(error, UnauthorizedError) else error.detail
        self._owner = None
        return self._unusable(key, reason)

    def _accepts(self, token: str) -> bool:
        # Digests have one length, and every known token is compared: the time taken tells nothing about
        # which token came close, or how long the configured tokens are.
        presented = hashlib.sha256(token.encode()).digest()
        matches = [
            hmac.compare_digest(presented, hashlib.sha256(known.encode()).digest())
            for known in self._known_tokens()
        ]
        return any(matches)

    def _known_tokens(self) -> list[str]:
        tokens = list(self._inline_tokens)
        for secret in self._token_files:
            try:
                tokens.append(secret.get())
            except ConfigError as exc:
                # One unreadable file (mid-rotation, say) must not lock out the other tokens.
                log.warning("scim.token_file_unreadable", reason=str(exc))
        return [token for token in tokens if token]

    async def _owner_of(self, service_token: str) -> Caller:
        """The owner of the bridge's token, asked once per token; a refusal is asked again after a while."""
        key = token_hash(service_token)
        if self._owner is not None and self._owner[0] == key:
            return self._owner[1]
        if self._refusal is not None and self._refusal[0] == key and self._clock() < self._refusal[2]:
            raise _unusable_error(self._refusal[1])
        try:
            owner = await client_for(self._connection, service_token).current_user()
        except Unauthorized as exc:
            raise self._unusable(key, "SonarQube does not accept it") from exc
        except SonarQubeError as exc:  # unavailable or answering oddly: "try again later"
            raise scim_error(exc) from exc
        if not owner.is_admin:
            raise self._unusable(key, f'its user {owner.login!r} lacks "Administer System"')
        self._owner, self._refusal = (key, owner), None
        if self._metrics is not None:
            self._metrics.service_token_valid.set(1)
        return owner

    def _unusable(self, key: str, reason: str) -> ServiceTokenUnusableError:
        if self._refusal is None or self._refusal[:2] != (key, reason):
            log.error("scim.service_token_unusable", reason=reason)
        self._refusal = (key, reason, self._clock() + SERVICE_TOKEN_RECHECK_SECONDS)
        if self._metrics is not None:
            self._metrics.service_token_valid.set(0)
        return _unusable_error(reason)


def _unusable_error(reason: str) -> ServiceTokenUnusableError:
    return ServiceTokenUnusableError(
        f"the bridge's own SonarQube token (sonar_token / sonar_token_file) is unusable: {reason}",
        retry_after=DEFAULT_RETRY_AFTER,
    )


def client_for(connection: SonarQubeConnection, token: str) -> SonarQubeClient:
    """The connection's client for `token`, or the SCIM error that says why there is none now (503 while
    SonarQube is not UP)."""
    try:
        return connection.client(token)
    except SonarQubeError as exc:
        raise scim_error(exc) from exc


class ServiceTokenUnusableError(ServiceUnavailableError):
    """The bridge's own token is refused. The SCIM client's credentials are fine: a 401 or 403 would send
    its administrator looking in the wrong place, and make Entra quarantine the job instead of retrying
    once the token is replaced."""


def _service_token_source(settings: BridgeSettings) -> Callable[[], str]:
    if settings.sonar_token_file is not None:
        return FileSecret(settings.sonar_token_file).get
    if settings.sonar_token is None:
        raise ConfigError("auth 'static' needs sonar_token or sonar_token_file to call SonarQube")
    return settings.sonar_token.get_secret_value
