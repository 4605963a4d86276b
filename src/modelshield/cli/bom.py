"""``modelshield bom``: write a CycloneDX 1.6 ML bill of materials for a model."""

from __future__ import annotations

import argparse
import sys

from modelshield.cli._common import resolve_policy, write_output


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bom`` parser."""
    parser = subparsers.add_parser(
        "bom",
        help="write a CycloneDX ML bill of materials for a model",
        description="Scan and hash a model (file or directory) and write a CycloneDX 1.6 JSON "
        "BOM: the model as a machine-learning-model component with SHA-256 hashes, its "
        "detected format and framework, the packages it needs and the scan findings.",
        epilog="Exit codes: 0 written, 2 part of the model could not be read or analysed "
        "(the BOM is still written and records why).",
    )
    parser.add_argument("path", metavar="PATH", help="model file or directory")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the BOM to FILE instead of stdout"
    )
    parser.add_argument(
        "--policy", metavar="FILE", help="policy file (limits, callables, ignored rules)"
    )


def run(args: argparse.Namespace) -> int:
    """Build the BOM, write it, and return 2 when part of the model could not be analysed."""
    from modelshield.bom.cyclonedx import bom_json, create_bom

    policy, _ = resolve_policy(args.policy)
    outcome = create_bom(args.path, policy=policy)
    write_output(bom_json(outcome.bom), args.output, sys.stdout)
    errors = [*outcome.scan.errors, *outcome.errors]
    for e in errors:
        print(f"modelshield: error: {e.location.display()}: {e.message}", file=sys.stderr)
    return 2 if errors else 0
