"""``modelshield guard``: serve a model behind a firewall and monitor, report, verify the log."""

from __future__ import annotations

import argparse
import os
import sys

DEFAULT_DB = "modelshield-guard.db"
"""The decision log when no ``--db`` is given."""
TOKENS_ENV = "MODELSHIELD_GUARD_TOKENS"
"""Environment variable naming the tokens file when ``--tokens`` is not given."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``guard`` parser and its ``serve``, ``report`` and ``verify`` commands."""
    parser = subparsers.add_parser(
        "guard",
        help="serve a model behind a firewall and monitor; report on and verify its log",
        description="A firewall and monitor in front of a deployed model: screen every "
        "request, log every decision (hash-chained), watch drift, serve metrics and a "
        "dashboard. Needs the guard extra: pip install 'modelshield[guard]'.",
    )
    commands = parser.add_subparsers(dest="guard_command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="serve POST /predict (KServe v1 JSON) behind the guard",
        description="Host a model (scanned, then loaded through the restricted loaders) or "
        "proxy to a model server, and screen, log and monitor every request.",
    )
    source = serve.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--model",
        metavar="MODEL",
        help="a model file (scanned first; refused unless the scan passes the policy), or "
        "package.module:function",
    )
    source.add_argument(
        "--upstream", metavar="URL", help="an existing model server's KServe v1 predict URL"
    )
    serve.add_argument(
        "--reference",
        required=True,
        metavar="DATA",
        help="reference data (CSV or Parquet): the schema, OOD and drift baseline",
    )
    serve.add_argument("--target", metavar="COLUMN", help="a column of the reference to leave out")
    serve.add_argument(
        "--ignore-column",
        action="append",
        default=[],
        metavar="COLUMN",
        help="another column the model does not read (repeatable)",
    )
    serve.add_argument("--policy", metavar="FILE", help="policy file ([guard] table)")
    serve.add_argument(
        "--db",
        default=DEFAULT_DB,
        metavar="URL",
        help=f"decision log: a SQLite path or a SQLAlchemy URL (default: {DEFAULT_DB})",
    )
    serve.add_argument(
        "--tokens",
        metavar="FILE",
        help=f"tokens file (TOML: [predict], [feedback], [read], [admin]); default: ${TOKENS_ENV}",
    )
    serve.add_argument("--spool", metavar="FILE", help="spool file (default: the policy's)")
    serve.add_argument("--replica", metavar="NAME", help="this replica's name in the log")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")

    report = commands.add_parser(
        "report",
        help="the governance summary of a decision log",
        description="Total requests, decisions by kind and reason, latency percentiles, drift "
        "per feature, top clients, performance and alerts, for a time range.",
    )
    report.add_argument("--db", required=True, metavar="URL", help="the decision log")
    report.add_argument("--since", metavar="WHEN", help="ISO time or a duration ago (24h, 7d)")
    report.add_argument("--until", metavar="WHEN", help="ISO time or a duration ago")
    report.add_argument(
        "-f", "--format", choices=["text", "json", "html"], default="text", help="(default: text)"
    )
    report.add_argument("-o", "--output", metavar="FILE", help="write to FILE")
    report.add_argument("--policy", metavar="FILE", help="policy file (drift thresholds)")

    verify = commands.add_parser(
        "verify",
        help="check the decision log's hash chains",
        description="Recompute every chain: an edited, deleted or moved record is reported. "
        "Exit codes: 0 intact, 1 broken, 2 error.",
    )
    verify.add_argument("--db", required=True, metavar="URL", help="the decision log")
    verify.add_argument("-f", "--format", choices=["text", "json"], default="text")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the command."""
    if args.guard_command == "serve":
        return _serve(args)
    if args.guard_command == "report":
        return _report(args)
    return _verify(args)


def _serve(args: argparse.Namespace) -> int:
    import logging

    from modelshield.cli._common import resolve_policy
    from modelshield.core.errors import MissingExtraError
    from modelshield.guard import build_app, build_guard

    try:
        import uvicorn
    except ImportError as e:
        raise MissingExtraError("modelshield guard serve", "guard", "uvicorn") from e
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    policy, _source = resolve_policy(args.policy)
    guard = build_guard(
        args.reference,
        policy,
        model=args.model,
        upstream=args.upstream,
        db=args.db,
        target=args.target,
        drop=args.ignore_column,
        spool=args.spool,
        replica=args.replica,
    )
    app = build_app(guard, args.tokens or os.environ.get(TOKENS_ENV))
    provenance = guard.predictor.provenance
    print(
        f"modelshield guard: model {provenance.kind} via {provenance.loader}"
        + (" (scanned, passed)" if provenance.scanned else ""),
        file=sys.stderr,
    )
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info")
    return 0


def _engine(url: str):  # type: ignore[no-untyped-def]
    from modelshield.core.errors import MissingExtraError, ServiceError

    try:
        import sqlalchemy as sa

        from modelshield.guard import store
    except ImportError as e:
        raise MissingExtraError("modelshield guard", "guard", "sqlalchemy") from e
    from pathlib import Path

    if "://" not in url and not Path(url).exists():
        raise ServiceError(f"no decision log at {url}")
    engine = store.connect(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.select(store.guard_meta.c.value).limit(1)).all()
    except sa.exc.SQLAlchemyError as e:
        engine.dispose()
        raise ServiceError(
            f"{store.display_url(url)} is not a readable decision log: {type(e).__name__}"
        ) from e
    return engine


def _report(args: argparse.Namespace) -> int:
    import time

    import msgspec

    from modelshield.cli._common import resolve_policy, write_output
    from modelshield.guard.summary import parse_time, summarize
    from modelshield.report.guard_summary import render_html, render_text

    policy, _source = resolve_policy(args.policy)
    engine = _engine(args.db)
    now = time.time()
    since = parse_time(args.since, now, default=0.0)
    until = parse_time(args.until, now, default=now + 1)
    try:
        data = summarize(engine, since, until, policy.guard)
    finally:
        engine.dispose()
    if args.format == "json":
        text = msgspec.json.format(msgspec.json.encode(data)).decode() + "\n"
    elif args.format == "html":
        text = render_html(data)
    else:
        text = render_text(data)
    write_output(text, args.output, sys.stdout)
    return 0


def _verify(args: argparse.Namespace) -> int:
    import msgspec

    from modelshield.guard import store

    engine = _engine(args.db)
    try:
        result = store.verify(engine)
    finally:
        engine.dispose()
    if args.format == "json":
        doc = {
            "intact": not result.problems,
            "records": result.records,
            "chains": result.chains,
            "heads": {k: {"seq": s, "hash": h} for k, (s, h) in result.heads.items()},
            "problems": [msgspec.to_builtins(p) for p in result.problems],
        }
        print(msgspec.json.format(msgspec.json.encode(doc)).decode())
    else:
        for p in result.problems:
            print(f"BROKEN chain {p.chain} record {p.seq}: {p.kind}: {p.message}")
        for chain, (seq, head) in sorted(result.heads.items()):
            print(f"chain {chain}: {seq} record(s), head {head}")
        verdict = "INTACT" if not result.problems else f"BROKEN ({len(result.problems)} problem(s))"
        print(f"{result.records} record(s) in {result.chains} chain(s): {verdict}")
    return 1 if result.problems else 0
