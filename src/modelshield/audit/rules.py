"""The dependency audit's rules (`AUDIT-*`), registered in the shared catalogue."""

from __future__ import annotations

from modelshield.core.findings import Severity
from modelshield.core.rules import Rule, register_rule

VULNERABLE = register_rule(
    Rule(
        id="AUDIT-VULNERABLE-DEPENDENCY",
        pillar="audit",
        severity=Severity.HIGH,
        title="Dependency version has a known vulnerability",
        what="Reports a dependency whose exact version (pinned, locked, installed, or recorded "
        "in a model file) is affected by a published advisory (OSV: PYSEC, GHSA, CVE...). "
        "Advisories that are aliases of each other (a PYSEC id and its CVE and GHSA) give one "
        "finding listing every id. The severity comes from the advisory's CVSS vector (v3 or "
        "v2 base score), else from the database's own label; an advisory with no severity at "
        "all is reported as HIGH, because unknown is never low. The fixed versions and the "
        "smallest upgrade that leaves every listed advisory are in the evidence.",
        why="A model is loaded, served and fine-tuned with the libraries it needs; a known flaw "
        "in one of them (remote code execution in a loader, a path traversal in a serving "
        "framework) is the easiest way in, and the fix is usually one version bump away.",
        example="requirements.txt:1: scikit-learn==0.23.0  (PYSEC-2020-107, CVE-2020-13092)",
        references=("https://osv.dev", "https://github.com/pypa/advisory-database", "CWE-1395"),
    )
)

MAY_RESOLVE = register_rule(
    Rule(
        id="AUDIT-UNPINNED-MAY-RESOLVE-VULNERABLE",
        pillar="audit",
        severity=Severity.MEDIUM,
        title="Version range admits a vulnerable version",
        what="Reports a dependency declared with a range (`>=1.0`, `^1.2`, a bare name) "
        "that includes versions affected by known advisories, with the affected versions the "
        "range admits. One finding per dependency lists every such advisory, and says which "
        "lower bound would exclude all of them when one exists.",
        why="Which version gets installed depends on the day, the index and the other "
        "requirements: a stale lock, a constraint elsewhere or a private mirror can select an "
        "affected release. Pinning (or raising the lower bound) makes the audit exact.",
        example='pyproject.toml: dependencies = ["mlflow>=2.0"], while some 2.x releases are '
        "affected by a path traversal",
        references=("https://peps.python.org/pep-0440/#version-specifiers",),
    )
)

UNKNOWN_VERSION = register_rule(
    Rule(
        id="AUDIT-UNKNOWN-VERSION",
        pillar="audit",
        severity=Severity.LOW,
        title="Dependency version cannot be determined or is not PEP 440",
        what="Reports a dependency whose version is not a valid PEP 440 version (it is still "
        "matched, as a legacy version: exactly against advisories' version lists and before "
        "every PEP 440 release in ranges), or a dependency a model implies whose version "
        "nothing records or declares.",
        why="An audit can only be as exact as the version it is given: an unknown version "
        "may be an affected one.",
        example="model.pkl imports xgboost.sklearn:XGBClassifier; nothing beside it declares "
        "xgboost",
    )
)

UNAUDITABLE = register_rule(
    Rule(
        id="AUDIT-UNAUDITABLE-DEPENDENCY",
        pillar="audit",
        severity=Severity.INFO,
        title="Dependency installed from a URL, VCS or local path",
        what="Reports a dependency that is not a release of a package index (a git checkout, "
        "a URL without a versioned wheel or sdist name, an editable local project), so no "
        "advisory can be matched to it.",
        why="Advisories name released versions. Code from a branch or a local directory may "
        "carry any fix or flaw; review and pin it by commit or hash instead.",
        example="-e git+https://github.com/org/lib.git#egg=lib",
    )
)

MODEL_IMPLIED = register_rule(
    Rule(
        id="AUDIT-MODEL-IMPLIED-DEPENDENCY",
        pillar="audit",
        severity=Severity.INFO,
        title="Model file implies a dependency",
        what="Reports a distribution that a model file needs, found in the file itself: the "
        "modules its pickles import when loaded (mapped to distributions: `sklearn` -> "
        "`scikit-learn`) and the library versions it records (scikit-learn's "
        "`_sklearn_version`, Keras `metadata.json`, the ONNX producer, MLflow's "
        "`MLmodel`, transformers' `config.json`). The dependency is then audited like a "
        "declared one; the evidence names the callables and the version's source.",
        why="Requirements files describe the code, not the model: a pickle saved with an old "
        "scikit-learn, or one that imports a library nobody declared, brings that library's "
        "vulnerabilities into the process that loads it.",
        example="A joblib file whose pickle imports "
        "sklearn.ensemble._forest.RandomForestClassifier and records _sklearn_version 1.3.0.",
    )
)

