"""The allowlist-first callable policy: normalisation, built-in lists, user patterns.

Evidence comes from real files: the published bypass callables (by advisory id), the globals of
the public corpus read statically, and pickles made here by torch, numpy, scikit-learn, joblib,
scipy and the standard library (regenerated on every run, so a library release that writes a new
global fails this file until the global is vetted).
"""

from __future__ import annotations

import _compat_pickle
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelshield.core.errors import ConfigError
from modelshield.core.findings import Severity
from modelshield.scanner import callables
from modelshield.scanner.callables import CallablePolicy, Tier, Verdict, normalize, parse_pattern
from tests.scanner import collect_real_globals as real

CRITICAL_CATEGORIES = {"code-execution", "process", "import-machinery", "ffi"}


@pytest.fixture(scope="module")
def policy() -> CallablePolicy:
    """The built-in lists with no user entries."""
    return CallablePolicy.default()


def _dangerous(verdict: Verdict, at_least: Severity = Severity.HIGH) -> bool:
    return (
        verdict.tier is Tier.DANGEROUS
        and verdict.severity is not None
        and verdict.severity >= at_least
    )


# ---- normalisation -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (("__builtin__", "eval"), ("builtins", "eval")),
        (("exceptions", "ValueError"), ("builtins", "ValueError")),
        (("exceptions", "SomethingNew"), ("builtins", "SomethingNew")),
        (("posix", "system"), ("os", "system")),
        (("nt", "system"), ("os", "system")),
        (("_pickle", "loads"), ("pickle", "loads")),
        (("cPickle", "loads"), ("pickle", "loads")),
        (("pickle", "loads"), ("pickle", "loads")),
        (("_operator", "attrgetter"), ("operator", "attrgetter")),
        (("_io", "FileIO"), ("io", "FileIO")),
        (("_functools", "reduce"), ("functools", "reduce")),
        (("_collections", "OrderedDict"), ("collections", "OrderedDict")),
        (("httplib", "HTTPSConnection"), ("http.client", "HTTPSConnection")),
        (("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")),
        (("cStringIO", "StringIO"), ("io", "StringIO")),
        (("StringIO", "StringIO"), ("io", "StringIO")),
        (("urllib2", "urlopen"), ("urllib.request", "urlopen")),
        (("urllib", "urlopen"), ("urllib.request", "urlopen")),
        (("commands", "getoutput"), ("subprocess", "getoutput")),
        (("__builtin__", "long"), ("builtins", "int")),
        (("__builtin__", "xrange"), ("builtins", "range")),
        (("__builtin__", "reduce"), ("functools", "reduce")),
        (("_codecs", "encode"), ("codecs", "encode")),
        # Kept as they are: their own entries, or no alias at all.
        (("_posixsubprocess", "fork_exec"), ("_posixsubprocess", "fork_exec")),
        (("_thread", "start_new_thread"), ("_thread", "start_new_thread")),
        (("osmosis", "system"), ("osmosis", "system")),
        (("posixpath", "join"), ("posixpath", "join")),
        (("os.path", "join"), ("os.path", "join")),
    ],
)
def test_normalize_maps_aliases_to_one_name(
    raw: tuple[str, str], expected: tuple[str, str]
) -> None:
    assert normalize(*raw) == expected


def test_normalize_mirrors_every_python2_fix_imports_entry() -> None:
    for old, new in _compat_pickle.IMPORT_MAPPING.items():
        assert normalize(old, "SomeName") == (new, "SomeName"), old
    for (old_module, old_name), new in _compat_pickle.NAME_MAPPING.items():
        assert normalize(old_module, old_name) == new, (old_module, old_name)


def test_verdict_reports_the_normalised_names(policy: CallablePolicy) -> None:
    verdict = policy.classify("posix", "system")
    assert (verdict.module, verdict.name) == ("os", "system")
    assert policy.classify("nt", "system") == verdict


