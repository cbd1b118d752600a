"""The v2 dialect: REST `api/v2/*` (users-management, authorizations), SonarQube 10.4 and later.

v2 addresses users, groups and memberships by uuid: writes use `ref.id` when the caller has it and look
the user or group up once otherwise. Errors are `{"message":…}`; PATCH bodies are JSON merge patches.
Note (SonarQube, per code reading): a PATCH that changes something on a deactivated user reactivates it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from scim_bridge.sonarqube.common import (
    MIN_LOGIN_LENGTH,
    V2_PAGING,
    BaseClient,
    parsed,
    pick_group,
    user_states,
)
from scim_bridge.sonarqube.errors import AlreadyExists, AlreadyMember, NotFound
from scim_bridge.sonarqube.models import Dialect, GroupRef, SonarGroup, SonarUser, UserRef
from scim_bridge.sonarqube.transport import MERGE_PATCH_JSON, Query

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

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

    # -- users ---------------------------------------------------------------------------------------
    async def get_user(self, user_id: str) -> SonarUser | None:
        try:
            reply = await self._get(USER, user_id)
        except NotFound:
            return None
        return parsed(USER, lambda p: _user(p, active=True), reply.json_object())

    async def find_user(self, login: str, *, active: bool | None = None) -> SonarUser | None:
        if len(login) < MIN_LOGIN_LENGTH:
            return None
        # `q` is a case-insensitive "contains" filter: match exactly here
        for state in user_states(active):
            user = await self._first_user({"q": login, "active": state}, state, lambda u: u.login == login)
            if user is not None:
                return user
        return None

    async def find_user_by_external_login(
        self, external_login: str, provider: str, *, active: bool | None = None
    ) -> SonarUser | None:
        for state in user_states(active):
            user = await self._first_user(
                {"externalIdentity": external_login, "active": state},
                state,
                lambda u: u.external_provider == provider and u.external_login == external_login,
            )
            if user is not None:
                return user
        return None

    async def create_user(self, login: str, name: str, email: str | None) -> SonarUser:
        body: dict[str, Any] = {"login": login, "name": name, "local": False}
        if email:
            body["email"] = email
        try:
            reply = await self._send("POST", USERS, body=body)
        except AlreadyExists as exc:
            if exc.replayed and (user := await self._created_user_found(login, name)):
                return user
            raise
        log.info("sonarqube.user_created", login=login)
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
        if self._has_external_id:
            patch["externalId"] = external_login  # makes SAML's first matching rule (external id) hit
        linked = await self._patch_user(user, patch)
        log.info("sonarqube.identity_linked", user_id=linked.id, provider=provider)

    async def deactivate_user(self, user: UserRef) -> None:
        user_id = await self._user_id(user)
        await self._http.call("DELETE", USER, user_id, credentials=self._credentials)
        log.info("sonarqube.user_deactivated", user_id=user_id)

    async def anonymize_user(self, user: UserRef) -> None:
        user_id = await self._user_id(user)
        await self._http.call(
            "DELETE", USER, user_id, credentials=self._credentials, params={"anonymize": True}
        )
        log.info("sonarqube.user_anonymized", user_id=user_id)

    async def user_groups(self, user: UserRef) -> list[SonarGroup]:
        # The memberships search exists since 10.4; `groups?userId=` only in later versions (older ones
        # ignore unknown parameters and would list every group).
        user_id = await self._user_id(user)
        memberships = self._pages(MEMBERSHIPS, "groupMemberships", {"userId": user_id})
        group_ids = {parsed(MEMBERSHIPS, lambda m: str(m["groupId"]), item) async for item in memberships}
        if not group_ids:
            return []
        groups = [parsed(GROUPS, _group, item) async for item in self._pages(GROUPS, "groups", {})]
        return [group for group in groups if group.id in group_ids]

    # -- groups --------------------------------------------------------------------------------------
    async def get_group(self, group_id: str) -> SonarGroup | None:
        try:
            reply = await self._get(GROUP, group_id)
        except NotFound:
            return None
        return parsed(GROUP, _group, reply.json_object())

    async def find_group(self, name: str) -> SonarGroup | None:
        if not name.strip():
            return None
        pages = self._pages(GROUPS, "groups", {"q": name})
        return pick_group([parsed(GROUPS, _group, item) async for item in pages], name)

    async def create_group(self, name: str, description: str | None = None) -> SonarGroup:
        body = {"name": name} if description is None else {"name": name, "description": description}
        try:
            reply = await self._send("POST", GROUPS, body=body)
        except AlreadyExists as exc:
            if exc.replayed and (group := await self._created_group_found(name)):
                return group
            raise
        group = parsed(GROUPS, _group, reply.json_object())
        log.info("sonarqube.group_created", group_id=group.id)
        return group

    async def rename_group(self, group: GroupRef, new_name: str) -> SonarGroup:
        group_id = await self._group_id(group)
        reply = await self._send(
            "PATCH", GROUP, group_id, body={"name": new_name}, content_type=MERGE_PATCH_JSON
        )
        log.info("sonarqube.group_renamed", group_id=group_id, new_name=new_name)
        return parsed(GROUP, _group, reply.json_object())

    async def delete_group(self, group: GroupRef) -> None:
        group_id = await self._group_id(group)
        try:
            await self._http.call("DELETE", GROUP, group_id, credentials=self._credentials)
        except NotFound as exc:
            if not exc.replayed:  # otherwise the first attempt deleted it
                raise
        log.info("sonarqube.group_deleted", group_id=group_id)

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
    @property
    def _has_external_id(self) -> bool:
        """Whether PATCH accepts `externalId`: 2025.1+ Server releases and Community Builds."""
        return self._version.major >= 2025 or self._version.is_community_build

    async def _user_id(self, user: UserRef) -> str:
        if user.id is not None:
            return user.id
        found = await self._existing_user(user.login)
        if found.id is None:
            raise NotFound(f"User '{user.login}' has no id", endpoint=USERS)
        return found.id

    async def _group_id(self, group: GroupRef) -> str:
        if group.id is not None:
            return group.id
        found = await self._existing_group(group.name)
        if found.id is None:
            raise NotFound(f"Group '{group.name}' has no id", endpoint=GROUPS)
        return found.id

    async def _patch_user(self, user: UserRef, patch: Mapping[str, Any]) -> SonarUser:
        user_id = await self._user_id(user)
        reply = await self._send("PATCH", USER, user_id, body=patch, content_type=MERGE_PATCH_JSON)
        return parsed(USER, lambda p: _user(p, active=True), reply.json_object())

    async def _first_user(
        self, query: Query, active: bool, wanted: Callable[[SonarUser], bool]
    ) -> SonarUser | None:
        users = self._pages(USERS, "users", query)
        return await self._first(users, USERS, lambda item: _user(item, active=active), wanted)


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
    return SonarGroup(
        name=item["name"],
        description=item.get("description"),
        default=bool(item.get("default")),
        id=str(item["id"]),
    )
