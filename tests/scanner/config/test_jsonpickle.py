"""jsonpickle documents: what jsonpickle.decode imports and calls."""

from __future__ import annotations

import collections
import datetime
import decimal
import json
from pathlib import Path

import jsonpickle
import pytest

from modelshield.core.findings import Severity
from tests.scanner.formats.conftest import of, scan_bytes


def test_plain_data_written_by_jsonpickle_is_clean(tmp_path: Path) -> None:
    data = {
        "numbers": [1, 2.5],
        "pair": (1, 2),
        "tags": {"a", "b"},
        "when": datetime.date(2024, 1, 2),
        "at": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "amount": decimal.Decimal("1.5"),
        "blob": b"\x00\x01",
        "ordered": collections.OrderedDict(x=1),
    }
    text = jsonpickle.encode(data, keys=True)
    assert "py/" in text
    result = scan_bytes(tmp_path, text.encode(), name="state.json")
    assert result.max_severity is None or result.max_severity < Severity.MEDIUM, result.findings


def test_decode_calls_the_reduce_callable_the_scanner_names(tmp_path: Path) -> None:
    document = {"py/reduce": [{"py/function": "textwrap.dedent"}, {"py/tuple": ["  x"]}]}
    assert (
        jsonpickle.decode(json.dumps(document), keys=True) == "x"
    )  # the default (safe=True) calls it
    found = of(scan_bytes(tmp_path, json.dumps(document).encode()), "JSONPICKLE-OBJECT")
    assert [(f.evidence["callable"], f.severity) for f in found] == [
        ("textwrap.dedent", Severity.MEDIUM)
    ]
    assert "calls" in found[0].message


@pytest.mark.parametrize(
    ("document", "callable_", "severity"),
    [
        ({"py/reduce": [{"py/function": "os.system"}, {"py/tuple": ["id"]}]}, "os.system",
         Severity.CRITICAL),
        ({"py/reduce": [{"py/type": "subprocess.Popen"}, {"py/tuple": [["id"]]}]},
         "subprocess.Popen", Severity.CRITICAL),
        ({"x": {"py/object": "mylib.Model", "py/state": {"a": 1}}}, "mylib.Model",
         Severity.MEDIUM),
        ({"f": {"py/function": "builtins.eval"}}, "builtins.eval", Severity.CRITICAL),
        ({"m": {"py/mod": "os/os.system"}}, "os.system", Severity.CRITICAL),
        ({"m": {"py/mod": "subprocess/subprocess"}}, "subprocess", Severity.CRITICAL),
    ],
)  # fmt: skip
def test_tags_that_import_or_call(
    tmp_path: Path, document: dict[str, object], callable_: str, severity: Severity
) -> None:
    found = of(scan_bytes(tmp_path, json.dumps(document).encode()), "JSONPICKLE-OBJECT")
    assert [(f.evidence["callable"], f.severity) for f in found] == [(callable_, severity)]


def test_py_mod_resolves_as_jsonpickle_does() -> None:
    assert (
        jsonpickle.decode(json.dumps({"py/mod": "textwrap/textwrap.dedent"}), keys=True)("  z")
        == "z"
    )


def test_py_repr_is_eval_in_unsafe_decoders(tmp_path: Path) -> None:
    document = {"py/repr": "os/os.system('id')"}
    found = of(scan_bytes(tmp_path, json.dumps(document).encode()), "JSONPICKLE-OBJECT")
    assert found[0].severity is Severity.HIGH and found[0].evidence["callable"] == "builtins.eval"


def test_pickled_keys_are_analysed(tmp_path: Path) -> None:
    key = "json://" + json.dumps({"py/reduce": [{"py/function": "os.system"}, ["id"]]})
    found = of(scan_bytes(tmp_path, json.dumps({key: 1}).encode()), "JSONPICKLE-OBJECT")
    assert found and found[0].evidence["callable"] == "os.system"
    assert "json://" in found[0].message
