"""The emulator against the SonarQube behaviours of docs/sonarqube.md (SQ1-SQ30), for every profile.

Each test drives a fresh emulator over HTTP. Behaviours common to all versions are parametrized over every
profile; behaviours that differ list one row per version family.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from scim_bridge.emulator import PROFILES as PROFILE_TABLE

if TYPE_CHECKING:
    from tests.support import Sonar, SonarFactory

PROFILES = tuple(PROFILE_TABLE)

V2_PROFILES = ("10.8", "2025.6", "26.7")
MODERN = V2_PROFILES  # 10.0 and later behave alike in v1 unless a row says otherwise
SAML_OFF = "Value of parameter 'newExternalProvider' (saml) must be one of: [] or [LDAP, LDAP_{serverKey}]"
DEFAULT_GROUP_REFUSED = "Default group 'sonar-users' cannot be used to perform this action"


def form(**fields: Any) -> dict[str, str]:
    return {key: str(value) for key, value in fields.items()}


async def non_admin(sonar: Sonar, login: str = "bob") -> Sonar:
    """A client using the token of a new, ordinary user."""
    assert (await sonar.create_user(login)).status == 200
    return sonar.as_user(await sonar.user_token(login))


async def new_group(sonar: Sonar, name: str = "devs", **fields: str) -> dict[str, Any]:
    reply = await sonar.post("api/user_groups/create", {"name": name, **fields})
    assert reply.status == 200, reply
    group: dict[str, Any] = reply.body["group"]
    return group


async def add_member(sonar: Sonar, group: str, login: str) -> None:
    reply = await sonar.post("api/user_groups/add_user", {"name": group, "login": login})
    assert reply.status == 204, reply


async def enable_saml(sonar: Sonar) -> None:
    reply = await sonar.post("api/settings/set", {"key": "sonar.auth.saml.enabled", "value": "true"})
    assert reply.status == 204, reply


async def searched(sonar: Sonar, **params: Any) -> dict[str, Any]:
    reply = await sonar.get("api/users/search", {key: str(value) for key, value in params.items()})
    assert reply.status == 200, reply
    body: dict[str, Any] = reply.body
    return body


def logins(search: dict[str, Any]) -> list[str]:
    return [user["login"] for user in search["users"]]


async def memberships(sonar: Sonar, login: str) -> list[str]:
    state = await sonar.control.state()
    return [entry["group"] for entry in state["memberships"] if entry["login"] == login]


def merge_patch(body: dict[str, Any]) -> dict[str, Any]:
    return {"json": body, "headers": {"Content-Type": "application/merge-patch+json"}}


# --- server identity (SQ1, SQ3) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "version"),
    [
        ("9.9", "9.9.8.100196"),
        ("10.8", "10.8.1.101195"),
        ("2025.6", "2025.6.0.115417"),
        ("26.7", "26.7.0.124771"),
    ],
)
async def test_version_and_status_need_no_credentials(
    sonar_factory: SonarFactory, profile: str, version: str
) -> None:
    """api/server/version answers the bare version as text/plain, api/system/status UP, anonymously."""
    sonar = await sonar_factory(profile)
    reply = await sonar.get("api/server/version", authorization=None)
    assert (reply.status, reply.body, reply.headers["Content-Type"].split(";")[0]) == (
        200,
        version,
        "text/plain",
    )
    status = await sonar.get("api/system/status", authorization=None)
    assert status.status == 200
    assert status.body["version"] == version
    assert status.body["status"] == "UP"


# --- authentication (SQ4) -------------------------------------------------------------------------

BAD_CREDENTIALS = {
    "none": None,
    "unknown token": "Basic dW5rbm93bjo=",
    "wrong password": "Basic YWRtaW46d3Jvbmc=",
    "not base64": "Basic !!!",
    "no colon": "Basic YWRtaW4=",
    "empty bearer": "Bearer ",
}


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("credentials", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
async def test_bad_or_missing_credentials_get_401_with_empty_body(
    sonar_factory: SonarFactory, profile: str, credentials: str | None
) -> None:
    """Every /api URL outside the exempt list answers 401 with no body, v1, v2 and unknown URLs alike."""
    sonar = await sonar_factory(profile)
    for path in ("api/users/search", "api/v2/users-management/users", "api/nothing/here"):
        reply = await sonar.get(path, authorization=credentials)
        assert (reply.status, reply.body) == (401, None), path


@pytest.mark.parametrize("profile", PROFILES)
async def test_exempt_urls_answer_without_credentials(sonar_factory: SonarFactory, profile: str) -> None:
    """validate and identity_providers are reachable anonymously, even with wrong credentials."""
    sonar = await sonar_factory(profile, saml=True)
    for credentials in (None, "Basic dW5rbm93bjo="):
        validate = await sonar.get("api/authentication/validate", authorization=credentials)
        assert (validate.status, validate.body) == (200, {"valid": False})
        providers = await sonar.get("api/users/identity_providers", authorization=credentials)
        assert providers.status == 200
        assert [provider["key"] for provider in providers.body["identityProviders"]] == ["saml"]


@pytest.mark.parametrize(
    ("profile", "bearer_status"), [("9.9", 401), ("10.8", 200), ("2025.6", 200), ("26.7", 200)]
)
async def test_token_schemes(sonar_factory: SonarFactory, profile: str, bearer_status: int) -> None:
    """A token works as Basic `token:` everywhere and as Bearer only from 10.0; login:password works too."""
    sonar = await sonar_factory(profile)
    assert (await sonar.get("api/users/current")).status == 200
    bearer = await sonar.get("api/users/current", authorization=f"Bearer {sonar.token}")
    assert bearer.status == bearer_status
    valid = await sonar.get("api/authentication/validate", authorization=f"bearer {sonar.token}")
    assert valid.body == {"valid": bearer_status == 200}
    password = await sonar.get("api/users/current", authorization="Basic YWRtaW46YWRtaW4=")  # admin:admin
    assert (password.status, password.body["login"]) == (200, "admin")


@pytest.mark.parametrize("profile", PROFILES)
async def test_validate_is_true_for_working_credentials(sonar_factory: SonarFactory, profile: str) -> None:
    """validate answers valid:true for a working token, and that does not require admin rights."""
    sonar = await sonar_factory(profile)
    bob = await non_admin(sonar)
    assert (await sonar.get("api/authentication/validate")).body == {"valid": True}
    assert (await bob.get("api/authentication/validate")).body == {"valid": True}


V1_ADMIN_ONLY = [
    ("POST", "api/users/create", {"login": "x1", "name": "X", "local": "false"}),
    ("POST", "api/users/update", {"login": "admin", "name": "Y"}),
    ("POST", "api/users/deactivate", {"login": "admin"}),
    ("POST", "api/users/update_login", {"login": "admin", "newLogin": "root"}),
    ("GET", "api/users/groups", {"login": "admin"}),
    ("POST", "api/user_groups/create", {"name": "g"}),
    ("POST", "api/user_groups/add_user", {"name": "sonar-administrators", "login": "bob"}),
    ("GET", "api/user_groups/search", {}),
    ("GET", "api/user_groups/users", {"name": "sonar-users"}),
    ("POST", "api/permissions/add_user", {"login": "bob", "permission": "admin"}),
    ("POST", "api/settings/set", {"key": "sonar.auth.saml.enabled", "value": "true"}),
]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(("method", "path", "params"), V1_ADMIN_ONLY, ids=[row[1] for row in V1_ADMIN_ONLY])
async def test_v1_non_admin_gets_403(
    sonar_factory: SonarFactory, profile: str, method: str, path: str, params: dict[str, str]
) -> None:
    """Administrative v1 actions answer 403 "Insufficient privileges" to an ordinary user."""
    bob = await non_admin(await sonar_factory(profile))
    reply = await bob.request(method, path, params=params)
    assert (reply.status, reply.errors) == (403, ["Insufficient privileges"])


V2_ADMIN_ONLY = [
    ("POST", "api/v2/users-management/users", {"json": {"login": "x1", "name": "X", "local": False}}),
    ("GET", "api/v2/authorizations/groups", {}),
    ("POST", "api/v2/authorizations/groups", {"json": {"name": "g"}}),
    ("GET", "api/v2/authorizations/group-memberships", {}),
]


@pytest.mark.parametrize("profile", V2_PROFILES)
@pytest.mark.parametrize(
    ("method", "path", "options"), V2_ADMIN_ONLY, ids=[f"{r[0]}-{r[1]}" for r in V2_ADMIN_ONLY]
)
async def test_v2_non_admin_gets_403(
    sonar_factory: SonarFactory, profile: str, method: str, path: str, options: dict[str, Any]
) -> None:
    """Administrative v2 endpoints answer 403 {"message":"Insufficient privileges"} to an ordinary user."""
    bob = await non_admin(await sonar_factory(profile))
    reply = await bob.request(method, path, **options)
    assert (reply.status, reply.body) == (403, {"message": "Insufficient privileges"})


# --- v1 framework (SQ26, SQ5) ---------------------------------------------------------------------

METHOD_ROWS = [
    ("GET", "api/users/create", "HTTP method POST is required"),
    ("POST", "api/users/search", "HTTP method GET is required"),
    ("PUT", "api/users/create", "HTTP method PUT is not allowed"),
    ("DELETE", "api/users/search", "HTTP method DELETE is not allowed"),
]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(("method", "path", "message"), METHOD_ROWS)
async def test_v1_wrong_method_is_405(
    sonar_factory: SonarFactory, profile: str, method: str, path: str, message: str
) -> None:
    """The HTTP method is checked against the action before anything else, with SonarQube's messages."""
    sonar = await sonar_factory(profile)
    reply = await sonar.request(method, path)
    assert (reply.status, reply.errors) == (405, [message])


