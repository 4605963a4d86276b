"""Keras model configs: every object they name, Lambda code, external models, paths and URLs.

A Keras model is rebuilt from a JSON config: ``config.json`` in a Keras 3 ``.keras`` zip, the
``model_config`` (and ``training_config``) attribute of an ``.h5`` file, and the per-layer
metadata of a TensorFlow SavedModel (``keras_metadata.pb``, or the object graph of older
SavedModels). Every dict with a ``class_name`` is an object the loader resolves and builds:
with a ``module`` it is imported from there (any module before Keras 3.9), without one it is
looked up among Keras built-ins and registered custom objects. This module walks the whole
config (iteratively: depth costs no recursion) and reports:

* ``Lambda`` layers and ``__lambda__`` objects (``KERAS-LAMBDA``): marshalled bytecode is
  decoded by :mod:`.bytecode` (never by :mod:`marshal`) and the names it uses are judged by the
  callable policy;
* names outside Keras' modelling objects (``KERAS-UNSAFE-IMPORT``), judged by the generated list
  in ``data/keras_objects.toml`` and then by the callable policy;
* custom objects the loading program must supply (``KERAS-CUSTOM-OBJECT``);
* ``TFSMLayer`` and ``TorchModuleWrapper`` (``KERAS-EXTERNAL-MODEL``), whose embedded
  ``torch.save`` archive is analysed by content;
* URLs and absolute or climbing paths among the values (``KERAS-FILE-REFERENCE``).

The zip handler calls :func:`scan_keras_member` for ``config.json`` and ``metadata.json`` at the
root of an archive laid out like a ``.keras`` file (:func:`is_keras_archive`); the HDF5 and
SavedModel handlers call :func:`analyse_config_text`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import sys
from collections.abc import Iterable
from typing import Any

from modelshield.core.findings import Location, Severity
from modelshield.scanner.callables import Tier
from modelshield.scanner.context import ScanContext
from modelshield.scanner.detect import sniff_strong
from modelshield.scanner.formats.bytecode import summarize
from modelshield.scanner.formats.hygiene import scan_member
from modelshield.scanner.rules import (
    KERAS_CONFIG_INVALID,
    KERAS_CUSTOM_OBJECT,
    KERAS_EXTERNAL_MODEL,
    KERAS_FILE_REFERENCE,
    KERAS_LAMBDA,
    KERAS_UNSAFE_IMPORT,
)

#: Files at the root of a ``.keras`` archive (``model.weights.npz`` in early Keras 3 releases).
KERAS_ARCHIVE_FILES = frozenset({"config.json", "metadata.json"})

_DATA_FILE = "keras_objects.toml"
_KERAS_PACKAGES = ("keras", "keras_hub", "keras_cv", "keras_nlp", "tf_keras")
#: Modules whose objects keras' serialisation library looks built-in functions up in.
_BUILTIN_FUNCTION_MODULES = (
    "activations",
    "constraints",
    "initializers",
    "losses",
    "metrics",
    "optimizers",
    "regularizers",
)
#: Keras APIs that load, save, download or switch safe mode off (Keras' own NON_MODELING_APIS
#: and their siblings): never needed to rebuild a model.
_KERAS_NON_MODELLING_NAMES = frozenset(
    {
        "get_file",
        "load_model",
        "model_from_json",
        "model_from_yaml",
        "model_from_config",
        "save_model",
        "load_weights",
        "save_weights",
        "enable_unsafe_deserialization",
        "load_img",
        "save_img",
        "image_dataset_from_directory",
        "text_dataset_from_directory",
        "audio_dataset_from_directory",
        "deserialize_keras_object",
        "serialize_keras_object",
        "register_keras_serializable",
        "func_load",
        "load_data",
        "clear_session",
        "TFSMLayer",
    }
)
_KERAS_NON_MODELLING_MODULES = (
    "keras.utils",
    "keras.saving",
    "keras.config",
    "keras.datasets",
    "keras.callbacks",
    "keras.export",
    "keras.preprocessing",
    "keras.src.utils",
    "keras.src.saving",
    "keras.src.legacy",
    "keras.src.export",
    "keras.src.datasets",
    "keras.src.callbacks",
    "keras.src.backend.config",
)
#: ``class_name`` values of plain data, not objects.
_DATA_CLASSES = frozenset(
    {
        "__keras_tensor__",
        "__tensor__",
        "__numpy__",
        "__bytes__",
        "__ellipsis__",
        "__slice__",
        "__tuple__",
        "__list__",
    }
)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{1,15}://")
_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:[\\/]")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
_SOURCE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_EVIDENCE = 300
_MAX_JUDGED = 48
_MIN_EMBEDDED_B64 = 64
_MAX_SOURCE = 65_536
_STDLIB = frozenset(sys.stdlib_module_names) | {"posix", "nt", "__builtins__"}


@functools.cache
def _allowed() -> tuple[frozenset[str], frozenset[str]]:
    """Exact ``module:name`` entries of Keras' modelling objects, and their bare names."""
    import tomllib

    from modelshield.scanner.callables import _data_bytes

    tables = tomllib.loads(_data_bytes(_DATA_FILE).decode("utf-8"))
    exact = frozenset(
        key
        for table in tables.values()
        if isinstance(table, dict)
        for key in table.get("entries", {})
    )
    return exact, frozenset(key.rpartition(":")[2] for key in exact)


