"""Bad input over HTTP: every refusal is a SCIM Error (RFC 7644 §3.12) with the right status and scimType and
a detail naming the attribute or the rule; never a 500, never HTML or plain JSON; and nothing half-applied."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scim_bridge.config import BridgeSettings
from scim_bridge.scim.filters import MAX_FILTER_LENGTH, MAX_FILTER_TERMS
from scim_bridge.scim.patch import MAX_MEMBERS, MAX_OPERATIONS
from scim_bridge.web.wire import MAX_JSON_DEPTH, json_depth
from tests.support import (
    ERROR_SCHEMA,
    GROUP_SCHEMA,
    ONE_PROFILE_PER_API,
    PATCH_OP_SCHEMA,
    SCIM_JSON,
    USER_SCHEMA,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from tests.support import Reply
    from tests.web.conftest import Bridge, BridgeFactory

MAX_BODY: Final = BridgeSettings.model_fields["max_body_bytes"].default
STALE: Final = 'W/"999"'


def user(**attributes: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], **attributes}


def group(**attributes: Any) -> dict[str, Any]:
    return {"schemas": [GROUP_SCHEMA], **attributes}


def patch(*operations: Any) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


def assert_scim_error(reply: Reply, status: int, scim_type: str | None, detail: str) -> None:
    """The RFC 7644 §3.12 Error shape: SCIM media type, Error schema, `status` as a string, scimType, detail.

    `detail` is a substring the detail must contain (compared without case), e.g. the attribute's name.
    """
    assert reply.status == status, reply
    assert reply.headers.get("Content-Type", "").partition(";")[0].strip() == SCIM_JSON, reply.headers
    body = reply.body
    assert isinstance(body, dict), reply
    assert body["schemas"] == [ERROR_SCHEMA], body
    assert body["status"] == str(status), body
    assert body.get("scimType") == scim_type, body
    assert isinstance(body.get("detail"), str), body
    assert detail.lower() in body["detail"].lower(), body


async def seed(bridge: Bridge) -> dict[str, str]:
    """alice (a provisioned user) and devs (a group with alice as its member); their ids by placeholder."""
    alice = await bridge.post("/Users", user(userName="alice", displayName="Alice", title="Engineer"))
    assert alice.status == 201, alice
    devs = await bridge.post("/Groups", group(displayName="devs", members=[{"value": alice.body["id"]}]))
    assert devs.status == 201, devs
    return {"user": alice.body["id"], "group": devs.body["id"]}


async def sonar_writes(bridge: Bridge) -> list[str]:
    """The SonarQube calls that could change something, from the emulator's journal."""
    return [
        f"{entry['method']} {entry['path']}"
        for entry in await bridge.sonar.control.journal()
        if entry["method"] != "GET"
    ]


@dataclass(frozen=True)
class Bad:
    """A request (`{user}` / `{group}` in the path stand for the seeded ids) and the error it must get."""

    method: str
    path: str
    body: Any = None
    raw: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    status: int = 400
    scim_type: str | None = None
    detail: str = ""


def bad(case_id: str, method: str, path: str, **expected: Any) -> Any:
    return pytest.param(Bad(method, path, **expected), id=case_id)


def invalid_value(case_id: str, method: str, path: str, body: Any, detail: str) -> Any:
    return bad(case_id, method, path, body=body, scim_type="invalidValue", detail=detail)


def invalid_filter(case_id: str, resource: str, text: str, detail: str = "filter") -> Any:
    return bad(case_id, "GET", f"/{resource}?filter={text}", scim_type="invalidFilter", detail=detail)


def not_found(case_id: str, method: str, path: str, body: Any = None) -> Any:
    return bad(case_id, method, path, body=body, status=404, detail="not found")


RENAME_ALICE = patch({"op": "replace", "path": "displayName", "value": "x"})
TOO_DEEP: Final = f"nests deeper than {MAX_JSON_DEPTH} levels"


def nested(depth: int) -> bytes:
    """A User body whose unknown attribute `deep` takes it `depth` levels deep (the body itself is one)."""
    inner = b"[" * (depth - 1) + b"]" * (depth - 1)
    return b'{"schemas": ["%s"], "userName": "bob", "deep": %s}' % (USER_SCHEMA.encode(), inner)


