"""The policy inside the unpickler: what the scan passes, what the load still refuses, and how a
user admits a reviewed class."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import modelshield
from modelshield.core.errors import ConfigError, LoadRefused
from modelshield.core.findings import Severity
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy, Suppression
from modelshield.loaders import load_model, pickle_loads, restricted_load
from tests.loaders import classes
from tests.scanner.pickle.hostile import Asm

HIGH = Policy(fail_on=Severity.HIGH)
CLASSES_SOURCE = Path(classes.__file__)


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``tests/loaders/classes.py`` importable as ``acme_models``: a module a package-wide
    allow entry can cover (test modules never are)."""
    root = tmp_path / "site"
    root.mkdir()
    shutil.copy(CLASSES_SOURCE, root / "acme_models.py")
    monkeypatch.syspath_prepend(str(root))
    import acme_models

    yield acme_models
    sys.modules.pop("acme_models", None)


WIDE = Policy(allow_callables=("acme_models.*",))


# ---- the scan decides first --------------------------------------------------------------


def test_a_file_the_scan_fails_is_refused_with_the_report(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(Asm(2).call("os", "system", "id").stop().bytes())
    with pytest.raises(LoadRefused) as info:
        modelshield.load(path)
    refused = info.value
    assert refused.stage == "scan"
    assert refused.report is not None and refused.report.results[0].path == str(path)
    assert [f.rule_id for f in refused.findings] == ["PICKLE-CALL-DANGEROUS"]
    assert "PICKLE-CALL-DANGEROUS" in refused.diagnostics()


def test_a_file_not_fully_analysed_is_refused_whatever_fail_on_is(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"w": list(range(100))}))
    small = Policy(fail_on=Severity.CRITICAL, limits=Limits(max_file_bytes=10))
    with pytest.raises(LoadRefused) as info:
        modelshield.load(path, policy=small)
    assert info.value.stage == "scan"
    assert "could not analyse it fully" in info.value.reason
    # A gap the policy accepts is no longer in the way; the unpickler still checks everything
    # (the format of a file that was not read is unknown: the loader must be named).
    accepted = Policy(
        fail_on=Severity.CRITICAL,
        limits=Limits(max_file_bytes=10),
        accept_incomplete=(Suppression("SCAN-FILE-TOO-LARGE", ()),),
    )
    with pytest.raises(LoadRefused, match="no restricted loader"):
        modelshield.load(path, policy=accepted)
    assert modelshield.load(path, policy=accepted, loader="pickle") == {"w": list(range(100))}


def test_a_file_without_a_restricted_loader_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just text\n")
    with pytest.raises(LoadRefused) as info:
        modelshield.load(path)
    assert info.value.stage == "format"
    with pytest.raises(ConfigError):
        modelshield.load(path, loader="tensorflow")


# ---- what the scan lets through, the load still checks ------------------------------------


def test_unknown_callable_passed_by_the_scan_is_refused_with_the_scanners_finding(
    tmp_path: Path,
) -> None:
    """fail_on = high lets an unlisted import through the scan; the unpickler admits only SAFE
    callables and reports it with the scanner's rule id and message."""
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(classes.Plain, protocol=4))
    [scanned] = modelshield.scan(path, HIGH).findings
    with pytest.raises(LoadRefused) as info:
        modelshield.load(path, policy=HIGH)
    assert info.value.stage == "load"
    [refused] = info.value.findings
    assert (refused.rule_id, refused.title, refused.message, refused.severity) == (
        scanned.rule_id,
        scanned.title,
        scanned.message,
        scanned.severity,
    )
    assert refused.evidence["callable"] == "tests.loaders.classes.Plain"
    allowed = Policy(allow_callables=("tests.loaders.classes:Plain",))
    assert modelshield.load(path, policy=allowed) is classes.Plain


def test_a_denied_callable_is_refused_even_when_the_threshold_lets_it_pass(
    tmp_path: Path,
) -> None:
    import collections

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(collections.OrderedDict(a=1), protocol=2))
    policy = Policy(fail_on=Severity.CRITICAL, deny_callables=("collections:OrderedDict",))
    with pytest.raises(LoadRefused) as info:
        modelshield.load(path, policy=policy)
    assert info.value.stage == "load"
    assert info.value.findings[0].rule_id == "PICKLE-IMPORT-DANGEROUS"
    assert "denied by policy" in info.value.findings[0].message


def test_a_safe_name_that_is_a_dangerous_callable_is_refused(
    tmp_path: Path, acme: ModuleType
) -> None:
    """``acme_models.launch`` is ``os.system``: a package-wide allow covers the name, the
    object it resolves to is refused under its own name."""
    path = tmp_path / "model.pkl"
    path.write_bytes(Asm(2).call("acme_models", "launch", "id").stop().bytes())
    with pytest.raises(LoadRefused) as info:
        restricted_load(str(path), "pickle", WIDE)
    [finding] = info.value.findings
    assert finding.rule_id == "PICKLE-IMPORT-DANGEROUS"
    assert finding.evidence["written_as"] == "acme_models.launch"
    assert finding.evidence["callable"] in ("os.system", "posix.system")


