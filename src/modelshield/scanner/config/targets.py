"""Instantiation targets in a parsed YAML or JSON document.

Libraries that read configuration import and call the callables it names. This module walks a
parsed document (dicts, lists and strings; shared objects visited once) and finds every value
that such a library treats as an import path, with its schema:

``hydra``
    ``_target_`` in any mapping, at any depth (inside ``_args_``, lists, ``_partial_``
    factories): ``hydra.utils.instantiate`` (NeMo, detectron2 LazyConfig, uni2TS, FlexTok...).
``hydra-0``
    ``cls``, ``class`` or ``target`` beside ``params`` (Hydra 0.x, still accepted by NeMo).
``nemo``
    ``target`` at the root of a document (NeMo's ``from_config_dict`` imports it).
``jsonargparse``
    ``class_path`` (LightningCLI, jsonargparse), with ``init_args``.
``logging``
    ``class`` and ``()`` of the handlers, formatters and filters of a ``logging.config``
    dictConfig schema (a mapping with ``version: 1``), which Hydra applies from its own config;
    ``ext://`` values there are imported too (reported when denied).
``mmengine``
    ``type``: registries look the name up, then import it as a dotted path; only denied
    callables are reported, since dotted ``type`` values are usually registry scopes.

Each target string is resolved through OmegaConf interpolation (``${a.b}``, ``${.sibling}``,
``${..parent}``, string concatenation); a target built from an environment variable, a custom
resolver or a key the document lacks cannot be known and is reported as such. Lookup helpers
(``hydra.utils.get_method`` and its siblings, ``pydoc.locate``, ``importlib.import_module``,
``functools.partial``, ``hydra.utils.instantiate``) are judged by what their arguments name.
Every string holding a ``${resolver:...}`` call is checked for resolvers outside OmegaConf's and
Hydra's own. ``trust_remote_code`` set true beside a target is reported.
"""

from __future__ import annotations

import re
from typing import Any

from modelshield.core.findings import Location, Severity
from modelshield.scanner.callables import Tier
from modelshield.scanner.config.judge import Judgement, is_dotted, judge_dotted, judge_module
from modelshield.scanner.config.walk import Path, containers
from modelshield.scanner.config.walk import shown as _shown_path
from modelshield.scanner.context import ScanContext
from modelshield.scanner.rules import (
    CONFIG_RESOLVER,
    CONFIG_TARGET,
    CONFIG_TARGET_DYNAMIC,
    CONFIG_TRUST_REMOTE_CODE,
)

Positions = dict[object, tuple[int, int]]

#: Resolvers OmegaConf and Hydra register themselves (``env`` is OmegaConf 2.0's).
BUILTIN_RESOLVERS = frozenset(
    {
        "oc.env",
        "oc.select",
        "oc.create",
        "oc.decode",
        "oc.deprecated",
        "oc.dict.keys",
        "oc.dict.values",
        "env",
        "hydra",
        "now",
        "python_version",
    }
)
#: Resolver names that say they evaluate code (projects register ``eval`` for arithmetic).
_CODE_RESOLVER = re.compile(r"(?:^|[._])(?:eval|exec|python|py|code|lambda|compile|run|shell)$")
_RESOLVER_CALL = re.compile(r"\$\{\s*([A-Za-z_][\w.\-]*)\s*:")
_MAX_RESOLVE_DEPTH = 16
_MAX_EXPRESSION = 300
#: Keys whose value is a target in a Hydra 0.x mapping (beside ``params``).
_HYDRA0_KEYS = ("cls", "class", "target")
#: dictConfig sections whose entries may name a class or factory.
_LOGGING_SECTIONS = ("handlers", "formatters", "filters")
_TRUE = frozenset({"true", "True", "TRUE", "yes", "Yes", "on", "1"})