def too_many_members(count: int = MAX_MEMBERS + 1) -> list[dict[str, str]]:
    return [{"value": "{user}"}] * count


def or_terms(count: int) -> str:
    return "%20or%20".join(f'userName%20eq%20"u{index}"' for index in range(count))


BAD_REQUESTS = [
    # The body is no JSON object.
    bad(
        "post-malformed-json",
        "POST",
        "/Users",
        raw=b'{"schemas": [',
        scim_type="invalidSyntax",
        detail="not valid JSON",
    ),
    bad(
        "patch-malformed-json",
        "PATCH",
        "/Users/{user}",
        raw=b'{"Operations": [}',
        scim_type="invalidSyntax",
        detail="not valid JSON",
    ),
    bad(
        "group-patch-malformed-json",
        "PATCH",
        "/Groups/{group}",
        raw=b"{'op': 'add'}",
        scim_type="invalidSyntax",
        detail="not valid JSON",
    ),
    bad("body-array", "POST", "/Users", raw=b"[1, 2]", scim_type="invalidSyntax", detail="not an array"),
    bad("body-number", "POST", "/Users", raw=b"42", scim_type="invalidSyntax", detail="not a number"),
    bad("body-string", "POST", "/Users", raw=b'"alice"', scim_type="invalidSyntax", detail="not a string"),
    bad("body-null", "POST", "/Groups", raw=b"null", scim_type="invalidSyntax", detail="not null"),
    bad("body-empty", "POST", "/Users", raw=b"", scim_type="invalidSyntax", detail="empty"),
    bad(
        "body-not-utf8",
        "PATCH",
        "/Users/{user}",
        raw=b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ["\xff"]}',
        scim_type="invalidSyntax",
        detail="UTF-8",
    ),
    bad(
        "body-text-plain",
        "POST",
        "/Users",
        raw=b'{"userName": "bob"}',
        headers={"Content-Type": "text/plain"},
        scim_type="invalidSyntax",
        detail="application/scim+json",
    ),
    # The body nests too deep for any parser (RecursionError in Python's).
    bad(
        "body-nested-65",
        "POST",
        "/Users",
        raw=nested(MAX_JSON_DEPTH + 1),
        scim_type="invalidSyntax",
        detail=TOO_DEEP,
    ),
    bad(
        "body-nested-100000-arrays",
        "PATCH",
        "/Users/{user}",
        raw=b"[" * 100_000,
        scim_type="invalidSyntax",
        detail=TOO_DEEP,
    ),
    bad(
        "body-nested-50000-objects",
        "PUT",
        "/Groups/{group}",
        raw=b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
        scim_type="invalidSyntax",
        detail=TOO_DEEP,
    ),
    bad(
        "body-nested-in-an-operation",
        "PATCH",
        "/Groups/{group}",
        raw=b'{"Operations": [{"op": "add", "value": ' + b"[" * 5000 + b"]" * 5000 + b"}]}",
        scim_type="invalidSyntax",
        detail=TOO_DEEP,
    ),
    # User attributes.
    invalid_value("missing-userName", "POST", "/Users", user(displayName="Bob"), "userName: required"),
    invalid_value(
        "blank-userName", "POST", "/Users", user(userName="   "), "userName: required attribute is blank"
    ),
    invalid_value(
        "userName-number", "POST", "/Users", user(userName=42), "userName: value is not a valid string"
    ),
    invalid_value(
        "userName-object", "POST", "/Users", user(userName={"value": "bob"}), "userName: value is not"
    ),
    invalid_value("userName-null", "POST", "/Users", user(userName=None), "userName: required"),
    invalid_value(
        "active-maybe",
        "POST",
        "/Users",
        user(userName="bob", active="maybe"),
        "active: value is not a valid boolean",
    ),
    invalid_value("emails-number", "POST", "/Users", user(userName="bob", emails=42), "emails"),
    invalid_value(
        "emails-value-number", "POST", "/Users", user(userName="bob", emails=[{"value": 5}]), "emails.0.value"
    ),
    invalid_value(
        "name-string",
        "POST",
        "/Users",
        user(userName="bob", name="Bob Smith"),
        "name: value is not an object",
    ),
    invalid_value(
        "displayName-201-chars", "POST", "/Users", user(userName="bob", displayName="d" * 201), "displayName"
    ),
    invalid_value("put-userName-number", "PUT", "/Users/{user}", user(userName=7), "userName"),
    # Group attributes.
    invalid_value("group-missing-displayName", "POST", "/Groups", group(), "displayName"),
    invalid_value("group-blank-displayName", "POST", "/Groups", group(displayName=" "), "displayName"),
    invalid_value(
        "group-displayName-256-chars", "POST", "/Groups", group(displayName="g" * 256), "displayName"
    ),
    invalid_value("group-displayName-Anyone", "POST", "/Groups", group(displayName="Anyone"), "Anyone"),
    invalid_value(
        "group-displayName-anyone-lowercase", "POST", "/Groups", group(displayName="anyone"), "Anyone"
    ),
    invalid_value(
        "group-members-not-objects", "POST", "/Groups", group(displayName="qa", members=[5]), "members"
    ),
    # Filters (RFC 7644 §3.4.2.2).
    invalid_filter("filter-without-value", "Users", "userName eq"),
    invalid_filter("filter-unknown-operator", "Users", 'userName xx "a"'),
    invalid_filter("filter-unknown-attribute", "Users", 'fooBar eq "a"', detail="fooBar"),
    invalid_filter("group-filter-unknown-attribute", "Groups", 'fooBar eq "a"', detail="fooBar"),
    invalid_filter("filter-unknown-sub-attribute", "Users", 'name.nope eq "a"', detail="nope"),
    invalid_filter("filter-empty", "Users", ""),
    invalid_filter("filter-number-for-string", "Users", "userName gt 5", detail="userName"),
    invalid_filter("filter-string-for-boolean", "Users", 'active eq "x"', detail="active"),
    invalid_filter("filter-unclosed-bracket", "Users", 'emails[type eq "work"', detail="filter"),
    invalid_filter(
        "filter-too-many-comparisons",
        "Users",
        or_terms(MAX_FILTER_TERMS + 1),
        detail=f"at most {MAX_FILTER_TERMS}",
    ),
    invalid_filter(
        "group-filter-too-long",
        "Groups",
        'displayName%20eq%20"' + "g" * MAX_FILTER_LENGTH + '"',
        detail=f"at most {MAX_FILTER_LENGTH} characters",
    ),
    # PATCH messages and operations (RFC 7644 §3.5.2).
    bad(
        "patch-filter-path-without-value",
        "PATCH",
        "/Users/{user}",
        body=patch({"op": "replace", "path": "emails[type eq ].value", "value": "a@example.com"}),
        scim_type="invalidPath",
        detail="path",
    ),
    bad(
        "group-patch-unclosed-filter-path",
        "PATCH",
        "/Groups/{group}",
        body=patch({"op": "remove", "path": 'members[value eq "x"'}),
        scim_type="invalidPath",
        detail="path",
    ),
    invalid_value(
        "patch-op-frobnicate",
        "PATCH",
        "/Users/{user}",
        patch({"op": "frobnicate", "path": "title", "value": "x"}),
        "'frobnicate' is not a PATCH operation",
    ),
    invalid_value(
        "group-patch-op-frobnicate",
        "PATCH",
        "/Groups/{group}",
        patch({"op": "Frobnicate", "path": "displayName", "value": "x"}),
        "frobnicate",
    ),
    bad(
        "patch-remove-without-path",
        "PATCH",
        "/Users/{user}",
        body=patch({"op": "remove"}),
        scim_type="noTarget",
        detail="requires a path",
    ),
    bad(
        "group-patch-remove-without-path",
        "PATCH",
        "/Groups/{group}",
        body=patch({"op": "remove"}),
        scim_type="noTarget",
        detail="requires a path",
    ),
    bad(
        "patch-remove-userName",
        "PATCH",
        "/Users/{user}",
        body=patch({"op": "remove", "path": "userName"}),
        scim_type="mutability",
        detail="userName",
    ),
    bad(
        "patch-replace-id",
        "PATCH",
        "/Users/{user}",
        body=patch({"op": "replace", "path": "id", "value": "x"}),
        scim_type="mutability",
        detail="id",
    ),
    bad(
        "patch-wrong-message-schema",
        "PATCH",
        "/Users/{user}",
        body={"schemas": ["urn:x"], "Operations": [{"op": "add", "path": "title", "value": "x"}]},
        scim_type="invalidSyntax",
        detail=PATCH_OP_SCHEMA,
    ),
    invalid_value(
        "patch-operations-not-a-list",
        "PATCH",
        "/Users/{user}",
        {"schemas": [PATCH_OP_SCHEMA], "Operations": "replace"},
        "Operations",
    ),
    invalid_value(
        "patch-operations-missing", "PATCH", "/Users/{user}", {"schemas": [PATCH_OP_SCHEMA]}, "operations"
    ),
    invalid_value(
        "patch-add-without-value",
        "PATCH",
        "/Users/{user}",
        patch({"op": "add", "path": "title"}),
        "value is required",
    ),
    invalid_value(
        "patch-active-maybe",
        "PATCH",
        "/Users/{user}",
        patch({"op": "replace", "path": "active", "value": "maybe"}),
        "active",
    ),
    invalid_value(
        "patch-displayName-201-chars",
        "PATCH",
        "/Users/{user}",
        patch({"op": "replace", "path": "displayName", "value": "d" * 201}),
        "displayName",
    ),
    invalid_value(
        "group-patch-displayName-256-chars",
        "PATCH",
        "/Groups/{group}",
        patch({"op": "replace", "path": "displayName", "value": "g" * 256}),
        "displayName",
    ),
    invalid_value(
        "group-patch-rename-to-Anyone",
        "PATCH",
        "/Groups/{group}",
        patch({"op": "replace", "value": {"displayName": "ANYONE"}}),
        "Anyone",
    ),
    invalid_value(
        "group-patch-unknown-member",
        "PATCH",
        "/Groups/{group}",
        patch({"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}),
        "members",
    ),
    bad(
        "patch-1001-operations",
        "PATCH",
        "/Users/{user}",
        body=patch(*[{"op": "replace", "path": "title", "value": "x"}] * (MAX_OPERATIONS + 1)),
        status=413,
        detail=f"at most {MAX_OPERATIONS}",
    ),
    bad(
        "group-patch-1001-operations",
        "PATCH",
        "/Groups/{group}",
        body=patch(
            *[{"op": "add", "path": "members", "value": [{"value": "{user}"}]}] * (MAX_OPERATIONS + 1)
        ),
        status=413,
        detail=f"at most {MAX_OPERATIONS}",
    ),
    bad(
        "group-patch-too-many-members",
        "PATCH",
        "/Groups/{group}",
        body=patch({"op": "add", "path": "members", "value": too_many_members()}),
        status=413,
        detail=f"at most {MAX_MEMBERS} are accepted",
    ),
    bad(
        "group-post-too-many-members",
        "POST",
        "/Groups",
        body=group(displayName="big", members=too_many_members()),
        status=413,
        detail=f"members: {MAX_MEMBERS + 1} members in one request; at most {MAX_MEMBERS}",
    ),
    bad(
        "group-put-too-many-members",
        "PUT",
        "/Groups/{group}",
        body=group(displayName="devs", members=too_many_members()),
        status=413,
        detail=f"at most {MAX_MEMBERS} are accepted",
    ),
    bad(
        "group-post-too-many-members-urn-key",
        "POST",
        "/Groups",
        body={"schemas": [GROUP_SCHEMA], "displayName": "big", f"{GROUP_SCHEMA}:Members": too_many_members()},
        status=413,
        detail=f"at most {MAX_MEMBERS} are accepted",
    ),
    # Unknown ids (RFC 7644 §3.12: 404).
    not_found("get-unknown-user", "GET", "/Users/no-such-id"),
    not_found("put-unknown-user", "PUT", "/Users/no-such-id", user(userName="bob")),
    not_found("patch-unknown-user", "PATCH", "/Users/no-such-id", RENAME_ALICE),
    not_found("delete-unknown-user", "DELETE", "/Users/no-such-id"),
    not_found("get-unknown-group", "GET", "/Groups/no-such-id"),
    not_found("put-unknown-group", "PUT", "/Groups/no-such-id", group(displayName="qa")),
    not_found("patch-unknown-group", "PATCH", "/Groups/no-such-id", RENAME_ALICE),
    not_found("delete-unknown-group", "DELETE", "/Groups/no-such-id"),
    bad("unknown-endpoint", "GET", "/Nope", status=404, detail="/Nope"),
    bad("unknown-schema", "GET", "/Schemas/urn:nope", status=404, detail="urn:nope"),
    bad("unknown-resource-type", "GET", "/ResourceTypes/Nope", status=404, detail="Nope"),
    # Query parameters (RFC 7644 §3.4.2.4, §3.9).
    invalid_value("startIndex-abc", "GET", "/Users?startIndex=abc", None, "startIndex"),
    invalid_value("count-abc", "GET", "/Groups?count=abc", None, "count"),
    invalid_value("attributes-unknown", "GET", "/Users?attributes=nope", None, "attributes: nope"),
    invalid_value(
        "excludedAttributes-unknown",
        "GET",
        "/Groups?excludedAttributes=nope",
        None,
        "excludedAttributes: nope",
    ),
    invalid_value("attributes-unknown-on-one-user", "GET", "/Users/{user}?attributes=nope", None, "nope"),
    # Uniqueness (RFC 7644 §3.3: 409 uniqueness).
    bad(
        "duplicate-userName",
        "POST",
        "/Users",
        body=user(userName="alice"),
        status=409,
        scim_type="uniqueness",
        detail="userName",
    ),
    bad(
        "duplicate-userName-other-case",
        "POST",
        "/Users",
        body=user(userName="ALICE"),
        status=409,
        scim_type="uniqueness",
        detail="userName",
    ),
    bad(
        "duplicate-group-other-case",
        "POST",
        "/Groups",
        body=group(displayName="DeVs"),
        status=409,
        scim_type="uniqueness",
        detail="displayName",
    ),
    # Versions (RFC 7644 §3.14: 412 when If-Match does not match).
    bad(
        "stale-if-match-put",
        "PUT",
        "/Users/{user}",
        body=user(userName="alice"),
        headers={"If-Match": STALE},
        status=412,
        detail="If-Match",
    ),
    bad(
        "stale-if-match-patch",
        "PATCH",
        "/Users/{user}",
        body=RENAME_ALICE,
        headers={"If-Match": STALE},
        status=412,
        detail="If-Match",
    ),
    bad(
        "stale-if-match-group-patch",
        "PATCH",
        "/Groups/{group}",
        body=RENAME_ALICE,
        headers={"If-Match": STALE},
        status=412,
        detail="If-Match",
    ),
    bad(
        "stale-if-match-delete",
        "DELETE",
        "/Groups/{group}",
        headers={"If-Match": STALE},
        status=412,
        detail="If-Match",
    ),
    # Methods and endpoints the bridge does not serve.
    bad("method-not-allowed", "DELETE", "/Users", status=405, detail="not allowed"),
    bad(
        "bulk",
        "POST",
        "/Bulk",
        body={"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"]},
        status=501,
        detail="/Bulk",
    ),
    bad("me", "GET", "/Me", status=501, detail="/Me"),
]


