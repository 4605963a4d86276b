"""``modelshield assess``: how a model behaves on your data, as a CI gate."""

from __future__ import annotations

import argparse

from modelshield.cli._common import add_report_options, emit_report, resolve_policy


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``assess`` parser."""
    parser = subparsers.add_parser(
        "assess",
        help="assess a model on your data: performance, fairness, robustness, attacks",
        description="Assess a model on the user's own data: metrics with confidence "
        "intervals, calibration, weakest slices, fairness per sensitive column, consistency, "
        "robustness to natural perturbations, evasion with a query budget, membership "
        "inference, extraction and backdoor probes. A model file is scanned first and "
        "loaded only through the restricted loaders; one with findings at high or above is "
        "refused unless --trust is given. Thresholds come from the policy's [assess] table.",
        epilog="Exit codes: 0 every check passed, 1 findings at or above --fail-on, 2 error "
        "(a check could not run, the model was refused or failed, bad data, usage error).",
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="MODEL",
        help="a model file (scikit-learn pickle or joblib, LightGBM text, XGBoost JSON, ONNX, "
        "TorchScript, torch.export), package.module:function, or an http(s):// endpoint",
    )
    parser.add_argument(
        "--data", required=True, metavar="DATA", help="held-out data: a CSV or Parquet file"
    )
    parser.add_argument("--target", required=True, metavar="COLUMN", help="the target column")
    parser.add_argument(
        "--sensitive",
        action="append",
        default=[],
        metavar="COLUMN",
        help="a sensitive column for the fairness check (repeatable; pairs are also "
        "checked as intersections)",
    )
    parser.add_argument(
        "--train-data",
        metavar="DATA",
        help="the training data (same columns): enables the membership-inference probe",
    )
    parser.add_argument(
        "--column-type",
        action="append",
        default=[],
        metavar="COLUMN=KIND",
        help="override a column's inferred kind: numeric, integer, categorical or boolean "
        "(repeatable)",
    )
    parser.add_argument(
        "--ignore-column",
        action="append",
        default=[],
        metavar="COLUMN",
        help="a column the model does not read (repeatable; columns the model names are "
        "selected automatically)",
    )
    parser.add_argument(
        "--task", choices=["classification", "regression"], help="default: inferred"
    )
    parser.add_argument(
        "--positive-class",
        metavar="LABEL",
        help="the class counted as positive (default: the model's second class when binary)",
    )
    parser.add_argument(
        "--check",
        action="append",
        metavar="NAME",
        help="run only this check (repeatable); see [assess] skip to switch checks off",
    )
    parser.add_argument(
        "--trust",
        action="store_true",
        help="load a model file even when its scan reports findings at high or above (still "
        "through the restricted loader; the report says so)",
    )
    parser.add_argument("--seed", type=int, help="seed of every random draw (default: policy)")
    add_report_options(parser)
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="text format: leave out the header"
    )


def run(args: argparse.Namespace) -> int:
    """Assess, render, write, and return the exit code."""
    from msgspec.structs import replace

    from modelshield.assess import assess
    from modelshield.core.assess_settings import CHECKS
    from modelshield.core.errors import ConfigError
    from modelshield.core.findings import Severity

    policy, policy_source = resolve_policy(args.policy)
    if args.fail_on is not None:
        policy = policy.with_fail_on(Severity.parse(args.fail_on))
    if args.seed is not None:
        if args.seed < 0:
            raise ConfigError("--seed must be >= 0")
        policy = replace(policy, assess=replace(policy.assess, seed=args.seed))
    kinds: dict[str, str] = {}
    for item in args.column_type:
        name, sep, kind = item.rpartition("=")
        if not sep or not name:
            raise ConfigError(f"--column-type {item!r}: use COLUMN=KIND")
        kinds[name] = kind
    for name in args.check or ():
        if name not in CHECKS:
            raise ConfigError(f"--check {name!r}: use one of {', '.join(CHECKS)}")
    report = assess(
        args.model,
        args.data,
        args.target,
        sensitive=args.sensitive,
        policy=policy,
        trust=args.trust,
        kinds=kinds,
        drop=args.ignore_column,
        task=args.task,
        positive_class=args.positive_class,
        train_data=args.train_data,
        checks=args.check,
    )
    return emit_report(policy.apply(report), args, policy, policy_source)
