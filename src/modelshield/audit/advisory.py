"""Read OSV vulnerability records (https://ossf.github.io/osv-schema/) into :class:`Advisory`.

Reading is tolerant, because real advisory data has traps, and every problem is kept as a
warning on the advisory instead of aborting the audit:

- an ``events`` entry that is an empty object ``{}`` (seen upstream in PYSEC-2026-89) is skipped;
- an event whose version is not text (a YAML/JSON float such as ``3.1`` that was ``3.10``) makes
  its whole range unusable: the range is skipped, the ``versions`` list still applies;
- a range without an ``introduced`` event is kept (it matches nothing) and reported;
- a range bound that is not PEP 440 (``fixed: 0.2.0-n653``) is kept, ordered as a legacy version
  (see :mod:`modelshield.audit.match`), and reported, because the range may then miss the
  versions it means;
- ``affected`` entries of other ecosystems and ``GIT``/``SEMVER`` ranges are ignored.

The compact JSON form (:func:`to_json` / :func:`from_json`) is what the offline index stores:
each range event carries its order key (:mod:`modelshield.audit.versions`), so that records read
back match versions without parsing them, and long version lists are split only when read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from modelshield.audit.match import CompiledEntry, KeyList, attach_compiled, compiled
from modelshield.audit.records import (
    Advisory,
    AffectedPackage,
    CvssScore,
    Deferred,
    Event,
    EventKind,
    VersionRange,
)
from modelshield.audit.versions import exact_key, parse_version
from modelshield.core.findings import Severity

MAX_DETAILS = 1000
"""Characters of ``details`` kept: reports quote the summary or the first paragraph, and the
whole text is on the advisory's web page (a smaller index also loads faster)."""
MAX_REFERENCES = 12
"""Reference URLs kept per advisory."""


_SEP = " "  # versions never hold whitespace (such entries are dropped when read)


class AdvisoryFormatError(ValueError):
    """The record cannot be used at all (not an object, no id)."""


def _list(value: Any) -> list[Any]:
    """A JSON/YAML array as a list; anything else (a scalar, an object, null) as empty."""
    return list(value) if isinstance(value, list | tuple) else []


