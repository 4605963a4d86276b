"""Monitoring: drift over sliding windows, performance once labels arrive, alerts.

Drift is computed from the histogram counts in ``guard_window_counts``: every replica inserts
the counts of its windows, and a sliding window's histogram is their sum over its windows and
over the replicas. So two stateless replicas behind a load balancer, sharing one PostgreSQL,
see the same drift, and ``guard report`` computes it for any time range without the
reference file (the reference's bins and counts are stored in ``guard_references``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
import sqlalchemy as sa

from modelshield.core.guard_settings import GuardSettings
from modelshield.guard import stats, store

logger = logging.getLogger("modelshield.guard")


def sum_counts(engine: sa.Engine, since_us: int, until_us: int) -> dict[str, dict[int, int]]:
    """Counts per feature and bin over the windows that start in [since, until), all
    replicas together."""
    wc = store.window_counts
    query = (
        sa.select(wc.c.feature, wc.c.bin, sa.func.sum(wc.c.count))
        .where(wc.c.window_us >= since_us, wc.c.window_us < until_us)
        .group_by(wc.c.feature, wc.c.bin)
    )
    out: dict[str, dict[int, int]] = {}
    with engine.connect() as conn:
        for feature, b, count in conn.execute(query):
            out.setdefault(feature, {})[int(b)] = int(count)
    return out


def store_reference(engine: sa.Engine, spec: dict[str, Any]) -> str:
    """Record the reference's bins and counts (once per distinct reference); its digest."""
    body = msgspec.json.encode(spec).decode()
    digest = hashlib.sha256(body.encode()).hexdigest()
    refs = store.references
    with engine.begin() as conn:
        last = conn.execute(sa.select(refs.c.digest).order_by(refs.c.id.desc()).limit(1)).scalar()
        if last != digest:
            conn.execute(
                refs.insert().values(ts_us=time.time_ns() // 1000, digest=digest, body=body)
            )
    return digest


def latest_reference(engine: sa.Engine) -> dict[str, Any] | None:
    """The reference most recently stored, or None."""
    refs = store.references
    with engine.connect() as conn:
        body = conn.execute(sa.select(refs.c.body).order_by(refs.c.id.desc()).limit(1)).scalar()
    if body is None:
        return None
    spec: dict[str, Any] = msgspec.json.decode(body)
    return spec


def drift_rows(
    spec: dict[str, Any], counts: dict[str, dict[int, int]], settings: GuardSettings
) -> list[dict[str, Any]]:
    """Drift of every feature (and the prediction) against the reference."""
    out: list[dict[str, Any]] = []
    for feature in [*spec["features"], *([spec["prediction"]] if spec.get("prediction") else [])]:
        name = feature["name"]
        ref = list(feature["counts"])
        got = counts.get(name, {})
        cur = [got.get(b, 0) for b in range(len(ref))]
        total = sum(cur)
        row: dict[str, Any] = {
            "feature": name,
            "kind": feature["kind"],
            "count": total,
            "psi": None,
            "ks": None,
            "ks_p": None,
            "chi2": None,
            "chi2_p": None,
            "drifted": False,
        }
        if total:
            row["psi"] = round(stats.psi(ref, cur), 6)
            if feature["kind"] in ("numeric", "integer"):
                d, p = stats.ks(ref[:-1], cur[:-1])
                row["ks"], row["ks_p"] = round(d, 6), p
            else:
                c, _dof, p = stats.chi2(ref, cur)
                row["chi2"], row["chi2_p"] = round(c, 6), p
        if total >= settings.drift_min_count:
            psi = row["psi"] or 0.0
            row["drifted"] = bool(
                psi > settings.psi_threshold
                or (row["ks"] is not None and row["ks"] > settings.ks_threshold)
                or (
                    row["chi2_p"] is not None
                    and row["chi2_p"] < settings.chi2_alpha
                    and psi > settings.psi_threshold / 2
                )
            )
        out.append(row)
    return out


def performance(engine: sa.Engine, since_us: int, until_us: int) -> dict[str, Any]:
    """Accuracy (labels) or mean absolute error (values) of the labelled predictions of
    requests in [since, until)."""
    d, f = store.decisions, store.feedback
    query = (
        sa.select(d.c.prediction, f.c.idx, f.c.label)
        .join(f, f.c.request_id == d.c.request_id)
        .where(d.c.ts_us >= since_us, d.c.ts_us < until_us, d.c.status == 200)
    )
    right = labelled = 0
    abs_error = 0.0
    numeric = True
    with engine.connect() as conn:
        for prediction, idx, label in conn.execute(query):
            preds = msgspec.json.decode(prediction)
            if not isinstance(preds, list) or not 0 <= idx < len(preds):
                continue
            p, y = preds[idx], msgspec.json.decode(label)
            labelled += 1
            right += p == y or str(p) == str(y)
            if (
                isinstance(p, int | float)
                and isinstance(y, int | float)
                and not isinstance(p, bool)
                and not isinstance(y, bool)
            ):
                abs_error += abs(float(p) - float(y))
            else:
                numeric = False
    result: dict[str, Any] = {"labelled": labelled, "accuracy": None, "mae": None}
    if labelled:
        result["accuracy"] = right / labelled
        if numeric:
            result["mae"] = abs_error / labelled
    return result


class Alerter:
    """Alerts to the log, the ``guard_alerts`` table and an optional webhook (POSTed from a
    background thread, never on the request path), at most once per subject per cooldown."""

    def __init__(
        self,
        settings: GuardSettings,
        add_row: Callable[[str, dict[str, Any]], None] | None,
    ) -> None:
        """``add_row`` queues a row for the decision log's writer."""
        self.settings = settings
        self.add_row = add_row
        self._last: dict[tuple[str, str], float] = {}
        self.sent = 0
        """Webhook deliveries that succeeded."""
        self.failed = 0
        """Webhook deliveries that failed (logged)."""

    def raise_alert(self, kind: str, subject: str, message: str, *, client: bool = False) -> bool:
        """Raise an alert unless one about the same subject was raised within the cooldown."""
        key = (kind, subject)
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.settings.alert_cooldown_seconds:
            return False
        self._last[key] = now
        logger.warning("alert %s %s: %s", kind, subject, message)
        if self.add_row is not None:
            self.add_row(
                "guard_alerts",
                {
                    "ts_us": time.time_ns() // 1000,
                    "kind": kind[:32],
                    "subject": subject[:200],
                    "message": message,
                },
            )
        if self.settings.webhook:
            payload = {"kind": kind, "subject": subject, "message": message, "time": time.time()}
            threading.Thread(
                target=self._post, args=(payload,), name="guard-webhook", daemon=True
            ).start()
        return True

    def _post(self, payload: dict[str, Any]) -> None:
        import urllib.request

        url = self.settings.webhook
        assert url is not None
        request = urllib.request.Request(
            url,
            data=msgspec.json.encode(payload),
            headers={"content-type": "application/json", "user-agent": "modelshield-guard"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read(1024)
            self.sent += 1
        except OSError as e:
            self.failed += 1
            logger.warning("alert webhook %s failed: %s", url, e)
