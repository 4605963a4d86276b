"""The JUnit schema CI systems read, as checks: the constraints of Jenkins' ``junit-10.xsd``
(the xunit plugin's, which GitLab and Azure Pipelines accept too), written out in Python so
that the tests need no XSD engine.

* ``testsuites``: attributes ``name``, ``time`` (a Surefire time), ``tests``, ``failures``,
  ``errors`` and no other; children: ``testsuite`` only;
* ``testsuite``: ``name``, ``tests``, ``failures`` and ``errors`` required, and optionally
  ``group``, ``time``, ``skipped``, ``timestamp``, ``hostname``, ``id``, ``package``,
  ``file``, ``log``, ``url``; children: ``testsuite``, ``properties``, ``testcase``,
  ``system-out``, ``system-err``;
* ``testcase``: ``name`` required, ``time``, ``classname``, ``group``; children:
  ``skipped``, ``error``, ``failure``, the rerun and flaky elements, ``system-out``,
  ``system-err``;
* ``failure``, ``error``, ``skipped``: attributes ``type`` and ``message``, text content;
* ``properties`` > ``property`` with ``name`` and ``value``; ``system-out``/``system-err``:
  text only.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree as ET

SUREFIRE_TIME = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?")

_RESULT = {"attrs": ({"type", "message"}, set()), "children": set(), "text": True}
_TEXT = {"attrs": (set(), set()), "children": set(), "text": True}
_RERUN = {
    "attrs": ({"message", "type"}, {"type"}),
    "children": {"stackTrace", "system-out", "system-err"},
    "text": True,
}
ELEMENTS: dict[str, dict[str, object]] = {
    "testsuites": {
        "attrs": ({"name", "time", "tests", "failures", "errors"}, set()),
        "children": {"testsuite"},
        "text": False,
    },
    "testsuite": {
        "attrs": (
            {
                "name",
                "tests",
                "failures",
                "errors",
                "group",
                "time",
                "skipped",
                "timestamp",
                "hostname",
                "id",
                "package",
                "file",
                "log",
                "url",
            },
            {"name", "tests", "failures", "errors"},
        ),
        "children": {"testsuite", "properties", "testcase", "system-out", "system-err"},
        "text": False,
    },
    "testcase": {
        "attrs": ({"name", "time", "classname", "group"}, {"name"}),
        "children": {
            "skipped",
            "error",
            "failure",
            "rerunFailure",
            "rerunError",
            "flakyFailure",
            "flakyError",
            "system-out",
            "system-err",
        },
        "text": False,
    },
    "failure": _RESULT,
    "error": _RESULT,
    "skipped": _RESULT,
    "properties": {"attrs": (set(), set()), "children": {"property"}, "text": False},
    "property": {"attrs": ({"name", "value"}, {"name", "value"}), "children": set(), "text": False},
    "system-out": _TEXT,
    "system-err": _TEXT,
    "stackTrace": _TEXT,
    "rerunFailure": _RERUN,
    "rerunError": _RERUN,
    "flakyFailure": _RERUN,
    "flakyError": _RERUN,
}


def validate_junit(document: str) -> None:
    """Raise AssertionError, naming the element, unless ``document`` is valid under the
    schema above."""
    root = ET.fromstring(document)
    assert root.tag == "testsuites", f"root element {root.tag!r}"
    _check(root, "testsuites")


def _check(element: ET.Element, where: str) -> None:
    spec = ELEMENTS.get(element.tag)
    assert spec is not None, f"{where}: unknown element {element.tag!r}"
    allowed, required = spec["attrs"]  # type: ignore[misc]
    extra = set(element.attrib) - allowed
    assert not extra, f"{where}: attributes not in the schema: {sorted(extra)}"
    missing = required - set(element.attrib)
    assert not missing, f"{where}: required attributes missing: {sorted(missing)}"
    if element.tag in ("testsuites", "testsuite") and "time" in element.attrib:
        assert SUREFIRE_TIME.fullmatch(element.attrib["time"]), f"{where}: time"
    children = spec["children"]
    if not spec["text"]:
        assert not (element.text or "").strip(), f"{where}: text in an element-only content"
    for child in element:
        assert child.tag in children, f"{where}: {child.tag!r} is not allowed here"  # type: ignore[operator]
        assert not (child.tail or "").strip() or spec["text"], f"{where}: stray text"
        _check(child, f"{where}/{child.tag}")
