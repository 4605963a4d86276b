"""The rules the pickle analyzer reports (``PICKLE-*``), with their documentation."""

from __future__ import annotations

from modelshield.core.findings import Severity
from modelshield.core.rules import Rule, register_rule

_ALLOW_HINT = (
    'If you trust it, allow it in the policy: `[callables] allow = ["package.module:Name"]`.'
)

IMPORT_DANGEROUS = register_rule(
    Rule(
        id="PICKLE-IMPORT-DANGEROUS",
        pillar="scan",
        severity=Severity.CRITICAL,
        title="Pickle imports a dangerous callable",
        what="Reports a pickle that imports (GLOBAL, STACK_GLOBAL, INST, or a resolver gadget) a "
        "callable the built-in lists mark as dangerous, without a call to it being visible in "
        "the stream. The severity is the one the list gives the callable.",
        why="Loading a pickle imports every global it names. A dangerous callable that is "
        "imported is one opcode away from being called (by a later REDUCE, by `__setstate__`, "
        "or by code that uses the loaded object); no legitimate model needs it.",
        example="cos\nsystem\n.",
        references=("CWE-502", "https://docs.python.org/3/library/pickle.html#restricting-globals"),
    )
)

CALL_DANGEROUS = register_rule(
    Rule(
        id="PICKLE-CALL-DANGEROUS",
        pillar="scan",
        severity=Severity.CRITICAL,
        title="Pickle calls a dangerous callable when loaded",
        what="Reports a dangerous callable that the pickle calls while it loads: through REDUCE, "
        "INST, OBJ, NEWOBJ, NEWOBJ_EX, or a callable object built by a gadget such as "
        "`operator.methodcaller`, `functools.partial` or `pkgutil.resolve_name`. Calls whose "
        "result is discarded (POP) are reported too. The evidence names the callable and its "
        "constant arguments.",
        why="This is remote code execution at load time: `pickle.load`, `torch.load("
        "weights_only=False)`, `joblib.load` and `pandas.read_pickle` run the call before "
        "returning anything.",
        example="cos\nsystem\n(S'id'\ntR.",
        references=("CWE-502", "CVE-2025-1716", "GHSA-vvpj-8cmc-gx39", "GHSA-84r2-jw7c-4r5q"),
    )
)

IMPORT_UNKNOWN = register_rule(
    Rule(
        id="PICKLE-IMPORT-UNKNOWN",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Pickle imports a callable that is not on the safe list",
        what="Reports a global that is neither on the built-in safe list nor denied. The message "
        "names the module and the exact policy entry that allows it.",
        why="Denylists are never complete (dozens of published bypasses used callables nobody had "
        "listed), so anything not known to be safe must be reviewed once. Custom model classes "
        "land here too; allow them in the policy after review.",
        example="GLOBAL 'my_project.models CustomNet', EMPTY_TUPLE, NEWOBJ, STOP",
        references=("CWE-502", "CWE-184"),
    )
)

CALL_CODE_ARGUMENT = register_rule(
    Rule(
        id="PICKLE-CALL-CODE-ARGUMENT",
        pillar="scan",
        severity=Severity.HIGH,
        title="Unlisted callable called with an argument that looks like code or a shell command",
        what="Raises an unknown callable to high when the pickle calls it with a constant string "
        "that looks like Python code or a shell command (`import `, `__import__`, `os.system`, "
        "`exec(`, `eval(`, `subprocess`, `/bin/sh`, `$(`, backticks, `; rm `, `curl `, `wget `).",
        why="Most published denylist bypasses are stdlib or library helpers that end in "
        "`exec`, `eval` or a shell: their argument gives them away even when their name is "
        "not listed yet.",
        example="ctimeit\ntimeit\n(S''\nS'import os; os.system(\"id\")'\ntR.",
        references=("CWE-502", "CWE-94", "CWE-78"),
    )
)

CALL_RETURNED_OBJECT = register_rule(
    Rule(
        id="PICKLE-CALL-RETURNED-OBJECT",
        pillar="scan",
        severity=Severity.HIGH,
        title="Pickle calls an object that an unlisted callable returned",
        what="Reports a REDUCE (or INST, OBJ, NEWOBJ) whose callable is not an imported name but "
        "the value an earlier call returned, when that earlier callable is not on the safe list "
        "and is not a gadget the scanner models (`functools.partial`, `operator.attrgetter`, "
        "`pkgutil.resolve_name`...). When a string argument of the earlier call names a "
        "dangerous callable (`'os.system'`, `'os:system'`), that callable is reported as called "
        "too.",
        why="It is the shape of a name resolver: libraries ship many functions that turn a "
        "string into any object (`hydra.utils.get_method`, `werkzeug.utils.import_string`, "
        "`distlib.util.resolve`...), and calling what they return runs a callable whose name "
        "only appears as data. Picklers write callables as imported names, never like this.",
        example="GLOBAL 'uvicorn.importer import_from_string', 'os:system', TUPLE1, REDUCE, "
        "'id', TUPLE1, REDUCE",
        references=("CWE-502", "GHSA-vvpj-8cmc-gx39"),
    )
)

