"""Dependency audit speed: ``modelshield audit`` vs pip-audit on the same requirements file.

Usage::

    python bench/bench_audit.py [--advisories ../shared/advisories] [--packages 60] [--repeat 9]

Both tools audit one pinned requirements file built from the PyPA advisory snapshot (one
vulnerable version of each of the first N packages, plus the ML stack). Nothing leaves the
machine: pip-audit (``-s osv --osv-url``) and ``modelshield audit --osv-url`` query a local OSV
API served on 127.0.0.1 from the same snapshot; ``modelshield audit --db`` reads the snapshot
directly. Figures are wall-clock seconds of the whole command (interpreter start included), as
users run them: each tool's console script, each installed in its own virtual environment
with its own dependencies (modelshield in ``.venv-user``, pip-audit in ``.venv-bench``; the
audit from the development venv, whose test libraries make imports slower, is shown beside
it). Every command runs in an empty folder. Each figure is the best of ``--repeat`` rounds, and
every round runs each command once, so that a machine that gets busier or quieter during the
benchmark affects every tool alike. "cold" is an offline run that compiles the database index
(best of three, each with an empty cache).

pip-audit comes from ``$PIP_AUDIT``, else ``.venv-bench/bin/pip-audit`` (``make bench``
installs it there), else ``PATH``; without it, its rows are skipped with a message. The goals:
the offline audit at least 10x faster than pip-audit, the cached offline audit under
:data:`WARM_GOAL` seconds and the first (index-compiling) one under :data:`COLD_GOAL` seconds on
two cores; ``--packages 5`` gives the 13-pin file those were set on.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-out"
GOAL = 10.0
WARM_GOAL = 0.2
COLD_GOAL = 1.5
COLD_ROUNDS = 3
ML_STACK = ("tensorflow", "numpy", "scikit-learn", "torch", "joblib", "onnx", "mlflow", "pillow")

sys.path.insert(0, str(REPO))


def build_requirements(vulns: Path, count: int, path: Path) -> int:
    """Pin one listed (affected) version of each chosen package; return how many were pinned."""
    folders = sorted(p for p in vulns.iterdir() if p.is_dir())
    chosen = [f for f in folders if f.name in ML_STACK] + [
        f for f in folders if f.name not in ML_STACK
    ][:count]
    lines = []
    for folder in chosen:
        first = sorted(folder.glob("*.yaml"))[0]
        doc = yaml.load(first.read_bytes(), Loader=yaml.CBaseLoader)
        for entry in doc.get("affected", []):
            valid = []
            for v in entry.get("versions", []):
                try:
                    valid.append(Version(v))
                except InvalidVersion:
                    continue
            if valid:
                lines.append(f"{folder.name}=={max(valid)}")
                break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def timed(
    cmd: list[str], env: dict[str, str], cwd: Path | None = None
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall seconds, CPU seconds, and the result of one run.

    CPU is the command's user+sys time plus this process's (the local OSV server runs here), so
    that a shared, busy machine does not blur the comparison as much as wall time does.
    """
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    wall = time.perf_counter() - started
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(
        (b.ru_utime - a.ru_utime) + (b.ru_stime - a.ru_stime)
        for a, b in ((self0, self1), (child0, child1))
    )
    return wall, cpu, proc


def interleaved(
    commands: dict[str, tuple[list[str], dict[str, str]]], repeat: int, cwd: Path
) -> dict[str, tuple[float, float, subprocess.CompletedProcess[str]]]:
    """Per command, the fastest wall time and the lowest CPU time of ``repeat`` rounds.

    A round runs every command once, in turn: on a shared machine whose load drifts, running
    one tool's repeats after the other's would favour whichever ran in the quieter minute.
    """
    runs: dict[str, list[tuple[float, float, subprocess.CompletedProcess[str]]]] = {
        name: [] for name in commands
    }
    for _ in range(repeat):
        for name, (cmd, env) in commands.items():
            runs[name].append(timed(cmd, env, cwd))
    return {
        name: (min(r[0] for r in rs), min(r[1] for r in rs), rs[-1][2]) for name, rs in runs.items()
    }


def modelshield_command() -> list[str]:
    """The ``modelshield`` console script of this interpreter's environment (the development
    one, with the test libraries); ``python -m modelshield`` without one."""
    script = Path(sys.executable).with_name("modelshield")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "modelshield"]


def user_install() -> list[str] | None:
    """modelshield as users install it: ``$MODELSHIELD_USER_BIN``, else the script of
    ``.venv-user`` (``make bench`` runs ``pip install '.[archives]'`` there: modelshield's own
    dependencies only, like pip-audit in ``.venv-bench``); None when there is neither."""
    explicit = os.environ.get("MODELSHIELD_USER_BIN")
    script = Path(explicit) if explicit else REPO / ".venv-user" / "bin" / "modelshield"
    return [str(script)] if script.is_file() else None


def find_pip_audit() -> str | None:
    explicit = os.environ.get("PIP_AUDIT")
    if explicit:
        return explicit
    local = REPO / ".venv-bench" / "bin" / "pip-audit"
    if local.is_file():
        return str(local)
    return shutil.which("pip-audit")


