"""Version matching: table tests drawn from real advisories, and properties against packaging."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from modelshield.audit.advisory import parse_advisory
from modelshield.audit.intervals import (
    affected_intervals,
    reachable_affected,
    specifier_intervals,
)
from modelshield.audit.match import affects
from modelshield.audit.records import (
    Advisory,
    AffectedPackage,
    Event,
    EventKind,
    VersionRange,
)
from modelshield.audit.versions import candidate, exact_key, parse_version


def load(vulns: Path, relpath: str) -> Advisory:
    """A real advisory of the snapshot, read the way the offline database reads it."""
    return parse_advisory(yaml.load((vulns / relpath).read_bytes(), Loader=yaml.CBaseLoader))


# (advisory file, version, affected?) - expectations worked out by hand from each file.
TABLE = [
    # introduced 0 / fixed 0.23.1, plus a versions list with pre- and post-releases.
    ("scikit-learn/PYSEC-2020-107.yaml", "0.23.0", True),
    ("scikit-learn/PYSEC-2020-107.yaml", "0.23.1", False),
    ("scikit-learn/PYSEC-2020-107.yaml", "0.22.2.post1", True),
    ("scikit-learn/PYSEC-2020-107.yaml", "0.22rc2.post1", True),
    ("scikit-learn/PYSEC-2020-107.yaml", "0.23.0+cpu", True),
    ("scikit-learn/PYSEC-2020-107.yaml", "1.5.0", False),
    # last_affected is inclusive (the only such advisory in the snapshot).
    ("py/PYSEC-2022-42969.yaml", "1.11.0", True),
    ("py/PYSEC-2022-42969.yaml", "1.11.0.post1", False),
    ("py/PYSEC-2022-42969.yaml", "1.11.1", False),
    ("py/PYSEC-2022-42969.yaml", "1.4.7.dev3", True),
    # versions list only, no ranges (a malicious release).
    ("gratient/PYSEC-2024-1.yaml", "0.5", True),
    ("gratient/PYSEC-2024-1.yaml", "0.5.0", True),
    ("gratient/PYSEC-2024-1.yaml", "0.5+local", True),
    ("gratient/PYSEC-2024-1.yaml", "0.4", False),
    ("gratient/PYSEC-2024-1.yaml", "0.5.1", False),
    # three ranges written out of order in one events list.
    ("oslo-middleware/PYSEC-2018-104.yaml", "3.8.0", True),
    ("oslo-middleware/PYSEC-2018-104.yaml", "3.8.1", False),
    ("oslo-middleware/PYSEC-2018-104.yaml", "3.9.0", True),
    ("oslo-middleware/PYSEC-2018-104.yaml", "3.19.1", False),
    ("oslo-middleware/PYSEC-2018-104.yaml", "3.20.0", True),
    ("oslo-middleware/PYSEC-2018-104.yaml", "3.23.1", False),
    # fifteen ranges, release-candidate bounds.
    ("salt/PYSEC-2021-57.yaml", "2015.8.10", False),
    ("salt/PYSEC-2021-57.yaml", "2015.8.12", True),
    ("salt/PYSEC-2021-57.yaml", "2016.3.4", False),
    ("salt/PYSEC-2021-57.yaml", "2016.3.5", True),
    ("salt/PYSEC-2021-57.yaml", "2016.3.6", False),
    ("salt/PYSEC-2021-57.yaml", "2018.3.0b1", False),
    ("salt/PYSEC-2021-57.yaml", "2018.3.0rc1", True),
    ("salt/PYSEC-2021-57.yaml", "2019.2.0b1", True),  # b1 < rc1, the fix
    ("salt/PYSEC-2021-57.yaml", "2019.2.0rc1", False),
    # the versions list says more than the range (fixed: 23.9.0, yet 23.9.0 is listed).
    ("gevent/PYSEC-2023-177.yaml", "23.9.0", True),
    ("gevent/PYSEC-2023-177.yaml", "23.9.0.post1", True),
    ("gevent/PYSEC-2023-177.yaml", "23.9.1", False),
    ("django/PYSEC-2023-61.yaml", "3.2a1", True),  # listed; the range starts at 3.2
    ("django/PYSEC-2023-61.yaml", "3.2.19", False),
    # the range says more than the versions list, which stops at 1.9.1.
    ("torch/PYSEC-2022-43015.yaml", "1.12.0", True),
    ("torch/PYSEC-2022-43015.yaml", "1.13.0+cu117", True),
    ("torch/PYSEC-2022-43015.yaml", "1.13.1", False),
    ("torch/PYSEC-2022-43015.yaml", "2.13.0+cpu", False),
    # two ranges, with a CVSS vector.
    ("werkzeug/PYSEC-2023-221.yaml", "2.3.7", True),
    ("werkzeug/PYSEC-2023-221.yaml", "2.3.8", False),
    ("werkzeug/PYSEC-2023-221.yaml", "3.0.0", True),
    ("werkzeug/PYSEC-2023-221.yaml", "3.0.1", False),
    # non PEP 440 strings in the versions list match exactly (case-insensitively).
    ("paramiko/PYSEC-2022-166.yaml", "0.1-bulbasaur", True),
    ("paramiko/PYSEC-2022-166.yaml", "0.1-Bulbasaur", True),
    ("paramiko/PYSEC-2022-166.yaml", "0.1-pikachu", True),  # legacy: before every release
    ("paramiko/PYSEC-2022-166.yaml", "2.9.3", False),
    ("paramiko/PYSEC-2022-166.yaml", "2.10.0", True),
    # a non PEP 440 fix: legacy order puts it before every release (documented, and warned).
    ("binderhub/PYSEC-2021-371.yaml", "0.1.0", False),
    ("joblib/PYSEC-2022-288.yaml", "1.1.1", True),
    ("joblib/PYSEC-2022-288.yaml", "1.2.0", False),
    ("onnx/PYSEC-2023-38.yaml", "1.12.0", True),
    ("onnx/PYSEC-2023-38.yaml", "1.13.0", False),
]


@pytest.mark.parametrize(("relpath", "version", "expected"), TABLE)
def test_real_advisories(snapshot_vulns: Path, relpath: str, version: str, expected: bool) -> None:
    adv = load(snapshot_vulns, relpath)
    package = relpath.split("/", 1)[0]
    entries = adv.for_package(package)
    assert entries, f"{relpath} has no PyPI entry for {package}"
    assert any(affects(e, version) for e in entries) is expected


def test_non_pep440_range_bound_is_reported_not_dropped(snapshot_vulns: Path) -> None:
    adv = load(snapshot_vulns, "binderhub/PYSEC-2021-371.yaml")
    assert adv.for_package("binderhub")[0].ranges, "the range is kept"
    assert any("0.2.0-n653" in w and "PEP 440" in w for w in adv.warnings)


def test_withdrawn_advisory_is_marked(snapshot_vulns: Path) -> None:
    assert load(snapshot_vulns, "redis/PYSEC-2023-73.yaml").withdrawn == "2023-06-06T10:37:00Z"


def test_git_ranges_are_ignored(snapshot_vulns: Path) -> None:
    adv = load(snapshot_vulns, "binderhub/PYSEC-2021-371.yaml")
    (entry,) = adv.for_package("binderhub")
    assert len(entry.ranges) == 1  # the GIT range (commit hashes) is not kept


def test_legacy_versions_sort_before_pep440_and_never_raise() -> None:
    assert parse_version("0.3m1") < parse_version("0")  # Version("0") is PEP 440
    assert parse_version("2019-09-12") < parse_version("0.0.1")
    assert parse_version("0.1-bulbasaur") < parse_version("0.1-charmander")
    assert not parse_version("a3").is_pep440
    assert exact_key("1.0") == exact_key("1.0.0") == exact_key("1.0+cpu")
    assert exact_key("1.0") != exact_key("1.0.post1")


def test_local_label_is_ignored_for_ranges() -> None:
    entry = AffectedPackage(
        "torch",
        ranges=(
            VersionRange(
                (Event(EventKind.INTRODUCED, "0"), Event(EventKind.LAST_AFFECTED, "2.13.0"))
            ),
        ),
    )
    assert affects(entry, "2.13.0+cpu")
    assert not affects(entry, "2.13.1+cpu")


def test_limit_caps_the_range() -> None:
    entry = AffectedPackage(
        "x",
        ranges=(VersionRange((Event(EventKind.INTRODUCED, "1.0"), Event(EventKind.LIMIT, "2.0"))),),
    )
    assert affects(entry, "1.5")
    assert not affects(entry, "2.0")
    assert not affects(entry, "3.0")


def test_adjacent_ranges_share_their_boundary() -> None:
    events = (
        Event(EventKind.INTRODUCED, "1.0"),
        Event(EventKind.FIXED, "2.0"),
        Event(EventKind.INTRODUCED, "2.0"),
        Event(EventKind.FIXED, "3.0"),
    )
    entry = AffectedPackage("x", ranges=(VersionRange(events),))
    assert affects(entry, "2.0")
    assert not affects(entry, "3.0")


# ---- reachable ranges (unpinned requirements) ----------------------------------------------


@pytest.mark.parametrize(
    ("specifier", "expected"),
    [
        (">=1.19.1", ""),
        (">=1.0", ">=1.0,<1.19.1"),
        ("~=1.18", ">=1.18,<1.19.1"),
        ("==1.19.*", ">=1.19.dev0,<1.19.1"),
        ("<1.0", "<1.0"),
        ("==1.19.1", ""),
        ("==1.19.0", "==1.19.0"),
        ("", "<1.19.1"),
    ],
)
def test_reachable_affected_ranges(specifier: str, expected: str) -> None:
    entry = AffectedPackage(
        "numpy",
        ranges=(
            VersionRange((Event(EventKind.INTRODUCED, "0"), Event(EventKind.FIXED, "1.19.1"))),
        ),
    )
    hit = reachable_affected((specifier,), [entry])
    assert ",".join(iv.describe() for iv in hit) == expected


def test_reachable_counts_listed_versions_outside_ranges(snapshot_vulns: Path) -> None:
    (entry,) = load(snapshot_vulns, "gevent/PYSEC-2023-177.yaml").for_package("gevent")
    hit = reachable_affected((">=23.9",), [entry])
    assert [iv.describe() for iv in hit] == ["==23.9", "==23.9.0.post1"]  # 23.9 == 23.9.0


def test_invalid_specifier_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="invalid version specifier"):
        specifier_intervals(("=>1.0",))


# ---- properties against packaging ------------------------------------------------------------

_release = st.lists(st.integers(0, 4), min_size=1, max_size=3).map(lambda p: ".".join(map(str, p)))
_pre = st.sampled_from(["", "a0", "a1", "b1", "rc1", ".dev0", ".post1", ".post1.dev1"])
versions = st.builds(lambda r, p: r + p, _release, _pre)
bounds = _release  # range bounds: plain releases (the common case in advisories)


def _at_least(v: Version) -> str:
    # `introduced: "0"` means "from the first release" (pre-releases of 0 included).
    return "" if str(v) == "0" else f">={v}"


@st.composite
def osv_ranges(draw: st.DrawFn) -> tuple[list[Event], list[str]]:
    """Events of one range (shuffled) and the PEP 440 specifier sets they mean."""
    points = sorted({Version(v) for v in draw(st.lists(bounds, min_size=1, max_size=6))})
    start_at_zero = draw(st.booleans())
    events: list[Event] = []
    specs: list[str] = []
    i = 0
    if start_at_zero:
        events.append(Event(EventKind.INTRODUCED, "0"))
        low = ""
    else:
        events.append(Event(EventKind.INTRODUCED, str(points[0])))
        low = _at_least(points[0])
        i = 1
    while True:
        if i >= len(points):
            specs.append(low)
            break
        closing = draw(st.sampled_from([EventKind.FIXED, EventKind.LAST_AFFECTED]))
        events.append(Event(closing, str(points[i])))
        op = "<" if closing is EventKind.FIXED else "<="
        specs.append(",".join(s for s in (low, f"{op}{points[i]}") if s))
        i += 1
        if i >= len(points):
            break
        events.append(Event(EventKind.INTRODUCED, str(points[i])))
        low = _at_least(points[i])
        i += 1
    shuffled = draw(st.permutations(events))
    return list(shuffled), specs


def _packaging_says(specs: list[str], listed: list[str], version: str) -> bool:
    v = Version(version)
    return any(SpecifierSet(s).contains(v, prereleases=True) for s in specs) or any(
        SpecifierSet(f"=={x}").contains(v, prereleases=True) for x in listed
    )


def _prerelease_of_exclusive_bound(events: list[Event], version: str) -> bool:
    """PEP 440's `<V` excludes V's own pre-releases; OSV orders them below V (affected)."""
    v = Version(version)
    return v.is_prerelease and any(
        e.kind is EventKind.FIXED
        and Version(Version(e.version).base_version) == Version(v.base_version)
        for e in events
    )


@settings(max_examples=400, deadline=None)
@given(osv_ranges(), st.lists(versions, max_size=3), versions)
def test_matcher_agrees_with_packaging_specifiers(
    rng: tuple[list[Event], list[str]], listed: list[str], version: str
) -> None:
    events, specs = rng
    assume(not _prerelease_of_exclusive_bound(events, version))
    entry = AffectedPackage(
        "pkg",
        ranges=(VersionRange(tuple(events)),),
        versions=tuple(listed),
        version_keys=frozenset(exact_key(x) for x in listed),
    )
    assert affects(entry, version) is _packaging_says(specs, listed, version)


@settings(max_examples=300, deadline=None)
@given(osv_ranges(), st.lists(versions, max_size=3), versions)
def test_intervals_agree_with_the_matcher(
    rng: tuple[list[Event], list[str]], listed: list[str], version: str
) -> None:
    events, _ = rng
    entry = AffectedPackage(
        "pkg",
        ranges=(VersionRange(tuple(events)),),
        versions=tuple(listed),
        version_keys=frozenset(exact_key(x) for x in listed),
    )
    inside = any(iv.contains(candidate(version)) for iv in affected_intervals(entry))
    assert inside is affects(entry, version)


_ops = st.sampled_from(["==", "!=", ">=", "<=", ">", "<", "~=", "==*", "!=*"])


@st.composite
def specifier_sets(draw: st.DrawFn) -> str:
    clauses = []
    for _ in range(draw(st.integers(0, 3))):
        op = draw(_ops)
        if op in ("==*", "!=*"):
            clauses.append(f"{op[:2]}{draw(_release)}.*")
        elif op == "~=":
            clauses.append(f"~={draw(_release)}.0")
        else:
            clauses.append(f"{op}{draw(versions)}")
    return ",".join(clauses)


@settings(max_examples=300, deadline=None)
@given(specifier_sets(), osv_ranges(), st.lists(versions, min_size=1, max_size=8))
def test_reachable_never_misses_an_admitted_affected_version(
    spec: str, rng: tuple[list[Event], list[str]], samples: list[str]
) -> None:
    """Soundness: if packaging admits an affected version, the range analysis finds one."""
    events, _ = rng
    entry = AffectedPackage("pkg", ranges=(VersionRange(tuple(events)),))
    spec_set = SpecifierSet(spec)
    witnesses = [
        v for v in samples if spec_set.contains(Version(v), prereleases=True) and affects(entry, v)
    ]
    if witnesses:
        assert reachable_affected((spec,), [entry]), (spec, witnesses)
