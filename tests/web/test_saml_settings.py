"""What SonarQube's SAML settings mean for provisioning: linking on or off, and group sync warnings."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from tests.web.entra import ADELE, create_user, user_body

if TYPE_CHECKING:
    from tests.web.conftest import BridgeFactory


async def test_saml_group_sync_is_warned_about(bridge_factory: BridgeFactory) -> None:
    """With a SAML group attribute set, SonarQube re-syncs groups at sign-in: the bridge warns about it."""
    bridge = await bridge_factory()
    setting = {"key": "sonar.auth.saml.group.name", "value": "groups"}
    assert (await bridge.sonar.post("api/settings/set", setting)).status == 204
    with capture_logs() as logs:
        await create_user(bridge)
    warnings = [log for log in logs if log["event"] == "provisioning.saml_group_sync_on"]
    assert [log["group_attribute"] for log in warnings] == ["groups"]


@pytest.mark.parametrize(
    ("saml", "saml_link", "linked"),
    [(True, "auto", True), (False, "auto", False), (True, "off", False)],
    ids=["saml-on-auto", "saml-off-auto", "saml-on-link-off"],
)
async def test_saml_link_follows_the_setting(
    bridge_factory: BridgeFactory, saml: bool, saml_link: str, linked: bool
) -> None:
    """`saml_link=auto` links when SonarQube has SAML on; `off` never links."""
    bridge = await bridge_factory(saml=saml, saml_link=saml_link)
    reply = await bridge.post("/Users", user_body(ADELE))
    assert reply.status == 201, reply
    sonar = await bridge.sonar.user_state(ADELE)
    assert (sonar["externalProvider"] == "saml") is linked


async def test_adoption_survives_a_refused_saml_link(bridge_factory: BridgeFactory) -> None:
    """When SonarQube refuses to link an adopted account (another account holds that SAML identity), Entra's
    matching query still finds it: the link is logged as refused, not turned into an error."""
    bridge = await bridge_factory("9.9")
    assert (await bridge.sonar.create_user("other", name="Other")).status == 200
    link = {"login": "other", "newExternalProvider": "saml", "newExternalIdentity": ADELE}
    assert (await bridge.sonar.post("api/users/update_identity_provider", link)).status == 204
    assert (await bridge.sonar.post("api/users/deactivate", {"login": "other"})).status == 200
    assert (await bridge.sonar.create_user(ADELE, name="Adele")).status == 200
    with capture_logs() as logs:
        reply = await bridge.get(f'/Users?filter=userName eq "{ADELE}"')
    assert reply.status == 200, reply
    assert [user["userName"] for user in reply.body["Resources"]] == [ADELE]
    assert any(log["event"] == "provisioning.adoption_not_linked" for log in logs)


async def test_a_burst_of_first_creates_reads_the_saml_settings_once(bridge_factory: BridgeFactory) -> None:
    """Entra's first creates arrive together: SonarQube's SAML settings are asked once, not once each."""
    bridge = await bridge_factory(emulator={"latency_ms": 30})  # every create is in flight at once
    assert (await bridge.get("/ServiceProviderConfig")).status == 200  # the token is checked: no queue there
    names = [f"user{index}@contoso.example" for index in range(8)]
    await asyncio.gather(*(create_user(bridge, user_body(name)) for name in names))
    paths = [entry["path"] for entry in await bridge.sonar.control.journal()]
    assert paths.count("/api/settings/values") == 1
