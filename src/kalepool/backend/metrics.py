"""Prometheus metrics of one app instance (its own registry, so tests can build many apps).

Served at ``/metrics``. With several backend processes, scrape each one (they do not share
counters).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kalepool_http_requests_total",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "kalepool_http_request_seconds",
            "HTTP request latency, by route template",
            ["method", "route"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "kalepool_rate_limited_total",
            "Requests refused with 429, by credential kind",
            ["scope"],
            registry=self.registry,
        )
        self.farmers_registered = Counter(
            "kalepool_farmers_registered_total", "Farmers registered", registry=self.registry
        )
        self.chain_errors = Counter(
            "kalepool_chain_errors_total",
            "Chain calls that failed, by code",
            ["code"],
            registry=self.registry,
        )
        self.plants = Counter(
            "kalepool_plants_total",
            "Farmer plants, by result (planted, reconciled, failed; refused: a stale or future block)",
            ["result"],
            registry=self.registry,
        )
        self.works = Counter(
            "kalepool_works_total", "Reported works, by status", ["status"], registry=self.registry
        )
        self.harvests = Counter(
            "kalepool_harvests_total",
            "Harvests, by result (harvested, reconciled, failed, lost, unworked)",
            ["result"],
            registry=self.registry,
        )
        self.deposits = Counter(
            "kalepool_deposits_total", "Deposits found by the reconciler", registry=self.registry
        )
        self.reconcile_mismatches = Gauge(
            "kalepool_reconcile_mismatches",
            "Custodial accounts holding less KALE than the journal says (last full run)",
            registry=self.registry,
        )
        self.reconcile_difference = Gauge(
            "kalepool_reconcile_difference_stroops",
            "Sum of the absolute differences found by the last full reconciler run",
            registry=self.registry,
        )
        self.worker_runs = Counter(
            "kalepool_worker_runs_total",
            "Background worker runs, by worker and outcome",
            ["worker", "outcome"],
            registry=self.registry,
        )
        self.up = Gauge("kalepool_backend_up", "1 while the backend serves", registry=self.registry)
        self.up.set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