async def send(bridge: Bridge, case: Bad, ids: Mapping[str, str]) -> Reply:
    headers = {key: value.format(**ids) for key, value in case.headers.items()}
    path = case.path.format(**ids)
    if case.raw is not None:
        headers.setdefault("Content-Type", SCIM_JSON)
        return await bridge.request(case.method, path, data=case.raw, headers=headers)
    body = _fill(case.body, ids)
    return await bridge.request(case.method, path, json=body, headers=headers)


def _fill(value: Any, ids: Mapping[str, str]) -> Any:
    """Placeholders inside a JSON body, e.g. a member `{"value": "{user}"}`."""
    if isinstance(value, str) and value in {"{user}", "{group}"}:
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(each, ids) for each in value]
    if isinstance(value, dict):
        return {key: _fill(each, ids) for key, each in value.items()}
    return value


@pytest.mark.parametrize("case", BAD_REQUESTS)
async def test_bad_request_gets_a_scim_error(bridge: Bridge, case: Bad) -> None:
    """Each bad request is answered with its RFC status and scimType in a SCIM Error naming what is wrong."""
    ids = await seed(bridge)

    reply = await send(bridge, case, ids)

    assert_scim_error(reply, case.status, case.scim_type, case.detail)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(
            "/Users",
            user(userName="bob", fooBar=1, nickName="b", **{"urn:example:custom:2.0:User": {"badge": "7"}}),
            id="user",
        ),
        pytest.param("/Groups", group(displayName="qa", fooBar={"x": 1}), id="group"),
    ],
)
async def test_unknown_attributes_are_ignored(bridge: Bridge, path: str, body: dict[str, Any]) -> None:
    """Attributes no schema defines are dropped, not refused (Entra policy): 201, and they are not echoed."""
    reply = await bridge.post(path, body)

    assert reply.status == 201, reply
    assert "fooBar" not in reply.body
    assert "urn:example:custom:2.0:User" not in reply.body
    assert reply.body["schemas"] == body["schemas"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"userName": "bob"}, id="missing-schemas"),
        pytest.param({"schemas": [GROUP_SCHEMA], "userName": "bob"}, id="another-resource-schema"),
        pytest.param(
            {"schemas": ["urn:ietf:params:scim:schemas:core:2.0User"], "userName": "bob"}, id="misspelt"
        ),
    ],
)
async def test_resource_schemas_are_not_validated_strictly(bridge: Bridge, body: dict[str, Any]) -> None:
    """docs/entra.md E2 (`schemas` is not validated strictly): the endpoint says what the resource is, and
    the answer carries the right schema."""
    reply = await bridge.post("/Users", body)

    assert reply.status == 201, reply
    assert reply.body["schemas"] == [USER_SCHEMA]
    assert reply.body["userName"] == "bob"


