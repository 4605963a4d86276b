"""The online vulnerability source: the OSV API (https://google.github.io/osv.dev/api/).

Two calls: ``POST /v1/querybatch`` names the advisories that concern each package (at a version,
when one is pinned), then ``GET /v1/vulns/{id}`` fetches each record. Records are cached on disk
and reused while their ``modified`` stamp (which querybatch returns) is unchanged; querybatch
answers are cached for ``ttl`` seconds. Every request has a timeout and a bounded number of
retries (connection errors, 429 and 5xx only); a service that cannot be reached raises
:class:`~modelshield.audit.interface.AuditServiceError`, which the CLI reports with exit 2.

Only the standard library is used (``urllib``), to keep the core light.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelshield._version import __version__
from modelshield.audit.advisory import AdvisoryFormatError, parse_advisory
from modelshield.audit.cache import atomic_write
from modelshield.audit.interface import AuditServiceError, VulnerabilitySource
from modelshield.audit.records import Advisory, PackageQuery
from modelshield.core.limits import Limits

DEFAULT_URL = "https://api.osv.dev"
"""The public OSV API."""
BATCH_SIZE = 1000
"""Queries per querybatch request (the API's maximum)."""
_HINT = (
    "Check the network (or --osv-url), or audit offline: `modelshield db update` once, "
    "then `modelshield audit --offline` (or --db PATH)."
)
_SAFE_ID = re.compile(r"[^A-Za-z0-9._-]")


class OsvApi(VulnerabilitySource):
    """Advisories from the OSV API, with an on-disk cache, timeouts and bounded retries."""

    name = "osv-api"

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        cache_dir: Path | None = None,
        *,
        timeout: float = 15.0,
        retries: int = 2,
        ttl: float = 3600.0,
        workers: int = 8,
        limits: Limits | None = None,
    ) -> None:
        """Talk to ``base_url`` (e.g. ``http://127.0.0.1:8080`` for a local OSV server)."""
        self.base_url = base_url.rstrip("/")
        self.cache_dir = cache_dir / "osv-api" if cache_dir is not None else None
        self.timeout = timeout
        self.retries = max(0, retries)
        self.ttl = ttl
        self.workers = max(1, workers)
        self.limits = limits or Limits()
        self.requests_made = 0
        """HTTP requests sent by this instance (cache hits send none)."""

    # ---- HTTP -----------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None = None) -> Any:
        url = self.base_url + path
        cap = self.limits.max_document_bytes
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(2.0, 0.25 * 2 ** (attempt - 1)))
            request = urllib.request.Request(
                url,
                data=body,
                method=method,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": f"modelshield/{__version__}",
                },
            )
            self.requests_made += 1
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    data = resp.read(cap + 1)
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code} {e.reason}"
                if e.code == 429 or e.code >= 500:
                    continue
                raise AuditServiceError(f"the OSV API at {url} answered {last}", _HINT) from e
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                reason = getattr(e, "reason", None) or e
                last = str(reason)
                continue
            if len(data) > cap:
                raise AuditServiceError(
                    f"the OSV API at {url} sent more than {cap} bytes (limits.max_document_bytes)"
                )
            try:
                return json.loads(data)
            except (ValueError, UnicodeDecodeError) as e:
                raise AuditServiceError(f"the OSV API at {url} sent invalid JSON: {e}") from e
        raise AuditServiceError(
            f"cannot reach the OSV API at {url} after {self.retries + 1} attempt(s): {last}", _HINT
        )

    # ---- cache ----------------------------------------------------------------------------
    def _cache_get(self, path: Path | None, max_age: float | None) -> Any:
        if path is None:
            return None
        try:
            if max_age is not None and time.time() - path.stat().st_mtime > max_age:
                return None
            return json.loads(path.read_bytes())
        except (OSError, ValueError, UnicodeDecodeError):
            return None

    def _cache_put(self, path: Path | None, doc: Any) -> None:
        if path is not None:
            atomic_write(path, json.dumps(doc, separators=(",", ":")).encode())

    # ---- the two calls --------------------------------------------------------------------
    def _querybatch(self, queries: Sequence[PackageQuery]) -> list[list[tuple[str, str]]]:
        """For each query, the ``(id, modified)`` of the advisories the server matched."""
        out: list[list[tuple[str, str]]] = [[] for _ in queries]
        for start in range(0, len(queries), BATCH_SIZE):
            chunk = list(range(start, min(start + BATCH_SIZE, len(queries))))
            pending = dict.fromkeys(chunk, "")  # query index -> page token
            seen_total = 0
            while pending:
                order = sorted(pending)
                payload = []
                for i in order:
                    q: dict[str, Any] = {
                        "package": {"name": queries[i].canonical, "ecosystem": "PyPI"}
                    }
                    if queries[i].version is not None:
                        q["version"] = queries[i].version
                    if pending[i]:
                        q["page_token"] = pending[i]
                    payload.append(q)
                results = self._batch_call({"queries": payload})
                if len(results) != len(order):
                    raise AuditServiceError(
                        f"the OSV API answered {len(results)} results for {len(order)} queries"
                    )
                next_pending: dict[int, str] = {}
                for i, result in zip(order, results, strict=True):
                    vulns, token = _batch_result(result)
                    new = [v for v in vulns if v not in out[i]]
                    out[i].extend(new)
                    seen_total += len(new)
                    if token and new:  # a token that brings nothing new would loop forever
                        next_pending[i] = token
                if seen_total > self.limits.max_members:
                    raise AuditServiceError(
                        f"the OSV API listed more than {self.limits.max_members} advisories "
                        "(limits.max_members)"
                    )
                pending = next_pending
        return out

    def _batch_call(self, body: dict[str, Any]) -> list[Any]:
        raw = json.dumps(body, sort_keys=True).encode()
        cache = None
        if self.cache_dir is not None and self.ttl > 0:
            cache = self.cache_dir / "batch" / f"{hashlib.sha256(raw).hexdigest()}.json"
        doc = self._cache_get(cache, self.ttl)
        if doc is None:
            doc = self._request("POST", "/v1/querybatch", raw)
            if isinstance(doc, Mapping) and isinstance(doc.get("results"), list):
                self._cache_put(cache, doc)
        if not isinstance(doc, Mapping) or not isinstance(doc.get("results"), list):
            raise AuditServiceError("the OSV API's querybatch answer has no 'results' list")
        return list(doc["results"])

    def _vuln(self, ident: str, modified: str) -> Advisory | None:
        cache = None
        if self.cache_dir is not None:
            cache = self.cache_dir / "vulns" / f"{_SAFE_ID.sub('_', ident)}.json"
        doc = self._cache_get(cache, None if modified else self.ttl)
        if (
            not isinstance(doc, Mapping)
            or doc.get("id") != ident
            or (modified and doc.get("modified") != modified)
        ):
            doc = self._request("GET", "/v1/vulns/" + urllib.parse.quote(ident, safe=""))
            self._cache_put(cache, doc)
        try:
            return parse_advisory(doc)
        except AdvisoryFormatError as e:
            raise AuditServiceError(f"the OSV API sent an unusable record for {ident}: {e}") from e

    def advisories(self, queries: Sequence[PackageQuery]) -> Mapping[str, tuple[Advisory, ...]]:
        """Ask querybatch, then fetch (or reuse) each record."""
        unique = sorted(set(queries), key=lambda q: (q.canonical, q.version or ""))
        listed = self._querybatch(unique) if unique else []
        wanted = {ident: modified for vulns in listed for ident, modified in vulns}
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(self.workers, max(1, len(wanted)))) as pool:
            fetched = dict(
                zip(wanted, pool.map(lambda kv: self._vuln(*kv), wanted.items()), strict=True)
            )
        out: dict[str, dict[str, Advisory]] = {q.canonical: {} for q in unique}
        for q, vulns in zip(unique, listed, strict=True):
            for ident, _ in vulns:
                adv = fetched.get(ident)
                if adv is not None:
                    out[q.canonical][ident] = adv
        return {name: tuple(v[k] for k in sorted(v)) for name, v in out.items()}

    def describe(self) -> str:
        """The API's URL."""
        return f"OSV API {self.base_url}"


def _batch_result(result: Any) -> tuple[list[tuple[str, str]], str]:
    if not isinstance(result, Mapping):
        raise AuditServiceError(
            "the OSV API's querybatch answer holds a result that is not an object"
        )
    vulns = result.get("vulns") or []
    if not isinstance(vulns, list):
        raise AuditServiceError("the OSV API's querybatch answer has a 'vulns' that is not a list")
    out: list[tuple[str, str]] = []
    for v in vulns:
        if not isinstance(v, Mapping) or not isinstance(v.get("id"), str):
            raise AuditServiceError("the OSV API's querybatch answer lists a vuln without an id")
        modified = v.get("modified")
        out.append((v["id"], modified if isinstance(modified, str) else ""))
    token = result.get("next_page_token")
    return out, token if isinstance(token, str) else ""
