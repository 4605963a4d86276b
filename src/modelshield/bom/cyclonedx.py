"""An ML bill of materials in CycloneDX 1.6 JSON, built with cyclonedx-python-lib.

The BOM describes one model (a file or a directory):

* ``metadata.component`` is the model, of type ``machine-learning-model``. A single-file model
  carries its SHA-256 there; a directory's files are nested components of type ``file``, each
  with its SHA-256 and what the scan learnt about it.
* What the scan learnt is recorded as properties in the ``modelshield:`` namespace (names in
  :data:`PROPERTY_NAMES`): the detected format, every format met inside, the framework(s) and
  the versions the file records, the callables its pickles import, and every scan finding
  (``modelshield:finding``: ``RULE-ID severity: title @ location``).
* Software dependencies (``name``/``version``, e.g. from the dependency audit) are ``library``
  components with a ``pkg:pypi`` package URL, and the model depends on them.
* Known vulnerabilities (advisories with an id, e.g. from the dependency audit) are
  ``vulnerabilities`` affecting the dependency they concern.

Library code: nothing here prints. cyclonedx-python-lib is imported when a BOM is built; without
it a :class:`~modelshield.core.errors.MissingExtraError` names the ``bom`` extra.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modelshield._version import __version__
from modelshield.core.errors import MissingExtraError
from modelshield.core.findings import ErrorRecord, FileResult, Finding, Location, Report, Severity
from modelshield.core.policy import Policy

if TYPE_CHECKING:
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component

PROPERTY_NAMES: Mapping[str, str] = {
    "modelshield:format": "Format detected from the file's bytes (e.g. zip, pickle, safetensors).",
    "modelshield:formats_seen": "Every format met inside the file, outermost first.",
    "modelshield:framework": "ML framework(s) the file was made with, as far as it shows.",
    "modelshield:metadata:<key>": "A fact the file records, e.g. sklearn_version.",
    "modelshield:import": "A callable the file's pickles import (module:qualname).",
    "modelshield:finding": "A scan finding: RULE-ID severity: title @ location.",
    "modelshield:max_severity": "The worst scan finding's severity (none when there is none).",
    "modelshield:error": "Part of the file could not be analysed: why.",
    "modelshield:size": "Size of the file in bytes.",
    "modelshield:origin": "Why a dependency is listed (declared, locked, model-implied...).",
}
"""The ``modelshield:`` properties a BOM may carry, and what each means."""

# Top-level modules a pickle imports -> the framework (and PyPI distribution) they belong to.
FRAMEWORKS: Mapping[str, tuple[str, str]] = {
    "torch": ("pytorch", "torch"),
    "sklearn": ("scikit-learn", "scikit-learn"),
    "numpy": ("numpy", "numpy"),
    "joblib": ("joblib", "joblib"),
    "xgboost": ("xgboost", "xgboost"),
    "lightgbm": ("lightgbm", "lightgbm"),
    "catboost": ("catboost", "catboost"),
    "tensorflow": ("tensorflow", "tensorflow"),
    "keras": ("keras", "keras"),
    "transformers": ("transformers", "transformers"),
    "pandas": ("pandas", "pandas"),
    "scipy": ("scipy", "scipy"),
}
"""Module -> (framework label, PyPI distribution), for the frameworks a model commonly needs."""

# Formats that name their framework by themselves.
_FORMAT_FRAMEWORKS: Mapping[str, str] = {
    "pytorch-legacy": "pytorch",
    "safetensors": "safetensors",
    "gguf": "ggml",
    "hdf5": "keras",
    "numpy": "numpy",
}

_SEVERITY_NAMES = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "high",
    Severity.MEDIUM: "medium",
    Severity.LOW: "low",
    Severity.INFO: "info",
}


class DependencyLike(Protocol):
    """A software dependency: the dependency audit's ``Dependency`` fits, as does
    :class:`BomDependency`."""

    @property
    def name(self) -> str:
        """Distribution name as written."""

    @property
    def version(self) -> str | None:
        """Exact version, when known."""


@dataclass(frozen=True)
class BomDependency:
    """A dependency to list in a BOM."""

    name: str
    """Distribution name (PyPI)."""
    version: str | None = None
    """Exact version, when known."""
    origin: str = "declared"
    """Why it is listed: ``declared``, ``locked``, ``installed`` or ``model-implied``."""


@dataclass(frozen=True)
class BomVulnerability:
    """A known vulnerability of a dependency (an OSV advisory)."""

    id: str
    """Advisory id, e.g. ``GHSA-xxxx-xxxx-xxxx`` or ``PYSEC-2024-1``."""
    package: str
    """The affected distribution's name."""
    version: str | None = None
    """The affected version in use, when known."""
    severity: Severity | None = None
    """Severity, when known."""
    summary: str = ""
    """One line describing it."""
    aliases: tuple[str, ...] = ()
    """Other ids (CVE...)."""
    fixed: tuple[str, ...] = ()
    """Versions that fix it."""
    references: tuple[str, ...] = ()
    """URLs."""

    @classmethod
    def from_finding(cls, finding: Finding) -> BomVulnerability | None:
        """The vulnerability an audit finding reports, or None when it names no advisory.

        Reads the finding's evidence: ``advisory`` (the id, required), ``package``,
        ``version``, ``aliases`` and ``fixed`` (comma-separated) and ``references``
        (space-separated URLs).
        """
        ev = finding.evidence
        advisory = ev.get("advisory", "").strip()
        if not advisory:
            return None
        return cls(
            id=advisory,
            package=ev.get("package", "").strip() or "unknown",
            version=ev.get("version") or None,
            severity=finding.severity,
            summary=finding.title,
            aliases=_split(ev.get("aliases", ""), ","),
            fixed=_split(ev.get("fixed", ""), ","),
            references=_split(ev.get("references", ""), " "),
        )