#: Lookup helpers: the callable's dotted name -> (keyword, position, what the argument names).
#: ``callable``: a dotted name the helper imports; ``module``: a module name; ``object``: an
#: object built elsewhere in the config (a nested target); ``config``: a config it instantiates.
HELPERS: dict[str, tuple[str, int, str]] = {
    "hydra.utils.get_method": ("path", 0, "callable"),
    "hydra.utils.get_class": ("path", 0, "callable"),
    "hydra.utils.get_object": ("path", 0, "callable"),
    "hydra.utils._locate": ("path", 0, "callable"),
    "hydra._internal.utils._locate": ("path", 0, "callable"),
    "hydra._internal.utils.get_method": ("path", 0, "callable"),
    "hydra._internal.utils.get_class": ("path", 0, "callable"),
    "pydoc.locate": ("path", 0, "callable"),
    "mmengine.utils.get_object_from_string": ("obj_name", 0, "callable"),
    "nemo.utils.model_utils.import_class_by_path": ("path", 0, "callable"),
    "importlib.import_module": ("name", 0, "module"),
    "builtins.__import__": ("name", 0, "module"),
    "functools.partial": ("func", 0, "object"),
    "hydra.utils.instantiate": ("config", 0, "config"),
    "hydra.utils.call": ("config", 0, "config"),
}
_SCHEMA_NAMES = {
    "hydra": "Hydra `_target_`",
    "hydra-0": "Hydra 0.x target",
    "nemo": "NeMo model `target`",
    "jsonargparse": "jsonargparse `class_path`",
    "logging": "logging dictConfig factory",
    "mmengine": "mmengine registry `type`",
}