@pytest.mark.parametrize("profile", PROFILES)
async def test_v1_unknown_action_and_extension(sonar_factory: SonarFactory, profile: str) -> None:
    """Unknown actions are 404 "Unknown url : <path>"; `.json` is accepted, other extensions are 400."""
    sonar = await sonar_factory(profile)
    unknown = await sonar.get("api/users/nope")
    assert (unknown.status, unknown.errors) == (404, ["Unknown url : api/users/nope"])
    assert (await sonar.get("api/users/current.json")).status == 200
    xml = await sonar.get("api/users/current.xml")
    assert (xml.status, xml.errors) == (400, ["Unknown action extension: xml"])


# (parameters, first error) on api/users/create, in the order SonarQube reads and checks them.
CREATE_PARAMETER_ROWS = [
    ({}, "The 'login' parameter is missing"),
    ({"local": "maybe"}, "Value of parameter 'local' (maybe) must be one of: [true, false, yes, no]"),
    ({"login": "x", "name": "X"}, "'login' length (1) is shorter than the minimum authorized (2)"),
    ({"login": "x" * 256, "name": "X"}, "'login' length (256) is longer than the maximum authorized (255)"),
    (
        {"login": "carl", "name": " " * 199 + "ab"},
        "'name' length (201) is longer than the maximum authorized (200)",
    ),
    (
        {"login": "carl", "name": "C", "email": "e" * 101},
        "'email' length (101) is longer than the maximum authorized (100)",
    ),
    ({"login": "carl", "name": "C", "local": "yes"}, "Password is mandatory and must not be empty"),
    (
        {"login": "carl", "name": "C", "local": "no", "password": "p"},
        "Password should only be set on local user",
    ),
    ({"login": "ca\0rl", "name": "C"}, "Request parameters are not allowed to contain NUL character"),
]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(("params", "message"), CREATE_PARAMETER_ROWS)
async def test_v1_parameter_checks(
    sonar_factory: SonarFactory, profile: str, params: dict[str, str], message: str
) -> None:
    """Declared limits are checked on the untrimmed value, in SonarQube's order, with its messages."""
    sonar = await sonar_factory(profile)
    reply = await sonar.post("api/users/create", params)
    assert (reply.status, reply.errors) == (400, [message])


PAGING_ROWS = [
    ({"ps": "501"}, "'ps' value (501) must be less than 500"),
    ({"ps": "abc"}, "'ps' value 'abc' cannot be parsed as an integer"),
    ({"p": "abc"}, "The 'p' parameter cannot be parsed as an integer value: abc"),
    ({"q": "a"}, "'q' length (1) is shorter than the minimum authorized (2)"),
    (
        {"deactivated": "TRUE"},
        "Value of parameter 'deactivated' (TRUE) must be one of: [true, false, yes, no]",
    ),
]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(("params", "message"), PAGING_ROWS)
async def test_v1_search_parameter_limits(
    sonar_factory: SonarFactory, profile: str, params: dict[str, str], message: str
) -> None:
    """users/search paging and filters are limited as SonarQube declares them."""
    reply = await (await sonar_factory(profile)).get("api/users/search", params)
    assert (reply.status, reply.errors) == (400, [message])


@pytest.mark.parametrize("profile", PROFILES)
async def test_v1_values_are_trimmed_and_undeclared_parameters_ignored(
    sonar_factory: SonarFactory, profile: str
) -> None:
    """Values are trimmed, undeclared parameters ignored, and a POST may carry them in its query string."""
    sonar = await sonar_factory(profile)
    reply = await sonar.post(
        "api/users/create", {"login": "  carol ", "name": " Carol ", "local": "false", "x": "y"}
    )
    assert (reply.status, reply.body["user"]["login"], reply.body["user"]["name"]) == (200, "carol", "Carol")
    query = await sonar.request("POST", "api/user_groups/create", params={"name": "from-query"})
    assert query.status == 200


# --- user creation and validation (SQ6, SQ7, SQ9, SQ29) -------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
async def test_create_user_answer(sonar_factory: SonarFactory, profile: str) -> None:
    """create answers the user (sorted SCM accounts, no absent e-mail) and puts it in sonar-users."""
    sonar = await sonar_factory(profile)
    scm = [("scmAccount", "zed"), ("scmAccount", "Alpha"), ("scmAccount", "beta")]
    reply = await sonar.post(
        "api/users/create", [("login", "dora"), ("name", "Dora"), ("local", "false"), *scm]
    )
    assert reply.status == 200
    assert reply.body == {
        "user": {
            "login": "dora",
            "name": "Dora",
            "scmAccounts": ["Alpha", "beta", "zed"],
            "active": True,
            "local": False,
        }
    }
    state = await sonar.user_state("dora")
    assert (state["externalProvider"], state["externalLogin"], state["externalId"]) == (
        "sonarqube",
        "dora",
        "dora",
    )
    assert await memberships(sonar, "dora") == ["sonar-users"]
    local = await sonar.create_user("eve", local=True, email="eve@example.com")
    assert local.body["user"] == {
        "login": "eve",
        "name": "Eve",
        "email": "eve@example.com",
        "scmAccounts": [],
        "active": True,
        "local": True,
    }


LEGACY_LOGIN = "Login should not start with .-_@"
MODERN_LOGIN = "Login should start with _ or alphanumeric."


@pytest.mark.parametrize(
    ("profile", "login", "status", "messages"),
    [
        ("9.9", "_tech", 400, [LEGACY_LOGIN]),
        ("9.9", ".dot", 400, [LEGACY_LOGIN]),
        ("9.9", "émile", 400, ["Login should contain only letters, numbers, and .-_@"]),
        *[(p, "_tech", 200, None) for p in MODERN],
        *[(p, ".dot", 400, [MODERN_LOGIN]) for p in MODERN],
        *[(p, "émile", 400, [MODERN_LOGIN]) for p in MODERN],
        *[
            (p, "o'brien@contoso.com", 400, ["Login should contain only letters, numbers, and .-_@"])
            for p in PROFILES
        ],
        *[(p, "first.last@contoso.com", 200, None) for p in PROFILES],
    ],
)
async def test_login_rules(
    sonar_factory: SonarFactory, profile: str, login: str, status: int, messages: list[str] | None
) -> None:
    """Login characters and the first-character rule of each version."""
    reply = await (await sonar_factory(profile)).create_user(login)
    assert reply.status == status
    if messages is not None:
        assert reply.errors == messages


@pytest.mark.parametrize(
    ("profile", "message"),
    [("9.9", "Name is mandatory and must not be empty"), *[(p, "Name can't be empty") for p in MODERN]],
)
async def test_empty_name(sonar_factory: SonarFactory, profile: str, message: str) -> None:
    """An empty (or blank, once trimmed) name is refused with the version's message."""
    reply = await (await sonar_factory(profile)).create_user("nameless", name="  ")
    assert (reply.status, reply.errors) == (400, [message])