# ---- every published bypass callable is dangerous ------------------------------------------------
# (advisory or sample, module, qualname) as pickles write them, from the threat catalogue B1-B3.
PUBLISHED_BYPASSES = [
    ("CVE-2025-1716", "pip", "main"),
    ("malicious14", "runpy", "_run_code"),
    ("malicious15", "bdb", "Bdb.run"),
    ("malicious15-proto2", "bdb", "Bdb"),
    ("POC27", "pdb", "run"),
    ("malicious21", "timeit", "timeit"),
    ("GHSA-49gj-c84q-6qm9", "cProfile", "run"),
    ("GHSA-9w88-8rmg-7g2p", "cProfile", "runctx"),
    ("GHSA-7wx9-6375-f5wh", "profile", "run"),
    ("GHSA-x696-vm39-cp64", "profile", "Profile.run"),
    ("GHSA-6vqj-c2q5-j97w", "profile", "Profile.runctx"),
    ("GHSA-5qwp-399c-mjwf", "trace", "Trace.run"),
    ("GHSA-g344-hcph-8vgg", "trace", "Trace.runctx"),
    ("GHSA-cj3c-v495-4xqh", "code", "InteractiveInterpreter.runcode"),
    ("GHSA-m869-42cg-3xwr", "idlelib.run", "Executive.runcode"),
    ("GHSA-3gf5-cxq9-w223", "idlelib.pyshell", "ModifiedInterpreter.runcode"),
    ("GHSA-j343-8v2j-ff7w", "idlelib.pyshell", "ModifiedInterpreter.runcommand"),
    ("GHSA-3vg9-h568-4w9m", "idlelib.debugobj", "ObjectTreeItem.SetText"),
    ("GHSA-6w4w-5w54-rjvr", "idlelib.autocomplete", "AutoComplete.get_entity"),
    ("GHSA-7cq8-mj8x-j263", "idlelib.autocomplete", "AutoComplete.fetch_completions"),
    ("GHSA-8r4j-24qv-fmq9", "idlelib.calltip", "Calltip.fetch_tip"),
    ("GHSA-9xph-j2h6-g47v", "idlelib.calltip", "get_entity"),
    ("GHSA-p9w7-82w4-7q8m", "lib2to3.pgen2.pgen", "ParserGenerator.make_label"),
    ("GHSA-f54q-57x4-jg88", "lib2to3.pgen2.grammar", "Grammar.loads"),
    ("GHSA-fqq6-7vqf-w3fg", "doctest", "debug_script"),
    ("GHSA-xp4f-hrf8-rxw7", "ensurepip", "_run_pip"),
    ("GHSA-f745-w6jp-hpxx", "torch.utils.collect_env", "run"),
    ("GHSA-jhph-76pp-mggw", "torch.utils.collect_env", "run_and_read_all"),
    ("GHSA-4r9r-ch6f-vxmx", "torch.utils.bottleneck.__main__", "run_cprofile"),
    ("GHSA-4whj-rm5r-c2v8", "torch.utils.bottleneck.__main__", "run_autograd_prof"),
    ("GHSA-86cj-95qr-2p4f", "torch._dynamo.guards", "GuardBuilder.get"),
    (
        "GHSA-f4x7-rfwp-v3xw",
        "torch.fx.experimental.symbolic_shapes",
        "ShapeEnv.evaluate_guards_expression",
    ),
    ("GHSA-vr7h-p6mm-wpmh", "torch.jit.unsupported_tensor_ops", "execWrapper"),
    ("malicious17", "torch._inductor.codecache", "compile_file"),
    ("malicious19", "torch.serialization", "load"),
    ("malicious19-partial", "functools", "partial"),
    ("GHSA-h3qp-7fh3-f8h4", "torch.utils.data.datapipes.utils.decoder", "basichandlers"),
    ("GHSA-vv6j-3g6g-2pvj", "torch.utils._config_module", "ConfigModule.load_config"),
    ("GHSA-r8g5-cgf2-4m4m", "numpy.f2py.crackfortran", "getlincoef"),
    ("GHSA-r8g5-cgf2-4m4m-eval", "numpy.f2py.crackfortran", "_eval_length"),
    ("malicious22", "numpy.testing._private.utils", "runstring"),
    ("GHSA-g38g-8gr9-h9xp-uuid", "uuid", "_get_command_stdout"),
    ("GHSA-g38g-8gr9-h9xp-osx", "_osx_support", "_read_output"),
    ("GHSA-g38g-8gr9-h9xp-osx-build", "_osx_support", "_find_build_tool"),
    ("GHSA-g38g-8gr9-h9xp-aix", "_aix_support", "_read_cmd_output"),
    ("GHSA-g38g-8gr9-h9xp-imaplib", "imaplib", "IMAP4_stream"),
    ("GHSA-g38g-8gr9-h9xp-pyrepl", "_pyrepl.pager", "pipe_pager"),
    ("malicious18", "pydoc", "pipepager"),
    ("GHSA-g38g-8gr9-h9xp-test", "test.support.script_helper", "assert_python_ok"),
    ("malicious20", "venv", "create"),
    ("GHSA-vqmv-47xg-9wpr", "pty", "spawn"),
    ("modelscan-338", "multiprocessing.util", "spawnv_passfds"),
    ("GHSA-m6fh-58r7-x697", "_posixsubprocess", "fork_exec"),
    ("GHSA-q77w-mwjj-7mqx", "asyncio.unix_events", "_UnixSubprocessTransport._start"),
    ("GHSA-6ggj-6f2q-f7mx", "_interpreters", "run_string"),
    ("GHSA-6ggj-6f2q-f7mx-create", "_interpreters", "create"),
    ("GHSA-6ggj-6f2q-f7mx-xx", "_xxsubinterpreters", "run_string"),
    ("types_CodeType", "types", "CodeType"),
    ("types_FunctionType", "types", "FunctionType"),
    ("cloudpickle_codeinjection", "cloudpickle.cloudpickle", "_builtin_type"),
    ("cloudpickle_codeinjection-make", "cloudpickle.cloudpickle", "_make_function"),
    ("cloudpickle-subimport", "cloudpickle.cloudpickle", "subimport"),
    ("GHSA-565g-hwwr-4pp3", "dill._dill", "_create_code"),
    ("dill_func", "dill._dill", "_create_function"),
    ("GHSA-565g-hwwr-4pp3-marshal", "marshal", "loads"),
    ("GHSA-4675-36f9-wf6r", "ctypes", "CDLL"),
    ("POC25", "ctypes", "cast"),
    ("io_FileIO", "_io", "FileIO"),
    ("CVE-2026-56304", "logging", "FileHandler"),
    ("GHSA-m273-6v24-x4m4", "distutils.file_util", "write_file"),
    ("shutil", "shutil", "rmtree"),
    ("POC31", "linecache", "getline"),
    ("urllib_request_urlopen", "urllib.request", "urlopen"),
    ("malicious4", "requests.api", "get"),
    ("malicious5", "aiohttp.client", "ClientSession"),
    ("malicious3", "httplib", "HTTPSConnection"),
    ("malicious7", "socket", "create_connection"),
    ("dns_exfiltration", "ssl", "get_server_certificate"),
    ("POC33", "logging.config", "listen"),
    ("smtplib", "smtplib", "SMTP"),
    ("sqlite3", "sqlite3", "connect"),
    ("POC34", "zipimport", "zipimporter"),
    ("site-pth", "site", "addsitedir"),
    ("atexit", "atexit", "register"),
    ("POC30", "_thread", "start_new_thread"),
    ("webbrowser", "webbrowser", "open"),
    ("pandas-read-csv", "pandas", "read_csv"),
    ("mlflow-projects", "mlflow.projects.backend.local", "_run_entry_point"),
    ("malicious12", "operator", "attrgetter"),
    ("GHSA-46h3-79wf-xr6c", "_operator", "attrgetter"),
    ("GHSA-955r-x9j8-7rhh", "_operator", "methodcaller"),
    ("GHSA-84r2-jw7c-4r5q", "operator", "methodcaller"),
    ("GHSA-84r2-jw7c-4r5q-locate", "pydoc", "locate"),
    ("itemgetter", "operator", "itemgetter"),
    ("GHSA-vvpj-8cmc-gx39", "pkgutil", "resolve_name"),
    ("GHSA-h4rm-mm56-xf63-getattr", "builtins", "getattr"),
    ("GHSA-h4rm-mm56-xf63-import", "builtins", "__import__"),
    ("malicious1_v0", "__builtin__", "eval"),
    ("malicious1_v3", "builtins", "eval"),
    ("malicious10", "__builtin__", "exec"),
    ("malicious0-compile", "__builtin__", "compile"),
    ("malicious0-globals", "__builtin__", "globals"),
    ("malicious0-apply", "__builtin__", "apply"),
    ("malicious2", "posix", "system"),
    ("nt_alias_attack", "nt", "system"),
    ("malicious8", "subprocess", "run"),
    ("memo_attack", "subprocess", "call"),
    ("malicious13a", "pickle", "loads"),
    ("malicious13b", "_pickle", "loads"),
    ("malicious9", "sys", "exit"),
    ("modelscan-330", "numpy", "__builtins__"),
    ("B2-dunder", "builtins", "object.__subclasses__"),
    ("fickling-import-machinery", "importlib", "import_module"),
    ("copyreg-ext", "copyreg", "add_extension"),
    ("numpy.load", "numpy", "load"),
    ("joblib.load", "joblib", "load"),
    ("torch.load", "torch", "load"),
    ("pandas.read_pickle", "pandas", "read_pickle"),
]


