"""The guard's overhead: the same tabular model served bare and behind the guard, in one run.

Usage::

    python bench/bench_guard.py                     # 8 s per phase
    python bench/bench_guard.py --seconds 15 --rate 400 --connections 8
    python bench/bench_guard.py --in-process        # the engine alone, µs per request

A scikit-learn logistic regression on 10 numeric features is saved with joblib under
``bench-out/guard/``. Each server runs alone in its own process on loopback (uvicorn, one
worker): first the bare server (the same model adapter, KServe v1 JSON, no screening, no log),
then ``modelshield guard serve`` with every check on (schema, OOD, adversarial with 8
perturbations, rate limit set high enough never to refuse, extraction), tokens, and the
SQLite decision log. For each:

1. **throughput**: a closed loop of ``--connections`` keep-alive connections for
   ``--seconds`` (requests per second), and the server process's CPU time per request over
   that phase (from ``/proc``: steadier than the rate on a shared machine, where other work
   takes the cores from one server and not the other);
2. **latency**: an open loop at a constant ``--rate`` (the same for both servers), each
   request's latency measured from the time it was *scheduled*, so that a stalled server is
   charged for the requests that waited (no coordinated omission); p50 and p99.

The load generator is Python (asyncio, raw HTTP/1.1 on pre-built requests), on the same
cores as the server (Debian's ``wrk`` is used for the throughput phase instead when it is on
the PATH). After the guarded run the server is stopped with SIGTERM (it flushes its log) and
the decision records are counted against the requests sent. Goals (2-core machine): the guard
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
import sys, uvicorn
from modelshield.core.policy import Policy
from modelshield.guard.app import bare_app
from modelshield.guard.predictors import HostedPredictor
names = sys.argv[3].split(",")
predictor = HostedPredictor.open(sys.argv[1], Policy(), names, True)
uvicorn.run(bare_app(predictor, names, sys.argv[4] == "phases"), host="127.0.0.1",
            port=int(sys.argv[2]),
            log_level="warning", access_log=False)
"""


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
    start = time.perf_counter() + 0.05

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

    await asyncio.gather(*(one(i) for i in range(n)))
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


def measure(
    port: int,
    reqs: list[bytes],
    args: argparse.Namespace,
    token: str | None,
    live: Any,
    pid: int,
) -> dict[str, Any]:
    # Warm-up: the first requests pay for lazy imports and caches.
    asyncio.run(closed_loop(port, reqs, 2, 1.0))
    cpu0 = cpu_seconds(pid)
    kids = children(pid)
    kid0 = sum(cpu_seconds(k) or 0.0 for k in kids)
    if shutil.which("wrk"):
        rps, sent, statuses = wrk_throughput(
            port,
            [json.dumps({"instances": [row]}).encode() for row in live[:WRK_BODIES]],
            token,
            args.connections,
            args.seconds,
        )
        tool = "wrk"
    else:
        rps, sent, statuses = asyncio.run(closed_loop(port, reqs, args.connections, args.seconds))
        tool = "python"
    time.sleep(0.2)  # the last answers' bookkeeping
    cpu1 = cpu_seconds(pid)
    kid1 = sum(cpu_seconds(k) or 0.0 for k in kids)
    cpu_us = (cpu1 - cpu0) / sent * 1e6 if cpu0 is not None and cpu1 is not None else None
    writer_us = (kid1 - kid0) / sent * 1e6 if kids else 0.0
    latencies, _n, lstatuses = asyncio.run(
        open_loop(port, reqs, args.connections, args.rate, args.seconds)
    )
    return {
        "rps": rps,
        "cpu_us": cpu_us,
        "writer_us": writer_us,
        "tool": tool,
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
        "statuses": {**statuses, **{k: statuses.get(k, 0) + v for k, v in lstatuses.items()}},
    }


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
        f"{cpus[0]:.0f} ({cpus[len(cpus) // 2]:.0f}) µs CPU with the log writer"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=float, default=300.0, help="open-loop requests/s")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--in-process", action="store_true", help="time Guard.process alone (no HTTP)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="--in-process: passes over the rows")
    parser.add_argument("--dump", help="--in-process: write the answers as JSON lines")
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
    if args.in_process:
        return in_process(args)
    model, reference, live = build()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    port = free_port()
    bare = subprocess.Popen(
        [
            *(sys.executable, "-c", BARE, str(model), str(port), ",".join(FEATURES)),
            "phases" if args.phases else "plain",
        ],
        env=env,
    )
    try:
        wait_ready(port, bare)
        time.sleep(0.5)
        base = measure(port, requests_for(live, port, None), args, None, live, bare.pid)
    finally:
        bare.terminate()
        bare.wait(30)

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
    port = free_port()
    guard = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelshield",
            "guard",
            "serve",
            "--model",
            str(model),
            "--reference",
            str(reference),
            "--db",
            str(db),
            "--tokens",
            str(tokens),
            "--policy",
            str(policy),
            "--port",
            str(port),
            "--spool",
            str(OUT / "guard.spool"),
        ],
        env=env,
        stderr=subprocess.DEVNULL,
        cwd=OUT,
    )
    try:
        wait_ready(port, guard)
        time.sleep(0.5)
        guarded = measure(port, requests_for(live, port, TOKEN), args, TOKEN, live, guard.pid)
        answered = count_sent(port)
    finally:
        guard.send_signal(signal.SIGTERM)
        guard.wait(60)
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
        f"phases: {'on' if args.phases else 'off'} in both)"
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
    print(f"statuses: bare {base['statuses']}, guarded {guarded['statuses']}")
    print(
        f"decision log: {logged} records for {answered} requests the guard answered "
        f"({'all logged' if logged == answered else 'MISSING RECORDS'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
