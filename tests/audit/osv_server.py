"""A local OSV API for tests and benchmarks: a real HTTP server on 127.0.0.1.

It serves advisories from a PyPA-layout tree (``vulns/<package>/<ID>.yaml``) with the OSV API's
shapes: ``POST /v1/querybatch`` (ids and ``modified``), ``POST /v1/query`` (full records, what
pip-audit calls), ``GET /v1/vulns/{id}``, and ``GET /export/all.zip`` (an OSV-style export of
the served records, for ``modelshield db update``).

Matching here is deliberately *not* modelshield's matcher: a version is affected when the
advisory's explicit ``versions`` list names it (PEP 440 equality), which is how OSV.dev answers
for PyPI, so tests that compare the API path with the offline path compare two
implementations.

Run it by hand with ``python -m tests.audit.osv_server ADVISORY_DIR`` (it prints its URL).
"""

from __future__ import annotations

import io
import json
import sys
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

_LOADER: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


def _same(a: str, b: str) -> bool:
    try:
        return Version(a).public == Version(b).public or Version(a) == Version(b)
    except InvalidVersion:
        return a == b


class AdvisoryStore:
    """Advisories loaded lazily, one package folder at a time."""

    def __init__(self, root: Path) -> None:
        """``root`` holds ``<package>/<ID>.yaml`` (or ``.json``) folders."""
        self.root = root
        self._by_package: dict[str, list[dict[str, Any]]] = {}
        self._files = {f.stem: f for f in root.glob("*/*") if f.suffix in (".yaml", ".json")}
        self.lock = threading.Lock()

    def _load(self, path: Path) -> dict[str, Any]:
        data = path.read_bytes()
        doc = json.loads(data) if path.suffix == ".json" else yaml.load(data, Loader=_LOADER)
        doc.setdefault("aliases", [])
        doc.setdefault("details", "")
        return dict(doc)

    def package(self, name: str) -> list[dict[str, Any]]:
        """Every record in the package's folder."""
        canonical = canonicalize_name(name)
        with self.lock:
            if canonical not in self._by_package:
                folder = self.root / canonical
                files = sorted(folder.glob("*")) if folder.is_dir() else []
                self._by_package[canonical] = [
                    self._load(f) for f in files if f.suffix in (".yaml", ".json")
                ]
            return self._by_package[canonical]

    def vuln(self, ident: str) -> dict[str, Any] | None:
        """One record by id."""
        path = self._files.get(ident)
        return self._load(path) if path is not None else None

    def matching(self, name: str, version: str | None) -> list[dict[str, Any]]:
        """Records for the package; with a version, those whose versions list names it."""
        out = []
        for doc in self.package(name):
            if version is None:
                out.append(doc)
                continue
            for affected in doc.get("affected", []):
                if canonicalize_name(affected["package"]["name"]) != canonicalize_name(name):
                    continue
                if any(_same(version, v) for v in affected.get("versions", [])):
                    out.append(doc)
                    break
        return out

    def export_zip(self, packages: list[str]) -> bytes:
        """An OSV-style export (``<ID>.json`` per record) of the given packages."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in packages:
                for doc in self.package(name):
                    zf.writestr(f"{doc['id']}.json", json.dumps(doc))
        return buf.getvalue()


class OsvServer:
    """The server; use :func:`serve` to run one for the length of a ``with`` block."""

    def __init__(self, store: AdvisoryStore, export_packages: list[str] | None = None) -> None:
        """Serve ``store``; ``/export/all.zip`` holds ``export_packages``."""
        self.store = store
        self.export_packages = export_packages or []
        self.hits: dict[str, int] = {}
        self.fail_with: int | None = None
        """When set, every request is answered with this HTTP status (for failure tests)."""
        self.garbage = False
        """When set, every answer is invalid JSON."""
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def count(self, key: str) -> int:
        """Requests seen for a route (``querybatch``, ``query``, ``vulns``, ``export``)."""
        with self._lock:
            return self.hits.get(key, 0)

    def _hit(self, key: str) -> None:
        with self._lock:
            self.hits[key] = self.hits.get(key, 0) + 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, doc: Any) -> None:
                body = b"{not json" if server.garbage else json.dumps(doc).encode()
                self._send(200, body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                route = self.path.rstrip("/")
                server._hit(route.rsplit("/", 1)[-1])
                if server.fail_with is not None:
                    self._send(server.fail_with, b"{}")
                elif route == "/v1/querybatch":
                    results = []
                    for q in body.get("queries", []):
                        docs = server.store.matching(q["package"]["name"], q.get("version"))
                        vulns = [{"id": d["id"], "modified": d.get("modified", "")} for d in docs]
                        results.append({"vulns": vulns} if vulns else {})
                    self._json({"results": results})
                elif route == "/v1/query":
                    docs = server.store.matching(body["package"]["name"], body.get("version"))
                    self._json({"vulns": docs} if docs else {})
                else:
                    self._send(404, b"{}")

            def do_GET(self) -> None:
                if self.path.startswith("/v1/vulns/"):
                    server._hit("vulns")
                    if server.fail_with is not None:
                        self._send(server.fail_with, b"{}")
                        return
                    doc = server.store.vuln(self.path.rsplit("/", 1)[-1])
                    if doc is None:
                        self._send(404, b'{"message": "Bug not found."}')
                    else:
                        self._json(doc)
                elif self.path == "/export/all.zip":
                    server._hit("export")
                    data = server.store.export_zip(server.export_packages)
                    self._send(200, data, "application/zip")
                else:
                    self._send(404, b"{}")

        return Handler


@contextmanager
def serve(vulns_dir: Path, export_packages: list[str] | None = None) -> Iterator[OsvServer]:
    """Run a local OSV server over ``vulns_dir`` until the block ends."""
    server = OsvServer(AdvisoryStore(vulns_dir), export_packages)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(timeout=5)


if __name__ == "__main__":
    root = Path(sys.argv[1])
    with serve(root / "pypa" / "vulns" if (root / "pypa").is_dir() else root) as srv:
        print(f"OSV API on {srv.url}", flush=True)
        threading.Event().wait()
