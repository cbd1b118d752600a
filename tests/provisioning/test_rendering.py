"""Answers rendered from the stored JSON are exactly what scim2-models renders from the validated model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from scim_bridge.provisioning.mapping import (
    adopted_group_attributes,
    adopted_user_attributes,
    group_resource,
    stored_attributes,
    user_resource,
)
from scim_bridge.scim.listing import render_resource
from scim_bridge.scim.patch import apply_user_patch, parse_user_patch
from scim_bridge.scim.resources import GroupResource, UserResource
from scim_bridge.sonarqube import SonarGroup, SonarUser
from scim_bridge.store.records import GroupRecord, UserRecord
from tests.support import PAYLOADS, read_payload

USER_PAYLOADS = sorted(
    path.relative_to(PAYLOADS).with_suffix("").as_posix() for path in PAYLOADS.glob("*/*create-user*.json")
)
GROUP_PAYLOADS = sorted(
    path.relative_to(PAYLOADS).with_suffix("").as_posix() for path in PAYLOADS.glob("*/*create-group*.json")
)
USER_PATCHES = sorted(
    path.relative_to(PAYLOADS).with_suffix("").as_posix()
    for path in (PAYLOADS / "entra").glob("a[56]-*.json")
)
LOCATION = "https://sonar.example.com/api/scim/v2/{endpoint}/{id}"
# Whole seconds and microseconds, UTC and another zone: scim2-models writes each its own way.
MOMENTS = (
    datetime(2026, 12, 2, 8, 30, tzinfo=UTC),
    datetime(2026, 12, 2, 8, 30, 1, 250, tzinfo=timezone(timedelta(hours=2))),
)


def _user_record(attributes: dict[str, Any], moment: datetime, *, active: bool = True) -> UserRecord:
    return UserRecord(
        scim_id="0f6c1c56-6b1e-4a52-9a57-3f1f4bde2c11",
        sonar_id=None,
        external_id=attributes.get("externalId"),
        attributes=attributes,
        created=moment,
        last_modified=moment + timedelta(seconds=3),
        version=4,
        user_name=str(attributes["userName"]),
        sonar_login="adele",
        active=active,
        settled=True,
    )


def _group_record(attributes: dict[str, Any], moment: datetime) -> GroupRecord:
    return GroupRecord(
        scim_id="7d3e1b7c-0c61-4d44-8a41-56c2f7e1a0b9",
        sonar_id=None,
        external_id=attributes.get("externalId"),
        attributes=attributes,
        created=moment,
        last_modified=moment,
        version=1,
        display_name=str(attributes["displayName"]),
        sonar_name="developers",
    )


def _assert_same_rendering(representation: Any, endpoint: str) -> None:
    location = LOCATION.format(endpoint=endpoint, id=representation.id)
    expected = render_resource(representation.resource(), None, location)
    assert representation.render(None, location) == expected


@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("active", [None, True, False])
@pytest.mark.parametrize("payload", USER_PAYLOADS)
def test_user_renders_as_scim2_models_renders_it(payload: str, active: bool | None, moment: datetime) -> None:
    """A stored user, with `active` from SonarQube or not, renders as scim2-models renders its model."""
    attributes = stored_attributes(UserResource.model_validate(read_payload(payload)))
    _assert_same_rendering(user_resource(_user_record(attributes, moment), active=active), "Users")


@pytest.mark.parametrize("patch", USER_PATCHES)
def test_patched_user_renders_as_scim2_models_renders_it(patch: str) -> None:
    """A user after each of Entra's PATCHes renders as scim2-models renders its model."""
    user = UserResource.model_validate(read_payload("entra/a4-create-user-enterprise"))
    apply_user_patch(user, parse_user_patch(read_payload(patch)))
    _assert_same_rendering(user_resource(_user_record(stored_attributes(user), MOMENTS[1])), "Users")


@pytest.mark.parametrize("members", [None, [], ["b-user", "a-user"]])
@pytest.mark.parametrize("payload", GROUP_PAYLOADS)
def test_group_renders_as_scim2_models_renders_it(payload: str, members: list[str] | None) -> None:
    """A stored group, with or without members, renders as scim2-models renders its model."""
    attributes = stored_attributes(GroupResource.model_validate(read_payload(payload)))
    _assert_same_rendering(group_resource(_group_record(attributes, MOMENTS[0]), members), "Groups")


@pytest.mark.parametrize("email", [None, "Adele.Vance@Contoso.example"])
def test_adopted_resources_render_as_scim2_models_renders_them(email: str | None) -> None:
    """Users and groups adopted from SonarQube render as scim2-models renders their models."""
    sonar_user = SonarUser(
        login="adele",
        name="Adele Vance",
        email=email,
        active=True,
        local=False,
        external_provider="saml",
        external_login="adele.vance@contoso.example",
    )
    attributes = adopted_user_attributes("adele.vance@contoso.example", sonar_user)
    _assert_same_rendering(user_resource(_user_record(attributes, MOMENTS[0])), "Users")
    group = adopted_group_attributes(SonarGroup(name="developers"))
    _assert_same_rendering(group_resource(_group_record(group, MOMENTS[0]), ["a-user"]), "Groups")