DYNAMIC_IMPORT = register_rule(
    Rule(
        id="PICKLE-DYNAMIC-IMPORT",
        pillar="scan",
        severity=Severity.CRITICAL,
        title="STACK_GLOBAL with operands that are not string constants",
        what="Reports a STACK_GLOBAL whose module or name operand is not a string constant: the "
        "result of a call, a value read back from a module attribute that the pickle itself "
        "overwrote, or a value of the wrong type (an int, bytes). When the operand can still "
        "be resolved, the resolved callable is reported as well.",
        why="Legitimate picklers always push the names as string literals. Computing them hides "
        "the imported name from scanners that only read literals, and a wrong type crashes "
        "scanners that assume strings — both are evasion techniques.",
        example="a BUILD writes {'_rebuild_tensor': 'builtins'} onto torch._utils, then "
        "STACK_GLOBAL reads the module name back from torch._utils._rebuild_tensor",
        references=("CWE-502",),
    )
)

STATE_WRITE_MODULE = register_rule(
    Rule(
        id="PICKLE-STATE-WRITE-MODULE",
        pillar="scan",
        severity=Severity.CRITICAL,
        title="Pickle writes state onto a module, class or function",
        what="Reports BUILD, SETITEM(S), APPEND(S) or ADDITEMS applied directly to an imported "
        "global (a module, class, function or module-level object such as `os.environ`) rather "
        "than to an object the pickle created.",
        why="It changes process-wide state while loading: overwriting a module attribute "
        "redirects later imports (an allowlisted name then resolves to `eval`), and writing "
        "into `os.environ` or a registry plants code for later. No pickler emits it.",
        example="STACK_GLOBAL 'torch' '_utils', then BUILD {'_rebuild_tensor': 'builtins'}",
        references=("CWE-502", "CWE-915"),
    )
)

STATE_CODE = register_rule(
    Rule(
        id="PICKLE-STATE-CODE",
        pillar="scan",
        severity=Severity.CRITICAL,
        title="Pickle state carries code that the object's class executes when loaded",
        what="Reports a BUILD state that holds, under a key the object's class executes while "
        "it is loaded, anything other than what the library itself writes there: every scipy."
        "stats distribution passes `_parse_arg_template` from its state to `exec` in "
        "`__setstate__`, so that key must hold scipy's argument-parser template (three "
        "functions that return their arguments). Also reported: a state the class would "
        "execute whose keys cannot be read statically. The evidence holds the code.",
        why="The class is on the safe list (fitted searches keep distributions), so its import "
        "alone is no finding; the code rides in its state, and `pickle.load`, `joblib.load` "
        "and `torch.load(weights_only=False)` run it while rebuilding the object.",
        example="NEWOBJ scipy.stats._continuous_distns.norm_gen, then BUILD "
        "{'_parse_arg_template': 'import os; os.system(\"id\")', ...}",
        references=("CWE-502", "CWE-94"),
    )
)

EXTENSION_CODE = register_rule(
    Rule(
        id="PICKLE-EXTENSION-CODE",
        pillar="scan",
        severity=Severity.HIGH,
        title="Pickle uses a copyreg extension code",
        what="Reports EXT1, EXT2 and EXT4 opcodes, which name a global by a number looked up in "
        "`copyreg`'s extension registry instead of by module and name.",
        why="The registry is empty unless the loading program registers codes, which a file "
        "cannot do: the opcode either fails or resolves to a callable the scanner cannot see. "
        "Name-based scanners miss it entirely.",
        example="PROTO 2, EXT1 1, STOP  (the object registered under code 1)",
        references=("CWE-502",),
    )
)

