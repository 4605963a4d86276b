"""Pickles hidden inside a pickle: raw byte constants, and base64 or hex text.

Every byte constant the interpreter pushes is offered here, and every text constant long
enough to hold an encoded pickle. The checks are cheap and strict so that ordinary data costs
next to nothing: raw bytes must start with a PROTO header (or be one complete protocol-0
pickle), and text is only decoded when its first characters decode to such a start and the
whole of it matches a strict base64 or hex alphabet. A candidate is analysed as a nested
pickle (``ctx.scan_buffer``), bounded by ``limits.max_embedded_scan_bytes`` and
``limits.max_nested_depth``; its findings keep their own location.
"""

from __future__ import annotations

import binascii
import re

from modelshield.core.findings import Location, Severity
from modelshield.scanner.context import LimitExceeded, ScanContext
from modelshield.scanner.memio import Buffer
from modelshield.scanner.pickle import rules
from modelshield.scanner.pickle.opcodes import STARTERS
from modelshield.scanner.pickle.sniff import looks_like_pickle
from modelshield.scanner.registry import Format
from modelshield.scanner.rules import SCAN_LIMIT

#: Shortest text examined as base64/hex (12 decoded bytes: nothing shorter imports anything).
MIN_TEXT = 16
#: Shortest byte constant examined as a raw pickle.
MIN_BYTES = 4

_BASE64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_HEX = re.compile(rb"(?:[0-9a-fA-F]{2})+")
_B64_FIRST = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_STOP = 0x2E


def starts_like_pickle(head: bytes) -> bool:
    """Cheap first test on a constant's first bytes."""
    if len(head) < 2:
        return False
    if head[0] == 0x80:
        return 2 <= head[1] <= 5
    return head[0] in STARTERS