def _split(text: str, sep: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(sep) if p.strip())


def canonical_name(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def frameworks_of(result: FileResult) -> list[str]:
    """Frameworks a scanned file shows it was made with (format and imported modules)."""
    found: list[str] = []
    for fmt in (result.format, *result.formats_seen):
        fw = _FORMAT_FRAMEWORKS.get(fmt)
        if fw is not None and fw not in found:
            found.append(fw)
    for imp in result.imports:
        module = imp.split(":", 1)[0].split(".", 1)[0]
        fw = FRAMEWORKS.get(module, (None, None))[0]
        if fw is not None and fw not in found:
            found.append(fw)
    if "torch_archive_version" in result.metadata and "pytorch" not in found:
        found.insert(0, "pytorch")
    return found


def implied_dependencies(results: Sequence[FileResult]) -> list[BomDependency]:
    """Distributions a load of the scanned files needs, from the modules their pickles import.

    Versions are unknown (a pickle does not record them); the dependency audit gives better
    data where a requirements or lock file is available.
    """
    seen: dict[str, BomDependency] = {}
    for result in results:
        for imp in result.imports:
            module = imp.split(":", 1)[0].split(".", 1)[0]
            if module in FRAMEWORKS:
                dist = FRAMEWORKS[module][1]
                seen.setdefault(dist, BomDependency(dist, None, origin="model-implied"))
    return [seen[k] for k in sorted(seen)]


def _lib() -> Any:
    try:
        from cyclonedx.model.bom import Bom  # noqa: F401
    except ImportError as e:
        raise MissingExtraError("the ML bill of materials", "bom", "cyclonedx-python-lib") from e
    import cyclonedx

    return cyclonedx


def _properties(result: FileResult, size: int | None) -> list[Any]:
    from cyclonedx.model import Property

    props = [Property(name="modelshield:format", value=result.format)]
    if result.formats_seen:
        props.append(Property(name="modelshield:formats_seen", value=",".join(result.formats_seen)))
    props.extend(Property(name="modelshield:framework", value=fw) for fw in frameworks_of(result))
    for key, value in sorted(result.metadata.items()):
        props.append(Property(name=f"modelshield:metadata:{key}", value=str(value)))
    props.extend(Property(name="modelshield:import", value=imp) for imp in result.imports)
    for f in result.findings:
        text = f"{f.rule_id} {f.severity.label}: {f.title} @ {f.location.display()}"
        props.append(Property(name="modelshield:finding", value=text))
    worst = result.max_severity
    props.append(Property(name="modelshield:max_severity", value=worst.label if worst else "none"))
    props.extend(
        Property(name="modelshield:error", value=f"{e.stage}: {e.message}") for e in result.errors
    )
    if size is not None:
        props.append(Property(name="modelshield:size", value=str(size)))
    return props


def _hashes(sha256: str | None) -> list[Any]:
    from cyclonedx.model import HashAlgorithm, HashType

    return [HashType(alg=HashAlgorithm.SHA_256, content=sha256)] if sha256 else []


def build_bom(
    model_name: str,
    files: Sequence[tuple[str, FileResult]],
    sha256: Mapping[str, str],
    *,
    single_file: bool,
    dependencies: Sequence[DependencyLike] = (),
    vulnerabilities: Sequence[BomVulnerability] = (),
    findings: Sequence[Finding] = (),
) -> Bom:
    """Build the BOM of one model.

    ``files`` pairs each file's name inside the model (its relative path; the file name for a
    single-file model) with its scan result; ``sha256`` maps the same names to hex digests.
    ``findings`` are extra findings (e.g. from the dependency audit): those naming an advisory
    (see :meth:`BomVulnerability.from_finding`) become vulnerabilities, the others properties
    of the model.
    """
    _lib()
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType

    model_props: list[Any] = []
    nested: list[Component] = []
    model_hashes: list[Any] = []
    for name, result in files:
        if single_file:
            model_props.extend(_properties(result, result.size))
            model_hashes = _hashes(sha256.get(name))
        else:
            nested.append(
                Component(
                    type=ComponentType.FILE,
                    name=name,
                    bom_ref=f"file:{name}",
                    hashes=_hashes(sha256.get(name)),
                    properties=_properties(result, result.size),
                )
            )
    if not single_file:
        fws = sorted({fw for _, r in files for fw in frameworks_of(r)})
        model_props.extend(Property(name="modelshield:framework", value=fw) for fw in fws)
    vulns = list(vulnerabilities)
    for f in findings:
        v = BomVulnerability.from_finding(f)
        if v is not None:
            vulns.append(v)
        else:
            text = f"{f.rule_id} {f.severity.label}: {f.title} @ {f.location.display()}"
            model_props.append(Property(name="modelshield:finding", value=text))
    model = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL,
        name=model_name,
        bom_ref="model",
        hashes=model_hashes,
        properties=model_props,
        components=nested,
    )
    bom = Bom()
    bom.metadata.component = model
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="modelshield", version=__version__)
    )
    libs = _library_components(dependencies, vulns)
    for lib in libs.values():
        bom.components.add(lib)
    bom.register_dependency(model, list(libs.values()))
    seen: set[tuple[str, str, str | None]] = set()
    for v in vulns:
        key = (v.id, canonical_name(v.package), v.version)
        if key not in seen:  # the same advisory met through several inputs is listed once
            seen.add(key)
            bom.vulnerabilities.add(_vulnerability(v, libs))
    return bom


