"""The guard as ASGI middleware, for a Starlette or FastAPI application that serves its own
model::

    from modelshield.guard import build_guard
    from modelshield.guard.middleware import GuardMiddleware

    app.add_middleware(GuardMiddleware, guard=build_guard("reference.csv", db="guard.db"))

Requests to ``path`` (``POST /predict`` by default) are screened by the same engine as the
standalone service before the application sees them; a blocked request never reaches it. The
application's answer (KServe v1: ``{"predictions": [...]}``) is read back for the decision
log, the drift counts and the extraction signals, and passed on unchanged (or replaced by a
403 when a check that needs the predictions blocks). The adversarial check needs a model of
its own: give ``build_guard(..., predict=fn)`` (``fn``: a list of dicts in, predictions out);
without one it does not run. The middleware starts the decision log on the first request and
stops it with :meth:`GuardMiddleware.close` (or at interpreter exit). Clients are identified
as by the service with ``[guard] auth = false``: ``[guard] client_header`` or the peer.
"""

from __future__ import annotations

import atexit
import contextlib
import time
from typing import Any

import msgspec

from modelshield.guard.app import BodyTooLarge, Disconnected, read_body, send_json
from modelshield.guard.engine import Guard
from modelshield.guard.predictors import Output, read_predictions

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""Largest application answer read back (a larger one is passed on and logged unparsed)."""


class GuardMiddleware:
    """ASGI middleware screening ``POST path`` with ``guard``."""

    def __init__(self, app: Any, guard: Guard, path: str = "/predict") -> None:
        """Wrap ``app``."""
        self.app = app
        self.guard = guard
        self.path = path
        self._started = False

    def _start(self) -> None:
        if not self._started and self.guard.log is not None:
            self.guard.log.start()
            from modelshield.guard import monitor

            monitor.store_reference(self.guard.log.engine, self.guard.reference.drift_spec())
            atexit.register(self.close)
        self._started = True

    def close(self) -> None:
        """Write out the counts and every pending record, and stop the writer."""
        if self._started and self.guard.log is not None:
            for row in self.guard.take_counts():
                self.guard.log.add_row("guard_window_counts", row)
            self.guard.log.close()
            self._started = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Screen ``POST path``; pass everything else through."""
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        self._start()
        started = time.perf_counter()
        guard = self.guard
        header = guard.settings.client_header
        client = None
        if header:
            for k, v in scope["headers"]:
                if k == header.lower().encode():
                    client = v.decode("utf-8", "replace")[:128]
        if client is None:
            peer = scope.get("client")
            client = str(peer[0]) if peer else "unknown"
        try:
            body = await read_body(scope, receive, guard.settings.max_body_bytes)
        except BodyTooLarge:
            rejected = guard.reject(413, "body-too-large", client, b"", started)
            await send_json(send, 413, rejected.body, rejected.headers)
            return
        except Disconnected:
            return
        captured: dict[str, Any] = {}

        async def serve(rows: list[list[Any]], matrix: Any) -> Output:
            sent = False

            async def replay() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            chunks: list[bytes] = []

            async def capture(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    captured["start"] = message
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))

            await self.app(scope, replay, capture)
            captured["body"] = b"".join(chunks)
            start = captured.get("start", {})
            if start.get("status") != 200 or len(captured["body"]) > MAX_RESPONSE_BYTES:
                raise _AppAnswered
            data = msgspec.json.decode(captured["body"])
            return read_predictions(data.get("predictions"), len(rows))

        answer: Any = None
        with contextlib.suppress(_AppAnswered):
            answer = await guard.process(body, client, started, serve)
        if answer is not None and answer.status != 200:
            await send_json(send, answer.status, answer.body, answer.headers)
            return
        # Served: pass the application's own answer on unchanged.
        start = captured.get("start")
        if start is None:  # pragma: no cover - the app sent nothing
            await send_json(send, 502, b'{"error":"the application did not answer"}')
            return
        await send(start)
        await send({"type": "http.response.body", "body": captured.get("body", b"")})


class _AppAnswered(Exception):
    """The application answered something else than 200 with predictions: passed on as is."""
