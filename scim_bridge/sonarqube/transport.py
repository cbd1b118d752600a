"""The one HTTP path to SonarQube: URL building, token authentication, timeouts, retries, error mapping.

Every SonarQube call of both dialects goes through `Transport.call`. It retries connection failures,
timeouts, 429 (honouring `Retry-After`) and 502/503/504 with jittered exponential back-off, never past the
active `deadline`, and turns every other non-2xx answer into the error tree (`errors.py`). When an
attempt's outcome is unknown (connection lost after sending, timeout, 502/504) the error of a later
attempt is marked `replayed`, so callers can tell "already exists" from the echo of their own write.
The token is only ever in the `Authorization` header: never in a message, a log event or a repr.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

import aiohttp
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential
from yarl import URL

from scim_bridge import __version__
from scim_bridge.sonarqube.deadline import Clock, Deadline, current_deadline
from scim_bridge.sonarqube.error_mapping import error_for
from scim_bridge.sonarqube.errors import Unavailable, UnexpectedResponse

if TYPE_CHECKING:
    from scim_bridge.config import SonarQubeSettings
    from scim_bridge.metrics import Metrics

Sleep = Callable[[float], Awaitable[None]]
QueryValue = str | int | bool | None
Query = Mapping[str, QueryValue]

MAX_ATTEMPTS = 6  # with the back-off below, a dead SonarQube is given up on within a few seconds
# Once SonarQube could not be reached at all, calls in the next seconds fail at once instead of each
# spending its whole deadline: Entra gets its 503 quickly and escrows, and no connection is held meanwhile.
KNOWN_DOWN_SECONDS = 5.0
_BACKOFF = wait_random_exponential(multiplier=0.25, max=4.0)  # "full jitter" in [0, min(4, 0.25 * 2^n)] s
_STATUSES_NOT_APPLIED = frozenset({429, 503})  # SonarQube (or its proxy) refused before doing anything
_STATUSES_OUTCOME_UNKNOWN = frozenset({502, 504})  # a proxy lost SonarQube's answer: it may have acted
_USER_AGENT = f"scim-bridge/{__version__}"
JSON = "application/json"
MERGE_PATCH_JSON = "application/merge-patch+json"

log = structlog.get_logger("scim_bridge.sonarqube")


class Credentials:
    """A SonarQube token as Basic `token:` (accepted by every version); its repr never shows it."""

    __slots__ = ("header",)

    def __init__(self, token: str) -> None:
        self.header = "Basic " + base64.b64encode(f"{token}:".encode()).decode("ascii")

    def __repr__(self) -> str:
        return "Credentials(<hidden>)"


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful (2xx) answer."""

    status: int
    content_type: str
    body: bytes
    endpoint: str

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; anything else is an `UnexpectedResponse`."""
        if self.content_type != JSON and not self.content_type.endswith("+json"):
            raise UnexpectedResponse(
                f"{self.endpoint} answered {self.content_type or 'no content type'} instead of JSON",
                status=self.status,
                endpoint=self.endpoint,
            )
        try:
            payload = json.loads(self.body)
        except ValueError as exc:
            raise UnexpectedResponse(
                f"{self.endpoint} answered malformed JSON", status=self.status, endpoint=self.endpoint
            ) from exc
        if not isinstance(payload, dict):
            raise UnexpectedResponse(
                f"{self.endpoint} answered JSON that is not an object",
                status=self.status,
                endpoint=self.endpoint,
            )
        return payload

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    endpoint: str  # the path template, e.g. `api/v2/users-management/users/{}`: ids stay out of logs
    url: URL
    headers: dict[str, str]
    params: dict[str, str]
    form: dict[str, str] | None
    body: bytes | None


class _RetryableFailure(Exception):  # noqa: N818 - internal signal between an attempt and the retry loop
    """An attempt failed in a way worth retrying."""

    def __init__(
        self,
        reason: str,
        *,
        outcome_unknown: bool,
        status: int | None = None,
        retry_after: float | None = None,
        unreachable: bool = False,
        cause: str,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause  # the status or failure class, for metrics
        self.outcome_unknown = outcome_unknown  # SonarQube may have applied the request
        self.unreachable = unreachable  # no connection could be opened at all
        self.status = status
        self.retry_after = retry_after


@dataclass(slots=True)
class _Trace:
    """What the attempts of one call went through."""

    attempts: int = 0
    outcome_unknown: bool = False


class Transport:
    """The shared HTTP session to one SonarQube server and the retry policy around it."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        owns_session: bool,
        connect_timeout: float,
        read_timeout: float,
        default_deadline: float,
        sleep: Sleep,
        clock: Clock,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/") + "/"  # keeps a path prefix such as `/sonarqube`
        self._owns_session = owns_session
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._default_deadline = default_deadline
        self._sleep = sleep
        self._clock = clock
        self._down_until = 0.0  # clock time until which SonarQube is taken as unreachable
        self._metrics: Metrics | None = None
        # Told when a call gave up on SonarQube, and whether no connection could be opened at all: the
        # connection looks at SonarQube again at once.
        self.on_failure: Callable[[bool], None] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: SonarQubeSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
    ) -> Transport:
        """A transport on `session`, or on a new session with the configured connection limit."""
        owns_session = session is None
        if session is None:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=settings.sonar_max_connections),
                timeout=aiohttp.ClientTimeout(
                    sock_connect=settings.sonar_connect_timeout, sock_read=settings.sonar_read_timeout
                ),
            )
        return cls(
            session,
            str(settings.sonar_url),
            owns_session=owns_session,
            connect_timeout=settings.sonar_connect_timeout,
            read_timeout=settings.sonar_read_timeout,
            default_deadline=settings.sonar_deadline,
            sleep=sleep or asyncio.sleep,
            clock=clock or time.monotonic,
        )

    @property
    def base_url(self) -> str:
        return self._base_url

    async def close(self) -> None:
        """Close the HTTP session if this transport created it."""
        if self._owns_session:
            await self._session.close()

    def observe(self, metrics: Metrics) -> None:
        """Report every attempt and retry to `metrics` from now on."""
        self._metrics = metrics

    async def probe(self, endpoint: str) -> Reply:
        """One unauthenticated attempt at `endpoint`, without retries and whether or not SonarQube was
        unreachable moments ago: how the connection watches SonarQube come and go. A 2xx answer clears the
        fail-fast window; any other outcome raises the error it stands for."""
        request = self._request(
            "GET", endpoint, (), credentials=None, params=None, form=None, json_body=None, content_type=JSON
        )
        budget = Deadline.after(self._connect_timeout + self._read_timeout, self._clock)
        try:
            reply = await self._attempt(request, budget, _Trace())
        except _RetryableFailure as exc:
            raise Unavailable(
                exc.reason, retry_after=exc.retry_after, status=exc.status, endpoint=endpoint
            ) from exc
        if not 200 <= reply.status < 300:
            raise error_for(reply.status, reply.body, endpoint)
        self._down_until = 0.0
        return reply

    async def call(
        self,
        method: str,
        endpoint: str,
        *path_ids: str,
        credentials: Credentials | None = None,
        params: Query | None = None,
        form: Query | None = None,
        json_body: Mapping[str, Any] | None = None,
        content_type: str = JSON,
    ) -> Reply:
        """Send one request (retrying within the deadline) and return its 2xx answer or raise its error."""
        request = self._request(
            method,
            endpoint,
            path_ids,
            credentials=credentials,
            params=params,
            form=form,
            json_body=json_body,
            content_type=content_type,
        )
        trace = _Trace()
        reply = await self._send_with_retries(request, self._deadline(), trace)
        if not 200 <= reply.status < 300:
            error = error_for(reply.status, reply.body, endpoint)
            error.replayed = trace.outcome_unknown
            raise error
        return reply

    def _deadline(self) -> Deadline:
        return current_deadline() or Deadline.after(self._default_deadline, self._clock)

    def _request(
        self,
        method: str,
        endpoint: str,
        path_ids: tuple[str, ...],
        *,
        credentials: Credentials | None,
        params: Query | None,
        form: Query | None,
        json_body: Mapping[str, Any] | None,
        content_type: str,
    ) -> _Request:
        path = endpoint.format(*(quote(part, safe="") for part in path_ids))  # ids are opaque strings
        headers = {"User-Agent": _USER_AGENT}
        if credentials is not None:
            headers["Authorization"] = credentials.header
        body = None
        if json_body is not None:
            headers["Content-Type"] = content_type
            body = json.dumps(json_body).encode()
        return _Request(
            method=method,
            endpoint=endpoint,
            url=URL(self._base_url + path, encoded=True),
            headers=headers,
            params=_strings(params or {}),
            form=None if form is None else _strings(form),
            body=body,
        )

    async def _send_with_retries(self, request: _Request, budget: Deadline, trace: _Trace) -> Reply:
        if budget.remaining() <= 0:
            raise Unavailable(f"no time left to call {request.endpoint}", endpoint=request.endpoint)
        if (wait := self._down_until - self._clock()) > 0:
            raise Unavailable(
                f"SonarQube was unreachable moments ago; not calling {request.endpoint} for {wait:.1f} s",
                retry_after=wait,
                endpoint=request.endpoint,
            )

        try:
            return await self._attempt(request, budget, trace)
        except _RetryableFailure as failure:
            first_failure = failure
        # Most calls succeed at once: the retry loop is built only for those that do not. It starts by
        # being told of the first failure again, so waits, stops and logs count that attempt as theirs.
        told: list[_RetryableFailure] = []

        async def attempt() -> Reply:
            if not told:
                told.append(first_failure)
                raise first_failure
            return await self._attempt(request, budget, trace)

        def stop(state: RetryCallState) -> bool:
            return state.attempt_number >= MAX_ATTEMPTS or state.upcoming_sleep >= budget.remaining()

        async def log_retry(state: RetryCallState) -> None:
            if self._metrics is not None:
                self._metrics.sonarqube_retry(request.endpoint, _failure_of(state).cause)
            log.warning(
                "sonarqube.retry",
                endpoint=request.endpoint,
                method=request.method,
                attempt=state.attempt_number,
                reason=_failure_of(state).reason,
                wait=round(state.upcoming_sleep, 3),
            )

        retrying = AsyncRetrying(
            sleep=self._sleep,
            retry=retry_if_exception_type(_RetryableFailure),
            wait=_wait,
            stop=stop,
            before_sleep=log_retry,
            reraise=True,
        )
        try:
            reply = cast("Reply", await retrying(attempt))
        except _RetryableFailure as exc:
            if exc.unreachable:
                self._down_until = self._clock() + KNOWN_DOWN_SECONDS
            if self.on_failure is not None:
                self.on_failure(exc.unreachable)
            log.warning(
                "sonarqube.unavailable", endpoint=request.endpoint, attempts=trace.attempts, reason=exc.reason
            )
            raise Unavailable(
                f"SonarQube unavailable ({exc.reason}) at {request.endpoint}, {trace.attempts} attempt(s)",
                retry_after=exc.retry_after,
                status=exc.status,
                endpoint=request.endpoint,
            ) from exc
        return reply

    async def _attempt(self, request: _Request, budget: Deadline, trace: _Trace) -> Reply:
        trace.attempts += 1
        started = time.perf_counter()
        status: int | None = None
        try:
            reply = await self._exchange(request, budget, trace)
        except _RetryableFailure as failure:
            status = failure.status
            trace.outcome_unknown = trace.outcome_unknown or failure.outcome_unknown
            raise
        except UnexpectedResponse as failure:
            status = failure.status
            raise
        else:
            status = reply.status
            return reply
        finally:
            if self._metrics is not None:
                elapsed = time.perf_counter() - started
                self._metrics.sonarqube_attempt(request.endpoint, request.method, status, elapsed)

    async def _exchange(self, request: _Request, budget: Deadline, trace: _Trace) -> Reply:
        remaining = budget.remaining()
        timeout = aiohttp.ClientTimeout(
            total=remaining,
            sock_connect=min(self._connect_timeout, remaining),
            sock_read=min(self._read_timeout, remaining),
        )
        try:
            async with self._session.request(
                request.method,
                request.url,
                params=request.params,
                data=request.form if request.body is None else request.body,
                headers=request.headers,
                timeout=timeout,
                allow_redirects=False,  # a redirect means a wrong sonar_url; never re-send credentials
                middlewares=(_noting_silent_resends(trace),),
            ) as response:
                body = await response.read()
                reply = Reply(response.status, response.content_type, body, request.endpoint)
                return _screen(reply, response.headers.get("Retry-After"))
        except aiohttp.ClientSSLError as exc:
            # Not transient: retrying a certificate problem only delays the message.
            raise Unavailable(
                f"TLS handshake with SonarQube failed at {request.endpoint}: {type(exc).__name__}",
                endpoint=request.endpoint,
            ) from exc
        except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as exc:
            raise _RetryableFailure(
                f"could not connect ({type(exc).__name__})",
                outcome_unknown=False,
                unreachable=True,
                cause=type(exc).__name__,
            ) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            # The request may have reached SonarQube and been applied before the answer was lost.
            raise _RetryableFailure(
                f"answer lost ({type(exc).__name__})", outcome_unknown=True, cause=type(exc).__name__
            ) from exc
        except aiohttp.ClientError as exc:
            raise UnexpectedResponse(
                f"HTTP client error at {request.endpoint}: {type(exc).__name__}", endpoint=request.endpoint
            ) from exc


