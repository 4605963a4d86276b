"""``name==version`` lines read without packaging give what packaging gives."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from modelshield.audit.inputs._common import canonical_name, requirement_dependency
from modelshield.audit.inputs.dependency import Dependency
from modelshield.audit.inputs.requirements import _SIMPLE_PIN
from modelshield.core.findings import Location

LOC = Location("requirements.txt")
names = st.from_regex(r"\A[A-Za-z0-9](?:[A-Za-z0-9._-]{0,8}[A-Za-z0-9])?\Z")
versions = st.from_regex(
    r"\A[0-9]{1,3}(?:\.[0-9]{1,3}){0,4}(?:(?:a|b|rc)[0-9]{1,2})?(?:\.post[0-9]{1,2})?"
    r"(?:\.dev[0-9]{1,2})?(?:\+[a-z0-9]{1,4}(?:\.[a-z0-9]{1,3}){0,2})?\Z"
)


@settings(max_examples=500, deadline=None)
@given(names, versions)
def test_simple_pins_read_as_packaging_reads_them(name: str, version: str) -> None:
    line = f"{name}=={version}"
    match = re.fullmatch(_SIMPLE_PIN, line, re.ASCII)
    assert match is not None
    fast = Dependency(match[1], canonical_name(match[1]), LOC, version=match[2], line=1)
    assert fast == requirement_dependency(Requirement(line), LOC, 1)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=20))
def test_canonical_name_is_pep503(name: str) -> None:
    assert canonical_name(name) == canonicalize_name(name)


def test_other_lines_are_left_to_packaging() -> None:
    for line in ["a===1", "a==1.*", "a[x]==1", "a==1;python_version<'3'", "a==1.0RC1", "a==v1"]:
        assert re.fullmatch(_SIMPLE_PIN, line, re.ASCII) is None, line
