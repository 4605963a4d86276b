"""The rules integrity verification reports (``modelshield manifest verify``)."""

from __future__ import annotations

from modelshield.core.findings import Severity
from modelshield.core.rules import Rule, register_rule

_REFS_INTEGRITY = ("CWE-345", "CWE-494")

MANIFEST_FILE_MODIFIED = register_rule(
    Rule(
        id="MANIFEST-FILE-MODIFIED",
        pillar="audit",
        severity=Severity.HIGH,
        title="File differs from the integrity manifest",
        what="Reports a file whose size, content digest (SHA-256 of any chunk, the whole-file "
        "SHA-256 or BLAKE3) or type (regular file, symbolic link) differs from what the "
        "manifest or signature recorded. The evidence names the first differing chunk and "
        "its byte range.",
        why="A model file changed after the manifest was made: weights may have been "
        "poisoned, or a pickle payload inserted into a checkpoint that was reviewed as "
        "clean. Loading it runs whatever it now contains.",
        example="modelshield manifest create model/\n"
        "(one byte of model/model.safetensors changes)\n"
        "modelshield manifest verify model/  ->  MANIFEST-FILE-MODIFIED model/model.safetensors",
        references=_REFS_INTEGRITY,
    )
)

MANIFEST_FILE_ADDED = register_rule(
    Rule(
        id="MANIFEST-FILE-ADDED",
        pillar="audit",
        severity=Severity.MEDIUM,
        title="File not listed in the integrity manifest",
        what="Reports a file (or symbolic link) present in the model directory but absent "
        "from the manifest or signature. When its content equals a removed file's, the "
        "evidence says it was probably renamed.",
        why="Loaders pick files by name: an added `pytorch_model.bin` beside "
        "`model.safetensors`, or an extra `*.py` module used with `trust_remote_code`, "
        "changes what a load executes without touching any listed file.",
        example="extra.pkl copied into a model directory after its manifest was made.",
        references=_REFS_INTEGRITY,
    )
)

MANIFEST_FILE_REMOVED = register_rule(
    Rule(
        id="MANIFEST-FILE-REMOVED",
        pillar="audit",
        severity=Severity.HIGH,
        title="File listed in the integrity manifest is missing",
        what="Reports a file the manifest or signature lists that is no longer in the model "
        "directory.",
        why="A removed file makes loaders fall back to another one (for example from "
        "`model.safetensors` to a pickle-based `pytorch_model.bin`), and a model with a "
        "missing shard is not the model that was reviewed.",
        example="model.safetensors deleted, leaving only pytorch_model.bin.",
        references=_REFS_INTEGRITY,
    )
)

MANIFEST_INVALID = register_rule(
    Rule(
        id="MANIFEST-INVALID",
        pillar="audit",
        severity=Severity.HIGH,
        title="Integrity manifest is unreadable, malformed or inconsistent",
        what="Reports a manifest that cannot be read, is not valid JSON, does not follow the "
        "documented format (`docs/manifest.md`), or whose digests do not agree with each "
        "other (the top-level digest, chunk counts and sizes are cross-checked). Nothing "
        "is verified against such a manifest.",
        why="A manifest that was truncated or edited by hand cannot vouch for anything; "
        "treating it as a pass would let a forged manifest hide a modified model.",
        example="A manifest cut short in transit, or one whose `files` entry was edited "
        "without recomputing `digest`.",
        references=("CWE-345", "CWE-354"),
    )
)

SIGNATURE_INVALID = register_rule(
    Rule(
        id="SIGNATURE-INVALID",
        pillar="audit",
        severity=Severity.CRITICAL,
        title="Model signature does not verify",
        what="Reports an OpenSSF model-signing signature (a Sigstore bundle with a DSSE "
        "envelope) that cannot be read, was not made by the given public key, or whose "
        "signed payload is inconsistent. The model is not compared against an invalid "
        "signature.",
        why="The signature is what ties the model to its publisher. A signature that does "
        "not verify means the model, the signature or the key is not what it claims to be.",
        example="A signature made with another key, or a bundle whose payload was edited.",
        references=("CWE-347",),
    )
)
