"""Shared provisioning steps that need no SonarQube (scim_bridge/provisioning/lifecycle.py)."""

from __future__ import annotations

import asyncio

from scim_bridge.provisioning.lifecycle import YIELD_EVERY, selected_page
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
