"""Reading OSV records: the data traps, severity from CVSS, and the index round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from modelshield.audit.advisory import (
    AdvisoryFormatError,
    StoredDecoder,
    from_json,
    parse_advisory,
    to_json,
)
from modelshield.audit.cvss import cvss2_score, cvss3_score, score_vector
from modelshield.audit.intervals import reachable_affected
from modelshield.audit.match import affects, compiled
from modelshield.audit.records import EventKind
from modelshield.core.findings import Severity

from .conftest import osv_record


@pytest.mark.parametrize(
    ("vector", "score", "severity"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, Severity.CRITICAL),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, Severity.HIGH),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, Severity.MEDIUM),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:R/S:U/C:L/I:N/A:N", 2.8, Severity.LOW),
        ("CVSS:3.0/AV:N/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H", 9.1, Severity.CRITICAL),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, Severity.INFO),
    ],
)
def test_cvss3_base_scores(vector: str, score: float, severity: Severity) -> None:
    result = cvss3_score(vector)
    assert (result.value, result.severity) == (score, severity)


@pytest.mark.parametrize(
    ("vector", "score", "severity"),
    [
        ("AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5, Severity.HIGH),
        ("AV:N/AC:M/Au:N/C:N/I:P/A:N", 4.3, Severity.MEDIUM),
        ("AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0, Severity.HIGH),
    ],
)
def test_cvss2_base_scores(vector: str, score: float, severity: Severity) -> None:
    result = cvss2_score(vector)
    assert (result.value, result.severity) == (score, severity)


@pytest.mark.parametrize(
    "vector", ["CVSS:3.1/AV:N", "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "junk"]
)
def test_malformed_cvss_is_a_value_error(vector: str) -> None:
    with pytest.raises(ValueError):
        cvss3_score(vector)


def test_cvss4_is_not_computed() -> None:
    assert (
        score_vector("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
        is None
    )


def test_severity_prefers_cvss_then_database_label() -> None:
    vec = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}]
    assert (
        parse_advisory(osv_record("A-1", "x", versions=["1"], severity=vec)).severity
        is Severity.HIGH
    )
    labelled = osv_record("A-2", "x", versions=["1"])
    labelled["database_specific"] = {"severity": "MODERATE"}
    adv = parse_advisory(labelled)
    assert (adv.severity, adv.severity_source) == (Severity.MEDIUM, "database label MODERATE")
    v4_only = osv_record(
        "A-3", "x", versions=["1"], severity=[{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N"}]
    )
    assert parse_advisory(v4_only).severity is None


def test_real_cvss_advisory(snapshot_vulns: Path) -> None:
    doc = yaml.load(
        (snapshot_vulns / "werkzeug/PYSEC-2023-221.yaml").read_bytes(), Loader=yaml.CBaseLoader
    )
    adv = parse_advisory(doc)
    assert adv.severity is Severity.HIGH
    assert "7.5" in adv.severity_source


def test_empty_event_is_skipped_with_a_warning() -> None:
    # The shape of PYSEC-2026-89 (pyjwt), which crashed another auditor.
    doc = osv_record("PYSEC-2026-89", "pyjwt", events=[{"introduced": "0"}, {}, {"fixed": "2.4.0"}])
    adv = parse_advisory(doc)
    (entry,) = adv.for_package("pyjwt")
    assert [e.kind for e in entry.ranges[0].events] == [EventKind.INTRODUCED, EventKind.FIXED]
    assert any("empty event" in w for w in adv.warnings)
    assert affects(entry, "2.3.0") and not affects(entry, "2.4.0")


def test_numeric_version_skips_the_range_but_keeps_the_versions_list() -> None:
    # What yaml.safe_load makes of an unquoted `fixed: 3.10`: the float 3.1.
    doc = yaml.safe_load(
        "id: X-1\naffected:\n- package: {name: pkg, ecosystem: PyPI}\n"
        "  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: '0'\n    - fixed: 3.10\n"
        "  versions: ['3.0']\n"
    )
    assert doc["affected"][0]["ranges"][0]["events"][1]["fixed"] == 3.1
    adv = parse_advisory(doc)
    (entry,) = adv.for_package("pkg")
    assert entry.ranges == ()
    assert any("not a version string" in w for w in adv.warnings)
    assert affects(entry, "3.0")


@pytest.mark.parametrize(
    ("events", "warning"),
    [
        ([{"introduced": "0"}, {"patched": "1.0"}], "unknown event"),
        ([{"introduced": "0", "fixed": "1.0"}], "malformed event"),
        ([{"fixed": "1.0"}], "no 'introduced'"),
        ([{"introduced": "0"}, {"fixed": ""}], "not a version string"),
    ],
)
def test_malformed_ranges_are_reported(events: list[Any], warning: str) -> None:
    adv = parse_advisory(osv_record("X-2", "pkg", events=events))
    assert any(warning in w for w in adv.warnings), adv.warnings


def test_other_ecosystems_and_names_are_normalised() -> None:
    doc = osv_record("X-3", "Scikit_Learn", versions=["1.0"])
    doc["affected"].append(
        {"package": {"name": "scikit-learn", "ecosystem": "npm"}, "versions": ["1.0"]}
    )
    adv = parse_advisory(doc)
    assert [a.name for a in adv.affected] == ["scikit-learn"]


@pytest.mark.parametrize("doc", [[], "text", {"affected": []}, {"id": ""}])
def test_unusable_records_raise_format_error(doc: Any) -> None:
    with pytest.raises(AdvisoryFormatError):
        parse_advisory(doc)


def test_index_round_trip(snapshot_vulns: Path) -> None:
    for rel in (
        "salt/PYSEC-2021-57.yaml",
        "werkzeug/PYSEC-2023-221.yaml",
        "redis/PYSEC-2023-73.yaml",
    ):
        adv = parse_advisory(
            yaml.load((snapshot_vulns / rel).read_bytes(), Loader=yaml.CBaseLoader)
        )
        assert from_json(to_json(adv)) == adv


def test_stored_decoder_reads_what_the_index_writes(snapshot_vulns: Path) -> None:
    """The offline index decodes its rows with msgspec: the same advisories as from_json,
    severities and compiled entries included, for every record of a few packages."""
    advisories = [
        parse_advisory(yaml.load(path.read_bytes(), Loader=yaml.CBaseLoader))
        for package in ("tensorflow", "django", "pillow", "torch")
        for path in sorted((snapshot_vulns / package).glob("*.yaml"))
    ]
    assert len(advisories) > 300
    vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    rated = osv_record(
        "GHSA-test", "torch", versions=["2.0"], severity=[{"type": "CVSS_V3", "score": vector}]
    )
    advisories.append(parse_advisory(rated))
    assert advisories[-1].severity is Severity.CRITICAL
    text = json.dumps([to_json(a) for a in advisories])
    decoded = StoredDecoder().decode(text)
    assert decoded == advisories == [from_json(d) for d in json.loads(text)]
    for adv, back in zip(advisories, decoded, strict=True):
        assert back.severity is adv.severity
        for entry, again in zip(adv.affected, back.affected, strict=True):
            assert compiled(again).fixed == compiled(entry).fixed
            probes = ["0", "1.0", "2.4.1", "9999", *entry.versions[:5]]
            probes += [text for text, _, _ in compiled(entry).fixed]
            for version in probes:
                assert affects(again, version) == affects(entry, version)


def test_stored_decoder_rejects_malformed_rows() -> None:
    decoder = StoredDecoder()
    for bad in ('[{"id": 3}]', "[", '{"id": "X"}', '[{"id": "X", "affected": [3]}]'):
        with pytest.raises((decoder.error, NotImplementedError, TypeError, KeyError)):
            decoder.decode(bad)


_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6)
)
_keys = st.sampled_from(
    ["id", "affected", "package", "name", "ecosystem", "ranges", "type", "events", "introduced",
     "fixed", "last_affected", "limit", "versions", "aliases", "severity", "score", "withdrawn",
     "database_specific", "references", "url", "summary", "details", "modified"]
)  # fmt: skip
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=25,
)
_event_versions = st.sampled_from(["0", "1.0", "2.0rc1", "0.3m1", "", "1.0.post1", 3, 3.1, None])
_records = st.fixed_dictionaries(
    {
        "id": st.just("X-1"),
        "affected": st.lists(
            st.fixed_dictionaries(
                {
                    "package": st.fixed_dictionaries(
                        {
                            "name": st.sampled_from(["p", "P_"]),
                            "ecosystem": st.sampled_from(["PyPI", 1]),
                        }
                    ),
                    "ranges": st.lists(
                        st.fixed_dictionaries(
                            {
                                "type": st.sampled_from(["ECOSYSTEM", "GIT"]),
                                "events": st.lists(
                                    st.dictionaries(
                                        st.sampled_from(
                                            ["introduced", "fixed", "last_affected", "limit", "x"]
                                        ),
                                        _event_versions,
                                        max_size=2,
                                    ),
                                    max_size=5,
                                ),
                            }
                        ),
                        max_size=3,
                    ),
                    "versions": _json,
                }
            ),
            max_size=3,
        ),
        "severity": _json,
        "aliases": _json,
        "references": _json,
    }
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(_json, _records), st.sampled_from(["0", "1.0", "1.5", "2.0rc1", "0.3m1", "junk-v"])
)
def test_any_record_shape_reads_without_crashing(doc: Any, version: str) -> None:
    """Hostile or broken records give an advisory with warnings, or a format error; nothing else."""
    try:
        adv = parse_advisory(doc)
    except AdvisoryFormatError:
        return
    assert from_json(to_json(adv)) == adv
    for entry in adv.affected:
        affects(entry, version)
        reachable_affected((">=1.0",), [entry])
