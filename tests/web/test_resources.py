"""/Users and /Groups as HTTP: status codes, Location, ETag, If-Match, query strings, membership reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.support import GROUP_SCHEMA, PATCH_OP_SCHEMA, SCIM_JSON, USER_SCHEMA, read_payload

if TYPE_CHECKING:
    from tests.web.conftest import Bridge


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
