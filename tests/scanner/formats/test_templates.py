"""Jinja chat templates: published templates stay clean, every escape technique is reported.

Templates are parsed with Jinja2's parser and never rendered by the scanner; the benign fixtures
are rendered here, in Jinja's sandbox, only to show that they are working templates.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from modelshield.core.findings import Severity
from modelshield.scanner.templates import analyse_template, looks_like_template
from tests.scanner.formats.conftest import of, published_templates, rules, scan_bytes

LIMIT = 1 << 20
CRITICAL = "TEMPLATE-SANDBOX-ESCAPE"
NAME = "TEMPLATE-DANGEROUS-NAME"
OBFUSCATED = "TEMPLATE-OBFUSCATED-ACCESS"


def issues(template: str) -> dict[str, set[str]]:
    """Rule id -> names found."""
    analysis = analyse_template(template, max_bytes=LIMIT)
    assert analysis.parsed, analysis.problem
    found: dict[str, set[str]] = {}
    for issue in analysis.issues:
        found.setdefault(issue.rule.id, set()).update(issue.names)
    return found


# ---- benign -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(published_templates()))
def test_published_chat_templates_are_clean(name: str) -> None:
    template = published_templates()[name]
    assert issues(template) == {}
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = lambda message: None
    env.filters["tojson"] = lambda value, indent=None: json.dumps(value, indent=indent)
    rendered = env.from_string(template).render(
        messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
        bos_token="<s>",
        eos_token="</s>",
        add_generation_prompt=True,
    )
    assert "hi" in rendered


@pytest.mark.parametrize(
    "template",
    [
        "{%- set ns = namespace(found=false) %}{% set ns.found = true %}{{ ns.found }}",
        "{% for m in messages|selectattr('role', 'equalto', 'user') %}{{ m.content }}{% endfor %}",
        "{{ messages|map(attribute='content')|join('\\n') }}",
        "{% for m in messages[::-1] %}{{ m['content'].split('</think>')[-1] }}{% endfor %}",
        "{{ message[key] ~ '_suffix' }}{{ messages[loop.index0 - 1].role }}",
        "{% generation %}{{ message.content }}{% endgeneration %}",
        "{% for x in range(3) %}{% if x == 1 %}{% break %}{% endif %}{% do y.append(x) %}"
        "{% endfor %}{{ cycler('a', 'b').next() }}",
        "{% if message.role == 'system' %}{{ message.system }}{% endif %}{{ tool.name.lower() }}",
        "{{ '%s: %s' | format(message.role, message.content) }}{{ 'a' * 3 }}",
        "{% macro render(m) %}{{ m.content }}{% endmacro %}{{ render(messages[0]) }}",
    ],
    ids=[
        "namespace",
        "selectattr",
        "map-attribute",
        "reverse-slice-split",
        "computed-key",
        "generation-tag",
        "loop-controls-do-cycler-instance",
        "system-field",
        "format-filter",
        "macro",
    ],
)
def test_idioms_of_real_templates_are_clean(template: str) -> None:
    assert issues(template) == {}


# ---- hostile: each way of reaching Python internals ---------------------------------------

HOSTILE = [
    # (id, template, rule, a name the evidence must list)
    ("dunder-attribute", "{{ ''.__class__.__mro__[1].__subclasses__() }}", CRITICAL, "__mro__"),
    ("cve-2024-34359",
     "{% for c in [].__class__.__base__.__subclasses__() %}{% if c.__name__ == 'catch_warnings' %}"
     "{{ c()._module.__builtins__['__import__']('os').system('id') }}{% endif %}{% endfor %}",
     CRITICAL, "__subclasses__"),
    ("attr-filter", "{{ ''|attr('__class__')|attr('__mro__') }}", CRITICAL, "__class__"),
    ("subscript", "{{ request['application']['__globals__'] }}", CRITICAL, "__globals__"),
    ("hex-escapes", "{{ x['\\x5f\\x5fglobals\\x5f\\x5f'] }}", CRITICAL, "__globals__"),
    ("unicode-escapes", "{{ x|attr('\\u005f\\u005fclass\\u005f\\u005f') }}", CRITICAL, "__class__"),
    ("tilde-join", "{{ x|attr('__cla' ~ 'ss__') }}", CRITICAL, "__class__"),
    ("plus-join", "{{ x['__glo' + 'bals__'] }}", CRITICAL, "__globals__"),
    ("join-filter", "{{ x|attr(['__', 'class', '__']|join) }}", CRITICAL, "__class__"),
    ("str-join-chr",
     "{{ x[''.join([chr(95), chr(95), 'init', chr(95), chr(95)])] }}", CRITICAL, "__init__"),
    ("printf-format", "{{ x|attr('%c%cclass%c%c'|format(95, 95, 95, 95)) }}", CRITICAL,
     "__class__"),
    ("brace-format", "{{ x|attr('{0}{0}class{0}{0}'.format('_')) }}", CRITICAL, "__class__"),
    ("replace", "{{ x|attr('XXclassXX'|replace('X', '_')) }}", CRITICAL, "__class__"),
    ("reverse", "{{ x|attr('__ssalc__'|reverse) }}", CRITICAL, "__class__"),
    ("slice-reverse", "{{ x|attr('__ssalc__'[::-1]) }}", CRITICAL, "__class__"),
    ("multiply", "{{ x|attr('_' * 2 ~ 'class' ~ '_' * 2) }}", CRITICAL, "__class__"),
    ("set-constant", "{% set a = '__cla' %}{% set b = a ~ 'ss__' %}{{ x|attr(b) }}", CRITICAL,
     "__class__"),
    ("map-attribute", "{{ messages|map(attribute='__class__.__mro__')|list }}", CRITICAL,
     "__mro__"),
    ("selectattr", "{{ messages|selectattr('__class__')|list }}", CRITICAL, "__class__"),
    ("map-attr-filter", "{{ messages|map('attr', '__class__')|list }}", CRITICAL, "__class__"),
    ("namespace-write", "{% set ns = namespace() %}{% set ns.__class__ = x %}", CRITICAL,
     "__class__"),
    ("str-format-field", "{{ '{0.__class__.__init__}'.format(x) }}", CRITICAL, "__class__"),
    ("internal-attribute", "{{ f.func_globals }}{{ g.gi_frame.f_globals }}", CRITICAL,
     "f_globals"),
    ("mro-call", "{{ x.mro() }}", CRITICAL, "mro"),
    ("private-attribute", "{{ self._TemplateReference__context }}", CRITICAL,
     "_TemplateReference__context"),
    ("builtins-variable", "{{ __builtins__.open('/etc/passwd').read() }}", CRITICAL,
     "__builtins__"),
    ("os-variable", "{{ os.popen('id').read() }}", NAME, "os"),
    ("getattr-variable", "{{ getattr(x, 'y') }}", NAME, "getattr"),
    ("called-popen", "{{ x.y.popen('id') }}", NAME, "popen"),
    ("environ", "{{ x.y.environ }}", NAME, "environ"),
    ("cycler-attribute", "{{ cycler.next }}", NAME, "cycler"),
    ("joiner-attribute", "{{ joiner.x }}", NAME, "joiner"),
    ("lipsum-attribute", "{{ lipsum.y }}", NAME, "lipsum"),
    ("namespace-attribute", "{{ namespace.z }}", NAME, "namespace"),
    ("global-as-text", "{{ (lipsum|string)[18] }}", NAME, "lipsum"),
    ("chr-variable", "{{ chr(x) }}", NAME, "chr"),
    ("char-codes", "{% for c in codes %}{{ '%c'|format(c) }}{% endfor %}", OBFUSCATED, "'%c'"),
    ("string-naming-internal", "{{ something('__subclasses__') }}", NAME, "__subclasses__"),
    ("include", "{% include '/etc/passwd' %}", NAME, "include"),
    ("import", "{% import 'macros.j2' as m %}", NAME, "import"),
    ("extends", "{% extends 'base.j2' %}", NAME, "extends"),
    ("attr-computed", "{{ x|attr(messages[0].content) }}", OBFUSCATED, "a computed name"),
    ("subscript-pieces", "{{ x['__' ~ message.content ~ '__'] }}", OBFUSCATED, "'__'"),
    ("built-name", "{% set n = '__glo' ~ 'bals__' %}", OBFUSCATED, "__globals__"),
    ("built-format-field", "{{ ('{0._' ~ '_class__}').format(x) }}", CRITICAL, "__class__"),
    ("computed-format", "{{ message.content.format(x) }}", OBFUSCATED, ".format()"),
    ("loop-built-key",
     "{% set ns = namespace(s='') %}{% for c in ['_', '_', 'cl', 'ass', '_', '_'] %}"
     "{% set ns.s = ns.s ~ c %}{% endfor %}{{ x[ns.s] }}", OBFUSCATED, "'__class__'"),
    ("variable-built-key",
     "{% set k = '' %}{% for p in ['__glo', 'bals__'] %}{% set k = k ~ p %}{% endfor %}"
     "{{ x[k] }}", OBFUSCATED, "'__globals__'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("template", "rule", "name"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_each_escape_technique_is_reported(template: str, rule: str, name: str) -> None:
    found = issues(template)
    assert rule in found, found
    assert name in found[rule], found


def test_the_evidence_is_the_offending_expression_and_its_line() -> None:
    template = "{% for m in messages %}\n{{ m.content }}\n{{ cycler.__init__.__globals__.os }}"
    template += "{% endfor %}"
    (issue,) = [
        i for i in analyse_template(template, max_bytes=LIMIT).issues if i.rule.id == CRITICAL
    ]
    assert issue.expression == "cycler.__init__.__globals__.os"
    assert issue.line == 3
    assert issue.severity is Severity.CRITICAL


def test_folding_is_bounded() -> None:
    # Folding never builds a string larger than it can check, nor recurses without end.
    started = time.monotonic()
    found = issues("{{ x|attr('_' * 1000000000) }}{{ x|attr(" + "'a' + " * 5000 + "'b') }}")
    assert time.monotonic() - started < 5
    assert found == {OBFUSCATED: {"a computed name"}}


def test_unparseable_template_is_searched_as_text() -> None:
    analysis = analyse_template("{{ x.__class__.__mro__ ", max_bytes=LIMIT)
    assert not analysis.parsed
    assert "__class__" in analysis.text_hits


def test_deep_nesting_does_not_crash_the_parser() -> None:
    analysis = analyse_template(
        "{{ " + "(" * 100_000 + "1" + ")" * 100_000 + " }}", max_bytes=LIMIT
    )
    assert not analysis.parsed
    chain = analyse_template("{{ x" + ".a" * 200_000 + ".__class__ }}", max_bytes=1 << 30)
    assert chain.parsed
    assert any(i.rule.id == CRITICAL for i in chain.issues)


def test_looks_like_template() -> None:
    assert looks_like_template("{{ x }}")
    assert looks_like_template("{% if x %}y{% endif %}")
    assert not looks_like_template("plain {text} with braces")


# ---- through the scanner: where templates are found, and how severe -----------------------

PAYLOAD = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"


def _tokenizer_config(template: object, key: str = "chat_template") -> bytes:
    return json.dumps({"bos_token": "<s>", key: template, "model_max_length": 4096}).encode()


def test_chat_template_in_a_tokenizer_config_is_critical(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, _tokenizer_config(PAYLOAD), "config.txt")
    assert result.format == "json"
    [finding] = of(result, CRITICAL)
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["template"] == "JSON key 'chat_template'"
    assert "__globals__" in finding.evidence["names"]


def test_named_templates_in_the_list_form_are_rendered_templates(tmp_path: Path) -> None:
    templates = [
        {"name": "default", "template": "{{ m }}"},
        {"name": "tool_use", "template": PAYLOAD},
    ]
    result = scan_bytes(tmp_path, _tokenizer_config(templates))
    [finding] = of(result, CRITICAL)
    assert finding.severity is Severity.CRITICAL
    assert "chat_template[1].template" in finding.evidence["template"]


def test_template_under_another_key_is_medium(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, _tokenizer_config(PAYLOAD, key="custom_chat_template"))
    assert {f.severity for f in result.findings} == {Severity.MEDIUM}
    assert CRITICAL in rules(result)


@pytest.mark.parametrize("name", sorted(published_templates()))
def test_published_templates_in_every_container_are_clean(tmp_path: Path, name: str) -> None:
    template = published_templates()[name]
    assert scan_bytes(tmp_path, _tokenizer_config(template), "tokenizer_config.json").findings == ()
    assert scan_bytes(tmp_path, template.encode(), "chat_template.jinja").findings == ()
    chat = json.dumps({"chat_template": template}).encode()
    assert scan_bytes(tmp_path, chat, "chat_template.json").findings == ()


def test_standalone_template_file_is_recognised_by_content(tmp_path: Path) -> None:
    text = "{% for m in messages %}{{ m.content }}{% endfor %}\n" + PAYLOAD
    result = scan_bytes(tmp_path, text.encode(), "notes.txt")
    assert result.format == "jinja-template"
    assert of(result, CRITICAL)[0].severity is Severity.CRITICAL


def test_unparseable_chat_template_is_low_or_medium(tmp_path: Path) -> None:
    low = scan_bytes(tmp_path, _tokenizer_config("{{ unclosed"))
    assert [f.severity for f in of(low, "TEMPLATE-UNPARSEABLE")] == [Severity.LOW]
    medium = scan_bytes(tmp_path, _tokenizer_config("{{ x.__globals__ "))
    assert [f.severity for f in of(medium, "TEMPLATE-UNPARSEABLE")] == [Severity.MEDIUM]


def test_text_that_is_no_template_is_not_reported(tmp_path: Path) -> None:
    # A Go template (Ollama) or a Python f-string holds {{ but does not parse as Jinja.
    text = b'TEMPLATE """{{ if .System }}{{ .System }}{{ end }}"""\nprint(f"{{x}}")\n'
    result = scan_bytes(tmp_path, text, "Modelfile")
    assert result.format == "jinja-template"
    assert result.findings == ()


def test_template_above_the_size_limit_is_searched_and_incomplete(tmp_path: Path) -> None:
    template = "{{ messages }}" + "A" * 4_000_000 + PAYLOAD
    result = scan_bytes(tmp_path, _tokenizer_config(template))
    assert "SCAN-LIMIT" in rules(result)
    assert result.status == "incomplete"
    assert of(result, CRITICAL)[0].severity is Severity.HIGH
    # Raising the limit parses it.
    full = scan_bytes(tmp_path, _tokenizer_config(template), max_template_bytes=8 << 20)
    assert "SCAN-LIMIT" not in rules(full)
    assert of(full, CRITICAL)[0].severity is Severity.CRITICAL


def test_jinja2_is_imported_only_when_a_template_is_met(tmp_path: Path) -> None:
    plain = tmp_path / "m.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}))
    config = tmp_path / "tokenizer_config.json"
    config.write_bytes(_tokenizer_config("{{ m }}"))
    code = (
        "import sys; from modelshield.scanner.engine import scan_file; "
        "from modelshield.core.policy import Policy; "
        "scan_file(sys.argv[1], Policy()); print('jinja2' in sys.modules)"
    )
    seen = [
        subprocess.run(
            [sys.executable, "-c", code, str(p)], capture_output=True, text=True, check=True
        ).stdout.strip()
        for p in (plain, config)
    ]
    assert seen == ["False", "True"]
