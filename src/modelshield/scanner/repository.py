"""Model repositories: which files of a scanned directory a loader would execute.

The engine scans the files of a directory one by one; then, for each directory named as an
input, it hands their results to :func:`scan_repository`, which reads the directory as the
loaders that open it would:

* **Hugging Face** (``config.json``, ``tokenizer_config.json``, the processor configs,
  ``model_index.json``, ``modules.json``): the modules that ``trust_remote_code`` imports
  through ``auto_map`` and ``custom_pipelines``, diffusers custom components,
  sentence-transformers custom modules, and the modules they import relatively
  (``REPO-REMOTE-CODE``); references to code in another repository or missing from this one
  (``REPO-EXTERNAL-CODE``); ``*_implementation`` keys that load kernels from a hub
  (``REPO-HUB-KERNEL``).
* **MLflow** (``MLmodel``): ``loader_module``, ``code`` (``code_paths``), ``python_model`` and
  the pickles flavors unpickle (``MLFLOW-LOADER-CODE``, ``REPO-EXTERNAL-CODE``).
* **Conventions** of hubs and servers: ``hubconf.py`` (``torch.hub``), ``handler.py``
  (Inference Endpoints), ``code/inference.py`` (SageMaker), a TorchServe
  ``MAR-INF/MANIFEST.json`` (``REPO-LOADER-CODE``).

What a Python file reaches for is taken from its own result (``python_reaches`` in its
metadata, written by the Python reader) and the file is only parsed here when its scan did
not read it as Python. Findings go on the result of the file they are about. Every file then
gets a role, executable in effect, code, inert data or not analysed
(:class:`~modelshield.core.findings.Repository`), which reports show as the directory's
summary. Configurations are read with the standard library's JSON reader and PyYAML's safe
loader (what transformers and MLflow use), bounded by ``limits.max_manifest_bytes``; nothing
is imported or run.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import stat
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from msgspec.structs import replace

from modelshield.core.caps import FindingCap
from modelshield.core.findings import (
    FileResult,
    Finding,
    Gap,
    Location,
    Repository,
    RepositoryFile,
    Role,
    Severity,
)
from modelshield.core.policy import Policy
from modelshield.core.rules import Rule, rule_is_incomplete
from modelshield.scanner.callables import CallablePolicy
from modelshield.scanner.context import MAX_FINDINGS_PER_FILE, MAX_FINDINGS_PER_RULE
from modelshield.scanner.pysource import SourceFacts, analyse_source, decode_reaches
from modelshield.scanner.rules import (
    MLFLOW_LOADER_CODE,
    PYTHON_DANGEROUS_CALL,
    REPO_EXTERNAL_CODE,
    REPO_HUB_KERNEL,
    REPO_LOADER_CODE,
    REPO_NOT_ANALYSED,
    REPO_REMOTE_CODE,
)

#: Loader entries followed per configuration file (a hostile ``auto_map`` can hold millions).
MAX_ENTRIES = 256
#: Python files followed through relative and local imports, per repository.
MAX_FOLLOWED = 1000
#: Values of a configuration walked for ``*_implementation`` keys.
MAX_CONFIG_VALUES = 200_000

#: Configuration files whose ``auto_map`` transformers reads (and any other ``*config.json``).
_HF_CONFIGS = ("config.json", "tokenizer_config.json")
#: Keys that make a ``config.json`` a transformers model configuration.
_HF_CONFIG_KEYS = frozenset({"model_type", "architectures", "auto_map"})
#: A key that selects an implementation (attention, experts...) and a value naming a repository.
_IMPLEMENTATION_KEY = re.compile(r"^_?[a-z_]*implementation(?:_internal)?$")
_HUB_REFERENCE = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
#: Libraries whose classes diffusers and sentence-transformers load without remote code.
_DIFFUSERS_LIBRARIES = frozenset({"diffusers", "transformers", "onnxruntime", "flax"})
_ST_PREFIX = "sentence_transformers."
#: Module-naming keys of MLflow flavors, and the prefixes of the modules MLflow writes there.
_MLFLOW_MODULE_KEYS = ("loader_module", "pickle_module_name", "keras_module")
_MLFLOW_OWN = ("mlflow.", "pickle", "cloudpickle", "keras", "tensorflow.keras", "tf_keras")
#: Keys of MLflow flavors that name a pickled model file or folder.
_MLFLOW_PICKLES = ("pickled_model", "model_path", "data", "model_data", "python_model")
#: Top-level modules that a ``code/`` module must not shadow besides the standard library:
#: what MLflow and the flavors import while loading.
_SHADOWED = frozenset(
    {"mlflow", "cloudpickle", "numpy", "pandas", "sklearn", "torch", "yaml", "joblib", "scipy"}
)
#: Formats whose loaders run the file's pickle (or TorchScript) code.
_PICKLE_FORMATS = frozenset(
    {"pickle", "pytorch-legacy", "pytorch-zip", "numpy-object", "joblib-zfile", "torchscript"}
)
#: Containers that are executable in effect when a pickle is inside.
_CONTAINERS = frozenset(
    {"zip", "tar", "7z", "gzip", "bzip2", "xz", "lzma", "zlib", "lz4", "zstd", "rar"}
)
#: Rules of the findings that say a loader runs a file.
_LINK_RULES = frozenset({REPO_REMOTE_CODE.id, REPO_LOADER_CODE.id, MLFLOW_LOADER_CODE.id})
#: Findings that say a file carries code its loader runs.
_CODE_RULES = frozenset({"KERAS-LAMBDA", "KERAS-UNSAFE-IMPORT", "TORCHSCRIPT-SUSPICIOUS-CODE"})


class _Link:
    """One reason a loader runs a Python file."""

    __slots__ = ("config", "key", "loader", "rule")

    def __init__(self, rule: Rule, loader: str, config: str, key: str) -> None:
        self.rule = rule
        self.loader = loader
        self.config = config
        self.key = key


class _Repo:
    """The state of one repository pass."""

    def __init__(
        self, root: str, results: Sequence[FileResult], policy: Policy, callables: CallablePolicy
    ) -> None:
        self.root = root
        self.results = list(results)
        self.policy = policy
        self.callables = callables
        self.index: dict[str, int] = {}
        for i, result in enumerate(self.results):
            rel = _relative(root, result.path)
            if rel is not None:
                self.index[rel] = i
        self.added: dict[int, FindingCap] = {}
        self.links: dict[str, list[_Link]] = {}
        self.roles: dict[str, str] = {}
        self.layouts: list[str] = []
        self.facts: dict[str, SourceFacts | None] = {}
        self.files = sorted(self.index)
        self.dirs: dict[str, list[str]] = {}
        for rel in self.files:
            self.dirs.setdefault(posixpath.dirname(rel), []).append(posixpath.basename(rel))

    # ---- reading ----------------------------------------------------------------------------

    def path(self, rel: str) -> str:
        return self.results[self.index[rel]].path

    def location(self, rel: str) -> Location:
        return Location(self.path(rel))

    def has(self, rel: str) -> bool:
        return rel in self.index

    def read(self, rel: str, limit_name: str, what: str) -> bytes | None:
        """The bytes of a regular file of the repository, up to the limit ``limit_name``, or
        None (a gap is reported). Opened without blocking: a FIFO named ``config.json`` must
        not hang the scan."""
        limit: int = getattr(self.policy.limits, limit_name)
        try:
            fd = os.open(self.path(rel), os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_BINARY", 0))
            with open(fd, "rb", closefd=True) as fh:  # noqa: PTH123 - an fd, not a path
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    raise OSError("not a regular file")
                data = fh.read(limit + 1)
        except OSError as e:
            self.gap(rel, f"The {what} could not be read ({e.strerror or e}).")
            return None
        if len(data) > limit:
            self.gap(
                rel,
                f"The {what} is larger than limits.{limit_name} ({limit} bytes); which code it "
                "makes a loader run was not checked.",
                limit=limit_name,
            )
            return None
        return data

    def json(self, rel: str) -> Any:
        """A JSON configuration as its loader parses it, or None (unreadable or not JSON:
        the loader fails on it too)."""
        data = self.read(rel, "max_manifest_bytes", "configuration file")
        if data is None:
            return None
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            return None

    # ---- reporting --------------------------------------------------------------------------

    def add(self, rel: str, finding: Finding) -> None:
        """Add a finding to a file's result, capped per rule and file as the scan caps them."""
        i = self.index[rel]
        cap = self.added.get(i)
        if cap is None:
            cap = self.added[i] = FindingCap(MAX_FINDINGS_PER_RULE, MAX_FINDINGS_PER_FILE, "file")
        cap.add(finding)

    def gap(self, rel: str, message: str, limit: str = "") -> None:
        evidence = {"limit": limit} if limit else {}
        self.add(rel, REPO_NOT_ANALYSED.finding(self.location(rel), message, evidence=evidence))

    def link(self, rel: str, link: _Link) -> None:
        self.links.setdefault(rel, []).append(link)

    def external(self, config: str, key: str, target: str, message: str) -> None:
        self.add(
            config,
            REPO_EXTERNAL_CODE.finding(
                self.location(config),
                message,
                evidence={"config": config, "key": key, "code": target},
            ),
        )

    # ---- Python files -------------------------------------------------------------------------

    def source_facts(self, rel: str) -> SourceFacts | None:
        """What a Python file reaches for: from its scan's metadata when it was read as
        Python, else parsed here. None (with a gap) when it cannot be parsed."""
        if rel in self.facts:
            return self.facts[rel]
        result = self.results[self.index[rel]]
        facts: SourceFacts | None
        if result.format == "python":
            facts = SourceFacts(
                reaches=decode_reaches(result.metadata.get("python_reaches", "")),
                imports=_split(result.metadata.get("python_imports", "")),
                relative_imports=tuple(
                    (len(m) - len(m.lstrip(".")), m.lstrip("."))
                    for m in _split(result.metadata.get("python_relative_imports", ""))
                ),
            )
        else:
            data = self.read(rel, "max_source_bytes", "Python file")
            facts = None
            if data is not None:
                facts = analyse_source(data, self.callables, filename=rel)
                if facts.problem is not None:
                    self.gap(
                        rel,
                        f"A loader imports this file, but it could not be parsed "
                        f"({facts.problem}); what it does was not checked.",
                    )
                    facts = None
        self.facts[rel] = facts
        return facts

    def follow(self, start: str, *, local_absolute: bool) -> Iterator[tuple[str, str]]:
        """The Python files that importing ``start`` imports from the repository: relative
        imports (as transformers copies them), and with ``local_absolute`` absolute imports
        of modules found beside it (loaders that put the folder on ``sys.path``)."""
        queue = [start]
        seen = {start}
        while queue and len(seen) < MAX_FOLLOWED:
            rel = queue.pop(0)
            facts = self.source_facts(rel)
            if facts is None:
                continue
            here = posixpath.dirname(rel)
            targets = [(here, level, name) for level, name in facts.relative_imports]
            if local_absolute:
                targets += [(here, 1, name) for name in facts.imports]
            for base, level, name in targets:
                for _ in range(level - 1):
                    base = posixpath.dirname(base)
                found = self.module_file(base, name)
                if found is not None and found not in seen:
                    seen.add(found)
                    queue.append(found)
                    yield found, rel

    def module_file(self, base: str, dotted: str) -> str | None:
        """The file of module ``dotted`` under folder ``base`` (``a.b``: ``a/b.py`` or
        ``a/b/__init__.py``), if the repository holds it."""
        if not dotted or not all(part.isidentifier() for part in dotted.split(".")):
            return None
        stem = posixpath.join(base, *dotted.split("."))
        for candidate in (stem + ".py", posixpath.join(stem, "__init__.py")):
            if self.has(candidate):
                return candidate
        return None


