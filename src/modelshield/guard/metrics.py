"""Prometheus metrics of one guard service (its own registry: several apps per process are
fine). Labels take values from a fixed vocabulary (decisions, status codes, check names) and
the reference's feature names; a client id never becomes a label (it would let any caller
grow the metric set without bound)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Request latency buckets, in seconds (fine below 2 ms: that is where the guard lives)."""


class _LogCollector(Collector):
    """The decision log's counters, read from the writer when scraped."""

    def __init__(self, read: Callable[[], dict[str, float]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Any]:
        values = self.read()
        for name in ("written", "spooled", "replayed", "dropped", "backpressure", "quarantined"):
            family = CounterMetricFamily(
                f"modelshield_guard_log_{name}",
                f"Decision records {name} (dropped stays 0 unless the database and the spool "
                "both fail)"
                if name == "dropped"
                else f"Decision records {name}",
                value=values.get(name, 0.0),
            )
            yield family
        yield GaugeMetricFamily(
            "modelshield_guard_log_pending", "Records waiting for the writer", values["pending"]
        )
        yield GaugeMetricFamily(
            "modelshield_guard_log_database_up",
            "1 while the last database write succeeded, 0 while records are spooled",
            values["database_up"],
        )


class Metrics:
    """Counters, histograms and gauges of the service."""

    def __init__(self, features: Sequence[str]) -> None:
        """Create the metrics (``features``: the reference's, the only drift labels)."""
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "modelshield_guard_requests",
            "Requests to /predict by decision and status code",
            ["decision", "status"],
            registry=r,
        )
        self.check_hits = Counter(
            "modelshield_guard_check_hits",
            "Requests on which a screening check fired",
            ["check"],
            registry=r,
        )
        self.check_errors = Counter(
            "modelshield_guard_check_errors",
            "Requests on which a screening check failed to run",
            ["check"],
            registry=r,
        )
        self.latency = Histogram(
            "modelshield_guard_request_seconds",
            "Time from the first byte of a /predict body to the answer",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.screening = Histogram(
            "modelshield_guard_screening_seconds",
            "Time the guard spends on a request outside the model call",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.feedback = Counter(
            "modelshield_guard_feedback", "Labels received on /feedback", registry=r
        )
        self.drift_psi = Gauge(
            "modelshield_guard_drift_psi", "PSI over the drift window", ["feature"], registry=r
        )
        self.drift_ks = Gauge(
            "modelshield_guard_drift_ks",
            "KS statistic over the drift window",
            ["feature"],
            registry=r,
        )
        self.drift_chi2_p = Gauge(
            "modelshield_guard_drift_chi2_p",
            "Chi-squared p-value over the drift window",
            ["feature"],
            registry=r,
        )
        self.drifted = Gauge(
            "modelshield_guard_drifted", "1 when the feature has drifted", ["feature"], registry=r
        )
        self.accuracy = Gauge(
            "modelshield_guard_accuracy",
            "Accuracy on labelled requests (classification), NaN before labels arrive",
            registry=r,
        )
        self.mae = Gauge(
            "modelshield_guard_mae",
            "Mean absolute error on labelled requests (regression), NaN before labels arrive",
            registry=r,
        )
        self.flagged_clients = Gauge(
            "modelshield_guard_extraction_clients",
            "Clients showing model-extraction signals now (a count: never their ids)",
            registry=r,
        )
        self.accuracy.set(float("nan"))
        self.mae.set(float("nan"))
        self.known_features = frozenset(features)
        self._children: dict[tuple[str, int], Any] = {}

    def count(self, decision: str, status: int) -> None:
        """One request (children cached: labels() costs a lock and a dict)."""
        key = (decision, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(decision, str(status))
        child.inc()

    def watch_log(self, read: Callable[[], dict[str, float]]) -> None:
        """Expose the decision log's counters."""
        self.registry.register(_LogCollector(read))
