"""Entra ID's user requests (docs/entra.md A1-A7, A15-A17 and the user quirks) sent to the
bridge in both PATCH dialects, on every emulated SonarQube version, each result read back from SonarQube.

The helpers shared with the group and scenario modules of this catalogue are in tests/web/entra.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    LIST_RESPONSE_SCHEMA,
    ONE_PROFILE_PER_API,
    PATCH_OP_SCHEMA,
    USER_SCHEMA,
    read_payload,
)
from tests.web.entra import (
    ADELE,
    DIALECTS,
    EMPTY_LIST,
    MEGAN,
    NESTOR,
    assert_saml_link,
    create_user,
    dialects,
    echoed,
    entra_payload,
    expect,
    expect_error,
    find,
    get_user,
    patch_user,
    sonar_groups_of,
    sonar_user,
    sonar_users,
    sonar_writes,
    user_body,
    valid_login,
)

if TYPE_CHECKING:
    from tests.web.conftest import Bridge, BridgeFactory


# --- helpers of this module -------------------------------------------------------------------------------


def strip_nulls(value: Any) -> Any:
    """A body as Entra's current engine would send it: explicit nulls omitted (docs/entra.md A4, Q21)."""
    if isinstance(value, dict):
        return {key: strip_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [strip_nulls(item) for item in value]
    return value


def sonar_keeps_name_and_email(profile: str) -> bool:
    """9.9's v1 API cannot change a SAML-linked user's name or e-mail; the bridge keeps them in its store."""
    return profile != "9.9"


# --- A1, A2, A3: probe, match, retrieve ------------------------------------------------------------------


async def test_a1_test_connection_probe_gets_exactly_an_empty_list(entra: Bridge) -> None:
    """Test Connection's `userName eq "<random GUID>"`: 200, A1's empty ListResponse, nothing written."""
    await entra.sonar.control.clear_journal()
    reply = await entra.get("/Users", params=read_payload("entra/a1-probe-users-query"))
    assert expect(reply, 200) == EMPTY_LIST
    assert await sonar_writes(entra) == []


async def test_q23_plus_and_percent_encoded_filter_is_decoded(entra: Bridge) -> None:
    """A filter sent as Entra encodes it (`+` for spaces, `%22` for quotes) matches like a decoded one."""
    created = await create_user(entra)
    body = expect(await entra.get(f"/Users?filter=userName+eq+%22{ADELE}%22"), 200)
    assert [user["id"] for user in body["Resources"]] == [created["id"]]
    probe = "/Users?filter=userName+eq+%2202f6c1de-3f6c-4a55-8d0b-6b0c8f1f7a11%22"
    assert expect(await entra.get(probe), 200) == EMPTY_LIST


@pytest.mark.parametrize(
    "query",
    ["entra/a2-match-username-query", "entra/a2-match-externalid-query", "entra/a2-match-work-email-query"],
    ids=["userName", "externalId", "work-email"],
)
async def test_a2_matching_attribute_query_finds_the_user(entra: Bridge, query: str) -> None:
    """Each matching attribute Entra may use (A2) finds the one user, whole, with its `id`."""
    created = await create_user(entra)
    body = expect(await entra.get("/Users", params=read_payload(query)), 200)
    assert body["totalResults"] == 1
    assert body["itemsPerPage"] == 1
    assert body["startIndex"] == 1
    (found,) = body["Resources"]
    assert found["id"] == created["id"]
    echoed(found, user_body(), "userName", "externalId", "emails", "name", "displayName", "active")


@pytest.mark.parametrize(
    "expression",
    [
        f'userName eq "{ADELE.upper()}"',
        'userName eq "Adele.Vance@Contoso.Example"',
        f'UserName eq "{ADELE}"',
        f'userName Eq "{ADELE}"',
    ],
    ids=["value-upper", "value-mixed", "attribute-capitalised", "operator-capitalised"],
)
async def test_a2_username_filter_is_case_insensitive(entra: Bridge, expression: str) -> None:
    """`userName` is caseExact=false: another case of the value (or of the name, Q25) still matches."""
    created = await create_user(entra)
    found = await find(entra, "Users", expression)
    assert [user["id"] for user in found] == [created["id"]]
    assert found[0]["userName"] == ADELE


async def test_a2_external_id_filter_is_case_exact(entra: Bridge) -> None:
    """`externalId` is caseExact (Q20, default source mailNickname): another case does not match."""
    created = await create_user(entra)
    assert [user["id"] for user in await find(entra, "Users", 'externalId eq "adelev"')] == [created["id"]]
    assert await find(entra, "Users", 'externalId eq "AdeleV"') == []


@pytest.mark.parametrize(
    "expression",
    [
        'userName eq "isaiah.langer@contoso.example"',
        'externalId eq "isaiahl"',
        'emails[type eq "work"].value eq "isaiah.langer@contoso.example"',
    ],
    ids=["userName", "externalId", "work-email"],
)
async def test_a2_query_without_match_is_an_empty_list(entra: Bridge, expression: str) -> None:
    """A matching query that finds nothing is 200 with an empty ListResponse, never 400 or 404
    (docs/entra.md E3)."""
    await create_user(entra)
    assert expect(await entra.get("/Users", params={"filter": expression}), 200) == EMPTY_LIST


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_a3_unknown_user_id_is_404(entra: Bridge, method: str) -> None:
    """An id the bridge never issued answers 404 with a SCIM Error body (A3, A5, A7)."""
    body = read_payload("entra/a5-add-nickname-default") if method == "PATCH" else None
    reply = await entra.request(method, "/Users/0d3b5a6e-8c1f-4e2a-9b7d-3f6a1c2e4b5d", json=body)
    expect_error(reply, 404)


# --- A4: create ------------------------------------------------------------------------------------------


async def test_a4_create_answers_201_with_the_resource_as_sent(entra: Bridge, entra_profile: str) -> None:
    """POST /Users: 201 with `id`, `meta` and the values as sent; GET returns the same; SonarQube has it."""
    sent = user_body()
    reply = await entra.post("/Users", sent)
    created = expect(reply, 201)
    scim_id = created["id"]
    assert scim_id
    meta = created["meta"]
    assert meta["resourceType"] == "User"
    assert meta["location"].endswith(f"{entra.settings.base_path}/Users/{scim_id}")
    assert reply.headers.get("Location") == meta["location"]
    assert meta["version"].startswith('W/"'), meta
    assert meta["created"]
    assert meta["lastModified"]
    assert USER_SCHEMA in created["schemas"]
    echoed(created, sent, "userName", "externalId", "displayName", "name", "emails", "active")

    fetched = await get_user(entra, scim_id)
    assert {key: value for key, value in fetched.items() if key != "meta"} == {
        key: value for key, value in created.items() if key != "meta"
    }
    assert fetched["meta"]["version"] == meta["version"]
    assert fetched["meta"]["location"] == meta["location"]

    sonar = await entra.sonar.user_state(ADELE)
    assert sonar["active"] is True
    assert sonar["name"] == "Adele Vance"
    assert sonar["email"] == "Adele.Vance@Contoso.Example"
    assert_saml_link(sonar, ADELE, entra_profile)
    assert await sonar_groups_of(entra, ADELE) == {"sonar-users"}


async def test_a4_create_with_enterprise_extension_echoes_every_attribute(entra: Bridge) -> None:
    """Attributes SonarQube cannot hold (title, phones, enterprise extension) come back exactly as sent."""
    sent = read_payload("entra/a4-create-user-enterprise")
    created = await create_user(entra, sent)
    assert ENTERPRISE_USER_SCHEMA in created["schemas"]
    keys = (
        "userName",
        "externalId",
        "displayName",
        "title",
        "emails",
        "name",
        "phoneNumbers",
        ENTERPRISE_USER_SCHEMA,
    )
    echoed(created, sent, *keys)
    echoed(await get_user(entra, created["id"]), sent, *keys)
    sonar = await entra.sonar.user_state(MEGAN)
    assert (sonar["name"], sonar["email"]) == ("Megan Bowen", MEGAN)


async def test_a4_legacy_body_with_nulls_and_a_malformed_urn(entra: Bridge, entra_profile: str) -> None:
    """The legacy sample (explicit nulls, `…enterprise:2.0User` URN) is accepted; nulls are simply absent."""
    sent = read_payload("entra/a4-create-user-legacy-nulls")
    created = await create_user(entra, sent)
    expected = strip_nulls(sent)
    echoed(created, expected, "userName", "externalId", "displayName", "emails", "name", "addresses")
    echoed(created, expected, "phoneNumbers", ENTERPRISE_USER_SCHEMA)
    assert "nickName" not in created
    sonar = await entra.sonar.user_state("lee.gu@contoso.example")
    assert (sonar["name"], sonar["email"], sonar["active"]) == ("Lee Gu", "lee.gu@contoso.example", True)
    assert_saml_link(sonar, "lee.gu@contoso.example", entra_profile)


async def test_q25_capitalised_attribute_names_in_create(entra: Bridge) -> None:
    """Names in another case (`UserName`, `Emails[].Primary`, `"Active": "True"`) are read as the RFC ones."""
    created = await create_user(entra, read_payload("entra/a4-create-user-capitalised-names"))
    assert created["userName"] == "diego.siciliani@contoso.example"
    assert created["displayName"] == "Diego"
    assert created["active"] is True
    assert created["emails"] == [
        {"primary": True, "type": "work", "value": "diego.siciliani@contoso.example"}
    ]
    assert created["name"] == {"givenName": "Diego", "familyName": "Siciliani"}
    sonar = await entra.sonar.user_state("diego.siciliani@contoso.example")
    assert (sonar["name"], sonar["email"]) == ("Diego", "diego.siciliani@contoso.example")


async def test_q13_manager_as_a_string_in_create(entra: Bridge) -> None:
    """A manager sent as a bare id string in the create body comes back as `{"value": id}` (Q13)."""
    megan = await create_user(entra, user_body(MEGAN))
    sent = entra_payload("entra/a4-create-user-manager-string", u_megan=megan["id"])
    created = await create_user(entra, sent)
    assert created[ENTERPRISE_USER_SCHEMA]["manager"] == {"value": megan["id"]}
    assert (await get_user(entra, created["id"]))[ENTERPRISE_USER_SCHEMA]["manager"] == {"value": megan["id"]}
    sonar = await entra.sonar.user_state(NESTOR)
    assert sonar["name"] == NESTOR  # no displayName and no name: SonarQube's name is the userName


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({}, "Adele Vance"),
        ({"displayName": "Adele V."}, "Adele V."),
        ({"displayName": None}, "Adele Vance"),
        (
            {"displayName": None, "name": {"formatted": "Ms. Adele Vance", "givenName": "A"}},
            "Ms. Adele Vance",
        ),
        (
            {"displayName": None, "name": {"givenName": "Adele", "familyName": "Vance-Smith"}},
            "Adele Vance-Smith",
        ),
        ({"displayName": None, "name": None}, ADELE),
    ],
    ids=["display-name", "display-name-wins", "formatted", "formatted-wins", "given-family", "user-name"],
)
async def test_a4_sonarqube_name_precedence(entra: Bridge, changes: dict[str, Any], name: str) -> None:
    """SonarQube's name: `displayName`, else `name.formatted`, else given and family name, else `userName`."""
    await create_user(entra, user_body(**changes))
    assert (await entra.sonar.user_state(ADELE))["name"] == name