@pytest.mark.parametrize(
    ("module", "name"),
    [pytest.param(m, n, id=advisory) for advisory, m, n in PUBLISHED_BYPASSES],
)
def test_published_bypass_callables_are_dangerous(
    policy: CallablePolicy, module: str, name: str
) -> None:
    verdict = policy.classify(module, name)
    assert _dangerous(verdict), verdict
    assert verdict.category in callables.CATEGORIES
    if verdict.category in CRITICAL_CATEGORIES:
        assert verdict.severity is Severity.CRITICAL, verdict
    assert verdict.reason


# ---- the public corpus, read statically ----------------------------------------------------------
def _blob_globals(data: bytes) -> set[tuple[str, str]]:
    if data[:6] == b"\x93NUMPY":  # object-dtype .npy: the pickle follows the header
        data = data[10 + int.from_bytes(data[8:10], "little") :]
    return real.pickle_globals(data, tolerant=True)


def _file_globals(path: Path) -> set[tuple[str, str]]:
    data = path.read_bytes()
    if data[:2] != b"PK":
        return _blob_globals(data)
    found: set[tuple[str, str]] = set()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                try:
                    found |= _blob_globals(archive.read(member))
                except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError):
                    continue  # tampered members (flag bits, bad CRC): the zip reader's job
    except zipfile.BadZipFile:
        pass
    return found


