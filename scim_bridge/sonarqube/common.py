"""What both dialects share: server calls (caller, SAML settings), paging and replay checks."""

from __future__ import annotations

import abc
import functools
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import structlog

from scim_bridge.sonarqube.capabilities import MIN_LOGIN_LENGTH
from scim_bridge.sonarqube.errors import AlreadyExists, NotFound, Unauthorized, UnexpectedResponse
from scim_bridge.sonarqube.models import Caller, Dialect, GroupRef, SamlSettings, SonarGroup, SonarUser
from scim_bridge.sonarqube.transport import JSON, Credentials, Query, Reply, Transport

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Iterable, Mapping

    from scim_bridge.sonarqube.capabilities import Capabilities

PAGE_SIZE = 500  # the largest page every paged endpoint accepts; tests lower it to exercise paging
SAML_ENABLED = "sonar.auth.saml.enabled"
SAML_GROUP_ATTRIBUTE = "sonar.auth.saml.group.name"

T = TypeVar("T")
log = structlog.get_logger("scim_bridge.sonarqube")


@dataclass(frozen=True, slots=True)
class Paging:
    """How a family of endpoints names its paging parameters and its paging object."""

    index_param: str
    size_param: str
    paging_key: str


V1_PAGING = Paging("p", "ps", "paging")
V2_PAGING = Paging("pageIndex", "pageSize", "page")


def parsed(endpoint: str, parse: Callable[[Any], T], payload: Any) -> T:
    """`parse(payload)`, with a missing or mistyped field reported as `UnexpectedResponse`."""
    try:
        return parse(payload)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UnexpectedResponse(
            f"{endpoint} answered an unexpected shape ({type(exc).__name__}: {exc})", endpoint=endpoint
        ) from exc


def pick_group(groups: Iterable[SonarGroup], name: str) -> SonarGroup | None:
    """The group named `name` ignoring case, preferring the one spelled exactly so."""
    folded = name.casefold()
    matches = [group for group in groups if group.name.casefold() == folded]
    return next((group for group in matches if group.name == name), matches[0] if matches else None)


