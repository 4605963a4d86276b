"""Prometheus metrics of one guard service (its own registry: several apps per process are
fine). Labels take values from a fixed vocabulary (decisions, status codes, check names) and
the reference's feature names; a client id never becomes a label (it would let any caller
grow the metric set without bound)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_go_float: Callable[[float], str] = floatToGoString  # untyped in the library

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


class RequestHistogram:
    """A histogram observed on the request path: a bisection and two additions (the client
    library's takes a lock and walks the buckets in Python for each value, several times the
    cost). Observed from the event loop's thread only; read by :class:`_RequestCollector` at
    scrape time."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        """Empty, with the upper bounds of the buckets (``+Inf`` added)."""
        self.bounds = list(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one value (a bucket's bound is inclusive, as Prometheus's ``le``)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        """The histogram as Prometheus reads it (cumulative buckets)."""
        buckets = []
        total = 0
        for bound, count in zip([*self.bounds, float("inf")], self.counts, strict=True):
            total += count
            buckets.append((_go_float(bound), total))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self.sum)


class LabelledCounter:
    """A counter per label value, counted on the request path (a dictionary addition),
    exposed at scrape time. Label values come from a fixed vocabulary."""

    __slots__ = ("counts", "label", "name", "text")

    def __init__(self, name: str, text: str, label: str) -> None:
        """Empty."""
        self.name, self.text, self.label = name, text, label
        self.counts: dict[str, int] = {}

    def inc(self, value: str) -> None:
        """Add one for ``value``."""
        self.counts[value] = self.counts.get(value, 0) + 1

    def family(self) -> CounterMetricFamily:
        """The counter as Prometheus reads it."""
        family = CounterMetricFamily(self.name, self.text, labels=[self.label])
        for value, count in sorted(self.counts.items()):
            family.add_metric([value], count)
        return family


class _RequestCollector(Collector):
    """The request path's counters and histograms at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Any]:
        m = self.m
        requests = CounterMetricFamily(
            "modelshield_guard_requests",
            "Requests to /predict by decision and status code",
            labels=["decision", "status"],
        )
        for (decision, status), count in sorted(m.request_counts.items()):
            requests.add_metric([decision, str(status)], count)
        yield requests
        yield m.check_hits.family()
        yield m.check_errors.family()
        yield m.latency.family(
            "modelshield_guard_request_seconds",
            "Time from the first byte of a /predict body to the answer",
        )
        yield m.screening.family(
            "modelshield_guard_screening_seconds",
            "Time the guard spends on a request outside the model call",
        )


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
        self.request_counts: dict[tuple[str, int], int] = {}
        """Requests by (decision, status code)."""
        self.check_hits = LabelledCounter(
            "modelshield_guard_check_hits", "Requests on which a screening check fired", "check"
        )
        self.check_errors = LabelledCounter(
            "modelshield_guard_check_errors",
            "Requests on which a screening check failed to run",
            "check",
        )
        self.latency = RequestHistogram(LATENCY_BUCKETS)
        self.screening = RequestHistogram(LATENCY_BUCKETS)
        r.register(_RequestCollector(self))
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

    def count(self, decision: str, status: int) -> None:
        """One request."""
        key = (decision, status)
        counts = self.request_counts
        counts[key] = counts.get(key, 0) + 1

    def watch_log(self, read: Callable[[], dict[str, float]]) -> None:
        """Expose the decision log's counters."""
        self.registry.register(_LogCollector(read))