@pytest.mark.parametrize(
    ("emails", "email"),
    [
        (
            [
                {"type": "home", "value": "adele@home.example"},
                {"type": "work", "value": "adele@work.example"},
            ],
            "adele@work.example",
        ),
        (
            [
                {"type": "work", "value": "adele@work.example"},
                {"type": "home", "value": "adele@home.example", "primary": True},
            ],
            "adele@home.example",
        ),
        (
            [{"type": "other", "value": "adele@one.example"}, {"type": "home", "value": "adele@two.example"}],
            "adele@one.example",
        ),
    ],
    ids=["work", "primary", "first"],
)
async def test_a4_sonarqube_email_precedence(entra: Bridge, emails: list[dict[str, Any]], email: str) -> None:
    """SonarQube's e-mail is the primary one, else the `work` one, else the first; all are echoed as sent."""
    created = await create_user(entra, user_body(emails=emails))
    assert created["emails"] == emails
    assert (await entra.sonar.user_state(ADELE))["email"] == email


@pytest.mark.parametrize("user_name", [ADELE, ADELE.upper()], ids=["same-case", "other-case"])
async def test_a4_duplicate_user_name_is_409_uniqueness(entra: Bridge, user_name: str) -> None:
    """A second POST of a `userName` (in any case) is 409 `uniqueness`; SonarQube keeps one user."""
    first = await create_user(entra)
    expect_error(await entra.post("/Users", user_body(userName=user_name)), 409, "uniqueness")
    assert [user["id"] for user in await find(entra, "Users", f'userName eq "{ADELE}"')] == [first["id"]]
    users = [user for user in await sonar_users(entra) if user["login"] != "admin"]
    assert [user["login"] for user in users] == [ADELE]