def _corpus_globals(corpus_dir: Path) -> Iterator[tuple[str, str, set[tuple[str, str]]]]:
    for line in (corpus_dir / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["format"] in ("pickle", "pytorch", "zip", "numpy"):
            found = _file_globals(corpus_dir / row["file"])
            if found:
                yield row["file"], row["label"], found


# Malicious samples whose danger is not in any imported name, so no name list can catch them:
# the pickle VM must (BUILD on a module object, then STACK_GLOBAL on the mutated attribute).
NOT_A_NAME_PROBLEM = {"files/picklescan/data/sys_module_override_sploit.pkl"}


def test_every_malicious_corpus_pickle_imports_a_dangerous_callable(
    policy: CallablePolicy, corpus_dir: Path
) -> None:
    checked, missed = 0, []
    for file, label, found in _corpus_globals(corpus_dir):
        if label != "malicious" or file in NOT_A_NAME_PROBLEM:
            continue
        checked += 1
        if not any(_dangerous(policy.classify(m, n)) for m, n in found):
            missed.append((file, sorted(found)))
    assert not missed
    assert checked >= 90  # the static reader found globals in (nearly) every sample


def test_benign_corpus_pickles_import_only_safe_callables(
    policy: CallablePolicy, corpus_dir: Path
) -> None:
    checked = 0
    for file, label, found in _corpus_globals(corpus_dir):
        if label != "benign":
            continue
        checked += 1
        for module, name in found:
            verdict = policy.classify(module, name)
            if module == "__main__":  # a script's own class: unknown, never safe or dangerous
                assert verdict.tier is Tier.UNKNOWN, (file, verdict)
            else:
                assert verdict.tier is Tier.SAFE, (file, verdict)
    assert checked >= 3


# ---- real pickles made by real libraries ---------------------------------------------------------
@pytest.mark.parametrize("library", sorted(real.BUILDERS))
def test_globals_of_real_library_pickles_are_safe(policy: CallablePolicy, library: str) -> None:
    pytest.importorskip(real.REQUIRED_MODULE.get(library, library))
    pickles = real.BUILDERS[library]()
    found: dict[tuple[str, str], str] = {}
    for label, blob in pickles:
        for pair in real.globals_of(label, blob):
            found.setdefault(pair, label)
    assert found, "the builder produced no globals: the static reader is broken"
    not_safe = {
        f"{m}:{n} ({label})": policy.classify(m, n).reason
        for (m, n), label in found.items()
        if policy.classify(m, n).tier is not Tier.SAFE
    }
    assert not not_safe


def test_real_torch_checkpoint_globals_include_the_rebuild_functions() -> None:
    """Guards the test above: the reader really sees what torch writes."""
    pytest.importorskip("torch")
    found = set().union(*(real.globals_of(label, blob) for label, blob in real.torch_pickles()))
    assert ("torch._utils", "_rebuild_tensor_v2") in found
    assert ("collections", "OrderedDict") in found
    assert ("torch.nn.modules.linear", "Linear") in found


# ---- names under the scanned packages ------------------------------------------------------
# (Every safe entry is imported and walked, and re-exports of denied objects are checked, in
# tests/scanner/test_load_paths.py.)
@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("sklearn.datasets._base", "urlretrieve"),
        ("sklearn.datasets", "fetch_openml"),
        ("sklearn.externals.array_api_compat.torch", "load"),
        ("sklearn.utils.discovery", "all_estimators"),
        ("sklearn.utils._set_output", "check_library_installed"),
        ("sklearn.tree", "export_graphviz"),
        ("sklearn.callback._transport", "Client"),
        ("scipy.sparse", "save_npz"),
    ],
)
def test_denied_names_inside_scanned_packages_are_dangerous(
    policy: CallablePolicy, module: str, name: str
) -> None:
    assert _dangerous(policy.classify(module, name))


@pytest.mark.parametrize(
    ("module", "name", "tier"),
    [
        ("sklearn.linear_model._logistic", "LogisticRegression", Tier.SAFE),
        ("sklearn.tree._tree", "Tree", Tier.SAFE),
        ("sklearn.base", "np", Tier.UNKNOWN),  # a module object
        ("sklearn.utils", "os", Tier.DANGEROUS),  # the os module object
        ("sklearn.utils", "_importlib", Tier.UNKNOWN),
        ("sklearn.base", "np.load", Tier.DANGEROUS),  # numpy.load through an attribute
        ("sklearn.base", "BaseEstimator.fit", Tier.UNKNOWN),  # dotted: exact entries only
        ("sklearn.base", "BaseEstimator.__init__", Tier.DANGEROUS),  # .__globals__ next
        ("sklearn.base", "__builtins__", Tier.DANGEROUS),
        ("sklearn.base", "__loader__", Tier.DANGEROUS),
        ("sklearn.mixture", "load", Tier.UNKNOWN),  # a refused name, whatever it is there
        ("sklearn.utils", "all_estimators", Tier.DANGEROUS),  # re-export of a denied function
        ("sklearn.tests.test_base", "T", Tier.UNKNOWN),  # test modules are never covered
        ("sklearn.utils._testing", "assert_run_python_script_without_output", Tier.DANGEROUS),
        ("torch.nn.modules._functions", "dist", Tier.DANGEROUS),  # torch.distributed module
        ("posixpath", "os.system", Tier.DANGEROUS),
        ("torch.nn.modules.linear", "Linear", Tier.SAFE),
        ("torch.nn", "Linear", Tier.UNKNOWN),  # the public alias is not what torch writes
    ],
)
def test_names_under_scanned_packages(
    policy: CallablePolicy, module: str, name: str, tier: Tier
) -> None:
    assert policy.classify(module, name).tier is tier


