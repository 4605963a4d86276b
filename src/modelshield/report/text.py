"""The terminal report: findings grouped by file, a summary and a PASS/FAIL verdict.

By default each finding takes two lines: severity, rule id and title, then where it is below
the file (member, line, offset) and the first sentence of its message; the same finding
repeated in a file is one entry with a count. Known vulnerabilities of dependencies are a
table (package, version, advisory, severity, fixed versions, where), as pip-audit prints them.
``verbose`` adds each finding's explanation and evidence, and lists repeated findings one by
one.

Every string that comes from a scanned file (names, members, evidence, messages quoting it)
is shown with control characters escaped: a hostile file must not be able to move the
cursor, recolour the terminal or forge report lines (CWE-150).
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from modelshield.core.evidence import line_of
from modelshield.core.findings import (
    ErrorRecord,
    FileResult,
    Finding,
    Gap,
    Location,
    Report,
    Repository,
    Role,
    Severity,
)
from modelshield.core.policy import ExitCode, Policy
from modelshield.report import Invocation

if TYPE_CHECKING:
    import rich.text


class Text:
    """A line (or block) of styled segments: the part of ``rich.text.Text`` this report uses.

    Plain output (a pipe, a file, CI) is joined from the segments without importing rich;
    only a colour terminal converts the lines with :meth:`to_rich`. Rendering 444 findings
    through rich's ``Text`` cost more than the audit that found them.
    """

    __slots__ = ("segments",)

    def __init__(self, text: str = "") -> None:
        """A line holding ``text`` without style."""
        self.segments: list[tuple[str, str]] = [(text, "")] if text else []

    @classmethod
    def assemble(cls, *parts: str | tuple[str, str]) -> Text:
        """A line from strings and ``(string, style)`` pairs."""
        line = cls()
        line.segments = [(p, "") if isinstance(p, str) else p for p in parts]
        return line

    def append(self, text: str, style: str = "") -> None:
        """Add ``text`` in ``style`` (none by default)."""
        self.segments.append((text, style))

    @property
    def plain(self) -> str:
        """The text without styles."""
        return "".join(text for text, _ in self.segments)

    def to_rich(self) -> rich.text.Text:
        """The same line as a ``rich.text.Text``."""
        from rich.text import Text as RichText

        return RichText.assemble(*self.segments)


MAX_CLEAN_LISTED = 10
"""Above this many clean files, they are collapsed into one line."""

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
"""Colour of each severity label."""

_BODY = " " * 4  # indentation of the lines under a finding

_STATUS_WORDS = {
    "incomplete": "not fully analysed",
    "skipped": "not analysed",
}

_VERDICT = {
    ExitCode.OK: ("PASS", "bold green"),
    ExitCode.FINDINGS: ("FAIL", "bold red"),
    ExitCode.ERROR: ("ERROR", "bold magenta"),
}

# C0/C1 controls, DEL, zero-width and bidirectional overrides (Trojan Source), line and
# paragraph separators, BOM, and lone surrogates from undecodable file names.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)


def safe(text: str) -> str:
    """``text`` with every control or invisible formatting character written as an escape."""
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def render(
    report: Report,
    *,
    policy: Policy,
    invocation: Invocation,
    color: bool = False,
    quiet: bool = False,
    verbose: bool = False,
) -> str:
    """The report as terminal text; ANSI colours only when ``color`` is true.

    ``quiet`` leaves out the header and the clean files; ``verbose`` adds each finding's
    explanation and evidence. Lines are never wrapped (the terminal does it), so that the
    output greps well and has no trailing padding.
    """
    lines = _renderables(report, policy, invocation, quiet, verbose)
    if not color:
        # Plain text needs no console: a piped or CI run never imports rich.
        return "".join(f"{line.plain}\n" for line in lines)
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=True,
        color_system="standard",
        no_color=False,  # the caller decided; ignore NO_COLOR here
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=True,
    )
    for line in lines:
        console.print(line.to_rich())
    return buffer.getvalue()


def _renderables(
    report: Report, policy: Policy, invocation: Invocation, quiet: bool, verbose: bool = False
) -> list[Text]:
    out: list[Text] = [] if quiet else [_header(report, policy, invocation), Text()]
    if report.assessment is not None:
        from modelshield.report.assess_text import lines

        out.extend(Text.assemble((text, style)) for text, style in lines(report.assessment))
        out.append(Text())
    vulnerabilities = [f for f in report.findings if f.rule_id in VULNERABILITY_RULES]
    if vulnerabilities:
        out.extend(_vulnerability_table(vulnerabilities))
        out.append(Text())
    # The table says all a vulnerability finding says in one line; verbose repeats them.
    tabled = set() if verbose else {id(f) for f in vulnerabilities}
    pillars = {r.pillar for r in report.results}
    sections = [p for p in PILLAR_ORDER if p in pillars] + sorted(pillars - set(PILLAR_ORDER))
    for pillar in sections:
        results = [r for r in report.results if r.pillar == pillar]
        if len(sections) > 1:
            out.append(_pillar_heading(pillar, results))
        out.extend(_results_block(results, quiet, verbose, tabled))
    for repository in report.repositories:
        out.extend(_repository_block(repository))
        out.append(Text())
    if report.excluded_total:
        out.extend(_excluded_block(report, verbose))
        out.append(Text())
    out.append(_summary(report))
    out.append(_verdict(report, policy))
    return out


PILLAR_ORDER = ("", "gate", "scan", "audit", "manifest", "assess")
"""The order of a merged report's sections (the policy's own findings first)."""

PILLAR_TITLES = {
    "gate": "Policy",
    "scan": "Model scan",
    "audit": "Dependency audit",
    "manifest": "Integrity manifest",
    "assess": "Assessment",
}
"""What each pillar's section is called in the reports."""


