"""v1 `api/users/*` actions (docs/sonarqube.md SQ6-SQ14, SQ22).

Each action reads its parameters in SonarQube's order (SQ26).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scim_bridge.emulator import queries, rules, views
from scim_bridge.emulator.model import (
    SAML_PROVIDER,
    UNSET,
    NewUser,
    UserChanges,
    bad_request,
    forbidden,
    not_found,
)
from scim_bridge.emulator.state import SAML_PROVIDER_NAME, SETTING_DEFAULTS
from scim_bridge.emulator.v1 import json_response, no_content

if TYPE_CHECKING:
    from datetime import datetime

    from aiohttp import web

    from scim_bridge.emulator.model import User
    from scim_bridge.emulator.v1 import V1Call, V1Handler

_MAX_PAGE_SIZE = 500
_LDAP_DEFAULT = "LDAP_default"


def _user_or_404(call: V1Call, login: str, *, active_only: bool) -> User:
    user = call.directory.active_user_by_login(login) if active_only else call.directory.user_by_login(login)
    if user is None:
        raise not_found(f"User '{login}' doesn't exist")
    return user


def _scm_accounts(call: V1Call) -> list[str]:
    return call.multi("scmAccount") if call.has("scmAccount") else []


def create(call: V1Call) -> web.Response:
    call.require_admin()
    email = call.param("email")
    local = call.boolean("local") is not False
    login = call.mandatory("login")
    name = call.mandatory("name")
    password = call.param("password")
    scm_accounts = _scm_accounts(call)
    if call.profile.create_checks_emptiness and not login:
        raise bad_request("Login is mandatory and must not be empty")
    if call.profile.create_checks_emptiness and not name:
        raise bad_request("Name is mandatory and must not be empty")
    if local and not password:
        raise bad_request("Password is mandatory and must not be empty")
    if not local and password:
        raise bad_request("Password should only be set on local user")
    if not rules.is_valid_v1_email(email):
        raise bad_request(f"Email '{email}' is not valid")
    rules.check_scm_accounts_format(scm_accounts)
    new = NewUser(login, name, email or None, password or None, tuple(scm_accounts), local)
    user = call.directory.register_user(new)
    return json_response({"user": views.v1_created_user(user)})


def update(call: V1Call) -> web.Response:
    call.require_admin()
    scm_accounts = _scm_accounts(call)
    rules.check_scm_accounts_format(scm_accounts)
    login = call.mandatory("login")
    name = call.param("name")
    email = call.param("email")
    if not login:
        raise bad_request("Login is mandatory and must not be empty")
    if not rules.is_valid_v1_email(email):
        raise bad_request(f"Email '{email}' is not valid")
    user = _user_or_404(call, login, active_only=True)
    if not user.local:  # also when the instance is managed, which the emulator never is
        if name is not None:
            raise bad_request(call.profile.nonlocal_name_message)
        if email is not None:
            raise bad_request(call.profile.nonlocal_email_message)
    changes = UserChanges(
        name=UNSET if name is None else name,
        email=UNSET if email is None else email or None,
        scm_accounts=tuple(scm_accounts) if scm_accounts else UNSET,
    )
    updated = call.directory.update_user(user, changes)
    # SonarQube looks the groups up by uuid where it expects a login, so this list is always empty.
    return json_response({"user": views.v1_written_user(updated, groups=[])})


def deactivate(call: V1Call) -> web.Response:
    caller = call.require_admin()
    login = call.mandatory("login")
    if login == caller.login:
        raise bad_request("Self-deactivation is not possible")
    anonymize = call.boolean("anonymize") is True
    user = _user_or_404(call, login, active_only=False)
    deactivated = call.directory.deactivate(user, anonymize=anonymize)
    return json_response({"user": views.v1_written_user(deactivated, groups=[])})


def anonymize(call: V1Call) -> web.Response:
    call.require_admin()
    login = call.mandatory("login")
    user = _user_or_404(call, login, active_only=False)
    if user.active:
        raise bad_request(f"User '{login}' is not deactivated")
    call.directory.anonymize(user)
    return no_content()


def update_login(call: V1Call) -> web.Response:
    call.require_admin()
    login = call.mandatory("login")
    new_login = call.mandatory("newLogin")
    user = _user_or_404(call, login, active_only=True)
    call.directory.update_user(user, UserChanges(login=new_login))
    return no_content()


def update_identity_provider(call: V1Call) -> web.Response:
    call.require_admin()
    login = call.mandatory("login")
    provider = call.mandatory("newExternalProvider")
    external_login = call.param("newExternalIdentity")
    if provider in call.profile.ldap_aliases:
        provider = _LDAP_DEFAULT
    if not call.directory.accepts_provider(provider):
        raise call.directory.provider_error("parameter 'newExternalProvider'", provider)
    user = _user_or_404(call, login, active_only=True)
    external_login = user.external_login if external_login is None else external_login
    external_id = external_login if call.profile.identity_provider_sets_external_id else UNSET
    changes = UserChanges(external_provider=provider, external_login=external_login, external_id=external_id)
    call.directory.update_user(user, changes)
    return no_content()


_DATE_FILTERS = ("lastConnectedAfter", "lastConnectedBefore", "slLastConnectedAfter", "slLastConnectedBefore")


def search(call: V1Call) -> web.Response:
    caller = call.require_login()
    _check_admin_only_filters(call, caller)
    page_size = call.mandatory_int("ps")
    if page_size > _MAX_PAGE_SIZE:
        raise bad_request(f"The 'ps' parameter must be less than {_MAX_PAGE_SIZE}")
    query = call.param("q")
    deactivated = call.boolean("deactivated") is True
    dates = _date_filters(call)
    if call.profile.managed_fields and call.param("managed") is not None:
        raise bad_request("The 'managed' parameter is only available for managed instances.")
    external_login = call.param("externalIdentity")
    page_index = call.mandatory_int("p")
    elasticsearch = call.profile.elasticsearch_user_search
    found = queries.by_login(
        [
            user
            for user in call.directory.users.values()
            if user.active is not deactivated
            and queries.user_matches(user, query, elasticsearch=elasticsearch)
            and _connected_in_range(user, dates)
        ]
    )
    if elasticsearch:
        # 9.9 fetches one page, then keeps the users of that page who have the external identity.
        users = [
            u for u in queries.elasticsearch_page(found, page_index, page_size) if _has(u, external_login)
        ]
        total = len(found)
    else:
        found = [user for user in found if _has(user, external_login)]
        users = queries.page(found, page_index, page_size) if page_size else []
        total = len(found)
    return json_response(
        {
            "paging": views.paging(page_index, page_size, total),
            "users": [
                views.v1_searched_user(call.directory, views.user_view(call.directory, caller, user), user)
                for user in users
            ],
        }
    )


def _check_admin_only_filters(call: V1Call, caller: User) -> None:
    if call.directory.is_admin(caller):
        return
    for name in (*(_DATE_FILTERS if call.profile.managed_fields else ()), "externalIdentity"):
        if call.param(name) is not None:
            raise forbidden(f"parameter {name} requires Administer System permission.")


def _date_filters(call: V1Call) -> dict[str, datetime | None]:
    if not call.profile.managed_fields:
        return dict.fromkeys(_DATE_FILTERS)
    return {name: _date(call.param(name)) for name in _DATE_FILTERS}


def _date(value: str | None) -> datetime | None:
    return None if value is None else queries.parse_datetime(value)


def _connected_in_range(user: User, dates: dict[str, datetime | None]) -> bool:
    return queries.connected_between(
        user.last_connection, dates["lastConnectedAfter"], dates["lastConnectedBefore"]
    ) and queries.connected_between(
        user.sonarlint_last_connection, dates["slLastConnectedAfter"], dates["slLastConnectedBefore"]
    )


def _has(user: User, external_login: str | None) -> bool:
    return external_login is None or user.external_login == external_login


def groups(call: V1Call) -> web.Response:
    call.require_admin()
    login = call.mandatory("login")
    selection = call.param("selected")
    query = call.param("q")
    page_index = call.mandatory_int("p")
    page_size = call.mandatory_int("ps")
    if page_size > _MAX_PAGE_SIZE:
        raise bad_request(f"The 'ps' parameter must be less than {_MAX_PAGE_SIZE}")
    user = call.directory.active_user_by_login(login)
    if user is None:
        raise not_found(f"Unknown user: {login}")
    candidates = [
        (group, call.directory.is_member(group, user))
        for group in sorted(call.directory.groups.values(), key=lambda group: group.name)
        if query is None or queries.contains(group.name, query)
    ]
    shown = [
        (g, member) for g, member in candidates if selection == "all" or member == (selection == "selected")
    ]
    return json_response(
        {
            "paging": views.paging(page_index, page_size, len(shown)),
            "groups": [
                views.without_none(
                    {
                        "id": group.uuid,
                        "name": group.name,
                        "description": group.description,
                        "selected": member,
                        "default": group.default,
                    }
                )
                for group, member in queries.page(shown, page_index, page_size)
            ],
        }
    )


def current(call: V1Call) -> web.Response:
    caller = call.require_login()
    return json_response(
        views.without_none(
            {
                "isLoggedIn": True,
                "login": caller.login,
                "name": caller.name,
                "email": caller.email,
                "local": caller.local,
                "externalIdentity": caller.external_login,
                "externalProvider": caller.external_provider,
                "groups": [group.name for group in call.directory.groups_of(caller)],
                "scmAccounts": list(caller.scm_accounts),
                "permissions": {"global": sorted(call.directory.global_permissions(caller))},
            }
        )
    )


def identity_providers(call: V1Call) -> web.Response:
    saml = {
        "key": SAML_PROVIDER,
        "name": call.directory.settings.get(SAML_PROVIDER_NAME, SETTING_DEFAULTS[SAML_PROVIDER_NAME]),
        "iconPath": "/images/saml.png",
        "backgroundColor": "#444444",
    }
    return json_response({"identityProviders": [saml] if call.directory.saml_enabled else []})


HANDLERS: dict[str, V1Handler] = {
    "api/users/create": create,
    "api/users/update": update,
    "api/users/deactivate": deactivate,
    "api/users/anonymize": anonymize,
    "api/users/update_login": update_login,
    "api/users/update_identity_provider": update_identity_provider,
    "api/users/search": search,
    "api/users/groups": groups,
    "api/users/current": current,
    "api/users/identity_providers": identity_providers,
}
