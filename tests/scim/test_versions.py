"""Resource versions on the wire: weak ETags out, `If-Match` in (RFC 7644 §3.14)."""

from __future__ import annotations

import pytest

from scim_bridge.scim.errors import PreconditionFailedError
from scim_bridge.scim.versions import IfMatch, weak_etag


def test_versions_are_weak_etags() -> None:
    """`meta.version` and `ETag` are weak ETags of the version number."""
    assert weak_etag(3) == 'W/"3"'


def test_no_if_match_is_no_condition() -> None:
    """Without an `If-Match` header there is nothing to check."""
    assert IfMatch.parse(None) is None


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ('W/"3"', True),
        ("*", True),
        ('"3"', True),
        ('W/"2"', False),
        ('W/"2", W/"3"', True),
        ('W/"2", *', True),
        ('"abc"', False),
        ("3", False),
        ("", False),
    ],
    ids=["weak", "star", "strong", "stale", "list", "list-with-star", "foreign-tag", "bare-number", "empty"],
)
def test_if_match(header: str, ok: bool) -> None:
    """If-Match passes for the current version (weak or strong) or `*`; anything else is 412."""
    condition = IfMatch.parse(header)
    assert condition is not None
    if ok:
        condition.check(3)
    else:
        with pytest.raises(PreconditionFailedError, match="If-Match"):
            condition.check(3)