def _pillar_heading(pillar: str, results: list[FileResult]) -> Text:
    found = sum(len(r.findings) for r in results)
    title = PILLAR_TITLES.get(pillar, pillar)
    return Text.assemble(
        (f"── {title} ", "bold"),
        f"({len(results)} input{_s(len(results))}, {found} finding{_s(found)})",
    )


def _results_block(
    results: list[FileResult], quiet: bool, verbose: bool, tabled: set[int]
) -> list[Text]:
    out: list[Text] = []
    # A file that was not analysed fully is never listed as clean, even when the policy
    # accepts what was left out.
    flagged = [r for r in results if r.findings or r.errors or r.gaps or r.skipped]
    clean = [r for r in results if not (r.findings or r.errors or r.gaps or r.skipped)]
    for result in flagged:
        out.extend(_file_block(result, verbose, tabled))
        out.append(Text())
    if clean and not quiet:
        out.extend(_clean_block(clean))
        out.append(Text())
    return out


def _header(report: Report, policy: Policy, invocation: Invocation) -> Text:
    source = invocation.policy_source
    return Text.assemble(
        (f"modelshield {report.version}", "bold"),
        f" {report.tool}",
        " · policy: ",
        (safe(source) if source else "built-in defaults", "bold" if source else ""),
        f" · fail on: {policy.fail_on.label}",
    )


def _file_block(
    result: FileResult, verbose: bool = True, tabled: set[int] | None = None
) -> list[Text]:
    worst = result.max_severity
    style = SEVERITY_STYLE[worst] if worst is not None else "bold magenta"
    parts = [f"{len(result.findings)} finding{_s(len(result.findings))}"]
    if result.errors:
        parts.append(f"{len(result.errors)} error{_s(len(result.errors))}")
    status = _STATUS_WORDS.get(result.status)
    if status is not None:
        accepted = result.gaps and not result.unaccepted_gaps
        parts.append(f"{status} (accepted by the policy)" if accepted else status)
    mark = "✗ " if result.findings or not result.finished else "! "
    head = Text.assemble(
        (mark, style),
        (safe(result.path), "bold"),
        f"  {safe(result.format)}, {human_size(result.size)}; ",
        ", ".join(parts),
    )
    # Worst first; sorted() is stable, so equal severities keep the order they were found in.
    findings = sorted(result.findings, key=lambda f: -f.severity)
    if verbose:
        body = [_finding(f, result.path) for f in findings]
    else:
        shown = [f for f in findings if id(f) not in (tabled or ())]
        if len(shown) < len(findings):
            n = len(findings) - len(shown)
            body = [
                Text(f"  {n} known vulnerabilit{'y' if n == 1 else 'ies'}: see the table above")
            ]
        else:
            body = []
        body += [_compact(group, result.path) for group in _repeats(shown)]
    body += [_error(e, result.path) for e in result.errors]
    body += [_gap(g, result.path) for g in result.gaps]
    return [head, *body]