def scan_repository(
    root: str, results: Sequence[FileResult], policy: Policy, callables: CallablePolicy
) -> tuple[list[FileResult], Repository]:
    """Read the directory ``root`` as its loaders would; return its results with the
    repository findings added, and the directory's summary."""
    repo = _Repo(root, results, policy, callables)
    for folder, names in sorted(repo.dirs.items()):
        _huggingface(repo, folder, names)
        _mlflow(repo, folder, names)
        _conventions(repo, folder, names)
    _report_links(repo)
    files = tuple(_role(repo, rel) for rel in repo.files)
    out = list(repo.results)
    for i, cap in repo.added.items():
        out[i] = _with_findings(out[i], cap.findings())
    return out, Repository(path=root, layouts=tuple(dict.fromkeys(repo.layouts)), files=files)


# ---- Hugging Face -----------------------------------------------------------------------------


def _huggingface(repo: _Repo, folder: str, names: list[str]) -> None:
    configs = [n for n in names if n in _HF_CONFIGS or n.endswith(("_config.json", "-config.json"))]
    weights = any(
        n.endswith(".safetensors") or n in ("pytorch_model.bin", "tf_model.h5") for n in names
    )
    found = False
    for name in sorted(configs):
        rel = posixpath.join(folder, name)
        document = repo.json(rel)
        if not isinstance(document, dict):
            continue
        if name == "config.json" and _HF_CONFIG_KEYS & document.keys():
            found = True
        found |= name == "tokenizer_config.json"
        _auto_map(repo, folder, rel, document)
        _hub_kernels(repo, rel, document)
    if "model_index.json" in names:
        found = True
        _diffusers(repo, folder, posixpath.join(folder, "model_index.json"))
    if "modules.json" in names:
        found |= _sentence_transformers(repo, folder, posixpath.join(folder, "modules.json"))
    if found or weights:
        repo.layouts.append("huggingface")