async def test_a_bare_email_string_is_read_as_one_email(bridge: Bridge) -> None:
    """A single value given to a multi-valued complex attribute is wrapped (dialect `_fit`), not refused."""
    reply = await bridge.post("/Users", user(userName="bob", emails="bob@example.com"))

    assert reply.status == 201, reply
    assert reply.body["emails"] == [{"value": "bob@example.com"}]


@pytest.mark.parametrize("path", ["name.nope", "fooBar", "urn:example:custom:2.0:User:badge"])
async def test_unknown_patch_paths_are_ignored(bridge: Bridge, path: str) -> None:
    """A PATCH on an attribute no schema defines is dropped like an unknown POST attribute
    (docs/entra.md E12): 200 with the user unchanged, and no SonarQube write."""
    ids = await seed(bridge)
    before = await bridge.get(f"/Users/{ids['user']}")
    await bridge.sonar.control.clear_journal()

    reply = await bridge.patch(f"/Users/{ids['user']}", patch({"op": "replace", "path": path, "value": "x"}))

    assert reply.status == 200, reply
    assert reply.body == before.body
    assert await sonar_writes(bridge) == []


@pytest.mark.parametrize("count", ["-1", "0"])
async def test_negative_or_zero_count_returns_only_the_total(bridge: Bridge, count: str) -> None:
    """RFC 7644 §3.4.2.4: a negative count is read as 0, and 0 returns no resources but the exact total."""
    await seed(bridge)

    reply = await bridge.get("/Users", params={"count": count})

    assert reply.status == 200, reply
    assert reply.headers["Content-Type"].startswith(SCIM_JSON)
    assert reply.body["totalResults"] == 1
    assert reply.body["itemsPerPage"] == 0
    assert reply.body.get("Resources", []) == []