def modelshield_count(proc: subprocess.CompletedProcess[str]) -> int:
    doc = json.loads(proc.stdout)
    return sum(
        1
        for r in doc["results"]
        for f in r["findings"]
        if f["rule_id"] == "AUDIT-VULNERABLE-DEPENDENCY"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--advisories", type=Path, default=REPO.parent / "shared" / "advisories")
    parser.add_argument("--packages", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args(argv)
    vulns = args.advisories.resolve() / "pypa" / "vulns"
    if not vulns.is_dir():
        print(f"advisory snapshot not found at {args.advisories}; skipped")
        return 0
    from tests.audit.osv_server import serve

    req = OUT / "audit" / "requirements.txt"
    pinned = build_requirements(vulns, args.packages, req)
    print(f"requirements file: {req} ({pinned} pinned packages)")
    work = Path(tempfile.mkdtemp(prefix="bench-audit-", dir=OUT))
    env = {**os.environ, "MODELSHIELD_CACHE_DIR": str(work / "ms-cache"), "NO_COLOR": "1"}
    dev = [*modelshield_command(), "audit", "--format", "json"]
    user = user_install()
    ms = dev if user is None else [*user, "audit", "--format", "json"]
    offline = [*ms, "--db", str(vulns.parent), str(req)]
    rows: list[tuple[str, float, float, str]] = []

    # Every command runs in an empty folder, as in a fresh project: no policy file to read.
    # The cold run is repeated with an empty cache each time (best of COLD_ROUNDS), as the
    # others are, so that a busy shared machine blurs it less; the last cache stays warm.
    colds = []
    for i in range(COLD_ROUNDS):
        cache = {**env, "MODELSHIELD_CACHE_DIR": str(work / f"ms-cache-{i}")}
        colds.append(timed(offline, cache, work))
    env["MODELSHIELD_CACHE_DIR"] = str(work / f"ms-cache-{COLD_ROUNDS - 1}")
    cold, cold_cpu = min(c[0] for c in colds), min(c[1] for c in colds)
    proc = colds[-1][2]
    if proc.returncode not in (0, 1):
        print(proc.stderr)
        return 1
    found = str(modelshield_count(proc))
    rows.append(("modelshield audit --db (cold: compiles the index)", cold, cold_cpu, found))

    pip_audit = find_pip_audit()
    pa: tuple[float, float] | None = None
    with serve(vulns) as server:
        online_env = {**env, "MODELSHIELD_CACHE_DIR": str(work / "ms-online")}
        api = [*ms, "--osv-url", server.url, "--no-cache", str(req)]
        commands = {"offline": (offline, env)}
        if user is not None:
            # The same audit from the development environment (test libraries installed).
            commands["offline-dev"] = ([*dev, "--db", str(vulns.parent), str(req)], env)
        if pip_audit is None:
            print("pip-audit not found (set $PIP_AUDIT or run `make bench`); its rows are skipped")
        else:
            cmd = [
                pip_audit, "-r", str(req), "--no-deps", "--disable-pip", "-s", "osv",
                "--osv-url", f"{server.url}/v1/query", "--cache-dir", str(work / "pa-cache"),
                "-f", "json", "--progress-spinner", "off",
            ]  # fmt: skip
            commands["pip-audit"] = (cmd, env)
        commands["api"] = (api, online_env)
        results = interleaved(commands, args.repeat, work)
    warm, warm_cpu, _ = results["offline"]
    rows.append(("modelshield audit --db (index cached)", warm, warm_cpu, found))
    if "offline-dev" in results:
        wall, cpu, _ = results["offline-dev"]
        rows.append(("  same, from the development venv", wall, cpu, found))
    wall, cpu, _ = results["api"]
    rows.append(("modelshield audit --osv-url local (no cache)", wall, cpu, found))
    if "pip-audit" in results:
        wall, cpu, proc = results["pip-audit"]
        if proc.returncode not in (0, 1):
            print(f"pip-audit failed ({proc.returncode}): {proc.stderr[-500:]}")
        else:
            deps = json.loads(proc.stdout)["dependencies"]
            ids = sum(len(d.get("vulns", [])) for d in deps)
            rows.append(("pip-audit -s osv --osv-url local", wall, cpu, f"{ids} ids"))
            pa = (wall, cpu)
    shutil.rmtree(work, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(f"{'tool':<{width}}  {'wall s':>7}  {'cpu s':>7}  findings")
    for name, wall, cpu, found in rows:
        print(f"{name:<{width}}  {wall:7.3f}  {cpu:7.3f}  {found}")
    if pa is not None:
        for label, ours, theirs in (("wall", warm, pa[0]), ("cpu", warm_cpu, pa[1])):
            ratio = theirs / ours
            verdict = "meets" if ratio >= GOAL else "misses"
            print(
                f"speed-up ({label}), offline modelshield vs pip-audit: {ratio:.1f}x "
                f"({verdict} the {GOAL:.0f}x goal)"
            )
    for label, seconds, goal in (("cached", warm, WARM_GOAL), ("cold", cold, COLD_GOAL)):
        verdict = "meets" if seconds < goal else "misses"
        print(f"offline audit, {label}: {seconds:.3f} s wall ({verdict} the {goal:g} s goal)")
    if user is None:
        print("modelshield ran from the development venv (`make bench` builds .venv-user).")
    else:
        print(f"modelshield ran as users install it: {user[0]}")
    print(f"best of {args.repeat} interleaved rounds (wall and CPU seconds of each command).")
    print("modelshield counts merged findings (aliases joined); pip-audit counts advisory ids.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
