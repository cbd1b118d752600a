"""Benchmarks of scim-bridge, run with `make bench`; results are written to docs/performance.md."""
