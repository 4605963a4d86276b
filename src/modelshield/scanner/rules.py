"""The scanner's rules, outside the pickle analyser (whose rules are in ``pickle/rules.py``).

Limits and unanalysed content (``SCAN-*``), names that disagree with content (``FORMAT-*``),
archive hygiene shared by zip, tar and 7z (``ARCHIVE-*``), zip-reader differentials
(``ZIP-*``), NumPy headers (``NUMPY-*``) and TorchScript sources (``TORCHSCRIPT-*``). Handlers
import the rule objects from here and build findings with :meth:`Rule.finding`.
"""

from __future__ import annotations

from modelshield.core.findings import Severity
from modelshield.core.rules import Rule, register_rule

_ZIP_SLIP = (
    "https://security.snyk.io/research/zip-slip-vulnerability",
    "CWE-22",
)
_ZIP_REFS = ("https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT",)
_NPY_REFS = ("https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html",)

NUMPY_MAX_HEADER_BYTES = 10_000
"""NumPy refuses longer ``.npy`` headers unless ``allow_pickle=True`` (``numpy.lib.format``)."""


# ---- limits and unanalysed content ------------------------------------------------------

SCAN_LIMIT = register_rule(
    Rule(
        id="SCAN-LIMIT",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Analysis stopped at a configured limit",
        what="Reports that a size, depth, count or time limit stopped the analysis of part of a "
        "file. Findings made before the limit are kept. When the limit stopped the pickle "
        "interpreter, a linear pass then walks the rest of the stream and reports every import "
        "it meets (its findings say `found_by`); content beyond `limits.max_nested_depth` is "
        "searched the same way for pickles in plain sight. The message says what that pass "
        "found.",
        why="What was not analysed may hold a payload: hostile files are built to exhaust "
        "scanners so that they give up and call the file clean. A tripped limit is never a "
        "clean verdict.",
        example="A pickle that claims a 2**62-byte string, or an archive nested 20 levels deep.",
        references=("CWE-400", "CWE-409"),
        incomplete=True,
    )
)

SCAN_TOO_LARGE = register_rule(
    Rule(
        id="SCAN-FILE-TOO-LARGE",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="File larger than the size limit was not scanned",
        what="Reports a file above `limits.max_file_bytes`.",
        why="An unscanned file cannot be called safe.",
        incomplete=True,
    )
)

SCAN_FORMAT_NOT_ANALYSED = register_rule(
    Rule(
        id="SCAN-FORMAT-NOT-ANALYSED",
        pillar="scan",
        severity=Severity.LOW,
        title="Format recognised but not analysed",
        what="Reports content of a format that modelshield recognises but does not analyse yet "
        "(HDF5/Keras, GGUF, safetensors, ONNX). The file is marked as not fully analysed.",
        why="A scanner that passes what it did not read gives a clean verdict on something it "
        "never checked. Keras H5 files carry Lambda-layer bytecode and GGUF files carry chat "
        "templates that servers render; until a reader for the format lands, the run fails "
        "closed (exit code 2) unless the policy accepts the gap.",
        example="`model.h5` (HDF5) inside a scanned folder.",
        references=("CWE-693",),
        incomplete=True,
    )
)

SCAN_UNRECOGNISED = register_rule(
    Rule(
        id="SCAN-UNRECOGNISED",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Unrecognised content under a name a model loader reads",
        what="Reports content of no format modelshield recognises, nor an ordinary image, PDF, "
        "text or known data file. Medium for a file or archive member named like something a "
        "model loader opens (`.pt`, `.pth`, `.bin`, `.ckpt`, `.pkl`, `.pickle`, `.joblib`, "
        "`.npy`, `.npz`, `.h5`, `.keras`..., also through compression suffixes such as "
        "`.pkl.gz`); low under any other name. The content was still read as a pickle from "
        "its first byte, as every pickle fallback does; this finding says that nothing else "
        "could be checked. The file is marked as not fully analysed either way.",
        why="These loaders decide by content, not by name, and several fall back to "
        "unpickling whatever they do not recognise (`torch.load` on a non-zip file, "
        "`numpy.load(allow_pickle=True)` without the `.npy` magic, `joblib.load` without a "
        "compressor's magic). A scanner that passes what it cannot classify turns every gap "
        "in its detection into a silent pass; so the run fails closed (exit code 2) unless "
        "the policy accepts the gap.",
        example="`pytorch_model.bin` whose bytes match no known format (medium); "
        "`weights.dat` of random bytes (low).",
        references=("CWE-693", "CWE-502"),
        incomplete=True,
    )
)

