"""The guard's overhead: the same tabular model served bare and behind the guard, in one run.

Usage::

    python bench/bench_guard.py                     # 8 s of throughput per server, 4 rounds
    python bench/bench_guard.py --seconds 16 --rounds 8 --rate 400 --connections 8
    python bench/bench_guard.py --in-process        # the engine alone, µs per request

A scikit-learn logistic regression on 10 numeric features is saved with joblib under
``bench-out/guard/``. Two servers run side by side on loopback, each in its own process
(uvicorn, one worker): the bare server (the same model adapter, KServe v1 JSON, no screening,
no log) and ``modelshield guard serve`` with every check on (schema, OOD, adversarial with 8
perturbations, rate limit set high enough never to refuse, extraction), tokens, and the
SQLite decision log. The one not under test is stopped (SIGSTOP, its log writer too), so
that neither runs its deferred work in the other's time. For each:

1. **throughput**: a closed loop of ``--connections`` keep-alive connections (requests per
   second), and the server process's CPU time per request (from ``/proc``: steadier than the
   rate on a shared machine, where other work takes the cores from one server and not the
   other). The ``--seconds`` of each server are split into ``--rounds`` runs that alternate
   between the servers, bare first then guarded first (A B B A ...), so that a machine whose
   speed drifts during the bench charges both alike; the ratio of each adjacent pair is
   printed too;
2. **latency**: an open loop at a constant ``--rate`` (the same for both servers), each
   request's latency measured from the time it was *scheduled*, so that a stalled server is
   charged for the requests that waited (no coordinated omission); p50 and p99.

The load generator is Python (asyncio, raw HTTP/1.1 on pre-built requests), on the same
cores as the server (Debian's ``wrk`` is used for the throughput phase instead when it is on
the PATH). At the end the guard is stopped with SIGTERM (it flushes its log) and the decision
records are counted against the requests it answered. Goals (2-core machine): the guard
adds at most 0.3 ms at p50 and 2 ms at p99, keeps at least 70% of bare throughput, and every
request is in the log. Figures only: nothing passes or fails.

``--in-process`` leaves HTTP out: it builds the same guard in this process (every check on,
the SQLite log), calls ``Guard.process`` on each of the 3,000 live rows (``--repeat`` passes)
and prints, per request, the request path's wall time and the CPU time of the whole process,
decision log writer (its process) included (the best and the median pass: the machine may be
shared).
``--dump FILE`` also writes the decision records of the first pass (status, decision,
reasons, scores, prediction, features) as JSON lines, the same seeds every run, to check that
a change to the engine leaves its answers as they were.

``--kernels`` times each arithmetic kernel (``modelshield.guard._kernels``) on the live
rows, compiled (when ``make dev`` built it) and as plain Python. Every mode says which form
the guard ran.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-out" / "guard"
FEATURES = [f"x{i}" for i in range(10)]
CHECKS = ("rate", "schema", "ood", "adversarial", "extraction")
TOKEN = "bench-predict-token-000001"
READ = "bench-read-token-00000001"
ADMIN = "bench-admin-token-0000001"

BARE = """
import gc, sys, uvicorn
from modelshield.core.policy import Policy
gc.set_threshold(50_000, 10, 10)  # as the modelshield command (the guard) sets it
from modelshield.guard.app import bare_app
from modelshield.guard.predictors import HostedPredictor
names = sys.argv[3].split(",")
predictor = HostedPredictor.open(sys.argv[1], Policy(), names, True)
uvicorn.run(bare_app(predictor, names, sys.argv[4] == "phases"), host="127.0.0.1",
            port=int(sys.argv[2]),
            log_level="warning", access_log=False)
"""


SWITCHING = """
import gc, signal, sys, msgspec, uvicorn
from modelshield.core.policy import Policy
from modelshield.guard import build_app, build_guard
gc.set_threshold(50_000, 10, 10)  # as the modelshield command sets it
model, reference, policy, db, spool, tokens, port = sys.argv[1:8]
guard = build_guard(reference, Policy.from_file(policy), model=model, db=db, spool=spool)
base = guard.settings
variants = [v.split(",") if v else [] for v in sys.argv[8].split(";")]
at = 0

