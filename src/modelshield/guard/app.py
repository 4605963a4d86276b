"""The standalone guard service: an ASGI application (Starlette) served by uvicorn.

``POST /predict`` is answered by a lean ASGI path of its own (body streamed with its size
bounded, no framework request object), everything else by a Starlette router:

==========================  =========  ===============================================
endpoint                    token      what
==========================  =========  ===============================================
``POST /predict``           predict    KServe v1 predictions, screened and logged
``POST /feedback``          feedback   labels of earlier requests (performance)
``GET /metrics``            read       Prometheus metrics
``GET /api/summary``        read       the governance summary (``?since=24h&until=...``)
``GET /dashboard``          none       the dashboard page (its data needs the read token)
``GET /admin/status``       admin      the log's state, the chain head, the model's loader
``POST /admin/flush``       admin      write every pending record now
``GET /healthz``            none       liveness and the log's state
``GET /openapi.json``       none       the OpenAPI 3.1 description of the JSON API
==========================  =========  ===============================================

No endpoint answers cross-origin requests unless ``[guard] cors_origins`` names the origin
(never ``*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Annotated, Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelshield.guard import monitor
from modelshield.guard.engine import KERNELS_COMPILED, Guard, Tokens
from modelshield.guard.log import now_us

logger = logging.getLogger("modelshield.guard")

Scope = dict[str, Any]
Receive = Any
Send = Any

_JSON = (b"content-type", b"application/json")
_COMMON = [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]
COUNTS_FLUSH_SECONDS = 1.0
"""How often the window counts are handed to the log writer."""
SWITCH_INTERVAL = 0.0005
"""The interpreter's thread switch interval while the service runs (seconds)."""
MAX_FEEDBACK_LABELS = 10_000
"""Labels one feedback request may carry."""

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)


class Label(msgspec.Struct, forbid_unknown_fields=True):
    """One label of ``POST /feedback``."""

    request_id: Annotated[str, msgspec.Meta(max_length=36)]
    """The ``request_id`` the prediction was answered with."""
    label: str | int | float | bool
    """The true label (or value) of the instance."""
    index: Annotated[float, msgspec.Meta(ge=0, le=2**31 - 1)] = 0
    """Which instance of that request (0: the first; ``2.0`` is 2, as JSON Schema says)."""


