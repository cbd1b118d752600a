"""The long scenarios: `python -m tests.scenarios` (from the repository's root, in its virtual environment).

    python -m tests.scenarios                                   # every scenario at 300/30/1500
    python -m tests.scenarios --users 300 --groups 30 --memberships 1500 --outage 10 --kills 8
    python -m tests.scenarios --scenario kills --seed 7         # one scenario, another seed
    python -m tests.scenarios --short                           # the sizes and knobs of `make test`
    python -m tests.scenarios --fuzz 3200    # also tests/web/test_fuzz.py, 3200 examples a test
    python -m tests.scenarios --no-scenarios --fuzz 3200        # the long fuzzing alone

Prints what is not zero for each scenario, then one results table (Markdown, as in docs/reliability.md).
Exits 1 when a scenario or the fuzzing found something, 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Final

from tests.scenarios.harness import (
    LONG,
    LONG_KNOBS,
    SCENARIOS,
    SEEDS,
    SHORT,
    SHORT_KNOBS,
    Knobs,
    ScenarioResult,
    Size,
    run_scenario,
)

ROOT: Final = Path(__file__).resolve().parents[2]
FUZZ_BAD_REQUESTS: Final = 10_000  # the long fuzzing must have this many requests refused with a 4xx


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.scenarios", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=None, help=f"users (default {LONG.users})")
    parser.add_argument("--groups", type=int, default=None, help=f"groups (default {LONG.groups})")
    parser.add_argument(
        "--memberships", type=int, default=None, help=f"memberships (default {LONG.memberships})"
    )
    parser.add_argument(
        "--scenario", action="append", choices=SCENARIOS, help="run only this one (repeatable; default all)"
    )
    parser.add_argument("--seed", type=int, default=None, help=f"seed for every scenario (default {SEEDS})")
    parser.add_argument("--outage", type=float, default=None, help="seconds SonarQube is down (default 10)")
    parser.add_argument("--lock", type=float, default=None, help="seconds the store is locked (default 10)")
    parser.add_argument("--kills", type=int, default=None, help="SIGKILLs in the kills scenario (default 8)")
    parser.add_argument("--fault-rate", type=float, default=None, help="share of SonarQube calls faulted")
    parser.add_argument("--wait-cap", type=float, default=None, help="longest pause between two cycles, s")
    parser.add_argument("--short", action="store_true", help="the sizes and knobs of `make test`")
    parser.add_argument("--no-scenarios", action="store_true", help="run only the fuzzing (with --fuzz)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs and stores here")
    parser.add_argument("--json", type=Path, default=None, help="write every result row to this file")
    parser.add_argument(
        "--fuzz", type=int, default=0, help="also run tests/web/test_fuzz.py with this many examples a test"
    )
    return parser.parse_args(argv)


def _knobs(args: argparse.Namespace) -> Knobs:
    knobs = SHORT_KNOBS if args.short else LONG_KNOBS
    changes = {
        name: value
        for name, value in (
            ("outage", args.outage),
            ("lock", args.lock),
            ("kills", args.kills),
            ("fault_rate", args.fault_rate),
        )
        if value is not None
    }
    if args.wait_cap is not None:
        changes["pacing"] = replace(knobs.pacing, wait_cap=args.wait_cap)
    return replace(knobs, **changes)


def _table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return ""
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row[column] for column in header) + " |" for row in rows]
    return "\n".join(lines)


async def _scenarios(args: argparse.Namespace, workdir: Path) -> list[ScenarioResult]:
    default = SHORT if args.short else LONG
    size = Size(
        args.users or default.users, args.groups or default.groups, args.memberships or default.memberships
    )
    knobs = _knobs(args)
    results = []
    for name in args.scenario or SCENARIOS:
        sys.stdout.write(f"running {name} (seed {SEEDS[name] if args.seed is None else args.seed}) …\n")
        sys.stdout.flush()
        result = await run_scenario(name, size, workdir / name, seed=args.seed, knobs=knobs)
        sys.stdout.write(result.describe() + f"\n  logs: {workdir / name}\n\n")
        sys.stdout.flush()
        results.append(result)
    return results


def _fuzz(examples: int, workdir: Path) -> tuple[bool, list[dict[str, str]]]:
    """tests/web/test_fuzz.py in its long mode; one row per test from the report its tests write."""
    report = workdir / "fuzz.jsonl"
    report.unlink(missing_ok=True)
    environment = {
        **os.environ,
        "SCIM_BRIDGE_FUZZ_EXAMPLES": str(examples),
        "SCIM_BRIDGE_FUZZ_REPORT": str(report),
    }
    command = [sys.executable, "-m", "pytest", "tests/web/test_fuzz.py", "-q", "-p", "no:cacheprovider"]
    sys.stdout.write(f"running {' '.join(command[2:])} with SCIM_BRIDGE_FUZZ_EXAMPLES={examples} …\n")
    sys.stdout.flush()
    passed = subprocess.run(command, cwd=ROOT, env=environment, check=False).returncode == 0  # noqa: S603
    rows = []
    if report.exists():
        for line in report.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            rows.append({key: str(value) for key, value in entry.items()})
    refused = sum(int(row["4xx"]) for row in rows)
    rows.append(
        {
            "test": "total",
            "requests": str(sum(int(row["requests"]) for row in rows)),
            "4xx": str(refused),
            "changed after a 4xx": str(sum(int(row["changed after a 4xx"]) for row in rows)),
            "5xx": str(sum(int(row["5xx"]) for row in rows)),
            "seconds": str(round(sum(float(row["seconds"]) for row in rows), 1)),
        }
    )
    if refused < FUZZ_BAD_REQUESTS:
        sys.stdout.write(f"only {refused} refused requests, fewer than {FUZZ_BAD_REQUESTS}: raise --fuzz\n")
        passed = False
    return passed, rows


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    with tempfile.TemporaryDirectory(prefix="scim-bridge-scenarios-") as temporary:
        workdir = args.workdir or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        results = [] if args.no_scenarios else asyncio.run(_scenarios(args, workdir))
        rows = [result.row() for result in results]
        ok = all(result.ok for result in results)
        fuzz_rows: list[dict[str, str]] = []
        if args.fuzz:
            fuzz_ok, fuzz_rows = _fuzz(args.fuzz, workdir)
            ok = ok and fuzz_ok
        sys.stdout.write("\n" + _table(rows) + "\n")
        if fuzz_rows:
            sys.stdout.write("\n" + _table(fuzz_rows) + "\n")
        if args.json:
            args.json.write_text(
                json.dumps({"scenarios": rows, "fuzz": fuzz_rows}, indent=2), encoding="utf-8"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
