"""An ML bill of materials in CycloneDX 1.6 JSON, built with cyclonedx-python-lib.

The BOM describes one model (a file or a directory):

* ``metadata.component`` is the model, of type ``machine-learning-model``. A single-file model
  carries its SHA-256 there; a directory's files are nested components of type ``file``, each
  with its SHA-256 and what the scan learnt about it.
* What the scan learnt is recorded as properties in the ``modelshield:`` namespace (names in
  :data:`PROPERTY_NAMES`): the detected format, every format met inside, the framework(s) and
  the versions the file records, the callables its pickles import, and every scan finding
  (``modelshield:finding``: ``RULE-ID severity: title @ location``).
* Software dependencies are ``library`` components with a ``pkg:pypi/name@version`` package
  URL, and the model depends on them. :func:`create_bom` finds them as ``modelshield audit``
  does (:mod:`modelshield.bom.dependencies`): dependency files in the model directory and the
  dependencies the model files imply. Where each was found is in the component's ``evidence``
  (occurrences with file and line) and in ``modelshield:evidence`` properties.
* Known vulnerabilities (when a vulnerability source was given) are ``vulnerabilities``: the
  advisory id, its aliases as references, the affected component, a rating from the severity
  and a recommendation naming the fixed versions. The BOM's ``modelshield:vulnerabilities``
  property says whether they were checked, and against what.

Library code: nothing here prints. cyclonedx-python-lib is imported when a BOM is built; without
it a :class:`~modelshield.core.errors.MissingExtraError` names the ``bom`` extra.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from modelshield._version import __version__
from modelshield.bom.dependencies import (
    BomDependency,
    BomVulnerability,
    DependencyReport,
    audit_dependencies,
)
from modelshield.core.errors import MissingExtraError
from modelshield.core.findings import ErrorRecord, FileResult, Finding, Location, Report, Severity
from modelshield.core.policy import Policy

if TYPE_CHECKING:
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component

    from modelshield.audit.interface import VulnerabilitySource

PROPERTY_NAMES: Mapping[str, str] = {
    "modelshield:format": "Format detected from the file's bytes (e.g. zip, pickle, safetensors).",
    "modelshield:formats_seen": "Every format met inside the file, outermost first.",
    "modelshield:framework": "ML framework(s) the file was made with, as far as it shows.",
    "modelshield:metadata:<key>": "A fact the file records, e.g. sklearn_version.",
    "modelshield:recorded_version": "A library version a model file records, and where "
    "(e.g. scikit-learn==1.5.2 (sklearn_version in model.joblib)).",
    "modelshield:import": "A callable the file's pickles import (module:qualname).",
    "modelshield:finding": "A finding: RULE-ID severity: title @ location.",
    "modelshield:max_severity": "The worst scan finding's severity (none when there is none).",
    "modelshield:error": "Part of the file could not be analysed: why.",
    "modelshield:size": "Size of the file in bytes.",
    "modelshield:origin": "Why a dependency is listed (declared, locked, installed, "
    "model-implied, advisory).",
    "modelshield:evidence": "Where a dependency is stated: file[:line] origin declaration "
    "(details).",
    "modelshield:specifier": "A version range declared for a dependency.",
    "modelshield:unauditable": "Why no advisory can be matched to a dependency (URL, VCS).",
    "modelshield:dependency_input": "A dependency file or model file read for dependencies, "
    "with its kind.",
    "modelshield:vulnerabilities": "Whether known vulnerabilities were checked: checked or "
    "not-checked.",
    "modelshield:vulnerability_source": "The vulnerability source consulted.",
    "modelshield:declared_in": "Where a vulnerable version is stated (file:line).",
    "modelshield:severity_source": "Where a vulnerability's severity comes from.",
    "modelshield:excluded": "A dependency left out for the target's environment markers "
    "(--python-version, --platform): declaration (file:line): marker.",
    "modelshield:artifact_hash": "A release file's digest a lock or requirements file records "
    "for a dependency: file name (or -) algorithm:hex.",
}
"""The ``modelshield:`` properties a BOM may carry, and what each means."""

# Top-level modules a pickle imports -> the framework they belong to.
FRAMEWORKS: Mapping[str, str] = {
    "torch": "pytorch",
    "sklearn": "scikit-learn",
    "numpy": "numpy",
    "joblib": "joblib",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "transformers": "transformers",
    "pandas": "pandas",
    "scipy": "scipy",
}
"""Top-level module -> framework label, for the frameworks a model commonly needs."""

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
        fw = FRAMEWORKS.get(imp.split(":", 1)[0].split(".", 1)[0])
        if fw is not None and fw not in found:
            found.append(fw)
    if "torch_archive_version" in result.metadata and "pytorch" not in found:
        found.insert(0, "pytorch")
    return found


def _lib() -> Any:
    try:
        from cyclonedx.model.bom import Bom  # noqa: F401
    except ImportError as e:
        raise MissingExtraError("the ML bill of materials", "bom", "cyclonedx-python-lib") from e
    import cyclonedx

    return cyclonedx


def _finding_text(f: Finding) -> str:
    return f"{f.rule_id} {f.severity.label}: {f.title} @ {f.location.display()}"


def _properties(result: FileResult, size: int | None) -> list[Any]:
    from cyclonedx.model import Property

    props = [Property(name="modelshield:format", value=result.format)]
    if result.formats_seen:
        props.append(Property(name="modelshield:formats_seen", value=",".join(result.formats_seen)))
    props.extend(Property(name="modelshield:framework", value=fw) for fw in frameworks_of(result))
    for key, value in sorted(result.metadata.items()):
        props.append(Property(name=f"modelshield:metadata:{key}", value=str(value)))
    props.extend(Property(name="modelshield:import", value=imp) for imp in result.imports)
    props.extend(
        Property(name="modelshield:finding", value=_finding_text(f)) for f in result.findings
    )
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
    dependencies: Sequence[BomDependency] = (),
    vulnerabilities: Sequence[BomVulnerability] = (),
    findings: Sequence[Finding] = (),
    inputs: Sequence[tuple[str, str]] = (),
    vulnerability_source: str | None = None,
    excluded: Sequence[str] = (),
) -> Bom:
    """Build the BOM of one model.

    ``files`` pairs each file's name inside the model (its relative path; the file name for a
    single-file model) with its scan result; ``sha256`` maps the same names to hex digests.
    ``findings`` are the dependency audit's findings: ``AUDIT-VULNERABLE-*`` ones become
    vulnerabilities (:meth:`BomVulnerability.from_finding`), those naming a listed package
    properties of its components, the others properties of the model. ``inputs`` are the
    dependency inputs read (name, kind); ``vulnerability_source`` describes the source
    vulnerabilities were checked against (None: they were not checked); ``excluded`` lists
    the dependencies left out for the target's environment markers.
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
    for dep in dependencies:
        where = dep.recorded_version_source
        if dep.version is not None and where is not None:
            text = f"{dep.name}=={dep.version} ({where})"
            model_props.append(Property(name="modelshield:recorded_version", value=text))
    model_props.extend(
        Property(name="modelshield:dependency_input", value=f"{name} ({kind})")
        for name, kind in inputs
    )
    model_props.extend(Property(name="modelshield:excluded", value=e) for e in excluded)
    vulns = list(vulnerabilities)
    package_findings: list[Finding] = []
    for f in findings:
        v = BomVulnerability.from_finding(f)
        if v is not None:
            vulns.append(v)
        elif f.evidence.get("package"):
            package_findings.append(f)
        else:
            model_props.append(Property(name="modelshield:finding", value=_finding_text(f)))
    libs = _library_components(dependencies, vulns)
    for f in package_findings:
        targets = [c for (n, _), c in libs.items() if n == canonical_name(f.evidence["package"])]
        for component in targets or ():
            component.properties.add(Property(name="modelshield:finding", value=_finding_text(f)))
        if not targets:
            model_props.append(Property(name="modelshield:finding", value=_finding_text(f)))
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
    checked = vulnerability_source is not None
    bom.metadata.properties.add(
        Property(name="modelshield:vulnerabilities", value="checked" if checked else "not-checked")
    )
    if vulnerability_source is not None:
        bom.metadata.properties.add(
            Property(name="modelshield:vulnerability_source", value=vulnerability_source)
        )
    for lib in libs.values():
        bom.components.add(lib)
    bom.register_dependency(model, list(libs.values()))
    merged: dict[tuple[str, str, str | None], BomVulnerability] = {}
    for v in vulns:  # the same advisory met through several inputs is listed once
        merged.setdefault((v.id, canonical_name(v.package), v.version), v)
    for v in merged.values():
        bom.vulnerabilities.add(_vulnerability(v, libs))
    return bom


