"""Name resolvers nobody listed: the name they are given is judged, and so is calling their result.

Libraries ship many functions that turn a string into any object (``hydra.utils.get_method``,
``werkzeug.utils.import_string``, ``uvicorn.importer.import_from_string``,
``distlib.util.resolve``); ``pickle.load`` runs ``resolver('os:system')('id')`` with only the
resolver imported by name. The fake policy here knows none of them, as the built-in lists
cannot know them all.
"""

from __future__ import annotations

from modelshield.core.findings import Severity
from tests.scanner.pickle.helpers import analyze
from tests.scanner.pickle.hostile import Asm


def _resolver_call(resolver: tuple[str, str], *names: str, command: str = "id") -> bytes:
    """``resolver(*names)(command)``, the resolver imported by STACK_GLOBAL."""
    a = Asm(4).stack_global(*resolver)
    for name in names:
        a.unicode(name)
    a.tuple1() if len(names) == 1 else a.tuple2()
    return a.reduce().unicode(command).tuple1().reduce().stop().bytes()


def test_unlisted_resolver_given_a_colon_name_is_reported_as_the_call_it_makes() -> None:
    # "os:system" does not read like code, so only the name itself can give it away.
    run = analyze(_resolver_call(("uvicorn.importer", "import_from_string"), "os:system"))
    [system] = run.of("PICKLE-CALL-DANGEROUS")
    assert system.evidence["callable"] == "os.system"
    assert system.severity is Severity.CRITICAL
    assert system.evidence["via"] == "uvicorn.importer.import_from_string (resolves a name)"
    assert "'id'" in system.evidence["args"]


def test_unlisted_resolver_given_module_and_name_apart() -> None:
    run = analyze(_resolver_call(("distlib.util", "resolve"), "posix", "system"))
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"os.system"}


def test_dotted_name_with_a_submodule_is_read_both_ways() -> None:
    run = analyze(_resolver_call(("hydra.utils", "get_method"), "subprocess.getoutput"))
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"subprocess.getoutput"}


def test_name_inside_a_config_passed_to_an_unlisted_callable_is_an_import() -> None:
    # hydra.utils.instantiate({'_target_': 'os.system', 'command': 'id'}): the callee calls it.
    a = Asm(4).stack_global("hydra.utils", "instantiate").empty_dict().mark()
    a.unicode("_target_").unicode("os.system").unicode("command").unicode("id").setitems()
    run = analyze(a.tuple1().reduce().stop().bytes())
    [system] = run.of("PICKLE-IMPORT-DANGEROUS")
    assert system.evidence["callable"] == "os.system"


def test_calling_what_an_unlisted_callable_returned_is_high() -> None:
    # The name is computed (rot13 of "os:system"), so it cannot be read; the shape still can.
    a = Asm(4).stack_global("uvicorn.importer", "import_from_string")
    a.stack_global("codecs", "decode").unicode("bf:flfgrz").unicode("rot13").tuple2().reduce()
    run = analyze(a.tuple1().reduce().unicode("id").tuple1().reduce().stop().bytes())
    [finding] = run.of("PICKLE-CALL-RETURNED-OBJECT")
    assert finding.severity is Severity.HIGH
    assert finding.evidence["callable"] == "result of uvicorn.importer.import_from_string"


def test_strings_that_name_nothing_dangerous_stay_unknown() -> None:
    # A custom class built with option names: unknown (medium), not a resolver.
    a = Asm(4).stack_global("my_project.layers", "Block").unicode("torch.nn.ReLU")
    run = analyze(a.unicode("models.block:Block").tuple2().reduce().stop().bytes())
    assert run.rules == ["PICKLE-IMPORT-UNKNOWN"]


def test_calling_what_a_safe_callable_returned_is_not_reported() -> None:
    a = Asm(4).stack_global("collections", "OrderedDict").empty_tuple().reduce()
    run = analyze(a.empty_tuple().reduce().stop().bytes())
    assert "PICKLE-CALL-RETURNED-OBJECT" not in run.rules


def test_template_escaping_its_sandbox_reads_like_code() -> None:
    # jinja2.Template(text).render(): the template reaches os through __globals__.
    text = "{{ lipsum.__globals__['o'~'s'].popen('id').read() }}"
    a = Asm(4).stack_global("jinja2", "Template.render").stack_global("jinja2", "Template")
    run = analyze(a.unicode(text).tuple1().reduce().tuple1().reduce().stop().bytes())
    [finding] = run.of("PICKLE-CALL-CODE-ARGUMENT")
    assert finding.severity is Severity.HIGH
