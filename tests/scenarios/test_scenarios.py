"""Nothing lost, with real processes: the short versions of the reliability scenarios (docs/reliability.md).

Each scenario starts the emulator and `scim-bridge serve` as subprocesses, drives an Entra initial cycle of
40 users, 6 groups and 120 memberships and two incremental passes through one disruption, and then requires
every count of `Zeros` to be 0, no 4xx answer, and nothing left failing. The long versions are
`python -m tests.scenarios`. A failure prints the seed and every finding with the requests behind it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

from tests.scenarios.harness import SHORT, Plan, Size, count_zeros, run_scenario

if TYPE_CHECKING:
    from pathlib import Path


async def _scenario(name: str, tmp_path: Path) -> None:
    result = await run_scenario(name, SHORT, tmp_path / name)
    sys.stdout.write(result.describe() + "\n")  # the seed and figures, shown with `pytest -rP`
    if not result.ok:
        pytest.fail(result.describe(), pytrace=False)


@pytest.mark.slow
async def test_sonarqube_faults_lose_nothing(tmp_path: Path) -> None:
    """With 20 % of SonarQube calls failing (500, 503, 429, reset before or after applying, slow), Entra's
    later retries end in exactly the users, SAML links, activity, groups and memberships it asked for."""
    await _scenario("faults", tmp_path)


@pytest.mark.slow
async def test_sonarqube_down_mid_cycle_loses_nothing(tmp_path: Path) -> None:
    """SonarQube dropping every connection for 5 s in the middle of the initial cycle loses nothing: failures
    are 503 with Retry-After and Entra's retries end in exactly the state it asked for."""
    await _scenario("sonarqube-down", tmp_path)


@pytest.mark.slow
async def test_locked_store_mid_cycle_loses_nothing(tmp_path: Path) -> None:
    """Another connection holding the SQLite store in an exclusive transaction for 6 s (past the store's busy
    timeout) loses nothing: failures are 503 with Retry-After, and the retries end in Entra's state."""
    await _scenario("store-locked", tmp_path)


@pytest.mark.slow
async def test_bridge_killed_five_times_loses_nothing(tmp_path: Path) -> None:
    """The bridge SIGKILLed at 5 moments of the cycles and started again on the same store each time: Entra's
    retries end with exactly one account per user and every membership, activity and link it asked for."""
    await _scenario("kills", tmp_path)


# --- the check itself: a checker that always answers zero would prove nothing --------------------------

_SIZE = Size(users=4, groups=2, memberships=4)


def _account(login: str, *, active: bool = True, provider: str = "saml") -> dict[str, Any]:
    return {"login": login, "active": active, "externalProvider": provider, "externalLogin": login}


def _state(plan: Plan) -> dict[str, Any]:
    """The emulator's state that is exactly what `plan` asks for, on top of SonarQube's own objects."""
    users = [_account("admin", provider="sonarqube")]
    users += [_account(name, active=plan.final_active(index)) for index, name in enumerate(plan.users)]
    groups = [{"name": "sonar-users", "default": True}, {"name": "sonar-administrators", "default": False}]
    groups += [{"name": plan.final_name(index), "default": False} for index in range(len(plan.groups))]
    memberships = [{"group": "sonar-administrators", "login": "admin"}]
    memberships += [
        {"group": plan.final_name(group), "login": plan.users[user]}
        for group, user in sorted(plan.final_memberships)
        if plan.final_active(user)
    ]
    return {"users": users, "groups": groups, "memberships": memberships, "samlEnabled": True}


_BASELINE: dict[str, Any] = {
    "users": [_account("admin", provider="sonarqube")],
    "groups": [{"name": "sonar-users", "default": True}, {"name": "sonar-administrators", "default": False}],
}


def test_the_zeros_are_zero_for_exactly_what_entra_asked() -> None:
    """A SonarQube state that is exactly the plan's end state counts no difference at all."""
    plan = Plan.generate(_SIZE, seed=1)
    zeros = count_zeros(plan, _BASELINE, _state(plan))
    assert zeros.all_zero, zeros


def test_the_zeros_count_every_kind_of_difference() -> None:
    """A lost membership, an extra one, a duplicate, a stray and a missing account, a wrong `active`, a lost
    SAML link and a group left with its old name are each counted where they belong."""
    plan = Plan.generate(_SIZE, seed=1)
    state = _state(plan)
    lost = next(m for m in state["memberships"] if m["login"] != "admin")
    first = lost["login"]
    second = next(name for name in plan.users if name != first)
    state["memberships"] = [m for m in state["memberships"] if m is not lost and m["login"] != second]
    state["memberships"].append({"group": "sonar-administrators", "login": first})
    state["users"] = [user for user in state["users"] if user["login"] != second]
    state["users"] += [
        {**_account("derived-login"), "externalLogin": first},
        _account("nobody@contoso.example"),
    ]
    target = next(user for user in state["users"] if user["login"] == first)
    target["active"] = False
    target["externalProvider"] = "sonarqube"
    renamed = next(group for group in state["groups"] if group["name"] == plan.new_name)
    renamed["name"] = plan.groups[plan.renamed]

    zeros = count_zeros(plan, _BASELINE, state)

    assert f"{first} not in {lost['group']!r}" in zeros.missing_memberships
    assert f"{first} in 'sonar-administrators'" in zeros.extra_memberships
    assert zeros.duplicate_users == [f"{first}: 2 accounts [{first!r}, 'derived-login']"]
    assert zeros.stray_users == ["account 'nobody@contoso.example' (Entra never asked for it)"]
    assert zeros.missing_users == [f"{second}: no SonarQube account"]
    assert [line.split(":")[0] for line in zeros.wrong_active] == [first]
    assert [line.split(":")[0] for line in zeros.unlinked_users] == [first]
    assert len(zeros.group_problems) == 2  # the new name missing, the old one still there
