"""/Users and /Groups as HTTP: status codes, Location, ETag, If-Match, query strings, membership reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import pytest
from yarl import URL

from scim_bridge.scim.ids import plausible_id
from scim_bridge.web.keys import PROVISIONER
from tests.support import (
    GROUP_SCHEMA,
    ONE_PROFILE_PER_API,
    PATCH_OP_SCHEMA,
    SCIM_JSON,
    USER_SCHEMA,
    Reply,
    read_payload,
)

if TYPE_CHECKING:
    from tests.web.conftest import Bridge, BridgeFactory


def user_body(user_name: str = "alice@example.com", **attributes: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": user_name, "active": True, **attributes}


def group_body(name: str = "Developers", members: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"schemas": [GROUP_SCHEMA], "displayName": name, "members": [{"value": each} for each in members]}


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


async def create(bridge: Bridge, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await bridge.post(endpoint, body)
    assert reply.status == 201, reply
    created: dict[str, Any] = reply.body
    return created


async def test_post_is_201_with_location_and_etag(bridge: Bridge) -> None:
    """POST answers 201 with the resource, `Location` = meta.location and `ETag` = meta.version."""
    reply = await bridge.post("/Users", user_body())

    assert reply.status == 201
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)
    assert (
        reply.headers["Location"]
        == reply.body["meta"]["location"]
        == bridge.url(f"/Users/{reply.body['id']}")
    )
    assert reply.headers["ETag"] == reply.body["meta"]["version"]


@pytest.mark.parametrize("endpoint", ["Users", "Groups"])
async def test_get_by_id_is_200_with_etag(bridge: Bridge, endpoint: str) -> None:
    """GET of one resource answers 200 with its ETag and location."""
    body = user_body() if endpoint == "Users" else group_body()
    created = await create(bridge, f"/{endpoint}", body)

    reply = await bridge.get(f"/{endpoint}/{created['id']}")

    assert reply.status == 200
    assert reply.headers["ETag"] == created["meta"]["version"]
    assert reply.body["meta"]["location"] == bridge.url(f"/{endpoint}/{created['id']}")


@pytest.mark.parametrize("endpoint", ["Users", "Groups"])
async def test_unknown_id_is_a_scim_404(bridge: Bridge, endpoint: str) -> None:
    """GET of an id the bridge does not know is a 404 SCIM error."""
    reply = await bridge.get(f"/{endpoint}/5b9c2bd1-0000-4000-8000-000000000000")

    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)


async def test_put_is_200_with_the_new_version(bridge: Bridge) -> None:
    """PUT answers 200 with the replaced resource and its new ETag."""
    created = await create(bridge, "/Users", user_body())

    reply = await bridge.put(f"/Users/{created['id']}", user_body(displayName="Alice Liddell"))

    assert reply.status == 200
    assert reply.body["displayName"] == "Alice Liddell"
    assert reply.headers["ETag"] != created["meta"]["version"]


async def test_user_patch_is_200_with_the_resource(bridge: Bridge) -> None:
    """A user PATCH answers 200 with the patched resource."""
    created = await create(bridge, "/Users", user_body())

    reply = await bridge.patch(
        f"/Users/{created['id']}", patch_body({"op": "Replace", "path": "displayName", "value": "Alice L."})
    )

    assert reply.status == 200
    assert reply.body["displayName"] == "Alice L."


@pytest.mark.parametrize(
    ("query", "status"),
    [("", 204), ("?excludedAttributes=members", 204), ("?attributes=displayName", 200)],
    ids=["plain", "excluded", "attributes"],
)
async def test_group_patch_is_204_unless_attributes_ask_for_a_body(
    bridge: Bridge, query: str, status: int
) -> None:
    """A group PATCH answers 204 without a body, unless `attributes` asks for one (docs/entra.md E14)."""
    created = await create(bridge, "/Groups", group_body())

    reply = await bridge.patch(
        f"/Groups/{created['id']}{query}",
        patch_body({"op": "replace", "path": "displayName", "value": "Devs"}),
    )

    assert reply.status == status
    if status == 200:
        assert reply.body == {**reply.body, "id": created["id"], "displayName": "Devs"}
        assert "members" not in reply.body
    else:
        assert reply.body is None


@pytest.mark.parametrize("endpoint", ["Users", "Groups"])
async def test_delete_is_204_without_a_body(bridge: Bridge, endpoint: str) -> None:
    """DELETE answers 204 with no body."""
    body = user_body() if endpoint == "Users" else group_body()
    created = await create(bridge, f"/{endpoint}", body)

    reply = await bridge.delete(f"/{endpoint}/{created['id']}")

    assert (reply.status, reply.body) == (204, None)


@pytest.mark.parametrize(("if_match", "status"), [('W/"1"', 200), ('W/"7"', 412)], ids=["current", "stale"])
async def test_if_match_is_honoured(bridge: Bridge, if_match: str, status: int) -> None:
    """`If-Match` reaches the service: the current version lets the change through, a stale one is 412."""
    created = await create(bridge, "/Users", user_body())

    reply = await bridge.put(
        f"/Users/{created['id']}", user_body(displayName="Changed"), headers={"If-Match": if_match}
    )

    assert reply.status == status


@pytest.mark.parametrize(
    "query",
    [
        "filter=userName+eq+%22alice%40example.com%22",
        "filter=userName%20eq%20%22alice@example.com%22",
        "filter=userName+eq+%22alice%40example.com%22&aadOptscim062020",
        "aadOptscim062020&filter=userName+eq+%22ALICE%40example.com%22",
    ],
    ids=["plus-for-space", "percent-20", "entra-flag", "flag-first-any-case"],
)
async def test_filters_arrive_as_entra_encodes_them(bridge: Bridge, query: str) -> None:
    """`+` in a query string is a space and Entra's `aadOptscim062020` flag is ignored (docs/entra.md Q23)."""
    await create(bridge, "/Users", user_body())

    reply = await bridge.get(f"/Users?{query}")

    assert reply.status == 200
    assert [each["userName"] for each in reply.body["Resources"]] == ["alice@example.com"]


