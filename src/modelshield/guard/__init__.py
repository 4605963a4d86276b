"""Pillar *guard*: a firewall and monitor in front of a deployed model.

``modelshield guard serve`` hosts a model (scanned, then loaded through the restricted
loaders) or proxies to an existing model server, screens every ``POST /predict`` (schema,
size, out-of-distribution, adversarial instability, rate, model extraction), logs every
decision in a hash-chained, insert-only table (SQLite or PostgreSQL), watches drift and
performance, and serves Prometheus metrics and a dashboard. The same engine is an ASGI
middleware (:class:`~modelshield.guard.middleware.GuardMiddleware`) for a Starlette or
FastAPI application::

    from modelshield.guard import build_guard
    from modelshield.guard.middleware import GuardMiddleware

    app.add_middleware(GuardMiddleware, guard=build_guard("reference.csv", db="guard.db"))

Needs the ``guard`` extra (``pip install 'modelshield[guard]'``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelshield.core.policy import Policy
    from modelshield.guard.app import GuardApp
    from modelshield.guard.engine import Guard

__all__ = ["build_app", "build_guard"]

DEFAULT_DB = "modelshield-guard.db"
"""The decision log when no ``--db`` is given (SQLite, in the current directory)."""


def _require_extra() -> None:
    import importlib.util

    from modelshield.core.errors import MissingExtraError

    for module, package in (
        ("starlette", "starlette"),
        ("sqlalchemy", "sqlalchemy"),
        ("prometheus_client", "prometheus-client"),
        ("numpy", "numpy"),
        ("pandas", "pandas"),
    ):
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError("modelshield guard", "guard", package)


def build_guard(
    reference: str,
    policy: Policy | None = None,
    *,
    model: str | None = None,
    upstream: str | None = None,
    predict: Any = None,
    db: str | None = DEFAULT_DB,
    target: str | None = None,
    drop: Sequence[str] = (),
    spool: str | None = None,
    replica: str | None = None,
) -> Guard:
    """The engine: the reference fitted, the model opened (``model``: a file, scanned then
    restricted-loaded, or ``package.module:function``; ``upstream``: a KServe v1 URL;
    ``predict``: a function of a list of dicts, for the middleware), calibrated, with its
    decision log (``db``: a path or a SQLAlchemy URL; None: no log)."""
    _require_extra()
    from modelshield.core.policy import Policy
    from modelshield.guard.engine import Guard
    from modelshield.guard.log import DecisionLog
    from modelshield.guard.logproc import ProcessLog
    from modelshield.guard.predictors import FunctionPredictor, HostedPredictor, UpstreamPredictor
    from modelshield.guard.reference import fit_reference

    policy = policy or Policy()
    settings = policy.guard
    ref, frame = fit_reference(reference, settings.schema, target=target, drop=drop)
    predictor: Any = None
    if model is not None:
        predictor = HostedPredictor.open(model, policy, ref.names, ref.all_numeric)
    elif upstream is not None:
        predictor = UpstreamPredictor(upstream, ref.names, settings.upstream_timeout_s)
    elif predict is not None:
        predictor = FunctionPredictor(predict, ref.names)
    name = replica or f"{socket.gethostname()}:{os.getpid()}"
    log: Any = None
    if db is not None and settings.log_writer == "process":
        log = ProcessLog(db, settings, name, spool)
    elif db is not None:
        log = DecisionLog(db, settings, name, spool)
    guard = Guard(ref, settings, predictor, log)
    if predictor is not None:
        guard.calibrate(frame)
    return guard


def build_app(guard: Guard, tokens: str | None = None) -> GuardApp:
    """The standalone ASGI service around ``guard`` (``tokens``: a TOML tokens file)."""
    from modelshield.guard.app import create_app
    from modelshield.guard.engine import Tokens

    return create_app(guard, Tokens.from_file(tokens) if tokens else None)