def _noting_silent_resends(trace: _Trace) -> aiohttp.ClientMiddlewareType:
    """aiohttp re-sends a GET, PUT or DELETE once by itself when the connection drops after sending: note
    that the first send's outcome is unknown, so that a "not found" from the re-send counts as replayed."""

    async def middleware(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        try:
            return await handler(request)
        except aiohttp.ClientConnectorError:
            raise  # nothing was sent, and aiohttp does not re-send these
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
            trace.outcome_unknown = True
            raise

    return middleware


def _screen(reply: Reply, retry_after: str | None) -> Reply:
    """Raise a retryable failure for "try later" answers; hand every other answer back."""
    if reply.status in _STATUSES_NOT_APPLIED:
        raise _RetryableFailure(
            f"HTTP {reply.status}",
            outcome_unknown=False,
            status=reply.status,
            retry_after=_seconds(retry_after),
            cause=str(reply.status),
        )
    if reply.status in _STATUSES_OUTCOME_UNKNOWN:
        raise _RetryableFailure(
            f"HTTP {reply.status}", outcome_unknown=True, status=reply.status, cause=str(reply.status)
        )
    if 300 <= reply.status < 400:
        raise UnexpectedResponse(
            f"SonarQube redirected {reply.endpoint} (HTTP {reply.status}): check sonar_url",
            status=reply.status,
            endpoint=reply.endpoint,
        )
    return reply


def _seconds(retry_after: str | None) -> float | None:
    """`Retry-After` in seconds; the HTTP-date form is not used by SonarQube and is ignored."""
    if retry_after is None or not retry_after.strip().isdigit():
        return None
    return float(retry_after.strip())


def _failure_of(state: RetryCallState) -> _RetryableFailure:
    failure = state.outcome.exception() if state.outcome is not None else None
    if not isinstance(failure, _RetryableFailure):  # the retry predicate only lets these through
        raise TypeError(f"not a retryable failure: {failure!r}")
    return failure


def _wait(state: RetryCallState) -> float:
    """Jittered exponential back-off, but never shorter than what `Retry-After` asked for."""
    return max(_BACKOFF(state), _failure_of(state).retry_after or 0.0)


def _strings(values: Query) -> dict[str, str]:
    """Query or form values as SonarQube reads them; `None` means "not sent"."""
    result = {}
    for key, value in values.items():
        if value is None:
            continue
        result[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return result
