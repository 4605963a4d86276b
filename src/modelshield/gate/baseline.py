"""A baseline of accepted findings: adopt the gate on a project that already has findings.

``modelshield ci --baseline FILE --update-baseline`` records every finding of the run; later
runs with ``--baseline FILE`` drop the findings the file records, so that only new ones fail
the pipeline. Findings are matched by fingerprint (:mod:`modelshield.core.fingerprint`: rule,
path relative to the project, archive members and the evidence that says what was found;
never the line or byte offset), with a count: when a file holds the same finding more often
than recorded, the extra ones are new.

The file is JSON, sorted, one entry per fingerprint, meant to be committed and reviewed::

    {
      "tool": "modelshield",
      "kind": "baseline",
      "baseline_version": 1,
      "fingerprint": "v2",
      "findings": [
        {"fingerprint": "<sha256>", "count": 1, "rule_id": "PICKLE-IMPORT-UNKNOWN",
         "path": "models/legacy.pkl", "title": "Pickle imports mylib:Layer"}
      ]
    }

``rule_id``, ``path`` and ``title`` are for the reviewer; only ``fingerprint`` and ``count``
are matched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from msgspec import Struct
from msgspec.structs import replace

from modelshield.core.errors import ConfigError
from modelshield.core.findings import FileResult, Finding, Report
from modelshield.core.fingerprint import FINGERPRINT_VERSION, fingerprint, with_occurrences

BASELINE_VERSION = 1
"""The layout of the baseline file."""

MAX_BASELINE_BYTES = 64 * 1024 * 1024
"""A larger baseline file is refused (it is not one modelshield wrote)."""


class BaselineEntry(Struct, frozen=True):
    """One accepted finding (or several identical ones)."""

    fingerprint: str
    """The finding's fingerprint."""
    count: int = 1
    """How many findings with that fingerprint are accepted."""
    rule_id: str = ""
    """For the reviewer: the rule."""
    path: str = ""
    """For the reviewer: the file, relative to the project."""
    title: str = ""
    """For the reviewer: what was found."""