def test_a_standard_library_type_under_another_name_is_judged_by_its_own(
    tmp_path: Path, acme: ModuleType
) -> None:
    """``acme_models.Binder`` is ``types.MethodType`` (``builtins:method``), denied."""
    path = tmp_path / "model.pkl"
    path.write_bytes(Asm(2).global_("acme_models", "Binder").stop().bytes())
    with pytest.raises(LoadRefused) as info:
        restricted_load(str(path), "pickle", WIDE)
    [finding] = info.value.findings
    assert finding.rule_id == "PICKLE-IMPORT-DANGEROUS"
    assert (finding.evidence["callable"], finding.evidence["written_as"]) == (
        "builtins.method",
        "acme_models.Binder",
    )


def test_a_safe_name_that_is_a_module_is_refused(tmp_path: Path, acme: ModuleType) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(Asm(2).global_("acme_models", "shell_module").stop().bytes())
    policy = Policy(allow_callables=("acme_models:shell_module",))
    with pytest.raises(LoadRefused) as info:
        restricted_load(str(path), "pickle", policy)
    assert info.value.findings[0].rule_id == "PICKLE-IMPORT-DANGEROUS"
    assert "module os" in info.value.findings[0].message


def test_state_written_onto_an_imported_global_is_refused(tmp_path: Path) -> None:
    """BUILD with slot state would set an attribute on the OrderedDict class itself."""
    path = tmp_path / "model.pkl"
    a = Asm(2).global_("collections", "OrderedDict").none().empty_dict()
    a.unicode("x").unicode("planted").setitem().tuple2().build().stop()
    path.write_bytes(a.bytes())
    with pytest.raises(LoadRefused) as info:
        restricted_load(str(path), "pickle", Policy())
    assert info.value.findings[0].rule_id == "PICKLE-STATE-WRITE-MODULE"
    import collections

    assert not hasattr(collections.OrderedDict, "x")


def test_persistent_ids_are_refused_outside_torch(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(Asm(2).unicode("payload-id").binpersid().stop().bytes())
    with pytest.raises(LoadRefused) as info:
        restricted_load(str(path), "pickle", Policy())
    assert info.value.findings[0].rule_id == "PICKLE-PERSISTENT-ID"


def test_torch_persistent_ids_other_than_storages_are_refused(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from tests.loaders.samples import torch_zip

    payload = Asm(2).unicode("evil").unicode("x").tuple2().binpersid().stop().bytes()
    path = tmp_path / "model.pt"
    path.write_bytes(torch_zip(payload))
    with pytest.raises(LoadRefused) as info:
        restricted_load(str(path), "torch", Policy())
    assert info.value.findings[0].rule_id == "PICKLE-PERSISTENT-ID"
    assert torch.__version__


def test_torchscript_archives_are_refused(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    with pytest.raises(LoadRefused) as info:
        restricted_load(str(path), "torch", Policy())
    assert info.value.stage == "format"


# ---- the sentinel: admitted classes that act on their state -------------------------------


def _sinks(acme: ModuleType, tmp_path: Path) -> dict[str, object]:
    marker = tmp_path / "MARKER"
    return {
        "exec": acme.Execs(f"open({str(marker)!r}, 'w').close()"),
        "file-write": acme.WritesFile(str(marker)),
        "process": acme.Spawns(["touch", str(marker)]),
        "network": acme.Connects(9),
        "swallowed": acme.SwallowsErrors(f"touch {marker}"),
    }


@pytest.mark.parametrize("sink", ["exec", "file-write", "process", "network", "swallowed"])
def test_a_sink_reached_from_an_admitted_class_is_refused(
    tmp_path: Path, acme: ModuleType, sink: str
) -> None:
    obj = _sinks(acme, tmp_path)[sink]
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=4))
    assert modelshield.scan(path, WIDE).findings == ()  # the scan sees only allowed imports
    with pytest.raises(LoadRefused) as info:
        modelshield.load(path, policy=WIDE)
    assert info.value.stage == "load"
    assert info.value.findings[0].rule_id == "LOAD-SINK-BLOCKED"
    assert not (tmp_path / "MARKER").exists()


def test_an_exact_allow_entry_admits_a_class_that_acts_on_its_state(
    tmp_path: Path, acme: ModuleType
) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(acme.WritesFile(str(marker)), protocol=4))
    policy = Policy(allow_callables=("acme_models.*", "acme_models:WritesFile"))
    loaded = modelshield.load(path, policy=policy)
    assert loaded.path == str(marker) and marker.exists()