class Feedback(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /feedback``."""

    labels: Annotated[list[Label], msgspec.Meta(max_length=MAX_FEEDBACK_LABELS)]
    """The labels."""


class BodyTooLarge(Exception):
    """The request body passed the limit."""


class Disconnected(Exception):
    """The client went away."""


async def read_body(scope: Any, receive: Receive, limit: int) -> bytes:
    """The request body, refused as soon as it passes ``limit`` bytes (the declared
    ``Content-Length`` first, then the bytes as they stream in)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                if int(value) > limit:
                    raise BodyTooLarge
            except ValueError:
                pass
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _header(scope: Any, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send a complete JSON response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                _JSON,
                (b"content-length", str(len(body)).encode()),
                *_COMMON,
                *(headers or ()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class GuardApp:
    """The service (see the module docstring)."""

    def __init__(self, guard: Guard, tokens: Tokens | None) -> None:
        """Serve ``guard``; ``tokens`` None only when ``[guard] auth = false``."""
        self.guard = guard
        self.tokens = tokens
        self.settings = guard.settings
        self.origins = frozenset(o.encode() for o in self.settings.cors_origins)
        self.alerter = monitor.Alerter(
            self.settings, guard.log.add_row if guard.log is not None else None
        )
        guard.alerter = self.alerter
        if guard.log is not None:
            guard.log.on_alert = self.alerter.raise_alert
        self.last_drift: list[dict[str, Any]] = []
        self.last_performance: dict[str, Any] = {}
        self.router = Starlette(
            routes=[
                Route("/predict", self._unreachable, methods=["POST"]),
                Route("/feedback", self.feedback, methods=["POST"]),
                Route("/metrics", self.metrics, methods=["GET"]),
                Route("/api/summary", self.summary, methods=["GET"]),
                Route("/dashboard", self.dashboard, methods=["GET"]),
                Route("/dashboard/{name}", self.asset, methods=["GET"]),
                Route("/admin/status", self.status, methods=["GET"]),
                Route("/admin/flush", self.flush, methods=["POST"]),
                Route("/healthz", self.health, methods=["GET"]),
                Route("/openapi.json", self.openapi, methods=["GET"]),
            ],
            lifespan=self.lifespan,
        )

    # ---- ASGI ----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route ``POST /predict`` to the lean path, everything else to Starlette."""
        if scope["type"] == "http":
            origin = _header(scope, b"origin")
            if origin is not None:
                send = self._cors(origin, send)
                if scope["method"] == "OPTIONS":
                    await self._preflight(origin, send)
                    return
            if scope["path"] == "/predict" and scope["method"] == "POST":
                await self.predict(scope, receive, send)
                return
        await self.router(scope, receive, send)

    def _cors(self, origin: bytes, send: Send) -> Send:
        if origin not in self.origins:
            return send

        async def with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", origin),
                    (b"vary", b"origin"),
                ]
            await send(message)

        return with_cors

    async def _preflight(self, origin: bytes, send: Send) -> None:
        if origin not in self.origins:
            await send_json(send, 403, b'{"error":"origin not allowed"}')
            return
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-methods", b"GET, POST"),
                    (b"access-control-allow-headers", b"authorization, content-type"),
                    (b"access-control-max-age", b"600"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    def _client(self, scope: Any, role: str) -> str | None:
        """The caller's id for ``role``, or None when its token is missing or wrong."""
        if self.tokens is not None:
            return self.tokens.check(role, _header(scope, b"authorization"))
        header = self.settings.client_header
        if header:
            value = _header(scope, header.lower().encode())
            if value:
                return value.decode("utf-8", "replace")[:128]
        peer = scope.get("client")
        return str(peer[0]) if peer else "unknown"

    async def predict(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /predict``."""
        started = time.perf_counter()
        guard = self.guard
        client = self._client(scope, "predict")
        if client is None:
            answer = guard.reject(401, "unauthorized", "unauthenticated", b"", started)
            await send_json(
                send, 401, answer.body, [*answer.headers, (b"www-authenticate", b"Bearer")]
            )
            return
        try:
            body = await read_body(scope, receive, self.settings.max_body_bytes)
        except BodyTooLarge:
            answer = guard.reject(
                413,
                "body-too-large",
                client,
                b"",
                started,
                f"the body is larger than {self.settings.max_body_bytes} bytes",
            )
            await send_json(send, 413, answer.body, [*answer.headers, (b"connection", b"close")])
            return
        except Disconnected:
            guard.reject(499, "client-disconnected", client, b"", started)
            return
        answer = await guard.process(body, client, started)
        await send_json(send, answer.status, answer.body, answer.headers)

    async def _unreachable(self, request: Request) -> Response:  # pragma: no cover
        return Response(status_code=500)

    # ---- life cycle ----------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        """Start the log writer and the periodic tasks; flush everything at shutdown."""
        guard = self.guard
        log = guard.log
        if log is not None:
            # Attached to this loop: the log's records are sent and its writer's reports read
            # by the loop's callbacks, no thread of its own (see ProcessLog.start).
            await asyncio.to_thread(log.start, asyncio.get_running_loop())
            spec = guard.reference.drift_spec()
            if guard.calibration is not None:
                p = guard.calibration.prediction
                spec["prediction"] = {
                    "name": "prediction",
                    "kind": p.kind,
                    "edges": list(p.edges),
                    "levels": list(p.levels),
                    "counts": list(p.counts),
                }
            await asyncio.to_thread(monitor.store_reference, log.engine, spec)
            provenance = getattr(guard.predictor, "provenance", None)
            logger.info(
                "guard serving: model %s, decision log %s, chain %s, kernels %s",
                provenance,
                log.url if "@" not in log.url else "<database>",
                log.chain,
                "compiled" if KERNELS_COMPILED else "plain Python",
            )
        # The log writer and the monitor are Python threads: with the default 5 ms switch
        # interval, each of their bursts can hold a request back by up to 5 ms (the p99).
        switch = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        tasks = [asyncio.create_task(self._counts_loop())]
        if log is not None:
            tasks.append(asyncio.create_task(self._monitor_loop()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._flush_counts()
            if log is not None:
                await asyncio.to_thread(log.close)
            close = getattr(guard.predictor, "aclose", None)
            if close is not None:
                await close()
            sys.setswitchinterval(switch)

    def _flush_counts(self) -> None:
        log = self.guard.log
        if log is None:
            return
        for row in self.guard.take_counts():
            log.add_row("guard_window_counts", row)

    async def _counts_loop(self) -> None:
        while True:
            await asyncio.sleep(COUNTS_FLUSH_SECONDS)
            self._flush_counts()

    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.drift_interval_seconds)
            try:
                await asyncio.to_thread(self.check_now)
            except Exception as e:  # the database may be down: the log spools meanwhile
                logger.warning("drift monitor: %s: %s", type(e).__name__, e)

    def check_now(self) -> list[dict[str, Any]]:
        """Compute drift and performance over the sliding window; update gauges; alert."""
        log = self.guard.log
        assert log is not None
        settings = self.settings
        until = now_us() + 1
        since = until - settings.drift_window_seconds * 1_000_000
        spec = monitor.latest_reference(log.engine)
        if spec is None:
            return []
        rows = monitor.drift_rows(spec, monitor.sum_counts(log.engine, since, until), settings)
        m = self.guard.metrics
        for row in rows:
            name = row["feature"]
            if name not in m.known_features:
                continue
            nan = float("nan")
            m.drift_psi.labels(name).set(row["psi"] if row["psi"] is not None else nan)
            m.drift_ks.labels(name).set(row["ks"] if row["ks"] is not None else nan)
            m.drift_chi2_p.labels(name).set(row["chi2_p"] if row["chi2_p"] is not None else nan)
            m.drifted.labels(name).set(1.0 if row["drifted"] else 0.0)
            if row["drifted"]:
                self.alerter.raise_alert(
                    "drift",
                    name,
                    f"{name} has drifted over the last {settings.drift_window_seconds} s "
                    f"(PSI {row['psi']}, KS {row['ks']}, chi2 p {row['chi2_p']}, "
                    f"{row['count']} values)",
                )
        perf = monitor.performance(log.engine, since, until)
        m.accuracy.set(perf["accuracy"] if perf["accuracy"] is not None else float("nan"))
        m.mae.set(perf["mae"] if perf["mae"] is not None else float("nan"))
        if (
            settings.min_accuracy is not None
            and perf["accuracy"] is not None
            and perf["labelled"] >= settings.drift_min_count
            and perf["accuracy"] < settings.min_accuracy
        ):
            self.alerter.raise_alert(
                "performance",
                "accuracy",
                f"accuracy {perf['accuracy']:.3f} on {perf['labelled']} labelled requests is "
                f"below {settings.min_accuracy}",
            )
        m.flagged_clients.set(sum(1 for c in self.guard.clients.values() if c.flagged))
        self.last_drift, self.last_performance = rows, perf
        return rows

    # ---- Starlette endpoints ---------------------------------------------------------------
    def _denied(self, request: Request, role: str) -> Response | str:
        client = self._client(request.scope, role) if self.tokens is not None else "local"
        if client is None:
            return JSONResponse(
                {"error": "unauthorized", "detail": f"this endpoint needs a {role} token"},
                status_code=401,
                headers={"www-authenticate": "Bearer", "cache-control": "no-store"},
            )
        return client

    async def feedback(self, request: Request) -> Response:
        """``POST /feedback``: ``{"labels": [{"request_id": ..., "index": 0, "label": ...}]}``."""
        who = self._denied(request, "feedback")
        if isinstance(who, Response):
            return who
        try:
            body = await read_body(request.scope, request.receive, self.settings.max_body_bytes)
        except BodyTooLarge:
            return JSONResponse({"error": "body-too-large"}, status_code=413)
        except Disconnected:
            return Response(status_code=400)
        try:
            data = msgspec.json.decode(body, type=Feedback)
        except msgspec.ValidationError as e:
            return JSONResponse({"error": "invalid-shape", "detail": str(e)}, status_code=422)
        except msgspec.DecodeError as e:
            return JSONResponse({"error": "malformed-json", "detail": str(e)}, status_code=400)
        if any(not float(item.index).is_integer() for item in data.labels):
            return JSONResponse(
                {"error": "invalid-shape", "detail": "an index is not an integer"},
                status_code=422,
            )
        log = self.guard.log
        if log is not None:
            ts = now_us()
            for item in data.labels:
                log.add_row(
                    "guard_feedback",
                    {
                        "ts_us": ts,
                        "request_id": item.request_id[:36],
                        "idx": int(item.index),
                        "label": msgspec.json.encode(item.label).decode(),
                        "client": who,
                    },
                )
        self.guard.metrics.feedback.inc(len(data.labels))
        return JSONResponse({"accepted": len(data.labels)})

    async def metrics(self, request: Request) -> Response:
        """``GET /metrics``: the Prometheus text format."""
        who = self._denied(request, "read")
        if isinstance(who, Response):
            return who
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(
            generate_latest(self.guard.metrics.registry),
            headers={"content-type": CONTENT_TYPE_LATEST, "cache-control": "no-store"},
        )

    async def summary(self, request: Request) -> Response:
        """``GET /api/summary?since=...&until=...``: the governance summary."""
        who = self._denied(request, "read")
        if isinstance(who, Response):
            return who
        from modelshield.core.errors import ConfigError
        from modelshield.guard.summary import parse_time, summarize

        log = self.guard.log
        if log is None:
            return JSONResponse({"error": "no decision log"}, status_code=404)
        now = time.time()
        try:
            since = parse_time(request.query_params.get("since"), now, default=now - 86400)
            until = parse_time(request.query_params.get("until"), now, default=now + 1)
        except ConfigError as e:
            return JSONResponse({"error": "invalid-query", "detail": str(e)}, status_code=422)
        await asyncio.to_thread(log.flush, 5.0)
        data = await asyncio.to_thread(summarize, log.engine, since, until, self.settings)
        return Response(
            msgspec.json.encode(data),
            headers={"content-type": "application/json", "cache-control": "no-store"},
        )

    async def dashboard(self, request: Request) -> Response:
        """``GET /dashboard``: the page (static; it fetches ``/api/summary`` with the read
        token taken from the URL fragment, which browsers never send to a server)."""
        return self._static("index.html", "text/html; charset=utf-8")

    async def asset(self, request: Request) -> Response:
        """``GET /dashboard/app.js`` and ``/dashboard/app.css``."""
        name = request.path_params["name"]
        types = {"app.js": "text/javascript", "app.css": "text/css"}
        if name not in types:
            return Response(status_code=404)
        return self._static(name, types[name])

    def _static(self, name: str, media: str) -> Response:
        data = resources.files("modelshield.guard").joinpath("dashboard", name).read_bytes()
        return Response(
            data,
            headers={
                "content-type": media,
                "content-security-policy": _CSP,
                "x-content-type-options": "nosniff",
                "referrer-policy": "no-referrer",
                "cache-control": "no-store",
            },
        )

    async def status(self, request: Request) -> Response:
        """``GET /admin/status``."""
        who = self._denied(request, "admin")
        if isinstance(who, Response):
            return who
        log = self.guard.log
        provenance = getattr(self.guard.predictor, "provenance", None)
        data: dict[str, Any] = {
            "model": None if provenance is None else msgspec.to_builtins(provenance),
            "clients": len(self.guard.clients),
        }
        if log is not None:
            seq, head = log.head()
            data["log"] = {
                "replica": log.replica,
                "chain": log.chain,
                "head_seq": seq,
                "head_hash": head,
                "pending": log.pending,
                "database_up": log.db_ok,
                "written_total": log.written_total,
                "spooled_total": log.spooled_total,
                "replayed_total": log.replayed_total,
                "dropped_total": log.dropped_total,
                "quarantined_total": log.quarantined_total,
            }
        return JSONResponse(data, headers={"cache-control": "no-store"})

    async def flush(self, request: Request) -> Response:
        """``POST /admin/flush``: write every pending record (and window count) now."""
        who = self._denied(request, "admin")
        if isinstance(who, Response):
            return who
        self._flush_counts()
        log = self.guard.log
        done = True if log is None else await asyncio.to_thread(log.flush, 30.0)
        return JSONResponse({"flushed": done}, status_code=200 if done else 503)

    async def health(self, request: Request) -> Response:
        """``GET /healthz``."""
        log = self.guard.log
        state = "none" if log is None else ("ok" if log.db_ok else "spooling")
        return JSONResponse({"status": "ok", "log": state})

    async def openapi(self, request: Request) -> Response:
        """``GET /openapi.json``."""
        from modelshield.guard.openapi import spec

        return JSONResponse(spec(self.guard))


def create_app(guard: Guard, tokens: Tokens | None) -> GuardApp:
    """The ASGI application; tokens are required unless ``[guard] auth = false``."""
    from modelshield.core.errors import ConfigError

    if guard.settings.auth and (tokens is None or not tokens.has("predict")):
        raise ConfigError(
            "the guard needs tokens (--tokens FILE with a [predict] table, and [read], "
            "[feedback], [admin] for those endpoints), or [guard] auth = false to serve "
            "without them (then the client is the peer address or [guard] client_header)"
        )
    return GuardApp(guard, tokens if guard.settings.auth else None)


def bare_app(predictor: Any, names: tuple[str, ...] | list[str], phases: bool = True) -> Any:
    """The same model served without the guard (KServe v1, no screening, no log): the
    baseline of ``bench/bench_guard.py`` and a stand-in upstream for the tests. With
    ``phases``, requests in flight together advance in phases as in the guard (see
    ``Guard.process``): on entry and after the model's call, so that the baseline gets
    what phases save."""
    decoder = msgspec.json.Decoder(dict[str, list[dict[str, Any]]])
    columns = list(names)
    in_flight = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal in_flight
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] != "/predict" or scope["method"] != "POST":
            await send_json(send, 404, b'{"error":"not found"}')
            return
        in_flight += phases
        try:
            body = await read_body(scope, receive, 64 << 20)
            if phases:
                await asyncio.sleep(0)
            instances = decoder.decode(body)["instances"]
            rows = [[inst.get(n) for n in columns] for inst in instances]
            out = predictor.predict(rows, None)
            if in_flight > 1:
                await asyncio.sleep(0)
        except (BodyTooLarge, msgspec.DecodeError, KeyError):
            await send_json(send, 400, b'{"error":"bad request"}')
            return
        except Disconnected:
            return
        finally:
            in_flight -= phases
        await send_json(send, 200, msgspec.json.encode({"predictions": out.labels}))

    return app
