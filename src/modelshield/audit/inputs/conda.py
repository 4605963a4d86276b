"""conda environment files (``environment.yml``, MLflow's ``conda.yaml``).

Conda package specs are read as ``[channel::]name[=version[=build]]``, ``name==version``,
``name>=1,<2`` (``|`` for either) or ``name version [build]``:

- ``name=1.2.3=build``, ``name==1.2.3`` and ``name 1.2.3 build`` are exact pins;
- ``name=1.2.3`` is conda's fuzzy match (``1.2.3*``); with three or more release numbers it is
  audited as the pin it is meant to be, with fewer (``numpy=1.26``) as the range ``==1.26.*``;
- the conda name is mapped to the PyPI name where they differ (``pytorch`` -> ``torch``);
  packages that are not Python distributions (``python``, compilers, ``lib*``, CUDA...) are not
  audited, every other name is assumed to be the PyPI name (true of conda-forge's Python
  packages).

The ``pip:`` subsection is read like a requirements file (``-r`` relative to the environment file).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from modelshield.audit.inputs._common import (
    InputError,
    ParseOptions,
    load_yaml_text,
    locate,
    read_text,
)
from modelshield.audit.inputs.dependency import Dependency, InputKind, ParsedInput
from modelshield.audit.inputs.requirements import parse_requirement_lines
from modelshield.core.findings import ErrorRecord, Location

CONDA_TO_PYPI: Mapping[str, str] = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost",
    "py-xgboost-gpu": "xgboost",
    "py-lightgbm": "lightgbm",
    "py-opencv": "opencv-python",
    "tensorflow-base": "tensorflow",
    "tensorflow-cpu": "tensorflow",
    "tensorflow-gpu": "tensorflow",
    "msgpack-python": "msgpack",
    "pyqt": "pyqt5",
}
"""conda-forge / defaults names whose PyPI distribution has another name."""

NOT_PYTHON: frozenset[str] = frozenset(
    {
        "python",
        "blas",
        "openblas",
        "mkl",
        "mkl-service",
        "intel-openmp",
        "openssl",
        "ca-certificates",
        "certifi-bundle",
        "zlib",
        "xz",
        "bzip2",
        "ncurses",
        "readline",
        "sqlite",
        "tk",
        "tzdata",
        "nccl",
        "cudnn",
        "cudatoolkit",
        "gcc",
        "gxx",
        "make",
        "cmake",
        "git",
        "nodejs",
        "ld_impl_linux-64",
        "pcre",
        "icu",
        "expat",
        "hdf5",
        "ffmpeg",
    }
)
"""conda packages that are not Python distributions (besides ``lib*``, ``_*``, ``cuda-*``,
``r-*`` and ``*-cpp``)."""

_SPEC = re.compile(r"^(?:(?P<channel>[^:\s]+)::)?(?P<name>[A-Za-z0-9_.\-]+)\s*(?P<rest>.*)$")


def _is_python_package(name: str) -> bool:
    return not (
        name in NOT_PYTHON or name.startswith(("lib", "_", "cuda-", "r-")) or name.endswith("-cpp")
    )


def _pep440_specs(text: str) -> tuple[str, ...]:
    out = []
    for alternative in text.split("|"):
        spec = alternative.strip()
        try:
            SpecifierSet(spec)
        except InvalidSpecifier as e:
            raise InputError(f"unsupported conda version constraint {text!r}") from e
        out.append(spec)
    return tuple(out)


def conda_constraint(rest: str) -> tuple[str | None, tuple[str, ...]]:
    """``(exact version, ())`` or ``(None, specifier sets)`` for the text after a conda name."""
    rest = rest.strip()
    if not rest or rest == "*":
        return None, ("",)
    if rest.startswith("=="):
        return rest[2:].split("=", 1)[0].strip(), ()
    if rest.startswith("="):
        version, _, build = rest[1:].partition("=")
        return _fuzzy(version.strip(), bool(build.strip()))
    if rest[0] in "<>!~":
        return None, _pep440_specs(rest)
    parts = rest.split()  # "name 1.2.3 build" (conda list --export style)
    return _fuzzy(parts[0], len(parts) > 1)


def _fuzzy(version: str, has_build: bool) -> tuple[str | None, tuple[str, ...]]:
    if version.endswith("*"):
        prefix = version.rstrip("*").rstrip(".")
        return None, _pep440_specs(f"=={prefix}.*")
    if has_build:
        return version, ()
    try:
        release = Version(version).release
    except InvalidVersion:
        return version, ()  # not PEP 440: audited as written (an unknown-version finding)
    if len(release) >= 3:
        return version, ()
    return None, _pep440_specs(f"=={version}.*")


def parse_conda(path: Path, shown: str, options: ParseOptions) -> ParsedInput:
    """Read a conda environment file."""
    errors: list[ErrorRecord] = []
    deps: list[Dependency] = []
    skipped = 0
    try:
        text, size = read_text(path, options.limits)
        data = load_yaml_text(text)
    except InputError as e:
        return ParsedInput(
            path=shown,
            kind=InputKind.CONDA,
            errors=(ErrorRecord(Location(shown), f"{shown}: {e}", stage="audit-parse"),),
        )
    items = data.get("dependencies", []) if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        errors.append(
            ErrorRecord(Location(shown), f"{shown}: 'dependencies' must be a list", "audit-parse")
        )
        items = []
    for item in items:
        if isinstance(item, Mapping):
            pip_lines = item.get("pip")
            if isinstance(pip_lines, list) and all(isinstance(x, str) for x in pip_lines):
                more, errs = parse_requirement_lines(list(pip_lines), path, shown, options, text)
                deps.extend(more)
                errors.extend(errs)
            else:
                errors.append(
                    ErrorRecord(
                        Location(shown),
                        f"{shown}: unsupported entry {item!r}"[:300],
                        stage="audit-parse",
                    )
                )
            continue
        if not isinstance(item, str):
            continue
        line, offset = locate(text, item)
        loc = Location(shown, (), offset)
        m = _SPEC.match(item.strip())
        try:
            if m is None:
                raise InputError(f"cannot read conda spec {item!r}")
            conda_name = m.group("name").lower()
            if not _is_python_package(conda_name):
                skipped += 1
                continue
            version, specs = conda_constraint(m.group("rest"))
        except InputError as e:
            where = f"{shown}:{line}" if line else shown
            errors.append(ErrorRecord(loc, f"{where}: {e}", stage="audit-parse"))
            continue
        pypi = CONDA_TO_PYPI.get(conda_name, conda_name)
        deps.append(
            Dependency(
                name=pypi,
                canonical=canonicalize_name(pypi),
                location=loc,
                version=version,
                specifiers=specs,
                line=line,
                evidence={"conda_spec": item} if pypi != conda_name else {},
            )
        )
    metadata = {"dependencies": str(len(deps))}
    if skipped:
        metadata["skipped_non_python"] = str(skipped)
    return ParsedInput(
        path=shown,
        kind=InputKind.CONDA,
        dependencies=tuple(deps),
        errors=tuple(errors),
        size=size,
        metadata=metadata,
    )
