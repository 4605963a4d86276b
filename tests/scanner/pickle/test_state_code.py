"""Classes on the safe list whose load executes part of their state (PICKLE-STATE-CODE).

Every scipy.stats distribution's ``__setstate__`` passes ``_parse_arg_template`` from its state
to ``exec``. The files here start from real scipy pickles and are edited byte by byte; each test
first shows that the real loader runs the edited code (a harmless environment marker), then that
the analyzer reports it, and that real distributions stay clean.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import struct
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from modelshield.core.findings import Severity
from modelshield.scanner.pickle import state_checks
from tests.scanner.pickle.helpers import Run, analyze

stats = pytest.importorskip("scipy.stats")

MARKER = "MODELSHIELD_STATE_CODE_RAN"
PAYLOAD = f"\nimport os\nos.environ[{MARKER!r}] = '1'\n"


@pytest.fixture
def marker() -> Iterator[None]:
    os.environ.pop(MARKER, None)
    yield
    os.environ.pop(MARKER, None)


def _ran() -> bool:
    return os.environ.get(MARKER) == "1"


def _binunicode(text: str) -> bytes:
    data = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(data)) + data


def _with_code(obj: Any, code: str = PAYLOAD) -> bytes:
    """A real pickle of ``obj`` (protocol 2: no frames) with ``code`` after its template."""
    data = pickle.dumps(obj, protocol=2)
    template = getattr(obj, "dist", obj)._parse_arg_template
    original = _binunicode(template)
    assert data.count(original) == 1, "the real pickle no longer holds the template as text"
    return data.replace(original, _binunicode(template + code))


def _load_quietly(data: bytes) -> None:
    """Load with the real unpickler; the edited objects may fail after the code ran."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(Exception):
            pickle.loads(data)


def _state_code(run: Run) -> list[Any]:
    return run.of("PICKLE-STATE-CODE")


# ---- real distributions stay clean ---------------------------------------------------------------
def _real_distributions() -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import RandomizedSearchCV

    search = RandomizedSearchCV(
        LogisticRegression(),
        {"C": stats.loguniform(1e-3, 1e3), "tol": stats.uniform(1e-4, 1e-3)},
        n_iter=2,
    )
    return {
        "norm": stats.norm,
        "frozen norm": stats.norm(1, 2),
        "gamma": stats.gamma,
        "frozen gamma": stats.gamma(2.0, scale=3.0),
        "loguniform": stats.loguniform(1e-3, 1.0),
        "histogram": stats.rv_histogram(([1, 2], [0, 1, 2]), density=False),
        "search": search,
    }


@pytest.mark.parametrize("name", sorted(_real_distributions()))
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_real_distribution_pickles_are_clean(name: str, protocol: int) -> None:
    data = pickle.dumps(_real_distributions()[name], protocol=protocol)
    run = analyze(data, real_policy=True)
    assert run.findings == [], [f.message for f in run.findings]


def test_every_scipy_template_passes_the_check() -> None:
    """The structural check accepts what every distribution of the installed scipy writes."""
    checked = 0
    for name in dir(stats):
        dist = getattr(stats, name)
        template = getattr(dist, "_parse_arg_template", None)
        if isinstance(template, str):
            checked += 1
            assert state_checks._scipy_template_problem(template) is None, name
    assert checked > 100


# ---- code in the template ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "obj", [stats.norm, stats.norm(0, 1), stats.gamma(2.0)], ids=["norm", "frozen", "gamma"]
)
def test_code_in_a_real_distribution_state_runs_and_is_critical(obj: Any, marker: None) -> None:
    data = _with_code(obj)
    _load_quietly(data)
    assert _ran(), "the real loader no longer runs the template: the test shows nothing"
    [finding] = _state_code(analyze(data, real_policy=True))
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["state_key"] == "_parse_arg_template"
    assert MARKER in finding.evidence["code"]
    assert "norm_gen" in finding.evidence["class"] or "gamma_gen" in finding.evidence["class"]


