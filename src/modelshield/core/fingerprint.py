"""The identity of a finding across runs, for baselines and code-scanning dashboards.

A fingerprint must stay the same while the finding is the same thing in the same file, and
change when it is not:

* it hashes the **rule id**, the **file path relative to the project** (POSIX; the project is
  the policy file's directory, or the directory ``modelshield ci`` runs on), the **archive
  members** down to the finding, and the **evidence that says what was found** (the callable
  a pickle imports, the package and version and advisory ids of a vulnerability, the template
  expression, the configuration target);
* it leaves out **where in the file** the finding is (evidence ``line``, ``column``,
  ``offset``, ``lines``, line numbers quoted in evidence text such as ``os.system (line 3)``;
  the location's byte offset), the **wording** (title and message) and the
  **severity** (a policy may re-rank it), and what an advisory database adds over time
  without changing the vulnerability (``fixed_versions``, ``upgrade_to``, ``references``,
  ``severity_source``).

So moving a call down a file, re-saving a checkpoint with the same content, running from
another directory or upgrading modelshield's wording keeps the fingerprint; a new callable, a
new version, a renamed file or a new advisory id (an alias published later included: the
finding then shows up once more as new, never silently accepted) gives a new one. Identical
findings in one file (the same callable imported twice) share a fingerprint and are told
apart by their occurrence number, in order.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator

from modelshield.core.evidence import POSITION_KEYS
from modelshield.core.findings import Finding

FINGERPRINT_VERSION = "v2"
"""Changes when the recipe does (old baselines then no longer match: fail safe)."""

UNSTABLE_KEYS: frozenset[str] = POSITION_KEYS | frozenset(
    {
        "lines",
        "fixed_versions",
        "upgrade_to",
        "references",
        "severity_source",
        "age_days",
        "newest_modified",
        "worst_advisory_severity",
    }
)
"""Evidence keys left out of the fingerprint (see the module's documentation)."""

_LINE_NUMBERS = re.compile(r"\blines? \d+(?:, \d+)*(?:\.\.\.)?")
"""Line numbers quoted inside evidence text (``os.system (lines 3, 9)``)."""


def project_path(path: str, root: str | None = None) -> str:
    """A report's path as the fingerprint names it: a relative path as written (relative to
    the project already), an absolute one relative to ``root`` (the project; None: the
    working directory) when it is inside it; POSIX separators, no leading ``./``."""
    if os.path.isabs(path):  # noqa: PTH117 (a str)
        base = root if root is not None else os.getcwd()  # noqa: PTH109
        try:
            rel = os.path.relpath(path, base)
        except ValueError:  # another drive (Windows)
            rel = os.pardir
        if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
            path = rel
    path = path.replace(os.sep, "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def fingerprint(finding: Finding, root: str | None = None) -> str:
    """The finding's fingerprint, a hex digest; ``root`` is the project directory absolute
    paths are made relative to (see :func:`project_path`)."""
    path = project_path(finding.location.path, root)
    parts = [FINGERPRINT_VERSION, finding.rule_id, path, *finding.location.members]
    parts += [
        f"{key}={_LINE_NUMBERS.sub('line', finding.evidence[key])}"
        for key in sorted(finding.evidence)
        if key not in UNSTABLE_KEYS
    ]
    data = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def with_occurrences(
    findings: Iterable[Finding], root: str | None = None
) -> Iterator[tuple[Finding, str, int]]:
    """Each finding with its fingerprint and its occurrence number (1 for the first finding
    with that fingerprint, 2 for the next...), in order."""
    seen: dict[str, int] = {}
    for finding in findings:
        digest = fingerprint(finding, root)
        seen[digest] = seen.get(digest, 0) + 1
        yield finding, digest, seen[digest]
