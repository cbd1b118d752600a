"""Reliability scenarios against real processes: the SonarQube emulator and `scim-bridge serve` as
subprocesses, an Entra-style driver in the test process, and the check that the end state is exactly what
Entra asked for. `harness.py` holds the pieces, `test_scenarios.py` the short versions run by `make test`, and
`python -m tests.scenarios` the long versions with a results table (docs/reliability.md)."""