def test_code_in_a_real_distribution_runs_through_joblib_too(marker: None) -> None:
    joblib = pytest.importorskip("joblib")
    data = _with_code(stats.norm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        joblib.load(io.BytesIO(data))
    assert _ran()
    assert _state_code(analyze(data, real_policy=True))


@pytest.mark.parametrize(
    "template",
    [
        "import os",
        "def _parse_args(self, loc=0, scale=1):\n    return __import__('os').getcwd()\n",
        "def _parse_args(self, loc=print('x'), scale=1):\n    return loc, scale\n",
        "@print\ndef _parse_args(self):\n    return self\n",
        "def _parse_args(self, loc=0):\n    return self.__class__\n",
        "def _parse_args_rvs(self, loc=0):\n    return self._argcheck_rvs(open('/etc/passwd'))\n",
        "def evil(self):\n    return 1\n",
        "def _parse_args(self, *a):\n    return a\n",
        "",
        "(" * 300,
        "x" * (state_checks.MAX_TEMPLATE_CHARS + 1),
    ],
)
def test_anything_but_a_template_is_refused(template: str) -> None:
    assert state_checks._scipy_template_problem(template) is not None


# ---- states shaped to slip past a dict check -----------------------------------------------------
def _newobj_build(state_ops: bytes) -> bytes:
    """PROTO 2, NEWOBJ scipy.stats._continuous_distns.norm_gen(), BUILD <state>, STOP."""
    return b"\x80\x02cscipy.stats._continuous_distns\nnorm_gen\n)\x81" + state_ops + b"b."


def _pairs_state(template: str) -> bytes:
    """A list of key/value pairs: ``__dict__.update`` accepts it like a dict."""
    return b"](" + _binunicode("_parse_arg_template") + _binunicode(template) + b"\x86e"


def test_a_list_of_pairs_state_is_checked(marker: None) -> None:
    data = _newobj_build(_pairs_state(stats.norm._parse_arg_template + PAYLOAD))
    _load_quietly(data)
    assert _ran()
    [finding] = _state_code(analyze(data, real_policy=True))
    assert MARKER in finding.evidence["code"]


def test_a_two_key_dict_inside_a_tuple_state_is_checked(marker: None) -> None:
    """``update(({'_parse_arg_template': ..., '<code>': 0},))`` sets the template to the
    second key: the dict's values are not what runs."""
    code = stats.norm._parse_arg_template + PAYLOAD
    state = (
        b"}("
        + _binunicode("_parse_arg_template")
        + _binunicode(stats.norm._parse_arg_template)
        + _binunicode(code)
        + b"K\x00u\x85"
    )
    data = _newobj_build(state)
    _load_quietly(data)
    assert _ran()
    assert _state_code(analyze(data, real_policy=True))


def test_template_bytes_through_codecs_encode_are_checked(marker: None) -> None:
    code = stats.norm._parse_arg_template + PAYLOAD
    value = b"c_codecs\nencode\n(" + _binunicode(code) + _binunicode("latin1") + b"tR"
    data = _newobj_build(b"}(" + _binunicode("_parse_arg_template") + value + b"u")
    _load_quietly(data)
    assert _ran()
    [finding] = _state_code(analyze(data, real_policy=True))
    assert "not the template text" in finding.evidence["problem"]


def test_a_state_computed_while_loading_is_reported_for_a_distribution() -> None:
    """``dict(pairs)`` is an opaque value to a static reader: the keys are unknowable."""
    code = stats.norm._parse_arg_template + PAYLOAD
    value = b"cbuiltins\ndict\n(" + _pairs_state(code) + b"tR"
    data = _newobj_build(value)
    [finding] = _state_code(analyze(data, real_policy=True))
    assert "cannot be checked" in finding.evidence["problem"]


def test_the_key_is_checked_whatever_the_class() -> None:
    """A subclass the lists do not name still executes the key through rv_generic."""
    data = (
        b"\x80\x02cscipy.stats._continuous_distns\nunknown_gen\n)\x81}("
        + _binunicode("_parse_arg_template")
        + _binunicode("import os")
        + b"ub."
    )
    run = analyze(data, real_policy=True)
    assert _state_code(run)
    assert run.of("PICKLE-IMPORT-UNKNOWN")