FORMAT_EXTENSION_MISMATCH = register_rule(
    Rule(
        id="FORMAT-EXTENSION-MISMATCH",
        pillar="scan",
        severity=Severity.LOW,
        title="File named like a model holds another kind of content",
        what="Reports a file whose extension names a model format (`.pt`, `.pkl`, `.npy`, "
        "`.safetensors`...) while its content, detected from its bytes, is of another or of "
        "an unknown kind. modelshield always analyses files by content; this finding only "
        "points at the disagreement.",
        why="Scanners that route files by extension skip or misparse such files, and loaders "
        "that fall back from one format to another run code a reviewer did not expect (a raw "
        "pickle named `.bin` is unpickled by `torch.load`). A misnamed file is also often a "
        "corrupt or substituted artefact. Low severity: it never fails a run on its own.",
        example="`model.pt` holding a PNG image, or a bare pickle named `pytorch_model.bin`.",
        references=("CVE-2025-1889", "CVE-2025-10155", "CWE-434"),
    )
)


# ---- archive hygiene (zip, tar, 7z, compressed streams) -----------------------------------

ARCHIVE_PATH_TRAVERSAL = register_rule(
    Rule(
        id="ARCHIVE-PATH-TRAVERSAL",
        pillar="scan",
        severity=Severity.HIGH,
        title="Archive member path escapes the extraction folder",
        what="Reports a zip, tar or 7z member whose name is absolute, starts with a drive letter "
        "or a UNC prefix, contains a NUL byte, or climbs out of the folder with `..` "
        "components (with `/` or `\\` separators).",
        why='Extracting such an archive writes outside the target folder ("zip slip"): it can '
        "overwrite a shell profile, a Python module on the import path or a model a service "
        "loads next. Model archives never need such names.",
        example="A member named `../../../home/user/.bashrc` or `C:\\Windows\\evil.dll`.",
        references=_ZIP_SLIP,
    )
)

ARCHIVE_SYMLINK = register_rule(
    Rule(
        id="ARCHIVE-SYMLINK",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Archive member is a symbolic or hard link",
        what="Reports tar symbolic and hard links and zip entries whose unix mode is a symbolic "
        "link. The finding is high when the link points outside the archive (absolute, or "
        "climbing with `..`).",
        why="A link extracted first and written through second lets an archive write or read "
        "any file the extracting user can reach; a link inside a model folder can also make a "
        "loader read a file the reviewer never saw (`/etc/passwd`, an SSH key).",
        example="A tar member `weights -> /home/user/.ssh/id_rsa`.",
        references=("CWE-59", "CVE-2007-4559"),
    )
)

ARCHIVE_DUPLICATE_NAME = register_rule(
    Rule(
        id="ARCHIVE-DUPLICATE-NAME",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Two archive members have the same name",
        what="Reports an archive holding two or more members with one name. Each copy is analysed.",
        why="Readers disagree about which copy wins (the first, the last, or the one a lookup "
        "table happened to keep): a reviewer or a scanner may look at a harmless copy while "
        "the loader reads the other.",
        example="A zip with two `archive/data.pkl` entries, the second one malicious.",
        references=("CWE-436",),
    )
)

ARCHIVE_BOMB = register_rule(
    Rule(
        id="ARCHIVE-BOMB",
        pillar="scan",
        severity=Severity.HIGH,
        title="Compressed data inflates past the configured bounds",
        what="Reports a compressed stream or archive member that inflates past what is left of "
        "`limits.max_decompressed_bytes` (one budget for every compressed stream and member of "
        "a file, however they nest), or past `limits.max_compression_ratio` times its "
        "compressed size once above `limits.ratio_check_min_bytes` (16 MiB). Inflation stops "
        "there; what was inflated so far is still analysed.",
        why="Decompression bombs exhaust memory and disk of whatever opens them, and are used "
        "to make scanners give up; a payload can also hide after a gigabyte of padding.",
        example="A 1 MiB gzip stream that inflates to 1 GiB of zeros followed by a pickle.",
        references=("CWE-409",),
        incomplete=True,
    )
)