async def test_the_rfc_pagination_example_gives_the_first_page(bridge: Bridge) -> None:
    """RFC 7644 §3.4.2.4's `startIndex=1&count=10` over twelve users: the first ten, with exact totals."""
    for n in range(12):
        await create(bridge, "/Users", user_body(f"user{n:02}@example.com"))

    reply = await bridge.get("/Users", params=read_payload("rfc/rfc7644-3.4.2.4-pagination-query"))

    assert reply.status == 200, reply
    assert (reply.body["startIndex"], reply.body["itemsPerPage"], reply.body["totalResults"]) == (1, 10, 12)
    assert len(reply.body["Resources"]) == 10


async def test_list_resources_carry_their_location(bridge: Bridge) -> None:
    """Each resource in a ListResponse has its own meta.location."""
    created = await create(bridge, "/Groups", group_body())

    reply = await bridge.get("/Groups?filter=displayName+eq+%22Developers%22")

    assert reply.body["totalResults"] == 1
    assert reply.body["Resources"][0]["meta"]["location"] == bridge.url(f"/Groups/{created['id']}")


@pytest.mark.parametrize(
    ("query", "reads_members"),
    [
        ("", True),
        ("?excludedAttributes=members", False),
        ("?excludedAttributes=MEMBERS", False),
        ("?excludedAttributes=urn:ietf:params:scim:schemas:core:2.0:Group:members", False),
        ("?attributes=displayName", False),
        ("?attributes=displayName,members", True),
        ("?attributes=members.value", True),
    ],
    ids=[
        "plain",
        "excluded",
        "excluded-any-case",
        "excluded-urn",
        "attributes-without",
        "attributes-with",
        "sub-attribute",
    ],
)
async def test_members_are_read_only_when_shown(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch, query: str, reads_members: bool
) -> None:
    """`excludedAttributes=members`, or `attributes` without members, never reads memberships
    (docs/entra.md Q17)."""
    user = await create(bridge, "/Users", user_body())
    group = await create(bridge, "/Groups", group_body(members=(user["id"],)))
    store = bridge.store
    reads: list[str] = []
    members_of = store.members_of

    async def counted_members_of(group_id: str) -> set[str]:
        reads.append(group_id)
        return await members_of(group_id)

    monkeypatch.setattr(store, "members_of", counted_members_of)

    reply = await bridge.get(f"/Groups/{group['id']}{query}")

    assert reply.status == 200
    assert bool(reads) is reads_members
    assert ("members" in reply.body) is reads_members


