"""Who may provision: `Authorization: Bearer <token>`, checked one of two ways (setting `auth`).

- `sonarqube` (default, SonarQube's own Entra set-up): the bearer token is a SonarQube user token whose
  owner holds "Administer System"; SonarQube is then called with that very token. The verdict is cached
  for `auth_cache_seconds` under the token's SHA-256 hash, so Entra's request bursts cost one check.
- `static`: the bearer token must be one of the configured SCIM tokens (inline or files re-read on change,
  so two can be valid during a rotation); SonarQube is called with the bridge's own `sonar_token`.

Refusals: no bearer token, or a token nobody accepts, is 401 with an RFC 6750 challenge; a valid
SonarQube token of a non-administrator is 403; a client address with too many refused tokens is 429;
SonarQube unreachable during the check, too busy a check, or an unusable (or unreadable) token of the
bridge's own is 503.

Nobody may make the bridge call SonarQube for nothing. Limits (constants of this module, not settings):

- `REJECTION_CACHE_SECONDS` (30 s, at most `auth_cache_seconds`): a token SonarQube refused (401) is
  refused again without asking, keyed by its hash, `CACHE_SIZE` (1 024) tokens at most, least recently used
  first out.
- `VERIFICATION_SLOTS` (4): SonarQube is asked about at most this many tokens at once; a request waits for
  a free slot within its own SonarQube deadline (`sonar_deadline`), then gets a 503 with `Retry-After:
  VERIFICATION_RETRY_AFTER` (5 s). A request that waited finds the verdict another request got for the same
  token, so a burst with a new token costs one call.
- `FAILURE_LIMIT` failures in `FAILURE_WINDOW_SECONDS` (20 in 60 s) from one client address (an IPv6 client
  by its /64): its further requests are 429 with `Retry-After` until the oldest of them is out of the
  window, without asking SonarQube. A failure is a token refused (401 `invalid_token`: by SonarQube, by the
  cache of refusals, or not a static SCIM token); a missing or malformed header costs nothing and does not
  count. A token known to be good (a cached verdict, a static SCIM token) is never limited. The address is
  the peer's, or a trusted proxy's `X-Forwarded-For` (`forwarded.py`); `TRACKED_CLIENTS` (10 000) addresses
  are remembered at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Generic, Protocol, TypeVar

import structlog

from scim_bridge.config import ConfigError, FileSecret
from scim_bridge.provisioning.translate import DEFAULT_RETRY_AFTER, scim_error
from scim_bridge.scim.errors import (
    ForbiddenError,
    ScimError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
)
from scim_bridge.sonarqube import Caller, SonarQubeError, Unauthorized
from scim_bridge.sonarqube.deadline import current_deadline

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

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
REJECTION_CACHE_SECONDS: Final = 30.0
"""How long a token SonarQube refused is refused without asking again (at most auth_cache_seconds)."""
VERIFICATION_SLOTS: Final = 4
"""Tokens SonarQube is asked about at once, at most (a small share of sonar_max_connections)."""
VERIFICATION_RETRY_AFTER: Final = 5
"""Retry-After of the 503 when no verification slot freed up within the request's deadline."""
FAILURE_LIMIT: Final = 20
"""Refused tokens from one client address within FAILURE_WINDOW_SECONDS before it gets 429s."""
FAILURE_WINDOW_SECONDS: Final = 60.0
TRACKED_CLIENTS: Final = 10_000
"""Client addresses whose failures are remembered, at most (least recently failed first out)."""
_IPV6_CLIENT_PREFIX: Final = 64  # one IPv6 client commonly holds a whole /64

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The SonarQube client a request works with, and the login its changes are recorded under."""

    sonar: SonarQubeClient
    actor: str


class Authenticator(Protocol):
    async def authenticate(self, token: str, *, client: str | None = None) -> Authenticated:
        """Accept `token`, presented from the address `client` (None: unknown), or raise the SCIM error that
        refuses it (401, 403, 429 or 503)."""
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


class TtlCache(Generic[V]):
    """Values for `ttl` seconds, keyed by a token's hash; least recently used entries go first when `size`
    is reached."""

    def __init__(self, ttl: float, *, size: int = CACHE_SIZE, clock: Clock = time.monotonic) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def put(self, key: str, value: V) -> None:
        if self._ttl <= 0:
            return
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


class VerdictCache(TtlCache[Caller]):
    """SonarQube's answer about a token (who owns it), for `ttl` seconds, keyed by the token's hash."""


class FailureLimiter:
    """Refused tokens per client address: after `limit` within `window` seconds, the address is refused with
    429 until the oldest of them is older than `window`. An IPv6 address counts by its /64; at most `size`
    addresses are remembered, the one that failed least recently going first."""

    def __init__(
        self,
        *,
        limit: int = FAILURE_LIMIT,
        window: float = FAILURE_WINDOW_SECONDS,
        size: int = TRACKED_CLIENTS,
        clock: Clock = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window = window
        self._size = size
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, client: str | None) -> None:
        """Raise the 429 that refuses `client` while it is over the limit."""
        wait = self.retry_after(client)
        if wait is not None:
            raise TooManyRequestsError(
                f"too many refused tokens from this address: at most {self._limit} in "
                f"{self._window:g} seconds; retry after {wait} seconds with a valid token",
                retry_after=wait,
            )

    def retry_after(self, client: str | None) -> int | None:
        """Whole seconds until `client` may try again, or None when it is not over the limit."""
        if client is None:
            return None
        failures = self._recent(_client_key(client))
        if len(failures) < self._limit:
            return None
        return max(1, math.ceil(failures[0] + self._window - self._clock()))

    def record(self, client: str | None) -> None:
        """Count one refused token from `client` (nothing when the address is unknown)."""
        if client is None:
            return
        key = _client_key(client)
        failures = self._recent(key)
        reached = len(failures) == self._limit - 1  # this failure starts the limit (logged once)
        failures.append(self._clock())
        self._failures[key] = failures
        self._failures.move_to_end(key)
        while len(self._failures) > self._size:
            self._failures.popitem(last=False)
        if reached:
            log.warning(
                "scim.auth_rate_limited",
                client=key,
                failures=self._limit,
                window_seconds=self._window,
                retry_after=self.retry_after(client),
            )

    def _recent(self, key: str) -> deque[float]:
        """The failures of `key` still inside the window (the last `limit` of them), oldest first."""
        failures = self._failures.get(key)
        if failures is None:
            return deque(maxlen=self._limit)
        horizon = self._clock() - self._window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures


def _client_key(client: str) -> str:
    """What failures are counted by: the address, an IPv6 one by its /64 (an IPv4-mapped one as IPv4)."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, _IPV6_CLIENT_PREFIX), strict=False))
    return str(address)


