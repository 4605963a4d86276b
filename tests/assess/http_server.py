"""A real HTTP model server on the loopback interface, for the endpoint adapter's tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pandas as pd


@contextmanager
def serve(model: Any, *, delay: float = 0.0, status: int = 200) -> Iterator[tuple[str, list[int]]]:
    """Serve ``model`` (scikit-learn) at ``http://127.0.0.1:PORT/predict``; yields the URL and
    the batch sizes received."""
    batches: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            frame = pd.DataFrame.from_records(body["instances"])
            batches.append(len(frame))
            if delay:
                time.sleep(delay)
            if status != 200:
                self.send_error(status, "model unavailable")
                return
            proba = model.predict_proba(frame)
            doc = {
                "predictions": [int(v) for v in model.predict(frame)],
                "probabilities": proba.tolist(),
                "classes": [int(c) for c in model.classes_],
            }
            out = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/predict", batches
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