# -- ids that cannot be ids ---------------------------------------------------------------------------


class Untouchable:
    """Stands for the provisioning layer where it must not be reached: any use fails the request."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the provisioning layer was asked for {name}")


async def raw_request(bridge: Bridge, method: str, raw_path: str, body: Any = None) -> Reply:
    """A request whose path goes out exactly as written (`%2E%2E` is not turned into `..` and resolved)."""
    url = URL(str(bridge.server.make_url(bridge.settings.base_path)) + raw_path, encoded=True)
    headers = {"Authorization": f"Bearer {bridge.token}", "Content-Type": SCIM_JSON}
    async with bridge.http.request(method, url, json=body, headers=headers) as response:
        return Reply(response.status, response.headers, await response.json(content_type=None))


IMPLAUSIBLE_IDS: Final = [
    pytest.param(("%2E%2E", ".."), id="dot-dot"),
    pytest.param(("%2E", "."), id="dot"),
    pytest.param(("..%2F..%2Fapi%2Fsystem%2Finfo", "../../api/system/info"), id="parent-path"),
    pytest.param(("a%20b", "a b"), id="space"),
    pytest.param(("abc%3Fq%3D1", "abc?q=1"), id="query"),
    pytest.param(("ad%C3%A9lie", "adélie"), id="non-ascii"),
    pytest.param(("a%00b", "a\ufffdb"), id="nul-shown-as-replacement"),
    pytest.param(("x" * 65, "x" * 65), id="65-characters"),
    pytest.param(("y" * 300, "y" * 100 + "…"), id="300-characters-cut"),
]
RESOURCE_REQUESTS: Final = [
    pytest.param(("GET", None), id="get"),
    pytest.param(("PUT", "body"), id="put"),
    pytest.param(("PATCH", patch_body({"op": "replace", "path": "displayName", "value": "x"})), id="patch"),
    pytest.param(("DELETE", None), id="delete"),
]


@pytest.mark.parametrize("path_id", IMPLAUSIBLE_IDS)
@pytest.mark.parametrize("endpoint", ["Users", "Groups"])
@pytest.mark.parametrize("request_shape", RESOURCE_REQUESTS)
async def test_an_id_that_cannot_be_an_id_is_404_at_once(
    bridge: Bridge,
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str,
    request_shape: tuple[str, Any],
    path_id: tuple[str, str],
) -> None:
    """An `{id}` no SonarQube or bridge id can look like (scim/ids.py) is the usual SCIM 404 ("User <id> not
    found") without asking the provisioning layer, so that it never reaches a SonarQube URL."""
    (method, body), (raw_id, shown) = request_shape, path_id
    assert (await bridge.get("/ServiceProviderConfig")).status == 200  # the token's verdict is cached
    await bridge.sonar.control.clear_journal()
    monkeypatch.setattr(bridge.server.app[PROVISIONER], "users", Untouchable())
    monkeypatch.setattr(bridge.server.app[PROVISIONER], "groups", Untouchable())
    if body == "body":
        body = user_body() if endpoint == "Users" else group_body()

    reply = await raw_request(bridge, method, f"/{endpoint}/{raw_id}", body)

    assert reply.status == 404, reply
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)
    assert reply.body["detail"] == f"{endpoint.removesuffix('s')} {shown} not found"
    assert await bridge.sonar.control.journal() == []


@pytest.mark.parametrize("profile", ONE_PROFILE_PER_API)
async def test_the_ids_the_bridge_hands_out_are_plausible(
    bridge_factory: BridgeFactory, profile: str
) -> None:
    """The ids of created users and groups (the bridge's own uuids on v1, SonarQube's on v2) pass the
    plausibility check, and are found again by it."""
    bridge = await bridge_factory(profile)
    user = await create(bridge, "/Users", user_body())
    group = await create(bridge, "/Groups", group_body(members=(user["id"],)))

    assert plausible_id(user["id"])
    assert plausible_id(group["id"])
    assert (await bridge.get(f"/Users/{user['id']}")).status == 200
    assert (await bridge.get(f"/Groups/{group['id']}")).status == 200


# -- absolute URLs ---------------------------------------------------------------------------------------