def _auto_map(repo: _Repo, folder: str, rel: str, document: Mapping[str, Any]) -> None:
    entries: list[tuple[str, str]] = []
    auto_map = document.get("auto_map")
    if isinstance(auto_map, Mapping):
        for key, value in auto_map.items():
            refs = value if isinstance(value, list) else [value]
            entries += [(f"auto_map.{key}", ref) for ref in refs if isinstance(ref, str)]
    pipelines = document.get("custom_pipelines")
    if isinstance(pipelines, Mapping):
        for task, spec in pipelines.items():
            if isinstance(spec, Mapping) and isinstance(spec.get("impl"), str):
                entries.append((f"custom_pipelines.{task}.impl", spec["impl"]))
    if len(entries) > MAX_ENTRIES:
        repo.gap(
            rel,
            f"The configuration names {len(entries)} classes to import; only the "
            f"first {MAX_ENTRIES} were followed.",
        )
        entries = entries[:MAX_ENTRIES]
    for key, ref in entries:
        _class_reference(repo, folder, rel, key, ref, "trust_remote_code (transformers)")


def _class_reference(
    repo: _Repo, folder: str, config: str, key: str, ref: str, loader: str
) -> None:
    """``module.Class`` or ``org/repo--module.Class`` as transformers resolves it."""
    if "--" in ref:
        other, _, rest = ref.partition("--")
        repo.external(
            config,
            key,
            ref,
            f"{config} key {key} makes {loader} fetch {rest.rpartition('.')[0]}.py from the "
            f"repository {other!r} and run it at load: code this scan did not see, from "
            "another repository, unpinned. Scan that repository too, or vendor the code.",
        )
        return
    module = ref.rpartition(".")[0]
    found = repo.module_file(folder, module)
    if found is None:
        repo.external(
            config,
            key,
            ref,
            f"{config} key {key} names the module {module!r}, which this directory does not "
            f"hold: {loader} fetches it from the hub repository at load time, so the code "
            "that runs was not checked.",
        )
        return
    repo.link(found, _Link(REPO_REMOTE_CODE, loader, config, key))


