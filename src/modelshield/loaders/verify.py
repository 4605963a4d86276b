"""``modelshield scan --verify-load``: load each file the scan passed, in a limited child.

A file the scanner calls clean should also load under the policy. This module loads each such
file through the restricted loader (:func:`~modelshield.loaders.api.restricted_load`, without
the scan: it is the unpickler's verdict that is checked) in a child process with a wall-clock
limit and an address-space limit (``RLIMIT_AS``, POSIX only), both from
:class:`~modelshield.core.limits.Limits` (``verify_load_seconds``, ``verify_load_memory_bytes``).

* the child loads the file: the result notes the loader (``metadata["verify_load"]``);
* the restricted load refuses it: a ``LOAD-VERIFY-MISMATCH`` finding (the scanner missed what
  the load refused; the load's own finding is in the evidence);
* the child crashes, runs out of time or memory, or the library fails: an error record, so the
  file is not fully analysed and the run cannot pass;
* no restricted loader reads the file's format (text, safetensors...): nothing is unpickled,
  so nothing is verified, and the metadata says so.

The child runs library code (``__setstate__`` of admitted classes) on the file's data. The
restricted loader contains it, but ``--verify-load`` is still opt-in and meant for files that
are not hostile, or for a sandbox the user provides.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import msgspec
from msgspec import Struct
from msgspec.structs import replace

from modelshield.core.findings import ErrorRecord, FileResult, Finding, Location, Report
from modelshield.core.policy import Policy
from modelshield.loaders.api import loader_for
from modelshield.loaders.rules import VERIFY_MISMATCH

STAGE = "verify-load"
"""The stage named in error records of the verification."""
METADATA_KEY = "verify_load"
"""The metadata key that records what the verification did."""


class Request(Struct, frozen=True):
    """What the parent asks the child to load."""

    path: str
    """The file."""
    loader: str
    """The restricted loader to use."""
    policy: Policy
    """The policy in force."""
    imports: tuple[str, ...] = ()
    """The callables the scan saw the file import."""
    memory_bytes: int = 0
    """Address-space limit to set in the child (0: none)."""
    cpu_seconds: int = 0
    """CPU-time limit to set in the child (0: none)."""


class Outcome(Struct, frozen=True):
    """What the child reports."""

    status: str
    """``loaded``, ``refused`` or ``error``."""
    method: str = ""
    """How the file was read (``loaded``)."""
    type: str = ""
    """The type of the loaded object (``loaded``)."""
    stage: str = ""
    """The refusal's stage: ``load`` or ``format`` (``refused``)."""
    reason: str = ""
    """The refusal's reason, or the error's message."""
    findings: tuple[Finding, ...] = ()
    """The refusal's findings."""


def verify_report(
    report: Report,
    policy: Policy,
    *,
    runner: Callable[[Request, float], Outcome] | None = None,
) -> Report:
    """The report with every clean, loadable file verified by a restricted load in a child."""
    run = runner or run_child
    results = tuple(_verify(result, policy, run) for result in report.results)
    return replace(report, results=results)


def _clean(result: FileResult, policy: Policy) -> bool:
    return result.finished and all(f.severity < policy.fail_on for f in result.findings)


def _verify(
    result: FileResult, policy: Policy, run: Callable[[Request, float], Outcome]
) -> FileResult:
    if not _clean(result, policy):
        return result
    loader = loader_for(result)
    if loader is None:
        note = f"not verified: no restricted loader reads {result.format!r} content"
        return _note(result, note)
    limits = policy.limits
    request = Request(
        path=result.path,
        loader=loader,
        policy=policy,
        imports=result.imports,
        memory_bytes=limits.verify_load_memory_bytes,
        cpu_seconds=max(1, int(limits.verify_load_seconds)),
    )
    outcome = run(request, limits.verify_load_seconds)
    loc = Location(result.path)
    if outcome.status == "loaded":
        return _note(result, f"loaded by the restricted {loader} loader ({outcome.method})")
    if outcome.status == "refused" and outcome.stage == "load":
        first = outcome.findings[0] if outcome.findings else None
        what = f"{first.rule_id} ({first.title})" if first else outcome.reason
        finding = VERIFY_MISMATCH.finding(
            loc,
            f"The scan passed this file, but the restricted {loader} loader refused it: "
            f"{what}. Treat the file as unsafe, and report it to modelshield as a scanner bug.",
            evidence={
                "loader": loader,
                "load_rule": first.rule_id if first else "",
                "load_message": first.message if first else outcome.reason,
            },
        )
        kept = policy.keep(finding)
        findings = (*result.findings, kept) if kept is not None else result.findings
        refused = f"refused by the restricted {loader} loader"
        return _note(replace(result, findings=findings), refused)
    message = (
        f"could not be verified: the restricted {loader} loader refused its format: "
        f"{outcome.reason}"
        if outcome.status == "refused"
        else f"the verification load with the restricted {loader} loader failed: {outcome.reason}"
    )
    return replace(result, errors=(*result.errors, ErrorRecord(loc, message, STAGE)))


def _note(result: FileResult, text: str) -> FileResult:
    return replace(result, metadata={**result.metadata, METADATA_KEY: text})


def run_child(request: Request, seconds: float) -> Outcome:
    """Run :func:`child_main` in a new interpreter, with the request's limits."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "modelshield.loaders.verify"],
            input=msgspec.json.encode(request),
            capture_output=True,
            timeout=seconds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome("error", reason=f"it did not finish within {seconds:g} s (killed)")
    except OSError as e:
        return Outcome("error", reason=f"the child process could not start: {e}")
    try:
        return msgspec.json.decode(proc.stdout, type=Outcome)
    except msgspec.DecodeError:
        pass
    tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    if proc.returncode < 0:
        what = f"the child process was killed by signal {-proc.returncode}"
    else:
        what = f"the child process exited with {proc.returncode} without a result"
    return Outcome("error", reason=f"{what} {tail[0][:300]}".strip())


def _set_limits(request: Request) -> None:
    try:
        import resource
    except ImportError:  # not POSIX: the wall-clock limit still holds
        return
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if request.memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (request.memory_bytes, request.memory_bytes))
    if request.cpu_seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (request.cpu_seconds, request.cpu_seconds + 1))


def child_main() -> int:
    """The child: read a :class:`Request` on stdin, load, write an :class:`Outcome`."""
    out = os.dup(1)
    os.dup2(2, 1)  # what the loaded code prints goes to stderr, never into the outcome
    request = msgspec.json.decode(sys.stdin.buffer.read(), type=Request)
    _set_limits(request)
    from modelshield.core.errors import LoadRefused
    from modelshield.loaders.api import restricted_load

    try:
        value, method = restricted_load(
            request.path, request.loader, request.policy, imports=request.imports
        )
        outcome = Outcome("loaded", method=method, type=type(value).__qualname__)
    except LoadRefused as e:
        outcome = Outcome("refused", stage=e.stage, reason=e.reason, findings=e.findings)
    except MemoryError:
        outcome = Outcome("error", reason="it needed more memory than verify_load_memory_bytes")
    except Exception as e:
        outcome = Outcome("error", reason=f"{type(e).__name__}: {e}"[:500])
    with os.fdopen(out, "wb") as fh:
        fh.write(msgspec.json.encode(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