CREATE_RULE_ROWS = [
    ({"email": "not an e-mail"}, ["Email 'not an e-mail' is not valid"]),
    ({"scmAccount": " padded"}, ["SCM account cannot start or end with whitespace: ' padded'"]),
    ([("scmAccount", "twice"), ("scmAccount", "twice")], ["Duplicate SCM account: 'twice'"]),
    (
        [("login", "bad login"), ("email", "b@example.com"), ("scmAccount", "b@example.com")],
        [
            "Login should contain only letters, numbers, and .-_@",
            "Login and email are automatically considered as SCM accounts",
        ],
    ),
    (
        {"scmAccount": "admin"},
        ["The scm account 'admin' is already used by user(s) : 'Administrator (admin)'"],
    ),
    ({"login": "admin"}, ["An active user with login 'admin' already exists"]),
]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(("fields", "messages"), CREATE_RULE_ROWS)
async def test_create_user_rules(
    sonar_factory: SonarFactory, profile: str, fields: Any, messages: list[str]
) -> None:
    """E-mail, SCM account and uniqueness rules, several problems in one 400."""
    base = [("login", "fred"), ("name", "Fred"), ("local", "false")]
    extra = list(fields.items()) if isinstance(fields, dict) else fields
    data = [pair for pair in base if pair[0] not in {key for key, _ in extra}] + extra
    reply = await (await sonar_factory(profile)).post("api/users/create", data)
    assert (reply.status, reply.errors) == (400, messages)


@pytest.mark.parametrize("profile", PROFILES)
async def test_reactivation_through_create(sonar_factory: SonarFactory, profile: str) -> None:
    """Creating a deactivated login reactivates the user: same uuid, identity reset, only sonar-users."""
    sonar = await sonar_factory(profile, saml=True)
    await sonar.create_user("gina", email="gina@old.org")
    await new_group(sonar)
    await add_member(sonar, "devs", "gina")
    link = {"login": "gina", "newExternalProvider": "saml", "newExternalIdentity": "gina@idp"}
    assert (await sonar.post("api/users/update_identity_provider", link)).status == 204
    before = await sonar.user_state("gina")
    assert (await sonar.post("api/users/deactivate", {"login": "gina"})).status == 200
    again = await sonar.create_user("gina", name="Gina New", email="gina@new.org")
    assert again.status == 200
    assert again.body["user"]["email"] == "gina@new.org"
    after = await sonar.user_state("gina")
    assert after["id"] == before["id"]
    assert (after["active"], after["name"], after["local"]) == (True, "Gina New", False)
    assert (after["externalProvider"], after["externalLogin"], after["externalId"]) == (
        "sonarqube",
        "gina",
        "gina",
    )
    assert await memberships(sonar, "gina") == ["sonar-users"]


# --- update (SQ11) --------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
async def test_update_local_user(sonar_factory: SonarFactory, profile: str) -> None:
    """update changes name, e-mail and SCM accounts of a local user; an empty e-mail clears it."""
    sonar = await sonar_factory(profile)
    await sonar.create_user("hana", local=True, email="hana@example.com")
    reply = await sonar.post(
        "api/users/update", [("login", "hana"), ("name", "Hana H"), ("scmAccount", "hh")]
    )
    assert reply.status == 200
    assert reply.body == {
        "user": {
            "login": "hana",
            "name": "Hana H",
            "email": "hana@example.com",
            "active": True,
            "local": True,
            "externalIdentity": "hana",
            "externalProvider": "sonarqube",
            "groups": [],
            "scmAccounts": ["hh"],
        }
    }
    cleared = await sonar.post("api/users/update", {"login": "hana", "email": ""})
    assert "email" not in cleared.body["user"]


@pytest.mark.parametrize(
    ("profile", "name_message", "email_message"),
    [
        (
            "9.9",
            "Name cannot be updated for a non-local user",
            "Email cannot be updated for a non-local user",
        ),
        *[
            (
                p,
                "It is not allowed to update name for this user",
                "It is not allowed to update email for this user",
            )
            for p in MODERN
        ],
    ],
)
async def test_update_refuses_name_and_email_of_non_local_users(
    sonar_factory: SonarFactory, profile: str, name_message: str, email_message: str
) -> None:
    """v1 update cannot change name or e-mail of a non-local user; SCM accounts still change."""
    sonar = await sonar_factory(profile)
    await sonar.create_user("ivan")
    name = await sonar.post("api/users/update", {"login": "ivan", "name": "Ivan I"})
    assert (name.status, name.errors) == (400, [name_message])
    email = await sonar.post("api/users/update", {"login": "ivan", "email": "i@example.com"})
    assert (email.status, email.errors) == (400, [email_message])
    scm = await sonar.post("api/users/update", {"login": "ivan", "scmAccount": "ivan-git"})
    assert (scm.status, scm.body["user"]["scmAccounts"]) == (200, ["ivan-git"])


@pytest.mark.parametrize("profile", PROFILES)
async def test_update_of_unknown_or_deactivated_user_is_404(
    sonar_factory: SonarFactory, profile: str
) -> None:
    """update, update_login and update_identity_provider only find active users."""
    sonar = await sonar_factory(profile)
    await sonar.create_user("jane")
    await sonar.post("api/users/deactivate", {"login": "jane"})
    for login in ("ghost", "jane"):
        for path, extra in (
            ("api/users/update", {"name": "X"}),
            ("api/users/update_login", {"newLogin": "jane2"}),
            ("api/users/update_identity_provider", {"newExternalProvider": "LDAP_x"}),
        ):
            reply = await sonar.post(path, {"login": login, **extra})
            assert (reply.status, reply.errors) == (404, [f"User '{login}' doesn't exist"]), path


# --- deactivation, anonymisation (SQ10, SQ22) -----------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
async def test_deactivation_cascade(sonar_factory: SonarFactory, profile: str) -> None:
    """Deactivation drops memberships (sonar-users too), tokens, permissions and e-mail; it can repeat."""
    sonar = await sonar_factory(profile)
    await sonar.create_user("kim", local=True, email="kim@example.com")
    await new_group(sonar)
    await add_member(sonar, "devs", "kim")
    await sonar.post("api/permissions/add_user", {"login": "kim", "permission": "admin"})
    kim = sonar.as_user(await sonar.user_token("kim"))
    assert (await kim.get("api/users/current")).status == 200
    reply = await sonar.post("api/users/deactivate", {"login": "kim"})
    assert reply.status == 200
    assert reply.body == {
        "user": {
            "login": "kim",
            "name": "Kim",
            "active": False,
            "local": True,
            "externalIdentity": "kim",
            "externalProvider": "sonarqube",
            "groups": [],
            "scmAccounts": [],
        }
    }
    state = await sonar.user_state("kim")
    assert (state["tokens"], state["permissions"], state["email"], state["hasPassword"]) == (
        0,
        [],
        None,
        False,
    )
    assert await memberships(sonar, "kim") == []
    assert (await kim.get("api/users/current")).status == 401
    assert (await sonar.post("api/users/deactivate", {"login": "kim"})).status == 200


@pytest.mark.parametrize("profile", PROFILES)
async def test_deactivation_refusals(sonar_factory: SonarFactory, profile: str) -> None:
    """Self-deactivation is refused; an unknown login is 404."""
    sonar = await sonar_factory(profile)
    self_ = await sonar.post("api/users/deactivate", {"login": "admin"})
    assert (self_.status, self_.errors) == (400, ["Self-deactivation is not possible"])
    ghost = await sonar.post("api/users/deactivate", {"login": "ghost"})
    assert (ghost.status, ghost.errors) == (404, ["User 'ghost' doesn't exist"])


@pytest.mark.parametrize("profile", PROFILES)
async def test_anonymize(sonar_factory: SonarFactory, profile: str) -> None:
    """anonymize needs a deactivated user and replaces its login; deactivate?anonymize=true does both."""
    sonar = await sonar_factory(profile)
    await sonar.create_user("liz")
    active = await sonar.post("api/users/anonymize", {"login": "liz"})
    assert (active.status, active.errors) == (400, ["User 'liz' is not deactivated"])
    await sonar.post("api/users/deactivate", {"login": "liz"})
    assert (await sonar.post("api/users/anonymize", {"login": "liz"})).status == 204
    gone = await sonar.post("api/users/anonymize", {"login": "liz"})
    assert (gone.status, gone.errors) == (404, ["User 'liz' doesn't exist"])
    await sonar.create_user("max")
    both = await sonar.post("api/users/deactivate", {"login": "max", "anonymize": "true"})
    assert both.body["user"]["login"].startswith("sq-removed-")
    assert both.body["user"]["login"] == both.body["user"]["name"]