def _hub_kernels(repo: _Repo, rel: str, document: Any) -> None:
    stack: list[tuple[Any, str]] = [(document, "")]
    walked = 0
    while stack and walked < MAX_CONFIG_VALUES:
        value, path = stack.pop()
        walked += 1
        if isinstance(value, Mapping):
            for key, inner in value.items():
                where = f"{path}.{key}" if path else str(key)
                if (
                    isinstance(inner, str)
                    and _IMPLEMENTATION_KEY.match(str(key))
                    and _HUB_REFERENCE.search(inner)
                ):
                    repo.add(
                        rel,
                        REPO_HUB_KERNEL.finding(
                            repo.location(rel),
                            f"{rel} key {where} is {inner!r}: transformers then downloads "
                            "kernel code from that hub repository and loads it into the "
                            "process at every load of the model.",
                            evidence={"key": where, "value": inner[:200]},
                        ),
                    )
                elif isinstance(inner, Mapping | list):
                    stack.append((inner, where))
        elif isinstance(value, list):
            stack.extend((inner, f"{path}[{i}]") for i, inner in enumerate(value))


def _diffusers(repo: _Repo, folder: str, rel: str) -> None:
    document = repo.json(rel)
    if not isinstance(document, Mapping):
        return
    loader = "trust_remote_code (diffusers)"
    for key, value in list(document.items())[:MAX_ENTRIES]:
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)):
            continue
        library = value[0]
        if library in _DIFFUSERS_LIBRARIES or library.startswith(("diffusers.", "transformers.")):
            continue
        where = f"{key} = {value!r}"
        found = repo.module_file(posixpath.join(folder, key), library) or repo.module_file(
            folder, library
        )
        if found is None:
            repo.external(
                rel,
                str(key),
                library,
                f"{rel} entry {where} loads a component from the module {library!r}, which "
                "this directory does not hold: diffusers imports it from the hub or the "
                "environment at load time.",
            )
        else:
            repo.link(found, _Link(REPO_REMOTE_CODE, loader, rel, str(key)))


