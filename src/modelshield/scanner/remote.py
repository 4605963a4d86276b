"""Models on the Hugging Face Hub: ``hf://ORG/REPO[@REVISION][/PATH]`` and hub URLs.

:func:`parse_remote` tells a hub reference from a local path; :func:`download` lists the
repository at one commit, chooses the files to fetch, checks them against the limits before
anything is downloaded, and fetches them with ``huggingface_hub`` (the ``hub`` extra, imported
only here) into its cache, where the engine scans them like any local directory (snapshot
files are links to blobs; the engine follows links to files) and the repository pass applies.

**Which files.** Every file of the repository (or of the folder or file named) except those
no model loader reads: documentation, images, audio and video, data tables and git metadata
(:data:`NOT_READ_BY_LOADERS`). A list of "model files" would miss what some loader reads (a
TensorFlow checkpoint shard ``variables.data-00000-of-00001``, ONNX external data, a Paddle
``.pdparams`` pickle, a YAML config with Python tags), so the selection is everything else.
A file above ``limits.max_file_bytes`` is not downloaded and is reported as it would be on
disk (``SCAN-FILE-TOO-LARGE``, not analysed); files to fetch beyond
``limits.max_download_bytes`` in total, or more than ``limits.max_download_files`` of them, stop
the scan before any download (raise the limit in the policy to go on).

Where the files come from is the library's business: ``HF_ENDPOINT`` (a mirror, or a local
server in the tests), ``HF_TOKEN`` or a stored login for gated and private repositories,
``HF_HOME``/``HF_HUB_CACHE`` for the cache. A hub that cannot be reached, offline mode
(``HF_HUB_OFFLINE=1``), an unknown repository or revision are :class:`ServiceError`\\ s.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from msgspec import Struct

from modelshield.core.errors import ConfigError, MissingExtraError, ServiceError
from modelshield.core.findings import FileResult, Location
from modelshield.core.limits import Limits

SCHEME = "hf://"
"""The scheme of hub references on the command line."""

HUB_HOSTS = frozenset({"huggingface.co", "www.huggingface.co", "hf.co"})
"""Hosts whose URLs name hub repositories (downloads still go through ``HF_ENDPOINT``)."""

NOT_READ_BY_LOADERS: tuple[str, ...] = (
    # documentation
    "*.md",
    "*.rst",
    "*.pdf",
    "*.html",
    # images, audio, video
    "*.png",
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.webp",
    "*.bmp",
    "*.svg",
    "*.ico",
    "*.tif",
    "*.tiff",
    "*.mp3",
    "*.wav",
    "*.flac",
    "*.ogg",
    "*.mp4",
    "*.webm",
    "*.mov",
    "*.avi",
    # data tables (evaluation sets, examples)
    "*.parquet",
    "*.arrow",
    "*.csv",
    "*.tsv",
    # git metadata
    ".gitattributes",
    "*/.gitattributes",
    ".gitignore",
    "*/.gitignore",
)
"""Files no model loader reads, as ``fnmatch`` patterns on the path in the repository (the
patterns ``huggingface_hub`` applies). Every other file is downloaded and scanned."""

#: Folder-type namespaces of hub URLs that are not model repositories.
_OTHER_KINDS = frozenset({"datasets", "spaces", "buckets", "kernels"})
#: Revisions with slashes the hub knows (pull requests, conversions).
_SLASHED_REVISION = re.compile(r"^refs/(?:pr|convert)/[^/]+")
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")


class RemoteRef(Struct, frozen=True):
    """A model repository on the hub, at a revision, optionally one folder or file of it."""

    repo_id: str
    """``org/name`` (or a legacy name without an organisation)."""
    revision: str | None = None
    """Branch, tag or commit; None: the default branch."""
    path: str = ""
    """A folder or file inside the repository; empty: all of it."""

    def display(self) -> str:
        """The reference as ``hf://`` text."""
        text = SCHEME + self.repo_id
        if self.revision is not None:
            text += "@" + self.revision
        return text + (f"/{self.path}" if self.path else "")


