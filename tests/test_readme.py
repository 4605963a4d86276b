"""The README and docs/json-output.md examples run, and the documented options exist."""

from __future__ import annotations

import json
import pickle
import re
import shlex
import tomllib
from pathlib import Path

import jsonschema
import pytest

from modelshield.cli import build_parser
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy
from modelshield.report.json_report import schema
from tests.cli.conftest import run_cli

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
JSON_DOC = (REPO / "docs" / "json-output.md").read_text(encoding="utf-8")


def blocks(text: str, lang: str) -> list[str]:
    """The fenced code blocks of one language."""
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def cli_examples() -> list[list[str]]:
    commands = []
    for block in blocks(README, "bash"):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "modelshield":
                commands.append(words[1:])
    return commands


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory with the files the examples name, and the README's policy file."""
    (tmp_path / "models").mkdir()
    data = pickle.dumps({"weights": [0.1, 0.2]}, protocol=4)
    for name in ("model.pt", "model.pkl", "models/a.pkl", "models/b.pkl"):
        (tmp_path / name).write_bytes(data)
    (tmp_path / "modelshield.toml").write_text(blocks(README, "toml")[0], encoding="utf-8")
    return tmp_path


def test_there_are_cli_examples() -> None:
    assert len(cli_examples()) >= 4


@pytest.mark.parametrize("args", cli_examples(), ids=" ".join)
def test_readme_cli_example_runs(args: list[str], workdir: Path) -> None:
    run = run_cli(*args, cwd=workdir)
    assert run.code == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("index", range(len(blocks(README, "python"))))
def test_readme_python_example_runs(
    index: int, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)
    namespace: dict[str, object] = {}
    code = compile(blocks(README, "python")[index], f"README.md[python {index}]", "exec")
    exec(code, namespace)


def test_policy_examples_are_valid_policies() -> None:
    examples = blocks(README, "toml") + blocks(JSON_DOC, "toml")
    assert len(examples) >= 3  # every toml block of the docs is checked
    for text in examples:
        Policy.from_mapping(tomllib.loads(text))


@pytest.mark.parametrize(
    ("command", "section"),
    [
        (
            "scan",
            README[
                README.index("## Quick start: command line") : README.index(
                    "## Quick start: Python"
                )
            ],
        ),
        ("assess", README[README.index("## Assessing a model") : README.index("## Limits")]),
    ],
    ids=["scan", "assess"],
)
def test_documented_options_are_the_real_ones(command: str, section: str) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    chosen = sub.choices[command]  # type: ignore[index]
    real = {s for a in chosen._actions for s in a.option_strings if s.startswith("--")}
    documented = set(re.findall(r"^\| `(--[a-z-]+)", section, flags=re.MULTILINE))
    assert documented == real - {"--help"}


THREAT_MODEL = (REPO / "docs" / "threat-model.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "section",
    [
        README[README.index("## Limits") : README.index("## Security model")],
        THREAT_MODEL[THREAT_MODEL.index("### The limits") : THREAT_MODEL.index("## Assumptions")],
    ],
    ids=["README", "threat-model"],
)
def test_every_limit_is_documented_with_its_default(section: str) -> None:
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", section, flags=re.MULTILINE))
    units = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
    defaults = Limits()
    for name in Limits.__struct_fields__:
        assert name in rows, name
        number, _, unit = rows[name].strip().partition(" ")
        value = float(number.replace(",", "")) * units.get(unit, 1)
        assert value == getattr(defaults, name), name


def test_json_doc_example_validates() -> None:
    (example,) = blocks(JSON_DOC, "json")
    jsonschema.Draft202012Validator(schema()).validate(json.loads(example))


def test_json_doc_names_every_schema_key() -> None:
    def keys(node: object) -> set[str]:
        found: set[str] = set()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "properties" and isinstance(value, dict):
                    found |= set(value)
                found |= keys(value)
        elif isinstance(node, list):
            for item in node:
                found |= keys(item)
        return found

    missing = {k for k in keys(schema()) if f"`{k}`" not in JSON_DOC}
    assert not missing


def test_rule_ids_in_the_examples_exist() -> None:
    from modelshield.core.rules import load_all_rules

    known = {rule.id for rule in load_all_rules()}
    examples = "\n".join(blocks(README, "toml") + blocks(README, "bash") + blocks(JSON_DOC, "toml"))
    named = set(re.findall(r"\b[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+\b", examples))
    assert named, "the examples should show rule ids"
    assert named <= known, sorted(named - known)


DOCUMENTS = sorted(
    [
        *(REPO / name for name in ("README.md", "CONTRIBUTING.md", "ARCHITECTURE.md")),
        REPO / "CHANGELOG.md",
        *(REPO / "docs").glob("*.md"),
    ]
)


def _anchors(text: str) -> set[str]:
    """The anchors GitHub gives a document's headings."""
    anchors = set()
    for title in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


@pytest.mark.parametrize("document", DOCUMENTS, ids=[d.name for d in DOCUMENTS])
def test_relative_links_and_anchors_resolve(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        assert linked.exists(), f"{document.name}: {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked.read_text(encoding="utf-8")), (document.name, target)


def test_architecture_names_only_modules_that_exist() -> None:
    """Every ``name.py`` or ``package/name.py`` ARCHITECTURE.md names is a real file."""
    text = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([\w/]+\.py)`", text))
    assert len(named) > 10
    real = [p.relative_to(REPO).as_posix() for p in (REPO / "src").rglob("*.py")]
    real += [p.relative_to(REPO).as_posix() for p in (REPO / "tests").rglob("*.py")]
    missing = sorted(n for n in named if not any(r == n or r.endswith(f"/{n}") for r in real))
    assert not missing


def test_every_assess_setting_is_documented() -> None:
    from modelshield.core.assess_settings import AssessSettings

    readme = README[README.index("## Assessing a model") : README.index("## Limits")]
    for name in AssessSettings.__struct_fields__:
        assert f"`{name}`" in readme, name
        assert f"`assess.{name}`" in JSON_DOC, name


def test_the_threat_model_lists_every_gap_rule() -> None:
    """The rules that make a file "not fully analysed" are the catalogue's incomplete ones."""
    from modelshield.core.rules import load_all_rules

    section = THREAT_MODEL[THREAT_MODEL.index('## "Not fully analysed"') :]
    section = section[: section.index("* The file's status")]
    listed = set(re.findall(r"`([A-Z0-9]+(?:-[A-Z0-9]+)+)`", section))
    incomplete = {rule.id for rule in load_all_rules() if rule.incomplete}
    assert listed == incomplete
