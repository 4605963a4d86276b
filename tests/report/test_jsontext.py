"""The fast indented JSON writer must write exactly what ``json.dumps(indent=2)`` writes."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelshield.report import jsontext

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # lone surrogates and control characters included
)
documents = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_same_text_as_json_dumps(doc: Any) -> None:
    assert jsontext.dumps(doc) == json.dumps(doc, indent=2)


def test_non_finite_floats_and_subclasses() -> None:
    import enum

    class Level(enum.IntEnum):
        HIGH = 3

    doc = {"a": [math.nan, math.inf, -math.inf, 0.1, -0.0], "b": Level.HIGH, "c": True}
    assert jsontext.dumps(doc) == json.dumps(doc, indent=2)
    assert '"b": 3' in jsontext.dumps(doc)


def test_a_real_report_is_byte_identical(tmp_path: Any) -> None:
    from modelshield.core.policy import Policy
    from modelshield.report import json_report
    from modelshield.scanner.engine import scan

    target = tmp_path / "model.pkl"
    # os.system as a global: a finding with evidence, location and metadata to write.
    target.write_bytes(b"\x80\x04cos\nsystem\n\x8c\x02id\x85R.")
    doc = json_report.to_dict(scan(target), policy=Policy())
    assert doc["results"][0]["findings"], "the hostile pickle must give findings"
    assert jsontext.dumps(doc) == json.dumps(doc, indent=2)


@pytest.mark.parametrize("bad", [{1: "int key"}, {"x": {1, 2}}, {"x": object()}])
def test_what_json_cannot_hold_is_a_type_error(bad: Any) -> None:
    with pytest.raises(TypeError):
        jsontext.dumps(bad)