class Snapshot(Struct, frozen=True):
    """What :func:`download` fetched."""

    ref: RemoteRef
    """What was asked for."""
    commit: str
    """The commit the revision resolved to (what was scanned)."""
    root: str
    """The snapshot folder in the cache (one per commit)."""
    target: str
    """What to scan: the snapshot folder, or the folder or file ``ref.path`` names in it."""
    files: tuple[str, ...]
    """Paths in the repository that were downloaded (or already cached)."""
    size: int
    """Their bytes."""
    left_out: tuple[str, ...] = ()
    """Paths left out as never read by loaders (:data:`NOT_READ_BY_LOADERS`)."""
    oversized: tuple[tuple[str, int], ...] = ()
    """Paths above ``limits.max_file_bytes``, with their sizes: not downloaded, not analysed."""


def parse_remote(text: str) -> RemoteRef | None:
    """The hub reference ``text`` names, or None when it is a local path.

    ``hf://ORG/REPO[@REVISION][/PATH]`` (``hf://`` paths as ``huggingface_hub``'s file system
    writes them) and ``https://huggingface.co/ORG/REPO[/tree/REV[/PATH]|/blob/REV/PATH|
    /resolve/REV/PATH]``. A URL of another kind, a dataset or a Space, or a malformed
    reference raises :class:`ConfigError`.
    """
    if text.startswith(SCHEME):
        return _parse_hf(text[len(SCHEME) :], text)
    if "://" not in text:
        return None
    split = urlsplit(text)
    endpoint = os.environ.get("HF_ENDPOINT", "").rstrip("/")
    if split.scheme in ("http", "https") and split.hostname in HUB_HOSTS:
        return _parse_url(split.path, text)
    if endpoint and text.startswith(endpoint + "/"):
        return _parse_url(urlsplit(text).path[len(urlsplit(endpoint).path) :], text)
    raise ConfigError(
        f"cannot scan {text!r}: only Hugging Face model references are fetched "
        "(hf://ORG/REPO[@REVISION] or https://huggingface.co/ORG/REPO); download other files "
        "first and scan them locally"
    )


def _parse_hf(rest: str, text: str) -> RemoteRef:
    """``ORG/REPO[@REVISION][/PATH]`` (or ``NAME[@REVISION]``, a legacy single name)."""
    first, _, after = rest.partition("/")
    tail: str | None = None
    path = ""
    if "@" in first:
        repo_id, _, tail = rest.partition("@")
        names = [repo_id]
    elif not after:
        repo_id, names = first, [first]
    else:
        second, _, more = after.partition("/")
        name, at, revision = second.partition("@")
        names = [first, name]
        repo_id = f"{first}/{name}"
        if at:
            tail = revision + (f"/{more}" if more else "")
        else:
            path = more
    _check_names(names, text)
    if tail is None:
        return RemoteRef(repo_id, None, _clean_path(path, text))
    revision, path = _revision_and_path(unquote(tail), text)
    return RemoteRef(repo_id, revision, _clean_path(path, text))


def _parse_url(path: str, text: str) -> RemoteRef:
    """The path of a hub URL: ``/ORG/REPO[/tree|blob|resolve/REV[/PATH]]``."""
    parts = [p for p in path.split("/") if p]
    names, rest = parts[:2], parts[2:]
    _check_names(names, text)
    repo_id = "/".join(names)
    if not rest:
        return RemoteRef(repo_id)
    if rest[0] not in ("tree", "blob", "resolve") or len(rest) < 2:
        raise ConfigError(f"{text!r}: not a repository, folder or file URL of the hub")
    revision, sub = _revision_and_path(unquote("/".join(rest[1:])), text)
    return RemoteRef(repo_id, revision, _clean_path(sub, text))


def _check_names(names: list[str], text: str) -> None:
    if not names or not names[0]:
        raise ConfigError(f"{text!r}: no repository named (hf://ORG/REPO)")
    if names[0] in _OTHER_KINDS:
        raise ConfigError(
            f"{text!r}: only model repositories are fetched, not {names[0]}; download the "
            "files first and scan them locally"
        )
    for name in names:
        if not _NAME.match(name):
            raise ConfigError(f"{text!r}: {name!r} is not a repository name")


def _revision_and_path(tail: str, text: str) -> tuple[str, str]:
    """``REV[/PATH]``, where a pull-request or conversion revision holds a slash."""
    slashed = _SLASHED_REVISION.match(tail)
    if slashed is not None:
        revision, path = slashed.group(0), tail[slashed.end() :]
    else:
        revision, _, path = tail.partition("/")
    if not revision:
        raise ConfigError(f"{text!r}: no revision after '@'")
    return revision, path


