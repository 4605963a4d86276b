"""``modelshield scan hf://ORG/REPO``: what is fetched, what is scanned, what stops a scan.

The hub is a real HTTP server on 127.0.0.1 (``hub_server.py``) and the downloads go through
the real ``huggingface_hub`` client, pointed at it with ``HF_ENDPOINT``."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import run_cli
from tests.scanner.remote.conftest import (
    BIG,
    CLEAN,
    HOSTILE_SCANNED,
    closed_port,
    hub_env,
    scan_remote,
)
from tests.scanner.remote.hub_server import HubServer


def report(stdout: str) -> dict[str, Any]:
    return dict(json.loads(stdout))


def by_name(document: dict[str, Any], commit_dir: str) -> dict[str, dict[str, Any]]:
    """Results keyed by their path inside the snapshot."""
    out = {}
    for result in document["results"]:
        path = result["path"].replace("\\", "/")
        assert commit_dir in path, path
        out[path.split(commit_dir, 1)[1].lstrip("/")] = result
    return out


def rules_of(result: dict[str, Any]) -> set[str]:
    return {f["rule_id"] for f in result["findings"]}


def test_fetches_what_loaders_read_and_scans_it_as_a_folder(
    hub: HubServer, cache: Path, tmp_path: Path
) -> None:
    hub.requests.clear()
    run = scan_remote(hub, cache, "-f", "json", "hf://acme/hostile", cwd=tmp_path)
    assert run.code == 1, run.stderr
    main = hub.repos["acme/hostile"].refs["main"]
    results = by_name(report(run.stdout), f"snapshots/{main}")
    assert set(results) == HOSTILE_SCANNED
    assert set(hub.downloads()) == HOSTILE_SCANNED  # README, images, tables, git files: not
    assert "PICKLE-CALL-DANGEROUS" in rules_of(results["pytorch_model.bin"])
    # A pickle under a name no model-extension list holds is scanned all the same.
    assert "PICKLE-CALL-DANGEROUS" in rules_of(results["variables/variables.data-00000-of-00001"])
    # The repository pass applies: trust_remote_code would import the modeling file.
    assert "REPO-REMOTE-CODE" in rules_of(results["modeling_acme.py"])
    assert f"commit {main}" in run.stderr and "left out" in run.stderr


def test_a_second_scan_uses_the_cache(hub: HubServer, cache: Path, tmp_path: Path) -> None:
    assert scan_remote(hub, cache, "hf://acme/hostile", cwd=tmp_path).code == 1
    hub.requests.clear()
    assert scan_remote(hub, cache, "hf://acme/hostile", cwd=tmp_path).code == 1
    assert hub.downloads() == []


@pytest.mark.parametrize(
    "reference",
    [
        "hf://acme/hostile@v1",
        "https://huggingface.co/acme/hostile/tree/v1",
        "https://hf.co/acme/hostile/tree/{commit}",
    ],
)
def test_a_revision_pins_the_commit(
    reference: str, hub: HubServer, cache: Path, tmp_path: Path
) -> None:
    v1 = hub.repos["acme/hostile"].refs["v1"]
    run = scan_remote(hub, cache, "-f", "json", reference.format(commit=v1), cwd=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    assert set(by_name(report(run.stdout), f"snapshots/{v1}")) == set(CLEAN) - {"README.md"}


def test_a_folder_or_a_file_of_the_repository(hub: HubServer, cache: Path, tmp_path: Path) -> None:
    main = hub.repos["acme/hostile"].refs["main"]
    hub.requests.clear()
    folder = "https://huggingface.co/acme/hostile/tree/main/variables"
    run = scan_remote(hub, cache, "-f", "json", folder, cwd=tmp_path)
    assert run.code == 1
    assert set(by_name(report(run.stdout), f"snapshots/{main}")) == {
        "variables/variables.data-00000-of-00001",
        "variables/variables.index",
    }
    assert set(hub.downloads()) == {
        "variables/variables.data-00000-of-00001",
        "variables/variables.index",
    }
    # A file named outright is fetched even when it is of a kind no loader reads.
    for url in (
        "https://huggingface.co/acme/hostile/blob/main/README.md",
        "hf://acme/hostile@main/README.md",
    ):
        run = scan_remote(hub, cache, "-f", "json", url, cwd=tmp_path)
        assert run.code == 0, run.stderr
        assert list(by_name(report(run.stdout), f"snapshots/{main}")) == ["README.md"]


def test_local_and_remote_inputs_together(hub: HubServer, cache: Path, tmp_path: Path) -> None:
    clean_pickle = tmp_path / "local.pkl"
    clean_pickle.write_bytes(pickle.dumps([1.0, 2.0]))
    run = scan_remote(
        hub, cache, "-f", "json", str(clean_pickle), "hf://acme/hostile@v1", cwd=tmp_path
    )
    assert run.code == 0, run.stderr
    paths = [r["path"] for r in report(run.stdout)["results"]]
    assert paths[0] == str(clean_pickle) and len(paths) == 3


# ---- limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "value"), [("max_download_bytes", 100), ("max_download_files", 2)]
)
def test_a_download_above_a_limit_stops_before_any_byte(
    limit: str, value: int, hub: HubServer, cache: Path, tmp_path: Path
) -> None:
    policy = tmp_path / "modelshield.toml"
    policy.write_text(f"[limits]\n{limit} = {value}\n")
    hub.requests.clear()
    run = scan_remote(hub, cache, "hf://acme/hostile", cwd=tmp_path)
    assert run.code == 2
    assert f"limits.{limit}" in run.stderr and "nothing was downloaded" in run.stderr
    assert hub.downloads() == []


def test_a_file_above_max_file_bytes_is_reported_not_downloaded(
    hub: HubServer, cache: Path, tmp_path: Path
) -> None:
    """Reported as the same file on disk is (skipped, SCAN-FILE-TOO-LARGE, never a pass)."""
    (tmp_path / "modelshield.toml").write_text("[limits]\nmax_file_bytes = 2048\n")
    hub.requests.clear()
    run = scan_remote(hub, cache, "-f", "json", "hf://acme/big", cwd=tmp_path)
    assert hub.downloads() == ["config.json"]
    remote = {Path(r["path"]).name: r for r in report(run.stdout)["results"]}
    local = tmp_path / "local"
    local.mkdir()
    for name, data in BIG.items():
        (local / name).write_bytes(data)
    on_disk = run_cli("scan", "-f", "json", str(local), cwd=tmp_path)
    expected = {Path(r["path"]).name: r for r in report(on_disk.stdout)["results"]}
    assert run.code == on_disk.code != 0
    assert remote.keys() == expected.keys() == set(BIG)
    for name in BIG:
        assert remote[name]["status"] == expected[name]["status"]
        assert rules_of(remote[name]) == rules_of(expected[name])
    assert remote["model.pkl"]["status"] == "skipped"


# ---- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "env", "message"),
    [
        ("hf://acme/missing", {}, "no such repository"),
        ("hf://acme/hostile@v9", {}, "no such revision"),
        ("hf://acme/gated", {}, "gated"),
        ("hf://acme/hostile", {"HF_HUB_OFFLINE": "1"}, "offline mode"),
        ("hf://acme/hostile", {"HF_ENDPOINT": "unreachable"}, "cannot be reached"),
        ("hf://datasets/acme/data", {}, "only model repositories"),
        ("https://example.com/model.pt", {}, "only Hugging Face model references"),
        ("hf://acme/hostile@v1/no/such/file", {}, "no file or folder 'no/such/file'"),
    ],
)
def test_errors_are_one_clear_line(
    reference: str,
    env: dict[str, str],
    message: str,
    hub: HubServer,
    cache: Path,
    tmp_path: Path,
) -> None:
    if env.get("HF_ENDPOINT") == "unreachable":
        env = {"HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}
    run = scan_remote(hub, cache, reference, cwd=tmp_path, **env)
    assert run.code == 2, run.stdout + run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr
    assert run.stderr.startswith("modelshield: error:"), run.stderr


def test_without_the_extra_it_says_how_to_install_it(
    hub: HubServer, cache: Path, tmp_path: Path
) -> None:
    fake = tmp_path / "no-hub"
    (fake / "huggingface_hub").mkdir(parents=True)
    (fake / "huggingface_hub" / "__init__.py").write_text("raise ImportError('not here')\n")
    run = scan_remote(hub, cache, "hf://acme/hostile", cwd=tmp_path, PYTHONPATH=str(fake))
    assert run.code == 2
    assert "pip install 'modelshield[hub]'" in run.stderr and "Traceback" not in run.stderr


def test_a_local_scan_never_imports_the_hub_client(tmp_path: Path) -> None:
    clean_pickle = tmp_path / "local.pkl"
    clean_pickle.write_bytes(pickle.dumps([1.0, 2.0]))
    code = (
        "import sys\nfrom modelshield.cli import main\n"
        f"code = main(['scan', '--quiet', {str(clean_pickle)!r}])\n"
        "print(code, 'huggingface_hub' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout.split()[-2:] == ["0", "False"]


def test_the_hub_env_of_the_tests_is_isolated(hub: HubServer, cache: Path) -> None:
    """The tests never reach the internet: every run is pointed at the loopback hub."""
    assert hub_env(hub, cache)["HF_ENDPOINT"].startswith("http://127.0.0.1:")
    assert run_cli is not None