class BaseClient(abc.ABC):
    """One token on one SonarQube server; the HTTP session belongs to the connection, not to the client."""

    DIALECT: ClassVar[Dialect]
    PAGING: ClassVar[Paging]
    USER_SEARCH: ClassVar[str]  # the endpoint that searches users
    GROUP_SEARCH: ClassVar[str]  # the endpoint that searches groups

    def __init__(self, transport: Transport, token: str, capabilities: Capabilities) -> None:
        if capabilities.dialect is not self.DIALECT:
            raise ValueError(f"{type(self).__name__} cannot speak the {capabilities.dialect} dialect")
        self._http = transport
        self._credentials = Credentials(token)
        self._capabilities = capabilities

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._http.base_url!r}, version={self._capabilities.version})"

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    # -- server --------------------------------------------------------------------------------------
    async def current_user(self) -> Caller:
        payload = (await self._get("api/users/current")).json_object()
        if payload.get("isLoggedIn") is False:
            raise Unauthorized("SonarQube did not accept the token", endpoint="api/users/current")
        return parsed("api/users/current", _caller, payload)

    async def edition(self) -> str | None:
        payload = (await self._get("api/navigation/global")).json_object()
        edition = payload.get("edition")
        return edition if isinstance(edition, str) else None

    async def saml_settings(self) -> SamlSettings:
        keys = (SAML_ENABLED, SAML_GROUP_ATTRIBUTE)
        payload = (await self._get("api/settings/values", params={"keys": ",".join(keys)})).json_object()
        values = parsed("api/settings/values", _setting_values, payload)
        return SamlSettings(
            enabled=values.get(SAML_ENABLED) == "true",
            group_attribute=values.get(SAML_GROUP_ATTRIBUTE) or None,
        )

    # -- users and groups: what both dialects do alike -----------------------------------------------------
    async def find_user(
        self, login: str, *, active: bool | None = None, ignore_case: bool = False
    ) -> SonarUser | None:
        if len(login) < MIN_LOGIN_LENGTH:
            return None
        # `q` is a "contains" filter on login, name and e-mail (9.9: exact and case-sensitive above 15
        # characters, docs/sonarqube.md SQ8): read pages until the login turns up.
        if not ignore_case:
            return await self._first_user({"q": login}, active, lambda user: user.login == login)
        folded = login.casefold()

        def same(user: SonarUser) -> bool:
            return user.login.casefold() == folded

        found = await self._first_user({"q": login}, active, same)
        if found is None and login.lower() != login:
            # Where the search is case-sensitive (9.9, long logins), try the spelling logins usually have.
            found = await self._first_user({"q": login.lower()}, active, same)
        return found

    async def find_user_by_external_login(
        self, external_login: str, provider: str, *, active: bool | None = None
    ) -> SonarUser | None:
        return await self._first_user(
            {"externalIdentity": external_login},
            active,
            lambda user: user.external_provider == provider and user.external_login == external_login,
        )

    async def create_user(self, login: str, name: str, email: str | None) -> SonarUser:
        try:
            user = await self._create_user(login, name, email)
        except AlreadyExists as exc:
            if exc.replayed and (created := await self._created_user_found(login, name)):
                return created
            raise
        log.info("sonarqube.user_created", login=login)
        return user

    async def create_group(self, name: str) -> SonarGroup:
        try:
            group = await self._create_group(name)
        except AlreadyExists as exc:
            if exc.replayed and (created := await self._group_named(name)):
                log.info("sonarqube.replay_confirmed", operation="create_group", group=name)
                return created
            raise
        log.info("sonarqube.group_created", group=name)
        return group

    async def delete_group(self, group: GroupRef) -> None:
        try:
            await self._delete_group(group)
        except NotFound as exc:
            if not exc.replayed:  # otherwise the first attempt deleted it
                raise
        log.info("sonarqube.group_deleted", group=group.name)

    async def find_group(self, name: str) -> SonarGroup | None:
        if not name.strip():
            return None
        pages = self._pages(self.GROUP_SEARCH, "groups", {"q": name})
        return pick_group([parsed(self.GROUP_SEARCH, self._parse_group, item) async for item in pages], name)

    async def users(self, *, active: bool) -> list[SonarUser]:
        return [
            parsed(self.USER_SEARCH, functools.partial(self._parse_user, active=active), item)
            async for item in self._pages(self.USER_SEARCH, "users", self._user_state(active))
        ]

    async def groups(self) -> list[SonarGroup]:
        pages = self._pages(self.GROUP_SEARCH, "groups", {})
        return [parsed(self.GROUP_SEARCH, self._parse_group, item) async for item in pages]

    # -- what each dialect says its own way ----------------------------------------------------------
    @staticmethod
    @abc.abstractmethod
    def _user_state(active: bool) -> Query:
        """The search parameter that selects active or deactivated users."""

    @staticmethod
    @abc.abstractmethod
    def _parse_user(item: Mapping[str, Any], *, active: bool) -> SonarUser:
        """A user of a search answer; `active` is what the search asked for."""

    @staticmethod
    @abc.abstractmethod
    def _parse_group(item: Mapping[str, Any]) -> SonarGroup:
        """A group of a search answer."""

    @abc.abstractmethod
    async def _create_user(self, login: str, name: str, email: str | None) -> SonarUser: ...

    @abc.abstractmethod
    async def _create_group(self, name: str) -> SonarGroup: ...

    @abc.abstractmethod
    async def _delete_group(self, group: GroupRef) -> None: ...

    # -- shared helpers ------------------------------------------------------------------------------
    async def _first_user(
        self, query: Query, active: bool | None, wanted: Callable[[SonarUser], bool]
    ) -> SonarUser | None:
        """The first wanted user a search finds, searching active users first when either state will do."""
        for state in user_states(active):
            users = self._pages(self.USER_SEARCH, "users", {**query, **self._user_state(state)})
            parse = functools.partial(self._parse_user, active=state)
            user = await self._first(users, self.USER_SEARCH, parse, wanted)
            if user is not None:
                return user
        return None

    async def _existing_user(self, login: str) -> SonarUser:
        user = await self.find_user(login)
        if user is None:
            raise NotFound(f"User '{login}' doesn't exist")
        return user

    async def _group_named(self, name: str) -> SonarGroup | None:
        """The group with exactly this name (writes address groups exactly, as SonarQube does)."""
        group = await self.find_group(name)
        return group if group is not None and group.name == name else None

    async def _existing_group(self, name: str) -> SonarGroup:
        group = await self._group_named(name)
        if group is None:
            raise NotFound(f"No group with name '{name}'")
        return group

    async def _created_user_found(self, login: str, name: str) -> SonarUser | None:
        """After a lost answer "already exists" may echo our own create: yes if the user is as asked."""
        user = await self.find_user(login)
        if user is None or not user.active or user.name != name.strip():  # SonarQube trims values
            return None
        log.info("sonarqube.replay_confirmed", operation="create_user", login=login)
        return user

    # -- HTTP helpers --------------------------------------------------------------------------------
    async def _get(self, endpoint: str, *ids: str, params: Query | None = None) -> Reply:
        return await self._http.call("GET", endpoint, *ids, credentials=self._credentials, params=params)

    async def _send(
        self, method: str, endpoint: str, *ids: str, body: Mapping[str, Any], content_type: str = JSON
    ) -> Reply:
        return await self._http.call(
            method, endpoint, *ids, credentials=self._credentials, json_body=body, content_type=content_type
        )

    async def _pages(self, endpoint: str, items_key: str, query: Query) -> AsyncGenerator[Any, None]:
        """Every item of every page. Ends by `total`, not by an empty page: 9.9 filters
        `externalIdentity` page by page, so a page can be empty while later ones are not."""
        paging = self.PAGING
        index = 1
        while True:
            params = {**query, paging.index_param: index, paging.size_param: PAGE_SIZE}
            payload = (await self._get(endpoint, params=params)).json_object()
            items, size, total = parsed(endpoint, lambda p: _page(p, items_key, paging), payload)
            for item in items:
                yield item
            if index * size >= total:
                return
            index += 1

    async def _first(
        self,
        items: AsyncGenerator[Any, None],
        endpoint: str,
        parse: Callable[[Any], T],
        wanted: Callable[[T], bool],
    ) -> T | None:
        """The first parsed item that is wanted, reading no more pages than needed."""
        async with aclosing(items):  # stop the paging generator as soon as the item is found
            async for item in items:
                value = parsed(endpoint, parse, item)
                if wanted(value):
                    return value
        return None


def _page(payload: Mapping[str, Any], items_key: str, paging: Paging) -> tuple[list[Any], int, int]:
    page = payload[paging.paging_key]
    items = payload[items_key]
    if not isinstance(items, list):
        raise TypeError(f"'{items_key}' is not a list")
    size = int(page["pageSize"]) or PAGE_SIZE
    return items, size, int(page["total"])


def _caller(payload: Mapping[str, Any]) -> Caller:
    permissions = payload.get("permissions", {}).get("global", [])
    return Caller(
        login=payload["login"], name=payload.get("name", payload["login"]), is_admin="admin" in permissions
    )


def _setting_values(payload: Mapping[str, Any]) -> dict[str, str]:
    return {setting["key"]: str(setting.get("value", "")) for setting in payload["settings"]}


def user_states(active: bool | None) -> tuple[bool, ...]:
    """The user states a look-up searches; None: both, active first (most look-ups find an active one)."""
    return (True, False) if active is None else (active,)