def _clean_path(path: str, text: str) -> str:
    path = path.strip("/")
    if any(part in ("", ".", "..") for part in path.split("/")) and path:
        raise ConfigError(f"{text!r}: {path!r} is not a path inside the repository")
    return path


def _hub() -> None:
    """Fail with the install command when the ``hub`` extra is missing."""
    try:
        import huggingface_hub  # noqa: F401
    except ImportError as e:
        raise MissingExtraError("scanning hf:// models", "hub", "huggingface_hub") from e


#: Files downloaded at once (``huggingface_hub``'s own default for snapshots).
DOWNLOAD_THREADS = 8


def download(
    ref: RemoteRef,
    limits: Limits,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    progress: bool = False,
) -> Snapshot:
    """List ``ref`` at one commit, check the limits, fetch the chosen files into the cache.

    Nothing is downloaded when a limit is exceeded. ``progress`` leaves the library's progress
    bars on (standard error). Files already in the cache are not downloaded again.
    """
    _hub()
    from huggingface_hub import HfApi, constants
    from huggingface_hub.file_download import repo_folder_name
    from huggingface_hub.hf_api import RepoFile

    api = HfApi(endpoint=endpoint)
    shown = ref.display()
    try:
        commit = api.model_info(ref.repo_id, revision=ref.revision).sha
        if not commit:
            raise ServiceError(f"{shown}: the hub did not say which commit the revision is")
        listing = [
            (entry.path, _size(entry))
            for entry in api.list_repo_tree(ref.repo_id, recursive=True, revision=commit)
            if isinstance(entry, RepoFile)
        ]
    except ServiceError:
        raise
    except Exception as e:
        raise _service_error(shown, e) from e
    chosen, left_out, oversized = select(listing, ref.path, limits, shown)
    if not chosen and not oversized:
        raise ServiceError(
            f"{shown}: no file to scan at commit {commit} (only files no loader reads: "
            f"{len(left_out)})"
        )
    cache = Path(constants.HF_HUB_CACHE if cache_dir is None else cache_dir).expanduser()
    folder = repo_folder_name(repo_id=ref.repo_id, repo_type="model")
    root = os.fspath(cache.resolve() / folder / "snapshots" / commit)
    with _progress_bars(progress):
        _fetch(ref, commit, [name for name, _ in chosen], cache_dir, endpoint, root)
    target = os.fspath(Path(root) / ref.path) if ref.path else root
    return Snapshot(
        ref=ref,
        commit=commit,
        root=root,
        target=target if chosen else "",
        files=tuple(name for name, _ in chosen),
        size=sum(size for _, size in chosen),
        left_out=tuple(left_out),
        oversized=tuple(oversized),
    )


@contextmanager
def _progress_bars(shown: bool) -> Iterator[None]:
    """The library's progress bars off for the block unless ``shown`` (and as they were after
    it: library users keep their own setting)."""
    from huggingface_hub.utils.tqdm import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    if shown or are_progress_bars_disabled():
        yield
        return
    disable_progress_bars()
    try:
        yield
    finally:
        enable_progress_bars()


def _fetch(
    ref: RemoteRef,
    commit: str,
    names: list[str],
    cache_dir: str | os.PathLike[str] | None,
    endpoint: str | None,
    root: str,
) -> None:
    """Download ``names`` at ``commit`` (threads, as ``snapshot_download`` does) into the
    snapshot folder ``root``; every one must arrive there, or the scan stops: a file missing
    from the scan would be a silent pass."""
    from concurrent.futures import ThreadPoolExecutor

    from huggingface_hub import hf_hub_download

    cache = None if cache_dir is None else Path(cache_dir)

    def one(name: str) -> tuple[str, str]:
        local = hf_hub_download(
            ref.repo_id, name, revision=commit, cache_dir=cache, endpoint=endpoint
        )
        return name, os.fspath(local)

    try:
        with ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
            paths = list(pool.map(one, names))
    except Exception as e:
        raise _service_error(ref.display(), e) from e
    for name, local in paths:
        expected = Path(root) / name
        if not (expected.is_file() and expected.samefile(local)):
            raise ServiceError(
                f"{ref.display()}: {name!r} did not arrive in {root}; nothing was scanned"
            )


def _size(entry: Any) -> int:
    lfs = getattr(entry, "lfs", None)
    size = getattr(lfs, "size", None) if lfs is not None else None
    return int(size if size is not None else entry.size or 0)


