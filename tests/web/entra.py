"""Helpers shared by the Entra catalogue (tests/web/test_entra_*.py) and the other web tests that act as
Entra: the people of the corpus, checks on the bridge's answers, Entra's requests, and SonarQube read back.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Final

import pytest

from tests.support import ERROR_SCHEMA, LIST_RESPONSE_SCHEMA, SCIM_JSON, USER_SCHEMA, read_payload

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tests.support import Reply
    from tests.web.conftest import Bridge

EMPTY_LIST: Final = {
    "schemas": [LIST_RESPONSE_SCHEMA],
    "totalResults": 0,
    "Resources": [],
    "startIndex": 1,
    "itemsPerPage": 0,
}
"""Entra's expected answer to a filter that matches nothing, exactly as docs/entra.md A1 shows it."""

ADELE: Final = "adele.vance@contoso.example"
MEGAN: Final = "megan.bowen@contoso.example"
NESTOR: Final = "nestor.wilke@contoso.example"
DIALECTS: Final = ("default", "flag")


def expect(reply: Reply, status: int) -> Any:
    """The body of an answer that must have `status`; every answer with a body is `application/scim+json`."""
    assert reply.status == status, f"expected {status}, got {reply!r}"
    if status == 204:
        assert reply.body is None, reply
        return None
    content_type = reply.headers.get("Content-Type", "")
    assert content_type.split(";")[0].strip() == SCIM_JSON, content_type
    return reply.body


def expect_error(reply: Reply, status: int | None = None, scim_type: str | None = None) -> str:
    """The `detail` of a SCIM Error: `status` if given, else any 4xx but 401/404; `scimType` if given."""
    if status is None:
        assert 400 <= reply.status < 500, reply
        assert reply.status not in {401, 404}, reply
    body = expect(reply, status or reply.status)
    assert body["schemas"] == [ERROR_SCHEMA], body
    assert str(body["status"]) == str(reply.status), body
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    detail: str = body.get("detail") or ""
    return detail


def expect_protection(reply: Reply, name: str) -> None:
    """A refusal by one of the bridge's protections: a 4xx SCIM error that names the protected object."""
    detail = expect_error(reply)
    assert "protect" in detail.lower(), detail
    assert name in detail, detail


def dialects(stem: str) -> list[Any]:
    """`entra/<stem>-default` and `entra/<stem>-flag`, as parameters with readable ids."""
    return [pytest.param(f"entra/{stem}-{dialect}", id=dialect) for dialect in DIALECTS]


def with_ids(body: Any, ids: Mapping[str, str]) -> Any:
    """A payload with its placeholder ids (`u-adele`, `g-devs`...) replaced by the bridge's real ids."""
    text = json.dumps(body)
    for placeholder, real in ids.items():
        text = text.replace(placeholder, real)
    return json.loads(text)


def entra_payload(name: str, **ids: str) -> Any:
    """A payload of the corpus with placeholders replaced: `entra_payload("entra/a12-…", u_adele=id)`."""
    return with_ids(read_payload(name), {key.replace("_", "-"): value for key, value in ids.items()})


def user_body(user_name: str = ADELE, **changes: Any) -> dict[str, Any]:
    """Entra's default create body (A4) for `user_name`; a change to None drops that attribute."""
    body: dict[str, Any] = read_payload("entra/a4-create-user")
    if user_name != ADELE:
        local = user_name.partition("@")[0]
        given, _, family = local.partition(".")
        display = f"{given.title()} {family.title()}".strip()
        body |= {
            "userName": user_name,
            "externalId": local,
            "displayName": display,
            "emails": [{"primary": True, "type": "work", "value": user_name}],
            "name": {"formatted": display, "givenName": given.title(), "familyName": family.title() or "X"},
        }
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


