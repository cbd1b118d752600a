"""The payload corpus as a whole: every Entra and RFC request file is read by the layer it is meant for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scim_bridge.scim.bodies import parse_group, parse_user
from scim_bridge.scim.listing import SearchParams
from scim_bridge.scim.patch import apply_user_patch, parse_user_patch, plan_group_patch
from scim_bridge.scim.resources import GroupResource, UserResource

PAYLOADS = Path(__file__).parent.parent / "payloads"
CORPUS = sorted(path.relative_to(PAYLOADS).with_suffix("").as_posix() for path in PAYLOADS.glob("*/*.json"))
GROUP_WORDS = ("group", "member")


def _is_group(name: str) -> bool:
    return any(word in name for word in GROUP_WORDS)


def _accept(name: str, payload: Any) -> None:
    """Hand a payload to the function that reads its kind of request."""
    if name.endswith("-query"):
        SearchParams.from_query(payload, GroupResource if _is_group(name) else UserResource)
    elif name.endswith("-filters"):
        assert all(isinstance(text, str) for text in payload)
    elif "Operations" in payload and _is_group(name):
        plan_group_patch(payload)
    elif "Operations" in payload:
        apply_user_patch(
            UserResource(id="u-1", user_name="someone@contoso.example"), parse_user_patch(payload)
        )
    else:
        (parse_group if _is_group(name) else parse_user)(payload)


def test_the_corpus_holds_both_origins() -> None:
    """Payloads are filed by origin: Entra's request shapes and RFC 7644's examples."""
    assert {name.split("/")[0] for name in CORPUS} == {"entra", "rfc"}


@pytest.mark.parametrize("name", CORPUS)
def test_every_payload_is_accepted_by_its_reader(name: str) -> None:
    """No request shape in the corpus is refused: Entra sends them, so the bridge must read them."""
    _accept(name, json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8")))