def select(
    listing: list[tuple[str, int]], path: str, limits: Limits, shown: str
) -> tuple[list[tuple[str, int]], list[str], list[tuple[str, int]]]:
    """Split a repository's files into those to fetch, those no loader reads, and those above
    ``limits.max_file_bytes``; raise :class:`ConfigError` when the rest breaks a limit.

    A file named exactly by ``path`` is fetched whatever its kind: it was asked for.
    """
    chosen: list[tuple[str, int]] = []
    left_out: list[str] = []
    oversized: list[tuple[str, int]] = []
    found = False
    for name, size in listing:
        if path and name != path and not name.startswith(path + "/"):
            continue
        found = True
        if name != path and is_left_out(name):
            left_out.append(name)
        elif size > limits.max_file_bytes:
            oversized.append((name, size))
        else:
            chosen.append((name, size))
    if path and not found:
        raise ConfigError(f"{shown}: no file or folder {path!r} in the repository")
    if len(chosen) > limits.max_download_files:
        raise ConfigError(
            f"{shown}: {len(chosen)} files to scan, above limits.max_download_files "
            f"({limits.max_download_files}); nothing was downloaded. Raise it in the policy's "
            "[limits], or name a folder or file of the repository"
        )
    total = sum(size for _, size in chosen)
    if total > limits.max_download_bytes:
        raise ConfigError(
            f"{shown}: the files to scan total {total} bytes, above "
            f"limits.max_download_bytes ({limits.max_download_bytes}); nothing was downloaded. "
            "Raise it in the policy's [limits], or name a folder or file of the repository"
        )
    return chosen, left_out, oversized


def is_left_out(name: str) -> bool:
    """Whether a path in a repository is one no loader reads (:data:`NOT_READ_BY_LOADERS`)."""
    return any(fnmatch.fnmatch(name, pattern) for pattern in NOT_READ_BY_LOADERS)


def oversized_results(snapshot: Snapshot, limits: Limits) -> list[FileResult]:
    """Results for the files too large to download, as the engine reports such files on
    disk: ``SCAN-FILE-TOO-LARGE``, skipped, so the run is not a pass unless accepted."""
    from modelshield.scanner.rules import SCAN_TOO_LARGE

    results = []
    for name, size in snapshot.oversized:
        path = os.fspath(Path(snapshot.root) / name)
        if Path(path).exists():  # cached by an earlier download: the scan reports it itself
            continue
        finding = SCAN_TOO_LARGE.finding(
            Location(path),
            f"The file has {size} bytes on the hub ({snapshot.ref.display()}, commit "
            f"{snapshot.commit}), above the limit of {limits.max_file_bytes}; it was not "
            "downloaded. Raise limits.max_file_bytes to scan it.",
            evidence={"size": str(size)},
        )
        results.append(
            FileResult(path=path, format="unknown", findings=(finding,), skipped=True, size=size)
        )
    return results


def _service_error(shown: str, error: Exception) -> ServiceError:
    """A one-line message for what the hub or the network said."""
    kind = type(error).__name__
    reasons = {
        "GatedRepoError": "the repository is gated: accept its terms on the hub and log in "
        "(HF_TOKEN or `hf auth login`)",
        "RepositoryNotFoundError": "no such repository, or it is private (log in with HF_TOKEN)",
        "RevisionNotFoundError": "no such revision (branch, tag or commit) in the repository",
        "OfflineModeIsEnabled": "offline mode is on (HF_HUB_OFFLINE): the hub cannot be asked; "
        "scan the cached snapshot folder instead",
        "LocalEntryNotFoundError": "the hub cannot be reached and the files are not cached",
        "IncompleteSnapshotError": "the hub cannot be reached and the cached snapshot is "
        "incomplete",
        "ConnectError": "the hub cannot be reached (network down, wrong HF_ENDPOINT?)",
        "ConnectTimeout": "the hub did not answer in time",
        "ReadTimeout": "the hub did not answer in time",
    }
    reason = next((reasons[c.__name__] for c in type(error).__mro__ if c.__name__ in reasons), None)
    detail = str(error).strip().splitlines()
    first = detail[0] if detail else kind
    if reason is None:
        return ServiceError(f"{shown}: cannot fetch the model: {kind}: {first}")
    return ServiceError(f"{shown}: cannot fetch the model: {reason} ({kind})")