def _finding(finding: Finding, path: str) -> Text:
    label = finding.severity.label.upper()
    text = Text.assemble(
        "  ",
        (f"{label:<8}", SEVERITY_STYLE[finding.severity]),
        " ",
        (finding.rule_id, "bold"),
        "  ",
        safe(finding.title),
    )
    where = _where(finding.location, path, finding.evidence)
    if where:
        text.append(f"\n{_BODY}at {where}", style="dim")
    text.append(f"\n{_BODY}{safe(finding.message)}")
    for key in sorted(finding.evidence):
        text.append(f"\n{_BODY}{safe(key)}: ", style="dim")
        text.append(safe(finding.evidence[key]))
    return text


def _repeats(findings: list[Finding]) -> list[list[Finding]]:
    """Findings grouped when they say the same thing (rule, severity, title), in order."""
    groups: dict[tuple[str, Severity, str], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.rule_id, f.severity, f.title), []).append(f)
    return list(groups.values())


MAX_PLACES = 3
"""Places listed for a finding repeated in a file before the rest are counted."""


def _compact(group: list[Finding], path: str) -> Text:
    """One line (two when it is below the file): severity, rule, title, count; where."""
    first = group[0]
    label = first.severity.label.upper()
    text = Text.assemble(
        "  ",
        (f"{label:<8}", SEVERITY_STYLE[first.severity]),
        " ",
        (first.rule_id, "bold"),
        "  ",
        safe(first.title),
    )
    if len(group) > 1:
        text.append(f"  ×{len(group)}", style="bold")
    places = [w for w in dict.fromkeys(_where(f.location, path, f.evidence) for f in group) if w]
    second = ""
    if places:
        second = "at " + ", ".join(places[:MAX_PLACES])
        if len(places) > MAX_PLACES:
            second += f" and {len(places) - MAX_PLACES} more"
    summary = one_line(first.message)
    if summary:
        text.append(f"\n{_BODY}")
        if second:
            text.append(f"{second}: ", style="dim")
        text.append(safe(summary))
    elif second:
        text.append(f"\n{_BODY}{second}", style="dim")
    return text


MAX_LINE = 160
"""Characters of a finding's message shown in the compact report."""


def one_line(message: str) -> str:
    """The first sentence of a message, at most :data:`MAX_LINE` characters."""
    text = message.strip().split("\n", 1)[0]
    end = text.find(". ")
    if end > 0:
        text = text[: end + 1]
    if len(text) > MAX_LINE:
        text = text[: MAX_LINE - 1].rstrip() + "…"
    return text


VULNERABILITY_RULES = frozenset(
    {"AUDIT-VULNERABLE-DEPENDENCY", "AUDIT-VULNERABLE-UNORDERABLE-RANGE"}
)
"""The rules whose findings the vulnerability table lists."""