async def test_a4_concurrent_creates_of_one_user_name(entra: Bridge) -> None:
    """Two POSTs of one `userName` at once: one 201, one 409 `uniqueness`, exactly one SonarQube user."""
    replies = await asyncio.gather(entra.post("/Users", user_body()), entra.post("/Users", user_body()))
    statuses = sorted(reply.status for reply in replies)
    assert statuses == [201, 409], replies
    loser = next(reply for reply in replies if reply.status == 409)
    expect_error(loser, 409, "uniqueness")
    users = [user for user in await sonar_users(entra) if user["login"] != "admin"]
    assert [user["login"] for user in users] == [ADELE]
    assert len(await find(entra, "Users", f'userName eq "{ADELE}"')) == 1


@pytest.mark.parametrize(
    "content_type", ["application/scim+json; charset=utf-8", "application/json"], ids=["scim-json", "json"]
)
async def test_q22_request_content_types(entra: Bridge, content_type: str) -> None:
    """Bodies in `application/scim+json; charset=utf-8` (Entra) or `application/json` are read."""
    reply = await entra.request(
        "POST", "/Users", data=json.dumps(user_body()), headers={"Content-Type": content_type}
    )
    assert expect(reply, 201)["userName"] == ADELE


async def test_a4_without_saml_in_sonarqube_the_user_is_not_linked(
    bridge_factory: BridgeFactory, entra_profile: str
) -> None:
    """With SAML disabled in SonarQube (`saml_link` auto) the user is created non-local, not linked."""
    bridge = await bridge_factory(entra_profile, saml=False)
    created = await create_user(bridge)
    assert created["userName"] == ADELE
    sonar = await bridge.sonar.user_state(ADELE)
    assert sonar["externalProvider"] != "saml"
    assert (sonar["active"], sonar["local"], sonar["name"]) == (True, False, "Adele Vance")


