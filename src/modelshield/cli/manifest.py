"""``modelshield manifest``: integrity manifests and model-signing signatures.

* ``manifest create PATH`` writes a manifest of every file of a model (digests and sizes);
* ``manifest verify PATH`` reports files added, removed or modified since, as findings (with
  ``--signature`` and ``--public-key`` it verifies an OpenSSF model-signing signature instead);
* ``manifest sign PATH --key KEY`` signs a model in the model-signing format with a local key.
"""

from __future__ import annotations

import argparse
import re
import sys

from msgspec.structs import replace

from modelshield.cli._common import add_output_options, emit_report, resolve_policy
from modelshield.core.findings import Severity

_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


def parse_size(text: str) -> int:
    """``67108864``, ``64MiB``, ``64M`` (powers of 1000) or ``1GiB`` as a number of bytes."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]i?)?[bB]?\s*", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 64MiB)")
    return int(m.group(1)) * _UNITS[(m.group(2) or "").lower()]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``manifest`` parser and its ``create``, ``verify`` and ``sign`` actions."""
    parser = subparsers.add_parser(
        "manifest",
        help="create or verify a model's integrity manifest; sign with model-signing",
        description="Record every file of a model with its digests, and later report what was "
        "added, removed or modified. Large files are hashed in parallel chunks.",
    )
    actions = parser.add_subparsers(dest="manifest_action", metavar="ACTION", required=True)

    create = actions.add_parser(
        "create",
        help="write a manifest of a model directory or file",
        description="Hash every file of PATH (in parallel 64 MiB chunks) into a JSON manifest "
        "(format: docs/manifest.md).",
        epilog="Exit codes: 0 written, 2 a file could not be read (nothing is written).",
    )
    create.add_argument("path", metavar="PATH", help="model directory or file")
    create.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="manifest to write (default: PATH/modelshield.manifest.json for a directory, "
        "PATH.manifest.json for a file)",
    )
    create.add_argument(
        "--chunk-size",
        type=parse_size,
        default=None,
        metavar="SIZE",
        help="bytes per hashed chunk, e.g. 64MiB (the default)",
    )
    create.add_argument(
        "--plain",
        action="store_true",
        help="also record the plain whole-file SHA-256 of files larger than one chunk "
        "(sequential per file, so slower for a single large file)",
    )
    create.add_argument(
        "--blake3",
        action="store_true",
        help="also record whole-file BLAKE3 digests (needs the blake3 package; a second digest "
        "costs throughput on machines with few cores)",
    )
    _ignore_option(create)
    _common_options(create)

    verify = actions.add_parser(
        "verify",
        help="report files added, removed or modified since the manifest or signature",
        description="Hash PATH again and compare it with its manifest, or with a model-signing "
        "signature when --signature and --public-key are given.",
        epilog="Exit codes: 0 no findings at or above --fail-on, 1 findings at or above it, "
        "2 error (a file could not be read, or a usage error).",
    )
    verify.add_argument("path", metavar="PATH", help="model directory or file")
    verify.add_argument(
        "-m",
        "--manifest",
        metavar="FILE",
        help="manifest to verify against (default: where 'create' writes it)",
    )
    verify.add_argument(
        "--signature", metavar="FILE", help="a model-signing signature (Sigstore bundle)"
    )
    verify.add_argument(
        "--public-key", metavar="FILE", help="PEM public key the signature must be made with"
    )
    verify.add_argument(
        "--ignore-path",
        action="append",
        default=[],
        metavar="PREFIX",
        help="with --signature: also leave out this path prefix (repeatable)",
    )
    add_output_options(verify)
    verify.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="RULE",
        help="drop findings of this rule id (repeatable)",
    )
    verify.add_argument(
        "-q", "--quiet", action="store_true", help="text format: list only files with findings"
    )
    _common_options(verify)

    sign = actions.add_parser(
        "sign",
        help="sign a model with a local EC key (OpenSSF model-signing format)",
        description="Hash PATH and sign it with a PEM elliptic-curve private key. The signature "
        "is a Sigstore bundle that `model_signing verify key` and `modelshield manifest verify "
        "--signature` accept.",
    )
    sign.add_argument("path", metavar="PATH", help="model directory or file")
    sign.add_argument("--key", required=True, metavar="FILE", help="PEM EC private key")
    sign.add_argument(
        "--password-env",
        metavar="VAR",
        help="environment variable holding the private key's password",
    )
    sign.add_argument(
        "--signature",
        metavar="FILE",
        help="signature to write (default: PATH/model.sig, or PATH.sig for a file)",
    )
    sign.add_argument(
        "--method",
        choices=["files", "shards"],
        default="files",
        help="one digest per file (default; what model-signing verifies without options) or "
        "per shard (parallel for large files)",
    )
    sign.add_argument(
        "--algorithm",
        choices=["sha256", "blake3"],
        default="sha256",
        help="digest algorithm for --method files (default: sha256)",
    )
    sign.add_argument(
        "--shard-size",
        type=parse_size,
        default=None,
        metavar="SIZE",
        help="bytes per shard for --method shards (default: 64MiB)",
    )
    _ignore_option(sign)
    _common_options(sign)


