"""Pickles hidden in byte or text constants are analysed; ordinary data is left alone."""

from __future__ import annotations

import base64
import hashlib
import os
import pickle

import pytest

from modelshield.core.findings import Severity
from modelshield.core.limits import Limits
from modelshield.scanner.context import MAX_FINDINGS_PER_RULE
from tests.scanner.pickle import hostile
from tests.scanner.pickle.helpers import analyze

INNER_EVIL = hostile.reduce_call("os", "system", "id", proto=4)
INNER_BENIGN = pickle.dumps({"malicious": "data"}, protocol=4)


@pytest.mark.parametrize(
    ("wrap", "label"),
    [
        (hostile.embedded_raw, "<embedded pickle @"),
        (hostile.embedded_base64, "<embedded pickle (base64) @"),
        (hostile.embedded_hex, "<embedded pickle (hex) @"),
        (hostile.embedded_codecs, "<embedded pickle @"),
    ],
)
def test_embedded_payload_is_analysed_in_its_own_location(wrap: object, label: str) -> None:
    run = analyze(wrap(INNER_EVIL))  # type: ignore[operator]
    [embedded] = run.of("PICKLE-EMBEDDED")
    assert embedded.severity is Severity.HIGH
    assert embedded.location.members == ()
    assert "os.system" in embedded.evidence["imports"]
    [inner] = run.of("PICKLE-CALL-DANGEROUS")
    assert inner.evidence["callable"] == "os.system"
    assert len(inner.location.members) == 1
    assert inner.location.members[0].startswith(label)
    assert inner.location.offset == INNER_EVIL.index(pickle.REDUCE)


@pytest.mark.parametrize(
    "wrap",
    [hostile.embedded_raw, hostile.embedded_base64, hostile.embedded_hex, hostile.embedded_codecs],
)
def test_benign_embedded_pickle_is_informational(wrap: object) -> None:
    run = analyze(wrap(INNER_BENIGN))  # type: ignore[operator]
    [embedded] = run.of("PICKLE-EMBEDDED")
    assert embedded.severity is Severity.INFO
    assert [f for f in run.findings if f.severity > Severity.INFO] == []


def test_protocol_0_pickle_in_bytes() -> None:
    inner = b"cos\nsystem\n(S'id'\ntR."
    run = analyze(hostile.embedded_raw(inner))
    assert run.of("PICKLE-EMBEDDED")[0].severity is Severity.HIGH
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"os.system"}


def test_nested_twice() -> None:
    run = analyze(hostile.embedded_raw(hostile.embedded_base64(INNER_EVIL)))
    embedded = run.of("PICKLE-EMBEDDED")
    assert [e.severity for e in embedded] == [Severity.HIGH, Severity.HIGH]
    [inner] = run.of("PICKLE-CALL-DANGEROUS")
    assert len(inner.location.members) == 2


@pytest.mark.parametrize(
    "value",
    [
        b"\x80\x02" + os.urandom(200),  # starts like a pickle, is not one
        b"\x80\x04\x95" + b"\x00" * 50,
        bytes(range(256)) * 4,
        b"c" + b"x" * 100 + b".",  # starts like GLOBAL, has no newline
        b"(lp0\nI1\na.junk",  # a protocol-0 pickle must fill the whole constant
    ],
)
def test_binary_data_is_not_taken_for_a_pickle(value: bytes) -> None:
    assert analyze(hostile.embedded_raw(value)).findings == []


def test_a_whole_protocol_0_pickle_in_bytes_is_embedded() -> None:
    run = analyze(hostile.embedded_raw(pickle.dumps([1], protocol=0)))
    assert [f.severity for f in run.findings] == [Severity.INFO]