def _sentence_transformers(repo: _Repo, folder: str, rel: str) -> bool:
    document = repo.json(rel)
    if not isinstance(document, list):
        return False
    loader = "trust_remote_code (sentence-transformers)"
    for i, module in enumerate(document[:MAX_ENTRIES]):
        if not isinstance(module, Mapping) or not isinstance(module.get("type"), str):
            continue
        kind = module["type"]
        if kind.startswith(_ST_PREFIX):
            continue
        sub = module.get("path") if isinstance(module.get("path"), str) else ""
        name = kind.rpartition(".")[0]
        found = repo.module_file(folder, name) or repo.module_file(
            posixpath.join(folder, str(sub)), name
        )
        key = f"[{i}].type"
        if found is None:
            repo.external(
                rel,
                key,
                kind,
                f"{rel} entry {key} is {kind!r}: sentence-transformers imports that class "
                "from the hub or the environment at load time; the code was not checked.",
            )
        else:
            repo.link(found, _Link(REPO_REMOTE_CODE, loader, rel, key))
    return True


# ---- MLflow -------------------------------------------------------------------------------------


def _mlflow(repo: _Repo, folder: str, names: list[str]) -> None:
    if "MLmodel" not in names:
        return
    rel = posixpath.join(folder, "MLmodel")
    repo.layouts.append("mlflow")
    data = repo.read(rel, "max_manifest_bytes", "MLmodel file")
    if data is None:
        return
    import yaml

    try:
        loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        document = yaml.load(data, Loader=loader)
    except (yaml.YAMLError, RecursionError, ValueError):
        return  # MLflow's safe_load fails on it too: the model does not load
    flavors = document.get("flavors") if isinstance(document, Mapping) else None
    if not isinstance(flavors, Mapping):
        return
    confs = [(f, c) for f, c in list(flavors.items())[:MAX_ENTRIES] if isinstance(c, Mapping)]
    code_dirs: dict[str, str] = {}
    for flavor, conf in confs:
        code = conf.get("code")
        if isinstance(code, str) and code:
            code_dirs.setdefault(_join(folder, code), f"flavors.{flavor}.code")
    for flavor, conf in confs:
        for key in _MLFLOW_MODULE_KEYS:
            module = conf.get(key)
            if isinstance(module, str) and not module.startswith(_MLFLOW_OWN):
                _mlflow_module(repo, folder, rel, f"flavors.{flavor}.{key}", module, code_dirs)
        for key in _MLFLOW_PICKLES:
            target = conf.get(key)
            if isinstance(target, str) and target:
                _mlflow_file(repo, rel, f"flavors.{flavor}.{key}", _join(folder, target), flavor)
    for code_dir, key in sorted(code_dirs.items()):
        _mlflow_code(repo, rel, code_dir, key)


def _mlflow_module(
    repo: _Repo, folder: str, rel: str, key: str, module: str, code_dirs: Mapping[str, str]
) -> None:
    found = None
    for code_dir in sorted(code_dirs) or [_join(folder, "code")]:
        found = found or repo.module_file(code_dir, module)
    if found is None:
        repo.external(
            rel,
            key,
            module,
            f"{rel} key {key} makes MLflow import the module {module!r}, which is not one of "
            "MLflow's own and which the model's code folder does not hold: whatever is "
            "installed under that name runs at load.",
        )
        return
    repo.link(found, _Link(MLFLOW_LOADER_CODE, "MLflow", rel, key))


