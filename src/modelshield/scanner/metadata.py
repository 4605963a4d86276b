"""Strings that formats store as metadata: templates, code, credentials, hidden pickles, configs.

safetensors ``__metadata__``, GGUF key/values, ONNX ``metadata_props`` and doc strings, and the
values of JSON and YAML documents all end here through :func:`check_string` (or
:func:`check_bytes` for byte strings). A string that holds Jinja syntax is analysed as a
template (:mod:`modelshield.scanner.templates`); any string is searched for code and shell
command lines, credentials, and pickles (raw, base64 or hex), which are analysed as nested
pickles; a string that holds a JSON or YAML configuration (a Hydra ``_target_`` config in
safetensors metadata, Python tags in a GGUF value) is analysed as one
(:func:`modelshield.scanner.config.analyse.analyse_embedded`).
"""

from __future__ import annotations

import binascii
import functools
import re
from collections.abc import Callable

from modelshield.core.findings import Location, Severity
from modelshield.scanner.config.analyse import analyse_embedded
from modelshield.scanner.context import ScanContext
from modelshield.scanner.pickle.embedded import is_embedded_pickle, scan_nested, starts_like_pickle
from modelshield.scanner.rules import (
    METADATA_CODE,
    METADATA_CREDENTIAL,
    METADATA_EMBEDDED_PICKLE,
    SCAN_LIMIT,
)
from modelshield.scanner.templates import check_template, looks_like_template

_DANGEROUS_MODULES = (
    r"os|sys|subprocess|socket|pty|shutil|ctypes|builtins|importlib|base64|pickle|marshal|"
    r"urllib|requests|http\.client|runpy|code|webbrowser"
)

#: What a string of code or a command line looks like, each with a name for the evidence.
#: Deliberately specific: descriptions that mention `from transformers import X` stay clean.
_CODE = (
    ("Python import of a system module", rf"\bimport\s+(?:{_DANGEROUS_MODULES})\b"),
    ("Python import of a system module", rf"\bfrom\s+(?:{_DANGEROUS_MODULES})\s+import\b"),
    (
        "Python call of a process or file function",
        r"\b(?:os\.(?:system|popen|exec\w*|spawn\w*|remove|unlink|fork)|subprocess\.\w+|"
        r"pty\.spawn|socket\.socket|shutil\.rmtree|importlib\.import_module)\s*\(",
    ),
    ("Python evaluation call", r"(?<![\w.])(?:exec|eval|compile|__import__)\s*\("),
    ("shell removal of files", r"\brm\s+-[a-zA-Z]*[rRf][a-zA-Z]*\s"),
    ("shell download", r"\b(?:curl|wget)\b[^\n]{0,200}?\b(?:https?|ftp)://"),
    ("pipe into a shell", r"\|\s*(?:sudo\s+)?(?:ba|z|da|k)?sh\b"),
    ("shell permission change", r"\bchmod\s+(?:-R\s+)?(?:[0-7]?77[0-7]|[ugoa]*\+[rwxs]+)(?!\w)"),
    ("netcat with a command", r"\b(?:nc|ncat|netcat)\s+(?:-\w+\s+)*-[ec]\b"),
    ("shell interpreter", r"/bin/(?:ba|da|z|k)?sh\b|\bpowershell(?:\.exe)?\s+-(?:e|enc|c)\w*\b"),
    ("HTML script", r"<\s*script\b|\bjavascript:"),
)
_CODE_RE = [(name, re.compile(pattern)) for name, pattern in _CODE]
#: Words one of them needs, as literals (a fast first pass: most strings have none).
_CODE_HINT = re.compile(
    r"import|os\.|subprocess|pty\.|socket\.|shutil\.|exec|eval|compile|rm|curl|wget|\||"
    r"chmod|nc|netcat|/bin/|powershell|script"
)

