"""Write the generated part of the callable allowlist from the installed libraries.

The scanner's safe list names callables exactly: a package-wide entry such as ``sklearn.*``
would admit every function of the package (dataset fetchers, file readers), names a future
release adds, and objects other libraries' modules re-export. This script imports scikit-learn,
scipy, pandas, torch and numpy, enumerates the classes and functions their modules define, walks
the hooks a pickle load can run on each (``tests/scanner/load_paths.py``: ``__new__``,
``__init__``, ``__setstate__``, container hooks, ``__del__``..., and functions themselves) and
writes ``src/modelshield/scanner/data/callables_generated.toml``:

- every class the walk finds no sink behind (or only sinks reviewed in ``load_paths.REVIEWED``);
- the functions a real model stores or a load calls: reconstructors that a class's
  ``__reduce__`` names, Cython ``__pyx_unpickle_*`` helpers of admitted classes, ufuncs,
  scikit-learn's metric, kernel and scorer functions and the callables estimators take as
  defaults, and every function the pickles of ``tests/scanner/collect_real_globals.py`` write;
- the classes whose state a load executes, in a table that names the state keys the scanner
  checks (``PICKLE-STATE-CODE``);
- re-exports of denied callables under the scanned packages (``types.MethodType`` reachable as
  a scipy module attribute), as dangerous entries, so that they resolve to what they are.

Run it from the repository root after upgrading one of these libraries, review the diff, then
``make docs``::

    python scripts/generate_safe_callables.py            # rewrite the generated TOML
    python scripts/generate_safe_callables.py --report   # also print what was refused and why
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.scanner import collect_real_globals as real  # noqa: E402
from tests.scanner import load_paths  # noqa: E402

from modelshield.scanner import callables  # noqa: E402
from modelshield.scanner.callables import CallablePolicy, Tier  # noqa: E402

OUTPUT = REPO / "src" / "modelshield" / "scanner" / "data" / "callables_generated.toml"


@dataclass(frozen=True)
class Scope:
    """One library: the packages walked and what the table says about them."""

    table: str
    about: str
    packages: tuple[str, ...]
    functions: Callable[[], Iterator[Any]] = lambda: iter(())


@dataclass
class Admitted:
    """What the walk decided for one library."""

    safe: dict[str, str] = field(default_factory=dict)
    state_checked: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


# ---- functions real models keep -----------------------------------------------------------------
def _sklearn_functions() -> Iterator[Any]:
    """Metric and kernel functions, scorer functions, and callables estimators default to."""
    from sklearn import metrics
    from sklearn.metrics import pairwise
    from sklearn.utils import all_estimators

    for name in getattr(metrics, "__all__", ()):
        yield getattr(metrics, name, None)
    for name in getattr(pairwise, "__all__", ()):
        yield getattr(pairwise, name, None)
    yield from pairwise.PAIRWISE_DISTANCE_FUNCTIONS.values()
    yield from pairwise.PAIRWISE_KERNEL_FUNCTIONS.values()
    for name in metrics.get_scorer_names():
        yield getattr(metrics.get_scorer(name), "_score_func", None)
    with _quiet():
        estimators = all_estimators()
    for _name, cls in estimators:
        try:
            signature = inspect.signature(cls.__init__)
        except (TypeError, ValueError):
            continue
        for parameter in signature.parameters.values():
            if callable(parameter.default) and not isinstance(parameter.default, type):
                yield parameter.default


def _scipy_functions() -> Iterator[Any]:
    """Distance metrics that neighbour searches and clustering keep."""
    from scipy.spatial import distance

    for name in getattr(distance, "__all__", ()):
        yield getattr(distance, name, None)


SCOPES = (
    Scope(
        "generated-sklearn",
        "scikit-learn classes (estimators, trees, losses, scorers, splitters...) and the "
        "functions fitted models keep (metrics, kernels, score functions)",
        ("sklearn",),
        _sklearn_functions,
    ),
    Scope(
        "generated-scipy",
        "scipy sparse containers, distributions, splines, spatial trees and special ufuncs",
        ("scipy.sparse", "scipy.stats", "scipy.special", "scipy.interpolate", "scipy.spatial"),
        _scipy_functions,
    ),
    Scope(
        "generated-pandas",
        "pandas frames, series, indexes, blocks, arrays, dtypes, offsets and their "
        "reconstructors (pandas >= 3 names classes under the top-level module, older "
        "releases under pandas.core: both are listed)",
        ("pandas",),
    ),
    Scope(
        "generated-torch",
        "torch layers (torch.nn.modules), quantized layers (torch.ao.nn), optimizers and "
        "learning-rate schedulers of whole-model and optimizer pickles",
        ("torch.nn.modules", "torch.ao.nn", "torch.optim"),
    ),
    Scope("generated-numpy", "numpy DType classes (numpy.dtypes)", ("numpy.dtypes",)),
)


# ---- the walk ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _skipped(module: str, lists: Any) -> bool:
    """Test modules and modules a deny entry covers are never walked."""
    return callables._is_test_module(module) or lists.dangerous.package_of(module) is not None


def _is_ufunc(value: Any) -> bool:
    return type(value).__name__ == "ufunc" and type(value).__module__ == "numpy"


def _home(value: Any) -> str:
    return getattr(value, "__module__", None) or ""


def _aliases_ok(value: Any, module: str) -> bool:
    """``module:name`` is where pickle writes ``value``: its own module, or a submodule of it
    (pandas and numpy move ``__module__`` up to the public package)."""
    home = _home(value)
    return bool(home) and (home == module or module.startswith(home + "."))


def _reduce_helpers(cls: type) -> Iterator[Any]:
    """Functions a class's Python ``__reduce__``/``__reduce_ex__`` names (its reconstructor)."""
    for hook in ("__reduce__", "__reduce_ex__"):
        fn, _owner = load_paths._static_attr(cls, hook)
        found = load_paths.function_code(fn)
        if found is None:
            continue
        code, globs = found
        for code_obj in load_paths._all_code(code):
            for name in code_obj.co_names:
                value = globs.get(name)
                if isinstance(value, types.FunctionType) or (
                    callable(value) and not isinstance(value, type)
                ):
                    yield value