def _vulnerability_table(findings: list[Finding]) -> list[Text]:
    """Known vulnerabilities as a table: one row per package version and advisory."""
    rows = []
    for f in sorted(
        findings, key=lambda f: (f.evidence.get("package", ""), f.evidence.get("version", ""))
    ):
        ev = f.evidence
        ids = [i for i in ev.get("ids", "").split(", ") if i]
        where = f.location.path + (f":{ev['line']}" if ev.get("line") else "")
        fix = ev.get("fixed_versions", "") or "none known"
        rows.append(
            (
                f.severity,
                [
                    safe(ev.get("package", "?")),
                    safe(ev.get("version", "?")),
                    safe(ids[0] if ids else f.rule_id)
                    + ("?" if f.rule_id == "AUDIT-VULNERABLE-UNORDERABLE-RANGE" else ""),
                    f.severity.label,
                    safe(fix),
                    safe(where),
                ],
            )
        )
    head = ["Name", "Version", "ID", "Severity", "Fix Versions", "Where"]
    widths = [max(len(h), *(len(r[i]) for _, r in rows)) for i, h in enumerate(head)]
    packages = len({(r[0], r[1]) for _, r in rows})
    out = [
        Text.assemble(
            (f"Found {len(rows)} known vulnerabilit{'y' if len(rows) == 1 else 'ies'}", "bold"),
            f" in {packages} package version{_s(packages)}",
        ),
        Text(_row(head, widths)),
        Text(_row(["-" * w for w in widths], widths)),
    ]
    for severity, cells in rows:
        line = Text()
        for i, cell in enumerate(cells):
            sep = "" if i == 0 else " "
            padded = cell if i == len(cells) - 1 else cell.ljust(widths[i])
            line.append(sep + padded, SEVERITY_STYLE[severity] if i == 3 else "")
        out.append(line)
    return out


def _row(cells: list[str], widths: list[int]) -> str:
    return " ".join(c if i == len(cells) - 1 else c.ljust(widths[i]) for i, c in enumerate(cells))


MAX_EXCLUDED_LISTED = 5
"""Paths left out named in the default report (``verbose`` names the first 1,000)."""


def _excluded_block(report: Report, verbose: bool) -> list[Text]:
    by_reason = Counter(e.reason for e in report.excluded)
    parts = ", ".join(f"{n} by {reason}" for reason, n in sorted(by_reason.items()))
    total = report.excluded_total
    head = Text.assemble(("○ ", "dim"), f"{total} path{_s(total)} left out of the search ({parts})")
    listed = report.excluded if verbose else report.excluded[:MAX_EXCLUDED_LISTED]
    lines = [head]
    for e in listed:
        why = f"{e.reason}: {safe(e.pattern)}" if e.pattern else e.reason
        lines.append(Text(f"  {safe(e.path)}  ({why})"))
    more = total - len(listed)
    if more > 0:
        lines.append(Text(f"  ... {more} more" + ("" if verbose else " (--verbose lists them)")))
    return lines


def _error(error: ErrorRecord, path: str) -> Text:
    text = Text.assemble(
        "  ",
        (f"{'ERROR':<8}", "bold magenta"),
        " ",
        (safe(error.stage), "bold"),
        "  ",
        safe(error.message),
    )
    where = _where(error.location, path)
    if where:
        text.append(f"\n{_BODY}at {where}", style="dim")
    return text


def _gap(gap: Gap, path: str) -> Text:
    label = "ACCEPTED" if gap.accepted else "PARTIAL"
    text = Text.assemble(
        "  ",
        (f"{label:<8}", "dim" if gap.accepted else "bold magenta"),
        " ",
        (gap.rule_id, "bold"),
        "  not analysed",
    )
    where = _where(gap.location, path)
    if where:
        text.append(f" at {where}", style="dim")
    return text


def _where(location: Location, path: str, evidence: Mapping[str, str] | None = None) -> str:
    """The part of a location below the file being listed, e.g. ``archive/data.pkl @ 42`` or
    ``line 12``."""
    parts = [safe(m) for m in location.members]
    if location.path != path:
        parts.insert(0, safe(location.path))
    text = " › ".join(parts)
    line = line_of(evidence or {})
    if line is not None:
        text = f"{text} line {line}" if text else f"line {line}"
    elif location.offset is not None:
        text = f"{text} @ offset {location.offset}" if text else f"offset {location.offset}"
    return text


def _clean_block(clean: list[FileResult]) -> list[Text]:
    if len(clean) > MAX_CLEAN_LISTED:
        formats = Counter(r.format for r in clean)
        listed = ", ".join(f"{safe(fmt)} {n}" for fmt, n in sorted(formats.items()))
        return [
            Text.assemble(
                ("✓ ", "green"),
                f"{len(clean)} clean files ({listed}); --format json lists them",
            )
        ]
    return [
        Text.assemble(
            ("✓ ", "green"),
            safe(r.path),
            (f"  {safe(r.format)}, {human_size(r.size)}, no findings", "dim"),
        )
        for r in clean
    ]