def _mlflow_file(repo: _Repo, rel: str, key: str, target: str, flavor: str) -> None:
    files = [target] if repo.has(target) else [f for f in repo.files if f.startswith(target + "/")]
    for found in files[:MAX_ENTRIES]:
        if found.endswith(".py"):  # python_model from code (models-from-code)
            repo.link(found, _Link(MLFLOW_LOADER_CODE, f"MLflow's {flavor} flavor", rel, key))
            continue
        result = repo.results[repo.index[found]]
        if result.format not in _PICKLE_FORMATS and "pickle" not in result.formats_seen:
            continue
        repo.roles.setdefault(found, f"unpickled by MLflow's {flavor} flavor ({rel} {key})")
        if key.endswith("python_model"):
            repo.link(found, _Link(MLFLOW_LOADER_CODE, f"MLflow's {flavor} flavor", rel, key))


def _mlflow_code(repo: _Repo, rel: str, code_dir: str, key: str) -> None:
    """Every Python file of ``code`` is on ``sys.path`` ahead of everything at load time."""
    for found in [f for f in repo.files if f.startswith(code_dir + "/") and f.endswith(".py")][
        :MAX_FOLLOWED
    ]:
        repo.link(found, _Link(MLFLOW_LOADER_CODE, "MLflow (code_paths on sys.path)", rel, key))


# ---- conventions of hubs and servers -----------------------------------------------------------


def _conventions(repo: _Repo, folder: str, names: list[str]) -> None:
    if "hubconf.py" in names:
        repo.layouts.append("torch-hub")
        hubconf = posixpath.join(folder, "hubconf.py")
        repo.link(hubconf, _Link(REPO_LOADER_CODE, "torch.hub.load", hubconf, "hubconf.py"))
    model_files = [n for n in names if not n.endswith(".py")]
    if "handler.py" in names and model_files:
        repo.layouts.append("inference-endpoint")
        handler = posixpath.join(folder, "handler.py")
        repo.link(
            handler, _Link(REPO_LOADER_CODE, "Inference Endpoints (custom handler)", handler, "")
        )
    inference = posixpath.join(folder, "code", "inference.py")
    if repo.has(inference):
        repo.layouts.append("sagemaker")
        repo.link(inference, _Link(REPO_LOADER_CODE, "SageMaker (model archive)", inference, ""))
    if posixpath.basename(folder) == "MAR-INF" and "MANIFEST.json" in names:
        _torchserve(repo, posixpath.dirname(folder), posixpath.join(folder, "MANIFEST.json"))


def _torchserve(repo: _Repo, folder: str, rel: str) -> None:
    repo.layouts.append("torchserve")
    document = repo.json(rel)
    model = document.get("model") if isinstance(document, Mapping) else None
    if not isinstance(model, Mapping):
        return
    for key in ("handler", "modelFile"):
        value = model.get(key)
        if not isinstance(value, str) or not value:
            continue
        name = value.split(":")[0]
        candidate = _join(folder, name if name.endswith(".py") else name + ".py")
        if repo.has(candidate):
            repo.link(candidate, _Link(REPO_LOADER_CODE, "TorchServe", rel, f"model.{key}"))


# ---- findings and roles -----------------------------------------------------------------------


def _report_links(repo: _Repo) -> None:
    """One finding per linked Python file and rule, and the same for what it imports."""
    pending = list(repo.links.items())
    for rel, links in pending:
        if not rel.endswith(".py"):
            continue
        absolute = any(link.rule is not REPO_REMOTE_CODE for link in links)
        for found, importer in repo.follow(rel, local_absolute=absolute):
            if found not in repo.links:
                first = links[0]
                via = _Link(
                    first.rule, f"{first.loader}, imported by {importer}", first.config, first.key
                )
                repo.links[found] = [via]
    for rel, links in repo.links.items():
        facts = repo.source_facts(rel) if rel.endswith(".py") else None
        for rule in dict.fromkeys(link.rule for link in links):
            mine = [link for link in links if link.rule is rule]
            _linked_finding(repo, rel, rule, mine, facts)


