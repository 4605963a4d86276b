"""``modelshield init``: a commented starter policy for the project it runs in.

It looks at what the project holds (searched as a scan searches it: version control, virtual
environments and caches left out, and what git ignores): model files by extension, MLflow
model directories (an ``MLmodel`` file), dependency and lock files, an integrity manifest,
data files; and writes a policy that names them, with every other setting shown commented
out with what it does. Nothing is run or loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import PurePosixPath

from msgspec import Struct

from modelshield.scanner.registry import model_extension

MAX_FILES = 50_000
"""Files looked at, at most (a larger project is described from its first files)."""

DEPENDENCY_FILES = (
    "pyproject.toml",
    "uv.lock",
    "poetry.lock",
    "Pipfile.lock",
    "pylock.toml",
    "environment.yml",
    "environment.yaml",
    "conda.yaml",
    "conda.yml",
    "python_env.yaml",
)
"""Dependency files the audit reads, besides ``requirements*.txt``."""

MANIFEST_NAME = "modelshield.manifest.json"
"""Where ``modelshield manifest create`` writes a directory's manifest."""


class Survey(Struct, frozen=True):
    """What a project holds, as ``init`` describes it (POSIX paths relative to it)."""

    model_files: tuple[str, ...] = ()
    """Files with a model extension."""
    mlflow: tuple[str, ...] = ()
    """Directories holding an ``MLmodel`` file."""
    dependency_files: tuple[str, ...] = ()
    """Requirements, pyproject, lock, conda and MLflow environment files."""
    manifests: tuple[str, ...] = ()
    """Integrity manifests (``modelshield.manifest.json``)."""
    data_files: tuple[str, ...] = ()
    """CSV and Parquet files."""
    gitignore: bool = False
    """The project has a ``.gitignore``."""

    @property
    def model_paths(self) -> tuple[str, ...]:
        """What ``models`` should name: each top-level directory holding a model file or an
        MLflow model (with a trailing ``/``), and model files at the top."""
        tops: dict[str, None] = {}
        for path in (*self.model_files, *(f"{d}/MLmodel" for d in self.mlflow)):
            parts = PurePosixPath(path).parts
            tops[parts[0] + "/" if len(parts) > 1 else parts[0]] = None
        return tuple(sorted(tops))


def survey(project: str) -> Survey:
    """Look at what ``project`` holds."""
    from modelshield.scanner.discovery import walk

    found: dict[str, list[str]] = {k: [] for k in ("model", "mlflow", "deps", "manifest", "data")}
    for count, (path, problem) in enumerate(walk(project, empty_is_a_problem=False)):
        if count >= MAX_FILES:
            break
        if problem is not None:
            continue
        rel = PurePosixPath(os.path.relpath(path, project).replace(os.sep, "/"))
        name = rel.name
        if name == "MLmodel":
            found["mlflow"].append(str(rel.parent))
        elif name == MANIFEST_NAME:
            found["manifest"].append(str(rel))
        elif name in DEPENDENCY_FILES or (
            name.endswith(".txt") and name.startswith("requirements")
        ):
            found["deps"].append(str(rel))
        elif model_extension(name) is not None:
            found["model"].append(str(rel))
        elif rel.suffix.lower() in (".csv", ".parquet"):
            found["data"].append(str(rel))
    return Survey(
        model_files=tuple(found["model"]),
        mlflow=tuple(found["mlflow"]),
        dependency_files=tuple(found["deps"]),
        manifests=tuple(found["manifest"]),
        data_files=tuple(found["data"]),
        gitignore=os.path.isfile(os.path.join(project, ".gitignore")),  # noqa: PTH113, PTH118
    )