@pytest.mark.parametrize(
    "user_name",
    [
        "o'brien@contoso.com",
        "jürgen.müller@contoso.com",
        "first+tag@contoso.com",
        "jane_fabrikam.example#EXT#@contoso.onmicrosoft.com",
        "_svc.build@contoso.com",
        "a" * 108 + "@contoso.com",
    ],
    ids=["apostrophe", "umlaut", "plus", "b2b-guest-upn", "leading-underscore", "120-characters"],
)
async def test_q19_q27_user_name_sonarqube_refuses_gets_a_derived_login(
    entra: Bridge, entra_profile: str, user_name: str
) -> None:
    """A `userName` SonarQube refuses as a login gets a valid derived login; SAML and SCIM keep it exact."""
    emails = [{"primary": True, "type": "work", "value": "someone@contoso.com"}]  # SonarQube takes 100 chars
    created = await create_user(entra, user_body(user_name, emails=emails))
    assert created["userName"] == user_name
    assert (await get_user(entra, created["id"]))["userName"] == user_name
    assert [user["id"] for user in await find(entra, "Users", f'userName eq "{user_name}"')] == [
        created["id"]
    ]
    sonar = await sonar_user(entra, user_name)
    assert valid_login(sonar["login"], entra_profile), sonar
    if valid_login(user_name, entra_profile):
        assert sonar["login"] == user_name
    else:
        assert sonar["login"] != user_name
    assert sonar["active"] is True
    assert_saml_link(sonar, user_name, entra_profile)


@pytest.mark.parametrize("active", ["False", "false", False], ids=["string-False", "string-false", "boolean"])
async def test_a4_create_of_a_disabled_user(entra: Bridge, entra_profile: str, active: object) -> None:
    """A user created disabled (`active` "False" or false): 201, deactivated in SonarQube but SAML-linked."""
    created = await create_user(entra, user_body(active=active))
    assert created["active"] is False
    assert (await get_user(entra, created["id"]))["active"] is False
    sonar = await entra.sonar.user_state(ADELE)
    assert sonar["active"] is False
    assert_saml_link(sonar, ADELE, entra_profile)


# --- A5: PATCH ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", dialects("a5-replace-username"))
async def test_a5_rename_user_name(entra: Bridge, entra_profile: str, name: str) -> None:
    """A `userName` change renames the SonarQube login (same account) and the SAML external login follows."""
    created = await create_user(entra)
    uuid = (await entra.sonar.user_state(ADELE))["id"]
    patched = await patch_user(entra, created["id"], read_payload(name))
    assert patched["userName"] == "adele.v@contoso.example"
    assert patched["meta"]["version"] != created["meta"]["version"]
    assert (await get_user(entra, created["id"]))["userName"] == "adele.v@contoso.example"
    assert await find(entra, "Users", f'userName eq "{ADELE}"') == []
    found = await find(entra, "Users", 'userName eq "adele.v@contoso.example"')
    assert [user["id"] for user in found] == [created["id"]]
    logins = {user["login"] for user in await sonar_users(entra)}
    assert ADELE not in logins
    sonar = await entra.sonar.user_state("adele.v@contoso.example")
    assert sonar["id"] == uuid
    assert sonar["active"] is True
    assert_saml_link(sonar, "adele.v@contoso.example", entra_profile)
    assert await sonar_groups_of(entra, "adele.v@contoso.example") == {"sonar-users"}


@pytest.mark.parametrize("op", ["Replace", "replace", "REPLACE", "Add"])
async def test_q1_q6_op_in_any_case(entra: Bridge, entra_profile: str, op: str) -> None:
    """`op` in any case: Entra's `Replace`/`Add` (default), `replace` (flag), or any other spelling."""
    created = await create_user(entra)
    body = {
        "schemas": [PATCH_OP_SCHEMA],
        "Operations": [{"op": op, "path": "displayName", "value": "Adele V."}],
    }
    assert (await patch_user(entra, created["id"], body))["displayName"] == "Adele V."
    if sonar_keeps_name_and_email(entra_profile):
        assert (await entra.sonar.user_state(ADELE))["name"] == "Adele V."


@pytest.mark.parametrize("name", dialects("a5-add-nickname"))
async def test_a5_add_nick_name(entra: Bridge, name: str) -> None:
    """`Add nickName` (default path op, or flag path-less value) sets it and it is returned by GET."""
    created = await create_user(entra)
    assert (await patch_user(entra, created["id"], read_payload(name)))["nickName"] == "Addy"
    fetched = await get_user(entra, created["id"])
    assert fetched["nickName"] == "Addy"
    echoed(fetched, user_body(), "userName", "displayName", "name", "emails")


@pytest.mark.parametrize("name", dialects("a5-replace-family-name"))
async def test_a5_replace_family_name(entra: Bridge, entra_profile: str, name: str) -> None:
    """`name.familyName` (sub-attribute path, or the flag's dotted key) changes only that sub-attribute."""
    created = await create_user(
        entra, user_body(displayName=None, name={"givenName": "Adele", "familyName": "Vance"})
    )
    patched = await patch_user(entra, created["id"], read_payload(name))
    assert patched["name"] == {"givenName": "Adele", "familyName": "Vance-Smith"}
    assert "name.familyName" not in patched
    assert (await get_user(entra, created["id"]))["name"] == patched["name"]
    if sonar_keeps_name_and_email(entra_profile):
        assert (await entra.sonar.user_state(ADELE))["name"] == "Adele Vance-Smith"