# ---- specific beats package-wide -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("module", "name", "tier", "severity"),
    [
        ("pathlib", "PosixPath", Tier.SAFE, None),
        ("pathlib", "Path.write_text", Tier.DANGEROUS, Severity.HIGH),
        ("pathlib", "Path", Tier.SAFE, None),
        ("torch._C._nn", "gelu", Tier.SAFE, None),
        ("torch._C", "_jit_pass_inline", Tier.DANGEROUS, Severity.CRITICAL),
        ("torch._C", "Generator", Tier.SAFE, None),
        ("torch.serialization", "_get_layout", Tier.SAFE, None),
        ("torch.serialization", "_legacy_load", Tier.DANGEROUS, Severity.CRITICAL),
        ("torch.storage", "UntypedStorage", Tier.SAFE, None),
        ("torch.storage", "UntypedStorage.from_file", Tier.DANGEROUS, Severity.CRITICAL),
        ("sys", "exit", Tier.DANGEROUS, Severity.HIGH),
        ("sys", "settrace", Tier.DANGEROUS, Severity.CRITICAL),
        ("types", "SimpleNamespace", Tier.SAFE, None),
        ("types", "FunctionType", Tier.DANGEROUS, Severity.CRITICAL),
        ("copyreg", "_reconstructor", Tier.SAFE, None),
        ("copyreg", "add_extension", Tier.DANGEROUS, Severity.CRITICAL),
        ("copyreg", "dispatch_table", Tier.DANGEROUS, Severity.HIGH),
        ("imaplib", "IMAP4", Tier.DANGEROUS, Severity.HIGH),
        ("imaplib", "IMAP4_stream", Tier.DANGEROUS, Severity.CRITICAL),
        ("pydoc", "locate", Tier.DANGEROUS, Severity.CRITICAL),
        ("numpy.random._pickle", "__bit_generator_ctor", Tier.SAFE, None),
    ],
)
def test_specific_entries_beat_package_wide_entries(
    policy: CallablePolicy, module: str, name: str, tier: Tier, severity: Severity | None
) -> None:
    verdict = policy.classify(module, name)
    assert (verdict.tier, verdict.severity) == (tier, severity), verdict


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("asyncio.unix_events", "_UnixSubprocessTransport._start"),
        ("asyncio", "create_subprocess_shell"),
        ("torch.utils.bottleneck.__main__", "run_cprofile"),
        ("aiohttp.client", "ClientSession"),
        ("requests.sessions", "Session"),
        ("multiprocessing.connection", "Client"),
        ("os.path", "join"),
    ],
)
def test_deny_entries_cover_submodules(policy: CallablePolicy, module: str, name: str) -> None:
    assert _dangerous(policy.classify(module, name))


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("bdb", "Bdb.run"),
        ("bdb", "Bdb.run.__call__"),
        ("trace", "Trace.runctx"),
        ("idlelib.pyshell", "ModifiedInterpreter.runcode"),
        ("pydoc", "locate.__call__"),
    ],
)
def test_deny_entries_cover_dotted_attributes(
    policy: CallablePolicy, module: str, name: str
) -> None:
    assert _dangerous(policy.classify(module, name))


@pytest.mark.parametrize(
    ("module", "name", "tier"),
    [
        ("collections", "OrderedDict", Tier.SAFE),
        ("collections", "OrderedDict.fromkeys", Tier.UNKNOWN),
        ("builtins", "object", Tier.SAFE),
        ("builtins", "object.__subclasses__", Tier.DANGEROUS),
        ("builtins", "set.__init__.__globals__", Tier.DANGEROUS),
        ("numpy", "size", Tier.UNKNOWN),  # modelscan #330 gadget: never allowlisted
    ],
)
def test_allow_entries_never_cover_attributes(
    policy: CallablePolicy, module: str, name: str, tier: Tier
) -> None:
    assert policy.classify(module, name).tier is tier


# ---- substring traps -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("builtins", "evaluate"),
        ("builtins", "eval_"),
        ("osmosis", "system"),
        ("oslo_config", "cfg"),
        ("torchvision_utils", "load"),
        ("torch_utils", "run"),
        ("sklearnx", "Estimator"),
        ("subprocessing", "call"),
        ("mypickle", "loads"),
        ("numpyro", "load"),
    ],
)
def test_names_are_never_matched_as_substrings(
    policy: CallablePolicy, module: str, name: str
) -> None:
    verdict = policy.classify(module, name)
    assert verdict.tier is Tier.UNKNOWN, verdict


# ---- verdict shapes ------------------------------------------------------------------------------
def test_safe_verdicts_have_no_severity(policy: CallablePolicy) -> None:
    verdict = policy.classify("torch._utils", "_rebuild_tensor_v2")
    assert verdict.tier is Tier.SAFE
    assert verdict.severity is None
    assert verdict.reason


def test_unknown_verdicts_are_medium_and_say_how_to_allow(policy: CallablePolicy) -> None:
    verdict = policy.classify("__main__", "MyModel")
    assert verdict.tier is Tier.UNKNOWN
    assert verdict.severity is Severity.MEDIUM
    assert verdict.category == "unknown"
    assert '"__main__:MyModel"' in verdict.reason
    assert "[callables]" in verdict.reason


# ---- the user's policy ---------------------------------------------------------------------------
def test_user_deny_beats_everything() -> None:
    policy = CallablePolicy.default(allow=("collections:OrderedDict",), deny=("collections.*",))
    verdict = policy.classify("collections", "OrderedDict")
    assert verdict.tier is Tier.DANGEROUS
    assert verdict.severity is Severity.HIGH
    assert verdict.category == "policy"
    assert "collections.*" in verdict.reason


def test_user_deny_keeps_a_higher_builtin_severity() -> None:
    verdict = CallablePolicy.default(deny=("os:system",)).classify("posix", "system")
    assert verdict.severity is Severity.CRITICAL
    assert verdict.category == "process"


