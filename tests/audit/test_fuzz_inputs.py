"""Fuzzing every input reader: whatever the bytes, a real answer or a one-line error.

For each reader, hypothesis generates inputs, from raw text to well-formed documents of the
wrong shape (types swapped, tables nested, aliases, markers, options). Every input must give a
:class:`ParsedInput` (never an exception) whose errors are one short line each, and auditing it
against a source that has an advisory for every package must give a report whose exit code is 0
or 1 for a real answer and 2 when something could not be read. Examples are bounded so that the
whole file runs in seconds.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelshield.audit.auditor import audit_inputs
from modelshield.audit.inputs._common import MAX_MESSAGE, ParseOptions
from modelshield.audit.inputs.conda import parse_conda
from modelshield.audit.inputs.dependency import InputKind, ParsedInput
from modelshield.audit.inputs.implied import json_version, keras_metadata, onnx_producer
from modelshield.audit.inputs.locks import parse_lock
from modelshield.audit.inputs.markers import Target
from modelshield.audit.inputs.mlflow import parse_mlmodel, parse_python_env
from modelshield.audit.inputs.pyproject import parse_pyproject
from modelshield.audit.inputs.requirements import parse_requirements
from modelshield.audit.interface import VulnerabilitySource
from modelshield.audit.records import (
    Advisory,
    AffectedPackage,
    Event,
    EventKind,
    PackageQuery,
    VersionRange,
)
from modelshield.core.limits import Limits
from modelshield.core.policy import ExitCode, Policy

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class EverythingAffected(VulnerabilitySource):
    """A source with one advisory for every package, affecting every version but 2.0, with a
    non-PEP 440 bound: every dependency reaches the matcher."""

    name = "everything"

    def advisories(self, queries: Sequence[PackageQuery]) -> Mapping[str, tuple[Advisory, ...]]:
        out = {}
        for q in queries:
            events = (
                Event(EventKind.INTRODUCED, "0"),
                Event(EventKind.FIXED, "2.0"),
                Event(EventKind.INTRODUCED, "2.0.1"),
                Event(EventKind.FIXED, "3.0-x1"),
            )
            entry = AffectedPackage(q.canonical, (VersionRange(events),), ("1.0",), frozenset())
            out[q.canonical] = (Advisory(id=f"FUZZ-{q.canonical}", affected=(entry,)),)
        return out


SOURCE = EverythingAffected()
OPTIONS = [ParseOptions(), ParseOptions(target=Target("3.11", "linux"))]


def check(result: ParsedInput) -> None:
    """The reader's answer is usable: one-line bounded errors, and an audit that ends."""
    assert isinstance(result, ParsedInput)
    for error in result.errors:
        assert "\n" not in error.message and "\r" not in error.message
        assert len(error.message) <= MAX_MESSAGE + 10, error.message
    report = audit_inputs([result], SOURCE)
    code = Policy().exit_code(report)
    if result.errors:
        assert code in (ExitCode.FINDINGS, ExitCode.ERROR)
    else:
        assert code in (ExitCode.OK, ExitCode.FINDINGS, ExitCode.ERROR)  # gaps: ERROR
    for error in report.errors:
        assert "\n" not in error.message


# ---- strategies -------------------------------------------------------------------------------

NAMES = st.sampled_from(["numpy", "scikit-learn", "Torch", "a", "x_y.z", "é", ""])
VERSIONS = st.sampled_from(["1.0", "2.0", "2.0.1", "0.2.0-n653", "3.10", "1!2", "", "*", "a"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    NAMES,
    VERSIONS,
)


def values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=12,
    )


LINE_PIECES = st.sampled_from(
    [
        "numpy==1.0",
        "scikit-learn>=0.2,<2",
        "torch===2.0+cpu",
        "pkg[extra]==1.0 ; sys_platform == 'win32'",
        "pkg ; python_version < '3'",
        "-r other.txt",
        "-c /etc/passwd",
        "--constr x",
        "-e ./local",
        "-e git+https://x/y.git#egg=y",
        "--hash=sha256:" + "a" * 64,
        "--pre",
        "--index-url https://example.invalid",
        "https://files.example/pkg-1.0-py3-none-any.whl",
        "name @ https://x/name-1.0.tar.gz",
        "${HOME}",
        "# comment",
        "\\",
        " ",
        "'",
        '"',
        "=>",
        "\x00",
        "\u2028",
        "\r",
        "#",
    ]
)
REQUIREMENTS = st.one_of(
    st.text(max_size=200),
    st.lists(st.lists(LINE_PIECES, max_size=4).map(" ".join), max_size=12).map("\n".join),
)