@pytest.mark.parametrize("name", dialects("a5-replace-work-email"))
async def test_a5_replace_work_email(entra: Bridge, entra_profile: str, name: str) -> None:
    """`emails[type eq "work"].value` replaces the work e-mail in SCIM and in SonarQube."""
    created = await create_user(entra)
    patched = await patch_user(entra, created["id"], read_payload(name))
    expected = [{"primary": True, "type": "work", "value": "adele@fabrikam.example"}]
    assert patched["emails"] == expected
    assert (await get_user(entra, created["id"]))["emails"] == expected
    if sonar_keeps_name_and_email(entra_profile):
        assert (await entra.sonar.user_state(ADELE))["email"] == "adele@fabrikam.example"


@pytest.mark.parametrize("name", dialects("a5-replace-work-email"))
async def test_q11_replace_of_a_missing_work_email_adds_it(
    entra: Bridge, entra_profile: str, name: str
) -> None:
    """`Replace emails[type eq "work"].value` on a user without one creates it (Q11), not 400 noTarget."""
    created = await create_user(entra, user_body(emails=None))
    patched = await patch_user(entra, created["id"], read_payload(name))
    assert patched["emails"] == [{"type": "work", "value": "adele@fabrikam.example"}]
    assert (await get_user(entra, created["id"]))["emails"] == patched["emails"]
    if sonar_keeps_name_and_email(entra_profile):
        assert (await entra.sonar.user_state(ADELE))["email"] == "adele@fabrikam.example"


@pytest.mark.parametrize("name", dialects("a5-add-department-urn"))
async def test_q12_enterprise_attribute_by_urn_path(entra: Bridge, name: str) -> None:
    """`urn:…:enterprise:2.0:User:department` (path, or a flag value key) lands under the extension key."""
    created = await create_user(entra)
    patched = await patch_user(entra, created["id"], read_payload(name))
    assert patched[ENTERPRISE_USER_SCHEMA]["department"] == "Retail"
    assert ENTERPRISE_USER_SCHEMA in patched["schemas"]
    assert not any(key.endswith(":department") for key in patched if key != ENTERPRISE_USER_SCHEMA)
    assert (await get_user(entra, created["id"]))[ENTERPRISE_USER_SCHEMA] == {"department": "Retail"}


async def test_q7_path_less_operation_with_dotted_and_urn_keys(entra: Bridge, entra_profile: str) -> None:
    """The flag's path-less replace reads `name.givenName` and URN keys as paths, not as attribute names."""
    created = await create_user(entra, read_payload("entra/a4-create-user-enterprise") | {"userName": ADELE})
    patched = await patch_user(entra, created["id"], read_payload("entra/a5-pathless-dotted-flag"))
    assert patched["displayName"] == "Adele V."
    assert patched["name"] == {"givenName": "Adele", "familyName": "Vance"}
    assert patched[ENTERPRISE_USER_SCHEMA] == {
        "department": "Marketing",
        "employeeNumber": "2049",
        "costCenter": "CC-7",
    }
    assert not any("." in key and not key.startswith("urn:") for key in patched), patched
    assert ENTERPRISE_USER_SCHEMA + ":employeeNumber" not in patched
    fetched = await get_user(entra, created["id"])
    assert {key: fetched.get(key) for key in ("displayName", "name", ENTERPRISE_USER_SCHEMA)} == {
        key: patched[key] for key in ("displayName", "name", ENTERPRISE_USER_SCHEMA)
    }
    if sonar_keeps_name_and_email(entra_profile):
        assert (await entra.sonar.user_state(ADELE))["name"] == "Adele V."


async def test_q3_several_operations_mixing_replace_and_add(entra: Bridge, entra_profile: str) -> None:
    """One default-mode PATCH mixing `Replace` on filtered paths and `Add` on URN paths applies every op."""
    created = await create_user(entra)
    patched = await patch_user(entra, created["id"], read_payload("entra/a5-mixed-replace-add-default"))
    assert patched["emails"] == [{"primary": True, "type": "work", "value": "adele@fabrikam.example"}]
    assert patched["addresses"] == [{"type": "work", "streetAddress": "1 Main St"}]
    assert patched[ENTERPRISE_USER_SCHEMA] == {"department": "Retail", "employeeNumber": "2048"}
    fetched = await get_user(entra, created["id"])
    assert {key: fetched.get(key) for key in ("emails", "addresses", ENTERPRISE_USER_SCHEMA)} == {
        key: patched[key] for key in ("emails", "addresses", ENTERPRISE_USER_SCHEMA)
    }
    if sonar_keeps_name_and_email(entra_profile):
        assert (await entra.sonar.user_state(ADELE))["email"] == "adele@fabrikam.example"


