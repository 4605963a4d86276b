"""Never execute what you scan: src/ holds no deserialiser, no eval and no import by a name that
scanned content could choose (checked with ``ast``, so documentation strings that name
``pickle.load`` do not count).

Tests may call the real loaders on harmless content; src/ may not. Code that loads a model
after a scan lives in the packages listed in ``LOADING_PACKAGES`` with a reason, and only there:
they may import the deserialisers and ML libraries, but not eval or exec either.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "modelshield"

#: Modules that deserialise (or import libraries that do), and the heavy ML libraries that the
#: scanner must never need at run time.
FORBIDDEN_MODULES = frozenset(
    {
        "pickle",
        "_pickle",
        "cPickle",
        "copyreg",
        "marshal",
        "shelve",
        "dill",
        "cloudpickle",
        "joblib",
        "torch",
        "numpy",
        "pandas",
        "sklearn",
        "scipy",
        "tensorflow",
        "keras",
        "h5py",
        "onnx",
        "safetensors",
        "lightgbm",
        "xgboost",
    }
)

#: Builtins that run code from data.
FORBIDDEN_CALLS = frozenset({"eval", "exec", "compile", "__import__", "breakpoint"})

#: PyYAML loaders that construct arbitrary Python objects.
UNSAFE_YAML = frozenset({"Loader", "FullLoader", "UnsafeLoader", "unsafe_load", "full_load"})

#: Modules allowed to import one structure-reading library, and why: module -> (library, reason).
STRUCTURE_READERS: dict[str, tuple[str, str]] = {
    "scanner/formats/hdf5_probe.py": (
        "h5py",
        "reads HDF5 structure (attributes, links, dataset shapes; never dataset contents or a "
        "Keras loader) in a child process started under memory and time limits",
    ),
}

#: Packages allowed to load a model after a scan: package -> reason.
LOADING_PACKAGES: dict[str, str] = {
    "loaders": "restricted loading: scans first, then unpickles with the policy enforced in "
    "find_class (modelshield.load and the framework drop-ins)",
    "assess": "runs a model on the user's data: numpy and pandas for the checks, the model's "
    "own library for native formats after a scan; pickled models only through the loaders",
    "guard": "serves a model: numpy and pandas for the screening; the model is opened only "
    "through the assessment's open_model (scanned first, pickles through the loaders)",
}


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(SRC)) for p in paths]


def problems(
    tree: ast.AST, in_scanner: bool, loading: bool = False, reader: str | None = None
) -> Iterator[str]:
    """What in ``tree`` could execute scanned content (``loading``: imports of deserialisers
    are allowed, everything else is checked; ``reader``: the one library a structure reader
    may import)."""
    for node in ast.walk(tree):
        if loading and isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == reader:
                    continue
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    yield f"line {node.lineno}: import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                yield f"line {node.lineno}: from {node.module} import ..."
        elif isinstance(node, ast.Attribute) and node.attr in UNSAFE_YAML:
            if isinstance(node.value, ast.Name) and node.value.id == "yaml":
                yield f"line {node.lineno}: yaml.{node.attr}"
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                yield f"line {node.lineno}: {func.id}()"
            elif _is(func, "yaml", "load") and not any(k.arg == "Loader" for k in node.keywords):
                yield f"line {node.lineno}: yaml.load() without an explicit safe Loader"
            elif (
                in_scanner
                and _is(func, "importlib", "import_module")
                and not _static_module_name(node.args[0] if node.args else None)
            ):
                yield f"line {node.lineno}: importlib.import_module() of a computed name"


def _is(func: ast.expr, module: str, attr: str) -> bool:
    return (
        isinstance(func, ast.Attribute)
        and func.attr == attr
        and isinstance(func.value, ast.Name)
        and func.value.id == module
    )


def _static_module_name(arg: ast.expr | None) -> bool:
    """A constant, or an f-string under a constant ``modelshield.`` prefix (the registry's
    handler modules, named in its own table, never in a scanned file)."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return True
    if isinstance(arg, ast.JoinedStr) and arg.values:
        first = arg.values[0]
        return (
            isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and first.value.startswith("modelshield.")
        )
    return False


@pytest.mark.parametrize("path", _sources(), ids=_ids(_sources()))
def test_nothing_in_src_can_execute_what_it_reads(path: Path) -> None:
    loading = path.relative_to(SRC).parts[0] in LOADING_PACKAGES
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    in_scanner = path.is_relative_to(SRC / "scanner")
    reader = STRUCTURE_READERS.get(path.relative_to(SRC).as_posix(), (None, ""))[0]
    assert list(problems(tree, in_scanner, loading, reader)) == []


def test_a_structure_reader_may_import_its_library_only() -> None:
    source = "import h5py\nimport pickle"
    assert list(problems(ast.parse(source), True, reader="h5py")) == ["line 2: import pickle"]


#: Loading packages that open models only through another one's scanning entry point.
DELEGATES: dict[str, tuple[str, str]] = {"guard": ("assess", "open_model")}


def test_the_loading_packages_scan_before_they_load() -> None:
    for package in LOADING_PACKAGES:
        text = "\n".join(p.read_text(encoding="utf-8") for p in (SRC / package).rglob("*.py"))
        if package in DELEGATES:
            other, entry = DELEGATES[package]
            assert f"modelshield.{other}" in text and entry in text, package
            continue
        assert "modelshield.scanner" in text, package


@pytest.mark.parametrize(
    "source",
    [
        "import pickle",
        "import torch.serialization",
        "from numpy import load",
        "from _pickle import loads",
        "def f(x):\n    import dill\n    return dill.loads(x)",
        "eval(text)",
        "exec(code, {})",
        "__import__(name)",
        "yaml.load(text)",
        "yaml.load(text, Loader=yaml.FullLoader)",
        "yaml.unsafe_load(text)",
        "importlib.import_module(name)",
        "importlib.import_module(f'{module}.x')",
    ],
)
def test_the_checker_catches_each_kind(source: str) -> None:
    assert list(problems(ast.parse(source), in_scanner=True))


@pytest.mark.parametrize(
    "source",
    [
        "import pickletools",  # an opcode table and a disassembler: nothing is called
        "re.compile(pattern)",
        "ast.literal_eval(text)",
        "json.loads(text)",
        "yaml.load(text, Loader=yaml.CBaseLoader)",
        "importlib.import_module('zstandard')",
        "importlib.import_module(f'modelshield.scanner.formats.{name}')",
        "x = '`pickle.load` and eval( in a docstring'",
    ],
)
def test_the_checker_lets_harmless_code_through(source: str) -> None:
    assert list(problems(ast.parse(source), in_scanner=True)) == []