PERSISTENT_ID = register_rule(
    Rule(
        id="PICKLE-PERSISTENT-ID",
        pillar="scan",
        severity=Severity.LOW,
        title="Pickle relies on a persistent-id loader hook outside a checkpoint",
        what="Reports PERSID and BINPERSID opcodes in a pickle that is not part of a PyTorch "
        "checkpoint (where they are how tensors reference their storage and are expected).",
        why="A persistent id is handed to the loading program's `persistent_load`, whose "
        "behaviour the file does not control but can steer; outside checkpoints it is unusual.",
        example="PROTO 2, BINUNICODE 'x', BINPERSID, STOP",
        references=("CWE-502",),
    )
)

MALFORMED = register_rule(
    Rule(
        id="PICKLE-MALFORMED",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Malformed pickle stream",
        what="Reports a pickle that a real loader would fail on: a truncated stream, an unknown "
        "opcode, a declared length beyond the data, a memo key that was never stored, a stack "
        "underflow, a value of the wrong type for its opcode. The message says what and at "
        "which offset. Findings made before the error are kept.",
        why="Loaders execute opcodes as they read them, so a payload placed before the error "
        'still runs ("nullifAI"), while scanners that give up on a parse error report '
        "nothing. A broken stream in a model file is itself suspicious.",
        example="GLOBAL 'builtins exec', MARK, BINUNICODE with a 2 GB length in a 80-byte file",
        references=("CWE-502", "CWE-20"),
    )
)

TRAILING_DATA = register_rule(
    Rule(
        id="PICKLE-TRAILING-DATA",
        pillar="scan",
        severity=Severity.LOW,
        title="Bytes after the last pickle",
        what="Reports bytes after the final STOP that are neither another pickle nor data the "
        "format defines there (PyTorch legacy storages, joblib arrays).",
        why="Loaders ignore them, but other tools may not: hidden data is a way to smuggle a "
        "second payload or to confuse scanners that resynchronise.",
        example="a valid pickle followed by junk bytes",
        references=("CWE-20",),
    )
)

FRAME_MISMATCH = register_rule(
    Rule(
        id="PICKLE-FRAME-MISMATCH",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Pickle frame boundaries do not match the opcodes",
        what="Reports a FRAME whose declared length runs past the data, a FRAME that starts "
        "before the previous one ended, or an opcode whose argument straddles a frame boundary.",
        why="CPython's C and Python unpicklers treat these cases differently, so the same bytes "
        "load differently depending on the loader; scanners that follow one reading miss what "
        "the other executes.",
        example="FRAME 2, then BINBYTES of 0x107 bytes that starts inside the frame",
        references=("CWE-436",),
    )
)

PROTO_ANOMALY = register_rule(
    Rule(
        id="PICKLE-PROTO-ANOMALY",
        pillar="scan",
        severity=Severity.LOW,
        title="PROTO opcode repeated, misplaced or above protocol 5",
        what="Reports a PROTO opcode that is not the first opcode of its stream, appears twice, "
        "or names a protocol that no Python release defines.",
        why="Picklers write exactly one PROTO, first. Anything else is hand-crafted and aimed "
        "at protocol-dependent logic in scanners.",
        example="PROTO 2, PROTO 4, NONE, STOP",
        references=("CWE-20",),
    )
)

EMBEDDED = register_rule(
    Rule(
        id="PICKLE-EMBEDDED",
        pillar="scan",
        severity=Severity.HIGH,
        title="Pickle embedded in a pickle",
        what="Reports a byte constant that is itself a pickle, or a text constant that is base64 "
        "or hex for one. The embedded pickle is analysed too (its findings carry their own "
        "location); this finding is high when it imports or calls anything not on the safe "
        "list, and informational otherwise.",
        why="An embedded pickle is inert until something loads it, which is exactly what "
        "multi-stage payloads arrange (`pickle.loads`, `torch.load` or a config loader called "
        "on the inner bytes). Encoding it hides it from scanners that only read the outer "
        "stream.",
        example="{'blob': <bytes of a pickle that calls os.system>}",
        references=("CWE-502",),
    )
)

#: Rules whose presence inside an embedded pickle makes the embedding itself high.
UNSAFE_RULES = frozenset(
    {
        IMPORT_DANGEROUS.id,
        CALL_DANGEROUS.id,
        IMPORT_UNKNOWN.id,
        CALL_CODE_ARGUMENT.id,
        CALL_RETURNED_OBJECT.id,
        DYNAMIC_IMPORT.id,
        STATE_WRITE_MODULE.id,
        STATE_CODE.id,
        EXTENSION_CODE.id,
    }
)

ALLOW_HINT = _ALLOW_HINT
"""The sentence that tells a user how to allow a reviewed callable."""