@pytest.mark.parametrize("name", dialects("a5-replace-address-and-phone"))
async def test_a5_replace_address_and_phone_number(entra: Bridge, name: str) -> None:
    """Filtered paths on addresses (absent: created) and phoneNumbers (present: replaced) in one PATCH."""
    created = await create_user(entra, read_payload("entra/a4-create-user-enterprise") | {"userName": ADELE})
    patched = await patch_user(entra, created["id"], read_payload(name))
    assert patched["addresses"] == [{"type": "work", "formatted": "1 Microsoft Way, Redmond"}]
    assert patched["phoneNumbers"] == [{"type": "mobile", "value": "+1 555 0199"}]
    fetched = await get_user(entra, created["id"])
    assert (fetched["addresses"], fetched["phoneNumbers"]) == (patched["addresses"], patched["phoneNumbers"])


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_q13_q14_manager_set_changed_and_removed(entra: Bridge, dialect: str) -> None:
    """Manager as an id string: set (Add), changed (Replace), removed (Replace ""); GET: `{"value": id}`."""
    adele = await create_user(entra)
    megan = await create_user(entra, user_body(MEGAN))
    nestor = await create_user(entra, user_body(NESTOR))
    ids = {"u_megan": megan["id"], "u_nestor": nestor["id"]}

    patched = await patch_user(entra, adele["id"], entra_payload(f"entra/a5-manager-add-{dialect}", **ids))
    assert patched[ENTERPRISE_USER_SCHEMA]["manager"] == {"value": megan["id"]}
    assert "manager" not in patched
    assert (await get_user(entra, adele["id"]))[ENTERPRISE_USER_SCHEMA] == {"manager": {"value": megan["id"]}}

    patched = await patch_user(
        entra, adele["id"], entra_payload(f"entra/a5-manager-replace-{dialect}", **ids)
    )
    assert (await get_user(entra, adele["id"]))[ENTERPRISE_USER_SCHEMA] == {
        "manager": {"value": nestor["id"]}
    }

    patched = await patch_user(entra, adele["id"], read_payload(f"entra/a5-manager-remove-empty-{dialect}"))
    assert "manager" not in patched.get(ENTERPRISE_USER_SCHEMA, {})
    assert "manager" not in (await get_user(entra, adele["id"])).get(ENTERPRISE_USER_SCHEMA, {})


async def test_a5_manager_in_legacy_list_form_and_rfc_removal(entra: Bridge) -> None:
    """`path: "manager"` with `[{"$ref": null, "value": id}]` (old sample) sets it; RFC `remove` clears it."""
    adele = await create_user(entra)
    megan = await create_user(entra, user_body(MEGAN))
    payload = entra_payload("entra/a5-manager-legacy-list", u_megan=megan["id"])
    assert (await patch_user(entra, adele["id"], payload))[ENTERPRISE_USER_SCHEMA]["manager"] == {
        "value": megan["id"]
    }
    assert (await get_user(entra, adele["id"]))[ENTERPRISE_USER_SCHEMA]["manager"] == {"value": megan["id"]}
    patched = await patch_user(entra, adele["id"], read_payload("rfc/rfc7644-3.5.2.2-remove-manager"))
    assert "manager" not in patched.get(ENTERPRISE_USER_SCHEMA, {})


@pytest.mark.parametrize(
    ("name", "roles"),
    [
        pytest.param(
            "entra/a5-roles-add-default",
            [{"value": '{"id":"7b1f0c2d","value":"SonarAdmin","displayName":"Sonar Admin"}'}],
            id="default-json-in-a-string",
        ),
        pytest.param(
            "entra/a5-roles-replace-flag",
            [
                {
                    "primary": False,
                    "type": "WindowsAzureActiveDirectoryRole",
                    "display": "Sonar Admin",
                    "value": "SonarAdmin",
                }
            ],
            id="flag-role-objects",
        ),
    ],
)
async def test_q15_roles_are_kept_as_sent(entra: Bridge, name: str, roles: list[dict[str, Any]]) -> None:
    """App roles (JSON-in-a-string by default, role objects with the flag) are stored and echoed as sent."""
    created = await create_user(entra)
    assert (await patch_user(entra, created["id"], read_payload(name)))["roles"] == roles
    assert (await get_user(entra, created["id"]))["roles"] == roles


async def test_validator_patch_with_empty_operations_changes_nothing(entra: Bridge) -> None:
    """The validator's empty `Operations` list: 200 with the unchanged user, no SonarQube write."""
    created = await create_user(entra)
    await entra.sonar.control.clear_journal()
    patched = await patch_user(entra, created["id"], read_payload("entra/validator-empty-operations"))
    assert {key: value for key, value in patched.items() if key != "meta"} == {
        key: value for key, value in created.items() if key != "meta"
    }
    assert await sonar_writes(entra) == []


async def test_q24_single_value_wrapped_in_a_list(entra: Bridge, entra_profile: str) -> None:
    """A single-valued attribute wrapped as `[{"$ref": null, "value": …}]` (legacy, Q24) is unwrapped."""
    created = await create_user(entra)
    patched = await patch_user(
        entra, created["id"], read_payload("entra/legacy-replace-wrapped-display-name")
    )
    assert patched["displayName"] == "Adele (legacy)"
    if sonar_keeps_name_and_email(entra_profile):
        assert (await entra.sonar.user_state(ADELE))["name"] == "Adele (legacy)"


