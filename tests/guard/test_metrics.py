"""The request path's own counters and histograms expose what the client library's would."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from modelshield.guard.metrics import LATENCY_BUCKETS, Metrics


def _samples(text: bytes, prefix: str) -> list[str]:
    return sorted(
        line
        for line in text.decode().splitlines()
        if line.startswith(prefix) and "_created" not in line
    )


def test_request_metrics_expose_what_the_client_library_would() -> None:
    rng = random.Random(7)
    values = [rng.choice([0.0, *LATENCY_BUCKETS, 20.0]) for _ in range(200)]
    values += [rng.uniform(0, 0.02) for _ in range(500)]
    ours = Metrics(["x"])
    registry = CollectorRegistry()
    theirs = Histogram(
        "modelshield_guard_request_seconds", "t", buckets=LATENCY_BUCKETS, registry=registry
    )
    hits = Counter("modelshield_guard_check_hits", "t", ["check"], registry=registry)
    requests = Counter("modelshield_guard_requests", "t", ["decision", "status"], registry=registry)
    for i, v in enumerate(values):
        ours.latency.observe(v)
        theirs.observe(v)
        check = ("ood", "schema", "adversarial")[i % 3]
        ours.check_hits.inc(check)
        hits.labels(check).inc()
        decision, status = (("allow", 200), ("block", 403), ("reject", 422))[i % 3]
        ours.count(decision, status)
        requests.labels(decision, str(status)).inc()
    mine, reference = generate_latest(ours.registry), generate_latest(registry)
    for prefix in (
        "modelshield_guard_request_seconds",
        "modelshield_guard_check_hits",
        "modelshield_guard_requests",
    ):
        assert _samples(mine, prefix) == _samples(reference, prefix), prefix
