"""The v1 dialect: web services `api/users/*` and `api/user_groups/*`, served by every SonarQube version.

v1 addresses users by login and groups by name and shows no user uuids, so `get_user`/`get_group` by id
are not available here. Writes are form-encoded POSTs; errors are `{"errors":[{"msg":…}]}`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import structlog

from scim_bridge.sonarqube.common import (
    V1_PAGING,
    BaseClient,
    parsed,
)
from scim_bridge.sonarqube.errors import AlreadyMember, NotFound, SonarQubeError
from scim_bridge.sonarqube.models import Dialect, GroupRef, SonarGroup, SonarUser, UserRef

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scim_bridge.sonarqube.transport import Query, Reply

log = structlog.get_logger("scim_bridge.sonarqube")

_NO_IDS = "SonarQube's v1 API has no user or group ids: looking up by id needs the v2 API (SonarQube 10.4+)"
# With local=false SonarQube stores provider `sonarqube` and external login = login, but the create
# answer leaves the external identity out.
_PROVIDER_OF_CREATED_USERS = "sonarqube"


class V1Client(BaseClient):
    """User and group administration through `api/users/*` and `api/user_groups/*`."""

    DIALECT = Dialect.V1
    PAGING = V1_PAGING
    USER_SEARCH = "api/users/search"
    GROUP_SEARCH = "api/user_groups/search"

    # -- users ---------------------------------------------------------------------------------------
    async def get_user(self, user_id: str) -> SonarUser | None:  # noqa: ARG002 - no ids in v1
        raise SonarQubeError(_NO_IDS)

    @staticmethod
    def _user_state(active: bool) -> Query:
        return {"deactivated": not active}

    @staticmethod
    def _parse_user(item: Mapping[str, Any], *, active: bool) -> SonarUser:
        return _user(item, active=active)

    async def _create_user(self, login: str, name: str, email: str | None) -> SonarUser:
        form = {"login": login, "name": name, "email": email or None, "local": False}
        reply = await self._post("api/users/create", form)
        user = parsed("api/users/create", lambda p: _user(p["user"], active=True), reply.json_object())
        return replace(
            user,
            external_provider=user.external_provider or _PROVIDER_OF_CREATED_USERS,
            external_login=user.external_login or login,
        )

    async def update_user(
        self, user: UserRef, *, name: str | None = None, email: str | None = None
    ) -> SonarUser:
        """On v1 SonarQube refuses name and e-mail changes of non-local users (all users this client
        creates, and every SAML-linked one) with `Refused`."""
        if name is None and email is None:
            return await self._existing_user(user.login)
        reply = await self._post("api/users/update", {"login": user.login, "name": name, "email": email})
        log.info("sonarqube.user_updated", login=user.login)
        return parsed("api/users/update", lambda p: _user(p["user"], active=True), reply.json_object())

    async def rename_user(self, user: UserRef, new_login: str) -> SonarUser:
        if new_login == user.login:
            return await self._existing_user(user.login)
        try:
            await self._post("api/users/update_login", {"login": user.login, "newLogin": new_login})
        except NotFound as exc:
            # After a lost answer the first attempt may have renamed it already.
            if exc.replayed and (renamed := await self.find_user(new_login)):
                return renamed
            raise
        log.info("sonarqube.user_renamed", login=user.login, new_login=new_login)
        return await self._existing_user(new_login)

    async def link_identity(self, user: UserRef, provider: str, external_login: str) -> None:
        form = {"login": user.login, "newExternalProvider": provider, "newExternalIdentity": external_login}
        await self._post("api/users/update_identity_provider", form)
        log.info("sonarqube.identity_linked", login=user.login, provider=provider)

    async def deactivate_user(self, user: UserRef, *, anonymize: bool = False) -> None:
        # One call for both: a crash can never leave the account deactivated but not anonymised.
        form = {"login": user.login} | ({"anonymize": "true"} if anonymize else {})
        await self._post("api/users/deactivate", form)
        log.info("sonarqube.user_deactivated", login=user.login, anonymized=anonymize)

    # -- groups --------------------------------------------------------------------------------------
    async def get_group(self, group_id: str) -> SonarGroup | None:  # noqa: ARG002 - no ids in v1
        raise SonarQubeError(_NO_IDS)

    @staticmethod
    def _parse_group(item: Mapping[str, Any]) -> SonarGroup:
        return _group(item)

    async def _create_group(self, name: str) -> SonarGroup:
        reply = await self._post("api/user_groups/create", {"name": name})
        return parsed("api/user_groups/create", lambda p: _group(p["group"]), reply.json_object())

    async def rename_group(self, group: GroupRef, new_name: str) -> SonarGroup:
        if new_name == group.name:  # 9.9 refuses renaming a group to its own name ("already exists")
            return await self._existing_group(group.name)
        try:
            reply = await self._post("api/user_groups/update", {"currentName": group.name, "name": new_name})
        except NotFound as exc:
            if exc.replayed and (renamed := await self._group_named(new_name)):
                return renamed
            raise
        log.info("sonarqube.group_renamed", group=group.name, new_name=new_name)
        return parsed("api/user_groups/update", lambda p: _group(p["group"]), reply.json_object())

    async def _delete_group(self, group: GroupRef) -> None:
        await self._post("api/user_groups/delete", {"name": group.name})

    async def add_member(self, group: GroupRef, user: UserRef) -> None:
        try:
            await self._post("api/user_groups/add_user", {"name": group.name, "login": user.login})
        except AlreadyMember:
            return  # 10.4+ answers 400 where 9.9 answered 204: either way the user is a member
        log.info("sonarqube.member_added", group=group.name, login=user.login)

    async def remove_member(self, group: GroupRef, user: UserRef) -> None:
        await self._post("api/user_groups/remove_user", {"name": group.name, "login": user.login})
        log.info("sonarqube.member_removed", group=group.name, login=user.login)

    async def group_members(self, group: GroupRef) -> list[UserRef]:
        pages = self._pages("api/user_groups/users", "users", {"name": group.name, "selected": "selected"})
        return [parsed("api/user_groups/users", lambda u: UserRef(u["login"]), item) async for item in pages]

    # -- helpers -------------------------------------------------------------------------------------
    async def _post(self, endpoint: str, form: Query) -> Reply:
        return await self._http.call("POST", endpoint, credentials=self._credentials, form=form)


def _user(item: Mapping[str, Any], *, active: bool) -> SonarUser:
    """A v1 user; fields SonarQube hides from non-administrators fall back to what the query implies."""
    return SonarUser(
        login=item["login"],
        name=item.get("name", ""),
        email=item.get("email") or None,
        active=bool(item.get("active", active)),
        local=bool(item.get("local", False)),
        external_provider=item.get("externalProvider"),
        external_login=item.get("externalIdentity"),
    )


def _group(item: Mapping[str, Any]) -> SonarGroup:
    # v1 shows group uuids on some endpoints and versions only; leave them out so ids never look reliable.
    return SonarGroup(name=item["name"])
