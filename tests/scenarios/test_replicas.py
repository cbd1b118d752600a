"""Two replicas, one PostgreSQL store: two `scim-bridge serve` processes on one database, in front of one
emulator, end in exactly the state Entra asked for.

Entra's cycles (30 users, 4 groups, 90 memberships, then the incremental and re-enable passes) are sent
round-robin over both replicas, so that a group's member PATCHes, sent 5 at once, land on both processes at
the same time. Then, all at once and split over the two replicas: single-member adds and removes of one
group, a disable on one replica with a `displayName` change of the same user on the other, and two
`displayName` changes of another user, and a new user and a new group each POSTed to both replicas (one 201,
one 409). The zeros are then counted on SonarQube's side and on each replica's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import sys
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import pytest

from tests.scenarios.harness import (
    ENTRA_GROUP_SCHEMA,
    GROUP_SCHEMA,
    Answer,
    Bridge,
    Emulator,
    EntraDriver,
    Failed,
    HarnessError,
    Pacing,
    Plan,
    ScimClient,
    Size,
    _patch,
    _user_body,
    count_zeros,
    store_view,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.postgres_server import PostgresServer

SIZE: Final = Size(users=30, groups=4, memberships=90)
SEED: Final = 62001
PACING: Final = Pacing(timeout=20.0, pass_deadline=25.0)
RACE_TRIES: Final = 20  # a race request answered 503 is sent again (to the same replica) up to this often


class Replica(Bridge):
    """`scim-bridge serve` on the shared PostgreSQL database instead of a SQLite file of its own."""

    def __init__(self, workdir: Path, sonar_url: str, http: aiohttp.ClientSession, store_url: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir, sonar_url, http)
        self.store_url = store_url


class RoundRobin(ScimClient):
    """One Entra client whose requests go to the replicas in turn; each answer names the replica's port."""

    def __init__(self, session: aiohttp.ClientSession, bases: list[str], *, timeout: float) -> None:
        super().__init__(session, bases[0], timeout=timeout)
        self._bases = itertools.cycle(bases)

    async def _call(self, method: str, path: str, body: Any) -> Answer | Failed:
        base = next(self._bases)
        self.base = base  # read by the parent before its first await: no other request can change it
        answer = await super()._call(method, path, body)
        return dataclasses.replace(answer, request=f"{answer.request} @{base.split('/')[2]}")


@dataclasses.dataclass
class Race:
    """The requests sent at once to the two replicas, and every answer they got."""

    answers: list[str] = dataclasses.field(default_factory=list)
    bad: list[str] = dataclasses.field(default_factory=list)  # not 2xx, nor 503 with Retry-After
    names: dict[str, set[str]] = dataclasses.field(default_factory=dict)  # SCIM id -> displayNames allowed
    active_names: set[str] = dataclasses.field(default_factory=set)  # ids whose SonarQube name must follow

    async def send(
        self, client: ScimClient, method: str, path: str, body: Any, *, conflict: bool = False
    ) -> Answer | Failed | None:
        """Send until 2xx (a 503 with Retry-After is sent again, as Entra would), or a 409 when `conflict`
        allows it (a create that lost the race); None if it never was."""
        for _ in range(RACE_TRIES):
            answer = await client.call(method, path, body)
            self.answers.append(f"race: {answer} @{client.base.split('/')[2]}")
            if isinstance(answer, Answer) or (conflict and answer.outcome.startswith("409: ")):
                return answer
            if not answer.outcome.startswith("503 ") or not answer.retry_after:
                self.bad.append(str(answer))
                return None
            await asyncio.sleep(0.05)
        self.bad.append(f"{method} {path}: still 503 after {RACE_TRIES} tries")
        return None


def _member_patch(action: str, user_id: str) -> dict[str, Any]:
    return _patch({"op": action, "path": "members", "value": [{"$ref": None, "value": user_id}]})


def _replace(path: str, value: Any) -> dict[str, Any]:
    return _patch({"op": "Replace", "path": path, "value": value})