class Baseline(Struct, frozen=True):
    """Accepted findings, by fingerprint."""

    entries: tuple[BaselineEntry, ...] = ()
    """One entry per fingerprint, sorted by path, rule and fingerprint."""

    @classmethod
    def of(cls, findings: Iterable[Finding], root: str | None = None) -> Baseline:
        """A baseline accepting ``findings`` (paths relative to ``root``)."""
        counts: dict[str, int] = {}
        first: dict[str, Finding] = {}
        for finding in findings:
            digest = fingerprint(finding, root)
            counts[digest] = counts.get(digest, 0) + 1
            first.setdefault(digest, finding)
        entries = [
            BaselineEntry(
                fingerprint=digest,
                count=counts[digest],
                rule_id=first[digest].rule_id,
                path=_posix(first[digest].location.path),
                title=first[digest].title,
            )
            for digest in counts
        ]
        entries.sort(key=lambda e: (e.path, e.rule_id, e.fingerprint))
        return cls(tuple(entries))

    @classmethod
    def read(cls, path: str | Path) -> Baseline:
        """Read a baseline file; anything else (another tool's file, broken JSON, a newer
        layout) is a ConfigError naming the file and, for JSON errors, the line."""
        p = Path(path)
        try:
            with p.open("rb") as fh:
                data = fh.read(MAX_BASELINE_BYTES + 1)
        except OSError as e:
            raise ConfigError(f"cannot read the baseline {p}: {e.strerror or e}") from e
        if len(data) > MAX_BASELINE_BYTES:
            raise ConfigError(f"{p}: larger than {MAX_BASELINE_BYTES} bytes: not a baseline")
        try:
            document = json.loads(data)
        except UnicodeDecodeError as e:
            raise ConfigError(f"{p}: not a modelshield baseline: not UTF-8 text ({e})") from e
        except json.JSONDecodeError as e:
            raise ConfigError(
                f"{p}:{e.lineno}:{e.colno}: not a modelshield baseline: invalid JSON ({e.msg})"
            ) from e
        return cls.from_document(document, str(p))

    @classmethod
    def from_document(cls, document: object, source: str) -> Baseline:
        """Validate a parsed baseline document."""
        if not isinstance(document, dict) or document.get("kind") != "baseline":
            hint = _looks_like(document)
            raise ConfigError(
                f"{source}: not a modelshield baseline{hint}; create one with "
                "`modelshield ci --baseline FILE --update-baseline`"
            )
        if document.get("tool") != "modelshield":
            raise ConfigError(f"{source}: a baseline of another tool ({document.get('tool')!r})")
        if document.get("baseline_version") != BASELINE_VERSION:
            raise ConfigError(
                f"{source}: baseline_version {document.get('baseline_version')!r} is not "
                f"{BASELINE_VERSION}; this modelshield cannot read it"
            )
        if document.get("fingerprint") != FINGERPRINT_VERSION:
            raise ConfigError(
                f"{source}: made with fingerprints {document.get('fingerprint')!r}, and this "
                f"modelshield computes {FINGERPRINT_VERSION!r}: no finding would match. "
                "Review the findings and recreate it with --update-baseline"
            )
        items = document.get("findings")
        if not isinstance(items, list):
            raise ConfigError(f"{source}: 'findings' must be a list")
        entries = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("fingerprint"), str):
                raise ConfigError(f"{source}: findings[{i}] needs a 'fingerprint' string")
            count = item.get("count", 1)
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ConfigError(f"{source}: findings[{i}].count must be an integer >= 1")
            entries.append(
                BaselineEntry(
                    fingerprint=item["fingerprint"],
                    count=count,
                    rule_id=str(item.get("rule_id", "")),
                    path=str(item.get("path", "")),
                    title=str(item.get("title", "")),
                )
            )
        return cls(tuple(entries))

    def to_json(self) -> str:
        """The file's text (two-space indent, sorted entries, a final newline)."""
        document = {
            "tool": "modelshield",
            "kind": "baseline",
            "baseline_version": BASELINE_VERSION,
            "fingerprint": FINGERPRINT_VERSION,
            "findings": [
                {
                    "fingerprint": e.fingerprint,
                    "count": e.count,
                    "rule_id": e.rule_id,
                    "path": e.path,
                    "title": e.title,
                }
                for e in self.entries
            ],
        }
        return json.dumps(document, indent=2, ensure_ascii=True) + "\n"

    def write(self, path: str | Path) -> None:
        """Write the file (ConfigError when it cannot be written)."""
        try:
            Path(path).write_text(self.to_json(), encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot write the baseline {path}: {e.strerror or e}") from e

    def counts(self) -> Mapping[str, int]:
        """Accepted findings per fingerprint."""
        return {e.fingerprint: e.count for e in self.entries}


class Applied(Struct, frozen=True):
    """A report with the baseline applied, and what the baseline no longer matches."""

    report: Report
    """The findings the baseline does not accept; ``baselined`` counts the others."""
    absent: tuple[BaselineEntry, ...] = ()
    """Entries no finding matched (fixed, or gone): ``--update-baseline`` drops them."""


def apply_baseline(report: Report, baseline: Baseline, root: str | None = None) -> Applied:
    """Drop the findings ``baseline`` accepts (paths relative to ``root``)."""
    budget = dict(baseline.counts())
    accepted: set[int] = set()
    for finding, digest, occurrence in with_occurrences(report.findings, root):
        if occurrence <= budget.get(digest, 0):
            accepted.add(id(finding))
    used: dict[str, int] = {}
    for finding, digest, _ in with_occurrences(report.findings, root):
        if id(finding) in accepted:
            used[digest] = used.get(digest, 0) + 1
    results: list[FileResult] = []
    for result in report.results:
        kept = tuple(f for f in result.findings if id(f) not in accepted)
        results.append(
            result if len(kept) == len(result.findings) else replace(result, findings=kept)
        )
    absent = tuple(e for e in baseline.entries if used.get(e.fingerprint, 0) == 0)
    applied = replace(report, results=tuple(results), baselined=report.baselined + len(accepted))
    return Applied(applied, absent)


def _posix(path: str) -> str:
    return path.replace("\\", "/").removeprefix("./")


def _looks_like(document: object) -> str:
    if isinstance(document, dict):
        if "runs" in document and "version" in document:
            return " (it looks like a SARIF log)"
        if "schema_version" in document and "results" in document:
            return " (it looks like a modelshield JSON report)"
        if "bomFormat" in document:
            return " (it looks like a CycloneDX BOM)"
    return ""