def toml_value(value: Any) -> str:
    """A TOML rendering of plain data (inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if not isinstance(value, float) else f"{value!r}".replace("inf", "inf")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items() if v is not None)
        return "{" + ", ".join(items) + "}"
    return '""'


def toml_document(data: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in data.items() if v is not None)


LOCK_KEYS = st.sampled_from(
    [
        "version",
        "package",
        "packages",
        "name",
        "source",
        "registry",
        "git",
        "directory",
        "virtual",
        "editable",
        "dependencies",
        "optional-dependencies",
        "marker",
        "markers",
        "resolution-markers",
        "wheels",
        "sdist",
        "url",
        "hash",
        "files",
        "file",
        "metadata",
        "lock-version",
        "created-by",
        "_meta",
        "default",
        "develop",
        "hashes",
        "type",
    ]
)
LOCK_DOCS = st.dictionaries(LOCK_KEYS, values(LOCK_KEYS), max_size=5)
PYPROJECT_KEYS = st.sampled_from(
    [
        "project",
        "dependencies",
        "optional-dependencies",
        "dependency-groups",
        "include-group",
        "tool",
        "poetry",
        "dev-dependencies",
        "group",
        "version",
        "markers",
        "extras",
        "git",
        "python",
    ]
)
MLFLOW_KEYS = st.sampled_from(
    [
        "mlflow_version",
        "flavors",
        "sklearn",
        "sklearn_version",
        "python_version",
        "loader_module",
        "python",
        "build_dependencies",
        "dependencies",
        "pip",
        "<<",
    ]
)


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(data)
    return path


# ---- one property per reader ------------------------------------------------------------------


@FUZZ
@given(
    text=REQUIREMENTS,
    options=st.sampled_from(OPTIONS),
    encoding=st.sampled_from(["utf-8", "utf-16"]),
)
def test_requirements_files(
    tmp_path: Path, text: str, options: ParseOptions, encoding: str
) -> None:
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")
    path = write(tmp_path, "requirements.txt", data)
    write(tmp_path, "other.txt", "numpy==1.0\n-r requirements.txt\n")
    check(parse_requirements(path, "requirements.txt", options))


@FUZZ
@given(
    data=st.one_of(
        st.text(max_size=200),
        st.dictionaries(PYPROJECT_KEYS, values(PYPROJECT_KEYS), max_size=4).map(toml_document),
    )
)
def test_pyproject(tmp_path: Path, data: str) -> None:
    path = write(tmp_path, "pyproject.toml", data)
    for options in OPTIONS:
        check(parse_pyproject(path, "pyproject.toml", options))


@FUZZ
@given(
    kind=st.sampled_from([InputKind.UV_LOCK, InputKind.POETRY_LOCK, InputKind.PYLOCK]),
    data=st.one_of(st.text(max_size=200), LOCK_DOCS.map(toml_document)),
)
def test_toml_lock_files(tmp_path: Path, kind: InputKind, data: str) -> None:
    path = write(tmp_path, "file.lock", data)
    for options in OPTIONS:
        check(parse_lock(path, "file.lock", kind, options))


@FUZZ
@given(data=st.one_of(st.text(max_size=200), values(LOCK_KEYS).map(json.dumps)))
def test_pipfile_lock(tmp_path: Path, data: str) -> None:
    path = write(tmp_path, "Pipfile.lock", data)
    for options in OPTIONS:
        check(parse_lock(path, "Pipfile.lock", InputKind.PIPFILE_LOCK, options))


def yaml_documents(keys: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    dumped = values(keys).map(lambda v: yaml.safe_dump(v, allow_unicode=True))
    aliased = st.lists(st.sampled_from(["a: &a [1, *a]", "b: &b {x: 1}", "c: {<<: *b}", "d: *a"]))
    return st.one_of(st.text(max_size=200), dumped, aliased.map("\n".join))


@FUZZ
@given(data=yaml_documents(st.sampled_from(["dependencies", "pip", "name", "channels"])))
def test_conda_environments(tmp_path: Path, data: str) -> None:
    path = write(tmp_path, "environment.yml", data)
    check(parse_conda(path, "environment.yml", ParseOptions()))


@FUZZ
@given(data=yaml_documents(MLFLOW_KEYS), which=st.sampled_from(["MLmodel", "python_env.yaml"]))
def test_mlflow_files(tmp_path: Path, data: str, which: str) -> None:
    path = write(tmp_path, which, data)
    parser: Callable[[Path, str, ParseOptions], ParsedInput] = (
        parse_mlmodel if which == "MLmodel" else parse_python_env
    )
    check(parser(path, which, ParseOptions()))


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=300),
        values(st.sampled_from(["keras_version", "transformers_version"])).map(
            lambda v: json.dumps(v).encode()
        ),
    )
)
def test_model_metadata_readers(tmp_path: Path, data: bytes) -> None:
    limits = Limits()
    path = write(tmp_path, "config.json", data)
    found = json_version(path, "transformers_version", limits)
    assert found is None or (isinstance(found, str) and found)
    assert isinstance(onnx_producer(path), dict)
    assert isinstance(keras_metadata(path, limits), dict)


@pytest.mark.parametrize("alphabet", [string.printable, "[]{}=\"'\n#"])
def test_short_random_documents_in_every_reader(tmp_path: Path, alphabet: str) -> None:
    """A deterministic sweep of tiny documents of structure characters, for every reader."""
    import random

    rng = random.Random(13)
    readers: list[tuple[str, Callable[[Path, str, ParseOptions], ParsedInput]]] = [
        ("requirements.txt", parse_requirements),
        ("pyproject.toml", parse_pyproject),
        ("environment.yml", parse_conda),
        ("MLmodel", parse_mlmodel),
        ("python_env.yaml", parse_python_env),
    ]
    for _ in range(40):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(30)))
        for name, reader in readers:
            check(reader(write(tmp_path, name, text), name, ParseOptions()))
        for kind in (InputKind.UV_LOCK, InputKind.POETRY_LOCK, InputKind.PIPFILE_LOCK):
            check(parse_lock(write(tmp_path, "x.lock", text), "x.lock", kind, ParseOptions()))
