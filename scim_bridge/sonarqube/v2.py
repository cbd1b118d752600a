"""The v2 dialect: REST `api/v2/*` (users-management, authorizations), SonarQube 10.4 and later.

v2 addresses users, groups and memberships by uuid: writes use `ref.id` when the caller has it and look
the user or group up once otherwise. Errors are `{"message":…}`; PATCH bodies are JSON merge patches.
Note (SonarQube, per code reading): a PATCH that changes something on a deactivated user reactivates it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from scim_bridge.sonarqube.common import (
    V2_PAGING,
    BaseClient,
    parsed,
)
from scim_bridge.sonarqube.errors import AlreadyMember, NotFound, UnexpectedResponse
from scim_bridge.sonarqube.models import Dialect, GroupRef, SonarGroup, SonarUser, UserRef
from scim_bridge.sonarqube.transport import MERGE_PATCH_JSON, Query

if TYPE_CHECKING:
    from collections.abc import Mapping

log = structlog.get_logger("scim_bridge.sonarqube")

USERS = "api/v2/users-management/users"
USER = "api/v2/users-management/users/{}"
GROUPS = "api/v2/authorizations/groups"
GROUP = "api/v2/authorizations/groups/{}"
MEMBERSHIPS = "api/v2/authorizations/group-memberships"
MEMBERSHIP = "api/v2/authorizations/group-memberships/{}"


class V2Client(BaseClient):
    """User and group administration through `api/v2/users-management` and `api/v2/authorizations`."""

    DIALECT = Dialect.V2
    PAGING = V2_PAGING
    USER_SEARCH = USERS
    GROUP_SEARCH = GROUPS

    # -- users ---------------------------------------------------------------------------------------
    async def get_user(self, user_id: str) -> SonarUser | None:
        try:
            reply = await self._get(USER, user_id)
        except NotFound:
            return None
        return parsed(USER, lambda p: _user(p, active=True), reply.json_object())

    @staticmethod
    def _user_state(active: bool) -> Query:
        return {"active": active}

    @staticmethod
    def _parse_user(item: Mapping[str, Any], *, active: bool) -> SonarUser:
        return _user(item, active=active)

    async def _create_user(self, login: str, name: str, email: str | None) -> SonarUser:
        body: dict[str, Any] = {"login": login, "name": name, "local": False}
        if email:
            body["email"] = email
        reply = await self._send("POST", USERS, body=body)
        return parsed(USERS, lambda p: _user(p, active=True), reply.json_object())

    async def update_user(
        self, user: UserRef, *, name: str | None = None, email: str | None = None
    ) -> SonarUser:
        patch: dict[str, Any] = {}
        if name is not None:
            patch["name"] = name
        if email is not None:
            patch["email"] = email or None  # merge-patch null clears; "" would fail @Email/@Size
        if not patch:
            return await self._existing_user(user.login)
        updated = await self._patch_user(user, patch)
        log.info("sonarqube.user_updated", user_id=updated.id)
        return updated

    async def rename_user(self, user: UserRef, new_login: str) -> SonarUser:
        renamed = await self._patch_user(user, {"login": new_login})
        log.info("sonarqube.user_renamed", user_id=renamed.id, new_login=new_login)
        return renamed

    async def link_identity(self, user: UserRef, provider: str, external_login: str) -> None:
        patch = {"externalProvider": provider, "externalLogin": external_login}
        if self._capabilities.links_external_id:
            patch["externalId"] = external_login  # makes SAML's first matching rule (external id) hit
        linked = await self._patch_user(user, patch)
        log.info("sonarqube.identity_linked", user_id=linked.id, provider=provider)

    async def deactivate_user(self, user: UserRef, *, anonymize: bool = False) -> None:
        user_id = await self._user_id(user)
        params = {"anonymize": True} if anonymize else None
        await self._http.call("DELETE", USER, user_id, credentials=self._credentials, params=params)
        log.info("sonarqube.user_deactivated", user_id=user_id, anonymized=anonymize)

    # -- groups --------------------------------------------------------------------------------------
    async def get_group(self, group_id: str) -> SonarGroup | None:
        try:
            reply = await self._get(GROUP, group_id)
        except NotFound:
            return None
        return parsed(GROUP, _group, reply.json_object())

    @staticmethod
    def _parse_group(item: Mapping[str, Any]) -> SonarGroup:
        return _group(item)

    async def _create_group(self, name: str) -> SonarGroup:
        reply = await self._send("POST", GROUPS, body={"name": name})
        return parsed(GROUPS, _group, reply.json_object())

    async def rename_group(self, group: GroupRef, new_name: str) -> SonarGroup:
        group_id = await self._group_id(group)
        reply = await self._send(
            "PATCH", GROUP, group_id, body={"name": new_name}, content_type=MERGE_PATCH_JSON
        )
        log.info("sonarqube.group_renamed", group_id=group_id, new_name=new_name)
        return parsed(GROUP, _group, reply.json_object())

    async def _delete_group(self, group: GroupRef) -> None:
        await self._http.call("DELETE", GROUP, await self._group_id(group), credentials=self._credentials)

    async def add_member(self, group: GroupRef, user: UserRef) -> None:
        body = {"userId": await self._user_id(user), "groupId": await self._group_id(group)}
        try:
            await self._send("POST", MEMBERSHIPS, body=body)
        except AlreadyMember:
            return  # the user is a member, which is what was asked
        log.info("sonarqube.member_added", group_id=body["groupId"], user_id=body["userId"])

    async def remove_member(self, group: GroupRef, user: UserRef) -> None:
        query = {"userId": await self._user_id(user), "groupId": await self._group_id(group)}
        memberships = self._pages(MEMBERSHIPS, "groupMemberships", query)
        membership_ids = [parsed(MEMBERSHIPS, lambda m: str(m["id"]), item) async for item in memberships]
        for membership_id in membership_ids:
            try:
                await self._http.call("DELETE", MEMBERSHIP, membership_id, credentials=self._credentials)
            except NotFound:
                continue  # gone since we read it (or by our own lost first attempt): absent is the goal
            log.info("sonarqube.member_removed", group_id=query["groupId"], user_id=query["userId"])

    async def group_members(self, group: GroupRef) -> list[UserRef]:
        pages = self._pages(USERS, "users", {"groupId": await self._group_id(group)})
        return [parsed(USERS, lambda u: UserRef(u["login"], str(u["id"])), item) async for item in pages]

    # -- helpers -------------------------------------------------------------------------------------
    async def _user_id(self, user: UserRef) -> str:
        return user.id or _uuid_of(await self._existing_user(user.login), USERS)

    async def _group_id(self, group: GroupRef) -> str:
        return group.id or _uuid_of(await self._existing_group(group.name), GROUPS)

    async def _patch_user(self, user: UserRef, patch: Mapping[str, Any]) -> SonarUser:
        user_id = await self._user_id(user)
        reply = await self._send("PATCH", USER, user_id, body=patch, content_type=MERGE_PATCH_JSON)
        return parsed(USER, lambda p: _user(p, active=True), reply.json_object())


def _user(item: Mapping[str, Any], *, active: bool) -> SonarUser:
    return SonarUser(
        login=item["login"],
        name=item.get("name") or "",
        email=item.get("email") or None,
        active=bool(item.get("active", active)),
        local=bool(item.get("local", False)),
        external_provider=item.get("externalProvider"),
        external_login=item.get("externalLogin"),
        id=str(item["id"]),
        external_id=item.get("externalId"),
    )


def _group(item: Mapping[str, Any]) -> SonarGroup:
    return SonarGroup(name=item["name"], id=str(item["id"]))


def _uuid_of(found: SonarUser | SonarGroup, endpoint: str) -> str:
    if found.id is None:  # every v2 answer carries ids: only a broken answer gets here
        raise UnexpectedResponse(f"{endpoint} answered without an id", endpoint=endpoint)
    return found.id