class EmbeddedScanner:
    """Examines constants of one buffer for embedded pickles."""

    def __init__(self, ctx: ScanContext, data: Buffer, location: Location) -> None:
        """Constants are offered with their offsets in ``data``."""
        self._ctx = ctx
        self._data = data
        self._location = location
        self._limit = ctx.limits.max_embedded_scan_bytes

    # ---- raw bytes --------------------------------------------------------------------
    def check_span(self, start: int, end: int, offset: int) -> None:
        """A byte constant stored at ``data[start:end]`` (pushed by the opcode at ``offset``)."""
        if _is_pickle(self._data, start, end) and not self._too_large(
            end - start, offset, "byte constant"
        ):
            self._scan(bytes(self._data[start:end]), offset, "")

    def check_bytes(self, value: bytes, offset: int) -> None:
        """A byte constant that was decoded or folded (``_codecs.encode(..., 'latin1')``)."""
        if _is_pickle(value, 0, len(value)) and not self._too_large(
            len(value), offset, "byte constant"
        ):
            self._scan(value, offset, "")

    # ---- encoded text -----------------------------------------------------------------
    def check_text_span(self, start: int, end: int, offset: int) -> None:
        """A text constant whose UTF-8 bytes are ``data[start:end]``."""
        if end - start < MIN_TEXT:
            return
        data = self._data
        first = data[start]
        if first in _B64_FIRST:
            head = _b64_head(bytes(data[start : start + 8]))
            hexed = first in _HEX_DIGITS and data[start + 1] in _HEX_DIGITS
            if head or hexed:
                self._check_encoded(bytes(data[start:end]), offset, head, hexed)

    def check_text(self, text: str, offset: int) -> None:
        """A decoded text constant (protocol-0 UNICODE, or a short string)."""
        if len(text) < MIN_TEXT or not text.isascii():
            return
        raw = text.encode("ascii")
        head = _b64_head(raw[:8])
        hexed = raw[0] in _HEX_DIGITS and raw[1] in _HEX_DIGITS
        if head or hexed:
            self._check_encoded(raw, offset, head, hexed)

    def _check_encoded(self, raw: bytes, offset: int, b64: bool, hexed: bool) -> None:
        if hexed and _hex_head(raw[:4]) and _HEX.fullmatch(raw):
            if not self._too_large(len(raw) // 2, offset, "hex text"):
                self._decoded(binascii.unhexlify(raw), offset, "hex")
            return
        if b64:
            compact = raw.replace(b"\n", b"").replace(b"\r", b"") if b"\n" in raw else raw
            if len(compact) % 4 or not _BASE64.fullmatch(compact):
                return
            if self._too_large(len(compact) // 4 * 3, offset, "base64 text"):
                return
            try:
                decoded = binascii.a2b_base64(compact, strict_mode=True)
            except (binascii.Error, ValueError):
                return
            self._decoded(decoded, offset, "base64")

    def _decoded(self, value: bytes, offset: int, encoding: str) -> None:
        if _is_pickle(value, 0, len(value)):
            self._scan(value, offset, encoding)

    # ---- the nested analysis ----------------------------------------------------------
    def _too_large(self, size: int, offset: int, what: str) -> bool:
        if size <= self._limit:
            return False
        self._ctx.add(
            SCAN_LIMIT.finding(
                self._location.at(offset),
                f"A {what} of {size} bytes looks like an embedded pickle but is larger than "
                f"limits.max_embedded_scan_bytes ({self._limit}); it was not analysed.",
                evidence={"limit": "max_embedded_scan_bytes", "size": str(size)},
            )
        )
        return True

    def _scan(self, payload: bytes, offset: int, encoding: str) -> None:
        ctx = self._ctx
        label = (
            f"<embedded pickle ({encoding}) @{offset}>"
            if encoding
            else (f"<embedded pickle @{offset}>")
        )
        unsafe = scan_nested(ctx, payload, self._location.child(label), "an embedded pickle")
        how = f"{encoding}-encoded " if encoding else ""
        evidence = {"size": str(len(payload)), "encoding": encoding or "raw"}
        if unsafe:
            evidence["imports"] = ", ".join(unsafe[:10])
            self._emit(
                offset,
                f"A {how}pickle of {len(payload)} bytes is embedded in this pickle and imports "
                f"or calls what is not on the safe list ({', '.join(unsafe[:5])}). It runs when "
                "something loads the inner bytes; see the findings at the embedded location.",
                Severity.HIGH,
                evidence,
            )
        else:
            self._emit(
                offset,
                f"A {how}pickle of {len(payload)} bytes is embedded in this pickle; it imports "
                "nothing outside the safe list.",
                Severity.INFO,
                evidence,
            )

    def _emit(self, offset: int, message: str, severity: Severity, ev: dict[str, str]) -> None:
        self._ctx.add(
            rules.EMBEDDED.finding(
                self._location.at(offset), message, severity=severity, evidence=ev
            )
        )


def scan_nested(ctx: ScanContext, payload: bytes, inner: Location, what: str) -> list[str]:
    """Analyse ``payload`` as a pickle at ``inner``; return what it imports or calls that is not
    on the safe list (sorted). A limit tripped inside it becomes a ``SCAN-LIMIT`` finding here
    (``what`` names the payload in its message); only the time budget stops the caller too."""
    before = len(ctx.findings)
    try:
        ctx.scan_buffer(payload, inner, Format.PICKLE)
    except LimitExceeded as e:
        if e.limit == "max_seconds_per_file":
            raise
        ctx.add(
            SCAN_LIMIT.finding(
                e.location,
                f"Analysis of {what} stopped: {e.detail}.",
                evidence={"limit": e.limit},
            )
        )
    return sorted(
        {
            f.evidence.get("callable", f.rule_id)
            for f in ctx.findings[before:]
            if f.rule_id in rules.UNSAFE_RULES
            # A pickle nested deeper that was judged unsafe lists what it imports.
            or (f.severity >= Severity.HIGH and "imports" in f.evidence)
        }
    )


def is_embedded_pickle(data: Buffer) -> bool:
    """Whether a byte constant is analysed as an embedded pickle when it is pushed."""
    return _is_pickle(data, 0, len(data))


def _is_pickle(data: Buffer, start: int, end: int) -> bool:
    """A PROTO header followed by valid opcodes, or exactly one protocol-0/1 pickle."""
    if end - start < MIN_BYTES:
        return False
    first = data[start]
    if first == 0x80:
        return 2 <= data[start + 1] <= 5 and looks_like_pickle(data, start, end)
    return (
        first in STARTERS
        and data[end - 1] == _STOP
        and looks_like_pickle(data, start, end, whole=True, max_ops=4096)
    )


def _b64_head(raw: bytes) -> bool:
    """Whether base64 text starts with the encoding of a pickle's first bytes."""
    if len(raw) < 4:
        return False
    try:
        head = binascii.a2b_base64(raw[:4], strict_mode=True)
    except (binascii.Error, ValueError):
        return False
    return starts_like_pickle(head)


def _hex_head(raw: bytes) -> bool:
    try:
        head = binascii.unhexlify(raw[:4])
    except (binascii.Error, ValueError):
        return False
    return starts_like_pickle(head)