def switch(*_):
    global at
    at = (at + 1) % len(variants)
    guard.settings = msgspec.structs.replace(
        base,
        **{c: msgspec.structs.replace(getattr(base, c), enabled=False) for c in variants[at]},
    )

signal.signal(signal.SIGUSR2, switch)
uvicorn.run(build_app(guard, tokens), host="127.0.0.1", port=int(port), access_log=False,
            log_level="warning")
"""
"""``guard serve`` as the command runs it, whose checks a signal switches off in turn: the
variants (``;``-separated lists of the checks switched off, the first in force at start)."""


def build() -> tuple[Path, Path, list[dict[str, float]]]:
    import joblib
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    OUT.mkdir(parents=True, exist_ok=True)
    x, y = make_classification(n_samples=6000, n_features=10, n_informative=6, random_state=0)
    model = OUT / "model.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(x[:3000], y[:3000]), model)
    ref = pd.DataFrame(x[:3000], columns=FEATURES)
    reference = OUT / "reference.csv"
    ref.to_csv(reference, index=False)
    live = pd.DataFrame(x[3000:], columns=FEATURES).to_dict("records")
    return model, reference, live


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(port: int, proc: subprocess.Popen[bytes], path: str = "/healthz") -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def requests_for(live: list[dict[str, float]], port: int, token: str | None) -> list[bytes]:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    out = []
    for row in live:
        body = json.dumps({"instances": [row]}).encode()
        head = (
            f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> int:
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def closed_loop(port: int, reqs: list[bytes], connections: int, seconds: float) -> Any:
    stop = time.perf_counter() + seconds
    counts = [0] * connections
    statuses: dict[int, int] = {}

    async def worker(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k
        while time.perf_counter() < stop:
            status = await _exchange(reader, writer, reqs[i % len(reqs)])
            statuses[status] = statuses.get(status, 0) + 1
            counts[k] += 1
            i += connections
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(connections)))
    elapsed = time.perf_counter() - start
    return sum(counts) / elapsed, sum(counts), statuses


async def open_loop(
    port: int, reqs: list[bytes], connections: int, rate: float, seconds: float
) -> Any:
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    n = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = 0.0  # set once every request's task exists (making them takes time)

    async def one(i: int) -> None:
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        conn = await pool.get()
        status = await _exchange(*conn, reqs[i % len(reqs)])
        latencies.append(time.perf_counter() - scheduled)
        statuses[status] = statuses.get(status, 0) + 1
        pool.put_nowait(conn)

    tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
    start = time.perf_counter() + 0.05
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait()[1].close()
    latencies.sort()
    return latencies, n, statuses


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


WRK_BODIES = 500
"""Live rows the wrk script cycles through (one repeated body would be screened as a client
probing the model: the extraction check flags a client that repeats its query)."""


def wrk_throughput(
    port: int, bodies: list[bytes], token: str | None, connections: int, seconds: float
) -> Any:
    script = OUT / "post.lua"
    headers = '["Content-Type"] = "application/json"'
    if token:
        headers += f', ["Authorization"] = "Bearer {token}"'
    table = ",\n".join(json.dumps(b.decode()) for b in bodies)
    script.write_text(
        f"local bodies = {{\n{table}\n}}\nlocal headers = {{{headers}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #bodies + 1\n"
        '  return wrk.format("POST", nil, headers, bodies[i])\nend\n'
    )
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/predict",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = int(next(line for line in out.splitlines() if "requests in" in line).split()[0])
    rps = float(
        next(line for line in out.splitlines() if line.startswith("Requests/sec")).split()[1]
    )
    return rps, total, {}


def children(pid: int) -> list[int]:
    """The process's child processes (the guard's decision log writer), from /proc."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out.extend(int(c) for c in (task / "children").read_text().split())
    return out


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far, from /proc (None elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """One server under test: its process, port, token and pre-built requests."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], port: int, token: str | None):
        self.name, self.proc, self.port, self.token = name, proc, port, token
        self.reqs: list[bytes] = []


def hold(server: Server, stopped: bool) -> None:
    """Stop (SIGSTOP) or continue a server and its child processes (the guard's log writer):
    the one not under test must not run its deferred work (the guard's window counts, drift
    checks and log writes) in the other's time, which would charge the other with it."""
    for pid in [server.proc.pid, *children(server.proc.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP if stopped else signal.SIGCONT)


def alone(server: Server, other: Server) -> None:
    """``server`` runs, ``other`` is stopped."""
    hold(other, True)
    hold(server, False)


def warm(server: Server) -> None:
    """The first requests pay for lazy imports and caches."""
    asyncio.run(closed_loop(server.port, server.reqs, 2, 1.0))


def throughput(server: Server, args: argparse.Namespace, live: Any, seconds: int) -> dict[str, Any]:
    """One closed-loop run of ``seconds``: requests/s, requests, statuses and the CPU time of
    the server process and of its children (the decision log writer)."""
    pid = server.proc.pid
    cpu0 = cpu_seconds(pid)
    kids = children(pid)
    kid0 = sum(cpu_seconds(k) or 0.0 for k in kids)
    if shutil.which("wrk"):
        rps, sent, statuses = wrk_throughput(
            server.port,
            [json.dumps({"instances": [row]}).encode() for row in live[:WRK_BODIES]],
            server.token,
            args.connections,
            seconds,
        )
        tool = "wrk"
    else:
        rps, sent, statuses = asyncio.run(
            closed_loop(server.port, server.reqs, args.connections, seconds)
        )
        tool = "python"
    time.sleep(0.2)  # the last answers' bookkeeping
    cpu1 = cpu_seconds(pid)
    kid1 = sum(cpu_seconds(k) or 0.0 for k in kids)
    return {
        "rps": rps,
        "sent": sent,
        "statuses": statuses,
        "tool": tool,
        "cpu": None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
        "writer": kid1 - kid0,
    }


def latency(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """p50 and p99 (ms) of an open loop at ``--rate``, after a second of it not counted (the
    load generator's own first pass is charged to neither server)."""
    asyncio.run(open_loop(server.port, server.reqs, args.connections, args.rate, 1.0))
    latencies, _n, statuses = asyncio.run(
        open_loop(server.port, server.reqs, args.connections, args.rate, args.seconds)
    )
    return {"p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99), "statuses": statuses}


def summarise(runs: list[dict[str, Any]], lat: dict[str, Any]) -> dict[str, Any]:
    """The throughput runs of one server (equal durations) and its latency, together."""
    sent = sum(r["sent"] for r in runs)
    cpus = [r["cpu"] for r in runs]
    statuses: dict[int, int] = {}
    for part in [*(r["statuses"] for r in runs), lat["statuses"]]:
        for k, v in part.items():
            statuses[k] = statuses.get(k, 0) + v
    return {
        "rps": sum(r["rps"] for r in runs) / len(runs),
        "cpu_us": None if None in cpus else sum(cpus) / sent * 1e6,
        "writer_us": sum(r["writer"] for r in runs) / sent * 1e6,
        "tool": runs[0]["tool"],
        "p50": lat["p50"],
        "p99": lat["p99"],
        "statuses": statuses,
    }


def guard_files(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """The tokens and policy files of the guarded server, and its fresh decision log."""
    tokens = OUT / "tokens.toml"
    tokens.write_text(
        f'[predict]\nbench = "{TOKEN}"\n[read]\nr = "{READ}"\n[admin]\na = "{ADMIN}"\n'
    )
    policy = OUT / "policy.toml"
    text = f'[guard]\nlog_writer = "{args.log_writer}"\nphases = {str(args.phases).lower()}\n'
    text += "[guard.rate]\nper_second = 1e9\nburst = 1000000000\n"
    text += "" if "rate" in args.on else "enabled = false\n"
    text += "".join(
        f"[guard.{c}]\nenabled = false\n" for c in CHECKS if c != "rate" and c not in args.on
    )
    policy.write_text(text)
    db = OUT / "guard.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return tokens, policy, db


def per_check(args: argparse.Namespace) -> int:
    """One guard under load, its checks switched off in turn (each alone, then all): the
    server's CPU per request in each variant, over windows that alternate between them."""
    import threading

    model, reference, live = build()
    tokens, policy, db = guard_files(args)
    on = [c for c in CHECKS if c in args.on]
    variants = ["", *on, ",".join(on)]
    names = ["all on", *(f"{c} off" for c in on), "all off"]
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-c", SWITCHING, str(model), str(reference), str(policy)),
            *(str(db), str(OUT / "guard.spool"), str(tokens), str(port), ";".join(variants)),
        ],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stderr=subprocess.DEVNULL,
        cwd=OUT,
    )
    window = args.window
    per: list[list[float]] = [[] for _ in variants]
    try:
        wait_ready(proc=proc, port=port)
        server = Server("guarded", proc, port, TOKEN)
        server.reqs = requests_for(live, port, TOKEN)
        warm(server)
        total = window * len(variants) * args.rounds + 3
        load = threading.Thread(
            target=throughput, args=(server, args, live, int(total) + 1), daemon=True
        )
        load.start()
        time.sleep(1.5)
        for _ in range(args.rounds):
            for v in range(len(variants)):
                if v or per[0]:
                    proc.send_signal(signal.SIGUSR2)
                time.sleep(0.3)  # the switch, and the requests in flight
                cpu0, n0 = cpu_seconds(proc.pid), count_sent(port)
                time.sleep(window - 0.3)
                cpu1, n1 = cpu_seconds(proc.pid), count_sent(port)
                if cpu0 is None or cpu1 is None:
                    raise SystemExit("--per-check reads the server's CPU time from /proc")
                per[v].append((cpu1 - cpu0) / max(1, n1 - n0) * 1e6)
        load.join()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    print(
        f"\nmodelshield guard: the served cost of each check ({args.rounds} rounds of "
        f"{window:g} s windows per variant, alternating, one server under a closed loop of "
        f"{args.connections} connections; server CPU per request, its /metrics reads included)"
    )
    print(f"{'':16}{'mean':>8}{'median':>8}{'min':>8}{'vs all on':>11}")
    means = [sum(p) / len(p) for p in per]
    for name, p, mean in zip(names, per, means, strict=True):
        q = sorted(p)
        print(f"{name:16}{mean:8.0f}{q[len(q) // 2]:8.0f}{q[0]:8.0f}{means[0] - mean:+11.0f}")
    return 0


def count_sent(port: int) -> int:
    """Requests the guard answered, from its own counter (warm-up, wrk and both phases)."""
    import urllib.request

    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {READ}"}
    )
    total = 0.0
    dropped = 0.0
    with urllib.request.urlopen(req, timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("modelshield_guard_requests_total{"):
                total += float(line.rsplit(" ", 1)[1])
            if line.startswith("modelshield_guard_log_dropped_total "):
                dropped = float(line.rsplit(" ", 1)[1])
    return int(total) if not dropped else -int(dropped)


def kernel_timings() -> int:
    """``--kernels``: each arithmetic kernel on the bench's live rows, µs per call, compiled
    (as the package imports it, when ``make dev`` built it) and as plain Python (its source
    run by the interpreter), best of five passes."""
    import importlib.util
    import timeit

    import numpy as np

    from modelshield.core.policy import Policy
    from modelshield.guard import _kernels, build_guard
    from modelshield.guard.engine import KERNELS_COMPILED

    spec = importlib.util.spec_from_file_location(
        "_kernels_plain", Path(_kernels.__file__ or "").with_name("_kernels.py")
    )
    assert spec is not None and spec.loader is not None
    plain = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plain)
    model, reference, live = build()
    policy = OUT / "policy.toml"
    policy.write_text("[guard.adversarial]\nseed = 0\n")
    guard = build_guard(str(reference), Policy.from_file(policy), model=str(model))
    ref = guard.reference
    whitened = ref._whitened
    assert whitened is not None
    xs = [[float(r[f]) for f in FEATURES] for r in live]
    probabilities = guard.predictor.predict([], np.array(xs[:9])).proba.tolist()
    names = list(FEATURES)
    lows, highs, integral = guard._lows, guard._highs, guard._integral
    scale = guard._numeric_scale
    n = len(xs)
    calls: dict[str, Any] = {
        "read_numeric (schema)": lambda k, i: k.read_numeric(
            live[i % n], names, lows, highs, integral
        ),
        "scores_one (OOD)": lambda k, i: k.scores_one(
            xs[i % n], ref._center_list, ref._rscale_list, whitened
        ),
        "instability_one (adversarial)": lambda k, i: k.instability_one(
            probabilities[0], probabilities[1:]
        ),
        "distance (extraction step)": lambda k, i: k.distance(xs[i % n], xs[i % n - 1], scale),
    }
    print(f"arithmetic kernels, µs per call ({kernels()}; plain: the same source interpreted)")
    print(f"{'':32}{'compiled':>10}{'plain':>10}")
    for name, call in calls.items():
        row = []
        for module in (_kernels, plain):
            counter = iter(range(10**9))
            t = timeit.repeat(lambda: call(module, next(counter)), number=20_000, repeat=5)  # noqa: B023
            row.append(min(t) / 20_000 * 1e6)
        compiled = f"{row[0]:10.2f}" if KERNELS_COMPILED else f"{'-':>10}"
        print(f"{name:32}{compiled}{row[1]:10.2f}")
    return 0


def kernels() -> str:
    """How the guard's arithmetic kernels run in this environment (the servers' too)."""
    from modelshield.guard.engine import KERNELS_COMPILED

    return "compiled" if KERNELS_COMPILED else "plain Python (python scripts/build_kernels.py)"


def in_process(args: argparse.Namespace) -> int:
    import tempfile

    from modelshield.core.policy import Policy
    from modelshield.guard import build_guard

    model, reference, live = build()
    policy_file = OUT / "policy.toml"
    # The perturbations seeded (the service's default draws them from the operating system):
    # --dump gives the same records every run.
    policy_file.write_text(
        "[guard.rate]\nper_second = 1e9\nburst = 1000000000\n[guard.adversarial]\nseed = 0\n"
    )
    policy = Policy.from_file(policy_file)
    bodies = [json.dumps({"instances": [row]}).encode() for row in live]
    with tempfile.TemporaryDirectory() as tmp:
        guard = build_guard(
            str(reference),
            policy,
            model=str(model),
            db=f"{tmp}/guard.db",
            spool=f"{tmp}/guard.spool",
            replica="bench",
        )
        log = guard.log
        assert log is not None

        async def run(rounds: int) -> None:
            for _ in range(rounds):
                for body in bodies:
                    await guard.process(body, "bench", time.perf_counter())

        async def passes() -> None:
            # As served: the log's writer process pumped by this event loop (no thread).
            await asyncio.to_thread(log.start, asyncio.get_running_loop())
            await run(1)  # warm-up (and the dumped records)
            await asyncio.to_thread(log.flush)
            for _ in range(args.repeat):
                kid0 = sum(cpu_seconds(k) or 0.0 for k in children(os.getpid()))
                cpu0, wall0 = time.process_time() + kid0, time.perf_counter()
                await run(1)
                walls.append((time.perf_counter() - wall0) / len(bodies) * 1e6)
                await asyncio.to_thread(log.flush)
                kid1 = sum(cpu_seconds(k) or 0.0 for k in children(os.getpid()))
                cpus.append((time.process_time() + kid1 - cpu0) / len(bodies) * 1e6)
            await asyncio.to_thread(log.close)

        walls: list[float] = []
        cpus: list[float] = []
        try:
            import uvloop  # the service's event loop (uvicorn takes it when installed)

            uvloop.run(passes())
        except ImportError:
            asyncio.run(passes())
        if args.dump is not None:
            import sqlalchemy as sa

            from modelshield.guard import store

            engine = store.connect(f"{tmp}/guard.db")
            t = store.decisions
            fields = ("status", "decision", "reasons", "scores", "prediction", "features")
            query = sa.select(*(t.c[k] for k in fields)).order_by(t.c.seq).limit(len(bodies))
            with engine.connect() as conn, Path(args.dump).open("w") as f:
                for row in conn.execute(query):
                    f.write(json.dumps(dict(zip(fields, row, strict=True))) + "\n")
            engine.dispose()
    walls.sort()
    cpus.sort()
    print(
        f"in-process: {args.repeat} passes of {len(bodies)} requests; per request, best "
        f"(median): request path {walls[0]:.0f} ({walls[len(walls) // 2]:.0f}) µs wall, "
        f"{cpus[0]:.0f} ({cpus[len(cpus) // 2]:.0f}) µs CPU with the log writer "
        f"(kernels: {kernels()})"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="throughput time per server (all rounds)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="throughput runs per server, alternating with the other server's",
    )
    parser.add_argument("--rate", type=float, default=300.0, help="open-loop requests/s")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--in-process", action="store_true", help="time Guard.process alone (no HTTP)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="--in-process: passes over the rows")
    parser.add_argument(
        "--per-check",
        action="store_true",
        help="one guard under load, each check switched off in turn: its served cost",
    )
    parser.add_argument(
        "--window", type=float, default=2.0, help="--per-check: seconds per variant and round"
    )
    parser.add_argument("--dump", help="--in-process: write the answers as JSON lines")
    parser.add_argument(
        "--kernels",
        action="store_true",
        help="time each arithmetic kernel, compiled and as plain Python",
    )
    parser.add_argument(
        "--log-writer",
        choices=["process", "thread"],
        default="process",
        help="where the decision log's writer runs ([guard] log_writer)",
    )
    parser.add_argument(
        "--no-phases",
        dest="phases",
        action="store_false",
        help="both servers take each request start to finish ([guard] phases = false)",
    )
    parser.add_argument(
        "--checks",
        default="all",
        help="all, none (every screening check off: the service's own cost, the ceiling of "
        "what faster checks could reach), or a comma-separated list of the checks left on "
        f"({', '.join(CHECKS)}): one check's cost is its run against none",
    )
    args = parser.parse_args()
    on = set(CHECKS) if args.checks == "all" else set()
    if args.checks not in ("all", "none"):
        on = {c.strip() for c in args.checks.split(",") if c.strip()}
        if not on <= set(CHECKS):
            parser.error(f"--checks: unknown check(s) {', '.join(sorted(on - set(CHECKS)))}")
    args.on = on
    if args.kernels:
        return kernel_timings()
    if args.in_process:
        return in_process(args)
    if args.per_check:
        return per_check(args)
    model, reference, live = build()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    tokens, policy, db = guard_files(args)
    # Both servers run side by side (the one not under load is idle).
    port = free_port()
    bare = Server(
        "bare",
        subprocess.Popen(
            [
                *(sys.executable, "-c", BARE, str(model), str(port), ",".join(FEATURES)),
                "phases" if args.phases else "plain",
            ],
            env=env,
        ),
        port,
        None,
    )
    port = free_port()
    guard = Server(
        "guarded",
        subprocess.Popen(
            [
                *(sys.executable, "-m", "modelshield", "guard", "serve"),
                *("--model", str(model), "--reference", str(reference), "--db", str(db)),
                *("--tokens", str(tokens), "--policy", str(policy), "--port", str(port)),
                *("--spool", str(OUT / "guard.spool")),
            ],
            env=env,
            stderr=subprocess.DEVNULL,
            cwd=OUT,
        ),
        port,
        TOKEN,
    )
    seconds = max(1, int(args.seconds // args.rounds))
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "guarded": []}
    try:
        for server in (bare, guard):
            wait_ready(server.port, server.proc)
            server.reqs = requests_for(live, server.port, server.token)
        time.sleep(0.5)
        for server in (bare, guard):
            warm(server)
        # The throughput runs alternate, bare first then guarded first (A B B A ...): a
        # machine whose speed drifts charges both alike. The server not under test is stopped.
        other = {"bare": guard, "guarded": bare}
        for r in range(args.rounds):
            for server in (bare, guard) if r % 2 == 0 else (guard, bare):
                alone(server, other[server.name])
                runs[server.name].append(throughput(server, args, live, seconds))
        lat = {}
        for server in (bare, guard):
            alone(server, other[server.name])
            lat[server.name] = latency(server, args)
        answered = count_sent(guard.port)
    finally:
        hold(bare, False)
        hold(guard, False)
        guard.proc.send_signal(signal.SIGTERM)
        guard.proc.wait(60)
        bare.proc.terminate()
        bare.proc.wait(30)
    base = summarise(runs["bare"], lat["bare"])
    guarded = summarise(runs["guarded"], lat["guarded"])
    pairs = [g["rps"] / b["rps"] for b, g in zip(runs["bare"], runs["guarded"], strict=True)]
    import sqlalchemy as sa

    from modelshield.guard import store

    engine = store.connect(str(db))
    with engine.connect() as conn:
        logged = conn.execute(sa.select(sa.func.count()).select_from(store.decisions)).scalar()
    engine.dispose()

    print(
        f"\nmodelshield guard overhead (loopback, {os.cpu_count()} cores, "
        f"throughput by {guarded['tool']}, latency at {args.rate:g} req/s open loop, "
        f"checks: {args.checks}, log writer: {args.log_writer}, "
        f"phases: {'on' if args.phases else 'off'} in both, kernels: {kernels()})"
    )
    print(f"{'':22}{'bare':>10}{'guarded':>10}{'overhead':>12}   goal")
    ratio = guarded["rps"] / base["rps"]
    print(
        f"{'throughput (req/s)':22}{base['rps']:10.0f}{guarded['rps']:10.0f}{ratio:11.0%}    >= 70%"
    )
    if base["cpu_us"] and guarded["cpu_us"]:
        share = base["cpu_us"] / guarded["cpu_us"]
        print(
            f"{'server CPU (µs/req)':22}{base['cpu_us']:10.0f}{guarded['cpu_us']:10.0f}"
            f"{share:11.0%}    (bare/guarded: the throughput share when the server is the bound)"
        )
        print(
            f"{'  + log writer process':22}{'':10}{guarded['writer_us']:10.0f}"
            f"{'':11}    (its own process: on the other core, beside the load generator)"
        )
    for q, goal in (("p50", 0.3), ("p99", 2.0)):
        d = guarded[q] - base[q]
        print(
            f"{q + ' latency (ms)':22}{base[q]:10.3f}{guarded[q]:10.3f}{d:+11.3f}    <= +{goal} ms"
        )
    print(
        f"throughput, {args.rounds} rounds of {seconds} s each (guarded/bare, alternating "
        f"runs): {', '.join(f'{p:.0%}' for p in pairs)}"
    )
    print(f"statuses: bare {base['statuses']}, guarded {guarded['statuses']}")
    print(
        f"decision log: {logged} records for {answered} requests the guard answered "
        f"({'all logged' if logged == answered else 'MISSING RECORDS'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
