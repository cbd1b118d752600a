"""Declarative description of every endpoint the emulator serves, per profile.

The tables drive the emulator's own v1 parameter validation (required, possible values, lengths, maximum
value, defaults) and the v2 body validation, and a conformance test compares them with SonarQube's own API
definitions. Values are copied from the definitions of the version each profile imitates:

- 9.9: `api/webservices/list` of 9.9.8;
- 10.8 and 2025.6: the 2025.6 OpenAPI document (no 10.x definition exists; 2025.6 is the nearest). Its v1
  rendering has names and required flags only, so v1 limits, defaults and internal actions come from the
  Community Build 25.12 web services, whose names and required flags are identical;
- 26.7: Community Build 26.7 `api/webservices/list` and `/api/v2/api-docs`.

`api/settings/*` is served too (tests toggle SAML with it) but is not in the definitions, so it is kept apart
in `undeclared_specs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from scim_bridge.emulator.profiles import Profile, get_profile

BOOLEAN = ("true", "false", "yes", "no")
SELECTION = ("all", "deselected", "selected")
TOKEN_TYPES = ("USER_TOKEN", "GLOBAL_ANALYSIS_TOKEN", "PROJECT_ANALYSIS_TOKEN")


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One parameter (v1, v2 query) or JSON body field (v2) and the limits SonarQube declares for it."""

    name: str
    required: bool = False
    max_length: int | None = None
    min_length: int | None = None
    max_value: int | None = None
    possible_values: tuple[str, ...] | None = None
    default: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """One endpoint: v1 paths look like `api/users/create`, v2 paths like `/api/v2/.../users/{id}`."""

    api: Literal["v1", "v2"]
    method: str
    path: str
    params: tuple[ParamSpec, ...] = ()
    body: tuple[ParamSpec, ...] = ()

    def param(self, name: str) -> ParamSpec:
        """The declared parameter `name` (a KeyError is a bug in a handler)."""
        for param in self.params:
            if param.name == name:
                return param
        raise KeyError(f"{self.method} {self.path} declares no parameter {name!r}")


P = ParamSpec


def _get(path: str, *params: ParamSpec) -> EndpointSpec:
    return EndpointSpec("v1", "GET", path, params)


def _post(path: str, *params: ParamSpec) -> EndpointSpec:
    return EndpointSpec("v1", "POST", path, params)


def _paging(default_size: str, max_size: int | None = None) -> tuple[ParamSpec, ParamSpec]:
    return P("p", default="1"), P("ps", default=default_size, max_value=max_size)


def _project() -> tuple[ParamSpec, ParamSpec]:
    return P("projectId"), P("projectKey")


# v1 endpoints whose declaration is the same in every profile.
_V1_COMMON = (
    _get("api/server/version"),
    _get("api/system/status"),
    _get("api/authentication/validate"),
    _post("api/permissions/add_user", P("login", required=True), P("permission", required=True), *_project()),
    _post(
        "api/permissions/remove_user", P("login", required=True), P("permission", required=True), *_project()
    ),
    _post(
        "api/users/create",
        P("email", max_length=100),
        P("local", possible_values=BOOLEAN, default="true"),
        P("login", required=True, max_length=255, min_length=2),
        P("name", required=True, max_length=200),
        P("password"),
        P("scmAccount"),
    ),
    _post(
        "api/users/update",
        P("email", max_length=100),
        P("login", required=True, max_length=255),
        P("name", max_length=200),
        P("scmAccount"),
    ),
    _post(
        "api/users/deactivate",
        P("anonymize", possible_values=BOOLEAN, default="false"),
        P("login", required=True),
    ),
    _post("api/users/anonymize", P("login", required=True)),
    _post(
        "api/users/update_login",
        P("login", required=True),
        P("newLogin", required=True, max_length=255, min_length=2),
    ),
    _post(
        "api/users/update_identity_provider",
        P("login", required=True),
        P("newExternalIdentity"),
        P("newExternalProvider", required=True),
    ),
    _get(
        "api/users/groups",
        P("login", required=True),
        *_paging("25"),
        P("q"),
        P("selected", possible_values=SELECTION, default="selected"),
    ),
    _get("api/users/current"),
    _get("api/users/identity_providers"),
    _post(
        "api/user_groups/create",
        P("description", max_length=200),
        P("name", required=True, max_length=255),
    ),
    _post(
        "api/user_tokens/generate",
        P("expirationDate"),
        P("login"),
        P("name", required=True, max_length=100),
        P("projectKey"),
        P("type", possible_values=TOKEN_TYPES, default="USER_TOKEN"),
    ),
)

# 9.9: groups are addressed by `id` or name; no managed-instance parameters; no last-connection filters.
_V1_9_9 = (
    _post(
        "api/permissions/add_group",
        P("groupId"),
        P("groupName"),
        P("permission", required=True),
        *_project(),
    ),
    _post(
        "api/permissions/remove_group",
        P("groupId"),
        P("groupName"),
        P("permission", required=True),
        *_project(),
    ),
    _get(
        "api/users/search",
        P("deactivated", possible_values=BOOLEAN, default="false"),
        P("externalIdentity"),
        *_paging("50", 500),
        P("q", min_length=2),
    ),
    _post("api/user_groups/add_user", P("id"), P("login"), P("name")),
    _post("api/user_groups/delete", P("id"), P("name")),
    _post("api/user_groups/remove_user", P("id"), P("login"), P("name")),
    _get(
        "api/user_groups/search",
        P("f", possible_values=("name", "description", "membersCount")),
        *_paging("100", 500),
        P("q"),
    ),
    _post(
        "api/user_groups/update",
        P("currentName"),
        P("description", max_length=200),
        P("id"),
        P("name", max_length=255),
    ),
    _get(
        "api/user_groups/users",
        P("id"),
        P("name"),
        *_paging("25"),
        P("q"),
        P("selected", possible_values=SELECTION, default="selected"),
    ),
)