def _text(value: Any) -> str | None:
    """A version-like scalar as text; None when it cannot be trusted (floats, objects)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _parse_range(raw: Any, pkg: str, warnings: list[str]) -> VersionRange | None:
    if not isinstance(raw, Mapping) or raw.get("type") != "ECOSYSTEM":
        return None
    events_raw = raw.get("events")
    if not isinstance(events_raw, list | tuple):
        warnings.append(f"{pkg}: ECOSYSTEM range without an events list was skipped")
        return None
    events: list[Event] = []
    for item in events_raw:
        if isinstance(item, Mapping) and not item:
            warnings.append(f"{pkg}: empty event {{}} in a range was skipped")
            continue
        if not isinstance(item, Mapping) or len(item) != 1:
            warnings.append(f"{pkg}: malformed event {item!r}; the range was skipped")
            return None
        ((key, value),) = item.items()
        try:
            kind = EventKind(key)
        except ValueError:
            warnings.append(f"{pkg}: unknown event {key!r}; the range was skipped")
            return None
        version = _text(value)
        if version is None or not version.strip():
            warnings.append(
                f"{pkg}: event {key}: {value!r} is not a version string (a number read from "
                "unquoted YAML/JSON loses digits, e.g. 3.10 -> 3.1); the range was skipped"
            )
            return None
        is_start = kind is EventKind.INTRODUCED and version.strip() == "0"
        if not is_start and not parse_version(version.strip()).is_pep440:
            warnings.append(
                f"{pkg}: {key}: {version!r} is not a PEP 440 version; it is ordered before "
                "every PEP 440 release, so this range may not cover the versions it means"
            )
        events.append(Event(kind, version))
    if events and not any(e.kind is EventKind.INTRODUCED for e in events):
        warnings.append(f"{pkg}: range has no 'introduced' event, so it matches no version")
    return VersionRange(tuple(events))


def _parse_affected(raw: Any, warnings: list[str]) -> AffectedPackage | None:
    if not isinstance(raw, Mapping):
        warnings.append(f"affected entry {raw!r} is not an object; skipped")
        return None
    package = raw.get("package")
    if not isinstance(package, Mapping):
        return None
    ecosystem = package.get("ecosystem")
    name = package.get("name")
    if not isinstance(ecosystem, str) or ecosystem.split(":", 1)[0].lower() != "pypi":
        return None
    if not isinstance(name, str) or not name.strip():
        warnings.append("affected PyPI entry without a package name; skipped")
        return None
    from packaging.utils import canonicalize_name  # reading records, not matching them

    canonical = canonicalize_name(name)
    ranges: list[VersionRange] = []
    for item in _list(raw.get("ranges")):
        parsed = _parse_range(item, canonical, warnings)
        if parsed is not None:
            ranges.append(parsed)
    versions: list[str] = []
    for value in _list(raw.get("versions")):
        text = _text(value)
        # One split instead of a test per character: a version holds no whitespace.
        if text is None or len(text.split()) != 1:
            warnings.append(f"{canonical}: listed version {value!r} is not a version; skipped")
        else:
            versions.append(text.strip())
    return AffectedPackage(
        name=canonical,
        ranges=tuple(ranges),
        versions=tuple(versions),
        version_keys=frozenset(exact_key(v) for v in versions),
    )


def _severity(doc: Mapping[str, Any]) -> tuple[Severity | None, str, CvssScore | None]:
    """The worst CVSS-derived severity (and its score), else the database's label, else
    unknown."""
    from modelshield.audit.cvss import label_severity, score_vector  # only when compiling

    entries: list[Any] = _list(doc.get("severity"))
    for affected in _list(doc.get("affected")):
        if isinstance(affected, Mapping):
            entries.extend(_list(affected.get("severity")))
    best: CvssScore | None = None
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        kind, vector = entry.get("type"), entry.get("score")
        if not isinstance(kind, str) or not isinstance(vector, str):
            continue
        try:
            score = score_vector(kind, vector)
        except ValueError:
            continue
        if score is not None and (best is None or score.severity > best.severity):
            best = score
    if best is not None:
        return best.severity, f"{best.vector} (base score {best.value})", best
    db = doc.get("database_specific")
    label = db.get("severity") if isinstance(db, Mapping) else None
    if isinstance(label, str):
        sev = label_severity(label)
        if sev is not None:
            return sev, f"database label {label}", None
    return None, "", None


def parse_advisory(doc: Any) -> Advisory:
    """Read one OSV record; raises :class:`AdvisoryFormatError` only when it has no usable id."""
    if not isinstance(doc, Mapping):
        raise AdvisoryFormatError("an OSV record must be an object")
    ident = doc.get("id")
    if not isinstance(ident, str) or not ident.strip():
        raise AdvisoryFormatError("OSV record without an 'id'")
    warnings: list[str] = []
    affected: list[AffectedPackage] = []
    for item in _list(doc.get("affected")):
        parsed = _parse_affected(item, warnings)
        if parsed is not None:
            affected.append(parsed)
    aliases = tuple(a for a in _list(doc.get("aliases")) if isinstance(a, str) and a != ident)
    severity, source, cvss = _severity(doc)
    refs_raw = [r for r in _list(doc.get("references")) if isinstance(r, Mapping)]
    refs_raw.sort(key=lambda r: 0 if r.get("type") == "ADVISORY" else 1)
    references = tuple(str(r["url"]) for r in refs_raw if isinstance(r.get("url"), str))
    withdrawn = doc.get("withdrawn")
    summary, details = doc.get("summary"), doc.get("details")
    modified = doc.get("modified")
    return Advisory(
        id=ident.strip(),
        aliases=aliases,
        summary=summary.strip() if isinstance(summary, str) else "",
        details=details.strip()[:MAX_DETAILS] if isinstance(details, str) else "",
        affected=tuple(affected),
        severity=severity,
        severity_source=source,
        references=references[:MAX_REFERENCES],
        withdrawn=str(withdrawn) if withdrawn else None,
        modified=str(modified) if modified else "",
        warnings=tuple(warnings),
        cvss=cvss,
    )


def to_json(adv: Advisory) -> dict[str, Any]:
    """A compact, JSON-serialisable form for the offline index.

    Each affected entry is stored compiled for matching (:class:`~modelshield.audit.match.
    CompiledEntry`: order keys in evaluation order, the fixed versions), with its events as
    written kept as one JSON text that is decoded only if the objects are asked for.
    """
    entries = []
    for a in adv.affected:
        form = compiled(a)
        entries.append(
            {
                "name": a.name,
                "events": json.dumps(
                    [[[e.kind.value, e.version] for e in r.events] for r in a.ranges],
                    separators=(",", ":"),
                ),
                "ranges": [[codes, list(bounds)] for codes, bounds in form.ranges],
                "fixed": [item for triple in form.fixed for item in triple],
                # One string per list: decoding 100 short strings costs far more than one.
                "versions": _SEP.join(a.versions),
                "keys": _SEP.join(sorted(a.version_keys)),
            }
        )
    return {
        "id": adv.id,
        "aliases": list(adv.aliases),
        "summary": adv.summary,
        "details": adv.details,
        "affected": entries,
        "severity": int(adv.severity) if adv.severity is not None else None,
        "severity_source": adv.severity_source,
        "references": list(adv.references),
        "withdrawn": adv.withdrawn,
        "modified": adv.modified,
        "warnings": list(adv.warnings),
        "cvss": (
            None
            if adv.cvss is None
            else {
                "vector": adv.cvss.vector,
                "value": adv.cvss.value,
                "severity": int(adv.cvss.severity),
            }
        ),
    }


def _cvss_json(score: CvssScore) -> dict[str, Any]:
    return {"vector": score.vector, "value": score.value, "severity": int(score.severity)}


_KINDS = {k.value: k for k in EventKind}


def _ranges(events: str) -> tuple[VersionRange, ...]:
    kinds = _KINDS
    return tuple(VersionRange(tuple(Event(kinds[k], v) for k, v in r)) for r in json.loads(events))


def _stored_entry(a: Mapping[str, Any]) -> AffectedPackage:
    """An entry of :func:`to_json`'s form: compiled for matching, its objects built on demand."""
    events: str = a["events"]
    versions: str = a["versions"]
    keys: str = a["keys"]
    fixed: list[str] = a["fixed"]
    entry = AffectedPackage(
        name=a["name"],
        ranges=Deferred(lambda: _ranges(events)),
        versions=Deferred(lambda: tuple(versions.split(_SEP)) if versions else ()),
        version_keys=Deferred(lambda: frozenset(keys.split(_SEP)) if keys else frozenset()),
    )
    form = CompiledEntry(
        listed=KeyList(keys),
        ranges=tuple((codes, bounds) for codes, bounds in a["ranges"]),
        fixed=tuple(zip(fixed[::3], fixed[1::3], fixed[2::3], strict=True)),
    )
    attach_compiled(entry, form)
    return entry


