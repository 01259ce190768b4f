"""Helpers shared by the test suites and the demo (real services, started on demand)."""