def _purl(name: str, version: str | None) -> Any:
    from packageurl import PackageURL

    return PackageURL(type="pypi", name=canonical_name(name), version=version or None)


def _library_components(
    dependencies: Sequence[DependencyLike], vulns: Sequence[BomVulnerability]
) -> dict[tuple[str, str | None], Component]:
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType

    libs: dict[tuple[str, str | None], Component] = {}

    def add(name: str, version: str | None, origin: str | None) -> None:
        key = (canonical_name(name), version)
        if key in libs:
            return
        purl = _purl(name, version)
        props = [Property(name="modelshield:origin", value=origin)] if origin else []
        libs[key] = Component(
            type=ComponentType.LIBRARY,
            name=name,
            version=version,
            purl=purl,
            bom_ref=purl.to_string(),
            properties=props,
        )

    for dep in dependencies:
        add(dep.name, dep.version, getattr(dep, "origin", None))
    for v in vulns:
        if not any(k[0] == canonical_name(v.package) for k in libs):
            add(v.package, v.version, "advisory")
    return libs


def _vulnerability(v: BomVulnerability, libs: Mapping[tuple[str, str | None], Component]) -> Any:
    from cyclonedx.model import XsUri
    from cyclonedx.model.vulnerability import (
        BomTarget,
        Vulnerability,
        VulnerabilityRating,
        VulnerabilityReference,
        VulnerabilitySeverity,
        VulnerabilitySource,
    )

    osv = VulnerabilitySource(name="OSV", url=XsUri(f"https://osv.dev/vulnerability/{v.id}"))
    name = canonical_name(v.package)
    targets = [
        BomTarget(ref=str(lib.bom_ref.value))
        for (n, version), lib in libs.items()
        if n == name and (v.version is None or version in (None, v.version))
    ]
    ratings = []
    if v.severity is not None:
        sev = VulnerabilitySeverity(_SEVERITY_NAMES[v.severity])
        ratings.append(VulnerabilityRating(source=osv, severity=sev))
    return Vulnerability(
        bom_ref=f"vuln:{v.id}:{name}:{v.version or ''}",
        id=v.id,
        source=osv,
        references=[
            VulnerabilityReference(
                id=alias,
                source=VulnerabilitySource(url=XsUri(f"https://osv.dev/vulnerability/{alias}")),
            )
            for alias in v.aliases
        ],
        ratings=ratings,
        description=v.summary or None,
        recommendation=f"Upgrade {v.package} to {' or '.join(v.fixed)}" if v.fixed else None,
        affects=targets,
    )


