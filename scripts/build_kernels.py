"""Compile the guard's arithmetic kernels (``modelshield.guard._kernels``) with mypyc, next to
their source, so that the interpreter imports the compiled module instead of the ``.py``.

Usage::

    python scripts/build_kernels.py            # compile (make dev runs it)
    python scripts/build_kernels.py --clean    # remove the compiled module

Optional: without mypyc or a C compiler the same source runs as plain Python, with the same
results (the tests compare both), only slower; this script then says so and exits 0
(``--strict``: exits 1). The module is compiled alone, in a scratch directory (a few seconds),
with ``-ffp-contract=off`` so that the C compiler fuses no multiply and add into one
rounding. The compiled files are ignored by git and left out of wheels and sdists.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "modelshield" / "guard" / "_kernels.py"
MODULE = "modelshield.guard._kernels"


def compiled_files(folder: Path) -> list[Path]:
    """The compiled module's files in ``folder`` (the module and mypyc's runtime for it)."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return sorted(p for p in folder.glob(f"_kernels*{suffix}") if p.is_file())


def clean() -> None:
    for path in compiled_files(SOURCE.parent):
        path.unlink()
        print(f"removed {path.name}")


def build() -> str | None:
    """Compile into a scratch directory and copy the result next to the source; the reason
    when that failed."""
    with tempfile.TemporaryDirectory(prefix="modelshield-kernels-") as tmp:
        package = Path(tmp) / "modelshield" / "guard"
        package.mkdir(parents=True)
        (package.parent / "__init__.py").write_text("")
        (package / "__init__.py").write_text("")
        shutil.copy2(SOURCE, package / SOURCE.name)
        env = {**os.environ, "CFLAGS": (os.environ.get("CFLAGS", "") + " -ffp-contract=off")}
        try:
            done = subprocess.run(
                [sys.executable, "-m", "mypyc", "modelshield/guard/_kernels.py"],
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"mypyc did not run: {e}"
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            return "mypyc failed:\n  " + "\n  ".join(tail)
        built = compiled_files(package)
        if not built:
            return "mypyc wrote no module"
        clean()
        for path in built:
            shutil.copy2(path, SOURCE.parent / path.name)
            print(f"compiled {path.name}")
    check = subprocess.run(
        [sys.executable, "-c", f"import {MODULE} as k; print(k.__file__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0 or not check.stdout.strip().endswith(
        sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    ):
        clean()
        return f"the compiled module does not import: {check.stderr.strip()[-300:]}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clean", action="store_true", help="remove the compiled module")
    parser.add_argument("--strict", action="store_true", help="exit 1 when it cannot compile")
    args = parser.parse_args()
    if args.clean:
        clean()
        return 0
    problem = build()
    if problem is None:
        return 0
    print(
        f"build_kernels: {MODULE} not compiled ({problem}); the guard runs its plain-Python "
        "form (the same results, slower)",
        file=sys.stderr,
    )
    return 1 if args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
