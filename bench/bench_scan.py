#!/usr/bin/env python3
"""Scan benchmark: modelshield beside picklescan, modelscan and ModelAudit, in one table.

Measured, for each tool, as separate processes (interpreter start-up included, as a user
or a CI job would see it):

* detection on the public labelled corpus (``../shared/corpus/public``): malicious files
  flagged, benign files flagged (false alarms), errors; one process per file;
* time and peak memory (max RSS) to scan the whole corpus in one invocation;
* time and peak memory on PyTorch zip checkpoints of about 200 MB and 2 GB generated here
  (``bench-out/``, made once and reused): a scanner that reads only what it needs takes the
  same time for both;
* detection on configuration that runs code (``bench/config_samples.py``: YAML object tags,
  Hydra targets in YAML, JSON, ``.nemo`` archives and safetensors metadata, jsonpickle, skops,
  and benign files from the real writers), one process per file (``bench_config.py`` prints
  the per-file detail).
* a second table: model folders and loader-run files (``repo_cases.py``: Hugging Face custom
  code, MLflow models, ``hubconf.py``, ``.pth`` files), each scanned as a directory (or file)
  by every tool, one process per case.

"Flagged" means: modelshield, a finding at high or above (and, in its own column, at the
default medium threshold); picklescan, exit code 1 or a reported dangerous global; modelscan,
at least one issue; ModelAudit, an issue at its ``warning`` or ``critical`` severity (what makes
it exit 1). Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "public"
OUT = REPO / "bench-out"
CODE_EXEC_EXCLUDED = {"template_injection", "metadata_policy", "embedded_payload"}
SEVERITIES = ("info", "low", "medium", "high", "critical")

_MAKE_CHECKPOINT = """
import sys, torch
path, total_mb = sys.argv[1], int(sys.argv[2])
count = -(-total_mb // 64)  # tensors of at most 64 MiB each
numel = total_mb * 2**20 // 4 // count
state = {f"layers.{i}.weight": torch.zeros(numel) for i in range(count)}
torch.save(state, path)
"""


@dataclass(frozen=True)
class Measured:
    """One finished process."""

    code: int
    """Exit status (negative: killed by that signal; 124: timed out)."""
    wall_s: float
    """Wall-clock seconds."""
    peak_mb: float
    """Peak resident memory of the process, MiB."""
    output: str
    """stdout and stderr together."""


#: Runs a command and prints its exit code, wall seconds and peak RSS (KiB). A small process of
#: its own between the caller and the command: on Linux a child's ru_maxrss counts the memory of
#: the process it was forked from (a benchmark or pytest with numpy and torch loaded), which
#: would swamp the measure.
_MEASURE = """
import resource, subprocess, sys, time
timeout, output, cmd = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
started = time.perf_counter()
with open(output, "wb") as out:
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = 124
wall = time.perf_counter() - started
print(code, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def measure(
    cmd: Sequence[str], timeout: float = 600.0, extra_env: Mapping[str, str] | None = None
) -> Measured:
    """Run ``cmd`` and measure its wall time and its own peak RSS.

    The command runs under a small measuring process (see ``_MEASURE``), so that the peak is the
    command's, not that of the process that started it. Bytecode caching is left on for the
    child, as in a normal installation: with ``PYTHONDONTWRITEBYTECODE`` set, a source checkout
    would recompile on every run. A measured command is never traced by coverage (which the
    test suite's child processes otherwise inherit). ``extra_env`` is added to the child's
    environment.
    """
    untraced = ("PYTHONDONTWRITEBYTECODE", "COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")
    env = {k: v for k, v in os.environ.items() if k not in untraced}
    env.update(extra_env or {})
    with tempfile.NamedTemporaryFile(suffix=".out") as out:
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(timeout), out.name, *cmd],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=env,
            check=False,
        )
        text = Path(out.name).read_bytes().decode("utf-8", "replace")
    code, wall, peak_kib = proc.stdout.split()
    # ru_maxrss is in KiB on Linux.
    return Measured(int(code), float(wall), int(peak_kib) / 1024, text)


