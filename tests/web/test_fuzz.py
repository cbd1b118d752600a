"""Properties of the running bridge over HTTP: generated PATCH bodies, filters and creation bodies are
answered with a SCIM status and an `application/scim+json` body (a SCIM Error for 4xx), never a 500.

The bridge and its emulator are served on the test's event loop, built once per test; Hypothesis runs in a
worker thread (`asyncio.to_thread`) and each example is one synchronous HTTP request to them, so the loop
keeps serving while the examples run.

Long mode: `SCIM_BRIDGE_FUZZ_EXAMPLES=N` runs N examples per test instead of 200, with the store in a file,
and checks after every request refused with a 4xx that it changed neither SonarQube (no successful write in
the emulator's journal) nor the state store (SQLite's `data_version`). `SCIM_BRIDGE_FUZZ_REPORT=FILE` appends
one JSON line per test with its counts. `python -m tests.scenarios --fuzz N` runs both and sums them up
(docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Final, Self

import httpx2
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import (
    ENTERPRISE_USER_SCHEMA,
    ERROR_SCHEMA,
    GROUP_SCHEMA,
    LIST_RESPONSE_SCHEMA,
    PATCH_OP_SCHEMA,
    SCIM_JSON,
    USER_SCHEMA,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import TracebackType

    from tests.web.conftest import Bridge, BridgeFactory

SCIM_STATUSES: Final = frozenset({200, 201, 204, 400, 404, 409, 412, 413})
SCIM_TYPES: Final = frozenset(
    {
        None,
        "invalidValue",
        "invalidSyntax",
        "invalidFilter",
        "invalidPath",
        "noTarget",
        "mutability",
        "tooMany",
        "uniqueness",
    }
)
LONG: Final = bool(os.environ.get("SCIM_BRIDGE_FUZZ_EXAMPLES"))
"""The long mode: more examples, and every refused request checked for side effects."""
FUZZ = settings(
    max_examples=int(os.environ.get("SCIM_BRIDGE_FUZZ_EXAMPLES") or 200), deadline=None, database=None
)
WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def fuzzed_bridge(bridge_factory: BridgeFactory, tmp_path: Path, profile: str = "2025.6") -> Bridge:
    """The bridge under fuzzing: its store in memory, or in a file the long mode can look at."""
    if LONG:
        return await bridge_factory(profile, store=f"sqlite:///{tmp_path / 'state.db'}")
    return await bridge_factory(profile)


class Watch:
    """What one test sent and how it was answered; in the long mode also that a request refused with a 4xx
    changed neither SonarQube nor the store. Used inside the Hypothesis thread only."""

    def __init__(self, name: str, bridge: Bridge) -> None:
        self.name = name
        self.journal = str(bridge.sonar.server.make_url("/_emulator/journal"))
        self.store = bridge.settings.store.removeprefix("sqlite:///") if LONG else None
        self.statuses: Counter[int] = Counter()
        self.changed = 0
        self._control: httpx2.Client | None = None
        self._db: sqlite3.Connection | None = None
        self._version: int = 0
        self._started = time.monotonic()

    def __enter__(self) -> Self:
        if LONG:
            self._control = httpx2.Client(timeout=30)
            self._db = sqlite3.connect(self.store or "", isolation_level=None)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._control is not None:
            self._control.close()
        if self._db is not None:
            self._db.close()
        if report := os.environ.get("SCIM_BRIDGE_FUZZ_REPORT"):
            line = {
                "test": self.name,
                "requests": self.statuses.total(),
                "4xx": sum(n for status, n in self.statuses.items() if 400 <= status < 500),
                "changed after a 4xx": self.changed,
                "5xx": sum(n for status, n in self.statuses.items() if status >= 500),
                "seconds": round(time.monotonic() - self._started, 1),
            }
            with open(report, "a", encoding="utf-8") as out:  # noqa: PTH123 - one line, appended
                out.write(json.dumps(line) + "\n")

    def _data_version(self) -> int:
        assert self._db is not None
        version: int = self._db.execute("PRAGMA data_version").fetchone()[0]
        return version

    def before(self) -> None:
        """Long mode: forget SonarQube's journal and note the store's version."""
        if self._control is not None:
            self._control.delete(self.journal).raise_for_status()
            self._version = self._data_version()

    def after(self, response: httpx2.Response) -> None:
        """Count the answer; long mode: a 4xx wrote nothing to SonarQube and nothing to the store."""
        self.statuses[response.status_code] += 1
        if self._control is None or not 400 <= response.status_code < 500:
            return
        journal = self._control.get(self.journal).json()
        writes = [
            f"{entry['method']} {entry['path']} → {entry['status']}"
            for entry in journal
            if entry["method"] in WRITES and entry["status"] is not None and entry["status"] < 300
        ]
        store_changed = self._data_version() != self._version
        self.changed += bool(writes or store_changed)
        sent = f"{response.request.method} {response.request.url} {response.request.content!r}"
        assert not writes, f"{response.status_code} for {sent}, yet SonarQube was written: {writes}"
        assert not store_changed, f"{response.status_code} for {sent}, yet the store changed"


def check_scim_answer(response: httpx2.Response, expected_schema: str | None) -> None:
    """A SCIM status; 204 empty; anything else a SCIM JSON object, a SCIM Error for 4xx."""
    sent = f"{response.request.method} {response.request.url} {response.request.content!r}"
    assert response.status_code in SCIM_STATUSES, f"{response.status_code} for {sent}: {response.text}"
    if response.status_code == 204:
        assert response.content == b"", sent
        return
    assert response.headers.get("Content-Type", "").partition(";")[0] == SCIM_JSON, sent
    body = response.json()
    assert isinstance(body, dict), sent
    if response.status_code >= 400:
        assert body["schemas"] == [ERROR_SCHEMA], (sent, body)
        assert body["status"] == str(response.status_code), (sent, body)
        assert body.get("scimType") in SCIM_TYPES, (sent, body)
        assert isinstance(body.get("detail"), str), (sent, body)
    elif expected_schema is not None:
        assert expected_schema in body["schemas"], (sent, body)


def run_in_thread(bridge: Bridge, prop: Callable[[httpx2.Client], None]) -> Any:
    """Run a Hypothesis property with a synchronous client of the bridge, off the loop that serves it."""

    def run() -> None:
        headers = {"Authorization": f"Bearer {bridge.token}"}
        with httpx2.Client(base_url=bridge.url(""), headers=headers, timeout=30) as client:
            prop(client)

    return asyncio.to_thread(run)


def create(client: httpx2.Client, endpoint: str, body: dict[str, Any]) -> str:
    response = client.post(endpoint, json=body, headers={"Content-Type": SCIM_JSON})
    assert response.status_code == 201, response.text
    identifier: str = response.json()["id"]
    return identifier


# ---- JSON values of every type ----------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["", " ", "True", "false", "maybe", "a@example.com", "Anyone", "x" * 256])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def any_case(words: list[str]) -> st.SearchStrategy[str]:
    """One of `words`, each letter in a random case."""
    return st.tuples(st.sampled_from(words), st.randoms(use_true_random=False)).map(
        lambda pair: "".join(c.upper() if pair[1].random() < 0.5 else c.lower() for c in pair[0])
    )


VALID_OPS = any_case(["add", "remove", "replace"])
OP_NAMES = st.one_of(
    VALID_OPS, VALID_OPS, VALID_OPS, st.sampled_from(["frobnicate", "", "copy"]), st.text(max_size=8)
)
SENSIBLE_VALUES = st.one_of(
    st.text(min_size=1, max_size=12),
    st.booleans(),
    st.sampled_from(["True", "false", "a@example.com"]),
    st.lists(
        st.fixed_dictionaries(
            {"value": st.text(min_size=1, max_size=12)},
            optional={"type": st.sampled_from(["work", "home"]), "primary": st.booleans()},
        ),
        max_size=2,
    ),
)
"""Values that fit some attribute, so that generated PATCHes also reach SonarQube, not only the parser."""
VALUES = st.one_of(SENSIBLE_VALUES, SENSIBLE_VALUES, JSON_VALUES)


# ---- PATCH bodies --------------------------------------------------------------------------------------

USER_PATHS = [
    "displayName",
    "title",
    "nickName",
    "userName",
    "active",
    "externalId",
    "preferredLanguage",
    "name.givenName",
    "name.familyName",
    "name.formatted",
    "name",
    "emails",
    'emails[type eq "work"].value',
    "emails[primary eq true].value",
    'emails[value co "@"].display',
    'phoneNumbers[type eq "mobile"].value',
    'addresses[type eq "work"].streetAddress',
    "roles",
    f"{ENTERPRISE_USER_SCHEMA}:department",
    f"{ENTERPRISE_USER_SCHEMA}:manager",
    f"{ENTERPRISE_USER_SCHEMA}.employeeNumber",
    f"{USER_SCHEMA}:title",
    "urn:ietf:params:scim:schemas:extension:contoso:2.0:User:badge",
    "id",
    "meta",
    "meta.created",
    "schemas",
    "members",
    "name.nope",
    "fooBar",
    "emails[type eq ].value",
    "emails[",
    'emails[type eq "work"',
    "]",
    "name..givenName",
    "urn:x",
    "",
]
GROUP_PATHS = [
    "displayName",
    "externalId",
    "members",
    "members.value",
    'members[value eq "{user}"]',
    'members[value eq "{other}"]',
    'members[value eq "no-such-user"]',
    'members[display eq "x"]',
    "members[value eq ",
    f"{GROUP_SCHEMA}:displayName",
    "urn:ietf:params:scim:schemas:extension:contoso:2.0:Group:tag",
    "id",
    "meta",
    "fooBar",
    "userName",
    "",
]


def operations(paths: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly well-formed operations (so that PATCHes also reach SonarQube), some path-less, some wild."""
    known = st.sampled_from(paths)
    well_formed = st.fixed_dictionaries({"op": VALID_OPS, "path": known, "value": values})
    pathless = st.fixed_dictionaries(
        {"op": any_case(["add", "replace"]), "value": st.dictionaries(known, values, min_size=1, max_size=3)}
    )
    path = st.one_of(known, st.text(max_size=12), st.none())
    wild = st.fixed_dictionaries(
        {"op": OP_NAMES}, optional={"path": path, "value": values | st.dictionaries(path, values, max_size=3)}
    )
    return st.one_of(well_formed, well_formed, well_formed, pathless, wild)