def _module_names(scope: Scope, lists: Any) -> Iterator[types.ModuleType]:
    seen: set[str] = set()
    for package in scope.packages:
        with _quiet():
            for module in load_paths.walk_modules(package, lambda m: _skipped(m, lists)):
                if module.__name__ not in seen and not _skipped(module.__name__, lists):
                    seen.add(module.__name__)
                    yield module


def _evidence() -> set[tuple[str, str]]:
    """Every global the real-library pickles write (functions among them are admitted)."""
    with _quiet():
        return set(real.collect(real._available()))


def _listed(lists: Any, key: str) -> bool:
    """Whether the hand-written lists already decide ``module:name`` exactly."""
    module, _, name = key.partition(":")
    pair = callables.normalize(module, name)
    return pair in lists.safe.exact or pair in lists.dangerous.exact


def generate(scope: Scope, walker: load_paths.Walker, evidence: set[tuple[str, str]]) -> Admitted:
    """Decide every class and function of ``scope``."""
    lists = callables.hand_written_lists()
    policy = CallablePolicy(lists)
    admitted = Admitted()
    wanted_ids = set()
    with _quiet():
        wanted_ids = {id(fn) for fn in scope.functions() if fn is not None}
    modules = list(_module_names(scope, lists))
    by_id: dict[int, Any] = {}
    classes: list[tuple[str, str, type]] = []
    functions: list[tuple[str, str, Any]] = []
    for module in modules:
        for name, value in sorted(vars(module).items()):
            if name.startswith("__") and name.endswith("__"):
                continue
            if _is_ufunc(value) and getattr(value, "__name__", None) == name:
                admitted.safe[f"{module.__name__}:{name}"] = "ufunc: element-wise math (native)"
                continue
            if getattr(value, "__name__", None) != name or not _aliases_ok(value, module.__name__):
                continue
            qualname = getattr(value, "__qualname__", name)
            if policy.classify(_home(value), str(qualname)).tier is Tier.DANGEROUS:
                continue  # a denied object, wherever it is reachable from
            if isinstance(value, type):
                classes.append((module.__name__, name, value))
            elif callable(value):
                functions.append((module.__name__, name, value))
            by_id[id(value)] = value
    # Classes: admitted when no unreviewed sink is behind any hook.
    admitted_classes: dict[int, type] = {}
    for module, name, cls in classes:
        key = f"{module}:{name}"
        verdict = _verdict(walker, cls)
        if isinstance(verdict, str):
            admitted.refused[key] = verdict
            continue
        admitted_classes[id(cls)] = cls
        if verdict:
            reason, keys = verdict
            admitted.state_checked[key] = (reason, keys)
        else:
            admitted.safe[key] = "estimator" if _is_estimator(cls) else "class"
    # Functions: admitted when a model keeps them or a load calls them, and they are clean.
    helper_ids = {
        id(fn): f"reconstructor named by {cls.__qualname__}.__reduce__"
        for cls in admitted_classes.values()
        for fn in _reduce_helpers(cls)
    }
    for module, name, fn in functions:
        key = f"{module}:{name}"
        why = None
        if name.startswith("__pyx_unpickle_") and any(
            c.__name__ == name.removeprefix("__pyx_unpickle_") and c.__module__ == module
            for c in admitted_classes.values()
        ):
            why = "Cython unpickle helper of an admitted class (native)"
        elif id(fn) in helper_ids:
            why = helper_ids[id(fn)]
        elif (module, name) in evidence or (_home(fn), name) in evidence:
            why = "function real pickles write"
        elif id(fn) in wanted_ids:
            why = "function fitted models keep"
        if why is None:
            continue
        verdict = _verdict(walker, fn)
        if isinstance(verdict, str):
            admitted.refused[key] = verdict
        elif verdict:
            admitted.refused[key] = "a function whose code is checked by state cannot be called"
        else:
            admitted.safe[key] = why
    return admitted