# 10.0 and later: groups by name only; `managed` filters; last-connection filters on users/search.
_V1_MODERN = (
    _post(
        "api/permissions/add_group",
        P("groupName", required=True),
        P("permission", required=True),
        *_project(),
    ),
    _post(
        "api/permissions/remove_group",
        P("groupName", required=True),
        P("permission", required=True),
        *_project(),
    ),
    _get(
        "api/users/search",
        P("deactivated", possible_values=BOOLEAN, default="false"),
        P("externalIdentity"),
        P("lastConnectedAfter"),
        P("lastConnectedBefore"),
        P("managed", possible_values=BOOLEAN),
        *_paging("50", 500),
        P("q", min_length=2),
        P("slLastConnectedAfter"),
        P("slLastConnectedBefore"),
    ),
    _post("api/user_groups/add_user", P("login"), P("name", required=True)),
    _post("api/user_groups/delete", P("name", required=True)),
    _post("api/user_groups/remove_user", P("login"), P("name", required=True)),
    _get(
        "api/user_groups/search",
        P("f", possible_values=("name", "description", "membersCount", "managed")),
        P("managed", possible_values=BOOLEAN),
        *_paging("100", 500),
        P("q"),
    ),
    _post(
        "api/user_groups/update",
        P("currentName", required=True),
        P("description", max_length=200),
        P("name", max_length=255),
    ),
    _get(
        "api/user_groups/users",
        P("name", required=True),
        *_paging("25"),
        P("q"),
        P("selected", possible_values=SELECTION, default="selected"),
    ),
)

_USERS = "/api/v2/users-management/users"
_GROUPS = "/api/v2/authorizations/groups"
_MEMBERSHIPS = "/api/v2/authorizations/group-memberships"
_V2_PAGE = (P("pageSize", max_value=500, default="50"), P("pageIndex", default="1"))


def _v2(
    method: str, path: str, params: tuple[ParamSpec, ...] = (), body: tuple[ParamSpec, ...] = ()
) -> EndpointSpec:
    return EndpointSpec("v2", method, path, params, body)


# The 26.x api-docs add `minLength: 0` to some text fields; a minimum of 0 is no minimum, so it is left out.
_V2 = (
    _v2(
        "GET",
        _USERS,
        (
            P("active", default="true"),
            P("managed"),
            P("q"),
            P("externalIdentity"),
            P("sonarQubeLastConnectionDateFrom"),
            P("sonarQubeLastConnectionDateTo"),
            P("sonarLintLastConnectionDateFrom"),
            P("sonarLintLastConnectionDateTo"),
            P("groupId"),
            *_V2_PAGE,
        ),
    ),
    _v2(
        "POST",
        _USERS,
        body=(
            P("email", max_length=100, min_length=1),
            P("local", default="true"),
            P("login", required=True, max_length=100, min_length=2),
            P("name", required=True, max_length=200),
            P("password"),
            P("scmAccounts"),
        ),
    ),
    _v2("GET", f"{_USERS}/{{id}}"),
    _v2("DELETE", f"{_USERS}/{{id}}", (P("anonymize", default="false"),)),
    _v2(
        "PATCH",
        f"{_USERS}/{{id}}",
        body=(
            P("login", max_length=100, min_length=2),
            P("name", max_length=200),
            P("email", max_length=100, min_length=1),
            P("scmAccounts"),
            P("externalProvider"),
            P("externalLogin", max_length=255, min_length=1),
            P("externalId", max_length=255, min_length=1),
        ),
    ),
    _v2("GET", _GROUPS, (P("managed"), P("q"), P("userId"), *_V2_PAGE)),
    _v2(
        "POST",
        _GROUPS,
        body=(P("name", required=True, max_length=255, min_length=1), P("description", max_length=200)),
    ),
    _v2("GET", f"{_GROUPS}/{{id}}"),
    _v2("DELETE", f"{_GROUPS}/{{id}}"),
    _v2(
        "PATCH",
        f"{_GROUPS}/{{id}}",
        body=(P("name", max_length=255, min_length=1), P("description", max_length=200)),
    ),
    _v2("GET", _MEMBERSHIPS, (P("userId"), P("groupId"), *_V2_PAGE)),
    _v2("POST", _MEMBERSHIPS, body=(P("userId"), P("groupId"))),
    _v2("DELETE", f"{_MEMBERSHIPS}/{{id}}"),
)


# Served for tests, the demo and `scim-bridge check`, absent from SonarQube's definitions of these endpoints.
_UNDECLARED = (
    _get("api/settings/values", P("component"), P("keys")),
    _post("api/settings/set", P("component"), P("key", required=True), P("value")),
    _get("api/navigation/global"),
)


def specs_for(profile: Profile) -> tuple[EndpointSpec, ...]:
    """Every endpoint declared in SonarQube's definitions that `profile` serves."""
    v1 = _V1_COMMON + (_V1_9_9 if profile.group_ids_in_v1 else _V1_MODERN)
    if not profile.v2_api:
        return v1
    return v1 + _V2


def undeclared_specs() -> tuple[EndpointSpec, ...]:
    """Endpoints the emulator serves that the definitions it follows do not describe (`api/settings/*`,
    `api/navigation/global`)."""
    return _UNDECLARED


def endpoint_specs(profile: str) -> list[EndpointSpec]:
    """The declared endpoints of the profile called `profile` (see the module docstring for sources)."""
    return list(specs_for(get_profile(profile)))