def _str(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, for text without lone surrogates)."""
    from json import dumps

    return dumps(text.encode("utf-8", "replace").decode("utf-8"))


def _toml_list(items: Iterable[str], indent: str = "  ") -> str:
    lines = [f"{indent}{_str(item)}," for item in items]
    return "[\n" + "\n".join(lines) + "\n]" if lines else "[]"


def _few(items: Iterable[str], n: int = 5) -> str:
    items = list(items)
    shown = ", ".join(items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def starter_policy(found: Survey) -> str:
    """The policy text for a project described by ``found``."""
    out = [
        "# modelshield policy, written by `modelshield init`. Every path in it is relative to",
        "# this file, whatever directory a command runs from. `modelshield ci` runs each pillar",
        "# configured here (scan, audit, manifest, assess) in one go; `scan`, `audit` and",
        "# `assess` read it too. Unknown keys are errors. Reference: the README's",
        '# "Policy file" section.',
        "",
        "# Findings at or above this severity fail the run: critical, high, medium, low, info.",
        'fail_on = "medium"',
        "",
    ]
    paths = found.model_paths
    if paths:
        what = f"{len(found.model_files)} model file{'s' if len(found.model_files) != 1 else ''}"
        if found.mlflow:
            what += f" and MLflow model{'s' if len(found.mlflow) > 1 else ''} in "
            what += _few(found.mlflow)
        out += [
            f"# The model files and directories `modelshield ci` scans (found: {what}).",
            f"models = {_toml_list(paths)}",
        ]
    else:
        out += [
            "# The model files and directories `modelshield ci` scans. None was found, so the",
            "# whole project is scanned; name them here once there are some.",
            '# models = ["models/"]',
        ]
    ignored = (
        "what .gitignore ignores (never a file git tracks)"
        if found.gitignore
        else "what a .gitignore would ignore"
    )
    out += [
        "",
        "# Left out when directories are searched (.gitignore syntax, relative to this file).",
        "# Version control, virtual environments, node_modules and caches are always left out,",
        f"# and so is {ignored}; set gitignore = false to read those files.",
        "exclude = []",
        "",
        "# Drop one rule for some paths (fnmatch globs). An entry that matches nothing in a",
        "# `modelshield ci` run is reported (POLICY-UNUSED-ENTRY).",
        "# [[suppress]]",
        '# rule = "PICKLE-IMPORT-UNKNOWN"',
        '# paths = ["models/legacy/*"]',
        "",
        "# Accept a part the scan could not analyse (it fails the run until you do).",
        "# [[accept_incomplete]]",
        '# rule = "SCAN-FILE-TOO-LARGE"',
        '# paths = ["models/archive/*"]',
        "",
        "# Your own classes that your pickles import, reviewed: allowed by name.",
        "# [callables]",
        '# allow = ["mypkg.models:MyClassifier"]',
        "",
        "[audit]",
    ]
    if found.dependency_files:
        out.append(
            f"# `modelshield ci` audits the dependency files ({_few(found.dependency_files)})"
        )
    else:
        out.append("# `modelshield ci` audits the dependency files it finds (none yet)")
    out += [
        "# and the libraries the model files need, against OSV advisories.",
        '# db = "advisories/"          # an offline OSV database instead of the OSV API',
        '# python_version = "3.11"     # evaluate environment markers for where models run',
        '# platform = "linux"',
        "",
        "# An advisory you accept, with why and until when (reported again after that day).",
        "# [[audit.ignore]]",
        '# id = "GHSA-xxxx-xxxx-xxxx"',
        '# reason = "the vulnerable function is never called"',
        "# expires = 2026-12-31",
        "",
    ]
    if found.manifests:
        manifest = PurePosixPath(found.manifests[0])
        folder = str(manifest.parent) if str(manifest.parent) != "." else "."
        out += [
            "# The integrity manifest `modelshield ci` verifies (found).",
            "[manifest]",
            f"path = {_str(folder)}",
            f"file = {_str(str(manifest))}",
        ]
    else:
        model_dir = next((p.rstrip("/") for p in paths if p.endswith("/")), "models")
        out += [
            "# Verify the models against an integrity manifest: create it once with",
            f"# `modelshield manifest create {model_dir}`, then uncomment.",
            "# [manifest]",
            f"# path = {_str(model_dir)}",
        ]
    out.append("")
    model_file = next(
        (m for m in found.model_files if m.endswith((".joblib", ".pkl", ".onnx", ".skops"))),
        "models/model.joblib",
    )
    data_file = found.data_files[0] if found.data_files else "data/holdout.csv"
    out += [
        "# Assess a model on held-out data in `modelshield ci` (needs modelshield[assess]);",
        "# thresholds and budgets go in the same table (see the README).",
        "# [assess]",
        f"# model = {_str(model_file)}",
        f"# data = {_str(data_file)}",
        '# target = "label"',
        '# sensitive = ["sex"]',
        "",
        "[ci]",
        "# Findings accepted when the gate was adopted: create it with",
        "# `modelshield ci --baseline modelshield-baseline.json --update-baseline`.",
        '# baseline = "modelshield-baseline.json"',
        '# skip = ["assess"]           # pillars not to run',
        "",
    ]
    return "\n".join(out)
