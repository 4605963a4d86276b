"""What the search of a directory reads: .gitignore as git reads it (checked against ``git
check-ignore`` itself), the default skip list, exclude patterns, and never a file git tracks
left out by an ignore rule."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from modelshield.core.policy import Policy
from modelshield.scanner.discovery import Discovery, ExcludedLog, walk
from modelshield.scanner.engine import scan_paths

GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="git is not installed")


def git(repo: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.org",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.org",
    )
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, input=stdin, capture_output=True, check=False
    )


def make_files(root: Path, names: list[str]) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def found(root: Path, rules: Discovery | None = None) -> tuple[set[str], ExcludedLog]:
    log = ExcludedLog()
    names = set()
    for path, problem in walk(str(root), rules, log):
        assert problem is None, (path, problem)
        names.add(Path(path).relative_to(root).as_posix())
    return names, log


# Patterns that exercise git's rules: anchoring, directory-only patterns, negation (and the
# rule that a file in an excluded directory cannot be re-included), "**", character classes,
# escapes, trailing spaces, nested files that override their parents, info/exclude.
ROOT_IGNORE = """\
# build output
*.tmp
!keep.tmp
/only-top.txt
build/
logs/**/*.log
data/raw/*
!data/raw/keep/
**/cache-*/
[abc].bin
\\#hash.txt
trailing.txt\x20\x20\x20
doc/*.md
!doc/README.md
excluded-dir/
!excluded-dir/back.txt
"""
SUB_IGNORE = """\
!*.tmp
local.txt
/anchored.txt
"""
FILES = [
    "a.tmp",
    "keep.tmp",
    "sub/b.tmp",
    "sub/local.txt",
    "sub/deeper/local.txt",
    "sub/anchored.txt",
    "sub/deeper/anchored.txt",
    "only-top.txt",
    "nested/only-top.txt",
    "build/out.bin",
    "nested/build/out.bin",
    "build.txt",
    "logs/a/b/c.log",
    "logs/c.log",
    "logs/c.txt",
    "data/raw/x.csv",
    "data/raw/keep/y.csv",
    "data/clean.csv",
    "x/cache-1/z.pt",
    "a.bin",
    "d.bin",
    "#hash.txt",
    "trailing.txt",
    "doc/guide.md",
    "doc/README.md",
    "doc/sub/deep.md",
    "excluded-dir/back.txt",
    "excluded-dir/other.txt",
    "info-excluded.dat",
    "models/model.pt",
]


@needs_git
def test_gitignore_matches_git_check_ignore(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    assert git(repo, "init", "-q").returncode == 0
    make_files(repo, FILES)
    (repo / ".gitignore").write_text(ROOT_IGNORE)
    (repo / "sub" / ".gitignore").write_text(SUB_IGNORE)
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text("*.dat\n")
    every = [
        Path(d, f).relative_to(repo).as_posix()
        for d, dirs, files in os.walk(repo)
        if ".git" not in Path(d).relative_to(repo).parts
        for f in files
    ]
    asked = git(repo, "check-ignore", "--stdin", "-z", stdin="\0".join(every).encode())
    assert asked.returncode in (0, 1), asked.stderr
    ignored = {p for p in asked.stdout.decode().split("\0") if p}
    assert {"a.tmp", "build/out.bin", "sub/local.txt", "info-excluded.dat"} <= ignored
    assert "keep.tmp" not in ignored  # the test exercises both directions

    names, log = found(repo)
    assert names == set(every) - ignored
    assert all(e.reason in {"gitignore", "default"} for e in log.listed)
    why = {Path(e.path).relative_to(repo).as_posix(): e.pattern for e in log.listed}
    assert why["build"] == ".gitignore:5: build/"
    assert why["sub/local.txt"] == "sub/.gitignore:2: local.txt"
    assert why[".git"] == ".git"


@needs_git
def test_a_tracked_file_is_read_whatever_ignores_it(tmp_path: Path) -> None:
    """A pickle force-added under an ignored name, or into __pycache__, ships with the
    repository: the scan must see it. Untracked files beside it stay left out."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    make_files(
        repo,
        [
            "models/evil.pkl",
            "models/scratch.pkl",
            "build/evil.pt",
            "build/untracked.pt",
            "pkg/__pycache__/mod.cpython-311.pyc",
            "pkg/__pycache__/stale.pyc",
            "ok.txt",
        ],
    )
    (repo / ".gitignore").write_text("*.pkl\nbuild/\n")
    add = git(
        repo, "add", "-f", "models/evil.pkl", "build/evil.pt", "pkg/__pycache__/mod.cpython-311.pyc"
    )
    assert add.returncode == 0, add.stderr
    names, log = found(repo)
    assert names == {
        ".gitignore",
        "ok.txt",
        "models/evil.pkl",
        "build/evil.pt",
        "pkg/__pycache__/mod.cpython-311.pyc",
    }
    left = {Path(e.path).relative_to(repo).as_posix(): e.reason for e in log.listed}
    assert left["models/scratch.pkl"] == "gitignore"
    assert left["build/untracked.pt"] == "gitignore"
    assert left["pkg/__pycache__/stale.pyc"] == "default"


@needs_git
def test_without_git_to_ask_ignore_files_are_not_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Git says which files it tracks; without that, a tracked file might be left out, so
    nothing is left out as ignored (the default skip list still applies)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    make_files(repo, ["a.pkl", "b.txt", ".venv/lib/x.py"])
    (repo / ".gitignore").write_text("*.pkl\n")
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    names, _ = found(repo)
    assert names == {".gitignore", "a.pkl", "b.txt"}


def test_default_directories_are_left_out_unless_named(tmp_path: Path) -> None:
    make_files(
        tmp_path,
        [
            "models/m.pt",
            ".venv/lib/site.py",
            "env/pyvenv.cfg",
            "env/lib/x.py",
            "node_modules/p/index.js",
            "src/__pycache__/a.pyc",
            ".pytest_cache/v",
            ".git/HEAD",
        ],
    )
    names, log = found(tmp_path)
    assert names == {"models/m.pt"}
    assert {Path(e.path).name for e in log.listed} == {
        ".venv",
        "env",
        "node_modules",
        "__pycache__",
        ".pytest_cache",
        ".git",
    }
    assert {e.reason for e in log.listed} == {"default"}
    named, _ = found(tmp_path / ".venv")
    assert named == {"lib/site.py"}


def test_exclude_patterns_are_relative_to_their_base(tmp_path: Path) -> None:
    make_files(tmp_path, ["models/a.pt", "models/tmp/b.pt", "other/models/tmp/c.pt", "x.bak"])
    rules = Discovery(exclude=((str(tmp_path), "/models/tmp/"), (str(tmp_path), "*.bak")))
    names, log = found(tmp_path, rules)
    assert names == {"models/a.pt", "other/models/tmp/c.pt"}
    assert {(e.reason, e.pattern) for e in log.listed} == {
        ("exclude", "/models/tmp/"),
        ("exclude", "*.bak"),
    }
    # A pattern given for another directory does not reach outside it.
    elsewhere = Discovery(exclude=((str(tmp_path / "other"), "*.pt"),))
    assert found(tmp_path / "models", elsewhere)[0] == {"a.pt", "tmp/b.pt"}


def test_policy_excludes_are_relative_to_the_policy_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    make_files(project, ["models/a.pt", "models/scratch/b.pt"])
    (project / "modelshield.toml").write_text('exclude = ["/models/scratch/"]\n')
    policy = Policy.from_file(project / "modelshield.toml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    report = scan_paths([os.path.relpath(project / "models")], policy)
    assert [Path(r.path).name for r in report.results] == ["a.pt"]
    assert [Path(e.path).name for e in report.excluded] == ["scratch"]
    assert report.excluded_total == 1


def test_a_directory_whose_files_are_all_left_out_is_an_error(tmp_path: Path) -> None:
    make_files(tmp_path, ["d/a.bak", "d/__pycache__/x.pyc"])
    rules = Discovery(exclude=((str(tmp_path), "*.bak"),))
    results = list(walk(str(tmp_path / "d"), rules, ExcludedLog()))
    assert results == [
        (
            str(tmp_path / "d"),
            "the directory holds no file to scan (2 paths left out: see excluded)",
        )
    ]
    report = scan_paths([tmp_path / "d"], Policy(exclude=("*.bak",), root=str(tmp_path)))
    assert report.results[0].status == "error"
    assert Policy().exit_code(report) == 2


@needs_git
def test_an_ignored_directory_named_explicitly_is_read(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    make_files(repo, ["build/models/a.pt", "build/models/b.pt"])
    (repo / ".gitignore").write_text("build/\n")
    assert found(repo / "build" / "models")[0] == {"a.pt", "b.pt"}
    assert found(repo)[0] == {".gitignore"}
    assert found(repo, Discovery(gitignore=False))[0] == {
        ".gitignore",
        "build/models/a.pt",
        "build/models/b.pt",
    }