@pytest.mark.parametrize(
    ("name", "suffix", "attribute", "value"),
    [
        ("entra/a5-add-nickname-default", "?aadOptscim062020", "nickName", "Addy"),
        ("entra/a5-add-nickname-flag", "", "nickName", "Addy"),
        ("entra/a6-disable-default", "?aadOptscim062020", "active", False),
        ("entra/a6-disable-flag", "", "active", False),
    ],
    ids=[
        "default-shape-flag-url",
        "flag-shape-plain-url",
        "string-active-flag-url",
        "boolean-active-plain-url",
    ],
)
async def test_q9_q10_either_dialect_whatever_the_flag(
    entra: Bridge, name: str, suffix: str, attribute: str, value: object
) -> None:
    """Both dialects (and string booleans) are read on every request, with or without `aadOptscim062020`."""
    created = await create_user(entra)
    patched = expect(await entra.patch(f"/Users/{created['id']}{suffix}", read_payload(name)), 200)
    assert patched[attribute] == value
    found = expect(await entra.get(f"/Users?filter=userName+eq+%22{ADELE}%22&aadOptscim062020"), 200)
    assert [user["id"] for user in found["Resources"]] == [created["id"]]


# --- A6, A7: disable, delete ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "entra/a6-disable-default",
        "entra/a6-disable-lowercase-string",
        "entra/a6-disable-flag",
        "entra/a6-disable-pathless-flag",
    ],
    ids=["default-string-False", "lowercase-string-false", "flag-boolean", "flag-path-less"],
)
async def test_a6_disable_deactivates_but_keeps_the_user_visible(entra: Bridge, name: str) -> None:
    """`active` false in any form: 200, still returned by GET and filter; the SonarQube user deactivated."""
    created = await create_user(entra)
    assert (await patch_user(entra, created["id"], read_payload(name)))["active"] is False
    fetched = await get_user(entra, created["id"])
    assert fetched["active"] is False
    echoed(fetched, user_body(), "userName", "displayName", "name", "emails", "externalId")
    found = await find(entra, "Users", f'userName eq "{ADELE}"')
    assert [(user["id"], user["active"]) for user in found] == [(created["id"], False)]
    sonar = await entra.sonar.user_state(ADELE)
    assert sonar["active"] is False
    assert sonar["email"] is None  # SonarQube clears it on deactivation
    assert await sonar_groups_of(entra, ADELE) == set()


async def test_a6_disable_twice_is_harmless(entra: Bridge) -> None:
    """A replayed disable (Entra retries) answers 200 again and leaves the user deactivated."""
    created = await create_user(entra)
    disable = read_payload("entra/a6-disable-default")
    await patch_user(entra, created["id"], disable)
    assert (await patch_user(entra, created["id"], disable))["active"] is False
    assert (await entra.sonar.user_state(ADELE))["active"] is False


async def test_a7_delete_deactivates_and_forgets(entra: Bridge) -> None:
    """DELETE: 204, SonarQube user deactivated (it cannot be deleted), later GET and PATCH 404."""
    created = await create_user(entra)
    expect(await entra.delete(f"/Users/{created['id']}"), 204)
    sonar = await entra.sonar.user_state(ADELE)
    assert sonar["active"] is False
    expect_error(await entra.get(f"/Users/{created['id']}"), 404)
    expect_error(await entra.patch(f"/Users/{created['id']}", read_payload("entra/a6-enable-default")), 404)
    assert (await entra.sonar.user_state(ADELE))["active"] is False
    again = await entra.delete(f"/Users/{created['id']}")
    assert again.status in {204, 404}, again  # RFC: 404; Microsoft's reference: 204 — never an error beyond


async def test_a7_delete_after_soft_delete(entra: Bridge) -> None:
    """Entra's usual order, disable then (30 days later) hard delete: 204 and the resource is gone."""
    created = await create_user(entra)
    await patch_user(entra, created["id"], read_payload("entra/a6-disable-default"))
    expect(await entra.delete(f"/Users/{created['id']}"), 204)
    expect_error(await entra.get(f"/Users/{created['id']}"), 404)
    assert (await entra.sonar.user_state(ADELE))["active"] is False


@pytest.mark.parametrize("profile", ONE_PROFILE_PER_API)
@pytest.mark.parametrize("disabled_first", [False, True], ids=["active", "disabled-first"])
async def test_a7_delete_anonymises_when_asked(
    bridge_factory: BridgeFactory, profile: str, disabled_first: bool
) -> None:
    """`on_delete = anonymize`: DELETE deactivates and anonymises in one SonarQube call (the login and name
    become `sq-removed-…`, so no one can sign in as the old login again), whether or not Entra disabled the
    user first; the audit trail says `user_anonymized`; a replay is harmless."""
    bridge = await bridge_factory(profile, on_delete="anonymize")
    created = await create_user(bridge)
    uuid = (await sonar_user(bridge, ADELE))["id"]
    if disabled_first:
        await patch_user(bridge, created["id"], read_payload("entra/a6-disable-default"))

    expect(await bridge.delete(f"/Users/{created['id']}"), 204)

    account = next(user for user in await sonar_users(bridge) if user["id"] == uuid)
    assert account["active"] is False
    assert account["login"].startswith("sq-removed-")
    assert ADELE not in {user["login"] for user in await sonar_users(bridge)}
    assert (await bridge.store.audit_trail(scim_id=created["id"], limit=1))[0].action == "user_anonymized"
    assert (await bridge.delete(f"/Users/{created['id']}")).status in {204, 404}