class Dynamic:
    """A value the document does not determine, and why."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        """Say why the value cannot be known from the file."""
        self.why = why


def check_targets(
    ctx: ScanContext,
    root: object,
    location: Location,
    *,
    source: str,
    positions: Positions | None = None,
) -> None:
    """Report the instantiation targets of a parsed document (see the module docstring).

    ``source`` names the document in messages ("model_config.yaml", "the JSON document");
    ``positions`` maps containers and ``(container, key)`` pairs to YAML lines and columns.
    """
    _Targets(ctx, root, location, source, positions or {}).run()


class _Targets:
    def __init__(
        self,
        ctx: ScanContext,
        root: object,
        location: Location,
        source: str,
        positions: Positions,
    ) -> None:
        self.ctx = ctx
        self.root = root
        self.location = location
        self.source = source
        self.positions = positions
        self.resolvers_seen: set[str] = set()

    # ---- the walk ------------------------------------------------------------------------

    def run(self) -> None:
        for count, (value, path) in enumerate(containers(self.root, self._resolver_calls)):
            if not count % 4096:
                self.ctx.check_deadline(self.location)
            if isinstance(value, dict):
                self._mapping(value, path)

    def _mapping(self, mapping: dict[str, Any], path: Path) -> None:
        found = False
        if "_target_" in mapping:
            found = True
            self._target(mapping, "_target_", path, "hydra")
        if "class_path" in mapping:
            found = True
            self._target(mapping, "class_path", path, "jsonargparse")
        if "params" in mapping:
            for key in _HYDRA0_KEYS:
                if isinstance(mapping.get(key), str):
                    found = True
                    self._target(mapping, key, path, "hydra-0")
        root_target = mapping.get("target") if not path and "params" not in mapping else None
        if isinstance(root_target, str) and "." in root_target and is_dotted(root_target.strip()):
            found = True
            self._target(mapping, "target", path, "nemo")
        if str(mapping.get("version")) == "1" and any(s in mapping for s in _LOGGING_SECTIONS):
            self._logging(mapping, path)
        kind = mapping.get("type")
        if isinstance(kind, str) and "." in kind and is_dotted(kind):
            judgement = judge_dotted(self.ctx, kind)
            if judgement.tier is Tier.DANGEROUS:
                self._report(judgement, (*path, "type"), mapping, "type", "mmengine", kind)
        if found:
            self._remote_code(mapping, path)

    def _logging(self, config: dict[str, Any], path: Path) -> None:
        for section in _LOGGING_SECTIONS:
            entries = config.get(section)
            if not isinstance(entries, dict):
                continue
            for name, entry in entries.items():
                if not isinstance(entry, dict):
                    continue
                where = (*path, section, str(name))
                for key in ("class", "()"):
                    if isinstance(entry.get(key), str):
                        self._target(entry, key, where, "logging")
                for key, value in entry.items():
                    if isinstance(value, str) and value.startswith("ext://"):
                        self._external(entry, str(key), value, where)

    def _external(self, entry: dict[str, Any], key: str, value: str, where: Path) -> None:
        """``ext://module.name``: dictConfig imports it and passes the object as an argument
        (``stream: ext://sys.stdout``); reported when the policy denies it."""
        text = value[len("ext://") :].strip()
        if not is_dotted(text):
            return
        judgement = judge_dotted(self.ctx, text)
        if judgement.tier is Tier.DANGEROUS:
            self._report(judgement, (*where, key), entry, key, "logging", text, via="ext://")

    # ---- one target ----------------------------------------------------------------------

    def _target(self, mapping: dict[str, Any], key: str, path: Path, schema: str) -> None:
        raw = mapping[key]
        where = (*path, key)
        if not isinstance(raw, str):
            if raw is None or isinstance(raw, dict | list):
                self._dynamic(where, mapping, key, schema, repr(raw)[:80], "it is not text")
            return
        value = self.resolve(raw, path)
        if isinstance(value, Dynamic):
            self._dynamic(where, mapping, key, schema, raw, value.why)
            return
        text = value.strip()
        if not is_dotted(text):
            return  # no loader imports it (spaces, slashes, empty): it fails to load
        expression = raw if raw != value else None
        helper = HELPERS.get(_normal(text))
        if helper is not None and schema != "mmengine":
            self._helper(mapping, path, key, schema, text, helper)
            return
        judgement = judge_dotted(self.ctx, text)
        if judgement.tier is Tier.SAFE:
            return
        self._report(judgement, where, mapping, key, schema, text, expression=expression)

    def _helper(
        self,
        mapping: dict[str, Any],
        path: Path,
        key: str,
        schema: str,
        helper_name: str,
        spec: tuple[str, int, str],
    ) -> None:
        """Judge a lookup helper by what its argument names."""
        keyword, position, kind = spec
        argument, arg_path = self._argument(mapping, path, keyword, position)
        where = (*path, key)
        if kind == "config" or (kind == "object" and isinstance(argument, dict)):
            return  # a nested config: analysed where it stands
        if isinstance(argument, str):
            value = self.resolve(argument, path)
            if isinstance(value, Dynamic):
                self._dynamic(where, mapping, key, schema, argument, value.why, via=helper_name)
                return
            text = value.strip()
            if kind == "object" or not is_dotted(text):
                judgement = judge_dotted(self.ctx, helper_name)  # judged as itself
            elif kind == "module":
                judgement = judge_module(self.ctx, text)
            else:
                judgement = judge_dotted(self.ctx, text)
            if judgement.tier is Tier.SAFE:
                return
            self._report(judgement, arg_path, mapping, key, schema, text, via=helper_name)
            return
        why = "its argument is missing" if argument is None else "its argument is not text"
        self._dynamic(where, mapping, key, schema, helper_name, why, via=helper_name)

    def _argument(
        self, mapping: dict[str, Any], path: Path, keyword: str, position: int
    ) -> tuple[Any, Path]:
        if keyword in mapping:
            return mapping[keyword], (*path, keyword)
        args = mapping.get("_args_")
        if isinstance(args, list) and len(args) > position:
            return args[position], (*path, "_args_", position)
        init = mapping.get("init_args")
        if isinstance(init, dict) and keyword in init:
            return init[keyword], (*path, "init_args", keyword)
        return None, path

    # ---- interpolation -------------------------------------------------------------------

    def resolve(self, value: str, container: Path, depth: int = 0) -> str | Dynamic:
        """Resolve OmegaConf interpolation in ``value`` found in the container at
        ``container`` (a key path); :class:`Dynamic` when the file does not determine it."""
        if "${" not in value:
            return value
        if depth > _MAX_RESOLVE_DEPTH:
            return Dynamic("its interpolation nests or loops deeper than the scanner follows")
        out: list[str] = []
        i = 0
        while i < len(value):
            if value.startswith("\\${", i):
                out.append("${")
                i += 3
                continue
            if not value.startswith("${", i):
                out.append(value[i])
                i += 1
                continue
            end = _closing(value, i + 2)
            if end < 0:
                return Dynamic("its interpolation is not closed")
            body = self.resolve(value[i + 2 : end], container, depth + 1)
            if isinstance(body, Dynamic):
                return body
            part = self._lookup(body.strip(), container, depth)
            if isinstance(part, Dynamic):
                return part
            out.append(part)
            i = end + 1
        return "".join(out)

    def _lookup(self, body: str, container: Path, depth: int) -> str | Dynamic:
        if ":" in body:
            name, _, argument = (part.strip() for part in body.partition(":"))
            if name in ("oc.env", "env"):
                return Dynamic(f"it reads the environment (${{{body[:80]}}})")
            if name == "oc.select":
                return self._select(argument, container, depth)
            if name == "oc.decode" and _quoted(argument) is not None:
                return self.resolve(_quoted(argument) or "", container, depth + 1)
            return Dynamic(f"it calls the resolver {name!r} (${{{body[:80]}}})")
        dots = len(body) - len(body.lstrip("."))
        if dots:
            base: Path = container[: len(container) - (dots - 1)] if dots > 1 else container
            if dots - 1 > len(container):
                return Dynamic(f"${{{body}}} climbs above the document's root")
            steps = _path_steps(body[dots:])
        else:
            base = ()
            steps = _path_steps(body)
        node: Any = self._at(base)
        for step in steps:
            if isinstance(node, dict) and step in node:
                node = node[step]
            elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
                node = node[int(step)]
            else:
                return Dynamic(
                    f"${{{body[:80]}}} names a key the document does not hold (set on the "
                    "command line or by another config)"
                )
        if isinstance(node, str):
            if node.strip() == "???":
                return Dynamic(f"${{{body[:80]}}} is a mandatory value left to the command line")
            return self.resolve(node, (*base, *steps[:-1]) if steps else base, depth + 1)
        if isinstance(node, dict | list) or node is None:
            return Dynamic(f"${{{body[:80]}}} is not a single value")
        return str(node)

    def _select(self, argument: str, container: Path, depth: int) -> str | Dynamic:
        """``oc.select:key,default``: the key's value, else the default."""
        key, comma, default = argument.partition(",")
        found = self._lookup(key.strip(), container, depth)
        if not isinstance(found, Dynamic) or not comma:
            return found
        text = default.strip()
        return self.resolve(_quoted(text) or text, container, depth + 1)

    def _at(self, path: Path) -> Any:
        node: Any = self.root
        for step in path:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    def _resolver_calls(self, value: str, path: Path) -> None:
        for match in _RESOLVER_CALL.finditer(value):
            name = match.group(1)
            if name in BUILTIN_RESOLVERS or name in self.resolvers_seen:
                continue
            self.resolvers_seen.add(name)
            code = bool(_CODE_RESOLVER.search(name))
            shown = _shown_path(path)
            evidence = {
                "resolver": name,
                "path": shown,
                "expression": _excerpt(value),
                "where": self.source,
                **self._position_evidence(path),
            }
            how = (
                "its name says it evaluates code, and projects that register it hand it the "
                "text as Python"
                if code
                else "it runs whatever function the loading program registered under that name"
            )
            self.ctx.add(
                CONFIG_RESOLVER.finding(
                    self.location,
                    f"{self.source}: the value at {shown} calls the OmegaConf resolver "
                    f"{name!r}, which is not one of OmegaConf's or Hydra's own; {how}.",
                    severity=Severity.HIGH if code else None,
                    evidence=evidence,
                )
            )

    # ---- findings ------------------------------------------------------------------------

    def _remote_code(self, mapping: dict[str, Any], path: Path) -> None:
        for holder, prefix in ((mapping, path), (mapping.get("init_args"), (*path, "init_args"))):
            if not isinstance(holder, dict):
                continue
            flag = holder.get("trust_remote_code")
            if flag is True or (isinstance(flag, str) and flag.strip() in _TRUE):
                shown = _shown_path((*prefix, "trust_remote_code"))
                self.ctx.add(
                    CONFIG_TRUST_REMOTE_CODE.finding(
                        self.location,
                        f"{self.source}: the instantiation at {_shown_path(path)} sets "
                        "trust_remote_code, so the library it builds imports Python files "
                        "from the model repository it downloads.",
                        evidence={
                            "path": shown,
                            "where": self.source,
                            **self._position_evidence((*prefix, "trust_remote_code"), holder),
                        },
                    )
                )

    def _report(
        self,
        judgement: Judgement,
        where: Path,
        mapping: dict[str, Any],
        key: str,
        schema: str,
        text: str,
        *,
        expression: str | None = None,
        via: str | None = None,
    ) -> None:
        severity = judgement.severity or Severity.MEDIUM
        if not self.ctx.wants(CONFIG_TARGET.id, severity):
            return
        shown = _shown_path(where)
        partial = str(mapping.get("_partial_")).strip() in _TRUE or mapping.get("_partial_") is True
        evidence = {
            "path": shown,
            "callable": judgement.name,
            "schema": schema,
            "where": self.source,
            "reason": judgement.reason[:300],
            **self._position_evidence(where, mapping if where[-1] == key else None),
        }
        if expression is not None:
            evidence["expression"] = _excerpt(expression)
        if via is not None:
            evidence["via"] = via
        if partial:
            evidence["partial"] = "true"
        if judgement.category:
            evidence["category"] = judgement.category
        if "nemo" in self.ctx.formats_seen:
            evidence["cve"] = "CVE-2025-23304"  # NeMo restores instantiate the model config
        through = f" through {via}" if via is not None else ""
        if expression is not None:
            through += f" (interpolated from {_excerpt(expression)!r})"
        when = "builds a partial of it" if partial else "imports and calls it"
        kind = "a denied callable" if judgement.tier is Tier.DANGEROUS else "on no allow list"
        self.ctx.add(
            CONFIG_TARGET.finding(
                self.location,
                f"{self.source}: the {_SCHEMA_NAMES[schema]} at {shown} names "
                f"{judgement.name}{through}, {kind} ({judgement.reason[:200]}); the loader "
                f"{when} with the arguments beside it.",
                severity=severity,
                evidence=evidence,
            )
        )

    def _dynamic(
        self,
        where: Path,
        mapping: dict[str, Any],
        key: str,
        schema: str,
        raw: str,
        why: str,
        *,
        via: str | None = None,
    ) -> None:
        shown = _shown_path(where)
        evidence = {
            "path": shown,
            "expression": _excerpt(raw),
            "schema": schema,
            "where": self.source,
            "reason": why,
            **self._position_evidence(where, mapping),
        }
        if via is not None:
            evidence["via"] = via
        helper = f" (the argument of {via})" if via is not None else ""
        self.ctx.add(
            CONFIG_TARGET_DYNAMIC.finding(
                self.location,
                f"{self.source}: the {_SCHEMA_NAMES[schema]} at {shown}{helper} cannot be known "
                f"from the file: {why}. The loader imports whatever it resolves to.",
                evidence=evidence,
            )
        )

    def _position_evidence(self, where: Path, mapping: object = None) -> dict[str, str]:
        if not self.positions or not where:
            return {}
        position = None
        if mapping is not None:
            position = self.positions.get((id(mapping), where[-1]))
        if position is None:
            node: Any = self._at(where[:-1])
            position = self.positions.get((id(node), where[-1]))
        if position is None:
            return {}
        return {"line": str(position[0]), "column": str(position[1])}


def _closing(text: str, start: int) -> int:
    """Index of the ``}`` closing an interpolation whose body starts at ``start``, or -1."""
    depth = 0
    quote = ""
    i = start
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif text.startswith("${", i):
            depth += 1
            i += 2
            continue
        elif c == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


def _quoted(text: str) -> str | None:
    """The content of a quoted resolver argument (``'a.b'``, ``"a.b"``), or None."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return None


def _path_steps(body: str) -> list[str]:
    """``a.b[0].c`` -> ``["a", "b", "0", "c"]``."""
    return [part.strip() for part in body.replace("[", ".").replace("]", "").split(".") if part]


def _normal(dotted: str) -> str:
    from modelshield.scanner.callables import normalize

    module, _, name = dotted.rpartition(".")
    if not module:
        return f"builtins.{name}"
    module, name = normalize(module, name)
    return f"{module}.{name}"


def _excerpt(text: str) -> str:
    flat = text.replace("\n", " ")
    return flat if len(flat) <= _MAX_EXPRESSION else flat[: _MAX_EXPRESSION - 1] + "…"
