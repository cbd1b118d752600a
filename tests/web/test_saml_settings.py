"""What SonarQube's SAML settings mean for provisioning: linking on or off, and group sync warnings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from tests.web.test_entra_users import ADELE, create_user, user_body

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