def _purl(name: str, version: str | None) -> Any:
    from packageurl import PackageURL

    return PackageURL(type="pypi", name=canonical_name(name), version=version or None)


def _library_components(
    dependencies: Sequence[BomDependency], vulns: Sequence[BomVulnerability]
) -> dict[tuple[str, str | None], Component]:
    from cyclonedx.model import Property
    from cyclonedx.model.component import Component, ComponentType

    libs: dict[tuple[str, str | None], Component] = {}
    for dep in [*dependencies, *_advisory_only(dependencies, vulns)]:
        key = (canonical_name(dep.name), dep.version)
        if key in libs:
            continue
        purl = _purl(dep.name, dep.version)
        origins = dict.fromkeys([dep.origin, *(ev.origin for ev in dep.evidence)])
        props = [Property(name="modelshield:origin", value=o) for o in origins]
        props.extend(
            Property(name="modelshield:evidence", value=ev.describe()) for ev in dep.evidence
        )
        props.extend(Property(name="modelshield:specifier", value=s) for s in dep.specifiers)
        if dep.unauditable is not None:
            props.append(Property(name="modelshield:unauditable", value=dep.unauditable))
        props.extend(
            Property(
                name="modelshield:artifact_hash",
                value=f"{a.name or '-'} {a.algorithm}:{a.digest}",
            )
            for a in dep.artifacts
        )
        libs[key] = Component(
            type=ComponentType.LIBRARY,
            name=dep.name,
            version=dep.version,
            purl=purl,
            bom_ref=purl.to_string(),
            properties=props,
            evidence=_occurrences(dep),
            external_references=_distributions(dep),
        )
    return libs


