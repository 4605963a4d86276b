"""One restricted load: the policy's decisions inside the unpickler, and the sink sentinel.

A :class:`LoadSession` is created per file. The restricted unpicklers ask it to

* :meth:`~LoadSession.resolve` every global a pickle imports (``GLOBAL``, ``STACK_GLOBAL``,
  ``INST``, and the ``copyreg`` reconstructors and ``__reduce__`` helpers the pickle machine
  reaches the same way): admitted only when the scanner's classifier
  (:class:`~modelshield.scanner.callables.CallablePolicy`, built from the policy) calls it
  :attr:`~modelshield.scanner.callables.Tier.SAFE`, and only when the object it resolves to is
  not a module and is not, under its real name, a dangerous callable;
* :meth:`~LoadSession.check_target` the object that ``BUILD``, ``SETITEM(S)``, ``APPEND(S)``
  and ``ADDITEMS`` write into (never an imported global: no process-wide state is changed);
* refuse extension codes and persistent ids the loader does not define.

A refusal raises :class:`Refused` (an :class:`pickle.UnpicklingError`) with the
:class:`~modelshield.core.findings.Finding` the scanner would have made for the same construct,
built with the scanner's own rule objects, and records it, so that a library that catches the
exception cannot turn a refusal into a success.

**The sentinel.** While a restricted unpickler runs, a Python audit hook (PEP 578, installed
once per process on the first restricted load and inert in every other thread and at every
other time) refuses the operations that an allowlisted class could reach from its pickled
state: executing code (``exec``, ``eval``, new functions or code objects, ``marshal`` loads),
processes, sockets and the network clients, ``ctypes``, unpickling with any unpickler but ours,
new threads, audit and trace hooks, and writing, deleting or renaming files. Everything the
import of an admitted global does is allowed (``find_class`` imports it); a module imported
later (by a ``__setstate__``) may run its own code and write its byte-code cache, nothing
more. Code of a class the policy allows by an exact ``[callables] allow`` entry
(``module:Name``) may reach these operations: that is how a user admits a reviewed class that
acts on its state.
"""

from __future__ import annotations

import os
import sys
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pickle import UnpicklingError
from typing import Any, NoReturn

from msgspec.structs import replace

from modelshield.core.errors import LoadRefused
from modelshield.core.findings import Finding, Location, Report
from modelshield.core.policy import Policy
from modelshield.loaders.rules import SINK_BLOCKED
from modelshield.scanner.callables import CallablePolicy, Tier, Verdict, parse_pattern
from modelshield.scanner.context import ScanContext
from modelshield.scanner.pickle import rules as pickle_rules
from modelshield.scanner.pickle.ledger import Ledger
from modelshield.scanner.pickle.values import brief


class Refused(UnpicklingError):
    """Raised inside a restricted unpickler for what the policy does not admit."""

    def __init__(self, finding: Finding) -> None:
        """Carry the finding that says what was refused."""
        super().__init__(f"{finding.rule_id}: {finding.title}")
        self.finding = finding


# ---- the sentinel's view of audit events ---------------------------------------------------