def test_user_deny_of_a_bare_dotted_name_covers_the_callable_and_the_module() -> None:
    policy = CallablePolicy.default(deny=("somelib.unsafe_loader",))
    assert policy.classify("somelib", "unsafe_loader").tier is Tier.DANGEROUS
    assert policy.classify("somelib.unsafe_loader", "helper").tier is Tier.DANGEROUS
    assert policy.classify("somelib.unsafe_loader.sub", "x").tier is Tier.DANGEROUS
    assert policy.classify("somelib", "other").tier is Tier.UNKNOWN


def test_user_deny_of_a_callable_covers_its_attributes() -> None:
    policy = CallablePolicy.default(deny=("mypkg:Loader",))
    assert policy.classify("mypkg", "Loader.load").tier is Tier.DANGEROUS


def test_user_deny_is_normalised_like_pickle_names() -> None:
    policy = CallablePolicy.default(deny=("cPickle:loads", "httplib.*"))
    assert policy.classify("_pickle", "loads").reason.startswith("denied by policy")
    assert policy.classify("http.client", "HTTPConnection").reason.startswith("denied by policy")


def test_user_exact_allow_beats_the_builtin_lists() -> None:
    policy = CallablePolicy.default(allow=("__main__:MyModel", "os:system"))
    assert policy.classify("__main__", "MyModel").tier is Tier.SAFE
    # Exact entries are trusted as written, even for a listed dangerous callable.
    verdict = policy.classify("posix", "system")
    assert verdict.tier is Tier.SAFE
    assert "os:system" in verdict.reason
    assert policy.classify("os", "popen").tier is Tier.DANGEROUS


@pytest.mark.parametrize("pattern", ["os.*", "os:*", "os", "posix.*", "nt"])
def test_a_wildcard_allow_never_whitelists_os_system(pattern: str) -> None:
    verdict = CallablePolicy.default(allow=(pattern,)).classify("posix", "system")
    assert verdict.tier is Tier.DANGEROUS
    assert verdict.severity is Severity.CRITICAL


def test_a_wildcard_allow_makes_unknown_names_safe() -> None:
    policy = CallablePolicy.default(allow=("mypkg.*", "otherpkg.models"))
    assert policy.classify("mypkg", "Net").tier is Tier.SAFE
    assert policy.classify("mypkg.models.vision", "ResNet").tier is Tier.SAFE
    assert policy.classify("otherpkg.models", "Net").tier is Tier.SAFE
    assert policy.classify("otherpkg", "models").tier is Tier.UNKNOWN  # bare allow: module only
    assert policy.classify("mypkgextra", "Net").tier is Tier.UNKNOWN
    assert CallablePolicy.default().classify("mypkg", "Net").tier is Tier.UNKNOWN


@pytest.mark.parametrize(
    ("module", "name", "tier"),
    [
        ("mypkg.models", "os.system", Tier.DANGEROUS),
        ("mypkg.models", "subprocess", Tier.DANGEROUS),
        ("mypkg.models", "Net.__reduce__", Tier.DANGEROUS),
        ("mypkg.models", "Outer.Inner", Tier.UNKNOWN),
        ("mypkg.io", "urlretrieve", Tier.UNKNOWN),
        ("mypkg.io", "listdir", Tier.UNKNOWN),
        ("mypkg.io", "eval", Tier.UNKNOWN),
        ("mypkg.io", "np", Tier.UNKNOWN),
        ("mypkg.tests.test_models", "Net", Tier.UNKNOWN),
        ("mypkg.models", "Net", Tier.SAFE),
    ],
)
def test_a_wildcard_allow_covers_only_plain_names(module: str, name: str, tier: Tier) -> None:
    verdict = CallablePolicy.default(allow=("mypkg.*",)).classify(module, name)
    assert verdict.tier is tier, verdict


def test_a_wildcard_allow_does_not_beat_a_builtin_dangerous_entry_in_its_package() -> None:
    policy = CallablePolicy.default(allow=("torch.*",))
    assert policy.classify("torch", "load").tier is Tier.DANGEROUS
    assert policy.classify("torch.jit", "load").tier is Tier.DANGEROUS
    assert policy.classify("torch", "zeros").tier is Tier.SAFE


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        " os",
        "os ",
        "os:",
        ":system",
        "os::system",
        "os:sys:tem",
        "os:sys*",
        "os.*.path",
        "*",
        "*:system",
        "os:*.x",
        "os system",
        "1os:x",
        "os-x:y",
        "os.:x",
        ".os:x",
        "os:x.",
        "os:x..y",
    ],
)
def test_invalid_patterns_raise_config_error(pattern: str) -> None:
    with pytest.raises(ConfigError):
        parse_pattern(pattern)
    with pytest.raises(ConfigError):
        CallablePolicy.default(allow=(pattern,))
    with pytest.raises(ConfigError):
        CallablePolicy.default(deny=(pattern,))


@pytest.mark.parametrize(
    ("text", "module", "qualname"),
    [
        ("os:system", "os", "system"),
        ("bdb:Bdb.run", "bdb", "Bdb.run"),
        ("os.*", "os", None),
        ("os:*", "os", None),
        ("os", "os", None),
        ("posix:system", "os", "system"),
        (
            "torch.utils.bottleneck.__main__:run_cprofile",
            "torch.utils.bottleneck.__main__",
            "run_cprofile",
        ),
    ],
)
def test_valid_patterns(text: str, module: str, qualname: str | None) -> None:
    pattern = parse_pattern(text)
    assert (pattern.module, pattern.qualname, pattern.text) == (module, qualname, text)