@pytest.mark.parametrize("resource", ["Users", "Groups"])
@pytest.mark.parametrize(
    "start_index",
    [str(2**63 + 1), str(2**31), "9" * 5000, "1_000_000_000_000"],
    ids=["beyond-int64", "beyond-int32", "5000-digits", "underscores"],
)
async def test_a_start_index_beyond_every_result_is_an_empty_page(
    bridge: Bridge, resource: str, start_index: str
) -> None:
    """RFC 7644 §3.4.2.4: a startIndex past the last result, however large, is an empty page with the exact
    total, not an error (and never a 500 from the store's integer range)."""
    await seed(bridge)

    reply = await bridge.get(f"/{resource}", params={"startIndex": start_index})

    assert reply.status == 200, reply
    assert reply.body["totalResults"] == 1
    assert reply.body["itemsPerPage"] == 0
    assert reply.body.get("Resources", []) == []


@pytest.mark.parametrize("count", [str(2**63 + 1), "9" * 5000, f"-{2**63 + 1}"])
async def test_a_count_out_of_range_is_clamped(bridge: Bridge, count: str) -> None:
    """A count beyond any range reads as the page size the bridge advertises; below 0 as 0."""
    await seed(bridge)

    reply = await bridge.get("/Users", params={"count": count, "startIndex": "1"})

    assert reply.status == 200, reply
    assert reply.body["totalResults"] == 1
    assert reply.body["itemsPerPage"] == (0 if count.startswith("-") else 1)


