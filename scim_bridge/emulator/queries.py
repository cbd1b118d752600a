"""Searching: text matching, filters and pages as SonarQube's searches apply them (docs/sonarqube.md SQ8,
SQ21)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from scim_bridge.emulator.model import bad_request

if TYPE_CHECKING:
    from collections.abc import Sequence

    from scim_bridge.emulator.model import User

T = TypeVar("T")

_ELASTICSEARCH_PARTIAL_MATCH = 15  # 9.9: longer queries match whole values, case-sensitively
_ELASTICSEARCH_WINDOW = 10_000
_MAX_PAGE_SIZE = 500


def contains(text: str | None, query: str) -> bool:
    return text is not None and query.lower() in text.lower()


def user_matches(user: User, query: str | None, *, elasticsearch: bool) -> bool:
    """`q` on login, name and e-mail: contains ignoring case (9.9: only up to 15 characters, else exact)."""
    if query is None:
        return True
    if elasticsearch and len(query) > _ELASTICSEARCH_PARTIAL_MATCH:
        return query in {user.login, user.name, user.email}
    return any(contains(text, query) for text in (user.login, user.name, user.email))


def by_login(users: Sequence[User]) -> list[User]:
    return sorted(users, key=lambda user: user.login)


def page(items: Sequence[T], page_index: int, page_size: int) -> list[T]:
    """Items of one 1-based page (SonarQube's `Pagination`: index and size must be ≥ 1)."""
    if page_index < 1:
        raise bad_request("page index must be >= 1")
    if page_size < 1:
        raise bad_request("page size must be >= 1")
    start = (page_index - 1) * page_size
    return list(items[start : start + page_size])


def elasticsearch_page(items: Sequence[T], page_index: int, page_size: int) -> list[T]:
    """9.9 users/search: Elasticsearch's page checks and its 10 000-result window."""
    if page_index < 1:
        raise bad_request(f"Page must be greater or equal to 1 (got {page_index})")
    if not 0 < page_size <= _MAX_PAGE_SIZE:
        raise bad_request(f"Page size must be between 1 and {_MAX_PAGE_SIZE} (got {page_size})")
    last = page_index * page_size
    if last > _ELASTICSEARCH_WINDOW:
        raise bad_request(
            f"Can return only the first {_ELASTICSEARCH_WINDOW} results. {last}th result asked."
        )
    return list(items[last - page_size : last])


def parse_datetime(value: str) -> datetime:
    """A date-time filter (`2020-01-01T00:00:00+0100`); without an offset, UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(f"Date '{value}' cannot be parsed as either a date or date+time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def connected_between(last: datetime | None, after: datetime | None, before: datetime | None) -> bool:
    """Last-connection filters: `after` needs a connection at or after it; `before` keeps never-connected."""
    if after is not None and (last is None or last < after):
        return False
    return before is None or last is None or last <= before
