"""Read an HDF5 file's structure with h5py, in a child process, and print it as JSON.

Run as ``python -I -m modelshield.scanner.formats.hdf5_probe PATH LIMITS_JSON`` by
:mod:`.hdf5`, under an address-space limit and a timeout: the HDF5 C library parses the file,
and a hostile file that crashes it or makes it allocate without bound takes down this process
only. Nothing here reads dataset contents or follows external links (h5py opens the other
file when an external link is accessed as an object, so links are read with ``getlink=True``).

What is read, all bounded by the limits handed in:

* the attributes Keras reads at the root (``model_config``, ``training_config``,
  ``keras_version``, ``backend``), looked up by name, so that thousands of other attributes
  cannot hide them;
* every group, dataset and link, breadth first, up to ``max_members`` objects, each object's
  attribute count and up to ``max_attributes`` attributes in all, of which small string and
  bytes values that start like a known format are handed back for analysis;
* each dataset's shape, element size and allocated storage, external raw storage files and
  virtual-dataset source files.
"""

from __future__ import annotations

import base64
import json
import sys
from collections import deque
from typing import Any

KERAS_ROOT_ATTRIBUTES = ("model_config", "training_config", "keras_version", "backend")
_SMALL_VALUE = 1 << 20
_MAX_BLOBS = 32


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    return None


def probe(path: str, limits: dict[str, int]) -> dict[str, Any]:
    """Read the structure of the HDF5 file at ``path``."""
    import h5py

    out: dict[str, Any] = {
        "root": {},
        "external": [],
        "datasets": [],
        "blobs": [],
        "objects": 0,
        "attributes": 0,
        "limit": None,
    }
    max_text = limits["max_document_bytes"]
    with h5py.File(path, "r", locking=False) as f:
        for name in KERAS_ROOT_ATTRIBUTES:
            if name not in f.attrs:
                continue
            size = _storage_size(h5py.h5a.open(f.id, name.encode()))
            if size > max_text:
                out["root"][name] = {"too_large": size}
                continue
            text = _text(f.attrs[name])
            if text is not None:
                out["root"][name] = text[: max_text + 1]
        seen: set[tuple[int, int]] = set()
        queue: deque[tuple[str, Any]] = deque([("/", f)])
        while queue:
            where, obj = queue.popleft()
            info = h5py.h5o.get_info(obj.id)
            key = (info.fileno, info.addr)
            if key in seen:
                continue
            seen.add(key)
            out["objects"] += 1
            if out["objects"] > limits["max_members"]:
                out["limit"] = ("max_members", f"more than {limits['max_members']} objects")
                break
            if not _attributes(obj, where, info.num_attrs, out, limits):
                break
            if isinstance(obj, h5py.Dataset):
                _dataset(obj, where, out)
                continue
            for name in obj:
                link = obj.get(name, getlink=True)
                child = where.rstrip("/") + "/" + name
                if isinstance(link, h5py.ExternalLink):
                    out["external"].append(
                        {"kind": "external link", "object": child, "file": link.filename}
                    )
                elif isinstance(link, h5py.HardLink):
                    queue.append((child, obj[name]))
                if len(queue) > limits["max_members"]:
                    out["limit"] = ("max_members", f"more than {limits['max_members']} objects")
                    queue.clear()
                    break
    return out


def _storage_size(attr: Any) -> int:
    """Bytes an attribute stores (h5py raises for an empty one)."""
    try:
        return int(attr.get_storage_size())
    except RuntimeError:
        return 0


def _attributes(
    obj: Any, where: str, count: int, out: dict[str, Any], limits: dict[str, int]
) -> bool:
    """Count an object's attributes and keep the small text or bytes values that start like a
    known format or an executable; False when the attribute budget is spent."""
    import h5py

    from modelshield.scanner.detect import executable_kind, sniff_strong

    budget = limits["max_attributes"]
    if out["attributes"] + count > budget:
        out["limit"] = (
            "max_attributes",
            f"{where} has {count} attributes; more than {budget} in the file",
        )
        return False
    out["attributes"] += count
    for name in obj.attrs:
        attr = h5py.h5a.open(obj.id, name.encode())
        if _storage_size(attr) > _SMALL_VALUE or len(out["blobs"]) >= _MAX_BLOBS:
            continue
        if attr.get_type().get_class() not in (h5py.h5t.STRING, h5py.h5t.OPAQUE):
            continue
        try:
            value = obj.attrs[name]
        except (OSError, TypeError, ValueError):
            continue
        raw = value.encode("utf-8", "replace") if isinstance(value, str) else value
        if not isinstance(raw, bytes) and hasattr(raw, "tobytes"):  # opaque: numpy.void
            raw = raw.tobytes()
        if not isinstance(raw, bytes) or len(raw) < 2:
            continue
        head = raw[:1024]
        if sniff_strong(head) is not None or executable_kind(head) is not None:
            out["blobs"].append(
                {"object": where, "attribute": name, "data": base64.b64encode(raw).decode()}
            )
    return True


def _dataset(dset: Any, where: str, out: dict[str, Any]) -> None:
    import h5py

    plist = dset.id.get_create_plist()
    for i in range(plist.get_external_count()):
        name = plist.get_external(i)[0]
        out["external"].append(
            {"kind": "external storage", "object": where, "file": _text(name) or ""}
        )
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        for i in range(plist.get_virtual_count()):
            out["external"].append(
                {
                    "kind": "virtual dataset",
                    "object": where,
                    "file": plist.get_virtual_filename(i),
                }
            )
    elements = 1
    for n in dset.shape or ():
        elements *= int(n)
    out["datasets"].append(
        {
            "object": where,
            "shape": [int(n) for n in dset.shape or ()],
            "declared": elements * dset.dtype.itemsize,
            "stored": int(dset.id.get_storage_size()),
        }
    )


def main(argv: list[str]) -> int:
    """Probe ``argv[1]`` with the limits in ``argv[2]`` and print JSON on stdout."""
    try:
        result = probe(argv[1], json.loads(argv[2]))
    except MemoryError:
        result = {"error": "the HDF5 reader ran out of memory"}
    except Exception as e:  # the file's problem, reported by the parent
        result = {"error": f"{type(e).__name__}: {e}"[:500]}
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