@pytest.mark.slow
async def test_two_replicas_on_one_postgres_store_end_in_entras_state(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """Two replicas sharing one PostgreSQL store, sent Entra's cycles round-robin and racing member PATCHes of
    one group and PATCHes of one user across both, end with zero missing/extra memberships, duplicate or
    stray users, wrong `active` or unlinked accounts, and every answer 2xx or 503 with Retry-After."""
    store_url = await postgres_server.new_database("replicas")
    plan = Plan.generate(SIZE, SEED)
    report: list[str] = [f"seed {SEED}, {SIZE} users/groups/memberships"]
    async with aiohttp.ClientSession() as control, aiohttp.ClientSession() as session:
        emulator = Emulator(tmp_path, control)
        replicas = [Replica(tmp_path / f"replica-{n}", emulator.url, control, store_url) for n in (1, 2)]
        try:
            await emulator.start()
            await asyncio.gather(*(replica.start() for replica in replicas))  # both migrate at once
            baseline = await emulator.state()
            bases = [replica.scim_url for replica in replicas]
            client = RoundRobin(session, bases, timeout=PACING.timeout)
            driver = EntraDriver(client, plan, PACING)
            await driver.run()
            assert not driver.never_succeeded, driver.never_succeeded

            plan, race = await _races(driver, [ScimClient(session, b, timeout=PACING.timeout) for b in bases])
            driver.plan = plan
            report += race.answers

            zeros = count_zeros(plan, baseline, await emulator.state())
            checker = RoundRobin(session, bases, timeout=PACING.timeout)
            for _ in replicas:  # every resource read from each replica once
                await store_view(driver, checker, zeros)
            zeros.bad_answers = [*client.ledger.bad_answers, *checker.ledger.bad_answers, *race.bad]
            zeros.store_view += await _names_agree(driver, bases, session, emulator, race)
        except HarnessError as exc:
            pytest.fail(f"harness: {exc}", pytrace=False)
        finally:
            await asyncio.gather(*(replica.stop() for replica in replicas))
            await emulator.stop()
        errors = [f"{r.log.parent.name}: {line}" for r in replicas for line in r.logged_errors()]

    statuses = dict(sorted(client.ledger.statuses.items()))
    report.append(f"driver: {client.ledger.requests} requests, answers {statuses}, {driver.retries} retries")
    sys.stdout.write("\n".join(report) + "\n")
    findings = {name: items for name, items in vars(zeros).items() if items}
    bugs = [str(bug) for bug in (*client.ledger.bugs, *checker.ledger.bugs)]
    unexpected = {status for status in statuses if not (200 <= status < 300 or status == 503)}
    assert not findings, _describe(findings, errors)
    assert not bugs, _describe({"4xx answers": bugs}, errors)
    assert not unexpected, _describe({"statuses other than 2xx and 503": [str(statuses)]}, errors)
    assert not errors, _describe({}, errors)


async def _races(driver: EntraDriver, replicas: list[ScimClient]) -> tuple[Plan, Race]:
    """Send, all at once and alternating between the replicas: 6 member adds and 4 member removes of one
    group, a disable and a `displayName` change of one user, two `displayName` changes of another user, and
    one new user and one new group each POSTed to both replicas. Return the plan with these changes (its
    final state is what Entra now asks for) and the answers."""
    plan = driver.plan
    race = Race()
    group = 0
    final = plan.final_memberships
    active = [user for user in range(len(plan.users)) if plan.final_active(user)]
    disabled, renamed = active[0], active[1]
    others = [user for user in active[2:] if (group, user) not in final]
    adds = {(group, user) for user in others[:6]}
    removes = {pair for pair in sorted(final) if pair[0] == group and pair[1] not in {disabled, renamed}}
    removes = set(sorted(removes)[:4])
    assert len(adds) == 6, "the plan leaves too few non-members to race with"
    assert len(removes) == 4, "the plan leaves too few members to race with"
    group_id = driver.group_ids[group]
    sends: list[tuple[str, str, dict[str, Any]]] = []
    for (_, user), action in [*((pair, "Add") for pair in sorted(adds)), *((p, "Remove") for p in removes)]:
        sends.append(("PATCH", f"/Groups/{group_id}", _member_patch(action, driver.user_ids[user])))
    sends += [
        ("PATCH", f"/Users/{driver.user_ids[disabled]}", _replace("active", "False")),
        ("PATCH", f"/Users/{driver.user_ids[disabled]}", _replace("displayName", "Raced Disabled")),
        ("PATCH", f"/Users/{driver.user_ids[renamed]}", _replace("displayName", "Raced One")),
        ("PATCH", f"/Users/{driver.user_ids[renamed]}", _replace("displayName", "Raced Two")),
    ]
    new_user, new_group = (
        f"u{len(plan.users):04d}.scenario@contoso.example",
        f"Scenario Group {len(plan.groups):02d}",
    )
    group_body = {
        "schemas": [GROUP_SCHEMA, ENTRA_GROUP_SCHEMA],
        "externalId": "g-raced",
        "displayName": new_group,
    }
    creates = [("POST", "/Users", _user_body(new_user)), ("POST", "/Groups", group_body)]
    created = await asyncio.gather(
        *(race.send(replicas[index % 2], *send) for index, send in enumerate(sends)),
        *(race.send(replica, *create, conflict=True) for create in creates for replica in replicas),
    )
    for what, pair in (("user", created[-4:-2]), ("group", created[-2:])):
        winners = [answer for answer in pair if isinstance(answer, Answer) and answer.status == 201]
        if len(winners) != 1 or not all(isinstance(answer, (Answer, Failed)) for answer in pair):
            race.bad.append(
                f"the {what} POSTed to both replicas at once: {[str(a) for a in pair]}, wanted one 201"
            )
        else:
            ids = driver.user_ids if what == "user" else driver.group_ids
            ids[len(plan.users) if what == "user" else len(plan.groups)] = winners[0].body["id"]
    plan = dataclasses.replace(
        plan,
        users=(*plan.users, new_user),
        groups=(*plan.groups, new_group),
        disables=plan.disables | {disabled},
        enables=plan.enables - {disabled},
        late_removals=plan.late_removals | removes,
        late_additions=(plan.late_additions - removes) | adds,
    )
    race.names = {
        driver.user_ids[disabled]: {"Raced Disabled"},  # both changes kept: no lost update
        driver.user_ids[renamed]: {"Raced One", "Raced Two"},  # either order, but the same everywhere
    }
    race.active_names = {driver.user_ids[renamed]}  # a deactivated account is not renamed (SQ12)
    return plan, race


async def _names_agree(
    driver: EntraDriver, bases: list[str], session: aiohttp.ClientSession, emulator: Emulator, race: Race
) -> list[str]:
    """Each raced user answers the same `displayName` on both replicas, one Entra sent (both, when they were
    on different attributes), and SonarQube's name of an active one is that name."""
    problems: list[str] = []
    accounts = {user["login"]: user for user in (await emulator.state())["users"]}
    for scim_id, allowed in race.names.items():
        seen: list[Any] = []
        login: Any = None
        for base in bases:
            answer = await ScimClient(session, base, timeout=PACING.timeout).call("GET", f"/Users/{scim_id}")
            if isinstance(answer, Failed):
                problems.append(f"raced user {scim_id}: {answer}")
                continue
            seen.append(answer.body.get("displayName"))
            login = answer.body.get("userName")
        if len(set(seen)) != 1 or seen[0] not in allowed:
            problems.append(
                f"raced user {scim_id} ({login}): displayName {seen} on the replicas, Entra sent {allowed}"
            )
            continue
        if scim_id in race.active_names:
            account = accounts.get(str(login).casefold()) or accounts.get(str(login))
            name = account.get("name") if account else None
            if name != seen[0]:
                problems.append(
                    f"raced user {scim_id} ({login}): SonarQube's name {name!r}, the store's {seen[0]!r}"
                )
    return problems


def _describe(findings: dict[str, list[str]], errors: list[str], limit: int = 20) -> str:
    lines: list[str] = []
    for name, items in [*findings.items(), ("error events in the replicas' logs", errors)]:
        if items:
            lines.append(f"{name.replace('_', ' ')} ({len(items)}):")
            lines += [f"  {item}" for item in items[:limit]]
            if len(items) > limit:
                lines.append(f"  … {len(items) - limit} more")
    return "\n".join(lines)
