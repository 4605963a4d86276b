"""Interoperate with OpenSSF model signing (the ``model-signing`` package).

A model-signing signature is a Sigstore bundle whose DSSE envelope carries an in-toto statement:
one resource per file (``files`` serialization, whole-file SHA-256 or BLAKE3) or per file shard
(``shards`` serialization, ``path:start:end`` with the SHA-256 of that byte range). The shards
are exactly modelshield's chunks, so both formats come from the same parallel hashing.

* :func:`sign_model` hashes a model with modelshield's parallel hashing and signs the result with
  a local elliptic-curve private key (P-256, P-384 or P-521, PEM), through model-signing's own
  payload and signer, so the signature verifies with ``model_signing.verifying`` and its CLI
  (``model_signing verify key``).
* :func:`verify_signature` checks a signature made with a key (by model-signing or by
  :func:`sign_model`) and compares the signed resources with the model on disk, reporting
  ``SIGNATURE-INVALID`` or the same added/removed/modified findings as a manifest.

Keyless (Sigstore OIDC) signing needs the internet and is not offered. The package is imported
only when these functions run; without it they raise
:class:`~modelshield.core.errors.MissingExtraError`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any, Literal

from msgspec import Struct
from msgspec.structs import replace

from modelshield.core.errors import ConfigError, MissingExtraError
from modelshield.core.findings import ErrorRecord, FileResult, Location, Report
from modelshield.core.policy import Policy
from modelshield.integrity.compare import Expected, verify_tree
from modelshield.integrity.hashing import (
    BLAKE3,
    DEFAULT_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    SHA256,
    FileDigest,
    HashJob,
    chunk_ranges,
    hash_files,
)
from modelshield.integrity.manifest import manifest_byte_limit
from modelshield.integrity.rules import SIGNATURE_INVALID
from modelshield.integrity.tree import DEFAULT_IGNORE, Tree, list_tree, relative_inside

Method = Literal["files", "shards"]
"""model-signing serialization: one resource per file, or per fixed-size shard."""

_FEATURE = "model signing"


def _api() -> SimpleNamespace:
    """Import the parts of model-signing used here, or raise MissingExtraError.

    The payload, signer and verifier classes live in model-signing's ``_signing`` modules;
    importing them in one place keeps a future rename a one-line fix.
    """
    try:
        return SimpleNamespace(
            manifest=importlib.import_module("model_signing.manifest"),
            hashing=importlib.import_module("model_signing._hashing.hashing"),
            signing=importlib.import_module("model_signing._signing.signing"),
            ec_key=importlib.import_module("model_signing._signing.sign_ec_key"),
            sigstore_pb=importlib.import_module("model_signing._signing.sign_sigstore_pb"),
        )
    except ImportError as e:
        raise MissingExtraError(_FEATURE, "signing", "model-signing") from e


def signing_available() -> bool:
    """Whether model-signing (and what it imports) is installed."""
    try:
        _api()
    except MissingExtraError:
        return False
    return True


class SignOutcome(Struct, frozen=True):
    """What :func:`sign_model` wrote."""

    signature: str
    """Path of the signature (Sigstore bundle JSON)."""
    resources: int
    """Number of signed resources (files or shards)."""
    bytes_hashed: int
    """Bytes read."""
    duration_s: float
    """Wall-clock seconds."""


def default_signature_path(model: str | os.PathLike[str]) -> str:
    """``model.sig`` inside a model directory, or ``<file>.sig`` beside a single file."""
    p = Path(model)
    return str(p / "model.sig") if p.is_dir() else str(p.with_name(p.name + ".sig"))


def _model_name(root: str) -> str:
    return Path(root).name or Path(root).absolute().name


def _ignore_list(root: str, ignore: Sequence[str], extra: Sequence[str]) -> list[str]:
    out = [i.strip("/") for i in ignore if i.strip("/")]
    if Path(root).is_dir():
        for path in extra:
            inside = relative_inside(root, path)
            if inside is not None and inside not in out:
                out.append(inside)
    return out


def sign_model(
    model: str | os.PathLike[str],
    private_key: str | os.PathLike[str],
    signature: str | os.PathLike[str] | None = None,
    *,
    method: Method = "files",
    algorithm: Literal["sha256", "blake3"] = "sha256",
    shard_size: int = DEFAULT_CHUNK_SIZE,
    ignore: Sequence[str] = DEFAULT_IGNORE,
    password: str | None = None,
    policy: Policy | None = None,
    workers: int | None = None,
) -> SignOutcome:
    """Sign ``model`` with a PEM elliptic-curve private key, in model-signing's format.

    ``method="files"`` (what model-signing's CLI verifies by default) records one digest per
    file; ``"shards"`` records one SHA-256 per ``shard_size`` bytes, hashed in parallel. The
    signature file is left out of what is signed when it lies inside the model directory.
    Raises :class:`ConfigError` for a bad key or a model that cannot be signed completely
    (unreadable files, symbolic links, special files).
    """
    started = time.monotonic()
    api = _api()
    limits = (policy or Policy()).limits
    root = os.fspath(model)
    sig_path = os.fspath(signature) if signature is not None else default_signature_path(root)
    if method == "shards" and (algorithm != SHA256 or shard_size < MIN_CHUNK_SIZE):
        raise ConfigError(f"shards need sha256 and a shard size of at least {MIN_CHUNK_SIZE}")
    try:
        signer = api.ec_key.Signer(Path(private_key), password)
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"cannot use private key {os.fspath(private_key)}: {e}") from e
    ignore_list = _ignore_list(root, ignore, [sig_path])
    try:
        tree = list_tree(root, ignore_list, limits)
    except OSError as e:
        raise ConfigError(f"cannot read {root}: {e.strerror or e}") from e
    problems = [f"{p}: {m}" for p, m in tree.problems]
    jobs = []
    for rel, disk in sorted(tree.entries.items()):
        if disk.kind != "file":
            problems.append(f"{disk.source}: a {disk.kind} cannot be signed (use --ignore)")
        elif not (method == "shards" and disk.size == 0):  # model-signing skips empty shards
            key = rel if tree.is_dir else "."
            jobs.append(
                HashJob(
                    key,
                    disk.source,
                    plain=method == "files" and algorithm == SHA256,
                    blake3=algorithm == BLAKE3,
                    chunked=method == "shards",
                )
            )
    items: list[Any] = []
    hashed = 0
    for r in hash_files(
        jobs, chunk_size=shard_size, workers=workers, max_file_bytes=limits.max_file_bytes
    ):
        if not isinstance(r, FileDigest):
            problems.append(f"{r.path}: {r.message}")
            continue
        hashed += r.size
        items.extend(_items(api, r, method, algorithm, shard_size))
    if problems:
        raise ConfigError("the model cannot be signed completely:\n  " + "\n  ".join(problems))
    args: dict[str, Any] = {"method": method, "hash_type": algorithm, "allow_symlinks": False}
    if method == "shards":
        args["shard_size"] = shard_size
    if tree.is_dir:
        args["ignore_paths"] = ignore_list
    serialization = api.manifest.SerializationType.from_args(args)
    manifest = api.manifest.Manifest(_model_name(root), items, serialization)
    bundle = signer.sign(api.signing.Payload(manifest))
    try:
        bundle.write(Path(sig_path))
    except OSError as e:
        raise ConfigError(f"cannot write {sig_path}: {e.strerror or e}") from e
    return SignOutcome(sig_path, len(items), hashed, time.monotonic() - started)


def _items(
    api: SimpleNamespace, r: FileDigest, method: Method, algorithm: str, shard: int
) -> list[Any]:
    path = PurePosixPath(r.path)
    digest = api.hashing.Digest
    if method == "shards":
        name = f"{SHA256}-sharded-{shard}"
        return [
            api.manifest.ShardedFileManifestItem(
                path=path, start=s, end=e, digest=digest(name, bytes.fromhex(h))
            )
            for (s, e), h in zip(chunk_ranges(r.size, shard), r.chunks, strict=True)
        ]
    value = r.blake3 if algorithm == BLAKE3 else r.sha256
    if value is None:  # pragma: no cover - the job asked for it
        raise ConfigError(f"{r.path}: no {algorithm} digest was computed")
    return [
        api.manifest.FileManifestItem(path=path, digest=digest(algorithm, bytes.fromhex(value)))
    ]


# ---- verify -------------------------------------------------------------------------------


class _Invalid(Exception):
    """The signature or its payload cannot be trusted."""


def verify_signature(
    model: str | os.PathLike[str],
    signature: str | os.PathLike[str],
    public_key: str | os.PathLike[str],
    *,
    ignore: Sequence[str] = (),
    policy: Policy | None = None,
    workers: int | None = None,
) -> Report:
    """Verify a model-signing signature made with an elliptic-curve key, then the model.

    The result for the signature carries ``SIGNATURE-INVALID`` when it does not verify (and
    nothing else is checked); otherwise every signed resource is compared with the model as
    :func:`~modelshield.integrity.manifest.verify_manifest` does. ``ignore`` adds path prefixes
    to the ones the signature records. A public key that cannot be loaded is a
    :class:`ConfigError` (a usage error, not a property of the model).
    """
    started = time.monotonic()
    api = _api()
    limits = (policy or Policy()).limits
    root = os.fspath(model)
    sig_path = os.fspath(signature)
    try:
        verifier = api.ec_key.Verifier(Path(public_key))
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"cannot use public key {os.fspath(public_key)}: {e}") from e
    sig_loc = Location(sig_path)
    try:
        signed = _verified_manifest(api, verifier, sig_path, manifest_byte_limit(limits))
        params = dict(signed.serialization_type)
        method, shard, expected = _expected(api, signed, params)
    except _Invalid as e:
        finding = SIGNATURE_INVALID.finding(
            sig_loc,
            f"The signature does not verify, so the model was not checked against it: {e}.",
            evidence={"problem": str(e)},
        )
        result = FileResult(sig_path, "sigstore-bundle", findings=(finding,))
        return Report.of("manifest", [result], duration_s=time.monotonic() - started)
    sig_result = FileResult(
        sig_path,
        "sigstore-bundle",
        metadata={"serialization": method, "hash_type": str(params.get("hash_type"))},
    )
    recorded = params.get("ignore_paths") or []
    ignore_list = _ignore_list(root, [*DEFAULT_IGNORE, *map(str, recorded), *ignore], [sig_path])
    try:
        tree = list_tree(root, ignore_list, limits, follow_links=bool(params.get("allow_symlinks")))
    except OSError as e:
        err = ErrorRecord(Location(root), f"cannot read: {e.strerror or e}", stage="io")
        return Report.of("manifest", [sig_result, FileResult(root, "missing", errors=(err,))])
    entries = dict(tree.entries)
    if not tree.is_dir:
        (only,) = entries.values()
        entries = {".": replace(only, path=".")}
    if method == "shards":  # model-signing never lists empty files as shards
        entries = {k: d for k, d in entries.items() if not (d.kind == "file" and d.size == 0)}
    tree = Tree(tree.root, tree.is_dir, entries, tree.problems)
    display = {".": root} if not tree.is_dir else None
    results = verify_tree(
        tree, expected, chunk_size=shard, limits=limits, workers=workers, display=display
    )
    if tree.problems:
        errs = tuple(ErrorRecord(Location(p), m, stage="io") for p, m in tree.problems)
        results.insert(0, FileResult(root, "directory", errors=errs))
    return Report.of("manifest", [sig_result, *results], duration_s=time.monotonic() - started)


def _verified_manifest(api: SimpleNamespace, verifier: Any, sig_path: str, cap: int) -> Any:
    """Check the bundle's signature and return the signed model-signing manifest."""
    try:
        size = Path(sig_path).stat().st_size
    except OSError as e:
        raise _Invalid(f"cannot read the signature: {e.strerror or e}") from e
    if size > cap:
        raise _Invalid(f"the signature is larger than {cap} bytes")
    # model-signing prints warnings on stdout; keep machine-readable output clean.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            bundle = api.sigstore_pb.Signature.read(Path(sig_path))
        except Exception as e:  # JSON, schema and encoding errors of a hostile file
            raise _Invalid(f"not a readable Sigstore bundle ({type(e).__name__}: {e})") from e
        try:
            return verifier.verify(bundle)
        except Exception as e:  # InvalidSignature, ValueError, KeyError of a forged payload
            detail = str(e) or "the signature was not made by this key"
            raise _Invalid(f"{type(e).__name__}: {detail}") from e


def _expected(
    api: SimpleNamespace, signed: Any, params: dict[str, Any]
) -> tuple[Method, int, dict[str, Expected]]:
    """The signed resources as expectations: per file, or per file from its shards."""
    method = params.get("method")
    hash_type = params.get("hash_type")
    if method == "files":
        if hash_type not in (SHA256, BLAKE3):
            raise _Invalid(f"unsupported hash type {hash_type!r} (sha256 and blake3 are)")
        expected = {}
        for rd in signed.resource_descriptors():
            hexd = rd.digest.digest_hex
            expected[rd.identifier] = Expected(
                rd.identifier,
                "file",
                sha256=hexd if hash_type == SHA256 else None,
                blake3=hexd if hash_type == BLAKE3 else None,
            )
        return "files", DEFAULT_CHUNK_SIZE, expected
    if method != "shards" or hash_type != SHA256:
        raise _Invalid(f"unsupported serialization {method!r} with hash type {hash_type!r}")
    raw = params.get("shard_size")
    # Serialized through a protobuf Struct, the shard size comes back as a float.
    if not isinstance(raw, int | float) or isinstance(raw, bool) or raw != int(raw) or raw < 1:
        raise _Invalid(f"invalid shard size {raw!r}")
    shard = int(raw)
    shards: dict[str, list[tuple[int, int, str]]] = {}
    for rd in signed.resource_descriptors():
        try:
            path, start, end = rd.identifier.rsplit(":", 2)
            shards.setdefault(path, []).append((int(start), int(end), rd.digest.digest_hex))
        except ValueError as e:
            raise _Invalid(f"malformed shard name {rd.identifier!r}") from e
    expected = {}
    for path, items in shards.items():
        items.sort()
        size = items[-1][1]
        if [(s, e) for s, e, _ in items] != chunk_ranges(size, shard):
            raise _Invalid(f"the shards of {path!r} do not cover it in {shard}-byte pieces")
        expected[path] = Expected(path, "file", size, tuple(h for _, _, h in items))
    return "shards", shard, expected
