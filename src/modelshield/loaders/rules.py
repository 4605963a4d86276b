"""The rules of the restricted loaders (``LOAD-*``), with their documentation.

A restricted load that refuses an *import* reports it with the scanner's own pickle rules
(``PICKLE-IMPORT-DANGEROUS``, ``PICKLE-IMPORT-UNKNOWN``, ``PICKLE-EXTENSION-CODE``...), so the
same construct gets the same rule id and message whether the scan or the load caught it. The
rules here cover what only a load can see.
"""

from __future__ import annotations

from modelshield.core.findings import Severity
from modelshield.core.rules import Rule, register_rule

SINK_BLOCKED = register_rule(
    Rule(
        id="LOAD-SINK-BLOCKED",
        pillar="scan",
        severity=Severity.CRITICAL,
        title="Code admitted by the policy tried to reach a dangerous operation while loading",
        what="Reports an operation that a restricted load stopped while unpickling: compiling "
        "or executing code from a string, starting a process, opening a network connection, "
        "calling into `ctypes`, unpickling with an unrestricted unpickler, loading code with "
        "`marshal`, starting a thread, or writing, deleting or renaming a file. The callables "
        "the file imports were all on the safe list; one of them (a `__setstate__`, a "
        "reconstructor, a container hook) reached the operation with values from the file. "
        "The evidence names the operation (its Python audit event) and what it was given.",
        why="An allowlisted class whose unpickling acts on its state runs whatever the state "
        "says: every scipy.stats distribution passes a string from its pickled state to "
        "`exec`. Classifying imports cannot see that; the loader can. Such an operation is "
        "blocked unless the class that ran it is allowed by an exact `[callables] allow` "
        "entry. A file the static scan called clean that hits this rule is also a scanner "
        "miss: please report it.",
        example="a pickled `scipy.stats.norm` whose `_parse_arg_template` holds "
        "`import os; os.system('id')`",
        references=("CWE-502", "CWE-94", "https://peps.python.org/pep-0578/"),
    )
)

VERIFY_MISMATCH = register_rule(
    Rule(
        id="LOAD-VERIFY-MISMATCH",
        pillar="scan",
        severity=Severity.HIGH,
        title="The scan passed this file and the restricted load refused it",
        what="Reported by `modelshield scan --verify-load`: the file passed the scan under the "
        "policy, then a child process loading it through the restricted loader refused it. "
        "The message and evidence give the load's own finding (its rule id and message).",
        why="The static scan and the loader it imitates are two programs; where they disagree "
        "the scanner is wrong, and a file it calls clean may run code when an unrestricted "
        "loader reads it. Treat the file as unsafe and report it to modelshield as a scanner "
        "bug.",
        example="a pickle whose `__setstate__` path the scan does not follow",
        references=("CWE-502", "CWE-436"),
    )
)