# --- A15, A16, A17: discovery, pagination, reference check ---------------------------------------------


def _nulls(value: Any) -> bool:
    if isinstance(value, dict):
        return any(item is None or _nulls(item) for item in value.values())
    if isinstance(value, list):
        return any(item is None or _nulls(item) for item in value)
    return False


async def test_a15_schema_discovery(entra: Bridge) -> None:
    """GET /Schemas: a ListResponse with the User, Group and enterprise User schemas, without nulls."""
    body = expect(await entra.get("/Schemas"), 200)
    assert body["schemas"] == [LIST_RESPONSE_SCHEMA]
    assert {USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA} <= {
        schema["id"] for schema in body["Resources"]
    }
    assert not _nulls(body)
    user = next(schema for schema in body["Resources"] if schema["id"] == USER_SCHEMA)
    assert "userName" in {attribute["name"] for attribute in user["attributes"]}


async def test_a15_service_provider_config_and_resource_types(entra: Bridge) -> None:
    """Gallery onboarding reads /ServiceProviderConfig (PATCH, filter; no bulk) and /ResourceTypes."""
    config = expect(await entra.get("/ServiceProviderConfig"), 200)
    assert config["patch"]["supported"] is True
    assert config["filter"]["supported"] is True
    assert config["bulk"]["supported"] is False
    types = expect(await entra.get("/ResourceTypes"), 200)
    assert {"User", "Group"} <= {resource["name"] for resource in types["Resources"]}


async def test_a16_pagination_over_users(entra: Bridge) -> None:
    """`startIndex`/`count` pages (Account Discovery): `startIndex` echoed, exact totals, each user once."""
    created = {
        (await create_user(entra, user_body(f"user{n:02}.test@contoso.example")))["id"] for n in range(11)
    }
    page = expect(await entra.get("/Users", params=read_payload("entra/a16-pagination-query")), 200)
    assert page["schemas"] == [LIST_RESPONSE_SCHEMA]
    assert page["startIndex"] == 6
    assert page["totalResults"] >= 11
    assert page["itemsPerPage"] == len(page["Resources"]) == 5
    seen: list[str] = []
    start = 1
    while start <= page["totalResults"]:
        body = expect(await entra.get("/Users", params={"startIndex": str(start), "count": "5"}), 200)
        assert body["startIndex"] == start
        assert body["totalResults"] == page["totalResults"]
        assert 0 < len(body["Resources"]) <= 5
        seen += [user["id"] for user in body["Resources"]]
        start += 5
    assert len(seen) == len(set(seen)) == page["totalResults"]
    assert created <= set(seen)


async def test_a17_reference_check_query(entra: Bridge) -> None:
    """`id eq X and manager eq Y` with `attributes=id` finds the user only when that manager is set."""
    adele = await create_user(entra)
    megan = await create_user(entra, user_body(MEGAN))
    await patch_user(entra, adele["id"], entra_payload("entra/a5-manager-add-default", u_megan=megan["id"]))
    query = entra_payload("entra/a17-reference-check-query", u_adele=adele["id"], u_megan=megan["id"])
    body = expect(await entra.get("/Users", params=query), 200)
    assert body["totalResults"] == 1
    (found,) = body["Resources"]
    assert found["id"] == adele["id"]
    assert "userName" not in found
    other = entra_payload("entra/a17-reference-check-query", u_adele=adele["id"], u_megan=adele["id"])
    assert expect(await entra.get("/Users", params=other), 200)["totalResults"] == 0


async def test_a2_soft_deleted_user_keeps_its_stored_values(entra: Bridge) -> None:
    """A disabled user's GET still shows every value Entra sent (SonarQube's cleared e-mail included)."""
    sent = read_payload("entra/a4-create-user-enterprise")
    created = await create_user(entra, sent)
    await patch_user(entra, created["id"], read_payload("entra/a6-disable-flag"))
    fetched = await get_user(entra, created["id"])
    echoed(fetched, sent, "userName", "externalId", "displayName", "title", "emails", "name", "phoneNumbers")
    echoed(fetched, sent, ENTERPRISE_USER_SCHEMA)
    assert fetched["active"] is False


def test_helpers_strip_nulls_and_substitute_ids() -> None:
    """The catalogue helpers: nulls dropped recursively, placeholders replaced everywhere including paths."""
    assert strip_nulls({"a": None, "b": [{"c": None, "d": 1}]}) == {"b": [{"d": 1}]}
    body = entra_payload("entra/a13-remove-member-flag", u_adele="1234")
    assert body["Operations"][0]["path"] == 'members[value eq "1234"]'
