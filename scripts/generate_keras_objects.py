"""Write ``scanner/data/keras_objects.toml``: the Keras objects a model config may name safely.

A Keras 3 ``config.json`` (and the ``model_config`` of a Keras ``.h5``) names every object it
rebuilds by ``module`` and ``class_name`` (``keras.layers`` / ``Dense``), and the loader imports
what it names. This script imports Keras (torch backend) and lists, exactly, the names that the
saving code writes for Keras' own modelling objects: every ``KerasSaveable`` class under
``keras.src`` (layers, ops, models, optimizers, losses, metrics, initializers, regularizers,
constraints, learning-rate schedules, dtype policies) under both its exported API name and its
defining module, and the exported functions of the modelling namespaces (activations, losses,
metrics...). Objects that run code or reach outside the file (``Lambda``, ``TFSMLayer``,
``TorchModuleWrapper``, ``JaxLayer``, ``FlaxLayer``) and Keras' non-modelling APIs (file
downloads, model loading, ``enable_unsafe_deserialization``) are left out; the scanner reports
them by their own rules.

These entries are not pickle allow entries: a Keras layer's constructor deserialises nested
configs (its dtype policy, its activation), so unpickling one with hostile arguments is not
inert (``tests/scanner/load_paths.py`` shows the path to ``marshal.loads``). In a Keras config
those nested configs are themselves walked by the scanner, which is why the list is kept apart
from ``callables_safe.toml``.

Run: ``KERAS_BACKEND=torch python scripts/generate_keras_objects.py``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import sys
import warnings
from pathlib import Path

OUT = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "modelshield"
    / "scanner"
    / "data"
    / "keras_objects.toml"
)

#: Exported namespaces whose functions are modelling functions (activations, loss functions...).
FUNCTION_NAMESPACES = (
    "keras.activations",
    "keras.losses",
    "keras.metrics",
    "keras.initializers",
    "keras.regularizers",
    "keras.constraints",
    "keras.ops",
    "keras.ops.nn",
    "keras.ops.numpy",
    "keras.ops.image",
    "keras.ops.linalg",
)
#: Exported namespaces whose classes are modelling objects (some, like DTypePolicy, are not
#: KerasSaveable subclasses but are rebuilt from configs all the same).
CLASS_NAMESPACES = frozenset(
    {
        "keras",
        "keras.layers",
        "keras.models",
        "keras.optimizers",
        "keras.optimizers.schedules",
        "keras.losses",
        "keras.metrics",
        "keras.initializers",
        "keras.regularizers",
        "keras.constraints",
        "keras.dtype_policies",
        "keras.quantizers",
    }
)
#: Functions of those namespaces that deserialise or look objects up by name.
NOT_MODELLING = frozenset({"serialize", "deserialize", "get"})
#: Classes that run code or load something from outside the file: reported by their own rules.
EXCLUDED_CLASSES = frozenset({"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"})
#: keras.src packages whose classes are not modelling objects (saving, export, callbacks...).
EXCLUDED_PACKAGES = (
    "keras.src.saving",
    "keras.src.export",
    "keras.src.callbacks",
    "keras.src.utils",
    "keras.src.legacy",
    "keras.src.datasets",
    "keras.src.applications",
    "keras.src.wrappers",
    "keras.src.distribution",
    "keras.src.visualization",
    "keras.src.testing",
    "keras.src.distillation",
)
#: Packages under keras.src walked for classes.
WALKED = (
    "keras.src.layers",
    "keras.src.ops",
    "keras.src.models",
    "keras.src.optimizers",
    "keras.src.losses",
    "keras.src.metrics",
    "keras.src.initializers",
    "keras.src.regularizers",
    "keras.src.constraints",
    "keras.src.dtype_policies",
    "keras.src.quantizers",
    "keras.src.random",
    "keras.src.backend.common",
    "keras.src.backend.torch",
    "keras.src.trainers",
)

GROUPS = {
    "layers": "Keras layers and models: rebuilt from their config by `from_config`, which only "
    "sets attributes and deserialises the nested configs the scanner also walks.",
    "ops": "Keras operations recorded in functional models (`keras.ops` calls become "
    "Operation objects): pure tensor computations.",
    "training": "Optimizers, learning-rate schedules, losses and metrics named by "
    "`compile_config`/`training_config`: numeric state and tensor computations.",
    "numerics": "Initializers, regularizers, constraints, activations, dtype policies and "
    "quantizers: pure functions of tensors and numbers.",
}


def _group(module: str) -> str:
    if module.startswith(("keras.src.ops", "keras.ops")):
        return "ops"
    if any(
        part in module
        for part in ("optimizers", "losses", "metrics", "schedules", "trainers", "torch")
    ):
        return "training"
    if any(
        part in module
        for part in (
            "initializers",
            "regularizers",
            "constraints",
            "activations",
            "dtype_policies",
            "quantizers",
            "random",
            "backend.common",
        )
    ):
        return "numerics"
    return "layers"


def _walk_modules() -> None:
    for name in WALKED:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            if info.name.endswith("_test") or ".test" in info.name:
                continue
            try:
                importlib.import_module(info.name)
            except Exception:  # another backend's module
                continue


def render() -> str:
    """The text of ``keras_objects.toml`` for the installed Keras (torch backend)."""
    warnings.simplefilter("ignore")
    import keras
    from keras.src import api_export
    from keras.src.saving.keras_saveable import KerasSaveable
    from keras.src.saving.serialization_lib import NON_MODELING_APIS

    _walk_modules()
    entries: dict[str, dict[str, str]] = {group: {} for group in GROUPS}

    def add(module: str, name: str, why: str) -> None:
        entries[_group(module)][f"{module}:{name}"] = why

    seen: set[type] = set()
    allowed: set[object] = set()
    stack = [KerasSaveable]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub in seen:
                continue
            seen.add(sub)
            stack.append(sub)
    for cls in sorted(seen, key=lambda c: (c.__module__, c.__qualname__)):
        module = cls.__module__
        if (
            not module.startswith("keras.src.")
            or module.startswith(EXCLUDED_PACKAGES)
            or cls.__name__ in EXCLUDED_CLASSES
            or "<locals>" in cls.__qualname__
            or cls.__name__.startswith("_")
        ):
            continue
        add(module, cls.__qualname__, f"{cls.__name__} ({cls.__mro__[1].__name__})")
        allowed.add(cls)
    for exported, obj in sorted(api_export.REGISTERED_NAMES_TO_OBJS.items()):
        api_module, _, api_name = exported.rpartition(".")
        exported_class = (
            inspect.isclass(obj)
            and api_module in CLASS_NAMESPACES
            and obj.__name__ not in EXCLUDED_CLASSES
            and obj.__module__.startswith("keras.src.")
            and not obj.__module__.startswith(EXCLUDED_PACKAGES)
        )
        if (obj in allowed or exported_class) and exported not in NON_MODELING_APIS:
            add(api_module, api_name, f"{obj.__name__}, as exported")
            continue
        if (
            api_module not in FUNCTION_NAMESPACES
            or not inspect.isfunction(obj)
            or api_name in NOT_MODELLING
            or exported in NON_MODELING_APIS
        ):
            continue
        add(api_module, api_name, f"function {obj.__module__}.{obj.__name__}")
    lines = [
        "# Generated by scripts/generate_keras_objects.py from Keras "
        f"{keras.__version__}; do not edit by hand.",
        "#",
        "# Keras objects a model config (.keras config.json, .h5 model_config, keras_metadata.pb)",
        "# may name: the scanner reports any other module/class_name it finds. Not pickle allow",
        "# entries (see the script's docstring).",
        "",
    ]
    for group, about in GROUPS.items():
        lines += [f"[keras-{group}]", f"about = {about!r}".replace("'", '"'), ""]
        lines.append(f"[keras-{group}.entries]")
        for key, why in sorted(entries[group].items()):
            lines.append(f'"{key}" = "{why}"')
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    """Write the file."""
    if os.environ.get("KERAS_BACKEND") != "torch":
        print("set KERAS_BACKEND=torch", file=sys.stderr)
        return 2
    text = render()
    OUT.write_text(text, encoding="utf-8")
    print(f"{text.count(chr(10))} lines -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