@dataclass(frozen=True)
class Verdict:
    """What one tool said about one file."""

    flagged: bool
    """Reported as dangerous by the tool's own criterion."""
    flagged_medium: bool
    """modelshield only: a finding at the default (medium) threshold."""
    error: bool
    """The tool errored or could not scan the file."""


@dataclass(frozen=True)
class Tool:
    """A scanner under test."""

    name: str
    """Column title."""
    file_cmd: Callable[[str, str], list[str]]
    """Command for one path; the second argument is a scratch file for a JSON report."""
    judge: Callable[[Measured, str], Verdict]
    """Reads a finished run (and the scratch file) into a verdict."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Environment variables the tool's process gets on top of ours."""


def modelshield_command() -> list[str]:
    """modelshield's console script as users install it (``.venv-user``, which ``make bench``
    builds with ``pip install '.[archives]'``, as the other scanners have ``.venv-bench``),
    else this interpreter's script, else ``python -m modelshield``."""
    for script in (
        REPO / ".venv-user" / "bin" / "modelshield",
        Path(sys.executable).with_name("modelshield"),
    ):
        if script.is_file():
            return [str(script)]
    return [sys.executable, "-m", "modelshield"]


def modelshield_tool() -> Tool:
    """modelshield's own command line (see :func:`modelshield_command`)."""
    base = modelshield_command()

    def cmd(path: str, scratch: str) -> list[str]:
        return [*base, "scan", "-f", "json", "-o", scratch, path]

    def judge(run: Measured, scratch: str) -> Verdict:
        try:
            document = json.loads(Path(scratch).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return Verdict(False, False, True)
        worst = document["summary"]["max_severity"]
        rank = -1 if worst is None else SEVERITIES.index(worst)
        return Verdict(
            rank >= SEVERITIES.index("high"), rank >= SEVERITIES.index("medium"), run.code == 2
        )

    return Tool(f"modelshield {_own_version()}", cmd, judge)


def picklescan_tool(bindir: Path) -> Tool:
    """picklescan's command line."""

    def cmd(path: str, scratch: str) -> list[str]:
        return [str(bindir / "picklescan"), "-p", path]

    def judge(run: Measured, scratch: str) -> Verdict:
        flagged = run.code == 1 or "dangerous import" in run.output
        return Verdict(flagged, flagged, run.code not in (0, 1))

    return Tool(f"picklescan {_version(bindir, 'picklescan')}", cmd, judge)


def modelscan_tool(bindir: Path) -> Tool:
    """modelscan's command line with its JSON report."""

    def cmd(path: str, scratch: str) -> list[str]:
        return [str(bindir / "modelscan"), "-p", path, "-r", "json", "-o", scratch]

    def judge(run: Measured, scratch: str) -> Verdict:
        try:
            document = json.loads(Path(scratch).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return Verdict(False, False, True)
        flagged = bool(document.get("issues"))
        return Verdict(flagged, flagged, bool(document.get("errors")) or run.code not in (0, 1))

    return Tool(f"modelscan {_version(bindir, 'modelscan')}", cmd, judge)


#: ModelAudit's severities that make it exit 1 (``info`` and ``debug`` do not).
MODELAUDIT_FLAGGING = frozenset({"warning", "critical"})


def modelaudit_tool(bindir: Path) -> Tool:
    """ModelAudit's command line with its JSON report.

    Its result cache is turned off (``--no-cache``), or the best-of-N timings would time a cache
    lookup; its telemetry is turned off through the variable it documents
    (``PROMPTFOO_DISABLE_TELEMETRY``). It exits 0 clean, 1 for issues at ``warning`` or
    ``critical``, 2 for errors or an inconclusive scan; the issues are read from the report, so
    that a file flagged and also erroring counts as flagged.
    """

    def cmd(path: str, scratch: str) -> list[str]:
        base = [str(bindir / "modelaudit"), "scan", "--no-cache", "--quiet"]
        return [*base, "--format", "json", "--output", scratch, path]

    def judge(run: Measured, scratch: str) -> Verdict:
        try:
            document = json.loads(Path(scratch).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return Verdict(False, False, True)
        issues = document.get("issues") or []
        flagged = run.code == 1 or any(i.get("severity") in MODELAUDIT_FLAGGING for i in issues)
        error = bool(document.get("has_errors")) or run.code not in (0, 1)
        return Verdict(flagged, flagged, error)

    env = {"PROMPTFOO_DISABLE_TELEMETRY": "1", "NO_ANALYTICS": "1"}
    return Tool(f"ModelAudit {_version(bindir, 'modelaudit')}", cmd, judge, env)


def _own_version() -> str:
    from modelshield import __version__

    return __version__


def _version(bindir: Path, dist: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    proc = subprocess.run(
        [str(bindir / "python"), "-c", code], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or "?"


def run_one(tool: Tool, path: str) -> tuple[Measured, Verdict]:
    """Scan one path with one tool."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = str(Path(tmp) / "report.json")
        run = measure(tool.file_cmd(path, scratch), timeout=120, extra_env=tool.env)
        return run, tool.judge(run, scratch)


@dataclass
class Column:
    """Figures for one tool."""

    title: str
    cells: dict[str, str]


def corpus_rows() -> list[dict[str, Any]]:
    """The manifest rows of the corpus."""
    lines = (CORPUS / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def detection(tool: Tool, rows: list[dict[str, Any]], jobs: int) -> dict[str, str]:
    """Per-file runs over the corpus: flagged counts, errors and per-file times."""
    paths = [str(CORPUS / r["file"]) for r in rows]
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(lambda p: run_one(tool, p), paths))
    mal = [res for res, r in zip(results, rows, strict=True) if r["label"] == "malicious"]
    ben = [res for res, r in zip(results, rows, strict=True) if r["label"] == "benign"]
    code_exec = [
        res
        for res, r in zip(results, rows, strict=True)
        if r["label"] == "malicious" and r.get("category") not in CODE_EXEC_EXCLUDED
    ]
    walls = [run.wall_s for run, _ in results]

    def count(items: list[tuple[Measured, Verdict]], medium: bool = False) -> int:
        return sum(1 for _, v in items if (v.flagged_medium if medium else v.flagged))

    cells = {
        "malicious": f"{count(mal)}/{len(mal)}",
        "benign": f"{count(ben)}/{len(ben)}",
        "code_exec": f"{count(code_exec)}/{len(code_exec)}",
        "errors": str(sum(1 for _, v in results if v.error)),
        "file_median": f"{statistics.median(walls):.2f}",
        "file_peak": f"{max(run.peak_mb for run, _ in results):.0f}",
    }
    if tool.name.startswith("modelshield"):
        cells["malicious_medium"] = f"{count(mal, True)}/{len(mal)}"
        cells["benign_medium"] = f"{count(ben, True)}/{len(ben)}"
        cells["code_exec_medium"] = f"{count(code_exec, True)}/{len(code_exec)}"
    return cells


#: Invocations per timed cell; the best wall time is shown (the machine's noise is large).
ROUNDS = 3


def timed(tool: Tool, path: Path, prefix: str) -> dict[str, str]:
    """Invocations on ``path``: the best wall seconds of ``ROUNDS``, and the peak memory."""
    runs = [run_one(tool, str(path)) for _ in range(ROUNDS)]
    run, verdict = min(runs, key=lambda rv: rv[0].wall_s)
    peak = max(r.peak_mb for r, _ in runs)
    flag = " (flagged)" if verdict.flagged else ""
    return {f"{prefix}_wall": f"{run.wall_s:.2f}{flag}", f"{prefix}_peak": f"{peak:.0f}"}


def checkpoint(size_mb: int) -> Path:
    """A torch zip checkpoint of about ``size_mb`` MiB of float32 zeros (made once)."""
    path = OUT / f"checkpoint_{size_mb}mb.pt"
    if not path.is_file():
        OUT.mkdir(exist_ok=True)
        print(f"generating {path.name} (once; reused by later runs)...", flush=True)
        partial = path.with_suffix(".partial")
        subprocess.run(
            [sys.executable, "-c", _MAKE_CHECKPOINT, str(partial), str(size_mb)], check=True
        )
        partial.replace(path)
    return path


ROWS = [
    ("malicious", "malicious flagged (per file)"),
    ("malicious_medium", "  same, modelshield at medium"),
    ("code_exec", "code-exec subset flagged"),
    ("code_exec_medium", "  same, modelshield at medium"),
    ("benign", "benign flagged (false alarms)"),
    ("benign_medium", "  same, modelshield at medium"),
    ("errors", "errors (per file)"),
    ("file_median", "per file: median wall s"),
    ("file_peak", "per file: max peak MiB"),
    ("corpus_wall", "whole corpus, 1 process: wall s"),
    ("corpus_peak", "whole corpus, 1 process: peak MiB"),
    ("small_wall", "small checkpoint: wall s"),
    ("small_peak", "small checkpoint: peak MiB"),
    ("large_wall", "large checkpoint: wall s"),
    ("large_peak", "large checkpoint: peak MiB"),
    ("config_malicious", "config set: malicious flagged"),
    ("config_malicious_medium", "  same, modelshield at medium"),
    ("config_benign", "config set: benign flagged"),
]


def table(columns: list[Column], labels: dict[str, str]) -> str:
    """A plain-text table, one row per figure and one column per tool."""
    keys = [k for k, _ in ROWS if any(k in c.cells for c in columns)]
    first = max(len(labels.get(k, k)) for k in keys)
    widths = [max(len(c.title), *(len(c.cells.get(k, "-")) for k in keys)) for c in columns]
    head = (
        " " * first
        + "  "
        + "  ".join(c.title.rjust(w) for c, w in zip(columns, widths, strict=True))
    )
    lines = [head, "-" * len(head)]
    for key in keys:
        cells = "  ".join(
            c.cells.get(key, "-").rjust(w) for c, w in zip(columns, widths, strict=True)
        )
        lines.append(labels.get(key, key).ljust(first) + "  " + cells)
    return "\n".join(lines)


def all_tools(bindir: Path) -> list[Tool]:
    """modelshield, and the other scanners installed in ``bindir``."""
    tools = [modelshield_tool()]
    if (bindir / "python").exists():
        tools += [picklescan_tool(bindir), modelscan_tool(bindir)]
        if (bindir / "modelaudit").exists():
            tools.append(modelaudit_tool(bindir))
    return tools


def config_detection(tool: Tool, jobs: int) -> dict[str, str]:
    """Per-file runs over the configuration set (``config_samples.py``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import config_samples

    samples = config_samples.build(OUT / "config")
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        verdicts = [v for _, v in pool.map(lambda s: run_one(tool, str(s[0])), samples)]
    mal = [v for v, (_, label) in zip(verdicts, samples, strict=True) if label == "malicious"]
    ben = [v for v, (_, label) in zip(verdicts, samples, strict=True) if label == "benign"]
    cells = {
        "config_malicious": f"{sum(v.flagged for v in mal)}/{len(mal)}",
        "config_benign": f"{sum(v.flagged for v in ben)}/{len(ben)}",
    }
    if tool.name.startswith("modelshield"):
        cells["config_malicious_medium"] = f"{sum(v.flagged_medium for v in mal)}/{len(mal)}"
    return cells


def repository_table(tools: list[Tool], jobs: int) -> str:
    """Every tool on every case of ``repo_cases.py``: one row per case, one column per tool,
    then how many malicious and benign cases each tool flagged."""
    import shutil

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from repo_cases import build_all

    root = OUT / "repos"
    shutil.rmtree(root, ignore_errors=True)
    cases = build_all(root)
    cells: dict[tuple[str, str], str] = {}
    counts = {t.name: {"malicious": 0, "benign": 0} for t in tools}
    for tool in tools:
        print(f"  repository cases: {tool.name}...", flush=True)
        paths = [str(path) for _, path in cases]
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            runs = list(pool.map(run_one, [tool] * len(paths), paths))
        verdicts = [verdict for _, verdict in runs]
        for (case, _), verdict in zip(cases, verdicts, strict=True):
            if verdict.error and not verdict.flagged:
                cell = "error"
            elif verdict.flagged:
                cell = "flagged"
            elif verdict.flagged_medium and tool.name.startswith("modelshield"):
                cell = "medium"
            else:
                cell = "-"
            cells[(case.name, tool.name)] = cell
            counts[tool.name][case.label] += verdict.flagged
    malicious = sum(1 for case, _ in cases if case.label == "malicious")
    benign = len(cases) - malicious
    first = max(len(case.name) + len(case.label) + 3 for case, _ in cases)
    widths = [max(len(t.name), 7) for t in tools]
    head = (
        " " * first + "  " + "  ".join(t.name.rjust(w) for t, w in zip(tools, widths, strict=True))
    )
    lines = [head, "-" * len(head)]
    for case, _ in cases:
        title = f"{case.name} ({case.label})"
        row = "  ".join(
            cells[(case.name, t.name)].rjust(w) for t, w in zip(tools, widths, strict=True)
        )
        lines.append(title.ljust(first) + "  " + row)
    for label, total in (("malicious", malicious), ("benign", benign)):
        row = "  ".join(
            f"{counts[t.name][label]}/{total}".rjust(w) for t, w in zip(tools, widths, strict=True)
        )
        lines.append(f"{label} flagged".ljust(first) + "  " + row)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(
        description="modelshield vs picklescan vs modelscan vs ModelAudit"
    )
    parser.add_argument("--tools-bin", type=Path, default=REPO / ".venv-bench" / "bin")
    parser.add_argument("--quick", action="store_true", help="skip the per-file corpus runs")
    parser.add_argument("--small-mb", type=int, default=200)
    parser.add_argument("--large-mb", type=int, default=2048)
    parser.add_argument("--no-checkpoints", action="store_true")
    parser.add_argument("--no-config", action="store_true", help="skip the configuration set")
    parser.add_argument(
        "--delete-checkpoints", action="store_true", help="remove bench-out/ checkpoints after"
    )
    parser.add_argument("--no-repos", action="store_true", help="skip the repository cases")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)

    tools = all_tools(args.tools_bin)
    if len(tools) == 1:
        print(f"note: no other scanners in {args.tools_bin} (make bench installs them)")
    columns = [Column(t.name, {}) for t in tools]
    labels = dict(ROWS)

    python = platform.python_version()
    print(f"platform: {platform.platform()}, {os.cpu_count()} CPUs, Python {python}")
    if (CORPUS / "manifest.jsonl").is_file():
        rows = corpus_rows()
        mal = sum(1 for r in rows if r["label"] == "malicious")
        print(f"corpus: {CORPUS} ({len(rows)} files: {mal} malicious, {len(rows) - mal} benign)")
        for tool, column in zip(tools, columns, strict=True):
            if not args.quick:
                print(f"  per-file runs: {tool.name}...", flush=True)
                column.cells.update(detection(tool, rows, args.jobs))
            column.cells.update(timed(tool, CORPUS / "files", "corpus"))
    else:
        print(f"corpus not found at {CORPUS}: detection rows skipped")

    if not args.no_checkpoints:
        small, large = checkpoint(args.small_mb), checkpoint(args.large_mb)
        labels["small_wall"] = f"{small.stat().st_size / 2**20:.0f} MiB checkpoint: wall s"
        labels["small_peak"] = f"{small.stat().st_size / 2**20:.0f} MiB checkpoint: peak MiB"
        labels["large_wall"] = f"{large.stat().st_size / 2**20:.0f} MiB checkpoint: wall s"
        labels["large_peak"] = f"{large.stat().st_size / 2**20:.0f} MiB checkpoint: peak MiB"
        for tool, column in zip(tools, columns, strict=True):
            column.cells.update(timed(tool, small, "small"))
            column.cells.update(timed(tool, large, "large"))
        if args.delete_checkpoints:
            small.unlink()
            large.unlink()

    if not args.no_config:
        print("configuration set: per-file runs...", flush=True)
        for tool, column in zip(tools, columns, strict=True):
            column.cells.update(config_detection(tool, args.jobs))
    repositories = None if args.no_repos else repository_table(tools, args.jobs)

    print()
    print(table(columns, labels))
    print()
    if repositories is not None:
        print("Model folders and loader-run files (repo_cases.py), one process per case:")
        print(repositories)
        print()
    print(
        "flagged: modelshield = a finding at high or above (rows marked 'at medium': the "
        "default threshold); picklescan = exit 1 or a dangerous global; modelscan = any issue; "
        "ModelAudit = an issue at warning or critical. "
        "Times include interpreter start-up; whole-corpus and checkpoint times are the best "
        f"of {ROUNDS} runs."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
