"""A local Hugging Face Hub for tests: a real HTTP server on 127.0.0.1.

It speaks the part of the Hub's API that ``huggingface_hub`` uses to list and download a model
repository (``repo_info``/``model_info``, ``list_repo_tree``, ``list_repo_files``,
``hf_hub_download``, ``snapshot_download``):

* ``GET /api/models/{repo}/revision/{revision}``: the repository's commit and its files;
* ``GET /api/models/{repo}/tree/{revision}[/{path}]?recursive=..``: files and folders with
  sizes, git blob ids and LFS pointers, paginated with a ``Link`` header as the Hub does;
* ``HEAD``/``GET /{repo}/resolve/{revision}/{path}``: a file, with ``X-Repo-Commit``,
  ``ETag`` (``X-Linked-Etag``/``X-Linked-Size`` for LFS files) and ``Range`` support;
* errors as the Hub words them (``X-Error-Code: RepoNotFound``, ``RevisionNotFound``,
  ``EntryNotFound``; 401 for a gated repository without a token).

Every request is recorded (:attr:`HubServer.requests`) so tests can check what was fetched.
Point the library at it with ``HF_ENDPOINT`` (or ``endpoint=``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

#: Files at least this large are served as LFS files (as the Hub does for weights).
LFS_FROM = 1024
#: Entries per page of a tree listing (the Hub uses 1000; small here to exercise paging).
PAGE = 50


class Repo:
    """One model repository: its commits (files by path) and its branches and tags."""

    def __init__(self, files: Mapping[str, bytes], *, gated: bool = False) -> None:
        """A repository with one commit holding ``files``; ``main`` points at it."""
        self.commits: dict[str, dict[str, bytes]] = {}
        self.refs: dict[str, str] = {}
        self.gated = gated
        self.commit(files, ref="main")

    def commit(self, files: Mapping[str, bytes], ref: str = "main") -> str:
        """Add a commit holding ``files`` (the whole tree) and point ``ref`` at it."""
        digest = hashlib.sha1(json.dumps(sorted(files)).encode())
        for name in sorted(files):
            digest.update(files[name])
        sha = digest.hexdigest()
        self.commits[sha] = dict(files)
        self.refs[ref] = sha
        return sha

    def resolve(self, revision: str) -> str | None:
        """The commit a branch, tag or commit id names."""
        if revision in self.commits:
            return revision
        return self.refs.get(revision)


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


class HubServer:
    """A running local hub (use :func:`serve_hub`)."""

    def __init__(self, repos: dict[str, Repo]) -> None:
        """Serve ``repos`` (by ``org/name``)."""
        self.repos = repos
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.url = ""

    def downloads(self) -> list[str]:
        """Paths of the files whose bytes were sent (``GET .../resolve/...``)."""
        out = []
        for method, path in self.requests:
            parts = unquote(path.split("?")[0]).split("/resolve/", 1)
            if method == "GET" and len(parts) == 2:
                out.append(parts[1].split("/", 1)[1])
        return out


class _Handler(BaseHTTPRequestHandler):
    server_version = "LocalHub/1.0"
    hub: HubServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # ---- helpers
    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        head: bool = False,
        ctype: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, *, head: bool = False) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(status, body, {"X-Error-Code": code, "X-Error-Message": message}, head=head)

    def _json(self, value: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(200, json.dumps(value).encode(), headers)

    def _repo(self, repo_id: str, *, head: bool = False) -> Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found", head=head)
            return None
        if repo.gated and "authorization" not in {k.lower() for k in self.headers}:
            self._error(401, "GatedRepo", "Access to this repository is restricted", head=head)
            return None
        return repo

    # ---- routes
    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _route(self, *, head: bool) -> None:
        with self.hub.lock:
            self.hub.requests.append((self.command, self.path))
        split = urlsplit(self.path)
        path = split.path
        query = parse_qs(split.query)
        if path.startswith("/api/models/"):
            rest = path[len("/api/models/") :]
            for marker, route in (("/revision/", self._revision), ("/tree/", self._tree)):
                if marker in rest:
                    repo_id, tail = rest.split(marker, 1)
                    route(unquote(repo_id), tail, query)
                    return
            self._revision(unquote(rest), "main", query)
            return
        if "/resolve/" in path:
            repo_id, tail = path.lstrip("/").split("/resolve/", 1)
            self._resolve(unquote(repo_id), tail, head=head)
            return
        self._error(404, "NotFound", f"no route for {path}", head=head)

    def _revision(self, repo_id: str, tail: str, query: dict[str, list[str]]) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        sha = repo.resolve(unquote(tail))
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {unquote(tail)}")
            return
        files = repo.commits[sha]
        siblings = [
            {"rfilename": name, **({"size": len(files[name])} if "blobs" in query else {})}
            for name in sorted(files)
        ]
        self._json({"id": repo_id, "sha": sha, "private": False, "siblings": siblings})

    def _tree(self, repo_id: str, tail: str, query: dict[str, list[str]]) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        revision, _, prefix = tail.partition("/")
        sha = repo.resolve(unquote(revision))
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {unquote(revision)}")
            return
        prefix = unquote(prefix)
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        entries = _tree_entries(repo.commits[sha], prefix, recursive)
        if prefix and not entries:
            self._error(404, "EntryNotFound", f"{prefix} does not exist")
            return
        start = int(query.get("cursor", ["0"])[0])
        page = entries[start : start + PAGE]
        headers = {}
        if start + PAGE < len(entries):
            params = f"recursive={str(recursive).lower()}&cursor={start + PAGE}"
            link = f"{self.hub.url}/api/models/{repo_id}/tree/{quote(revision, safe='')}"
            if prefix:
                link += "/" + quote(prefix, safe="")
            headers["Link"] = f'<{link}?{params}>; rel="next"'
        self._json(page, headers)

    def _resolve(self, repo_id: str, tail: str, *, head: bool) -> None:
        repo = self._repo(repo_id, head=head)
        if repo is None:
            return
        revision, _, name = tail.partition("/")
        sha = repo.resolve(unquote(revision))
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head=head)
            return
        data = repo.commits[sha].get(unquote(name))
        if data is None:
            self._error(404, "EntryNotFound", f"{name} does not exist", head=head)
            return
        headers = {"X-Repo-Commit": sha, "Accept-Ranges": "bytes"}
        if len(data) >= LFS_FROM:
            headers["X-Linked-Etag"] = f'"{hashlib.sha256(data).hexdigest()}"'
            headers["X-Linked-Size"] = str(len(data))
            headers["ETag"] = f'"{hashlib.sha256(data).hexdigest()}"'
        else:
            headers["ETag"] = f'"{_blob_id(data)}"'
        status = 200
        wanted = self.headers.get("Range", "")
        if wanted.startswith("bytes=") and not head:
            first = int(wanted[len("bytes=") :].split("-", 1)[0] or 0)
            headers["Content-Range"] = f"bytes {first}-{len(data) - 1}/{len(data)}"
            data = data[first:]
            status = 206
        self._send(status, data, headers, head=head, ctype="application/octet-stream")


def _tree_entries(files: Mapping[str, bytes], prefix: str, recursive: bool) -> list[dict[str, Any]]:
    """The Hub's tree listing of ``prefix``: files (and folders) under it."""
    base = f"{prefix}/" if prefix else ""
    entries: list[dict[str, Any]] = []
    folders: set[str] = set()
    for name in sorted(files):
        if not name.startswith(base):
            continue
        rest = name[len(base) :]
        parts = rest.split("/")
        for depth in range(1, len(parts)):
            folder = base + "/".join(parts[:depth])
            if (recursive or depth == 1) and folder not in folders:
                folders.add(folder)
                entries.append({"type": "directory", "path": folder, "oid": _blob_id(b"")})
        if not recursive and len(parts) > 1:
            continue
        data = files[name]
        entry: dict[str, Any] = {
            "type": "file",
            "path": name,
            "size": len(data),
            "oid": _blob_id(data),
        }
        if len(data) >= LFS_FROM:
            entry["lfs"] = {
                "oid": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "pointerSize": 134,
            }
        entries.append(entry)
    return entries


@contextmanager
def serve_hub(repos: dict[str, Repo]) -> Iterator[HubServer]:
    """Serve ``repos`` on 127.0.0.1 (a free port) for the duration of the block."""
    hub = HubServer(repos)
    handler = type("Handler", (_Handler,), {"hub": hub})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