def _advisory_only(
    dependencies: Sequence[BomDependency], vulns: Sequence[BomVulnerability]
) -> list[BomDependency]:
    """Versions a vulnerability names that no dependency lists (a caller's own advisories)."""
    listed = {(canonical_name(d.name), d.version) for d in dependencies}
    names = {name for name, _ in listed}
    return [
        BomDependency(v.package, v.version, origin="advisory")
        for v in vulns
        if (canonical_name(v.package), v.version) not in listed
        and not (v.version is None and canonical_name(v.package) in names)
    ]


_HASH_ALGORITHMS = {
    "md5": "MD5",
    "sha1": "SHA-1",
    "sha256": "SHA-256",
    "sha384": "SHA-384",
    "sha512": "SHA-512",
    "blake2b": "BLAKE2b-512",
}
"""Digest names lock files use -> CycloneDX hash algorithms."""


def _distributions(dep: BomDependency) -> list[Any]:
    """One ``distribution`` external reference per release file whose URL and digest the
    inputs record (the wheels and sdist of a uv.lock or pylock.toml entry)."""
    from cyclonedx.model import (
        ExternalReference,
        ExternalReferenceType,
        HashAlgorithm,
        HashType,
        XsUri,
    )

    by_url: dict[str, list[Any]] = {}
    for a in dep.artifacts:
        algorithm = _HASH_ALGORITHMS.get(a.algorithm)
        if a.url and algorithm is not None:
            by_url.setdefault(a.url, []).append(
                HashType(alg=HashAlgorithm(algorithm), content=a.digest)
            )
    return [
        ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(url), hashes=hashes)
        for url, hashes in by_url.items()
    ]


def _occurrences(dep: BomDependency) -> Any:
    from cyclonedx.model.component_evidence import ComponentEvidence, Occurrence

    if not dep.evidence:
        return None
    return ComponentEvidence(
        occurrences=[
            Occurrence(location=ev.path, line=ev.line, additional_context=ev.describe())
            for ev in dep.evidence
        ]
    )


def _rating(v: BomVulnerability) -> Any:
    from cyclonedx.model.vulnerability import (
        VulnerabilityRating,
        VulnerabilityScoreSource,
        VulnerabilitySeverity,
        VulnerabilitySource,
    )

    if v.severity is None:
        return None
    severity = VulnerabilitySeverity(_SEVERITY_NAMES[v.severity])
    if v.cvss is not None:
        vector = v.cvss.vector
        method = (
            VulnerabilityScoreSource.CVSS_V3_1
            if vector.startswith("CVSS:3.1/")
            else VulnerabilityScoreSource.CVSS_V3
            if vector.startswith("CVSS:3")
            else VulnerabilityScoreSource.CVSS_V4
            if vector.startswith("CVSS:4")
            else VulnerabilityScoreSource.CVSS_V2
        )
        return VulnerabilityRating(
            source=VulnerabilitySource(name="OSV"),
            score=Decimal(str(v.cvss.value)),
            severity=severity,
            method=method,
            vector=vector,
        )
    # A database label, or no severity at all (the audit then reports HIGH): say which.
    return VulnerabilityRating(
        source=VulnerabilitySource(name="modelshield"),
        severity=severity,
        method=VulnerabilityScoreSource.OTHER,
        justification=v.severity_source or None,
    )


