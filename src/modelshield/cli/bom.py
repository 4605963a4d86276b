"""``modelshield bom``: write a CycloneDX 1.6 ML bill of materials for a model."""

from __future__ import annotations

import argparse
import sys

from modelshield.cli._common import resolve_policy, write_output
from modelshield.cli._sources import (
    add_ignore_option,
    add_input_options,
    add_source_options,
    apply_input_options,
    requested_source,
    split_ignores,
)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bom`` parser."""
    parser = subparsers.add_parser(
        "bom",
        help="write a CycloneDX ML bill of materials for a model",
        description="Scan and hash a model (file or directory) and write a CycloneDX 1.6 JSON "
        "BOM: the model as a machine-learning-model component with SHA-256 hashes, its "
        "detected format, framework and recorded versions, and the scan findings; the "
        "software it needs as library components with versions and pkg:pypi purls, found "
        "as `modelshield audit` finds them (requirements files, pyproject.toml, lock files, "
        "conda and MLflow files in the model directory, and what the model files imply), "
        "each with where it was found. Known vulnerabilities of those versions are added "
        "only when a vulnerability source is named (--db, --offline, --osv-api or "
        "--osv-url); unlike `modelshield audit`, the default is to check none and use no "
        "network, and the BOM then says that vulnerabilities were not checked.",
        epilog="Exit codes: 0 written, 2 part of the model or a dependency file could not be "
        "read or analysed and the policy does not accept it (the BOM is still written and "
        "records why), or the vulnerability source failed (no BOM is written).",
    )
    parser.add_argument("path", metavar="PATH", help="model file or directory")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the BOM to FILE instead of stdout"
    )
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="policy file: limits, callables, ignored rules and advisories (default: "
        "./modelshield.toml, else [tool.modelshield] in ./pyproject.toml, else built-in "
        "defaults)",
    )
    add_ignore_option(parser, rules="SCAN-..., AUDIT-...")
    add_source_options(parser, api_by_default=False)
    add_input_options(parser)


def run(args: argparse.Namespace) -> int:
    """Build the BOM, write it, and return 2 when part of the model could not be analysed."""
    from datetime import date

    from modelshield.bom.cyclonedx import bom_json, create_bom
    from modelshield.core.rules import load_all_rules

    policy, _ = resolve_policy(args.policy)
    rule_ids = frozenset(r.id for r in load_all_rules())
    policy, advisory_ids = split_ignores(args.ignore, policy, rule_ids, today=date.today())
    policy = apply_input_options(args, policy)
    source = requested_source(args, policy)
    outcome = create_bom(args.path, policy=policy, source=source, ignore=advisory_ids)
    write_output(bom_json(outcome.bom), args.output, sys.stdout)
    errors = [*outcome.scan.errors, *outcome.errors]
    for e in errors:
        print(f"modelshield: error: {e.location.display()}: {e.message}", file=sys.stderr)
    # Parts not analysed (a limit, an unread member) that the policy does not accept: the BOM
    # may be missing what they hold, so the run fails closed, as `scan` and `audit` do.
    gaps = [g for r in outcome.scan.results for g in r.unaccepted_gaps]
    gaps += outcome.dependencies.gaps
    for g in gaps:
        print(f"modelshield: not analysed: {g.location.display()}: {g.message}", file=sys.stderr)
    return 2 if errors or gaps else 0