def _linked_finding(
    repo: _Repo, rel: str, rule: Rule, links: list[_Link], facts: SourceFacts | None
) -> None:
    how = "; ".join(
        f"{link.loader} via {link.config}" + (f" {link.key}" if link.key else "")
        for link in links[:5]
    )
    evidence = {
        "loader": links[0].loader,
        "config": links[0].config,
        "key": links[0].key,
    }
    severity = Severity.LOW
    notes: list[str] = []
    result = repo.results[repo.index[rel]]
    if facts is not None and facts.reaches:
        severity = max(severity, *(r.severity for r in facts.reaches))
        evidence["calls"] = facts.summary()
        notes.append(f"it uses {facts.summary()}")
    stem = posixpath.basename(rel).removesuffix(".py")
    if rule is MLFLOW_LOADER_CODE and rel.endswith(".py") and _shadows(stem):
        severity = Severity.HIGH
        evidence["shadows"] = stem
        notes.append(
            f"it is named like the module {stem!r}, which MLflow's code path makes it replace "
            "for the whole process"
        )
    if not rel.endswith(".py"):
        worst = result.max_severity
        if worst is not None and worst >= Severity.HIGH:
            severity = Severity.HIGH
        notes.append("the code it carries is in its pickle; see the pickle findings on it")
    repo.roles.setdefault(rel, f"run by {how}")
    what = "Python code" if rel.endswith(".py") else "a pickled Python model"
    message = f"{how} runs this file ({what}) when the model is loaded"
    message += ": " + "; ".join(notes) + "." if notes else "."
    if severity == Severity.LOW:
        message += " It is code by design: read it before loading the model."
    repo.add(rel, rule.finding(repo.location(rel), message, severity=severity, evidence=evidence))


def _shadows(stem: str) -> bool:
    return stem in sys.stdlib_module_names or stem in _SHADOWED


def _role(repo: _Repo, rel: str) -> RepositoryFile:
    result = repo.results[repo.index[rel]]
    role: Role
    if rel in repo.roles:
        role, reason = "executable", repo.roles[rel]
    elif result.format in _PICKLE_FORMATS or (
        result.format in _CONTAINERS and "pickle" in result.formats_seen
    ):
        role = "executable"
        reason = (
            "torch.jit.load compiles and runs its TorchScript code"
            if result.format == "torchscript"
            else "loading it runs its pickle (its findings say what the pickle imports)"
        )
    elif any(f.rule_id in _CODE_RULES for f in result.findings):
        role, reason = "executable", "its loader runs code stored in it (see its findings)"
    elif result.format == "python-pth":
        role = "executable"
        reason = "Python's site module runs its import lines at start-up (in site-packages)"
    elif result.status != "complete" or result.format == "unknown":
        role, reason = "not-analysed", f"status {result.status}: see its gaps and errors"
    elif result.format == "python":
        role, reason = "code", "Python source that no loader configuration here runs"
    elif result.format == "executable":
        role, reason = "code", "a native program or script"
    else:
        role, reason = "inert", f"{result.format}: data its loaders read without running it"
    return RepositoryFile(path=result.path, role=role, reason=reason)


def _with_findings(result: FileResult, extra: list[Finding]) -> FileResult:
    """``result`` with the repository's findings (and the gaps of incomplete ones). A loader
    link finding carries the calls of the file, so it replaces the file's own
    ``PYTHON-DANGEROUS-CALL`` (which says the same at the severity of an unused script)."""
    gaps = [Gap(f.rule_id, f.location, f.message) for f in extra if rule_is_incomplete(f.rule_id)]
    kept = result.findings
    if any(f.rule_id in _LINK_RULES for f in extra):
        kept = tuple(f for f in kept if f.rule_id != PYTHON_DANGEROUS_CALL.id)
    return replace(result, findings=(*kept, *extra), gaps=(*result.gaps, *gaps))


# ---- helpers ------------------------------------------------------------------------------------


def _relative(root: str, path: str) -> str | None:
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return None
    rel = Path(rel).as_posix()
    return None if rel == ".." or rel.startswith("../") else rel


def _join(folder: str, name: str) -> str:
    return posixpath.normpath(posixpath.join(folder, name.replace("\\", "/")))


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())