def _vulnerability(v: BomVulnerability, libs: Mapping[tuple[str, str | None], Component]) -> Any:
    from cyclonedx.model import Property, XsUri
    from cyclonedx.model.impact_analysis import ImpactAnalysisAffectedStatus
    from cyclonedx.model.vulnerability import (
        BomTarget,
        BomTargetVersionRange,
        Vulnerability,
        VulnerabilityAdvisory,
        VulnerabilityReference,
        VulnerabilitySource,
    )

    osv = VulnerabilitySource(name="OSV", url=XsUri(f"https://osv.dev/vulnerability/{v.id}"))
    name = canonical_name(v.package)
    # A version the advisory only possibly affects (a range bound that cannot be ordered
    # against it) is "unknown", not "affected".
    status = (
        ImpactAnalysisAffectedStatus.AFFECTED if v.certain else ImpactAnalysisAffectedStatus.UNKNOWN
    )
    versions = [BomTargetVersionRange(version=v.version, status=status)] if v.version else []
    targets = [
        BomTarget(ref=str(lib.bom_ref.value), versions=versions)
        for (n, version), lib in libs.items()
        if n == name and (v.version is None or version in (None, v.version))
    ]
    rating = _rating(v)
    if v.upgrade_to:
        recommendation = f"Upgrade {v.package} to {v.upgrade_to} or later"
        if v.fixed:
            recommendation += f" (fixed in: {', '.join(v.fixed)})"
    elif v.fixed:
        recommendation = f"Fixed in {', '.join(v.fixed)}: check each before upgrading {v.package}"
    else:
        recommendation = f"No fixed version of {v.package} is known"
    props = [Property(name="modelshield:declared_in", value=w) for w in v.declared_in]
    if v.severity_source:
        props.append(Property(name="modelshield:severity_source", value=v.severity_source))
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
        ratings=[rating] if rating is not None else [],
        description=v.summary or None,
        detail=v.detail or None,
        recommendation=recommendation + ".",
        advisories=[VulnerabilityAdvisory(url=XsUri(u)) for u in v.references],
        affects=targets,
        properties=props,
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


class BomOutcome(Struct, frozen=True):
    """What :func:`create_bom` produced."""

    bom: Bom
    """The bill of materials."""
    scan: Report
    """The scan report the BOM was built from (policy applied)."""
    errors: tuple[ErrorRecord, ...]
    """Files that could not be hashed (their components have no hash), and dependency files
    that could not be read."""
    dependencies: DependencyReport
    """The dependencies, vulnerabilities and audit findings the BOM lists."""


def create_bom(
    model: str | os.PathLike[str],
    *,
    policy: Policy | None = None,
    source: VulnerabilitySource | None = None,
    ignore: Iterable[str] = (),
    workers: int | None = None,
) -> BomOutcome:
    """Scan and hash a model (file or directory), find its dependencies, and build its BOM.

    Dependencies are found as ``modelshield audit`` finds them. With a vulnerability ``source``
    they are audited too (``ignore`` names advisories to drop); without one, nothing is sent
    anywhere and the BOM says that vulnerabilities were not checked. Raises
    :class:`~modelshield.audit.interface.AuditServiceError` when the source cannot answer.
    """
    from modelshield.integrity.hashing import FileDigest, HashJob, hash_files
    from modelshield.scanner.engine import scan_paths

    _lib()
    policy = policy or Policy()
    root = os.fspath(model)
    raw = scan_paths([root], policy)
    report = policy.apply(raw)
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
    scanned = report.results[0].format if single and report.results else None
    deps = audit_dependencies(
        root,
        policy=policy,
        source=source,
        ignore=ignore,
        scanned_format=scanned,
        scanned=raw.results,  # each model file is scanned once
    )
    model_name = Path(root).name or Path(root).absolute().name
    bom = build_bom(
        model_name,
        named,
        sha256,
        single_file=single,
        dependencies=deps.dependencies,
        vulnerabilities=deps.vulnerabilities,
        findings=deps.findings,
        inputs=deps.inputs,
        vulnerability_source=deps.source,
        excluded=deps.excluded,
    )
    return BomOutcome(bom, report, (*errors, *deps.errors), deps)


__all__ = [
    "FRAMEWORKS",
    "PROPERTY_NAMES",
    "BomDependency",
    "BomOutcome",
    "BomVulnerability",
    "bom_json",
    "build_bom",
    "canonical_name",
    "create_bom",
    "frameworks_of",
    "validate_bom_json",
]