#: Credential shapes of common providers.
_CREDENTIALS = (
    ("OpenAI-style API key", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"),
    ("Hugging Face token", r"\bhf_[A-Za-z0-9]{30,}\b"),
    ("GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("AWS access key id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("Slack token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    ("Google API key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("private key", r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
)
_CREDENTIAL_RE = [(name, re.compile(pattern)) for name, pattern in _CREDENTIALS]
_ANY_CREDENTIAL = re.compile("|".join(f"(?:{pattern})" for _, pattern in _CREDENTIALS))
#: Keys whose value is a secret.
_SECRET_KEY = re.compile(
    r"(?:^|[_\-.])(?:api[_-]?key|apikey|secret(?:[_-]?key)?|access[_-]?key(?:[_-]?id)?|"
    r"private[_-]?key|password|passwd|auth[_-]?token|access[_-]?token|api[_-]?token|"
    r"hf[_-]?token|client[_-]?secret|credentials?|key)$",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(
    r"^(?:<[^>]*>|\$\{[^}]*\}|\$[A-Z_]+|\{\{.*\}\}|your[_\- ].*|x{3,}|\*{3,}|changeme|none|"
    r"null|todo|tbd|example\w*|dummy\w*|placeholder\w*)$",
    re.IGNORECASE,
)
_HEX_DIGEST = re.compile(r"^(?:sha\d+:)?[0-9a-fA-F]{32,128}$")

_BASE64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_HEX = re.compile(rb"(?:[0-9a-fA-F]{2})+")
#: Strings shorter than this hold no template, command, credential or pickle.
_MIN_CHECKED = 5

Where = str | Callable[[], str]
"""Where a string was found, for messages; a callable is only called when a finding is made
(documents name a key path for each of their strings, and most strings make none)."""


def _say(where: Where) -> str:
    return where if isinstance(where, str) else where()


#: Shortest string examined as an embedded configuration (``{"_target_": "a.b"}``).
_MIN_CONFIG = 16
#: What an embedded configuration holds (a fast first pass; :func:`analyse_embedded` decides).
_CONFIG_HINT = re.compile(r"_target_|class_path|\"py/|!!python|tag:yaml\.org|%TAG")

#: Shortest text examined as encoded pickle (12 decoded bytes: nothing shorter imports).
_MIN_ENCODED = 16


def check_string(
    ctx: ScanContext,
    value: str,
    location: Location,
    *,
    key: str,
    where: Where,
    rendered_template: bool = False,
) -> None:
    """Analyse one metadata string stored under ``key``.

    ``rendered_template`` says that a known loader renders this string as a chat template
    (see :func:`modelshield.scanner.templates.check_template`); ``where`` names where the
    string is, for messages ("safetensors metadata key 'x'").
    """
    if len(value) < _MIN_CHECKED and not rendered_template:
        return
    if looks_like_template(value) or rendered_template:
        check_template(ctx, value, location, rendered=rendered_template, where=_say(where))
    else:
        _code(ctx, value, location, where)
    _credential(ctx, key, value, location, where)
    _encoded_pickle(ctx, value, location, where)
    if len(value) >= _MIN_CONFIG and _CONFIG_HINT.search(value):
        analyse_embedded(ctx, value, location, where=_say(where))


def check_bytes(
    ctx: ScanContext,
    value: bytes,
    location: Location,
    *,
    key: str,
    where: Where,
    rendered_template: bool = False,
) -> None:
    """Analyse one metadata byte string: a raw pickle, else its text as :func:`check_string`."""
    if is_embedded_pickle(value):
        _nested(ctx, value, location, where, "")
        return
    check_string(
        ctx,
        value.decode("utf-8", "replace"),
        location,
        key=key,
        where=where,
        rendered_template=rendered_template,
    )


def check_hidden_pickle(
    ctx: ScanContext, value: bytes, location: Location, *, where: Where
) -> None:
    """Look for a pickle (raw, base64 or hex) in bytes that are data, not text for people
    (attribute values, string tensors): no code or credential search there."""
    if is_embedded_pickle(value):
        _nested(ctx, value, location, where, "")
    elif len(value) >= _MIN_ENCODED and value[:1].isalnum():
        _encoded_pickle(ctx, value.decode("latin-1"), location, where)


def _code(ctx: ScanContext, value: str, location: Location, lazy_where: Where) -> None:
    if not _CODE_HINT.search(value):
        return
    kinds = [name for name, pattern in _CODE_RE if pattern.search(value)]
    if not kinds:
        return
    kinds = list(dict.fromkeys(kinds))
    where = _say(lazy_where)
    ctx.add(
        METADATA_CODE.finding(
            location,
            f"The string in {where} reads as code or a command line ({', '.join(kinds)}). No "
            "loader of this format runs it, but model metadata has no use for commands: find "
            "out what is meant to execute it.",
            evidence={"kinds": ", ".join(kinds), "value": _excerpt(value), "where": where},
        )
    )


def _credential(
    ctx: ScanContext, key: str, value: str, location: Location, lazy_where: Where
) -> None:
    kind = None
    for name, pattern in _CREDENTIAL_RE if _ANY_CREDENTIAL.search(value) else ():
        match = pattern.search(value)
        if match is not None and (not name.startswith("OpenAI") or _random_looking(match[0])):
            kind = name
            break
    if kind is None and _secret_key(key) and _secret_value(value):
        kind = f"value of the secret-named key {key!r}"
    if kind is None:
        return
    where = _say(lazy_where)
    ctx.add(
        METADATA_CREDENTIAL.finding(
            location,
            f"The string in {where} looks like a credential ({kind}). Anyone who downloads the "
            "file can use it: revoke it, and find out why it ships with the model.",
            evidence={"kind": kind, "value": value[:4] + "…", "where": where},
        )
    )


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def _random_looking(token: str) -> bool:
    """``sk-`` also starts ordinary words (``sk-learn-estimator``): a key mixes digits and
    letters."""
    digits = sum(c.isdigit() for c in token)
    return digits >= 2 and sum(c.isalpha() for c in token) >= 4


def _secret_value(value: str) -> bool:
    text = value.strip()
    if not 8 <= len(text) <= 512 or any(c.isspace() for c in text):
        return False
    if "/" in text or "\\" in text or _PLACEHOLDER.match(text) or _HEX_DIGEST.match(text):
        return False
    return any(c.isdigit() for c in text) and any(c.isalpha() for c in text)


def _encoded_pickle(ctx: ScanContext, value: str, location: Location, where: Where) -> None:
    if len(value) < _MIN_ENCODED or not value.isascii():
        return
    raw = value.strip().encode("ascii")
    limit = ctx.limits.max_embedded_scan_bytes
    decoded: bytes | None = None
    encoding = ""
    if _HEX.fullmatch(raw) and starts_like_pickle(binascii.unhexlify(raw[:4])):
        encoding = "hex"
        if len(raw) // 2 > limit:
            _too_large(ctx, location, len(raw) // 2, where)
            return
        decoded = binascii.unhexlify(raw)
    elif _base64_head(raw):
        compact = raw.replace(b"\n", b"").replace(b"\r", b"")
        if len(compact) % 4 or not _BASE64.fullmatch(compact):
            return
        encoding = "base64"
        if len(compact) // 4 * 3 > limit:
            _too_large(ctx, location, len(compact) // 4 * 3, where)
            return
        try:
            decoded = binascii.a2b_base64(compact, strict_mode=True)
        except (binascii.Error, ValueError):
            return
    if decoded is not None and is_embedded_pickle(decoded):
        _nested(ctx, decoded, location, where, encoding)


def _base64_head(raw: bytes) -> bool:
    try:
        head = binascii.a2b_base64(raw[:8], strict_mode=True)
    except (binascii.Error, ValueError):
        return False
    return starts_like_pickle(head)


def _too_large(ctx: ScanContext, location: Location, size: int, where: Where) -> None:
    ctx.add(
        SCAN_LIMIT.finding(
            location,
            f"The string in {_say(where)} encodes what looks like a pickle of {size} bytes, above "
            f"limits.max_embedded_scan_bytes ({ctx.limits.max_embedded_scan_bytes}); it was not "
            "analysed.",
            evidence={"limit": "max_embedded_scan_bytes", "size": str(size)},
        )
    )


def _nested(
    ctx: ScanContext, payload: bytes, location: Location, lazy_where: Where, encoding: str
) -> None:
    where = _say(lazy_where)
    inner = location.child(f"<{encoding + ' ' if encoding else ''}pickle>")
    unsafe = scan_nested(ctx, payload, inner, f"a pickle hidden in {where}")
    how = f"{encoding}-encoded " if encoding else ""
    evidence = {"size": str(len(payload)), "encoding": encoding or "raw", "where": where}
    if unsafe:
        evidence["imports"] = ", ".join(unsafe[:10])
        message = (
            f"The string in {where} is a {how}pickle of {len(payload)} bytes that imports or "
            f"calls what is not on the safe list ({', '.join(unsafe[:5])}). It runs when "
            "something loads it; see the findings at its own location."
        )
        severity = Severity.HIGH
    else:
        message = (
            f"The string in {where} is a {how}pickle of {len(payload)} bytes; it imports nothing "
            "outside the safe list."
        )
        severity = Severity.INFO
    ctx.add(
        METADATA_EMBEDDED_PICKLE.finding(location, message, severity=severity, evidence=evidence)
    )


def _excerpt(value: str) -> str:
    text = value.replace("\n", " ")
    return text if len(text) <= 200 else text[:199] + "…"