def bom_json(bom: Bom) -> str:
    """The BOM as CycloneDX 1.6 JSON text."""
    from cyclonedx.output.json import JsonV1Dot6

    return str(JsonV1Dot6(bom).output_as_string(indent=2)) + "\n"


def validate_bom_json(text: str) -> str | None:
    """Validate CycloneDX 1.6 JSON against the official schema; the error, or None if valid.

    Needs cyclonedx-python-lib's ``json-validation`` extra.
    """
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    return None if error is None else str(error)


@dataclass(frozen=True)
class BomOutcome:
    """What :func:`create_bom` produced."""

    bom: Bom
    """The bill of materials."""
    scan: Report
    """The scan report the BOM was built from (policy applied)."""
    errors: tuple[ErrorRecord, ...]
    """Files that could not be hashed (their components have no hash)."""


def create_bom(
    model: str | os.PathLike[str],
    *,
    policy: Policy | None = None,
    dependencies: Sequence[DependencyLike] | None = None,
    vulnerabilities: Sequence[BomVulnerability] = (),
    findings: Sequence[Finding] = (),
    workers: int | None = None,
) -> BomOutcome:
    """Scan and hash a model (file or directory) and build its BOM.

    ``dependencies=None`` lists the distributions the model's pickles import
    (:func:`implied_dependencies`); pass the dependency audit's list for versions.
    """
    from modelshield.integrity.hashing import FileDigest, HashJob, hash_files
    from modelshield.scanner.engine import scan_paths

    policy = policy or Policy()
    root = os.fspath(model)
    report = policy.apply(scan_paths([root], policy))
    single = not Path(root).is_dir()
    named = [
        (Path(root).name if single else Path(os.path.relpath(r.path, root)).as_posix(), r)
        for r in report.results
    ]
    jobs = [
        HashJob(name, r.path, plain=True, chunked=False)
        for name, r in named
        if not any(e.stage == "io" for e in r.errors)
    ]
    sha256: dict[str, str] = {}
    errors: list[ErrorRecord] = []
    paths = dict(named)
    for h in hash_files(jobs, workers=workers, max_file_bytes=policy.limits.max_file_bytes):
        if isinstance(h, FileDigest) and h.sha256 is not None:
            sha256[h.path] = h.sha256
        else:
            message = getattr(h, "message", "no digest")
            errors.append(ErrorRecord(Location(paths[h.path].path), message, stage="io"))
    deps = implied_dependencies(report.results) if dependencies is None else dependencies
    model_name = Path(root).name or Path(root).absolute().name
    bom = build_bom(
        model_name,
        named,
        sha256,
        single_file=single,
        dependencies=deps,
        vulnerabilities=vulnerabilities,
        findings=findings,
    )
    return BomOutcome(bom, report, tuple(errors))


__all__ = [
    "PROPERTY_NAMES",
    "BomDependency",
    "BomOutcome",
    "BomVulnerability",
    "DependencyLike",
    "bom_json",
    "build_bom",
    "create_bom",
    "frameworks_of",
    "implied_dependencies",
    "validate_bom_json",
]
