"""Lock files, pyproject.toml, conda and MLflow files, and the running environment."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from modelshield.audit.inputs._common import ParseOptions
from modelshield.audit.inputs.conda import conda_constraint, parse_conda
from modelshield.audit.inputs.dependency import Dependency, InputKind, ParsedInput
from modelshield.audit.inputs.environment import parse_environment
from modelshield.audit.inputs.locks import parse_lock
from modelshield.audit.inputs.mlflow import parse_mlmodel, parse_python_env
from modelshield.audit.inputs.pyproject import parse_pyproject, poetry_constraint

from .test_requirements import LINUX_PY311

OPTIONS = ParseOptions(target=LINUX_PY311)


def by_name(result: ParsedInput) -> dict[str, Dependency]:
    return {d.canonical: d for d in result.dependencies}


def test_uv_lock(tmp_path: Path) -> None:
    lock = tmp_path / "uv.lock"
    lock.write_text(
        'version = 1\nrequires-python = ">=3.11"\n\n'
        '[[package]]\nname = "myproject"\nversion = "0.1.0"\nsource = { editable = "." }\n\n'
        '[[package]]\nname = "numpy"\nversion = "1.21.0"\n'
        'source = { registry = "https://pypi.org/simple" }\n\n'
        '[[package]]\nname = "lib"\nversion = "1.0"\n'
        'source = { git = "https://github.com/org/lib?rev=main#abc" }\n'
    )
    result = parse_lock(lock, str(lock), InputKind.UV_LOCK, OPTIONS)
    deps = by_name(result)
    assert result.errors == ()
    assert deps["numpy"].version == "1.21.0" and deps["numpy"].origin == "locked"
    assert deps["numpy"].line == 10
    assert "git checkout" in (deps["lib"].unauditable or "")
    assert "myproject" not in deps and result.metadata["skipped_local_projects"] == "1"


def test_poetry_lock(tmp_path: Path) -> None:
    lock = tmp_path / "poetry.lock"
    lock.write_text(
        '[metadata]\nlock-version = "2.1"\n\n'
        '[[package]]\nname = "jinja2"\nversion = "2.10"\n\n'
        '[[package]]\nname = "private"\nversion = "1.0"\n'
        '[package.source]\ntype = "legacy"\nurl = "https://pypi.example/simple"\n\n'
        '[[package]]\nname = "forked"\nversion = "2.0"\n'
        '[package.source]\ntype = "git"\nurl = "https://github.com/org/forked"\n'
    )
    deps = by_name(parse_lock(lock, str(lock), InputKind.POETRY_LOCK, OPTIONS))
    assert deps["jinja2"].version == "2.10"
    assert deps["private"].version == "1.0"
    assert deps["forked"].unauditable is not None


def test_pipfile_lock(tmp_path: Path) -> None:
    lock = tmp_path / "Pipfile.lock"
    lock.write_text(
        json.dumps(
            {
                "_meta": {"hash": {"sha256": "x"}},
                "default": {
                    "pillow": {"version": "==8.0.0", "hashes": ["sha256:x"]},
                    "pywin32": {"version": "==306", "markers": "sys_platform == 'win32'"},
                    "mylib": {"git": "https://github.com/org/mylib", "ref": "abc"},
                },
                "develop": {"pytest": {"version": "==7.0.0"}, "bad": {"version": "*"}},
            }
        )
    )
    result = parse_lock(lock, str(lock), InputKind.PIPFILE_LOCK, OPTIONS)
    deps = by_name(result)
    assert set(deps) == {"pillow", "mylib", "pytest"}
    assert deps["pillow"].version == "8.0.0"
    assert [e.message for e in result.errors] == [
        f"{lock}:1: package 'bad' has no '==' version: '*'"
    ]


def test_pylock(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text(
        'lock-version = "1.0"\ncreated-by = "tests"\n\n'
        '[[packages]]\nname = "urllib3"\nversion = "1.26.4"\n'
        '[[packages.wheels]]\nname = "urllib3-1.26.4-py2.py3-none-any.whl"\n'
        'url = "https://files.example/urllib3-1.26.4-py2.py3-none-any.whl"\n'
        'hashes = { sha256 = "aa" }\n\n'
        '[[packages]]\nname = "winonly"\nversion = "1.0"\nmarker = "sys_platform == \'win32\'"\n'
        '[[packages.wheels]]\nname = "winonly-1.0-py3-none-any.whl"\n'
        'url = "https://files.example/winonly-1.0-py3-none-any.whl"\nhashes = { sha256 = "bb" }\n\n'
        '[[packages]]\nname = "checkout"\n'
        '[packages.vcs]\ntype = "git"\nurl = "https://github.com/org/checkout"\n'
        'commit-id = "0123456789abcdef"\n'
    )
    result = parse_lock(lock, str(lock), InputKind.PYLOCK, OPTIONS)
    deps = by_name(result)
    assert result.errors == ()
    assert deps["urllib3"].version == "1.26.4"
    assert "winonly" not in deps
    assert "git checkout" in (deps["checkout"].unauditable or "")


@pytest.mark.parametrize(
    ("name", "kind", "content", "message"),
    [
        ("uv.lock", InputKind.UV_LOCK, "[[package]\nname=", "not valid TOML"),
        ("uv.lock", InputKind.UV_LOCK, 'version = 1\npackage = "nope"', "must be an array"),
        (
            "poetry.lock",
            InputKind.POETRY_LOCK,
            '[metadata]\n[[package]]\nname = "x"\n',
            "has no version",
        ),
        ("Pipfile.lock", InputKind.PIPFILE_LOCK, "{", "not valid JSON"),
        ("Pipfile.lock", InputKind.PIPFILE_LOCK, "[1, 2]", "must be a JSON object"),
        ("pylock.toml", InputKind.PYLOCK, '[[packages]]\nname = "x"\n', "not a valid pylock"),
    ],
)
def test_malformed_lock_files_are_error_records(
    tmp_path: Path, name: str, kind: InputKind, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    result = parse_lock(path, str(path), kind, OPTIONS)
    assert result.errors and message in result.errors[0].message
    assert result.errors[0].message.startswith(str(path))


def test_pyproject_pep621_groups_and_poetry(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "demo"\ndependencies = ["mlflow>=2.0", "PyYAML==5.3"]\n'
        "[project.optional-dependencies]\ngpu = [\"torch==1.12.0 ; extra == 'gpu'\"]\n"
        '[dependency-groups]\ndev = ["pytest==7.0", {include-group = "lint"}]\nlint = ["ruff"]\n'
        '[tool.poetry.dependencies]\npython = "^3.11"\nnumpy = "^1.21"\n'
        'pandas = { version = "~1.3.0", extras = ["excel"] }\n'
        'scipy = "1.7.*"\nrequests = "2.19.0"\n'
        'mylib = { git = "https://github.com/org/mylib.git" }\n'
        '[tool.poetry.group.test.dependencies]\nhypothesis = ">=6 || <5"\n'
    )
    result = parse_pyproject(pyproject, str(pyproject), OPTIONS)
    deps = by_name(result)
    assert result.errors == ()
    assert deps["mlflow"].specifiers == (">=2.0",)
    assert deps["pyyaml"].version == "5.3" and deps["pyyaml"].line == 3
    assert deps["torch"].evidence["group"] == "optional:gpu"
    assert deps["pytest"].version == "7.0"
    assert deps["ruff"].specifiers == ("",)
    assert "python" not in deps
    assert deps["numpy"].specifiers == (">=1.21,<2",)
    assert deps["pandas"].specifiers == (">=1.3.0,<1.4",) and deps["pandas"].extras == ("excel",)
    assert deps["scipy"].specifiers == ("==1.7.*",)
    assert deps["requests"].version == "2.19.0"
    assert deps["mylib"].unauditable is not None
    assert deps["hypothesis"].specifiers == (">=6", "<5")


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        ("^1.2.3", (">=1.2.3,<2",)),
        ("^0.2.3", (">=0.2.3,<0.3",)),
        ("^0.0.3", (">=0.0.3,<0.0.4",)),
        ("^0", (">=0,<1",)),
        ("~1.2.3", (">=1.2.3,<1.3",)),
        ("~1", (">=1,<2",)),
        ("*", ("",)),
        (">=1.0 <2.0", (">=1.0,<2.0",)),
        ("1.2.3", ("==1.2.3",)),
        ("^1.0 || ^2.0", (">=1.0,<2", ">=2.0,<3")),
    ],
)
def test_poetry_constraints(constraint: str, expected: tuple[str, ...]) -> None:
    assert poetry_constraint(constraint) == expected


def test_bad_pyproject(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[project]\ndependencies = ["ok==1.0", "bad=>1"]\n[tool.poetry.dependencies]\nx = "^one"\n'
    )
    result = parse_pyproject(path, str(path), OPTIONS)
    assert [d.canonical for d in result.dependencies] == ["ok"]
    assert len(result.errors) == 2
    assert any(":2:" in e.message and "bad=>1" in e.message for e in result.errors)
    path.write_text("[project\n")
    assert "not valid TOML" in parse_pyproject(path, str(path), OPTIONS).errors[0].message


def test_conda_environment(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("transformers==4.30.0\n")
    env = tmp_path / "environment.yml"
    env.write_text(
        "name: demo\nchannels: [conda-forge]\ndependencies:\n"
        "  - python=3.10\n  - numpy=1.26\n  - scikit-learn=1.0.2=py310h_0\n"
        "  - conda-forge::pytorch==1.12.0\n  - py-xgboost>=1.5,<2\n  - libgcc-ng\n"
        "  - pillow 8.0.0 py310_0\n  - pip\n"
        "  - pip:\n    - mlflow==2.9.2\n    - -r requirements.txt\n"
    )
    result = parse_conda(env, str(env), OPTIONS)
    deps = by_name(result)
    assert result.errors == ()
    assert "python" not in deps and "libgcc-ng" not in deps
    assert deps["numpy"].specifiers == ("==1.26.*",)
    assert deps["scikit-learn"].version == "1.0.2"
    assert deps["torch"].version == "1.12.0" and deps["torch"].evidence["conda_spec"]
    assert deps["xgboost"].specifiers == (">=1.5,<2",)
    assert deps["pillow"].version == "8.0.0"
    assert deps["mlflow"].version == "2.9.2" and deps["mlflow"].line == 13
    assert deps["transformers"].version == "4.30.0"
    assert result.metadata["skipped_non_python"] == "2"


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        ("", (None, ("",))),
        ("=1.26.4", ("1.26.4", ())),
        ("=1.26", (None, ("==1.26.*",))),
        ("=1.26.*", (None, ("==1.26.*",))),
        ("==2.0=build", ("2.0", ())),
        (">=1.0|<0.5", (None, (">=1.0", "<0.5"))),
    ],
)
def test_conda_constraints(rest: str, expected: tuple[str | None, tuple[str, ...]]) -> None:
    assert conda_constraint(rest) == expected


def test_bad_conda_file(tmp_path: Path) -> None:
    env = tmp_path / "conda.yaml"
    env.write_text("dependencies: [unclosed\n")
    assert "not valid YAML" in parse_conda(env, str(env), OPTIONS).errors[0].message
    env.write_text("dependencies: {a: b}\n")
    assert "must be a list" in parse_conda(env, str(env), OPTIONS).errors[0].message


def test_mlflow_mlmodel_and_python_env(tmp_path: Path) -> None:
    mlmodel = tmp_path / "MLmodel"
    mlmodel.write_text(
        "artifact_path: model\nflavors:\n  python_function:\n    env:\n"
        "      conda: conda.yaml\n      virtualenv: python_env.yaml\n"
        "    loader_module: mlflow.sklearn\n    python_version: 3.10\n"
        "  sklearn:\n    pickled_model: model.pkl\n    serialization_format: cloudpickle\n"
        "    sklearn_version: 1.0.2\n"
        "mlflow_version: 2.9.2\n"
    )
    result = parse_mlmodel(mlmodel, str(mlmodel), OPTIONS)
    deps = by_name(result)
    assert set(deps) == {"mlflow", "scikit-learn"}
    assert (
        deps["scikit-learn"].version == "1.0.2" and deps["scikit-learn"].origin == "model-implied"
    )
    assert deps["mlflow"].line == 13
    assert result.metadata["loader_modules"] == "mlflow.sklearn"
    (tmp_path / "requirements.txt").write_text("cloudpickle==2.0.0\n")
    env = tmp_path / "python_env.yaml"
    env.write_text(
        "python: 3.10.12\nbuild_dependencies:\n  - pip==23.0\n  - setuptools\n"
        "dependencies:\n  - -r requirements.txt\n"
    )
    env_deps = by_name(parse_python_env(env, str(env), OPTIONS))
    assert env_deps["pip"].version == "23.0"
    assert env_deps["setuptools"].specifiers == ("",)
    assert env_deps["cloudpickle"].version == "2.0.0"


def test_environment_lists_installed_distributions() -> None:
    result = parse_environment()
    deps = by_name(result)
    import packaging

    assert deps["packaging"].version == packaging.__version__
    assert all(d.origin == "installed" for d in result.dependencies)
    assert result.path == f"environment:{sys.prefix}"


def test_environment_names_and_versions_agree_with_importlib_metadata(tmp_path: Path) -> None:
    """The header-only reading gives what the email parser gives, for every installed
    distribution, and for hand-made METADATA and PKG-INFO files with awkward headers."""
    import importlib.metadata

    from modelshield.audit.inputs.environment import name_and_version

    for dist in importlib.metadata.distributions():
        assert name_and_version(dist) == (dist.metadata["Name"], dist.version), dist
    site = tmp_path / "site"
    cases = {
        "a-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: a\nVersion: 1.0\n"
        "Summary: x\n  continued: not a header\n\nName: body-text\n",
        "b-2.0.dist-info/METADATA": "metadata-version: 2.1\nname: B\nversion: 2.0\n",
        "c.egg-info/PKG-INFO": "Metadata-Version: 1.0\nName: c\nVersion: 3.0rc1\n",
    }
    for rel, text in cases.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    dists = list(importlib.metadata.distributions(path=[str(site)]))
    assert len(dists) == 3
    for dist in dists:
        assert name_and_version(dist) == (dist.metadata["Name"], dist.version)
    result = parse_environment([str(site)])
    assert {(d.name, d.version) for d in result.dependencies} == {
        ("a", "1.0"),
        ("B", "2.0"),
        ("c", "3.0rc1"),
    }