# --- last-administrator guards (SQ19, SQ28) -------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
async def test_last_administrator_guards(sonar_factory: SonarFactory, profile: str) -> None:
    """The last way anyone holds `admin` cannot be removed; a second administrator lifts the guards."""
    sonar = await sonar_factory(profile)
    remove = await sonar.post(
        "api/user_groups/remove_user", {"name": "sonar-administrators", "login": "admin"}
    )
    assert (remove.status, remove.errors) == (400, ["The last administrator user cannot be removed"])
    delete = await sonar.post("api/user_groups/delete", {"name": "sonar-administrators"})
    assert (delete.status, delete.errors) == (400, ["The last system admin group cannot be deleted"])
    own = await sonar.post("api/permissions/remove_user", {"login": "admin", "permission": "admin"})
    assert (own.status, own.errors) == (400, ["As an admin, you can't remove your own admin right"])
    await sonar.create_user("nina")
    assert (
        await sonar.post("api/permissions/add_user", {"login": "nina", "permission": "admin"})
    ).status == 204
    nina = sonar.as_user(await sonar.user_token("nina"))
    assert (await nina.post("api/users/deactivate", {"login": "admin"})).status == 200
    last = await nina.post(
        "api/permissions/remove_group", {"groupName": "sonar-administrators", "permission": "admin"}
    )
    assert last.status == 204
    own_grant = await nina.post("api/permissions/remove_user", {"login": "nina", "permission": "admin"})
    assert own_grant.errors == ["As an admin, you can't remove your own admin right"]


def test_deactivating_the_last_administrator_is_refused() -> None:
    """The deactivation guard itself (over HTTP the caller is another administrator, so it cannot fire)."""
    from scim_bridge.emulator.model import EmulatorError  # noqa: PLC0415 - a domain-level check
    from scim_bridge.emulator.state import Directory, Seed  # noqa: PLC0415

    directory = Directory(PROFILE_TABLE["2025.6"], Seed(admin_token="t", saml=False, seed=1))
    admin = directory.active_user_by_login("admin")
    assert admin is not None
    with pytest.raises(EmulatorError) as refused:
        directory.deactivate(admin, anonymize=False)
    assert refused.value.messages == ("User is last administrator, and cannot be deactivated",)


@pytest.mark.parametrize("profile", PROFILES)
async def test_global_permission_values(sonar_factory: SonarFactory, profile: str) -> None:
    """Only global permissions are accepted; users must be active; projects are never found."""
    sonar = await sonar_factory(profile)
    await sonar.create_user("olga")
    bad = await sonar.post("api/permissions/add_user", {"login": "olga", "permission": "root"})
    valid = "[admin, gateadmin, profileadmin, provisioning, scan]"
    assert bad.errors == [f"Invalid global permission 'root'. Valid values are {valid}"]
    ghost = await sonar.post("api/permissions/add_user", {"login": "ghost", "permission": "admin"})
    assert (ghost.status, ghost.errors) == (404, ["User with login 'ghost' is not found'"])
    anyone = await sonar.post("api/permissions/add_group", {"groupName": "Anyone", "permission": "admin"})
    assert anyone.errors == ["It is not possible to add the 'admin' permission to group 'Anyone'."]


# --- identity providers and SAML links (SQ14, SQ15, SQ17, SQ25) -----------------------------------


@pytest.mark.parametrize(
    ("profile", "external_id"), [("9.9", "olivia@idp"), *[(p, "olivia") for p in MODERN]]
)
async def test_link_to_saml(sonar_factory: SonarFactory, profile: str, external_id: str) -> None:
    """update_identity_provider needs SAML on; the link shows in search; 9.9 also sets the external id."""
    sonar = await sonar_factory(profile)
    await sonar.create_user("olivia")
    link = {"login": "olivia", "newExternalProvider": "saml", "newExternalIdentity": "olivia@idp"}
    off = await sonar.post("api/users/update_identity_provider", link)
    assert (off.status, off.errors) == (400, [SAML_OFF])
    await enable_saml(sonar)
    assert (await sonar.post("api/users/update_identity_provider", link)).status == 204
    (found,) = (await searched(sonar, q="olivia"))["users"]
    assert (found["externalProvider"], found["externalIdentity"], found["local"]) == (
        "saml",
        "olivia@idp",
        False,
    )
    assert (await sonar.user_state("olivia"))["externalId"] == external_id


@pytest.mark.parametrize(
    ("profile", "provider", "stored"),
    [
        *[(p, "sonarqube", "LDAP_default") for p in PROFILES],
        *[(p, "LDAP_corp", "LDAP_corp") for p in PROFILES],
        *[(p, "LDAP", "LDAP_default") for p in MODERN],
        ("9.9", "LDAP", None),
        *[(p, "github", None) for p in PROFILES],
    ],
)
async def test_identity_provider_keys(
    sonar_factory: SonarFactory, profile: str, provider: str, stored: str | None
) -> None:
    """LDAP keys are accepted (9.9: `LDAP_…` only), `sonarqube` becomes `LDAP_default`, others are refused."""
    sonar = await sonar_factory(profile)
    await sonar.create_user("pete")
    reply = await sonar.post(
        "api/users/update_identity_provider", {"login": "pete", "newExternalProvider": provider}
    )
    if stored is None:
        expected = SAML_OFF.replace("(saml)", f"({provider})")
        assert (reply.status, reply.errors) == (400, [expected])
    else:
        assert reply.status == 204
        assert (await sonar.user_state("pete"))["externalProvider"] == stored


@pytest.mark.parametrize("profile", PROFILES)
async def test_saml_settings(sonar_factory: SonarFactory, profile: str) -> None:
    """--saml starts with SAML on and the login attribute set; settings/set switches identity providers."""
    on = await sonar_factory(profile, saml=True)
    keys = "sonar.auth.saml.enabled,sonar.auth.saml.user.login,sonar.auth.saml.group.name"
    values = await on.get("api/settings/values", {"keys": keys})
    assert values.body == {
        "settings": [
            {"key": "sonar.auth.saml.enabled", "value": "true", "inherited": False},
            {
                "key": "sonar.auth.saml.user.login",
                "value": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                "inherited": False,
            },
        ]
    }
    off = await sonar_factory(profile)
    assert (await off.get("api/users/identity_providers")).body == {"identityProviders": []}
    default = await off.get("api/settings/values", {"keys": "sonar.auth.saml.enabled"})
    assert default.body["settings"] == [
        {"key": "sonar.auth.saml.enabled", "value": "false", "inherited": True}
    ]
    await enable_saml(off)
    providers = (await off.get("api/users/identity_providers")).body["identityProviders"]
    assert providers == [
        {"key": "saml", "name": "SAML", "iconPath": "/images/saml.png", "backgroundColor": "#444444"}
    ]


# --- update_login (SQ13) --------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
async def test_update_login(sonar_factory: SonarFactory, profile: str) -> None:
    """Renames keep the uuid; SonarQube-identity users follow with their external login, SAML links do not."""
    sonar = await sonar_factory(profile, saml=True)
    await sonar.create_user("quinn")
    await sonar.create_user("rita")
    await sonar.post(
        "api/users/update_identity_provider",
        {"login": "rita", "newExternalProvider": "saml", "newExternalIdentity": "r@idp"},
    )
    assert (
        await sonar.post("api/users/update_login", {"login": "quinn", "newLogin": "quinn2"})
    ).status == 204
    assert (await sonar.post("api/users/update_login", {"login": "rita", "newLogin": "rita2"})).status == 204
    quinn, rita = await sonar.user_state("quinn2"), await sonar.user_state("rita2")
    assert (quinn["externalLogin"], quinn["externalId"]) == ("quinn2", "quinn2")
    assert rita["externalLogin"] == "r@idp"
    taken = await sonar.post("api/users/update_login", {"login": "quinn2", "newLogin": "admin"})
    assert (taken.status, taken.errors) == (400, ["A user with login 'admin' already exists"])
    invalid = await sonar.post("api/users/update_login", {"login": "quinn2", "newLogin": "no spaces"})
    assert invalid.errors == ["Login should contain only letters, numbers, and .-_@"]