MAX_EXECUTABLE_LISTED = 8
"""Executable files named in a directory's summary before the rest are counted."""

_ROLE_WORDS: tuple[tuple[Role, str], ...] = (
    ("executable", "executable in effect"),
    ("code", "code no loader runs"),
    ("inert", "inert data"),
    ("not-analysed", "not analysed"),
)


def _repository_block(repository: Repository) -> list[Text]:
    """Two lines per scanned directory: how many files of each role, and which files a
    loader would execute."""
    layouts = f" ({', '.join(safe(x) for x in repository.layouts)})" if repository.layouts else ""
    counts = ", ".join(
        f"{n} {words}" for role, words in _ROLE_WORDS if (n := len(repository.with_role(role)))
    )
    lines = [Text.assemble(("▸ ", "bold"), (safe(repository.path), "bold"), layouts, f": {counts}")]
    executable = repository.with_role("executable")
    if executable:
        names = [safe(_below(f.path, repository.path)) for f in executable]
        shown = ", ".join(names[:MAX_EXECUTABLE_LISTED])
        more = len(names) - MAX_EXECUTABLE_LISTED
        if more > 0:
            shown += f" and {more} more"
        lines.append(Text(f"  executable in effect: {shown}"))
    return lines


def _below(path: str, root: str) -> str:
    """``path`` shown relative to the directory ``root`` it was found under."""
    prefix = root.rstrip("/\\") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


def _summary(report: Report) -> Text:
    counts = report.count_by_severity()
    total = sum(counts.values())
    if report.assessment is not None:
        scanned = " (scanned first)" if report.assessment.scanned else ""
        text = Text(f"Assessed {safe(report.assessment.model)}{scanned}")
    elif report.tool == "ci":
        pillars = len({r.pillar for r in report.results if r.pillar != "gate"})
        text = Text(
            f"Checked {len(report.results)} input{_s(len(report.results))} with "
            f"{pillars} pillar{_s(pillars)}"
        )
    else:
        text = Text(f"Scanned {len(report.results)} file{_s(len(report.results))}")
    text.append(f" in {report.duration_s:.2f} s: {total} finding{_s(total)} (")
    for i, (severity, n) in enumerate(counts.items()):
        if i:
            text.append(", ")
        text.append(f"{severity.label} {n}", style=SEVERITY_STYLE[severity] if n else "")
    errors = len(report.errors)
    text.append(f"), {errors} error{_s(errors)}")
    partial = sum(1 for r in report.results if r.gaps or r.skipped)
    if partial:
        text.append(f", {partial} file{_s(partial)} not fully analysed")
    if report.suppressed:
        text.append(f", {report.suppressed} suppressed by the policy")
    if report.baselined:
        text.append(f", {report.baselined} accepted by the baseline")
    return text


def _verdict(report: Report, policy: Policy) -> Text:
    code = policy.exit_code(report)
    word, style = _VERDICT[code]
    threshold = policy.fail_on.label
    failing = sum(1 for f in report.findings if f.severity >= policy.fail_on)
    if code is ExitCode.FINDINGS:
        why = f"{failing} finding{_s(failing)} at or above {threshold}"
    elif code is ExitCode.ERROR and report.assessment is not None:
        stopped = len(report.errors) + sum(len(r.unaccepted_gaps) for r in report.results)
        why = (
            f"{stopped} part{_s(stopped)} of the assessment could not run (see ERROR and "
            f"PARTIAL above); no findings at or above {threshold}"
        )
    elif code is ExitCode.ERROR:
        files = len(report.unfinished)
        why = (
            f"{files} file{_s(files)} could not be analysed fully; "
            f"no findings at or above {threshold}"
        )
    else:
        why = f"no findings at or above {threshold}"
    return Text.assemble((word, style), f": {why} (exit code {int(code)})")


def human_size(size: int) -> str:
    """A byte count for people: ``812 B``, ``1.5 KiB``, ``2.0 GiB``."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _s(n: int) -> str:
    return "" if n == 1 else "s"
