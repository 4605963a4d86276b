"""Order keys and exact keys agree with packaging's PEP 440 semantics."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_version
from packaging.version import Version

from modelshield.audit.versions import candidate, exact_key, parse_version, public_order

_n = st.integers(0, 12)
pep440 = st.builds(
    lambda e, r, pre, post, dev, loc: (
        (f"{e}!" if e else "")
        + ".".join(map(str, r))
        + (f"{pre[0]}{pre[1]}" if pre else "")
        + (f".post{post}" if post is not None else "")
        + (f".dev{dev}" if dev is not None else "")
        + (f"+{loc}" if loc else "")
    ),
    st.integers(0, 2),
    st.lists(_n, min_size=1, max_size=4),
    st.none() | st.tuples(st.sampled_from(["a", "b", "rc", "alpha", "c", "pre"]), _n),
    st.none() | _n,
    st.none() | _n,
    st.none() | st.from_regex(r"\A[a-z0-9]{1,3}([._-][a-z0-9]{1,3}){0,2}\Z"),
)
legacy = st.text("0123456789.abcxyz-_", min_size=1, max_size=8).filter(
    lambda s: not parse_version(s).is_pep440
)


@settings(max_examples=500, deadline=None)
@given(pep440, pep440)
def test_order_keys_sort_and_compare_as_packaging_does(a: str, b: str) -> None:
    va, vb = Version(a), Version(b)
    ka, kb = parse_version(a).order, parse_version(b).order
    assert (ka < kb) == (va < vb)
    assert (ka == kb) == (va == vb)


@settings(max_examples=300, deadline=None)
@given(legacy, pep440)
def test_legacy_versions_sort_before_every_pep440_version(old: str, new: str) -> None:
    assert parse_version(old).order < parse_version(new).order
    assert parse_version(old) < parse_version(new)


@settings(max_examples=500, deadline=None)
@given(pep440 | legacy)
def test_exact_key_is_packagings_canonical_form(text: str) -> None:
    v = candidate(text).version
    if v is not None:
        assert exact_key(text) == canonicalize_version(v, strip_trailing_zero=True)
    assert public_order(parse_version(text).order) == candidate(text).order


def test_order_key_edge_cases() -> None:
    assert parse_version("1.0").order == parse_version("1.0.0").order
    assert parse_version("1.0.dev1") < parse_version("1.0a1") < parse_version("1.0")
    assert parse_version("1.0") < parse_version("1.0+local") < parse_version("1.0.post1")
    assert parse_version("1.0+abc") < parse_version("1.0+1")  # strings before numbers
    assert parse_version("1." + "9" * 60) > parse_version("1." + "9" * 59)  # long numbers