def patch_bodies(operation: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    listed = st.lists(operation, max_size=4)
    message = st.builds(lambda ops: {"schemas": [PATCH_OP_SCHEMA], "Operations": ops}, listed)
    return st.one_of(
        message,
        message,
        message,
        st.builds(lambda ops: {"Operations": ops}, listed),
        st.fixed_dictionaries({"schemas": JSON_VALUES, "Operations": JSON_VALUES | listed}),
    )


def member_values(ids: dict[str, str]) -> st.SearchStrategy[Any]:
    member_id = st.sampled_from([ids["user"], ids["other"], ids["group"], "no-such-user", ""]) | st.text(
        max_size=8
    )
    member = st.fixed_dictionaries({"value": member_id}, optional={"$ref": st.none() | st.text(max_size=8)})
    members = st.lists(member | member_id, max_size=3)
    return st.one_of(members, members, SENSIBLE_VALUES, JSON_VALUES)


def fill(text: str, ids: dict[str, str]) -> str:
    return text.replace("{user}", ids["user"]).replace("{other}", ids["other"])


async def test_generated_user_patches_get_scim_answers(bridge_factory: BridgeFactory, tmp_path: Path) -> None:
    """Any PATCH body on a user (ops in any case, valid/invalid/unknown/filtered paths, values of any JSON
    type) is answered 200 with the user or a SCIM Error, never a 500."""
    bridge = await fuzzed_bridge(bridge_factory, tmp_path)

    def prop(client: httpx2.Client) -> None:
        user_id = create(
            client, "/Users", {"schemas": [USER_SCHEMA], "userName": "alice", "displayName": "Alice"}
        )
        create(client, "/Users", {"schemas": [USER_SCHEMA], "userName": "bob"})

        @FUZZ
        @given(patch_bodies(operations(USER_PATHS, VALUES)))
        def send(body: dict[str, Any]) -> None:
            watch.before()
            response = client.patch(f"/Users/{user_id}", json=body, headers={"Content-Type": SCIM_JSON})
            watch.after(response)
            check_scim_answer(response, USER_SCHEMA)

        with Watch("user patches", bridge) as watch:
            send()

    await run_in_thread(bridge, prop)


async def test_generated_group_patches_get_scim_answers(
    bridge_factory: BridgeFactory, tmp_path: Path
) -> None:
    """Any PATCH body on a group (member values from known, unknown and malformed ids) is answered 204 or a
    SCIM Error, never a 500, on the v1 (9.9) dialect."""
    bridge = await fuzzed_bridge(bridge_factory, tmp_path, "9.9")

    def prop(client: httpx2.Client) -> None:
        ids = {
            "user": create(client, "/Users", {"schemas": [USER_SCHEMA], "userName": "alice"}),
            "other": create(client, "/Users", {"schemas": [USER_SCHEMA], "userName": "bob"}),
        }
        ids["group"] = create(client, "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "devs"})
        paths = [fill(path, ids) for path in GROUP_PATHS]

        @FUZZ
        @given(patch_bodies(operations(paths, member_values(ids))))
        def send(body: dict[str, Any]) -> None:
            watch.before()
            response = client.patch(f"/Groups/{ids['group']}", json=body, headers={"Content-Type": SCIM_JSON})
            watch.after(response)
            check_scim_answer(response, GROUP_SCHEMA)

        with Watch("group patches", bridge) as watch:
            send()

    await run_in_thread(bridge, prop)


# ---- filters -------------------------------------------------------------------------------------------

FILTER_ATTRIBUTES = st.sampled_from(
    [
        "userName",
        "USERNAME",
        "displayName",
        "externalId",
        "id",
        "active",
        "title",
        "emails",
        "emails.value",
        "emails.type",
        "name.givenName",
        "meta.created",
        "meta.lastModified",
        "members",
        "members.value",
        "manager",
        f"{USER_SCHEMA}:userName",
        f"{ENTERPRISE_USER_SCHEMA}:manager",
        f"{ENTERPRISE_USER_SCHEMA}:manager.value",
        "fooBar",
        "name.nope",
    ]
)
FILTER_OPERATORS = any_case(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]) | st.sampled_from(
    ["xx", ""]
)
FILTER_VALUES = st.one_of(
    st.text(max_size=10).map(json.dumps),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["true", "false", "null", '"2024-01-01T00:00:00Z"', '"alice"', '"ALICE"', "alice", '"']),
)
COMPARISONS = st.one_of(
    st.builds(lambda a, o, v: f"{a} {o} {v}", FILTER_ATTRIBUTES, FILTER_OPERATORS, FILTER_VALUES),
    st.builds(lambda a: f"{a} pr", FILTER_ATTRIBUTES),
)
FILTERS = st.recursive(
    COMPARISONS,
    lambda inner: st.one_of(
        st.builds(lambda a, o, b: f"{a} {o} {b}", inner, any_case(["and", "or"]), inner),
        st.builds(lambda f: f"not ({f})", inner),
        st.builds(lambda f: f"({f})", inner),
        st.builds(lambda a, f: f"{a}[{f}]", FILTER_ATTRIBUTES, inner),
        st.builds(
            lambda a, f, s: f"{a}[{f}].{s}", FILTER_ATTRIBUTES, inner, st.sampled_from(["value", "type"])
        ),
    ),
    max_leaves=4,
) | st.text(max_size=30)