ARCHIVE_UNSUPPORTED = register_rule(
    Rule(
        id="ARCHIVE-UNSUPPORTED",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Container recognised but not opened",
        what="Reports a container or compressed stream whose format was recognised but that "
        "could not be opened: RAR, zstd or 7z without their optional packages, or a zip "
        "member with a compression method this scanner does not implement. The message names "
        "what to install.",
        why="What was not opened was not analysed, so it cannot be called safe; loaders with "
        "more codecs installed may read it just fine.",
        example="A `.7z` checkpoint scanned where `py7zr` is not installed.",
        references=("CWE-693",),
        incomplete=True,
    )
)

ARCHIVE_EXECUTABLE_MEMBER = register_rule(
    Rule(
        id="ARCHIVE-EXECUTABLE-MEMBER",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Native executable or script inside a model archive",
        what="Reports an archive member (tensor storages included) that starts like an ELF, PE "
        "or Mach-O executable or a script with an interpreter line (`#!`).",
        why="Model weights need no programs. An executable shipped beside them is either a "
        "mistake or a dropper waiting for a loader, a setup script or a user to run it.",
        example="`model/extra/run` holding an ELF binary inside a PyTorch checkpoint.",
        references=("CWE-506",),
    )
)

ARCHIVE_ENCRYPTED_MEMBER = register_rule(
    Rule(
        id="ARCHIVE-ENCRYPTED-MEMBER",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Encrypted archive member could not be analysed",
        what="Reports a member that is really encrypted (ZipCrypto, AES or a password-protected "
        "7z): its data does not decode without the password.",
        why="An encrypted member cannot be scanned, so the archive cannot be called safe. Not "
        "high: PyTorch and NumPy cannot load encrypted members either, so it is an unscanned "
        "blob rather than an attack.",
        example="A zip created with `zip -e`.",
        references=("CWE-693",),
        incomplete=True,
    )
)

ARCHIVE_MALFORMED = register_rule(
    Rule(
        id="ARCHIVE-MALFORMED",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Archive or compressed stream is structurally broken",
        what="Reports archives whose structure is inconsistent (a missing or truncated "
        "directory, members that claim more bytes than the file holds, corrupt compressed "
        "data). Everything readable is still analysed.",
        why="Readers recover from broken archives in different ways, so a scanner and a loader "
        "may see different contents; and what could not be parsed was not analysed.",
        example="A tar member that claims 1 TiB in a 10 KiB file.",
        references=("CWE-20", "CWE-436"),
        incomplete=True,
    )
)


# ---- zip reader differentials and PyTorch archives ----------------------------------------

ZIP_NAME_MISMATCH = register_rule(
    Rule(
        id="ZIP-NAME-MISMATCH",
        pillar="scan",
        severity=Severity.HIGH,
        title="Zip local header names a member differently from the central directory",
        what="Reports a zip member whose local file header carries another name than its "
        "central directory entry. The member is analysed once, under both names.",
        why="Readers disagree on which name counts: PyTorch's reader looks members up by the "
        "central directory name, other tools stream local headers. Scanners keyed on one name "
        "skip a payload the loader reads under the other. No archiver produces this.",
        example="Central directory `archive/data.pkl`, local header `archive/datap.kl`.",
        references=("CVE-2025-1944", "GHSA-7q5r-7gvp-wc82", *_ZIP_REFS),
    )
)

ZIP_FLAG_ANOMALY = register_rule(
    Rule(
        id="ZIP-FLAG-ANOMALY",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Zip member flagged encrypted or patched but stored in the clear",
        what="Reports a member whose general-purpose flags claim encryption (bit 0 or 6) or "
        "patched data (bit 5) while its data reads in the clear (it inflates with a matching "
        "CRC, or starts like a pickle, an archive or an executable). The member is analysed "
        "as PyTorch reads it.",
        why="Python's zipfile refuses such members while PyTorch's reader ignores the flags and "
        "loads them, so scanners built on zipfile skip a pickle that `torch.load` runs.",
        example="`model/config.pkl` with flag 0x1 and a plain pickle as its data.",
        references=("CVE-2025-1945", "GHSA-w8jq-xcqf-f792", *_ZIP_REFS),
    )
)

