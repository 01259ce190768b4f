"""Helpers shared by the test suites and the benchmarks (real services, started on demand)."""