ATTRIBUTE_LISTS = st.lists(
    st.sampled_from(
        [
            "userName",
            "displayName",
            "members",
            "emails.value",
            "meta",
            "id",
            "nope",
            f"{ENTERPRISE_USER_SCHEMA}:manager",
        ]
    )
    | st.text(max_size=8),
    max_size=3,
).map(",".join)
NUMBERS = st.integers(min_value=-5, max_value=10**12).map(str) | st.text(max_size=5)
QUERY_EXTRAS = st.fixed_dictionaries(
    {},
    optional={
        "startIndex": NUMBERS,
        "count": NUMBERS,
        "attributes": ATTRIBUTE_LISTS,
        "excludedAttributes": ATTRIBUTE_LISTS,
        "sortBy": st.sampled_from(["userName", "displayName", "nope"]),
        "sortOrder": st.sampled_from(["ascending", "descending", "sideways"]),
    },
)


async def test_generated_filters_get_scim_answers(bridge_factory: BridgeFactory, tmp_path: Path) -> None:
    """Any filter (RFC grammar with known and unknown attributes, or random text) with any paging and
    attribute parameters, on /Users and /Groups, is 200 with a ListResponse or a 400 SCIM Error (invalidFilter
    when the filter is the only parameter), never a 500."""
    bridge = await fuzzed_bridge(bridge_factory, tmp_path)

    def prop(client: httpx2.Client) -> None:
        user_id = create(client, "/Users", {"schemas": [USER_SCHEMA], "userName": "alice", "title": "Eng"})
        create(
            client,
            "/Groups",
            {"schemas": [GROUP_SCHEMA], "displayName": "devs", "members": [{"value": user_id}]},
        )

        @FUZZ
        @given(FILTERS | st.none(), st.sampled_from(["/Users", "/Groups"]), QUERY_EXTRAS)
        def send(text: str | None, endpoint: str, extra: dict[str, str]) -> None:
            params = extra if text is None else {"filter": text, **extra}
            watch.before()
            response = client.get(endpoint, params=params)
            watch.after(response)
            check_scim_answer(response, LIST_RESPONSE_SCHEMA)
            assert response.status_code in {200, 400}, response.text
            if response.status_code == 400 and not extra:
                assert response.json().get("scimType") == "invalidFilter", response.text

        with Watch("filters", bridge) as watch:
            send()

    await run_in_thread(bridge, prop)


