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
        self.up = Gauge("kalepool_backend_up", "1 while the backend serves", registry=self.registry)
        self.up.set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