def is_keras_archive(names: Iterable[str]) -> bool:
    """Whether zip member names are those of a Keras 3 ``.keras`` file."""
    return set(names) >= KERAS_ARCHIVE_FILES


def scan_keras_member(ctx: ScanContext, name: str, data: bytes, location: Location) -> None:
    """Analyse ``config.json`` or ``metadata.json`` of a ``.keras`` archive."""
    ctx.saw_format("keras-v3")
    if name == "config.json":
        analyse_config_text(ctx, data, location, source="config.json")
        return
    try:
        meta = json.loads(data[: ctx.limits.max_document_bytes])
    except (ValueError, RecursionError):
        return  # Keras only prints these facts; a broken metadata.json changes no load
    if isinstance(meta, dict):
        for key in ("keras_version", "date_saved"):
            value = meta.get(key)
            if isinstance(value, str):
                ctx.metadata[key] = value[:64]


def analyse_config_text(
    ctx: ScanContext, raw: bytes | bytearray | memoryview | str, location: Location, *, source: str
) -> None:
    """Parse a Keras JSON config (bounded) and analyse it; unparsable text is reported."""
    size = len(raw)
    if size > ctx.limits.max_document_bytes:
        _invalid(ctx, location, source, f"it has {size} bytes, above limits.max_document_bytes")
        return
    # Keras hands the member's bytes to json.loads, which detects UTF-8, -16 and -32: so do we.
    text = raw if isinstance(raw, str) else bytes(raw)
    try:
        config = json.loads(text)
    except RecursionError:
        _invalid(ctx, location, source, "it nests deeper than the JSON reader follows")
        return
    except ValueError as e:
        _invalid(ctx, location, source, f"it is not JSON ({e})")
        return
    analyse_config(ctx, config, location, source=source)


def _invalid(ctx: ScanContext, location: Location, source: str, why: str) -> None:
    ctx.add(
        KERAS_CONFIG_INVALID.finding(
            location,
            f"The Keras config ({source}) was not analysed: {why}.",
            evidence={"source": source, "problem": why},
        )
    )


def analyse_config(ctx: ScanContext, config: object, location: Location, *, source: str) -> None:
    """Walk a parsed Keras config and report what loading it would run or reach."""
    _Walker(ctx, location, source).run(config)