# --- users/search (SQ8, SQ21, SQ30) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "query", "found"),
    [
        *[(p, "LONGNAME", ["sam"]) for p in PROFILES],
        *[(p, "Samuel Longname-Smith", ["sam"]) for p in PROFILES],
        ("9.9", "samuel longname-smith", []),
        *[(p, "samuel longname-smith", ["sam"]) for p in MODERN],
        *[(p, "EXAMPLE.ORG", ["sam"]) for p in PROFILES],
    ],
)
async def test_search_query(sonar_factory: SonarFactory, profile: str, query: str, found: list[str]) -> None:
    """q matches login, name or e-mail ignoring case; on 9.9 a query over 15 characters must match exactly."""
    sonar = await sonar_factory(profile)
    await sonar.create_user("sam", name="Samuel Longname-Smith", local=True, email="sam@example.org")
    assert logins(await searched(sonar, q=query)) == found


@pytest.mark.parametrize(
    ("profile", "params", "message"),
    [
        ("9.9", {"p": "21", "ps": "500"}, "Can return only the first 10000 results. 10500th result asked."),
        ("9.9", {"p": "0"}, "Page must be greater or equal to 1 (got 0)"),
        ("9.9", {"ps": "0"}, "Page size must be between 1 and 500 (got 0)"),
        *[(p, {"p": "0"}, "page index must be >= 1") for p in MODERN],
        *[(p, {"ps": "-1"}, "page size must be >= 1") for p in MODERN],
    ],
)
async def test_search_paging_errors(
    sonar_factory: SonarFactory, profile: str, params: dict[str, str], message: str
) -> None:
    """Paging errors: 9.9's Elasticsearch window and page checks, the database pagination later."""
    reply = await (await sonar_factory(profile)).get("api/users/search", params)
    assert (reply.status, reply.errors) == (400, [message])


@pytest.mark.parametrize("profile", MODERN)
async def test_search_pages_without_window(sonar_factory: SonarFactory, profile: str) -> None:
    """From 10.0, far pages are simply empty and ps=0 gives only the total."""
    sonar = await sonar_factory(profile)
    far = await searched(sonar, p=21, ps=500)
    assert (far["users"], far["paging"]) == ([], {"pageIndex": 21, "pageSize": 500, "total": 1})
    assert (await searched(sonar, ps=0))["paging"]["total"] == 1


@pytest.mark.parametrize(("profile", "first_page"), [("9.9", []), *[(p, ["tara"]) for p in MODERN]])
async def test_search_by_external_identity(
    sonar_factory: SonarFactory, profile: str, first_page: list[str]
) -> None:
    """externalIdentity matches exactly; on 9.9 it filters the fetched page only and the total ignores it."""
    sonar = await sonar_factory(profile, saml=True)
    for login in ("aaron", "tara"):
        await sonar.create_user(login)
    await sonar.post(
        "api/users/update_identity_provider",
        {"login": "tara", "newExternalProvider": "saml", "newExternalIdentity": "T@idp"},
    )
    page = await searched(sonar, externalIdentity="T@idp", ps=1)
    assert logins(page) == first_page
    assert page["paging"]["total"] == (3 if profile == "9.9" else 1)
    assert logins(await searched(sonar, externalIdentity="T@idp", q="tara")) == ["tara"]
    assert logins(await searched(sonar, externalIdentity="t@idp", q="tara")) == []


@pytest.mark.parametrize("profile", PROFILES)
async def test_search_visibility(sonar_factory: SonarFactory, profile: str) -> None:
    """Ordinary users see others' basics only and their own private fields; admin-only filters are 403."""
    sonar = await sonar_factory(profile)
    bob = await non_admin(sonar)
    users = {user["login"]: user for user in (await searched(bob))["users"]}
    assert set(users["admin"]) == {"login", "name", "active", "local", "externalProvider"}
    assert {"groups", "tokensCount", "externalIdentity"} <= set(users["bob"])
    assert ("managed" in users["bob"]) is (profile != "9.9")
    forbidden = await bob.get("api/users/search", {"externalIdentity": "x"})
    assert (forbidden.status, forbidden.errors) == (
        403,
        ["parameter externalIdentity requires Administer System permission."],
    )


@pytest.mark.parametrize("profile", PROFILES)
async def test_search_deactivated_and_managed(sonar_factory: SonarFactory, profile: str) -> None:
    """deactivated=true lists deactivated users only; `managed` is refused from 10.0 (unknown to 9.9)."""
    sonar = await sonar_factory(profile)
    await sonar.create_user("uma")
    await sonar.post("api/users/deactivate", {"login": "uma"})
    assert logins(await searched(sonar, deactivated="yes")) == ["uma"]
    assert "uma" not in logins(await searched(sonar))
    managed = await sonar.get("api/users/search", {"managed": "false"})
    if profile == "9.9":
        assert managed.status == 200
    else:
        assert managed.errors == ["The 'managed' parameter is only available for managed instances."]


@pytest.mark.parametrize("profile", PROFILES)
async def test_groups_of_user_and_current_user(sonar_factory: SonarFactory, profile: str) -> None:
    """users/groups lists groups by name with selection; users/current describes the caller."""
    sonar = await sonar_factory(profile)
    await new_group(sonar, "devs", description="Developers")
    reply = await sonar.get("api/users/groups", {"login": "admin", "selected": "all"})
    assert [(g["name"], g["selected"]) for g in reply.body["groups"]] == [
        ("devs", False),
        ("sonar-administrators", True),
        ("sonar-users", True),
    ]
    unknown = await sonar.get("api/users/groups", {"login": "ghost"})
    assert (unknown.status, unknown.errors) == (404, ["Unknown user: ghost"])
    current = (await sonar.get("api/users/current")).body
    assert current["isLoggedIn"] is True
    assert current["groups"] == ["sonar-administrators", "sonar-users"]
    assert current["permissions"] == {"global": ["admin"]}


# --- groups and memberships (SQ18, SQ19, SQ20) ----------------------------------------------------

GROUP_NAME_ROWS = [
    ("", "Group name cannot be empty"),
    ("   ", "Group name cannot be empty"),
    ("anyone", "Anyone group cannot be used"),
    ("ANYONE", "Anyone group cannot be used"),
    ("sonar-users", "Group 'sonar-users' already exists"),
]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(("name", "message"), GROUP_NAME_ROWS)
async def test_group_name_rules(sonar_factory: SonarFactory, profile: str, name: str, message: str) -> None:
    """Group names must be non-blank, not Anyone and unused."""
    reply = await (await sonar_factory(profile)).post("api/user_groups/create", {"name": name})
    assert (reply.status, reply.errors) == (400, [message])


@pytest.mark.parametrize("profile", PROFILES)
async def test_group_create_answer(sonar_factory: SonarFactory, profile: str) -> None:
    """create answers the group with its id; names are compared case-sensitively (PostgreSQL)."""
    sonar = await sonar_factory(profile)
    group = await new_group(sonar, "Sonar-Users", description="Look-alike")
    assert set(group) == {"id", "name", "description", "membersCount", "default"}
    assert (group["name"], group["membersCount"], group["default"]) == ("Sonar-Users", 0, False)
    assert "description" not in await new_group(sonar, "plain")


@pytest.mark.parametrize(
    ("profile", "status", "messages"),
    [("9.9", 400, ["Group 'devs' already exists"]), *[(p, 200, None) for p in MODERN]],
)
async def test_group_rename_to_same_name(
    sonar_factory: SonarFactory, profile: str, status: int, messages: list[str] | None
) -> None:
    """Renaming a group to its own name fails on 9.9 and is a no-op later."""
    sonar = await sonar_factory(profile)
    await new_group(sonar)
    reply = await sonar.post("api/user_groups/update", {"currentName": "devs", "name": "devs"})
    assert reply.status == status
    if messages is not None:
        assert reply.errors == messages


@pytest.mark.parametrize("profile", PROFILES)
async def test_group_update(sonar_factory: SonarFactory, profile: str) -> None:
    """update renames and re-describes; the default group, unknown groups and taken names are refused."""
    sonar = await sonar_factory(profile)
    await new_group(sonar)
    await add_member(sonar, "devs", "admin")
    reply = await sonar.post(
        "api/user_groups/update", {"currentName": "devs", "name": "dev", "description": "D"}
    )
    assert (reply.status, reply.body["group"]["name"], reply.body["group"]["membersCount"]) == (200, "dev", 1)
    rows: list[tuple[dict[str, str], int, str]] = [
        ({"currentName": "sonar-users", "description": "x"}, 400, DEFAULT_GROUP_REFUSED),
        ({"currentName": "nope", "name": "x"}, 404, "Could not find a user group with name 'nope'."),
        (
            {"currentName": "dev", "name": "sonar-administrators"},
            400,
            "Group 'sonar-administrators' already exists",
        ),
        ({"currentName": "dev", "name": ""}, 400, "Group name cannot be empty"),
    ]
    for params, status, message in rows:
        refused = await sonar.post("api/user_groups/update", params)
        assert (refused.status, refused.errors) == (status, [message]), params