async def test_a_body_nesting_exactly_the_limit_is_read(bridge: Bridge) -> None:
    """A body nesting MAX_JSON_DEPTH levels is not refused for its depth; its unknown attribute is dropped."""
    reply = await bridge.request(
        "POST", "/Users", data=nested(MAX_JSON_DEPTH), headers={"Content-Type": SCIM_JSON}
    )

    assert reply.status == 201, reply
    assert "deep" not in reply.body


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.sampled_from('[]{}"\\ax:,\n')),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=30,
)


def depth_of(value: Any) -> int:
    """How deep arrays and objects nest in a parsed JSON value."""
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


@given(JSON_VALUES, st.booleans())
def test_the_depth_is_read_without_parsing_exactly(value: Any, indent: bool) -> None:
    """`json_depth` counts the nesting of any JSON text as the parser sees it, brackets and quotes inside
    strings (escaped or not) included, whatever the layout."""
    text = json.dumps(value, indent=1 if indent else None)

    assert json_depth(text.encode()) == depth_of(value)


async def test_max_members_in_one_request_are_accepted(bridge: Bridge) -> None:
    """A POST Group body naming MAX_MEMBERS members is within the limit."""
    ids = await seed(bridge)

    reply = await bridge.post(
        "/Groups", group(displayName="big", members=[{"value": ids["user"]}] * MAX_MEMBERS)
    )

    assert reply.status == 201, reply