def test_builtin_lists_reject_bare_module_patterns() -> None:
    with pytest.raises(ConfigError):
        parse_pattern("os", bare_module=False)


# ---- the shipped data files ----------------------------------------------------------------------
def test_builtin_lists_ship_inside_the_package_and_parse() -> None:
    from importlib import resources

    data = resources.files("modelshield.scanner").joinpath("data")
    assert data.joinpath("callables_safe.toml").is_file()
    assert data.joinpath("callables_dangerous.toml").is_file()
    lists = callables._builtin_lists()
    assert len(lists.safe.exact) > 200
    assert len(lists.dangerous.wide) > 100
    assert {"system", "urlretrieve", "eval", "load"} <= lists.refused_names


def test_no_pattern_is_both_safe_and_dangerous() -> None:
    lists = callables._builtin_lists()
    assert not set(lists.safe.exact) & set(lists.dangerous.exact)
    assert not set(lists.safe.wide) & set(lists.dangerous.wide)


def test_every_builtin_entry_has_a_reason_and_a_valid_category() -> None:
    lists = callables._builtin_lists()
    for entry in [*lists.dangerous.exact.values(), *lists.dangerous.wide.values()]:
        assert entry.reason and entry.category in callables.CATEGORIES, entry
        assert entry.severity is not None and entry.severity >= Severity.HIGH, entry
    for entry in [*lists.safe.exact.values(), *lists.safe.wide.values()]:
        assert entry.reason and entry.severity is None, entry


def test_malformed_builtin_data_is_refused() -> None:
    good = {"about": "x", "category": "process", "severity": "critical", "entries": {"a:b": "r"}}
    assert callables._build_index("t.toml", {"t": good}, True).exact
    for bad in (
        {**good, "extra": 1},
        {**good, "category": "spooky"},
        {**good, "entries": {"a:b": ""}},
        {**good, "entries": {"a": "bare module"}},
        {**good, "entries": {"a:b": {"reason": "r", "colour": "red"}}},
    ):
        with pytest.raises(RuntimeError):
            callables._build_index("t.toml", {"t": bad}, True)
    with pytest.raises(RuntimeError):
        callables._build_index("t.toml", {"t": good, "u": good}, True)  # listed twice


def test_default_is_cached_per_policy() -> None:
    assert CallablePolicy.default() is CallablePolicy.default()
    assert CallablePolicy.default(("a.*",), ()) is CallablePolicy.default(("a.*",), ())
    assert CallablePolicy.default(("a.*",), ()) is not CallablePolicy.default(("b.*",), ())


def test_classification_is_fast(policy: CallablePolicy) -> None:
    names = [
        ("torch._utils", "_rebuild_tensor_v2"),
        ("sklearn.tree._tree", "Tree"),
        ("posix", "system"),
        ("a.b.c.d.e", "F.g.h"),
        ("__main__", "Net"),
    ]
    start = time.perf_counter()
    for _ in range(4000):
        for module, name in names:
            policy.classify(module, name)
    per_call = (time.perf_counter() - start) / 20000
    assert per_call < 100e-6  # tens of microseconds at worst on a loaded CI machine


def test_hostile_names_are_classified_in_linear_time(policy: CallablePolicy) -> None:
    """Deep paths are judged by their depth, never walked prefix by prefix (quadratic)."""
    start = time.perf_counter()
    chain = policy.classify("posixpath", ".".join(["os", "path"] * 200_000 + ["os", "system"]))
    deep = policy.classify(".".join(["pkg"] * 200_000), "Thing")
    long_name = policy.classify("sklearn.base", "A" * 5_000_000)
    assert time.perf_counter() - start < 2.0
    assert chain.tier is Tier.DANGEROUS and chain.severity is Severity.HIGH
    assert deep.tier is Tier.UNKNOWN
    assert long_name.tier is Tier.UNKNOWN  # no such class: only exact names are safe


def test_legitimate_nesting_depth_is_not_penalised(policy: CallablePolicy) -> None:
    name = ".".join(["Outer"] * (callables.MAX_QUALNAME_DEPTH - 1))
    assert policy.classify("mypkg", name).tier is Tier.UNKNOWN
    assert policy.classify("torch.ao.nn.quantized.dynamic.modules.linear", "Linear").tier is (
        Tier.SAFE
    )


def test_plain_pickled_tensors_rank_their_nested_checkpoint_loader_high(
    policy: CallablePolicy,
) -> None:
    """pickle.dumps(tensor) nests a torch.load of bytes: dangerous, ranked high (not critical)."""
    torch = pytest.importorskip("torch")
    import pickle

    found = real.pickle_globals(pickle.dumps(torch.ones(2)))
    assert ("torch.storage", "_load_from_bytes") in found
    verdict = policy.classify("torch.storage", "_load_from_bytes")
    assert (verdict.tier, verdict.severity, verdict.category) == (
        Tier.DANGEROUS,
        Severity.HIGH,
        "deserialization",
    )


