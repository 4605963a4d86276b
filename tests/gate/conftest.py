"""A small project to gate: models (clean, unknown import, dangerous call), a requirements
file with known vulnerabilities, an offline OSV database, a .gitignore, a virtual
environment, and a policy that suppresses, ignores and points at a baseline."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.audit.conftest import osv_record
from tests.cli.conftest import reduce_os_system_pickle

# GLOBAL 'mylib.layers Dense' and STOP: loading it imports an unknown class
# (PICKLE-IMPORT-UNKNOWN), built byte by byte.
UNKNOWN_IMPORT = b"\x80\x02cmylib.layers\nDense\nq\x00."

POLICY = """\
fail_on = "medium"
models = ["models/"]

[[suppress]]
rule = "PICKLE-IMPORT-UNKNOWN"
paths = ["models/legacy/*"]

[[suppress]]
rule = "PICKLE-CALL-DANGEROUS"
paths = ["models/renamed/*"]

[audit]
db = "../osv"
max_database_age_days = 0

[[audit.ignore]]
id = "GHSA-aaaa-bbbb-cccc"
reason = "requests is only used offline"
expires = 2999-12-31

[[audit.ignore]]
id = "GHSA-dddd-eeee-ffff"
reason = "accepted until the upgrade"
expires = 2001-01-01

[ci]
baseline = "modelshield-baseline.json"
"""

REQUIREMENTS = "# what the model needs\nnumpy==1.26.4\n\njinja2==2.4.1\nrequests==2.0.0\n"


@dataclass(frozen=True)
class Project:
    """The project on disk."""

    root: Path
    """The project directory (holds the policy)."""
    elsewhere: Path
    """Another directory, to run from."""

    def without_baseline(self) -> None:
        """Take the ``[ci] baseline`` line out of the policy."""
        policy = self.root / "modelshield.toml"
        policy.write_text(policy.read_text().replace('baseline = "modelshield-baseline.json"', ""))

    def line_of(self, name: str, text: str) -> int:
        """The 1-based line of the first line of ``name`` containing ``text``."""
        lines = (self.root / name).read_text().splitlines()
        return next(i for i, line in enumerate(lines, 1) if text in line)


def git(cwd: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("MODELSHIELD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MODELSHIELD_OSV_URL", "http://127.0.0.1:9")  # never the internet
    root = tmp_path / "project"
    for folder in ("models/legacy", "scratch", ".venv/lib"):
        (root / folder).mkdir(parents=True)
    (root / "models" / "clean.pkl").write_bytes(pickle.dumps({"w": [0.5, 1.5]}, protocol=4))
    (root / "models" / "legacy" / "layer.pkl").write_bytes(UNKNOWN_IMPORT)
    (root / "models" / "evil.pkl").write_bytes(reduce_os_system_pickle())
    # Left out of the search: ignored by git, and a virtual environment.
    (root / "scratch" / "tmp.pkl").write_bytes(reduce_os_system_pickle())
    (root / ".venv" / "lib" / "x.pkl").write_bytes(reduce_os_system_pickle())
    (root / ".gitignore").write_text("scratch/\n")
    (root / "requirements.txt").write_text(REQUIREMENTS)
    (root / "modelshield.toml").write_text(POLICY)
    osv = tmp_path / "osv"
    osv.mkdir()
    for ident, package, aliases in (
        ("PYSEC-2014-8", "jinja2", ["CVE-2014-1402"]),
        ("GHSA-aaaa-bbbb-cccc", "requests", []),
        ("GHSA-dddd-eeee-ffff", "requests", []),
    ):
        fixed = "2.7.2" if package == "jinja2" else "2.3.0"
        record = osv_record(
            ident,
            package,
            events=[{"introduced": "0"}, {"fixed": fixed}],
            aliases=aliases,
        )
        (osv / f"{ident}.json").write_text(json.dumps(record))
    git(root, "init", "-q")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return Project(root, elsewhere)
