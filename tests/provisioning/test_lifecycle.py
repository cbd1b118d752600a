"""Shared provisioning steps that need no SonarQube (scim_bridge/provisioning/lifecycle.py)."""

from __future__ import annotations

import asyncio

from scim_bridge.provisioning.lifecycle import (
    LISTING_CHUNK,
    YIELD_EVERY,
    selected_from_listing,
    selected_page,
)
from scim_bridge.scim.filters import parse_filter
from scim_bridge.scim.listing import SearchParams
from scim_bridge.scim.representation import Representation
from scim_bridge.scim.resources import USER_SCHEMA, UserResource


async def test_a_long_filter_evaluation_lets_other_requests_in() -> None:
    """Finding 4: a filter evaluated over thousands of records gives the event loop to other requests every
    YIELD_EVERY records, instead of holding it until the end."""
    records = [f"user{index}@example.com" for index in range(YIELD_EVERY * 30)]
    evaluated: list[str] = []
    other_request_ran_after: list[int] = []

    def resource(user_name: str) -> Representation[UserResource]:
        evaluated.append(user_name)
        return Representation(UserResource, {"schemas": [USER_SCHEMA], "userName": user_name})

    async def other_request() -> None:
        other_request_ran_after.append(len(evaluated))

    other = asyncio.create_task(other_request())
    selection = 'userName sw "user29"'
    params = SearchParams.from_query({"filter": selection, "count": "2"}, UserResource)
    page, total = await selected_page(records, resource, parse_filter(selection, UserResource), params)
    await other

    assert other_request_ran_after[0] <= YIELD_EVERY
    assert total == 1 + 10 + 100  # user29, user290 … user299, user2900 … user2999
    assert [user.body["userName"] for user in page] == ["user29@example.com", "user290@example.com"]


async def test_a_filter_over_every_user_reads_the_store_in_chunks_and_keeps_one_page() -> None:
    """A filter no look-up answers reads the listing LISTING_CHUNK records at a time and keeps only the page
    asked for, with the exact total, however many users the store holds."""
    user_names = [f"user{index}@example.com" for index in range(LISTING_CHUNK * 3 + 7)]
    offsets: list[int] = []

    async def listing(*, offset: int, limit: int) -> tuple[list[str], int]:
        offsets.append(offset)
        return user_names[offset : offset + limit], len(user_names)

    def resource(user_name: str) -> Representation[UserResource]:
        return Representation(UserResource, {"schemas": [USER_SCHEMA], "userName": user_name})

    selection = 'userName ew "7@example.com"'
    params = SearchParams.from_query({"filter": selection, "startIndex": "3", "count": "2"}, UserResource)
    page, total = await selected_from_listing(
        listing, resource, parse_filter(selection, UserResource), params
    )

    assert offsets == [0, LISTING_CHUNK, LISTING_CHUNK * 2, LISTING_CHUNK * 3]
    assert total == len([name for name in user_names if name.endswith("7@example.com")])
    assert [user.body["userName"] for user in page] == ["user27@example.com", "user37@example.com"]