class SonarQubeTokenAuth:
    """The bearer token is a SonarQube token of an administrator; SonarQube is called with it."""

    def __init__(
        self,
        connection: SonarQubeConnection,
        *,
        cache_seconds: float,
        clock: Clock = time.monotonic,
        limiter: FailureLimiter | None = None,
        slots: int = VERIFICATION_SLOTS,
    ) -> None:
        self._connection = connection
        self._verdicts = VerdictCache(cache_seconds, clock=clock)
        self._rejections = TtlCache[bool](min(cache_seconds, REJECTION_CACHE_SECONDS), clock=clock)
        self._limiter = limiter if limiter is not None else FailureLimiter(clock=clock)
        self._slots = asyncio.Semaphore(slots)

    async def authenticate(self, token: str, *, client: str | None = None) -> Authenticated:
        key = token_hash(token)
        caller = self._verdicts.get(key)
        if caller is None:
            self._limiter.check(client)  # a token known to be good is never limited
            caller = await self._verify(token, key, client)
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

    async def _verify(self, token: str, key: str, client: str | None) -> Caller:
        """SonarQube's verdict on a token the cache does not know; one refused lately is not asked again."""
        self._refuse_if_rejected(key, client)
        async with self._verification_slot():
            # While this request waited, another one may have asked about the same token (Entra's bursts).
            caller = self._verdicts.get(key)
            if caller is not None:
                return caller
            self._refuse_if_rejected(key, client)
            try:
                caller = await self._ask_sonarqube(token, key)
            except UnauthorizedError:
                self._rejections.put(key, True)  # noqa: FBT003 - the value is a mere marker
                self._limiter.record(client)
                raise
        # Non-administrators are cached too: their next attempts are refused without asking again.
        self._verdicts.put(key, caller)
        return caller

    def _refuse_if_rejected(self, key: str, client: str | None) -> None:
        if self._rejections.get(key) is not None:
            self._limiter.record(client)
            raise _rejected(key)

    @contextlib.asynccontextmanager
    async def _verification_slot(self) -> AsyncIterator[None]:
        """One of the VERIFICATION_SLOTS, waited for within the request's SonarQube deadline at most."""
        budget = current_deadline()
        if budget is None or not self._slots.locked():
            await self._slots.acquire()
        else:
            try:
                await asyncio.wait_for(self._slots.acquire(), budget.remaining())
            except TimeoutError as exc:
                log.warning("scim.auth_busy", slots=VERIFICATION_SLOTS)
                raise ServiceUnavailableError(
                    "the bridge is checking too many tokens with SonarQube at once "
                    f"(at most {VERIFICATION_SLOTS}); nothing was done, retry later",
                    retry_after=VERIFICATION_RETRY_AFTER,
                ) from exc
        try:
            yield
        finally:
            self._slots.release()

    async def _ask_sonarqube(self, token: str, key: str) -> Caller:
        try:
            return await client_for(self._connection, token).current_user()
        except Unauthorized as exc:
            raise _rejected(key) from exc
        except SonarQubeError as exc:  # unavailable or answering oddly: "try again later"
            raise scim_error(exc) from exc


