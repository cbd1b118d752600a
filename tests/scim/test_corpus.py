"""The payload corpus is all in use: every request file under tests/payloads is named by some test module.

Each payload is read, with the function meant for it, by the test that names it (test_bodies, test_filters,
test_listing, test_patch_users, test_patch_groups here; the Entra catalogue and test_resources over HTTP).
A file no test names is read by nothing, so it is either dead or a request shape the bridge is not tested on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import PAYLOADS

TESTS = PAYLOADS.parent
CORPUS = sorted(path.relative_to(PAYLOADS).with_suffix("").as_posix() for path in PAYLOADS.rglob("*.json"))
TEST_TEXT = "\n".join(
    path.read_text(encoding="utf-8")
    for path in sorted(TESTS.rglob("test_*.py"))
    if path != Path(__file__)  # this module names no payload; its docstring's example must not count
)


@pytest.mark.parametrize("name", CORPUS)
def test_every_payload_is_named_by_a_test(name: str) -> None:
    """Some test module names the payload in full, quoted (`"entra/a4-create-user"`): something reads it."""
    assert f'"{name}"' in TEST_TEXT, f"no test module names {name!r}: read it in a test or delete the file"