def _ignore_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ignore-path",
        action="append",
        default=[],
        metavar="PREFIX",
        help="leave out this path prefix, relative to PATH (repeatable; .git, .github, "
        ".gitattributes and .gitignore are always left out)",
    )


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="policy file (limits, and for verify the failure threshold and ignores)",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="hashing threads (default: the number of CPUs)",
    )


def run(args: argparse.Namespace) -> int:
    """Dispatch to the action and return its exit code."""
    action = args.manifest_action
    if action == "create":
        return _create(args)
    if action == "sign":
        return _sign(args)
    return _verify(args)


def _create(args: argparse.Namespace) -> int:
    from pathlib import Path

    from modelshield.core.errors import ConfigError
    from modelshield.integrity.hashing import DEFAULT_CHUNK_SIZE
    from modelshield.integrity.manifest import (
        create_manifest,
        default_manifest_path,
        manifest_summary,
    )
    from modelshield.integrity.tree import DEFAULT_IGNORE

    policy, _ = resolve_policy(args.policy)
    output = args.output or default_manifest_path(args.path)
    outcome = create_manifest(
        args.path,
        output=output,
        chunk_size=args.chunk_size or DEFAULT_CHUNK_SIZE,
        plain=args.plain,
        blake3=args.blake3,
        ignore=[*DEFAULT_IGNORE, *args.ignore_path],
        policy=policy,
        workers=args.workers,
    )
    if outcome.errors:
        for e in outcome.errors:
            print(f"modelshield: error: {e.location.display()}: {e.message}", file=sys.stderr)
        print(
            "modelshield: no manifest written: the model could not be read completely",
            file=sys.stderr,
        )
        return 2
    try:
        Path(output).write_text(outcome.manifest.to_json(), encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot write the manifest to {output}: {e.strerror or e}") from e
    facts = manifest_summary(outcome.manifest)
    rate = outcome.bytes_hashed / outcome.duration_s / 1e9 if outcome.duration_s > 0 else 0.0
    print(
        f"wrote {output}: {facts['files']} files, {facts['bytes']} bytes, "
        f"digest sha256:{facts['digest']} ({outcome.duration_s:.2f} s, {rate:.2f} GB/s)"
    )
    return 0


def _sign(args: argparse.Namespace) -> int:
    import os

    from modelshield.core.errors import ConfigError
    from modelshield.integrity.hashing import DEFAULT_CHUNK_SIZE
    from modelshield.integrity.model_signing import sign_model
    from modelshield.integrity.tree import DEFAULT_IGNORE

    policy, _ = resolve_policy(args.policy)
    password = None
    if args.password_env:
        password = os.environ.get(args.password_env)
        if password is None:
            raise ConfigError(f"environment variable {args.password_env} is not set")
    outcome = sign_model(
        args.path,
        args.key,
        args.signature,
        method=args.method,
        algorithm=args.algorithm,
        shard_size=args.shard_size or DEFAULT_CHUNK_SIZE,
        ignore=[*DEFAULT_IGNORE, *args.ignore_path],
        password=password,
        policy=policy,
        workers=args.workers,
    )
    print(
        f"wrote {outcome.signature}: {outcome.resources} {args.method} signed "
        f"({outcome.bytes_hashed} bytes in {outcome.duration_s:.2f} s)"
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    from modelshield.core.errors import ConfigError

    policy, source = resolve_policy(args.policy)
    if args.fail_on is not None:
        policy = policy.with_fail_on(Severity.parse(args.fail_on))
    if args.ignore:
        policy = replace(policy, ignore=policy.ignore | frozenset(args.ignore))
    if (args.signature is None) != (args.public_key is None):
        raise ConfigError("--signature and --public-key go together")
    if args.signature is not None:
        if args.manifest is not None:
            raise ConfigError("give either --manifest or --signature, not both")
        from modelshield.integrity.model_signing import verify_signature

        raw = verify_signature(
            args.path,
            args.signature,
            args.public_key,
            ignore=args.ignore_path,
            policy=policy,
            workers=args.workers,
        )
    else:
        from modelshield.integrity.manifest import verify_manifest

        if args.ignore_path:
            raise ConfigError("--ignore-path applies to --signature; a manifest records its own")
        raw = verify_manifest(args.path, args.manifest, policy=policy, workers=args.workers)
    # manifest verify has never printed the "report written" line; kept as it was.
    return emit_report(policy.apply(raw), args, policy, source)