def _rejected(key: str) -> UnauthorizedError:
    log.warning("scim.auth_failed", reason="rejected_by_sonarqube", token_hash=key[:12])
    return UnauthorizedError(
        "SonarQube does not accept the token: it is unknown, expired or its user is deactivated",
        challenge=INVALID_TOKEN_CHALLENGE,
    )


class StaticTokenAuth:
    """The bearer token must be a configured SCIM token; SonarQube is called with the bridge's own token."""

    def __init__(
        self,
        connection: SonarQubeConnection,
        settings: BridgeSettings,
        metrics: Metrics | None = None,
        *,
        clock: Clock = time.monotonic,
        limiter: FailureLimiter | None = None,
    ) -> None:
        self._connection = connection
        self._metrics = metrics
        self._clock = clock
        self._limiter = limiter if limiter is not None else FailureLimiter(clock=clock)
        self._inline_tokens = [token.get_secret_value() for token in settings.scim_tokens]
        self._token_files = [FileSecret(path) for path in settings.scim_token_files]
        self._service_token = _service_token_source(settings)
        # What SonarQube last said of the service token, by its hash: its owner, or why it refused it (asked
        # again after a while, or at once when the token file brings another token).
        self._owner: tuple[str, Caller] | None = None
        self._refusal: tuple[str, str, float] | None = None  # (hash, reason, clock time to ask again)

    async def authenticate(self, token: str, *, client: str | None = None) -> Authenticated:
        if not self._accepts(token):
            self._limiter.check(client)  # a configured token is never limited
            self._limiter.record(client)
            log.warning("scim.auth_failed", reason="unknown_token", token_hash=token_hash(token)[:12])
            raise UnauthorizedError(
                "the token is not a configured SCIM token", challenge=INVALID_TOKEN_CHALLENGE
            )
        service_token = self._current_service_token()
        owner = await self._owner_of(service_token)
        return Authenticated(client_for(self._connection, service_token), owner.login)

    async def service_token_problem(self) -> str | None:
        try:
            await self._owner_of(self._current_service_token())
        except ServiceTokenUnusableError as exc:
            return exc.detail
        except ScimError:
            return None  # SonarQube cannot say now; readiness reports SonarQube itself
        return None

    def refused_later(self, token: str, error: UnauthorizedError | ForbiddenError) -> ScimError:  # noqa: ARG002 - the SCIM token is not what SonarQube refused
        # The SCIM client's token is fine: what SonarQube refuses is the bridge's own.
        try:
            key = token_hash(self._current_service_token())
        except ServiceTokenUnusableError as unreadable:
            return unreadable
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

    def _current_service_token(self) -> str:
        """The bridge's own token; a token file that cannot be read makes it unusable (503, logged once)."""
        try:
            token = self._service_token()
        except ConfigError as exc:
            cause = exc.__cause__
            why = cause.strerror if isinstance(cause, OSError) and cause.strerror else "unreadable"
            self._owner = None  # asked again once the file can be read
            # Never the file's path in the answer: the setting's name says where to look.
            raise self._unusable(_UNREADABLE_FILE, f"its file cannot be read ({why})") from exc
        if self._refusal is not None and self._refusal[0] == _UNREADABLE_FILE:
            self._refusal = None  # readable again: a later failure is logged again
        return token

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


_UNREADABLE_FILE: Final = ""  # what a token file that cannot be read is remembered by instead of a hash


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
