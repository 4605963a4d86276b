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
    InputBuilder,
    InputError,
    ParseOptions,
    TextIndex,
    failed,
    load_yaml_text,
    read_text,
    shown,
)
from modelshield.audit.inputs.dependency import Dependency, InputKind, ParsedInput
from modelshield.audit.inputs.requirements import read_requirement_lines
from modelshield.core.findings import Location

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
            raise InputError(f"unsupported conda version constraint {shown(text)}") from e
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


def parse_conda(path: Path, shown_path: str, options: ParseOptions) -> ParsedInput:
    """Read a conda environment file."""
    try:
        text, size = read_text(path, options.limits)
        data = load_yaml_text(text)
    except InputError as e:
        return failed(shown_path, InputKind.CONDA, str(e))
    builder = InputBuilder(shown_path, InputKind.CONDA, options)
    builder.size = size
    if not isinstance(data, Mapping):
        builder.error("a conda environment file must be a YAML mapping")
        return builder.result()
    items = data.get("dependencies", [])
    if not isinstance(items, list):
        builder.error(f"'dependencies' must be a list, not {shown(items)}")
        items = []
    index = TextIndex(text)
    for item in items:
        if builder.full:
            break
        if isinstance(item, Mapping) and set(item) == {"pip"}:
            pip_lines = item["pip"]
            if isinstance(pip_lines, list) and all(isinstance(x, str) for x in pip_lines):
                read_requirement_lines(builder, pip_lines, path, index)
            else:
                builder.error(
                    f"'pip' must be a list of requirement strings, not {shown(pip_lines)}"
                )
            continue
        if not isinstance(item, str):
            builder.error(f"unsupported entry {shown(item)} in 'dependencies'")
            continue
        line, offset = index.find(item)
        loc = Location(shown_path, (), offset)
        m = _SPEC.match(item.strip())
        try:
            if m is None:
                raise InputError(f"cannot read conda spec {shown(item)}")
            conda_name = m.group("name").lower()
            if not _is_python_package(conda_name):
                builder.skip("non_python")
                continue
            version, specs = conda_constraint(m.group("rest"))
        except InputError as e:
            builder.error(str(e), line=line, offset=offset)
            continue
        pypi = CONDA_TO_PYPI.get(conda_name, conda_name)
        builder.add(
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
    return builder.result()