@pytest.mark.parametrize("profile", PROFILES)
async def test_group_delete(sonar_factory: SonarFactory, profile: str) -> None:
    """delete removes the group and its memberships; the default group and unknown groups are refused."""
    sonar = await sonar_factory(profile)
    await new_group(sonar)
    await add_member(sonar, "devs", "admin")
    assert (await sonar.post("api/user_groups/delete", {"name": "devs"})).status == 204
    assert "devs" not in await memberships(sonar, "admin")
    default = await sonar.post("api/user_groups/delete", {"name": "sonar-users"})
    assert (default.status, default.errors) == (400, [DEFAULT_GROUP_REFUSED])
    missing = await sonar.post("api/user_groups/delete", {"name": "devs"})
    assert (missing.status, missing.errors) == (404, ["No group with name 'devs'"])


@pytest.mark.parametrize(
    ("profile", "again_status", "again_errors"),
    [("9.9", 204, None), *[(p, 400, ["User 'vic' is already a member of group 'devs'"]) for p in MODERN]],
)
async def test_add_user_twice(
    sonar_factory: SonarFactory, profile: str, again_status: int, again_errors: list[str] | None
) -> None:
    """Adding a present member is a no-op on 9.9 and a 400 from 10.4."""
    sonar = await sonar_factory(profile)
    await sonar.create_user("vic")
    await new_group(sonar)
    await add_member(sonar, "devs", "vic")
    again = await sonar.post("api/user_groups/add_user", {"name": "devs", "login": "vic"})
    assert again.status == again_status
    if again_errors is not None:
        assert again.errors == again_errors


@pytest.mark.parametrize("profile", PROFILES)
async def test_add_user_refusals(sonar_factory: SonarFactory, profile: str) -> None:
    """add_user needs a login, an existing active user, a group, and not the default group."""
    sonar = await sonar_factory(profile)
    await sonar.create_user("walt")
    await sonar.post("api/users/deactivate", {"login": "walt"})
    await new_group(sonar)
    walt_id = (await sonar.user_state("walt"))["id"]
    deactivated = (
        "Could not find a user with login 'walt'" if profile == "9.9" else f"User '{walt_id}' not found"
    )
    rows: list[tuple[dict[str, str], int, str]] = [
        ({"name": "devs"}, 400, "The 'login' parameter is missing"),
        ({"name": "devs", "login": "ghost"}, 404, "Could not find a user with login 'ghost'"),
        ({"name": "devs", "login": "walt"}, 404, deactivated),
        ({"name": "nope", "login": "admin"}, 404, "No group with name 'nope'"),
        ({"name": "sonar-users", "login": "admin"}, 400, DEFAULT_GROUP_REFUSED),
    ]
    for params, status, message in rows:
        reply = await sonar.post("api/user_groups/add_user", params)
        assert (reply.status, reply.errors) == (status, [message]), params


@pytest.mark.parametrize("profile", PROFILES)
async def test_remove_user(sonar_factory: SonarFactory, profile: str) -> None:
    """remove_user is idempotent; unknown or deactivated users get a message ending in an apostrophe."""
    sonar = await sonar_factory(profile)
    await sonar.create_user("xena")
    await new_group(sonar)
    await add_member(sonar, "devs", "xena")
    for _ in range(2):
        assert (
            await sonar.post("api/user_groups/remove_user", {"name": "devs", "login": "xena"})
        ).status == 204
    await sonar.post("api/users/deactivate", {"login": "xena"})
    for login in ("ghost", "xena"):
        reply = await sonar.post("api/user_groups/remove_user", {"name": "devs", "login": login})
        assert (reply.status, reply.errors) == (404, [f"User with login '{login}' is not found'"])
    default = await sonar.post("api/user_groups/remove_user", {"name": "sonar-users", "login": "admin"})
    assert default.errors == [DEFAULT_GROUP_REFUSED]


@pytest.mark.parametrize("profile", PROFILES)
async def test_group_search_and_members(sonar_factory: SonarFactory, profile: str) -> None:
    """search matches names ignoring case and honours `f`; users lists active members by name."""
    sonar = await sonar_factory(profile)
    await new_group(sonar, "Devs", description="Developers")
    await sonar.create_user("yann", name="Yann")
    await sonar.create_user("zoe", name="Alice Zoe")
    await add_member(sonar, "Devs", "yann")
    await add_member(sonar, "Devs", "zoe")
    found = (await sonar.get("api/user_groups/search", {"q": "dEv", "f": "name"})).body
    expected: dict[str, Any] = {"name": "Devs", "default": False}
    if profile == "9.9":
        expected["id"] = (await sonar.group_state("Devs"))["id"]
    assert found == {"paging": {"pageIndex": 1, "pageSize": 100, "total": 1}, "groups": [expected]}
    bad_field = await sonar.get("api/user_groups/search", {"f": "name,size"})
    assert bad_field.errors[0].startswith(
        "Value of parameter 'f' (size) must be one of: [name, description, membersCount"
    )
    members = (await sonar.get("api/user_groups/users", {"name": "Devs"})).body
    assert [user["login"] for user in members["users"]] == ["zoe", "yann"]
    assert (members["p"], members["ps"], members["total"]) == (1, 25, 2)
    assert ("managed" in members["users"][0]) is (profile != "9.9")
    everyone = (
        await sonar.get("api/user_groups/users", {"name": "Devs", "selected": "all", "q": "ADM"})
    ).body
    assert [(user["login"], user["selected"]) for user in everyone["users"]] == [("admin", False)]


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"login": "admin"}, 400, "Group name or group id must be provided"),
        ({"login": "admin", "id": "x", "name": "devs"}, 400, "Either group id or group name must be set"),
        ({"login": "admin", "id": "nope"}, 404, "No group with id 'nope'"),
    ],
)
async def test_9_9_groups_by_id(
    sonar_factory: SonarFactory, params: dict[str, str], status: int, message: str
) -> None:
    """9.9 addresses groups by `id` or name, exactly one of them."""
    sonar = await sonar_factory("9.9")
    group = await new_group(sonar)
    assert (await sonar.post("api/user_groups/add_user", {"id": group["id"], "login": "admin"})).status == 204
    reply = await sonar.post("api/user_groups/add_user", params)
    assert (reply.status, reply.errors) == (status, [message])
    both = await sonar.post("api/user_groups/update", {"id": group["id"], "currentName": "devs"})
    assert both.errors == ["Need to specify one and only one of 'id' or 'currentName'"]


@pytest.mark.parametrize("profile", MODERN)
async def test_group_ids_are_ignored_from_10(sonar_factory: SonarFactory, profile: str) -> None:
    """From 10.0 `id` is not a parameter any more: the name is required."""
    sonar = await sonar_factory(profile)
    group = await new_group(sonar)
    reply = await sonar.post("api/user_groups/add_user", {"id": group["id"], "login": "admin"})
    assert (reply.status, reply.errors) == (400, ["The 'name' parameter is missing"])


# --- user tokens (SQ27) ---------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
async def test_user_tokens(sonar_factory: SonarFactory, profile: str) -> None:
    """Admins mint tokens for others, users for themselves; names are unique per user."""
    sonar = await sonar_factory(profile)
    bob = await non_admin(sonar)
    own = await bob.post("api/user_tokens/generate", {"name": "mine"})
    assert own.status == 200
    assert set(own.body) == {"login", "name", "createdAt", "token", "type"}
    assert (own.body["login"], own.body["type"], own.body["token"][:4]) == ("bob", "USER_TOKEN", "squ_")
    duplicate = await bob.post("api/user_tokens/generate", {"name": "mine"})
    assert duplicate.errors == ["A user token for login 'bob' and name 'mine' already exists"]
    other = await bob.post("api/user_tokens/generate", {"name": "x", "login": "admin"})
    assert (other.status, other.errors) == (403, ["Insufficient privileges"])


