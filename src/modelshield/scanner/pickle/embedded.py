"""Pickles hidden inside a pickle: raw byte constants, and base64 or hex text.

Every byte constant the interpreter pushes is offered here, and every text constant long
enough to hold an encoded pickle. The checks are cheap and strict so that ordinary data costs
next to nothing: raw bytes must start with a PROTO header (or be one complete protocol-0
pickle), and text is only decoded when its first characters decode to such a start and the
whole of it matches a strict base64 or hex alphabet. A candidate is analysed as a nested
pickle (``ctx.scan_buffer``), bounded by ``limits.max_embedded_scan_bytes`` and
``limits.max_nested_depth`` (beyond which its imports are still searched for by the linear
pass), and counted against ``limits.max_opcodes`` and ``limits.max_pickle_streams``; its
findings keep their own location.
"""

from __future__ import annotations

import binascii
import re

from modelshield.core.findings import Location, Severity
from modelshield.scanner.context import LimitExceeded, ScanContext
from modelshield.scanner.memio import Buffer
from modelshield.scanner.pickle import linear, rules
from modelshield.scanner.pickle.opcodes import HIGHEST_PROTOCOL
from modelshield.scanner.pickle.sniff import FIRST_OPCODES, looks_like_pickle
from modelshield.scanner.registry import Format
from modelshield.scanner.rules import SCAN_LIMIT

#: Shortest text examined as base64/hex (12 decoded bytes: nothing shorter imports anything).
MIN_TEXT = 16
#: Shortest byte constant examined as a raw pickle.
MIN_BYTES = 4

_BASE64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_ENCODED_SAMPLE = re.compile(rb"[A-Za-z0-9+/\r\n]+")
_SAMPLE = 1 << 16
_HEX = re.compile(rb"(?:[0-9a-fA-F]{2})+")
_B64_FIRST = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_STOP = 0x2E
#: Work charged to ``ctx.opcodes`` per constant examined as a possible pickle beyond its first
#: and last bytes, and per text decoded (each can cost as much as a short nested analysis).
CANDIDATE_COST = 128


def starts_like_pickle(head: bytes) -> bool:
    """Cheap first test on a constant's first bytes."""
    if len(head) < 2:
        return False
    if head[0] == 0x80:
        return head[1] <= HIGHEST_PROTOCOL
    return head[0] in FIRST_OPCODES


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
        if self._candidate(self._data, start, end) and not self._too_large(
            end - start, offset, "byte constant"
        ):
            self._scan(memoryview(self._data)[start:end], offset, "")

    def check_bytes(self, value: bytes, offset: int) -> None:
        """A byte constant that was decoded or folded (``_codecs.encode(..., 'latin1')``)."""
        if self._candidate(value, 0, len(value)) and not self._too_large(
            len(value), offset, "byte constant"
        ):
            self._scan(value, offset, "")

    def _candidate(self, data: Buffer, start: int, end: int) -> bool:
        """Whether ``data[start:end]`` is a pickle (examining it is charged as work)."""
        if end - start < MIN_BYTES:
            return False
        first = data[start]
        if first == 0x80:
            if data[start + 1] > HIGHEST_PROTOCOL:
                return False
        elif first not in FIRST_OPCODES or data[end - 1] != _STOP:
            return False
        self._ctx.opcodes += CANDIDATE_COST
        return _is_pickle(data, start, end)

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
                # Sized before it is copied: a text of gigabytes is never read whole. One whose
                # first 64 KiB are not base64 or hex is no encoded pickle whatever its size.
                decoded = (end - start) // 2 if hexed and not head else (end - start) // 4 * 3
                if decoded > self._limit:
                    sample = bytes(data[start : start + _SAMPLE])
                    if _ENCODED_SAMPLE.fullmatch(sample):
                        self._too_large(decoded, offset, "base64 or hex text")
                    return
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
        self._ctx.opcodes += CANDIDATE_COST
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
        if not self._ctx.wants(SCAN_LIMIT.id, SCAN_LIMIT.severity):
            return True
        self._ctx.add(
            SCAN_LIMIT.finding(
                self._location.at(offset),
                f"A {what} of {size} bytes looks like an embedded pickle but is larger than "
                f"limits.max_embedded_scan_bytes ({self._limit}); it was not analysed.",
                evidence={"limit": "max_embedded_scan_bytes", "size": str(size)},
            )
        )
        return True

    def _scan(self, payload: Buffer, offset: int, encoding: str) -> None:
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
        if not self._ctx.wants(rules.EMBEDDED.id, severity):
            return
        self._ctx.add(
            rules.EMBEDDED.finding(
                self._location.at(offset), message, severity=severity, evidence=ev
            )
        )


def _unsafe_total(ctx: ScanContext) -> int:
    """Findings of the rules that make a pickle unsafe made so far, kept or not."""
    totals = ctx.rule_totals
    return sum(totals.get(rule, 0) for rule in rules.UNSAFE_RULES)


def scan_nested(ctx: ScanContext, payload: Buffer, inner: Location, what: str) -> list[str]:
    """Analyse ``payload`` as a pickle at ``inner``; return what it imports or calls that is not
    on the safe list (sorted). A limit tripped inside it becomes a ``SCAN-LIMIT`` finding here
    (``what`` names the payload in its message); only the time budget stops the caller too.

    The verdict counts the unsafe findings the nested analysis made, kept or not: past the caps
    on findings per rule, the ones it made may not be listed."""
    before = len(ctx.findings)
    unsafe_before = _unsafe_total(ctx)
    try:
        ctx.scan_buffer(payload, inner, Format.PICKLE)
    except LimitExceeded as e:
        if e.limit == "max_seconds_per_file":
            raise
        if e.unfollowed is not None:
            unfollowed, e.unfollowed = e.unfollowed, None
            linear.sweep_plain(ctx, unfollowed, e.location, e)
        if ctx.wants(SCAN_LIMIT.id, SCAN_LIMIT.severity):
            ctx.add(e.finding(f"Analysis of {what} stopped"))
    unsafe_count = _unsafe_total(ctx) - unsafe_before
    unsafe = sorted(
        {
            f.evidence.get("callable", f.rule_id)
            for f in ctx.findings[before:]
            if f.rule_id in rules.UNSAFE_RULES
            # A pickle nested deeper that was judged unsafe lists what it imports.
            or (f.severity >= Severity.HIGH and "imports" in f.evidence)
        }
    )
    if unsafe_count and not unsafe:
        unsafe = [f"{unsafe_count} finding(s) not listed here"]
    return unsafe


def is_embedded_pickle(data: Buffer) -> bool:
    """Whether a byte constant is analysed as an embedded pickle when it is pushed."""
    return _is_pickle(data, 0, len(data))


def _is_pickle(data: Buffer, start: int, end: int) -> bool:
    """A PROTO header followed by valid opcodes, or exactly one protocol-0/1 pickle."""
    if end - start < MIN_BYTES:
        return False
    first = data[start]
    if first == 0x80:
        return data[start + 1] <= HIGHEST_PROTOCOL and looks_like_pickle(data, start, end)
    return (
        first in FIRST_OPCODES
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