@pytest.mark.parametrize(
    "text",
    [
        hashlib.sha256(b"x").hexdigest(),
        "63" + hashlib.sha256(b"y").hexdigest(),
        base64.b64encode(os.urandom(90)).decode(),
        "KGRwMApWYQpwMQo",  # base64-looking, too short to hold an import
        "The quick brown fox jumps over the lazy dog, again and again and again.",
        "Y2FmZWJhYmVjYWZlYmFiZWNhZmViYWJl",  # base64 of ascii, starts like GLOBAL 'c'
    ],
)
def test_hashes_and_text_are_not_taken_for_pickles(text: str) -> None:
    run = analyze(hostile.Asm(4).unicode(text).stop().bytes())
    assert run.findings == []


def test_embedded_candidate_above_the_size_limit_is_a_limit_finding() -> None:
    inner = hostile.reduce_call("os", "system", "x" * 200, proto=4)
    run = analyze(hostile.embedded_raw(inner), limits=Limits(max_embedded_scan_bytes=100))
    [limit] = run.of("SCAN-LIMIT")
    assert limit.evidence["limit"] == "max_embedded_scan_bytes"
    assert "PICKLE-CALL-DANGEROUS" not in run.rules


def test_nesting_depth_limit_keeps_the_outer_analysis_going() -> None:
    data = INNER_EVIL
    for _ in range(4):
        data = hostile.embedded_raw(data)
    outer = hostile.Asm(4).raw(data[2:-1]).pop()  # the nest, then a payload in the outer stream
    outer.call("subprocess", "Popen", "id").stop()
    run = analyze(outer.bytes(), limits=Limits(max_nested_depth=2))
    assert any(f.evidence.get("limit") == "max_nested_depth" for f in run.of("SCAN-LIMIT"))
    assert "subprocess.Popen" in run.callables("PICKLE-CALL-DANGEROUS")


def test_an_embedded_pickle_whose_findings_overflowed_is_still_unsafe() -> None:
    # The file has already used up its listed PICKLE-IMPORT-UNKNOWN findings when the embedded
    # pickle imports an unlisted callable: its finding is counted, not listed, and the
    # embedding must still be judged by it.
    flood = b"".join(b"cmod%d\nf\n." % i for i in range(MAX_FINDINGS_PER_RULE + 20))
    inner = hostile.reduce_call("acme.tools", "run", "x", proto=4)
    run = analyze(flood + hostile.embedded_raw(inner))
    [embedded] = run.of("PICKLE-EMBEDDED")
    assert embedded.severity is Severity.HIGH
    assert "not listed" in embedded.evidence["imports"]
    assert not any(f.evidence.get("callable") == "acme.tools.run" for f in run.findings)


def test_embedded_pickles_count_towards_the_stream_limit() -> None:
    many = hostile.Asm(4)
    for _ in range(50):
        many.short_binbytes(INNER_BENIGN[:2] + b"N.").pop()
    data = many.raw(hostile.embedded_raw(INNER_EVIL)[2:]).bytes()
    run = analyze(data, limits=Limits(max_pickle_streams=20))
    assert run.ctx.rule_totals["SCAN-LIMIT"] >= 1
    [limit, *_] = run.of("SCAN-LIMIT")
    assert limit.evidence["limit"] == "max_pickle_streams"
    # The embedded payload past the limit is still searched for imports.
    assert any(f.evidence.get("callable") == "os.system" for f in run.findings)


def test_an_embedded_pickle_beyond_the_nesting_limit_is_still_searched() -> None:
    data = hostile.embedded_raw(hostile.embedded_raw(INNER_EVIL))
    run = analyze(data, limits=Limits(max_nested_depth=1))
    [limit] = run.of("SCAN-LIMIT")
    assert limit.evidence["limit"] == "max_nested_depth"
    [found] = run.of("PICKLE-IMPORT-DANGEROUS")
    assert found.evidence["callable"] == "os.system"
    assert found.evidence["found_by"] == "linear pass over content beyond limits.max_nested_depth"
    # Both embeddings are unsafe: what was found beyond the limit counts.
    assert [e.severity for e in run.of("PICKLE-EMBEDDED")] == [Severity.HIGH, Severity.HIGH]