@pytest.mark.parametrize("profile", PROFILES)
async def test_token_expiration(sonar_factory: SonarFactory, profile: str) -> None:
    """Expiring tokens are announced in a response header; past dates are refused."""
    sonar = await sonar_factory(profile)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    expiring = await sonar.post("api/user_tokens/generate", {"name": "soon", "expirationDate": str(tomorrow)})
    assert expiring.body["expirationDate"] == f"{tomorrow}T00:00:00+0000"
    reply = await sonar.as_user(expiring.body["token"]).get("api/users/current")
    assert reply.headers["SonarQube-Authentication-Token-Expiration"] == f"{tomorrow}T00:00:00+0000"
    past = await sonar.post("api/user_tokens/generate", {"name": "old", "expirationDate": "2020-01-01"})
    assert past.errors == [f"The minimum value for parameter expirationDate is {tomorrow}."]


# --- v2 (SQ24, SQ8-SQ14, SQ18, SQ20) --------------------------------------------------------------

USERS = "api/v2/users-management/users"
GROUPS = "api/v2/authorizations/groups"
MEMBERSHIPS = "api/v2/authorizations/group-memberships"


@pytest.mark.parametrize("profile", V2_PROFILES)
async def test_v2_user_lifecycle(sonar_factory: SonarFactory, profile: str) -> None:
    """POST answers 200 with the admin view (nulls included); PATCH needs merge-patch; DELETE answers 204."""
    sonar = await sonar_factory(profile)
    created = await sonar.request("POST", USERS, json={"login": "vera", "name": "Vera", "local": False})
    assert created.status == 200
    vera = created.body["id"]
    assert created.body == {
        "id": vera,
        "login": "vera",
        "name": "Vera",
        "email": None,
        "active": True,
        "local": False,
        "managed": False,
        "externalLogin": "vera",
        "externalProvider": "sonarqube",
        "externalId": "vera",
        "avatar": None,
        "sonarQubeLastConnectionDate": None,
        "sonarLintLastConnectionDate": None,
        "scmAccounts": [],
    }
    assert (await sonar.get(f"{USERS}/{vera}")).body == created.body
    wrong_type = await sonar.request("PATCH", f"{USERS}/{vera}", json={"name": "V"})
    assert (wrong_type.status, wrong_type.body) == (415, {"message": "Unsupported media type."})
    patched = await sonar.request(
        "PATCH", f"{USERS}/{vera}", **merge_patch({"name": "Vera V", "email": "v@x.org"})
    )
    assert (patched.status, patched.body["name"], patched.body["email"]) == (200, "Vera V", "v@x.org")
    assert patched.body["avatar"] is not None
    assert (await sonar.request("DELETE", f"{USERS}/{vera}")).status == 204
    gone = (await sonar.get(f"{USERS}/{vera}")).body
    assert (gone["active"], gone["email"]) == (False, None)
    missing = await sonar.get(f"{USERS}/nope")
    assert (missing.status, missing.body) == (404, {"message": "User 'nope' not found"})


@pytest.mark.parametrize("profile", V2_PROFILES)
async def test_v2_patch_reactivates_a_deactivated_user(sonar_factory: SonarFactory, profile: str) -> None:
    """An effective PATCH on a deactivated user reactivates it without sonar-users; a no-op PATCH does not."""
    sonar = await sonar_factory(profile)
    vera = (await sonar.request("POST", USERS, json={"login": "vera", "name": "Vera", "local": False})).body[
        "id"
    ]
    await sonar.request("DELETE", f"{USERS}/{vera}")
    same = await sonar.request("PATCH", f"{USERS}/{vera}", **merge_patch({"name": "Vera"}))
    assert same.body["active"] is False
    changed = await sonar.request("PATCH", f"{USERS}/{vera}", **merge_patch({"name": "Vera W"}))
    assert changed.body["active"] is True
    assert await memberships(sonar, "vera") == []


V2_BODY_ROWS = [
    (
        {"login": "v", "name": "V"},
        "Value v for field login was rejected. Error: size must be between 2 and 100.",
    ),
    ({"name": "V"}, "Value {} for field login was rejected. Error: must not be null."),
    (
        {"local": False},
        (
            "Value {} for field login was rejected. Error: must not be null."
            "Value {} for field name was rejected. Error: must not be null."
        ),
    ),
    (
        {"login": "val", "name": "V", "email": "not-an-email"},
        "Value not-an-email for field email was rejected. Error: must be a well-formed email address.",
    ),
    ({"login": "val", "name": "V", "local": True}, "Password is mandatory and must not be empty"),
    (
        {"login": "_val", "name": "V", "local": False, "scmAccounts": [" x"]},
        "SCM account cannot start or end with whitespace: ' x'",
    ),
]


@pytest.mark.parametrize("profile", V2_PROFILES)
@pytest.mark.parametrize(("body", "message"), V2_BODY_ROWS)
async def test_v2_create_validation(
    sonar_factory: SonarFactory, profile: str, body: dict[str, Any], message: str
) -> None:
    """Bean validation messages ("Value … was rejected", concatenated) and the service's own checks."""
    reply = await (await sonar_factory(profile)).request("POST", USERS, json=body)
    assert (reply.status, reply.body) == (400, {"message": message})