RENAME: Final = {"op": "replace", "path": "displayName", "value": "Changed"}


@pytest.mark.parametrize(
    ("operations", "status"),
    [
        pytest.param([RENAME, {"op": "frobnicate", "path": "title", "value": "x"}], 400, id="unknown-op"),
        pytest.param([RENAME, {"op": "replace", "path": "active", "value": "maybe"}], 400, id="bad-boolean"),
        pytest.param([RENAME, {"op": "remove", "path": "userName"}], 400, id="remove-required"),
        pytest.param([RENAME, {"op": "replace", "path": "name.givenName", "value": 5}], 400, id="bad-type"),
        pytest.param([RENAME, {"op": "replace", "path": "emails[type eq", "value": "x"}], 400, id="bad-path"),
        pytest.param(
            [{"op": "replace", "path": "active", "value": False}, {"op": "add", "path": "title"}],
            400,
            id="deactivate-then-no-value",
        ),
        pytest.param(
            [{"op": "replace", "path": "title", "value": "Manager"}, {**RENAME, "value": "n" * 201}],
            400,
            id="sonarqube-name-limit",
        ),
        pytest.param(
            [RENAME, {"op": "replace", "path": "userName", "value": "bob"}], 409, id="taken-userName"
        ),
    ],
)
@pytest.mark.parametrize("profile", ONE_PROFILE_PER_API)
async def test_a_patch_with_one_invalid_operation_changes_nothing(
    bridge_factory: BridgeFactory, profile: str, operations: list[dict[str, Any]], status: int
) -> None:
    """A user PATCH is all or nothing: with one invalid operation the valid ones are not applied either, and
    SonarQube receives no write."""
    bridge = await bridge_factory(profile)
    ids = await seed(bridge)
    assert (await bridge.post("/Users", user(userName="bob"))).status == 201
    before = await bridge.get(f"/Users/{ids['user']}")
    await bridge.sonar.control.clear_journal()

    reply = await bridge.patch(f"/Users/{ids['user']}", patch(*operations))

    assert reply.status == status, reply
    assert reply.body["schemas"] == [ERROR_SCHEMA]
    assert await sonar_writes(bridge) == []
    alice = await bridge.sonar.user_state("alice")
    assert (alice["name"], alice["active"]) == ("Alice", True)
    assert (await bridge.get(f"/Users/{ids['user']}")).body == before.body


