"""``modelshield scan``: scan model files and directories without loading them."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from msgspec.structs import replace

from modelshield.cli._common import (
    add_discovery_options,
    add_report_options,
    check_outputs,
    discovery,
    emit_report,
    resolve_policy,
)
from modelshield.core.findings import Severity

if TYPE_CHECKING:
    from modelshield.core.findings import FileResult

PROGRESS_MIN_FILES = 4
"""A progress bar is shown for scans of at least this many files (on a terminal only)."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``scan`` parser."""
    parser = subparsers.add_parser(
        "scan",
        help="scan model files and directories (nothing scanned is ever loaded)",
        description="Scan model files, archives and directories for code that loading them "
        "would run. Files are read as bytes: nothing is unpickled, imported or evaluated.",
        epilog="Exit codes: 0 no findings at or above --fail-on, 1 findings at or above it, "
        "2 error (a file could not be analysed fully, or a usage error).",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="files or directories; hf://ORG/REPO[@REVISION] or a huggingface.co URL fetches a "
        "model from the Hugging Face Hub first (the 'hub' extra)",
    )
    add_report_options(parser)
    add_discovery_options(parser)
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="RULE",
        help="drop findings of this rule id (repeatable)",
    )
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="text format: list only files with findings or errors; no progress bar",
    )
    parser.add_argument(
        "--verify-load",
        action="store_true",
        help="after the scan, load each file it passed through modelshield's restricted loader "
        "in a child process with a time and memory limit, to confirm that it also loads under "
        "the policy (a refusal is a LOAD-VERIFY-MISMATCH finding; a crash or timeout, an "
        "error). Off by default. It runs library code on the file's data: never use it on "
        "untrusted input outside a sandbox you provide",
    )
    parser.add_argument(
        "--verify-load-timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="--verify-load: wall-clock limit per file (default: limits.verify_load_seconds, 300)",
    )
    parser.add_argument(
        "--verify-load-memory",
        type=_positive_int,
        metavar="MIB",
        help="--verify-load: address-space limit of the child, in MiB (default: "
        "limits.verify_load_memory_bytes, 16 GiB)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        metavar="N",
        help="scan N files at once in worker processes ('auto': one per CPU; with --executor "
        "ray, tasks at once, default the cluster's CPUs); results and report are those of a "
        "serial scan (default: 1, in this process)",
    )
    parser.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="where --jobs runs: 'local' processes, or 'ray' tasks on a Ray cluster (joined "
        "through RAY_ADDRESS or a cluster started with `ray start`, else started for the run; "
        "the 'ray' extra)",
    )


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _jobs(text: str) -> int:
    """A positive number of jobs, or 0 for 'auto'."""
    if text == "auto":
        return 0
    try:
        return _positive_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer or 'auto', got {text!r}"
        ) from None


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    """Scan, render, write, and return the exit code."""
    from modelshield.scanner.engine import scan_paths

    check_outputs(args)
    policy, source = resolve_policy(args.policy)
    if args.fail_on is not None:
        policy = policy.with_fail_on(Severity.parse(args.fail_on))
    if args.ignore:
        policy = replace(policy, ignore=policy.ignore | frozenset(args.ignore))
    if args.verify_load_timeout is not None:
        policy = replace(
            policy, limits=replace(policy.limits, verify_load_seconds=args.verify_load_timeout)
        )
    if args.verify_load_memory is not None:
        memory = args.verify_load_memory * 1024 * 1024
        policy = replace(policy, limits=replace(policy.limits, verify_load_memory_bytes=memory))

    show_progress = not (args.no_progress or args.quiet) and sys.stderr.isatty()
    from modelshield.cli._remote import resolve_remote

    paths, remote_results = resolve_remote(
        args.paths, policy, progress=show_progress, quiet=args.quiet
    )
    jobs = None if args.jobs == 0 else args.jobs
    if args.jobs is None and args.executor == "local":
        jobs = 1
    progress = _Progress() if show_progress else None
    try:
        raw = scan_paths(
            paths,
            policy,
            progress,
            discovery=discovery(args, policy),
            jobs=jobs,
            executor=args.executor,
        )
        if remote_results:
            raw = replace(raw, results=(*raw.results, *remote_results))
        report = policy.apply(raw)
    finally:
        if progress is not None:
            progress.close()
    if args.verify_load:
        from modelshield.loaders.verify import verify_report

        report = verify_report(report, policy)

    _warn_unknown_rules(args.ignore)
    return emit_report(report, args, policy, source)


def _warn_unknown_rules(rule_ids: list[str]) -> None:
    """Name ``--ignore`` ids that no scanner rule has: most likely a typo."""
    import modelshield.scanner.pickle.rules
    import modelshield.scanner.rules  # noqa: F401
    from modelshield.core.rules import all_rules

    known = {rule.id for rule in all_rules()}
    for rule_id in sorted(set(rule_ids) - known):
        print(f"modelshield: warning: --ignore {rule_id}: no such rule", file=sys.stderr)


class _Progress:
    """A rich progress bar on stderr, started only for scans of several files."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._task: Any = None

    def on_start(self, total: int) -> None:
        if total < PROGRESS_MIN_FILES:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._bar = Progress(
            TextColumn("scanning"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._bar.add_task("", total=total)
        self._bar.start()

    def on_file(self, result: FileResult) -> None:
        if self._bar is not None:
            from modelshield.report.text import safe

            self._bar.update(self._task, advance=1, description=safe(result.path))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
