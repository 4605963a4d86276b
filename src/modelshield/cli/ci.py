"""``modelshield ci``: every configured pillar in one run, several reports, one exit code."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from modelshield.cli._common import (
    add_discovery_options,
    add_output_options,
    check_outputs,
    emit_report,
    resolve_policy,
)
from modelshield.cli._sources import add_source_options

if TYPE_CHECKING:
    import sqlalchemy as sa

    from modelshield.audit.interface import VulnerabilitySource
    from modelshield.core.findings import Report
    from modelshield.core.policy import Policy
    from modelshield.gate.ci import CiRun


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``ci`` parser."""
    parser = subparsers.add_parser(
        "ci",
        help="run every pillar the policy configures, as one CI step with several reports",
        description="Run every pillar the project's policy configures, once: scan the model "
        "paths, audit the dependency files and what the models imply, verify the integrity "
        "manifest ([manifest]), assess the model ([assess] model, data, target). Merge the "
        "findings, report the policy's own stale or expired entries, apply a baseline of "
        "accepted findings, and write several reports from the one run. Paths in the policy "
        "are relative to the policy file, paths in the reports relative to the project, "
        "whatever the working directory.",
        epilog="Exit codes: 0 no finding at or above --fail-on and everything analysed, 1 "
        "findings at or above it (0 with --exit-zero), 2 error (an input not analysed "
        "fully, a pillar that could not run, a usage error), with --exit-zero too.",
    )
    parser.add_argument(
        "project",
        nargs="?",
        default=".",
        metavar="PROJECT_DIR",
        help="the project (default: the current directory); its modelshield.toml or "
        "[tool.modelshield] in its pyproject.toml is the policy",
    )
    parser.add_argument(
        "--policy", metavar="FILE", help="policy file (default: the one in PROJECT_DIR)"
    )
    add_output_options(parser)
    parser.add_argument(
        "--baseline",
        metavar="FILE",
        help="findings accepted when the gate was adopted: those it records do not fail the "
        "run (default: the policy's [ci] baseline)",
    )
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help="write every finding of this run to the baseline file (then none fails the run)",
    )
    parser.add_argument(
        "--record",
        nargs="?",
        const="",
        metavar="URL",
        help="record this run's results in the governance database (for `modelshield report "
        "--since`): a SQLite file or a postgresql:// URL; default: the policy's [governance] db, "
        "else .modelshield/governance.db in the project (needs the db extra)",
    )
    parser.add_argument(
        "--exit-zero",
        action="store_true",
        help="report only: exit 0 even with findings at or above --fail-on (still 2 on errors)",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["scan", "audit", "manifest", "assess"],
        help="do not run this pillar (repeatable; adds to the policy's [ci] skip)",
    )
    add_discovery_options(parser)
    add_source_options(parser, api_by_default=True)
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="text format: only what needs attention"
    )
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the pillars, write the reports, and return the exit code."""
    import os
    from pathlib import Path

    from msgspec.structs import replace

    from modelshield.core.errors import ConfigError
    from modelshield.core.findings import Severity
    from modelshield.core.policy import ExitCode
    from modelshield.gate.baseline import Baseline, apply_baseline
    from modelshield.gate.ci import configured_pillars, run_ci
    from modelshield.scanner.discovery import Discovery

    project = Path(args.project)
    if not project.is_dir():
        raise ConfigError(f"{args.project}: not a directory (name the project to check)")
    root = os.path.abspath(project)  # noqa: PTH100 (a str)
    check_outputs(args)
    policy, label = resolve_policy(args.policy, cwd=project)
    if policy.root is None:  # built-in defaults: the project is the root
        policy = replace(policy, root=root)
    if label is not None and policy.file is not None and args.policy is None:
        label = os.path.relpath(policy.file) + label.removeprefix(Path(policy.file).name)
    if args.fail_on is not None:
        policy = policy.with_fail_on(Severity.parse(args.fail_on))

    baseline_path = args.baseline
    if baseline_path is None and policy.ci.baseline is not None:
        baseline_path = policy.resolve(policy.ci.baseline)
    if args.update_baseline and baseline_path is None:
        raise ConfigError("--update-baseline needs --baseline FILE (or [ci] baseline)")
    baseline = None
    if baseline_path is not None and not args.update_baseline:
        if not Path(baseline_path).exists():
            raise ConfigError(
                f"the baseline {baseline_path} does not exist; create it with --update-baseline"
            )
        baseline = Baseline.read(baseline_path)  # before any long work

    from modelshield.cli._governance import open_for_writing, record_url

    record_to = record_url(args.record, policy, root)
    governance = open_for_writing(record_to) if record_to is not None else None  # before the work

    pillars = configured_pillars(policy, args.skip)
    source = _source(args, policy) if "audit" in pillars else None
    discovery = Discovery.from_policy(
        policy, args.exclude, gitignore=False if args.no_gitignore else None
    )
    progress = None
    if not (args.no_progress or args.quiet) and sys.stderr.isatty():
        from modelshield.cli.scan import _Progress

        progress = _Progress()
    try:
        outcome = run_ci(
            root,
            policy,
            source=source,
            discovery=discovery,
            skip=args.skip,
            baseline=baseline,
            observer=progress,
        )
    finally:
        if progress is not None:
            progress.close()
    report = outcome.report
    if args.update_baseline and baseline_path is not None:
        recorded = Baseline.of(report.findings, root)
        recorded.write(baseline_path)
        report = apply_baseline(report, recorded, root).report
        n = report.baselined
        print(
            f"modelshield: the baseline {baseline_path} records {n} finding{'s' if n != 1 else ''}",
            file=sys.stderr,
        )
    elif outcome.absent and not args.quiet:
        n = len(outcome.absent)
        print(
            f"modelshield: {n} baseline entr{'y' if n == 1 else 'ies'} matched no finding (fixed "
            "or gone); --update-baseline drops them",
            file=sys.stderr,
        )
    code = int(policy.exit_code(report))
    if args.exit_zero:
        # Report only: the reports state the gate's verdict; the process fails only when
        # something could not be analysed (a finding at the threshold wins that in the
        # verdict, never here).
        code = int(ExitCode.ERROR if report.unfinished else ExitCode.OK)
    code = emit_report(report, args, policy, label, source_root=root, code=code)
    if governance is not None:
        _record(governance, outcome, report, policy, root=root, code=code, quiet=args.quiet)
    return code


def _record(
    engine: sa.Engine,
    outcome: CiRun,
    report: Report,
    policy: Policy,
    *,
    root: str,
    code: int,
    quiet: bool,
) -> None:
    """Write the run to the governance database, in one transaction."""
    import time

    from modelshield.gate import governance
    from modelshield.gate.history import run_record
    from modelshield.storage.sql import display_url

    started = time.monotonic()
    try:
        run = run_record(
            report,
            outcome.unbaselined or report,
            policy,
            root=root,
            pillars=outcome.pillars,
            exit_code=code,
            project=policy.governance.project,
        )
        governance.record(engine, run)
    finally:
        engine.dispose()
    if not quiet:
        n = len(run.models)
        print(
            f"modelshield: recorded run {run.run_id} ({n} model entr{'y' if n == 1 else 'ies'}) "
            f"in {display_url(str(engine.url))} "
            f"({time.monotonic() - started:.2f} s)",
            file=sys.stderr,
        )


def _source(args: argparse.Namespace, policy: Policy) -> VulnerabilitySource:
    """The audit's vulnerability source: the options, else the policy's ``[audit] db``, else
    the OSV API."""
    from modelshield.cli._sources import choose_source

    if policy.audit.db is not None and not (args.db or args.offline or args.osv_url):
        args = argparse.Namespace(**{**vars(args), "db": policy.resolve(policy.audit.db)})
    return choose_source(args, policy)