TRUSTED: Final = ["127.0.0.1/32", "::1/128"]  # the test client's own address: it plays the ingress
FORWARDED: Final = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "scim.example.com"}
SPOOFED_HOST: Final = {"Host": "evil.example"}


@pytest.mark.parametrize(
    ("settings", "headers", "expected"),
    [
        pytest.param({}, {}, None, id="the-request's-own"),
        pytest.param({}, FORWARDED, None, id="forwarded-headers-ignored-from-an-untrusted-peer"),
        pytest.param(
            {"trusted_proxies": TRUSTED},
            FORWARDED,
            "https://scim.example.com",
            id="forwarded-from-a-trusted-proxy",
        ),
        pytest.param(
            {"trusted_proxies": TRUSTED},
            {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "scim.example.com:8443, inner"},
            "https://scim.example.com:8443",
            id="first-hop-of-several",
        ),
        pytest.param(
            {"trusted_proxies": TRUSTED},
            {"X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "evil.example/x?"},
            None,
            id="malformed-forwarded-values-ignored",
        ),
        pytest.param(
            {"public_url": "https://sonar.example.com"},
            {**FORWARDED, **SPOOFED_HOST},
            "https://sonar.example.com",
            id="public-url-wins-over-everything",
        ),
        pytest.param(
            {"public_url": "https://example.com/sonar/", "trusted_proxies": TRUSTED},
            FORWARDED,
            "https://example.com/sonar",
            id="public-url-with-a-path",
        ),
    ],
)
async def test_location_is_where_clients_reach_the_bridge(
    bridge_factory: BridgeFactory, settings: dict[str, Any], headers: dict[str, str], expected: str | None
) -> None:
    """`Location` and `meta.location` use `public_url` when set, else the request's own scheme and host,
    as a proxy in trusted_proxies forwarded them; a client's own `X-Forwarded-*` are never believed."""
    bridge = await bridge_factory(**settings)
    origin = expected or str(bridge.server.make_url("/")).rstrip("/")

    reply = await bridge.post("/Users", user_body(), headers=headers)

    assert reply.status == 201, reply
    location = f"{origin}{bridge.settings.base_path}/Users/{reply.body['id']}"
    assert reply.headers["Location"] == reply.body["meta"]["location"] == location
    listed = await bridge.get("/Users", headers=headers)
    assert listed.body["Resources"][0]["meta"]["location"] == location


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080"])
async def test_without_public_url_the_host_header_is_the_requests_own(bridge: Bridge, host: str) -> None:
    """Without public_url or a trusted proxy, the URL follows the `Host` the client sent (its own request),
    and only when it is a host name: nothing else reaches the URL."""
    reply = await bridge.post("/Users", user_body(), headers={"Host": host})

    assert reply.status == 201, reply
    assert reply.headers["Location"].startswith(f"http://{host}/api/scim/v2/Users/")


@pytest.mark.parametrize("host", ["a@evil.example", "evil.example/path", "evil example", ""])
async def test_a_host_header_that_is_no_host_never_reaches_a_url(bridge: Bridge, host: str) -> None:
    """A `Host` with userinfo, a path or spaces is replaced by the address the bridge was reached on."""
    reply = await bridge.post("/Users", user_body(), headers={"Host": host})

    assert reply.status == 201, reply
    assert reply.headers["Location"].startswith(str(bridge.server.make_url("/api/scim/v2/Users/")))


@pytest.mark.parametrize("endpoint", ["Users", "Groups"])
@pytest.mark.parametrize("value", ["", "..", "../../api/system/info", "a/b", "%2E%2E"])
async def test_an_id_filter_that_cannot_be_an_id_finds_nothing_without_asking_sonarqube(
    bridge: Bridge, endpoint: str, value: str
) -> None:
    """Finding 8: `id eq ".."` is an empty ListResponse, and no SonarQube URL ever carries that value."""
    assert (await bridge.get("/ServiceProviderConfig")).status == 200  # the token's verdict is cached
    await bridge.sonar.control.clear_journal()
    reply = await bridge.get(f"/{endpoint}", params={"filter": f'id eq "{value}"'})
    assert (reply.status, reply.body["totalResults"]) == (200, 0), reply
    assert await bridge.sonar.control.journal() == []