def test_vendored_joblib_wrapper_of_old_scikit_learn_is_safe(policy: CallablePolicy) -> None:
    old = policy.classify("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper")
    assert old.tier is Tier.SAFE
    assert _dangerous(policy.classify("sklearn.externals.joblib.numpy_pickle", "load"))
    assert _dangerous(policy.classify("joblib.numpy_pickle_compat", "NDArrayWrapper"))


# ---- the compiled lists --------------------------------------------------------------------


def test_compiled_lists_are_current() -> None:
    shipped = Path(callables.__file__).with_name("data") / callables.COMPILED_DATA
    assert shipped.read_text(encoding="utf-8") == callables.compiled_data_text(), (
        "src/modelshield/scanner/data/callables.json is stale: run `make docs`"
    )


def test_compiled_lists_equal_the_toml_and_a_changed_toml_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tomllib

    for name in ("callables_safe.toml", "callables_dangerous.toml"):
        toml = tomllib.loads(callables._data_bytes(name).decode("utf-8"))
        assert callables._load_table_file(name) == toml
    # A TOML edited after callables.json was written (another checksum) is parsed itself.
    real = callables._data_bytes

    def edited(name: str) -> bytes:
        data = real(name)
        if name == "callables_safe.toml":
            data += b'\n[late-addition]\nabout = "x"\nentries = { "mypkg:Thing" = "test" }\n'
        return data

    monkeypatch.setattr(callables, "_data_bytes", edited)
    assert "late-addition" in callables._load_table_file("callables_safe.toml")
    assert "late-addition" not in callables._compiled_tables()["callables_safe.toml"][1]


# ---- built-ins ---------------------------------------------------------------------------------
def test_every_builtin_name_is_decided_with_a_reason(policy: CallablePolicy) -> None:
    """``len`` or ``abs`` in a file is no unknown callable; ``getattr`` or ``open`` is no
    safe one. Every name of ``dir(builtins)`` has an entry in one list (dunders are denied by
    the introspection rule)."""
    import builtins

    lists = callables._builtin_lists()
    undecided = []
    for name in dir(builtins):
        verdict = policy.classify("builtins", name)
        listed = ("builtins", name) in lists.safe.exact or (
            "builtins",
            name,
        ) in lists.dangerous.exact
        dunder = name.startswith("__") and name.endswith("__")
        if verdict.tier is Tier.UNKNOWN or not (listed or dunder) or not verdict.reason:
            undecided.append(name)
    assert not undecided


@pytest.mark.parametrize(
    ("name", "tier"),
    [
        ("len", Tier.SAFE),
        ("print", Tier.DANGEROUS),  # a side effect on the loader's output, never pure
        ("abs", Tier.SAFE),
        ("sorted", Tier.SAFE),
        ("ValueError", Tier.SAFE),
        ("getattr", Tier.DANGEROUS),
        ("setattr", Tier.DANGEROUS),
        ("eval", Tier.DANGEROUS),
        ("exec", Tier.DANGEROUS),
        ("compile", Tier.DANGEROUS),
        ("open", Tier.DANGEROUS),
        ("__import__", Tier.DANGEROUS),
        ("globals", Tier.DANGEROUS),
        ("vars", Tier.DANGEROUS),
        ("input", Tier.DANGEROUS),
        ("breakpoint", Tier.DANGEROUS),
        ("help", Tier.DANGEROUS),
        ("license", Tier.DANGEROUS),
        ("__loader__", Tier.DANGEROUS),
        ("function", Tier.DANGEROUS),  # what types.FunctionType reports as its name
        ("code", Tier.DANGEROUS),
    ],
)
def test_builtin_decisions(policy: CallablePolicy, name: str, tier: Tier) -> None:
    assert policy.classify("builtins", name).tier is tier


# ---- classes whose load runs more than a constructor --------------------------------------------
def test_scikit_learn_callback_that_connects_on_load_is_not_safe(policy: CallablePolicy) -> None:
    """ScoringMonitor.__setstate__ connects to the address in its state (a real class)."""
    import pickle

    module = pytest.importorskip("sklearn.callback._scoring_monitor")
    transport = pytest.importorskip("sklearn.callback._transport")
    monitor = module.ScoringMonitor(scoring="accuracy")
    try:
        found = real.pickle_globals(pickle.dumps(monitor, protocol=2))
    finally:
        transport.close_listener(monitor._listener_handle)
    assert ("sklearn.callback._scoring_monitor", "ScoringMonitor") in found
    verdict = policy.classify("sklearn.callback._scoring_monitor", "ScoringMonitor")
    assert verdict.tier is not Tier.SAFE, verdict


def test_no_allow_entry_covers_a_whole_package() -> None:
    """Package-wide allows admitted dataset fetchers, re-exports and future releases' names;
    the lists name classes and functions one by one."""
    lists = callables._builtin_lists()
    assert not lists.safe.wide
    assert len(lists.generated) > 2000
    assert lists.state_keys  # the scipy distributions, whose state is checked
    for text, reason in lists.generated.items():
        module, sep, qualname = text.partition(":")
        assert sep and reason and isinstance(reason, str), text
        assert callables.normalize(module, qualname) == (module, qualname), text
        assert (module, qualname) not in lists.safe.exact, f"{text} is listed by hand too"
        assert not lists.dangerous.attribute_of(module, qualname.split(".")), text
