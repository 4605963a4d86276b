"""Write ``scanner/data/config_targets_generated.toml``: PyTorch names a config may instantiate.

Hydra, jsonargparse and NeMo configs name PyTorch classes and functions as instantiation
targets (``_target_: torch.nn.Linear``, ``torch.optim.AdamW``, ``torch.nn.functional.gelu``
with ``_partial_: true``). This script imports the installed PyTorch and lists, exactly, under
their exported and their defining names:

* every ``torch.nn.Module`` subclass exported by ``torch.nn`` (layers, containers, losses,
  activations);
* every ``torch.optim.Optimizer`` subclass exported by ``torch.optim`` and every learning-rate
  scheduler of ``torch.optim.lr_scheduler``;
* the public functions of ``torch.nn.functional`` and ``torch.nn.init`` (tensor computations);
* the data-loading classes of ``torch.utils.data`` that take datasets, samplers and numbers.

Instantiating one of these with keyword arguments from a file builds a module, an optimizer
or a tensor function; nothing here reads or writes files, opens connections or imports by
name (``torch.load``, ``torch.hub``, ``torch.jit``, ``torch.package`` are never listed). These
are configuration entries, not pickle allow entries: a pickle can set any attribute of an
object, a config only passes constructor arguments.

Run: ``python scripts/generate_config_targets.py``.
"""

from __future__ import annotations

import inspect
import sys
import warnings
from pathlib import Path

OUT = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "modelshield"
    / "scanner"
    / "data"
    / "config_targets_generated.toml"
)

#: Functions of torch.nn.functional that dispatch to overrides or are internal plumbing.
_NOT_FUNCTIONS = ("handle_torch_function", "has_torch_function", "boolean_dispatch", "assert_")
#: Classes of torch.utils.data a config builds data pipelines from.
_DATA_CLASSES = (
    "DataLoader",
    "BatchSampler",
    "RandomSampler",
    "SequentialSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
    "ConcatDataset",
    "Subset",
    "TensorDataset",
    "StackDataset",
)


def _entries() -> dict[str, dict[str, str]]:
    import torch
    import torch.nn
    import torch.nn.functional
    import torch.nn.init
    import torch.optim
    import torch.optim.lr_scheduler
    import torch.utils.data
    import torch.utils.data.distributed

    groups: dict[str, dict[str, str]] = {"modules": {}, "optim": {}, "functions": {}, "data": {}}

    def add(group: str, exported: str, obj: object, why: str) -> None:
        name = getattr(obj, "__name__", "")
        groups[group][f"{exported}:{name}"] = why
        module = getattr(obj, "__module__", None)
        if module and module != exported and module.startswith("torch."):
            groups[group][f"{module}:{getattr(obj, '__qualname__', name)}"] = why

    for name in sorted(dir(torch.nn)):
        obj = getattr(torch.nn, name)
        if inspect.isclass(obj) and issubclass(obj, torch.nn.Module) and not name.startswith("_"):
            add("modules", "torch.nn", obj, f"torch.nn.{name}: a module built from numbers")
    for name in sorted(dir(torch.optim)):
        obj = getattr(torch.optim, name)
        if (
            inspect.isclass(obj)
            and issubclass(obj, torch.optim.Optimizer)
            and obj is not torch.optim.Optimizer
        ):
            add("optim", "torch.optim", obj, f"torch.optim.{name}: an optimizer")
    schedulers = torch.optim.lr_scheduler
    bases = tuple(
        c
        for c in (getattr(schedulers, "LRScheduler", None), schedulers.ReduceLROnPlateau)
        if c is not None
    )
    for name in sorted(dir(schedulers)):
        obj = getattr(schedulers, name)
        if inspect.isclass(obj) and issubclass(obj, bases) and not name.startswith("_"):
            why = f"torch.optim.lr_scheduler.{name}: a learning-rate schedule"
            add("optim", "torch.optim.lr_scheduler", obj, why)
    for namespace in (torch.nn.functional, torch.nn.init):
        exported = namespace.__name__
        for name in sorted(dir(namespace)):
            obj = getattr(namespace, name)
            if name.startswith(("_", *_NOT_FUNCTIONS)) or not callable(obj):
                continue
            if inspect.isclass(obj) or inspect.ismodule(obj):
                continue
            if not (inspect.isfunction(obj) or inspect.isbuiltin(obj)):
                continue
            groups["functions"][f"{exported}:{name}"] = f"{exported}.{name}: a tensor function"
    for name in _DATA_CLASSES:
        obj = getattr(torch.utils.data, name, None)
        if obj is not None:
            add("data", "torch.utils.data", obj, f"torch.utils.data.{name}: data loading")
    sampler = torch.utils.data.distributed.DistributedSampler
    add("data", "torch.utils.data.distributed", sampler, "DistributedSampler: data loading")
    add("data", "torch.utils.data", sampler, "DistributedSampler: data loading")
    return groups


ABOUT = {
    "modules": "PyTorch modules (torch.nn): layers, containers, losses and activations, built "
    "from numbers and nested modules.",
    "optim": "PyTorch optimizers and learning-rate schedulers: numeric state over the "
    "parameters they are given.",
    "functions": "Functions of torch.nn.functional and torch.nn.init (often named with "
    "`_partial_: true`): tensor computations.",
    "data": "torch.utils.data classes a config builds loaders from: datasets, samplers and "
    "numbers, no file access of their own.",
}


def render() -> str:
    """The text of ``config_targets_generated.toml`` for the installed PyTorch."""
    warnings.simplefilter("ignore")
    import torch

    lines = [
        "# Generated by scripts/generate_config_targets.py from PyTorch "
        f"{torch.__version__.split('+')[0]}; do not edit by hand.",
        "#",
        "# Exact names a configuration (Hydra _target_, jsonargparse class_path) may",
        "# instantiate. Configuration entries, not pickle allow entries (see the script).",
        "",
    ]
    for group, entries in _entries().items():
        lines += [f"[torch-{group}]", f'about = "{ABOUT[group]}"', "", f"[torch-{group}.entries]"]
        lines.extend(f'"{key}" = "{why}"' for key, why in sorted(entries.items()))
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    """Write the file."""
    text = render()
    OUT.write_text(text, encoding="utf-8")
    print(f"{text.count(chr(10))} lines -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
