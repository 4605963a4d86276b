"""Model files for the loader tests: benign ones made by the real libraries, and hostile pickles
(payloads that would create a marker file) wrapped in every container a loader reads.

Nothing here loads anything; the tests do, through the restricted loaders, and check that the
marker never appears.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from tests.scanner.pickle.hostile import Asm

# ---- payloads -------------------------------------------------------------------------------


def shell(marker: Path) -> str:
    """A shell command that creates ``marker``."""
    return f"touch {marker}"


def python(marker: Path) -> str:
    """Python source that creates ``marker``."""
    return f"open({str(marker)!r}, 'w').close()"


#: Techniques that do not run the marker command under the plain loader: they reach something
#: dangerous (a namespace, a class object) that a later step would call.
NOT_EXECUTING = frozenset({"dunder-globals", "newobj-popen"})


def payloads(marker: Path) -> dict[str, bytes]:
    """One pickle per technique; loading any of them unrestricted creates ``marker`` (except
    :data:`NOT_EXECUTING`)."""
    sh, py = shell(marker), python(marker)
    out: dict[str, bytes] = {}
    for proto in range(6):
        a = Asm(proto) if proto >= 2 else Asm()
        out[f"reduce-os-system-p{proto}"] = a.call("os", "system", sh).stop().bytes()
    out["reduce-posix-system"] = Asm(2).call("posix", "system", sh).stop().bytes()
    out["stack-global-eval"] = (
        Asm(4).stack_global("builtins", "exec").unicode(py).tuple1().reduce().stop().bytes()
    )
    out["inst-exec"] = Asm().mark().text0(py).inst("builtins", "exec").stop().bytes()
    out["obj-popen"] = (
        (Asm().mark().global_("subprocess", "Popen").mark().text0("touch").text0(str(marker)))
        .raw(pickle.LIST)
        .obj()
        .stop()
        .bytes()
    )
    out["newobj-popen"] = (
        (Asm(2).global_("subprocess", "Popen").mark().unicode("touch").unicode(str(marker)))
        .raw(pickle.LIST)
        .tuple1()
        .newobj()
        .stop()
        .bytes()
    )
    out["attrgetter-chain"] = (
        Asm(4)
        .stack_global("operator", "attrgetter")
        .unicode("system")
        .tuple1()
        .reduce()
        .stack_global("builtins", "__import__")
        .unicode("os")
        .tuple1()
        .reduce()
        .tuple1()
        .reduce()
        .unicode(sh)
        .tuple1()
        .reduce()
        .stop()
        .bytes()
    )
    out["methodcaller-locate"] = (
        Asm(4)
        .stack_global("_operator", "methodcaller")
        .unicode("system")
        .unicode(sh)
        .tuple2()
        .reduce()
        .stack_global("pydoc", "locate")
        .unicode("os")
        .tuple1()
        .reduce()
        .tuple1()
        .reduce()
        .stop()
        .bytes()
    )
    out["resolve-name"] = (
        Asm(4)
        .stack_global("pkgutil", "resolve_name")
        .unicode("os:system")
        .tuple1()
        .reduce()
        .unicode(sh)
        .tuple1()
        .reduce()
        .stop()
        .bytes()
    )
    out["discarded-call"] = Asm(2).call("os", "system", sh).pop().none().stop().bytes()
    out["dunder-globals"] = (
        Asm(4).stack_global("collections", "namedtuple.__globals__").stop().bytes()
    )
    out["nullifai-truncated"] = (
        (Asm(2).global_("builtins", "exec").unicode(py).tuple1().reduce())
        .raw(pickle.BINUNICODE + struct.pack("<I", 0x7FFF_FFF0) + b"junk")
        .bytes()
    )
    out["junk-after-stop"] = Asm(4).call("os", "system", sh).stop().bytes() + b"\x00junk"
    return out


# ---- containers -------------------------------------------------------------------------------


def torch_zip(payload: bytes) -> bytes:
    """A torch zip checkpoint whose ``data.pkl`` is ``payload`` (other records from torch)."""
    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = payload if info.filename.endswith("/data.pkl") else src.read(info)
            dst.writestr(info.filename, data)
    return out.getvalue()


def torch_legacy(payload: bytes) -> bytes:
    """A legacy (non-zip) torch checkpoint whose main pickle is ``payload``."""
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    version = pickle.dumps(1001, protocol=2)
    info = pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    return magic + version + info + payload + pickle.dumps([], protocol=2)


def npy_object(payload: bytes) -> bytes:
    """A ``.npy`` file of object dtype whose data is ``payload``."""
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload


def npz_object(payload: bytes) -> bytes:
    """An ``.npz`` whose one member is :func:`npy_object`."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("x.npy", npy_object(payload))
    return out.getvalue()


def joblib_zlib(payload: bytes) -> bytes:
    """joblib's zlib format: a bare zlib stream."""
    return zlib.compress(payload)


#: Every container, with the restricted loader that reads it.
CONTAINERS: dict[str, tuple[Callable[[bytes], bytes], str, str]] = {
    "pickle": (lambda p: p, "pickle", ".pkl"),
    "torch-zip": (torch_zip, "torch", ".pt"),
    "torch-legacy": (torch_legacy, "torch", ".pt"),
    "npy": (npy_object, "numpy", ".npy"),
    "npz": (npz_object, "numpy", ".npz"),
    "joblib-zlib": (joblib_zlib, "joblib", ".joblib"),
    "joblib-gzip": (gzip.compress, "joblib", ".joblib.gz"),
    "joblib-bz2": (bz2.compress, "joblib", ".joblib.bz2"),
    "joblib-xz": (lzma.compress, "joblib", ".joblib.xz"),
    "joblib-lzma": (
        lambda p: lzma.compress(p, format=lzma.FORMAT_ALONE),
        "joblib",
        ".joblib.lzma",
    ),
}