def _is_estimator(cls: type) -> bool:
    return any(
        base.__name__ == "BaseEstimator" and base.__module__ == "sklearn.base"
        for base in cls.__mro__
    )


def _verdict(walker: load_paths.Walker, obj: Any) -> str | tuple[str, tuple[str, ...]] | None:
    """None when clean, (reason, state keys) when only state-checked sinks, else the refusal."""
    keys: list[str] = []
    reasons: list[str] = []
    for hit in walker.hits_of(obj):
        review = load_paths.review_of(hit)
        if review is None:
            return hit.describe()
        if review.state_keys:
            keys.extend(k for k in review.state_keys if k not in keys)
            if review.reason not in reasons:
                reasons.append(review.reason)
    if keys:
        return "; ".join(reasons), tuple(keys)
    return None


# ---- re-exports of denied objects ----------------------------------------------------------------
def denied_reexports(scope: Scope, policy: CallablePolicy) -> dict[str, tuple[str, str, str]]:
    """``module:name`` attributes of the scope's modules that are denied callables or types."""
    lists = callables.hand_written_lists()
    found: dict[str, tuple[str, str, str]] = {}
    for module in _module_names(scope, lists):
        for name, value in sorted(vars(module).items()):
            if isinstance(value, types.ModuleType) or not callable(value):
                continue
            if name.startswith("__") and name.endswith("__"):
                continue
            home = _home(value)
            qualname = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
            if not home or not isinstance(qualname, str) or _aliases_ok(value, module.__name__):
                continue
            verdict = policy.classify(home, qualname)
            if verdict.tier is not Tier.DANGEROUS:
                continue
            if policy.classify(module.__name__, name).tier is Tier.DANGEROUS:
                continue  # already denied here (refused names, module attributes)
            severity = verdict.severity.label if verdict.severity is not None else "high"
            found[f"{module.__name__}:{name}"] = (
                f"re-export of {verdict.module}:{verdict.name}",
                severity,
                verdict.category,
            )
    return found