# ---- creation bodies -----------------------------------------------------------------------------------

USER_ATTRIBUTES = [
    "userName",
    "displayName",
    "active",
    "emails",
    "name",
    "title",
    "externalId",
    "roles",
    ENTERPRISE_USER_SCHEMA,
]


async def test_generated_user_bodies_get_scim_answers(bridge_factory: BridgeFactory, tmp_path: Path) -> None:
    """Any POST /Users or PUT /Users/{id} body whose attributes hold JSON values of any type is answered 201
    or 200 with the user, 409 or a 400 SCIM Error, never a 500."""
    bridge = await fuzzed_bridge(bridge_factory, tmp_path)

    def prop(client: httpx2.Client) -> None:
        user_id = create(client, "/Users", {"schemas": [USER_SCHEMA], "userName": "alice"})

        @FUZZ
        @given(
            st.dictionaries(st.sampled_from(USER_ATTRIBUTES) | st.text(max_size=8), VALUES, max_size=5),
            st.text(min_size=1, max_size=20) | JSON_VALUES,
            st.sampled_from(["POST", "PUT"]),
        )
        def send(attributes: dict[str, Any], user_name: Any, method: str) -> None:
            body = {"schemas": [USER_SCHEMA], "userName": user_name, **attributes}
            path = "/Users" if method == "POST" else f"/Users/{user_id}"
            watch.before()
            response = client.request(method, path, json=body, headers={"Content-Type": SCIM_JSON})
            watch.after(response)
            check_scim_answer(response, USER_SCHEMA)
            assert response.status_code in {200, 201, 400, 409}, response.text

        with Watch("user bodies", bridge) as watch:
            send()

    await run_in_thread(bridge, prop)