_PROCESS_EVENTS = frozenset(
    {
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.startfile",
        "os.kill",
        "os.killpg",
        "subprocess.Popen",
        "pty.spawn",
    }
)
_NETWORK_EVENTS = frozenset(
    {
        "urllib.Request",
        "http.client.connect",
        "ftplib.connect",
        "smtplib.connect",
        "poplib.connect",
        "imaplib.open",
        "nntplib.connect",
        "telnetlib.Telnet.open",
        "webbrowser.open",
    }
)
_FILESYSTEM_EVENTS = frozenset(
    {
        "os.remove",
        "os.rename",
        "os.rmdir",
        "os.mkdir",
        "os.mkfifo",
        "os.mknod",
        "os.chmod",
        "os.chown",
        "os.chflags",
        "os.lchflags",
        "os.link",
        "os.symlink",
        "os.truncate",
        "os.utime",
        "os.setxattr",
        "os.removexattr",
        "os.chdir",
        "os.putenv",
        "os.unsetenv",
        "shutil.rmtree",
        "shutil.copyfile",
        "shutil.copymode",
        "shutil.copystat",
        "shutil.copytree",
        "shutil.move",
        "shutil.chown",
        "shutil.make_archive",
        "shutil.unpack_archive",
        "tempfile.mkstemp",
        "tempfile.mkdtemp",
    }
)
# ``compile`` alone runs nothing (inspect and ast parse sources with it); running what it made
# takes ``exec`` (exec, eval) or ``function.__new__``.
_CODE_EVENTS = frozenset(
    {
        "exec",
        "marshal.load",
        "marshal.loads",
        "code.__new__",
        "function.__new__",
        "builtins.breakpoint",
        "builtins.input",
        "sys.addaudithook",
        "sys.settrace",
        "sys.setprofile",
        "_thread.start_new_thread",
        "pickle.find_class",
    }
)
#: What the import of a module does on its own (run its code, write its byte-code cache): allowed
#: while the import machinery is on the stack. Processes, sockets, ctypes, threads and nested
#: unpickling stay refused there too (a class that imports a module named in its state must not
#: get that module's side effects: ``antigravity`` opens a browser).
_IMPORT_KINDS = frozenset({"code-execution", "filesystem"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _sink(event: str, args: tuple[Any, ...]) -> str | None:
    """What kind of dangerous operation an audit event is, or None for a harmless one."""
    if event in _CODE_EVENTS:
        if event == "pickle.find_class":
            return "deserialization"
        if event in ("_thread.start_new_thread", "sys.addaudithook"):
            return "process"
        return "code-execution"
    if event == "open":
        mode = args[1] if len(args) > 1 else None
        flags = args[2] if len(args) > 2 else 0
        if isinstance(mode, str):
            return "filesystem" if any(c in mode for c in "wax+") else None
        return "filesystem" if isinstance(flags, int) and flags & _WRITE_FLAGS else None
    if event in _PROCESS_EVENTS:
        return "process"
    if event.startswith("socket.") or event in _NETWORK_EVENTS:
        return "network"
    if event.startswith("ctypes."):
        return "ffi"
    if event in _FILESYSTEM_EVENTS:
        return "filesystem"
    return None


def _describe(event: str, args: tuple[Any, ...]) -> str:
    """A short, escaped rendering of an event's arguments for evidence."""
    if event == "exec" and args and isinstance(args[0], types.CodeType):
        code = args[0]
        return f"code object {code.co_name!r} from {code.co_filename!r}"
    return brief(args)


def _importing() -> bool:
    """Whether the import machinery is on the stack (module code of an installed file runs)."""
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


_local = threading.local()
_hook_lock = threading.Lock()
_hook_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    session = getattr(_local, "session", None)
    if session is not None:
        session.on_event(event, args)


def _install_hook() -> None:
    """Add the audit hook once per process (hooks cannot be removed; it is inert when idle)."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True


# ---- the session ---------------------------------------------------------------------------


class LoadSession:
    """Everything one restricted load decides, and every refusal it made."""

    def __init__(self, path: str, policy: Policy, *, writable: tuple[str, ...] = ()) -> None:
        """Build the classifier the scanner uses for ``policy``; ``writable`` names files the
        loader itself may open for writing (a memory map opened ``r+``)."""
        self.path = path
        """The file being loaded, as reported in findings."""
        self.policy = policy
        """The policy in force."""
        self.callables = CallablePolicy.default(policy.allow_callables, policy.deny_callables)
        """The scanner's classifier for this policy."""
        self.location = Location(path)
        """Where findings point."""
        self.refusals: list[Finding] = []
        """Every refusal made, in order."""
        self.exact_allowed = frozenset(_exact_entries(policy.allow_callables))
        """Callables the policy allows by an exact ``module:qualname`` entry."""
        self._writable = frozenset(os.path.realpath(p) for p in writable)
        self._origin: dict[int, tuple[Any, str, str]] = {}
        self._exempt = 0
        self._owners: list[bool] = []

    # ---- imports ---------------------------------------------------------------------------
    def resolve(
        self, module: str, name: str, lookup: Callable[[str, str], Any], opcode: str
    ) -> Any:
        """The object a pickle's ``module``/``name`` names, if the policy admits it.

        ``lookup`` is the unpickler's own ``find_class`` (the loader's semantics: Python 2 name
        mapping, dotted names from protocol 4). It runs only for a SAFE verdict, with the
        sentinel off: importing an admitted module runs that module's own code.
        """
        if not isinstance(module, str) or not isinstance(name, str):
            self.refuse(self._import_finding(str(module), str(name), opcode))
        verdict = self.callables.classify(module, name)
        equivalent = _EQUIVALENTS.get((verdict.module, verdict.name))
        if equivalent is not None and not verdict.reason.startswith("denied by policy"):
            obj = equivalent(self)
            self.admit(obj, verdict.module, verdict.name)
            return obj
        if verdict.tier is not Tier.SAFE:
            self.refuse(self._import_finding(module, name, opcode))
        with self.exempt():
            obj = lookup(module, name)
        self._check_identity(obj, verdict, module, name, opcode)
        self.admit(obj, verdict.module, verdict.name)
        return obj

    def admit(self, obj: Any, module: str, name: str) -> None:
        """Record an admitted global (kept alive, so that its id stays its own)."""
        self._origin[id(obj)] = (obj, module, name)

    def verdict(self, module: str, name: str) -> Verdict:
        """The classifier's verdict (for loaders that pre-resolve globals)."""
        return self.callables.classify(module, name)

    def _check_identity(
        self, obj: Any, verdict: Verdict, module: str, name: str, opcode: str
    ) -> None:
        """An admitted name must not resolve to a module, nor to a dangerous callable under its
        own name (``types.MethodType`` re-exported by a safe module is ``builtins:method``)."""
        if isinstance(obj, types.ModuleType):
            dotted = f"{verdict.module}.{verdict.name}"
            reason = f"it resolves to the module {obj.__name__}, which gives access to all it holds"
            self.refuse(
                pickle_rules.IMPORT_DANGEROUS.finding(
                    self.location,
                    f"The pickle imports {dotted} (introspection: {reason}). A loaded pickle "
                    "that references it can call anything in that module; no model needs it.",
                    title=f"Pickle imports dangerous callable {dotted}",
                    evidence={"callable": dotted, "opcode": opcode, "reason": reason},
                )
            )
        real_module = getattr(obj, "__module__", None)
        real_name = getattr(obj, "__qualname__", None)
        if not (isinstance(obj, type) or callable(obj)):
            return
        if not isinstance(real_module, str) or not isinstance(real_name, str):
            return
        if (real_module, real_name) == (verdict.module, verdict.name) or "<" in real_name:
            return
        real = self.callables.classify(real_module, real_name)
        # Dangerous under its own name: refused. A standard-library object reached under
        # another module's name (types.MethodType exported by a package as ``MethodType``) is
        # judged by its own name too: re-exports are how a package-wide entry admits it.
        if real.tier is Tier.DANGEROUS or (
            real.tier is Tier.UNKNOWN and real_module.partition(".")[0] in sys.stdlib_module_names
        ):
            finding = self._import_finding(real_module, real_name, opcode)
            evidence = {**finding.evidence, "written_as": f"{module}.{name}"}
            self.refuse(replace(finding, evidence=evidence))

    def _import_finding(self, module: str, name: str, opcode: str) -> Finding:
        """The finding the scanner's ledger makes for an import of ``module``/``name``."""
        ctx = ScanContext(path=self.path, policy=self.policy, callables=self.callables)
        ledger = Ledger(ctx, self.location, self.callables.classify)
        ledger.imported(module, name, opcode, 0)
        ledger.flush()
        return replace(ctx.findings[0], location=self.location)

    # ---- other constructs -------------------------------------------------------------------
    def check_target(self, target: Any, opcode: str) -> None:
        """Refuse a state write (``BUILD``, ``SETITEM(S)``, ``APPEND(S)``, ``ADDITEMS``) into an
        imported global, a module, a class or a function."""
        imported = self._origin.get(id(target))
        if imported is None and not isinstance(target, _GLOBAL_KINDS):
            return
        what = f"{imported[1]}.{imported[2]}" if imported else _name_of(target)
        self.refuse(
            pickle_rules.STATE_WRITE_MODULE.finding(
                self.location,
                f"The pickle applies {opcode} to {what}, an imported global rather than an "
                "object it created: loading it would change process-wide state. No pickler "
                "writes this; the file is hand-crafted.",
                evidence={"target": what, "opcode": opcode},
            )
        )

    def refuse_extension(self, code: int, opcode: str) -> NoReturn:
        """Refuse an ``EXT1``/``EXT2``/``EXT4`` opcode: no registry lookup is ever made."""
        self.refuse(
            pickle_rules.EXTENSION_CODE.finding(
                self.location,
                f"The pickle names a global by the copyreg extension code {code} ({opcode}). "
                "The restricted loaders never consult the extension registry, whose contents "
                "the file does not control and the scan cannot see.",
                evidence={"code": str(code), "opcode": opcode},
            )
        )

    def refuse_nested_torchscript(self) -> NoReturn:
        """Refuse a TorchScript archive handed to ``torch.storage._load_from_bytes``."""
        self.refuse(
            pickle_rules.EMBEDDED.finding(
                self.location,
                "The pickle hands a TorchScript archive to torch.storage._load_from_bytes, which "
                "torch would run as TorchScript code; no restricted loader reads it.",
                evidence={"callable": "torch.storage._load_from_bytes"},
            )
        )

    def refuse_persistent_id(self, pid: Any, expected: str) -> NoReturn:
        """Refuse a persistent id the loader does not define."""
        self.refuse(
            pickle_rules.PERSISTENT_ID.finding(
                self.location,
                f"The pickle hands the persistent id {brief(pid)} to the loader; {expected}.",
                evidence={"persistent_id": brief(pid)},
            )
        )

    def refuse(self, finding: Finding) -> NoReturn:
        """Record a refusal and raise it."""
        self.refusals.append(finding)
        raise Refused(finding)

    def raise_if_refused(self, report: Report | None, cause: BaseException | None = None) -> None:
        """Raise :class:`LoadRefused` when anything was refused during the load."""
        if not self.refusals:
            return
        first = self.refusals[0]
        raise LoadRefused(
            self.path,
            f"the restricted load refused it: {first.title}",
            report=report,
            findings=self.refusals,
            stage="load",
        ) from cause

    # ---- the sentinel ----------------------------------------------------------------------
    @contextmanager
    def active(self) -> Iterator[None]:
        """Run the block with the sentinel watching this thread (re-entrant)."""
        _install_hook()
        previous = getattr(_local, "session", None)
        _local.session = self
        try:
            yield
        finally:
            _local.session = previous

    @contextmanager
    def exempt(self) -> Iterator[None]:
        """Run the block with the sentinel off (the import of an admitted global)."""
        self._exempt += 1
        try:
            yield
        finally:
            self._exempt -= 1

    @contextmanager
    def running(self, owner: Any) -> Iterator[None]:
        """Run code that belongs to ``owner`` (a class or callable the pickle imported)."""
        origin = self._origin.get(id(owner))
        self._owners.append(origin is not None and (origin[1], origin[2]) in self.exact_allowed)
        try:
            yield
        finally:
            self._owners.pop()

    def on_event(self, event: str, args: tuple[Any, ...]) -> None:
        """The audit hook's callback while this session is active in the thread."""
        if self._exempt:
            return
        kind = _sink(event, args)
        if kind is None:
            return
        if kind == "filesystem" and event == "open" and self._writable_path(args):
            return
        if self._owners and self._owners[-1]:
            return
        if kind in _IMPORT_KINDS and _importing():
            return  # a module's own code, and its byte-code cache
        detail = _describe(event, args)
        self.refuse(
            SINK_BLOCKED.finding(
                self.location,
                f"While loading, code the policy admits tried to run the operation "
                f"{event!r} ({kind}) with {detail}. It was stopped and the file refused. An "
                "allowlisted class acts on values from the file; do not load it with an "
                "unrestricted loader. If the scan passed this file, report it as a scanner "
                "miss.",
                evidence={"event": event, "category": kind, "args": detail},
            )
        )

    def _writable_path(self, args: tuple[Any, ...]) -> bool:
        path = args[0] if args else None
        if isinstance(path, str | bytes | os.PathLike):
            return os.path.realpath(os.fsdecode(path)) in self._writable
        return False


def _torch_load_from_bytes(session: LoadSession) -> Any:
    from modelshield.loaders.torch_loader import load_from_bytes

    return load_from_bytes(session)


#: Globals that unpickle a nested payload, and the restricted equivalents the loaders use in
#: their place (unless the user's policy denies the global by name): the nested payload is
#: then read under the same session, as the scanner judges it in place.
_EQUIVALENTS: dict[tuple[str, str], Callable[[LoadSession], Any]] = {
    ("torch.storage", "_load_from_bytes"): _torch_load_from_bytes,
}

_GLOBAL_KINDS = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
)


def _name_of(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "?")
    name = getattr(obj, "__qualname__", None)
    return f"{module}.{name}" if isinstance(name, str) else str(module)


def _exact_entries(patterns: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    for text in patterns:
        pattern = parse_pattern(text)
        if pattern.qualname is not None:
            yield pattern.module, pattern.qualname