def from_json(d: Mapping[str, Any]) -> Advisory:
    """Rebuild an advisory from :func:`to_json`'s form (trusted: written by this module)."""
    severity = d.get("severity")
    return Advisory(
        id=d["id"],
        aliases=tuple(d["aliases"]),
        summary=d["summary"],
        details=d["details"],
        affected=tuple(_stored_entry(a) for a in d["affected"]),
        severity=Severity(severity) if severity is not None else None,
        severity_source=d["severity_source"],
        references=tuple(d["references"]),
        withdrawn=d["withdrawn"],
        modified=d["modified"],
        warnings=tuple(d["warnings"]),
        cvss=None
        if d.get("cvss") is None
        else CvssScore(d["cvss"]["vector"], d["cvss"]["value"], Severity(d["cvss"]["severity"])),
    )


def _entry_hook(kind: type, obj: Any) -> Any:
    if kind is AffectedPackage and isinstance(obj, dict):
        return _stored_entry(obj)
    raise NotImplementedError(f"not a stored type: {kind!r}")


class StoredDecoder:
    """Decode a JSON array of :func:`to_json` forms into advisories, the same as
    :func:`from_json` on each (what the offline index reads on every audit).

    msgspec builds the :class:`Advisory` records, their tuples and severities in C straight
    from the text; only the affected entries, which carry a compiled form and deferred fields,
    are built in Python. Measured on a 66-package audit: about half the time of ``json.loads``
    followed by :func:`from_json`.
    """

    def __init__(self) -> None:
        """Prepare the decoder (it reads :class:`Advisory`'s field types once)."""
        import msgspec

        self._decoder = msgspec.json.Decoder(list[Advisory], dec_hook=_entry_hook)
        self.error = msgspec.DecodeError

    def decode(self, text: str | bytes) -> list[Advisory]:
        """The advisories of one stored array; raises :attr:`error` on malformed input."""
        return self._decoder.decode(text)