async def create_user(bridge: Bridge, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """POST a user (A4) and return the created resource."""
    created: dict[str, Any] = expect(await bridge.post("/Users", body or user_body()), 201)
    return created


async def create_group(bridge: Bridge, display_name: str = "Sonar Developers") -> dict[str, Any]:
    """POST a group as Entra does (A10: ADSCIM schema URN, no members) and return the created resource."""
    body = read_payload("entra/a10-create-group") | {"displayName": display_name}
    created: dict[str, Any] = expect(await bridge.post("/Groups", body), 201)
    return created


async def find(bridge: Bridge, resource: str, expression: str, **params: str) -> list[dict[str, Any]]:
    """The resources a `filter` query returns (A2, A8), checked to be a ListResponse."""
    body = expect(await bridge.get(f"/{resource}", params={"filter": expression, **params}), 200)
    assert body["schemas"] == [LIST_RESPONSE_SCHEMA], body
    assert body["totalResults"] == len(body["Resources"]), body
    found: list[dict[str, Any]] = body["Resources"]
    return found


def only(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The one resource a matching query must return (more than one is `DuplicateTargetEntries` for Entra)."""
    assert len(resources) == 1, resources
    return resources[0]


async def get_user(bridge: Bridge, scim_id: str) -> dict[str, Any]:
    """GET /Users/{id} (A3)."""
    user: dict[str, Any] = expect(await bridge.get(f"/Users/{scim_id}"), 200)
    return user


async def patch_user(bridge: Bridge, scim_id: str, body: Any) -> dict[str, Any]:
    """PATCH /Users/{id} (A5): 200 with the whole resource."""
    user: dict[str, Any] = expect(await bridge.patch(f"/Users/{scim_id}", body), 200)
    assert user["id"] == scim_id, user
    assert USER_SCHEMA in user["schemas"], user
    return user


async def sonar_users(bridge: Bridge) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = (await bridge.sonar.control.state())["users"]
    return users


async def sonar_user(bridge: Bridge, user_name: str) -> dict[str, Any]:
    """The one SonarQube user behind a SCIM `userName`: its SAML external login, or its login."""
    users = await sonar_users(bridge)
    matches = [
        user
        for user in users
        if (user["externalProvider"] == "saml" and user["externalLogin"] == user_name)
        or user["login"] == user_name
    ]
    assert len(matches) == 1, f"{user_name}: {matches}"
    return matches[0]


async def sonar_groups_of(bridge: Bridge, login: str) -> set[str]:
    """The names of the SonarQube groups `login` is a member of."""
    memberships = (await bridge.sonar.control.state())["memberships"]
    return {entry["group"] for entry in memberships if entry["login"] == login}


async def sonar_members(bridge: Bridge, group: str) -> set[str]:
    """The logins of the members of SonarQube group `group`."""
    memberships = (await bridge.sonar.control.state())["memberships"]
    return {entry["login"] for entry in memberships if entry["group"] == group}


async def sonar_group_names(bridge: Bridge) -> set[str]:
    return {group["name"] for group in (await bridge.sonar.control.state())["groups"]}


async def sonar_writes(bridge: Bridge) -> list[dict[str, Any]]:
    """Every SonarQube call since the journal was last cleared that could change something."""
    return [entry for entry in await bridge.sonar.control.journal() if entry["method"] != "GET"]


def assert_saml_link(sonar: Mapping[str, Any], user_name: str, profile: str) -> None:
    """SonarQube will match this user at SAML login: provider `saml`, external login (and id) = `userName`."""
    assert sonar["externalProvider"] == "saml", sonar
    assert sonar["externalLogin"] == user_name, sonar
    assert sonar["local"] is False, sonar
    if profile != "10.8":  # 10.8's v2 PATCH ignores externalId; 9.9 copies the external login into it
        assert sonar["externalId"] == user_name, sonar


def valid_login(login: str, profile: str) -> bool:
    """A login SonarQube `profile` accepts (docs/sonarqube.md SQ6; v2 takes at most 100 characters)."""
    first = "[A-Za-z0-9]" if profile == "9.9" else "[A-Za-z0-9_]"
    limit = 255 if profile == "9.9" else 100
    return len(login) <= limit and re.fullmatch(first + r"[A-Za-z0-9_.@\-]+", login) is not None


def echoed(resource: Mapping[str, Any], sent: Mapping[str, Any], *keys: str) -> None:
    """Entra needs each value back exactly as sent, or it re-PATCHes it every cycle (docs/entra.md E1)."""
    for key in keys:
        assert resource.get(key) == sent[key], f"{key}: sent {sent[key]!r}, got {resource.get(key)!r}"