@pytest.mark.parametrize("profile", ONE_PROFILE_PER_API)
async def test_a_group_patch_with_an_unknown_member_changes_nothing(
    bridge_factory: BridgeFactory, profile: str
) -> None:
    """Member ids are validated before the first SonarQube call: an unknown one is a 400 naming `members`,
    and neither the rename nor the valid member removal in the same PATCH is applied."""
    bridge = await bridge_factory(profile)
    ids = await seed(bridge)
    await bridge.sonar.control.clear_journal()
    body = patch(
        {"op": "replace", "path": "displayName", "value": "renamed"},
        {"op": "remove", "path": f'members[value eq "{ids["user"]}"]'},
        {"op": "add", "path": "members", "value": [{"value": "no-such-user"}]},
    )

    reply = await bridge.patch(f"/Groups/{ids['group']}", body)

    assert_scim_error(reply, 400, "invalidValue", "members")
    assert "no-such-user" in reply.body["detail"]
    assert await sonar_writes(bridge) == []
    after = await bridge.get(f"/Groups/{ids['group']}")
    assert after.body["displayName"] == "devs"
    assert [member["value"] for member in after.body["members"]] == [ids["user"]]
    assert (await bridge.sonar.group_state("devs"))["name"] == "devs"


async def test_stale_if_match_changes_nothing(bridge: Bridge) -> None:
    """RFC 7644 §3.14: a PATCH whose If-Match names an old version is a 412, and the user stays as it was."""
    ids = await seed(bridge)
    before = await bridge.get(f"/Users/{ids['user']}")
    await bridge.sonar.control.clear_journal()

    reply = await bridge.patch(f"/Users/{ids['user']}", RENAME_ALICE, headers={"If-Match": STALE})

    assert_scim_error(reply, 412, None, before.body["meta"]["version"])
    assert await sonar_writes(bridge) == []
    assert (await bridge.get(f"/Users/{ids['user']}")).body == before.body


async def test_the_current_version_in_if_match_is_accepted(bridge: Bridge) -> None:
    """The counterpart of the 412: the ETag the bridge gave is a valid If-Match."""
    ids = await seed(bridge)
    etag = (await bridge.get(f"/Users/{ids['user']}")).headers["ETag"]

    reply = await bridge.patch(f"/Users/{ids['user']}", RENAME_ALICE, headers={"If-Match": etag})

    assert reply.status == 200, reply


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_body_over_the_limit_is_a_scim_413(bridge: Bridge, framing: str) -> None:
    """A body over `max_body_bytes` (1 MiB by default) is refused with 413 as a SCIM Error, however it is
    framed, and nothing is created."""
    oversized = (
        (b'{"schemas": ["%s"], "userName": "big", "title": "' % USER_SCHEMA.encode())
        + b"x" * MAX_BODY
        + b'"}'
    )
    data: Any = io.BytesIO(oversized) if framing == "content-length" else _chunks(oversized)
    headers = {"Authorization": f"Bearer {bridge.token}", "Content-Type": SCIM_JSON}

    async with bridge.http.post(bridge.url("/Users"), data=data, headers=headers) as response:
        reply_body = await response.json(content_type=None)
        reply_headers = response.headers
        status = response.status

    assert status == 413
    assert reply_headers["Content-Type"].startswith(SCIM_JSON)
    assert reply_body["schemas"] == [ERROR_SCHEMA]
    assert reply_body["status"] == "413"
    assert str(MAX_BODY) in reply_body["detail"]
    assert (await bridge.get("/Users", params={"filter": 'userName eq "big"'})).body["totalResults"] == 0


@pytest.mark.parametrize("path", ["/.search", "/Users/.search", "/Groups/.search"])
async def test_post_search_is_refused_as_not_implemented(bridge: Bridge, path: str) -> None:
    """RFC 7644 §3.4.3 / §3.12: POST `/.search` is a query the bridge does not implement, so the answer is a
    SCIM 501 (what scim2-tester expects of a server without it), not a 404 or a 405."""
    reply = await bridge.post(path, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]})

    assert_scim_error(reply, 501, None, ".search")
