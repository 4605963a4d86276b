"""Dependency audit: known vulnerabilities in the software a model needs.

Inputs (requirements files, pyproject, lock files, conda and MLflow files, model files, the
running environment) are parsed into dependencies, matched against OSV advisories from an
offline database or the OSV API, and reported as findings in the same :class:`Report` as a scan.

Example::

    from modelshield.audit import OfflineDatabase, audit

    report = audit(["model_dir/"], source=OfflineDatabase("advisories/"))
    for finding in report.findings:
        print(finding.rule_id, finding.title)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from msgspec.structs import replace

from modelshield.audit.inputs.dependency import Dependency, InputKind, ParsedInput
from modelshield.audit.interface import AuditServiceError, VulnerabilitySource
from modelshield.audit.records import Advisory
from modelshield.core.findings import FileResult, Report
from modelshield.core.policy import Policy

if TYPE_CHECKING:
    from modelshield.audit.auditor import AuditOptions
    from modelshield.audit.sources.osv_api import OsvApi
    from modelshield.audit.sources.osv_db import OfflineDatabase
    from modelshield.scanner.discovery import Discovery

__all__ = [
    "Advisory",
    "AuditOptions",
    "AuditServiceError",
    "Dependency",
    "InputKind",
    "OfflineDatabase",
    "OsvApi",
    "ParsedInput",
    "VulnerabilitySource",
    "audit",
    "audit_paths",
]


# The sources are imported on first use: an offline audit never loads the HTTP stack.
_LAZY = {
    "AuditOptions": "modelshield.audit.auditor",
    "OfflineDatabase": "modelshield.audit.sources.osv_db",
    "OsvApi": "modelshield.audit.sources.osv_api",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modelshield.audit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def audit_paths(
    paths: Sequence[str | os.PathLike[str]],
    *,
    source: VulnerabilitySource,
    policy: Policy | None = None,
    include_environment: bool = False,
    ignore: Iterable[str] = (),
    discovery: Discovery | None = None,
    scanned: Iterable[FileResult] = (),
) -> Report:
    """Find, parse and audit the inputs; the raw report (the policy is not applied).

    The policy's ``[audit]`` settings say how inputs are read (the marker target, includes
    allowed outside the audited tree, environment variables that may be expanded) and how old
    an offline database may be; ``discovery`` what the search of a directory leaves out
    (default: the policy's ``exclude`` and ``gitignore``); ``scanned`` holds scan results of
    model files the caller has already (they are not scanned again). Raises
    :class:`AuditServiceError` when the vulnerability source cannot answer.
    """
    from modelshield.audit.auditor import audit_inputs
    from modelshield.audit.discover import audit_options, collect_inputs, parse_options
    from modelshield.scanner.discovery import ExcludedLog

    started = time.monotonic()
    policy = policy or Policy()
    options = parse_options(policy)
    log = ExcludedLog()
    inputs = collect_inputs(
        paths,
        options,
        policy,
        include_environment=include_environment,
        scanned=scanned,
        discovery=discovery,
        log=log,
    )
    report = audit_inputs(inputs, source, audit_options(policy, ignore), started)
    return replace(report, excluded=tuple(log.listed), excluded_total=log.total)


def audit(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    source: VulnerabilitySource,
    policy: Policy | None = None,
    include_environment: bool = False,
    ignore: Iterable[str] = (),
) -> Report:
    """Public API: audit and apply the policy (ignores, severity overrides)."""
    policy = policy or Policy()
    seq: Sequence[str | os.PathLike[str]] = (
        [paths] if isinstance(paths, str | os.PathLike) else paths
    )
    raw = audit_paths(
        seq, source=source, policy=policy, include_environment=include_environment, ignore=ignore
    )
    return policy.apply(raw)
