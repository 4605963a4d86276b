"""The governance summary: what ``guard report`` prints and the dashboard draws.

One JSON document (schema: ``modelshield/guard/schema/summary.schema.json``, documented in
``docs/guard.md``) computed from the database alone, for a time range: total requests,
decisions by kind and reason, status codes, latency percentiles, a timeline, the blocked and
flagged requests with their reasons, the top clients, drift per feature (from the summed
window counts against the stored reference), performance on labelled requests, alerts, and
the decision log's chains.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import msgspec
import sqlalchemy as sa

from modelshield.core.guard_settings import GuardSettings
from modelshield.core.timespec import parse_time as parse_time  # re-exported
from modelshield.guard import monitor, store

SCHEMA_VERSION = "1.0"
"""Version of the summary document."""
DECISIONS: tuple[str, ...] = ("allow", "flag", "block", "reject", "error")
"""Decision kinds: served, served and flagged, refused by a check, refused before screening
(bad body, auth, size), failed (model, upstream, back-pressure)."""
TOP_CLIENTS = 10
"""Clients listed."""
RECENT = 50
"""Blocked and flagged requests listed, newest first."""
BUCKETS = 60
"""Timeline buckets at most."""


def iso(us: int | float) -> str:
    """Microseconds since the epoch as ISO 8601 (UTC)."""
    return dt.datetime.fromtimestamp(us / 1e6, tz=dt.UTC).isoformat(timespec="seconds")


def _percentile(values: list[int], q: float) -> float | None:
    if not values:
        return None
    k = (len(values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return (values[lo] + (values[hi] - values[lo]) * (k - lo)) / 1000.0


def summarize(
    engine: sa.Engine,
    since: float,
    until: float,
    settings: GuardSettings | None = None,
) -> dict[str, Any]:
    """The summary of requests in [since, until) (seconds since the epoch)."""
    settings = settings or GuardSettings()
    s_us, u_us = int(since * 1e6), int(until * 1e6)
    d = store.decisions
    in_range = sa.and_(d.c.ts_us >= s_us, d.c.ts_us < u_us)
    decisions = dict.fromkeys(DECISIONS, 0)
    statuses: dict[str, int] = {}
    reasons: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for decision, status, count in conn.execute(
            sa.select(d.c.decision, d.c.status, sa.func.count())
            .where(in_range)
            .group_by(d.c.decision, d.c.status)
        ):
            decisions[decision] = decisions.get(decision, 0) + int(count)
            statuses[str(status)] = statuses.get(str(status), 0) + int(count)
        for decision, text, count in conn.execute(
            sa.select(d.c.decision, d.c.reasons, sa.func.count())
            .where(in_range, d.c.reasons != "[]")
            .group_by(d.c.decision, d.c.reasons)
        ):
            for reason in msgspec.json.decode(text):
                per = reasons.setdefault(str(reason), {})
                per[decision] = per.get(decision, 0) + int(count)
        latencies = sorted(
            int(v) for v in conn.execute(sa.select(d.c.latency_us).where(in_range)).scalars()
        )
        flagged = sa.func.sum(sa.case((d.c.decision == "flag", 1), else_=0))
        blocked = sa.func.sum(sa.case((d.c.decision == "block", 1), else_=0))
        total_col = sa.func.count().label("n")
        clients = [
            {"client": c, "requests": int(n), "flagged": int(f or 0), "blocked": int(b or 0)}
            for c, n, f, b in conn.execute(
                sa.select(d.c.client, total_col, flagged, blocked)
                .where(in_range)
                .group_by(d.c.client)
                .order_by(sa.desc("n"), d.c.client)
                .limit(TOP_CLIENTS)
            )
        ]
        first_last = conn.execute(
            sa.select(sa.func.min(d.c.ts_us), sa.func.max(d.c.ts_us)).where(in_range)
        ).one()
        timeline: list[dict[str, Any]] = []
        bucket_s = 1
        if first_last[0] is not None:
            start = int(first_last[0])
            span = max(1, (int(first_last[1]) - start) // 1_000_000 + 1)
            bucket_s = max(1, -(-span // BUCKETS))
            for nice in (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 21600, 86400):
                if nice >= bucket_s:
                    bucket_s = nice
                    break
            bucket_us = bucket_s * 1_000_000
            slots: dict[int, dict[str, Any]] = {}
            bucket = d.c.ts_us // bucket_us
            for b, decision, count in conn.execute(
                sa.select(bucket.label("b"), d.c.decision, sa.func.count())
                .where(in_range)
                .group_by("b", d.c.decision)
            ):
                slot = slots.setdefault(
                    int(b), {"start": iso(int(b) * bucket_us), **dict.fromkeys(DECISIONS, 0)}
                )
                slot[decision] = slot.get(decision, 0) + int(count)
            timeline = [slots[k] for k in sorted(slots)]
        recent = [
            {
                "time": iso(ts),
                "request_id": rid,
                "client": client,
                "decision": decision,
                "status": int(status),
                "reasons": msgspec.json.decode(text),
            }
            for ts, rid, client, decision, status, text in conn.execute(
                sa.select(
                    d.c.ts_us, d.c.request_id, d.c.client, d.c.decision, d.c.status, d.c.reasons
                )
                .where(in_range, d.c.decision.in_(("flag", "block")))
                .order_by(d.c.ts_us.desc())
                .limit(RECENT)
            )
        ]
        a = store.alerts
        alerts = [
            {"time": iso(ts), "kind": kind, "subject": subject, "message": message}
            for ts, kind, subject, message in conn.execute(
                sa.select(a.c.ts_us, a.c.kind, a.c.subject, a.c.message)
                .where(a.c.ts_us >= s_us, a.c.ts_us < u_us)
                .order_by(a.c.ts_us.desc())
                .limit(RECENT)
            )
        ]
        chains = int(
            conn.execute(sa.select(sa.func.count()).select_from(store.chains)).scalar() or 0
        )
    spec = monitor.latest_reference(engine)
    drift = (
        monitor.drift_rows(spec, monitor.sum_counts(engine, s_us, u_us), settings)
        if spec is not None
        else []
    )
    total = sum(decisions.values())
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": iso(time.time() * 1e6),
        "since": iso(s_us),
        "until": iso(u_us),
        "total_requests": total,
        "decisions": decisions,
        "statuses": dict(sorted(statuses.items())),
        "reasons": [
            {"reason": r, "count": sum(per.values()), "decisions": per}
            for r, per in sorted(reasons.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        ],
        "latency_ms": {
            "count": len(latencies),
            "p50": _percentile(latencies, 0.5),
            "p90": _percentile(latencies, 0.9),
            "p99": _percentile(latencies, 0.99),
            "max": latencies[-1] / 1000.0 if latencies else None,
        },
        "timeline_bucket_seconds": bucket_s,
        "timeline": timeline,
        "top_clients": clients,
        "recent": recent,
        "drift": drift,
        "reference": None
        if spec is None
        else {"source": spec.get("source"), "rows": spec.get("rows")},
        "performance": monitor.performance(engine, s_us, u_us),
        "alerts": alerts,
        "log": {"chains": chains},
    }