def test_modules_imported_while_loading_run_their_own_code(
    tmp_path: Path, acme: ModuleType
) -> None:
    """A ``__setstate__`` that imports a module for the first time runs that module's code
    (here a namedtuple, built with ``eval``): installed code, not the file's, so allowed."""
    (tmp_path / "site" / "acme_lazy.py").write_text(
        "import collections\nPoint = collections.namedtuple('Point', 'x y')\n"
    )
    source = (tmp_path / "site" / "acme_models.py").read_text()
    (tmp_path / "site" / "acme_models.py").write_text(
        source
        + "\n\nclass ImportsLazily:\n"
        + "    def __setstate__(self, state):\n"
        + "        import acme_lazy\n"
        + "        self.point = acme_lazy.Point(**state)\n"
    )
    sys.modules.pop("acme_models", None)
    import acme_models

    assert acme_models.ImportsLazily
    path = tmp_path / "model.pkl"
    a = Asm(4).stack_global("acme_models", "ImportsLazily").empty_tuple().newobj()
    a.empty_dict().mark().unicode("x").int1(1).unicode("y").int1(2).setitems().build()
    path.write_bytes(a.stop().bytes())
    sys.modules.pop("acme_lazy", None)
    loaded = modelshield.load(path, policy=WIDE)
    assert tuple(loaded.point) == (1, 2)


def test_a_module_imported_by_name_from_the_state_gets_no_side_effects(
    tmp_path: Path, acme: ModuleType
) -> None:
    """Importing is allowed, but the imported module may only run code and cache it: a module
    that starts a process at import time (``antigravity`` opens a browser) is stopped."""
    marker = tmp_path / "MARKER"
    (tmp_path / "site" / "acme_side_effect.py").write_text(
        f"import subprocess\nsubprocess.run(['touch', {str(marker)!r}])\n"
    )
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(acme.ImportsByName("acme_side_effect"), protocol=4))
    try:
        with pytest.raises(LoadRefused) as info:
            modelshield.load(path, policy=WIDE)
    finally:
        sys.modules.pop("acme_side_effect", None)
    assert info.value.findings[0].evidence["event"] == "subprocess.Popen"
    assert not marker.exists()


# ---- scipy: distributions whose unpickling execs a string from their state ----------------


@pytest.mark.parametrize("frozen", [False, True], ids=["norm", "norm(0,1)"])
def test_scipy_distribution_is_refused_or_loads_its_own_template(
    tmp_path: Path, frozen: bool
) -> None:
    """Under the default policy a pickled ``scipy.stats.norm`` is refused, or loads only with
    the template the library itself ships; a tampered template is always refused."""
    stats = pytest.importorskip("scipy.stats")
    obj = stats.norm(0, 1) if frozen else stats.norm
    dist = obj.dist if frozen else obj
    path = tmp_path / "dist.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=4))
    try:
        loaded = modelshield.load(path)
    except LoadRefused:
        pass
    else:
        loaded_dist = loaded.dist if frozen else loaded
        assert loaded_dist._parse_arg_template == dist._parse_arg_template

    marker = tmp_path / "MARKER"
    tampered = pickle.loads(pickle.dumps(obj, protocol=4))  # harmless: the library's own
    target = tampered.dist if frozen else tampered
    target._parse_arg_template += f"\nopen({str(marker)!r}, 'w').close()\n"
    path.write_bytes(pickle.dumps(tampered, protocol=4))
    with pytest.raises(LoadRefused):
        modelshield.load(path)
    assert not marker.exists()


def test_scipy_distribution_loads_when_allowed_by_exact_name(tmp_path: Path) -> None:
    stats = pytest.importorskip("scipy.stats")
    path = tmp_path / "dist.pkl"
    path.write_bytes(pickle.dumps(stats.norm(0, 1), protocol=4))
    policy = Policy(allow_callables=("scipy.stats._continuous_distns:norm_gen",))
    assert load_model(path, policy=policy).value.cdf(0) == 0.5


# ---- packaging -------------------------------------------------------------------------------


def test_the_package_imports_without_the_ml_libraries() -> None:
    script = (
        "import sys\n"
        "for name in ('torch', 'numpy', 'joblib'):\n"
        "    sys.modules[name] = None\n"
        "import modelshield, modelshield.loaders\n"
        "from modelshield.core.errors import MissingExtraError\n"
        "modelshield.load\n"
        "import pickle\n"
        "try:\n"
        "    modelshield.loaders.torch_load(pickle.dumps([1]))\n"
        "except MissingExtraError as e:\n"
        "    print(e.extra)\n"
        "print(modelshield.loaders.pickle_loads(pickle.dumps([1])))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["torch", "[1]"]


def test_pickle_loads_relabels_the_report(tmp_path: Path) -> None:
    with pytest.raises(LoadRefused) as info:
        pickle_loads(Asm(2).call("os", "system", "id").stop().bytes())
    assert info.value.path == "<bytes>"
    assert info.value.findings[0].location.path == "<bytes>"