ZIP_CRC_MISMATCH = register_rule(
    Rule(
        id="ZIP-CRC-MISMATCH",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Zip member data does not match its recorded CRC-32",
        what="Reports a member whose data, as read, has another CRC-32 than the one recorded. "
        "The member is still analysed, as PyTorch's reader still loads it.",
        why="Python's zipfile raises on read, so scanners built on it see nothing, while "
        "`torch.load` ignores the CRC. The mismatch also means the file was altered after it "
        "was written.",
        example="`archive/data.pkl` edited in place without updating its CRC.",
        references=("CVE-2025-10156", *_ZIP_REFS),
    )
)

ZIP_HEADER_MISMATCH = register_rule(
    Rule(
        id="ZIP-HEADER-MISMATCH",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Zip local header disagrees with the central directory",
        what="Reports a member whose local header records another compression method, size or "
        "CRC than its central directory entry (data descriptors excepted).",
        why="Streaming readers trust the local header, directory readers the central one: the "
        "two see different bytes, which hides data from one of them.",
        example="A central entry of 10 bytes whose local header claims 10 MB.",
        references=_ZIP_REFS,
    )
)

ZIP_OVERLAPPING_ENTRIES = register_rule(
    Rule(
        id="ZIP-OVERLAPPING-ENTRIES",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Zip entries share or overlap their data",
        what="Reports central directory entries whose local headers and data overlap each other.",
        why="Overlapping entries are the building block of non-recursive zip bombs (one "
        "compressed kernel inflated once per entry) and let two names show the same bytes.",
        example="1000 entries that all point at one deflated kernel.",
        references=("https://www.bamsoftware.com/hacks/zipbomb/", "CWE-409"),
    )
)

ZIP_POLYGLOT = register_rule(
    Rule(
        id="ZIP-POLYGLOT",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Data before the first zip entry (polyglot file)",
        what="Reports a zip whose entries start after other data, so that the file is also "
        "read as another format from its first byte. The leading data is analysed by content.",
        why="`torch.load`, `numpy.load` and `pickle.load` look at the first bytes while zip "
        "readers look at the end: one file can carry a harmless archive for the scanner and a "
        "pickle for the loader.",
        example="A pickle with a zip checkpoint appended.",
        references=("CWE-434", *_ZIP_REFS),
    )
)

TORCHSCRIPT_SUSPICIOUS_CODE = register_rule(
    Rule(
        id="TORCHSCRIPT-SUSPICIOUS-CODE",
        pillar="scan",
        severity=Severity.HIGH,
        title="TorchScript code calls into the operating system or evaluates code",
        what="Reports TorchScript source members (`code/**/*.py`) that mention `os.system`, "
        "`subprocess`, `__import__`, `exec(` or `eval(`.",
        why="TorchScript archives carry Python-like source that `torch.jit.load` compiles; "
        "compiled models never need process or code-evaluation calls, so their presence means "
        "the archive was edited to do something a model does not do.",
        example='`archive/code/__torch__/model.py` containing `os.system("curl ...")`.',
        references=("https://pytorch.org/docs/stable/jit.html",),
    )
)


# ---- NumPy -----------------------------------------------------------------------------------

NUMPY_HEADER_INVALID = register_rule(
    Rule(
        id="NUMPY-HEADER-INVALID",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="NumPy array header cannot be parsed",
        what="Reports a `.npy` header with an unknown version, a header that is not a dict "
        "literal with `descr`, `fortran_order` and `shape`, or one larger than NumPy's "
        f"{NUMPY_MAX_HEADER_BYTES}-byte bound. The array data is then analysed by content.",
        why="Without the header the scanner cannot tell whether the data is a pickle; NumPy "
        "versions and `allow_pickle=True` (which lifts the header bound) may still load it.",
        example="A header of 50,000 bytes, or `{'descr': eval('...')}`.",
        references=_NPY_REFS,
    )
)

NUMPY_TRUNCATED = register_rule(
    Rule(
        id="NUMPY-TRUNCATED",
        pillar="scan",
        severity=Severity.LOW,
        title="NumPy array holds less data than its header declares",
        what="Reports a numeric `.npy` whose shape and dtype call for more bytes than the file "
        "holds after its header.",
        why="NumPy refuses to load it, so it is no attack by itself, but the file is corrupt or "
        "was cut or edited after it was written.",
        example="`shape: (1000, 1000)` of `<f4` with only 1 KB of data.",
        references=_NPY_REFS,
    )
)