# ---- output --------------------------------------------------------------------------------------
HEADER = """\
# GENERATED by scripts/generate_safe_callables.py from the installed libraries: do not edit.
# Rerun it after upgrading scikit-learn, scipy, pandas, torch or numpy, review the diff, then
# run `make docs`.
#
# Every class below was imported and its load paths walked (__new__, __init__, __setstate__,
# __setattr__, __getattr__, container hooks, __hash__/__eq__, __del__, __call__, __reduce__)
# through its package's own helpers to a list of sinks: exec/eval/compile, imports by name,
# file and network I/O, processes, ctypes, deserialisation (tests/scanner/load_paths.py). A
# class with an unreviewed sink behind any hook is left out (UNKNOWN). Functions are listed
# only where a model keeps them or a load calls them, and only when their own code is clean.
# Tables with `state-keys` list classes whose load executes a value of their state: the
# scanner checks those keys in every BUILD state (PICKLE-STATE-CODE).
# `[generated-reexports]` lists denied callables that the packages' modules re-export: they
# are what they are, whatever the module they are imported from.
"""


REEXPORTS_ABOUT = (
    "Denied callables and types that modules of these packages import and so expose under "
    "their own name: a pickle importing them from there gets the denied object"
)
STATE_ABOUT = (
    "Classes whose load executes a value of their state; the scanner checks these state keys "
    "in every BUILD"
)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(
    scopes: list[tuple[Scope, Admitted]],
    reexports: dict[str, tuple[str, str, str]],
    versions: dict[str, str],
) -> str:
    """The TOML text."""
    out = [HEADER]
    out.append("# Library versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    out.append("")
    for scope, admitted in scopes:
        out.append(f"[{scope.table}]")
        out.append(f"about = {_quote(scope.about)}")
        out.append("")
        out.append(f"[{scope.table}.entries]")
        out.extend(f"{_quote(k)} = {_quote(v)}" for k, v in sorted(admitted.safe.items()))
        out.append("")
        if admitted.state_checked:
            groups: dict[tuple[str, ...], dict[str, str]] = {}
            why: dict[tuple[str, ...], str] = {}
            for key, (reason, keys) in admitted.state_checked.items():
                groups.setdefault(keys, {})[key] = "state checked: " + ", ".join(keys)
                why[keys] = reason
            for index, (keys, entries) in enumerate(sorted(groups.items())):
                table = f"{scope.table}-state-checked" + (f"-{index}" if index else "")
                out.append(f"[{table}]")
                out.append(f"about = {_quote(STATE_ABOUT + ': ' + why[keys])}")
                out.append("state-keys = [" + ", ".join(_quote(k) for k in keys) + "]")
                out.append("")
                out.append(f"[{table}.entries]")
                out.extend(f"{_quote(k)} = {_quote(v)}" for k, v in sorted(entries.items()))
                out.append("")
    out.append("[generated-reexports]")
    out.append(f"about = {_quote(REEXPORTS_ABOUT)}")
    out.append('category = "code-execution"')
    out.append('severity = "critical"')
    out.append("")
    out.append("[generated-reexports.entries]")
    for key, (reason, severity, category) in sorted(reexports.items()):
        out.append(
            f"{_quote(key)} = {{ reason = {_quote(reason)}, severity = {_quote(severity)}, "
            f"category = {_quote(category)} }}"
        )
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Regenerate the TOML (and print the refusals with ``--report``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="print refused names and why")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    walker = load_paths.Walker()
    evidence = _evidence()
    results = []
    reexports: dict[str, tuple[str, str, str]] = {}
    lists = callables.hand_written_lists()
    policy = CallablePolicy(lists)
    for scope in SCOPES:
        admitted = generate(scope, walker, evidence)
        for table in (admitted.safe, admitted.state_checked):
            for key in [k for k in table if _listed(lists, k)]:
                del table[key]
        results.append((scope, admitted))
        reexports.update(
            (k, v) for k, v in denied_reexports(scope, policy).items() if not _listed(lists, k)
        )
        print(
            f"{scope.table}: {len(admitted.safe)} safe, {len(admitted.state_checked)} "
            f"state-checked, {len(admitted.refused)} refused",
            file=sys.stderr,
        )
        if args.report:
            for key, why in sorted(admitted.refused.items()):
                print(f"  refused {key}: {why}", file=sys.stderr)
    print(f"re-exports of denied callables: {len(reexports)}", file=sys.stderr)
    versions = {}
    for lib in ("sklearn", "scipy", "pandas", "torch", "numpy"):
        with contextlib.suppress(ImportError):
            versions[lib] = importlib.import_module(lib).__version__
    text = render(results, reexports, versions)
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