@pytest.mark.parametrize("profile", V2_PROFILES)
async def test_v2_framework_errors(sonar_factory: SonarFactory, profile: str) -> None:
    """Unreadable bodies, wrong content types, unknown routes and wrong methods, with Spring's messages."""
    sonar = await sonar_factory(profile)
    rows: list[tuple[str, str, dict[str, Any], int, str]] = [
        (
            "POST",
            USERS,
            {"data": "{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "Invalid request format.",
        ),
        ("POST", USERS, {"data": "login=x"}, 415, "Unsupported media type."),
        ("GET", "api/v2/users-management/nothing", {}, 404, "Resource not found."),
        ("PUT", USERS, {}, 405, "Method not supported."),
        ("DELETE", f"{USERS}/x", {"params": {"anonymize": "maybe"}}, 400, "Invalid parameter type."),
    ]
    for method, path, options, status, message in rows:
        reply = await sonar.request(method, path, **options)
        assert (reply.status, reply.body) == (status, {"message": message}), (method, path)


@pytest.mark.parametrize(("profile", "rejected"), [("10.8", False), ("2025.6", False), ("26.7", True)])
async def test_v2_unknown_query_parameters(sonar_factory: SonarFactory, profile: str, rejected: bool) -> None:
    """26.x rejects query parameters an endpoint does not declare (but `_`); older versions ignore them."""
    sonar = await sonar_factory(profile)
    one = await sonar.get(USERS, {"foo": "1", "_": "2"})
    two = await sonar.get(GROUPS, {"b": "1", "a": "2"})
    if not rejected:
        assert (one.status, two.status) == (200, 200)
        return
    assert one.body == {
        "message": 'Parameter "foo" is not a valid parameter for /api/v2/users-management/users.'
    }
    assert two.body == {
        "message": 'Parameters "a", "b" are not valid parameters for /api/v2/authorizations/groups.'
    }


@pytest.mark.parametrize(
    ("profile", "external_id"), [("10.8", "wes"), ("2025.6", "oid-1"), ("26.7", "oid-1")]
)
async def test_v2_patch_identity(sonar_factory: SonarFactory, profile: str, external_id: str) -> None:
    """PATCH links to SAML when SAML is on; `externalId` applies on 2025.x and 26.x (ignored on 10.8)."""
    sonar = await sonar_factory(profile)
    wes = (await sonar.request("POST", USERS, json={"login": "wes", "name": "Wes", "local": False})).body[
        "id"
    ]
    link = {"externalProvider": "saml", "externalLogin": "wes@idp", "externalId": "oid-1"}
    off = await sonar.request("PATCH", f"{USERS}/{wes}", **merge_patch(link))
    expected = "Value of 'externalProvider' (saml) must be one of: [] or [LDAP, LDAP_{serverKey}]"
    assert (off.status, off.body) == (400, {"message": expected})
    await enable_saml(sonar)
    linked = (await sonar.request("PATCH", f"{USERS}/{wes}", **merge_patch(link))).body
    assert (linked["externalProvider"], linked["externalLogin"], linked["externalId"]) == (
        "saml",
        "wes@idp",
        external_id,
    )
    renamed = (
        await sonar.request("PATCH", f"{USERS}/{wes}", **merge_patch({"name": "Wes W", "email": "w@x.org"}))
    ).body
    assert (renamed["name"], renamed["local"]) == ("Wes W", False)


@pytest.mark.parametrize("profile", V2_PROFILES)
async def test_v2_user_search(sonar_factory: SonarFactory, profile: str) -> None:
    """Search by q, groupId and externalIdentity; page size 0 gives the total; bind errors concatenate."""
    sonar = await sonar_factory(profile)
    await sonar.create_user("xavier", email="x@example.com")
    await new_group(sonar)
    await add_member(sonar, "devs", "xavier")
    group_id = (await sonar.group_state("devs"))["id"]
    found = (await sonar.get(USERS, {"groupId": group_id})).body
    assert [user["login"] for user in found["users"]] == ["xavier"]
    assert (await sonar.get(USERS, {"q": "EXAMPLE", "externalIdentity": "xavier"})).body["page"]["total"] == 1
    assert (await sonar.get(USERS, {"pageSize": "0"})).body == {
        "users": [],
        "page": {"pageIndex": 1, "pageSize": 0, "total": 2},
    }
    bad = await sonar.get(USERS, {"pageIndex": "0", "pageSize": "501"})
    assert bad.body == {
        "message": "Value 501 for field pageSize was rejected. Error: must be less than or equal to 500."
        "Value 0 for field pageIndex was rejected. Error: must be greater than 0."
        "Value 0 for field pageIndex was rejected. Error: must be greater than or equal to 1."
    }
    bob = await non_admin(sonar)
    forbidden = await bob.get(USERS, {"groupId": group_id})
    assert (forbidden.status, forbidden.body) == (
        403,
        {"message": "Parameter groupId requires Administer System permission."},
    )
    seen = {user["login"]: user for user in (await bob.get(USERS)).body["users"]}
    assert set(seen["admin"]) == {
        "id",
        "login",
        "name",
        "email",
        "active",
        "local",
        "externalProvider",
        "avatar",
    }
    assert "externalId" in seen["bob"]


@pytest.mark.parametrize("profile", V2_PROFILES)
async def test_v2_deactivation(sonar_factory: SonarFactory, profile: str) -> None:
    """DELETE refuses self-deactivation and anonymises on request."""
    sonar = await sonar_factory(profile)
    admin_id = (await sonar.user_state("admin"))["id"]
    self_ = await sonar.request("DELETE", f"{USERS}/{admin_id}")
    assert (self_.status, self_.body) == (400, {"message": "Self-deactivation is not possible"})
    yara = (await sonar.request("POST", USERS, json={"login": "yara", "name": "Yara", "local": False})).body[
        "id"
    ]
    assert (await sonar.request("DELETE", f"{USERS}/{yara}", params={"anonymize": "true"})).status == 204
    assert (await sonar.get(f"{USERS}/{yara}")).body["login"].startswith("sq-removed-")


@pytest.mark.parametrize("profile", V2_PROFILES)
async def test_v2_groups(sonar_factory: SonarFactory, profile: str) -> None:
    """Groups: POST 201, PATCH, DELETE 204; default-group and last-admin guards."""
    sonar = await sonar_factory(profile)
    created = await sonar.request("POST", GROUPS, json={"name": "devs"})
    assert created.status == 201
    devs = created.body["id"]
    assert created.body == {
        "id": devs,
        "name": "devs",
        "description": None,
        "managed": False,
        "default": False,
    }
    patched = await sonar.request(
        "PATCH", f"{GROUPS}/{devs}", **merge_patch({"name": "dev", "description": "D"})
    )
    assert (patched.status, patched.body["name"], patched.body["description"]) == (200, "dev", "D")
    listed = (await sonar.get(GROUPS, {"q": "DEV"})).body
    assert [group["name"] for group in listed["groups"]] == ["dev"]
    default_id = (await sonar.group_state("sonar-users"))["id"]
    admins_id = (await sonar.group_state("sonar-administrators"))["id"]
    rows: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("PATCH", f"{GROUPS}/{default_id}", merge_patch({"description": "x"}), 400, DEFAULT_GROUP_REFUSED),
        ("DELETE", f"{GROUPS}/{admins_id}", {}, 400, "The last system admin group cannot be deleted"),
        ("GET", f"{GROUPS}/nope", {}, 404, "Group 'nope' not found"),
        (
            "POST",
            GROUPS,
            {"json": {"name": ""}},
            400,
            (
                "Value  for field name was rejected. Error: must not be empty."
                "Value  for field name was rejected. Error: size must be between 1 and 255."
            ),
        ),
        ("POST", GROUPS, {"json": {"name": "Anyone"}}, 400, "Anyone group cannot be used"),
    ]
    for method, path, options, status, message in rows:
        reply = await sonar.request(method, path, **options)
        assert (reply.status, reply.body) == (status, {"message": message}), (method, path)
    assert (await sonar.request("DELETE", f"{GROUPS}/{devs}")).status == 204


@pytest.mark.parametrize("profile", V2_PROFILES)
async def test_v2_memberships(sonar_factory: SonarFactory, profile: str) -> None:
    """Memberships: POST 201, already-member 400, search incl. sonar-users, DELETE 204 and its guards."""
    sonar = await sonar_factory(profile)
    zack = (await sonar.request("POST", USERS, json={"login": "zack", "name": "Zack", "local": False})).body[
        "id"
    ]
    devs = (await sonar.request("POST", GROUPS, json={"name": "devs"})).body["id"]
    created = await sonar.request("POST", MEMBERSHIPS, json={"userId": zack, "groupId": devs})
    assert (created.status, created.body["userId"], created.body["groupId"]) == (201, zack, devs)
    again = await sonar.request("POST", MEMBERSHIPS, json={"userId": zack, "groupId": devs})
    assert again.body == {"message": "User 'zack' is already a member of group 'devs'"}
    listed = (await sonar.get(MEMBERSHIPS, {"userId": zack})).body
    assert len(listed["groupMemberships"]) == 2
    assert listed["page"] == {"pageIndex": 1, "pageSize": 50, "total": 2}
    assert (await sonar.request("DELETE", f"{MEMBERSHIPS}/{created.body['id']}")).status == 204
    admin_id = (await sonar.user_state("admin"))["id"]
    admins = (await sonar.group_state("sonar-administrators"))["id"]
    (admin_membership,) = (await sonar.get(MEMBERSHIPS, {"userId": admin_id, "groupId": admins})).body[
        "groupMemberships"
    ]
    default_id = (await sonar.group_state("sonar-users"))["id"]
    await sonar.request("DELETE", f"{USERS}/{zack}")
    rows: list[tuple[str, str, dict[str, Any], int, str]] = [
        (
            "DELETE",
            f"{MEMBERSHIPS}/{admin_membership['id']}",
            {},
            400,
            "The last administrator user cannot be removed",
        ),
        ("DELETE", f"{MEMBERSHIPS}/nope", {}, 404, "Group membership 'nope' not found"),
        (
            "POST",
            MEMBERSHIPS,
            {"json": {"userId": admin_id, "groupId": default_id}},
            400,
            DEFAULT_GROUP_REFUSED,
        ),
        ("POST", MEMBERSHIPS, {"json": {"userId": zack, "groupId": devs}}, 404, f"User '{zack}' not found"),
        (
            "POST",
            MEMBERSHIPS,
            {"json": {"userId": admin_id, "groupId": "nope"}},
            404,
            "Group 'nope' not found",
        ),
    ]
    for method, path, options, status, message in rows:
        reply = await sonar.request(method, path, **options)
        assert (reply.status, reply.body) == (status, {"message": message}), (method, path)


@pytest.mark.parametrize("profile", V2_PROFILES)
async def test_v1_and_v2_see_the_same_users(sonar_factory: SonarFactory, profile: str) -> None:
    """A user created through v1 is visible through v2 and vice versa, with the same state."""
    sonar = await sonar_factory(profile)
    await sonar.create_user("abby", email="abby@example.com")
    via_v1 = (await sonar.get(USERS, {"q": "abby"})).body["users"]
    assert [(user["login"], user["email"], user["local"]) for user in via_v1] == [
        ("abby", "abby@example.com", False)
    ]
    await sonar.request(
        "POST", USERS, json={"login": "ben", "name": "Ben", "email": "ben@example.com", "local": False}
    )
    (via_v2,) = (await searched(sonar, q="ben"))["users"]
    assert (via_v2["login"], via_v2["name"], via_v2["email"], via_v2["groups"]) == (
        "ben",
        "Ben",
        "ben@example.com",
        ["sonar-users"],
    )
    await sonar.post("api/users/deactivate", {"login": "ben"})
    ben = (await sonar.get(USERS, {"active": "false"})).body["users"]
    assert [user["login"] for user in ben] == ["ben"]