class _Walker:
    def __init__(self, ctx: ScanContext, location: Location, source: str) -> None:
        self.ctx = ctx
        self.location = location
        self.source = source

    def run(self, root: object) -> None:
        stack: list[tuple[object, str]] = [(root, "$")]
        visited = 0
        while stack:
            value, path = stack.pop()
            visited += 1
            if not visited % 10_000:
                self.ctx.check_deadline(self.location)
            if isinstance(value, dict):
                if isinstance(value.get("class_name"), str):
                    self._object(value, path)
                stack.extend((v, f"{path}.{k}") for k, v in reversed(value.items()))
            elif isinstance(value, list):
                stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(value))))
            elif isinstance(value, str):
                self._string(value, path)

    # ---- objects -------------------------------------------------------------------------

    def _object(self, obj: dict[str, Any], path: str) -> None:
        cls: str = obj["class_name"]
        module = obj.get("module")
        config = obj.get("config")
        if cls == "__lambda__":
            inner = config if isinstance(config, dict) else {}
            self._lambda(inner.get("code", inner.get("value")), path, "a __lambda__ object")
            return
        if cls in _DATA_CLASSES:
            return
        if cls == "__typespec__":
            spec = obj.get("spec_name")
            self._judge(module, spec if isinstance(spec, str) else cls, obj, path)
            return
        if cls == "function":
            if isinstance(config, str):
                self._judge(module, config, obj, path, function=True)
            return
        if cls == "Lambda" and isinstance(config, dict):
            self._lambda_layer(config, path)
        elif cls == "TFSMLayer":
            self._external(obj, path, "TFSMLayer")
        elif cls == "TorchModuleWrapper":
            self._external(obj, path, "TorchModuleWrapper")
        else:
            self._judge(module, cls, obj, path)

    def _judge(
        self,
        module: object,
        name: str,
        obj: dict[str, Any],
        path: str,
        *,
        function: bool = False,
    ) -> None:
        exact, bare = _allowed()
        registered = obj.get("registered_name")
        if not isinstance(module, str) or not module:
            if name in bare and not (isinstance(registered, str) and ">" in registered):
                return  # a Keras built-in looked up by name (legacy configs)
            self._custom(name, registered, path)
            return
        if module == "builtins" and function:
            # Keras looks these up among its built-in functions, then (before 3.9) imports
            # them from the builtins module itself.
            if any(f"keras.{m}:{name}" in exact for m in _BUILTIN_FUNCTION_MODULES):
                return
            if self.ctx.callables.classify(module, name).tier is not Tier.DANGEROUS:
                self._custom(name, registered, path)
                return
        if f"{module}:{name}" in exact:
            return
        in_keras = module.split(".", 1)[0] in _KERAS_PACKAGES
        verdict = self.ctx.callables.classify(module, name)
        if verdict.tier is Tier.SAFE:
            return
        target = f"{module}.{name}"
        if verdict.tier is Tier.DANGEROUS:
            severity = max(verdict.severity or Severity.HIGH, Severity.HIGH)
            why = f"it is a dangerous callable ({verdict.category}: {verdict.reason})"
        elif in_keras and (
            name in _KERAS_NON_MODELLING_NAMES
            or module == "keras.config"
            or module.startswith(tuple(f"{m}." for m in _KERAS_NON_MODELLING_MODULES))
            or module in _KERAS_NON_MODELLING_MODULES
        ):
            severity = Severity.HIGH
            why = "it is a Keras API that loads, saves or downloads, not a modelling object"
        elif in_keras:
            severity = Severity.MEDIUM
            why = "it is not one of Keras' known modelling objects"
        else:
            severity = Severity.MEDIUM
            why = "it lies outside Keras, and Keras before 3.9 imports any module a config names"
        self.ctx.add(
            KERAS_UNSAFE_IMPORT.finding(
                self.location,
                f"The Keras config ({self.source}) names {target} at {path}: {why}.",
                severity=severity,
                evidence={"source": self.source, "path": path, "callable": target},
            )
        )

    def _custom(self, name: str, registered: object, path: str) -> None:
        shown = registered if isinstance(registered, str) and registered else name
        self.ctx.add(
            KERAS_CUSTOM_OBJECT.finding(
                self.location,
                f"The Keras config ({self.source}) names the custom object {shown!r} at {path}; "
                "loading runs whatever the loading program registered under that name.",
                evidence={"source": self.source, "path": path, "object": shown[:_MAX_EVIDENCE]},
            )
        )

    def _external(self, obj: dict[str, Any], path: str, kind: str) -> None:
        config = obj.get("config")
        config = config if isinstance(config, dict) else {}
        evidence = {"source": self.source, "path": path, "layer": kind}
        if kind == "TFSMLayer":
            target = config.get("filepath")
            evidence["filepath"] = str(target)[:_MAX_EVIDENCE]
            message = (
                f"A TFSMLayer at {path} loads the TensorFlow SavedModel at {target!r} when the "
                "model is rebuilt, and runs its graph; that SavedModel is not in this file."
            )
        else:
            message = (
                f"A TorchModuleWrapper at {path} holds a torch.save archive that Keras reloads "
                "with torch.load (a pickle); it was analysed by content."
            )
            blob = config.get("module")
            if isinstance(blob, str):
                self._embedded(blob, f"{path}.config.module", always=True)
        self.ctx.add(KERAS_EXTERNAL_MODEL.finding(self.location, message, evidence=evidence))

    # ---- Lambda code ---------------------------------------------------------------------

    def _lambda_layer(self, config: dict[str, Any], path: str) -> None:
        found = False
        for key, type_key, module_key in (
            ("function", "function_type", "module"),
            ("output_shape", "output_shape_type", "output_shape_module"),
            ("mask", "mask_type", "mask_module"),
        ):
            value = config.get(key)
            kind = config.get(type_key)
            if kind == "function" and isinstance(value, str):
                module = config.get(module_key)
                self._judge(module, value, {}, f"{path}.config.{key}", function=True)
                found = found or key == "function"
            elif kind == "lambda" or (
                key == "function" and kind is None and isinstance(value, str | list)
            ):
                self._lambda(value, f"{path}.config.{key}", "a Lambda layer")
                found = True
            elif isinstance(value, dict) and value.get("class_name") == "__lambda__":
                found = True  # reported when the walk reaches the __lambda__ object
        if not found and not isinstance(config.get("function"), dict):
            self._lambda(config.get("function"), f"{path}.config.function", "a Lambda layer")

    def _lambda(self, payload: object, path: str, what: str) -> None:
        if isinstance(payload, dict) and payload.get("class_name") == "__tuple__":
            payload = payload.get("items")
        if isinstance(payload, list | tuple) and payload:
            payload = payload[0]
        code = payload if isinstance(payload, str) else ""
        raw = _b64(code)
        evidence = {"source": self.source, "path": path}
        if raw is not None and raw[:1] in (b"\xe3", b"c"):
            summary = summarize(raw)
            names, constants = summary.names, summary.constants
            form = "marshalled bytecode"
            if summary.layout:
                evidence["python"] = summary.layout
            if summary.problem:
                evidence["decode_problem"] = summary.problem
        else:
            names, constants = _source_names(code[:_MAX_SOURCE])
            form = "Python source" if code else "a function that could not be read"
        dangerous = self._dangerous(names, constants)
        evidence["names"] = ", ".join(names)[:_MAX_EVIDENCE]
        evidence["constants"] = ", ".join(repr(c) for c in constants[:20])[:_MAX_EVIDENCE]
        evidence["form"] = form
        if dangerous:
            evidence["dangerous"] = ", ".join(dangerous)
        detail = f"; it uses {', '.join(dangerous)}" if dangerous else ""
        self.ctx.add(
            KERAS_LAMBDA.finding(
                self.location,
                f"The Keras config ({self.source}) holds {what} at {path} whose function is "
                f"{form}, which Keras runs when the model is loaded without safe mode{detail}.",
                severity=Severity.CRITICAL if dangerous else None,
                evidence=evidence,
            )
        )

    def _dangerous(self, names: tuple[str, ...], constants: tuple[str, ...]) -> list[str]:
        """Callables the code can reach by the names and constants it uses: builtins it names,
        and names it takes from standard-library modules it names (``os`` and ``system``,
        ``__import__('subprocess')`` and ``call``, a constant ``'os.system'``)."""
        import builtins

        names = names[:_MAX_JUDGED]
        judged = [("builtins", n) for n in names if hasattr(builtins, n)]
        modules = [
            s
            for s in dict.fromkeys((*names, *constants))
            if _IDENT.match(s) and s.split(".")[0] in _STDLIB
        ][:_MAX_JUDGED]
        judged += [(m, n) for m in modules for n in names if m != n]
        judged += [
            (c.rpartition(".")[0], c.rpartition(".")[2])
            for c in constants[:_MAX_JUDGED]
            if "." in c and _IDENT.match(c) and c.split(".")[0] in _STDLIB
        ]
        found: dict[str, None] = {}
        for module, name in judged:
            if not _IDENT.match(name):
                continue
            verdict = self.ctx.callables.classify(module, name)
            if verdict.tier is Tier.DANGEROUS:
                found[f"{verdict.module}.{verdict.name}"] = None
        return list(found)

    # ---- strings -------------------------------------------------------------------------

    def _string(self, value: str, path: str) -> None:
        if len(value) >= _MIN_EMBEDDED_B64 and not path.endswith((".code", ".value", "[0]")):
            self._embedded(value, path)
        reason = _file_reference(value)
        if reason is None:
            return
        self.ctx.add(
            KERAS_FILE_REFERENCE.finding(
                self.location,
                f"The Keras config ({self.source}) refers to {value[:200]!r} at {path} "
                f"({reason}); rebuilding the model may read or fetch it.",
                evidence={"source": self.source, "path": path, "reference": value[:_MAX_EVIDENCE]},
            )
        )

    def _embedded(self, value: str, path: str, *, always: bool = False) -> None:
        """Analyse a base64 string that decodes to a pickle, an archive or other known data."""
        if len(value) > self.ctx.limits.max_embedded_scan_bytes * 2:
            return
        raw = _b64(value)
        if raw is None or not (always or sniff_strong(raw[:64]) is not None):
            return
        scan_member(self.ctx, raw, self.location.child(f"<base64 at {path[:200]}>"))


def _source_names(code: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Names (variables and attributes) and string constants of Python source, parsed with
    :mod:`ast` (which never runs it); words of unparsable source count as names."""
    import ast

    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return tuple(dict.fromkeys(_SOURCE_NAME.findall(code))), ()
    names: dict[str, None] = {}
    constants: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names[node.id] = None
        elif isinstance(node, ast.Attribute):
            names[node.attr] = None
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            constants[node.value] = None
    return tuple(names), tuple(constants)


def _b64(text: str) -> bytes | None:
    if not text:
        return None
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _file_reference(value: str) -> str | None:
    """Why a config string looks like a URL or a path outside the model, or None."""
    if len(value) < 3 or "\n" in value:
        return None
    if _URL.match(value):
        return "a URL"
    if value.startswith(("/", "\\\\")) and len(value) > 1 and " " not in value[:2]:
        return "an absolute path"
    if _WINDOWS_ABSOLUTE.match(value):
        return "an absolute Windows path"
    if value.startswith("~/"):
        return "a path in a home folder"
    if ".." in value.replace("\\", "/").split("/") and "/" in value.replace("\\", "/"):
        return "a path that climbs out of its folder"
    return None