ADVISORY_DATA = register_rule(
    Rule(
        id="AUDIT-ADVISORY-DATA",
        pillar="audit",
        severity=Severity.LOW,
        title="Advisory data for an audited package could not be fully read",
        what="Reports an advisory (or a database file) concerning an audited package that was "
        "partly unusable: an empty `{}` event, a version that YAML or JSON read as a number, "
        "a range without an `introduced` event, a file that is not valid YAML/JSON. The rest "
        "of the advisory is still used.",
        why="A skipped range can hide an affected version; the audit says so instead of "
        "silently trusting partial data.",
        example="events: [{introduced: '0'}, {}, {fixed: '2.4.0'}]  (an empty event)",
        references=("https://ossf.github.io/osv-schema/",),
    )
)

POSSIBLY_VULNERABLE = register_rule(
    Rule(
        id="AUDIT-VULNERABLE-UNORDERABLE-RANGE",
        pillar="audit",
        severity=Severity.HIGH,
        title="Dependency version may be affected: the advisory's range cannot be ordered",
        what="Reports a pinned dependency that an advisory may affect although the version "
        "cannot be placed against the advisory's range: a bound of the range is not a PEP 440 "
        "version (`fixed: 0.2.0-n653`), so whether the version comes before or after it is "
        "unknown. The version is reported as possibly affected, at the advisory's severity, "
        "unless it lies outside the range wherever the unorderable bounds fall.",
        why="Treating an unknown order as 'not affected' would pass a gate on a version the "
        "advisory may well cover; unknown is never safe.",
        example="binderhub==0.1.0 and PYSEC-2021-371 (introduced 0, fixed 0.2.0-n653)",
        references=("https://peps.python.org/pep-0440/", "https://ossf.github.io/osv-schema/"),
    )
)

EXCLUDED = register_rule(
    Rule(
        id="AUDIT-DEPENDENCY-EXCLUDED",
        pillar="audit",
        severity=Severity.INFO,
        title="Dependency left out for the target environment",
        what="Lists a dependency that an input declares but that was not audited, because its "
        "environment marker is false for the target the user named (`--python-version`, "
        "`--platform`, or `[audit] python_version`/`platform` in the policy). Without a "
        "target, every dependency is audited whatever its marker, in every input format.",
        why="An audit describes where the model will run, not the machine the audit runs on: "
        "what is left out, and why, must be visible in every report.",
        example="requirements.txt:4: pywin32==306 ; sys_platform == 'win32'  (target: linux)",
        references=("https://peps.python.org/pep-0508/#environment-markers",),
    )
)

INPUT_LIMIT = register_rule(
    Rule(
        id="AUDIT-INPUT-LIMIT",
        pillar="audit",
        severity=Severity.MEDIUM,
        title="Dependency input not read completely: a limit was reached",
        what="An input holds more entries (requirement lines, lock-file packages, installed "
        "distributions) than `limits.max_input_entries`, or more errors than are listed, so "
        "the rest was not read. The input is reported as not fully analysed.",
        why="Dependencies that were not read were not audited; a partial answer is never a "
        "clean one.",
        example="requirements.txt: more than 100000 entries",
        incomplete=True,
    )
)

DATABASE_STALE = register_rule(
    Rule(
        id="AUDIT-DATABASE-STALE",
        pillar="audit",
        severity=Severity.LOW,
        title="The offline advisory database is older than the policy allows",
        what="The newest advisory of the offline database (`--db`, `--offline`) was modified "
        "longer ago than `[audit] max_database_age_days` (30 by default): advisories "
        "published since are missing. Reported once per audit, on the first input audited.",
        why="An offline audit is only as current as its database; OSV changes every day.",
        example="newest advisory modified 2024-10-10, 412 days ago",
        references=("https://osv.dev",),
    )
)

PARSE_ERROR = register_rule(
    Rule(
        id="AUDIT-PARSE-ERROR",
        pillar="audit",
        severity=Severity.HIGH,
        title="Dependency file could not be read",
        what="A requirements, lock, pyproject, conda or MLflow file (or a file it includes) "
        "could not be read or parsed. Reported as an error record naming the file and line "
        "(stage `audit-parse`), not as a finding: the run exits 2.",
        why="Dependencies that were not read were not audited; a broken file is never a clean "
        "result.",
        example="requirements.txt:3: numpy=>1.0  (an invalid specifier)",
    )
)

AUDIT_RULE_IDS: frozenset[str] = frozenset(
    r.id
    for r in (
        VULNERABLE,
        POSSIBLY_VULNERABLE,
        MAY_RESOLVE,
        UNKNOWN_VERSION,
        UNAUDITABLE,
        MODEL_IMPLIED,
        ADVISORY_DATA,
        EXCLUDED,
        INPUT_LIMIT,
        DATABASE_STALE,
    )
) | {PARSE_ERROR.id}
"""Every rule id the audit uses (`--ignore` tells rule ids from advisory ids with it)."""

VULNERABILITY_RULE_IDS: frozenset[str] = frozenset({VULNERABLE.id, POSSIBLY_VULNERABLE.id})
"""The rules whose findings are vulnerabilities of a version (the BOM lists them as such)."""
