"""A pickle reader that builds data and never runs code.

``pickle.load`` executes whatever a pickle asks for: ``GLOBAL`` imports any name,
``REDUCE``/``INST``/``OBJ``/``NEWOBJ`` call it, ``BUILD`` runs ``__setstate__``. Even
with ``find_class`` restricted, the standard unpickler allocates the lengths a
pickle declares before reading them and hashes dictionary keys of any depth.
``unpickle`` is a small interpreter of its own for the binary opcodes of protocols
2 to 5 that torch writes: it resolves globals only through an allow list given by
the caller, calls only those, refuses every other opcode that constructs objects,
and checks every length against the bytes that are really there and every count
against ``read_limits.READ_LIMITS``.
"""

import pickle
import pickletools
import struct
from collections.abc import Callable, Mapping

from tfsal.weights.read_limits import Budget, CheckpointError, check_key

_STOP = pickle.STOP[0]
_UINTS = {
    1: struct.Struct("<B"),
    2: struct.Struct("<H"),
    4: struct.Struct("<I"),
    8: struct.Struct("<Q"),
}
_OPCODE_NAMES = {opcode.code.encode("latin-1")[0]: opcode.name for opcode in pickletools.opcodes}


class _Mark:
    """The position of a MARK on the stack."""


def unpickle(
    data,
    start: int,
    *,
    budget: Budget,
    allowed_globals: Mapping[tuple[str, str], object],
    persistent_load: Callable[[object], object] | None = None,
) -> tuple[object, int]:
    """Reads one pickle from ``data[start:]`` without running any of its code.

    Args:
        data: the bytes holding the pickle.
        start: where the pickle starts.
        budget: the step budget of the checkpoint being read.
        allowed_globals: ``(module, name)`` -> the stand-in that ``GLOBAL`` resolves
            to; only these can be called (``REDUCE``) or put into the result.
        persistent_load: maps a persistent id (``BINPERSID``) to an object; ``None``
            refuses persistent ids.

    Returns:
        The object and the position just past the pickle's ``STOP``.

    Raises:
        CheckpointError: for any opcode, global, argument or size outside what a
            checkpoint holds, and for damaged or truncated pickles.
    """
    reader = _Reader(data, start, budget, allowed_globals, persistent_load)
    return reader.run(), reader.pos


class _Reader:
    """The interpreter behind ``unpickle``: one stack, one memo, one pass."""

    def __init__(self, data, start, budget, allowed_globals, persistent_load):
        self.data = data
        self.pos = start
        limits = budget.limits
        self.end = min(len(data), start + limits.max_pickle_bytes)
        self.truncated_by_limit = self.end < len(data)
        self.budget = budget
        self.source = budget.source
        self.limits = limits
        self.allowed_globals = allowed_globals
        self.callables = {id(value): value for value in allowed_globals.values()}
        self.persistent_load = persistent_load
        self.stack = []
        self.marks = []
        self.memo = {}

    # -- reading bytes -------------------------------------------------------------

    def fail(self, reason):
        return CheckpointError(f"{self.source}: the checkpoint's pickle is damaged: {reason}.")

    def read(self, size):
        if size < 0 or self.pos + size > self.end:
            if self.truncated_by_limit:
                raise CheckpointError(
                    f"{self.source}: a pickle is longer than {self.limits.max_pickle_bytes} "
                    "bytes or declares more data than it holds."
                )
            raise self.fail(f"it declares {size} bytes where {self.end - self.pos} remain")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def read_uint(self, size):
        if self.pos + size > self.end:
            self.read(size)  # raises
        value = _UINTS[size].unpack_from(self.data, self.pos)[0]
        self.pos += size
        return value

    def read_global(self):
        return self.read_line(), self.read_line()

    def read_line(self):
        newline = self.data.find(b"\n", self.pos, self.end)
        if newline < 0:
            raise self.fail("a GLOBAL name has no end of line")
        line = self.data[self.pos : newline]
        self.pos = newline + 1
        return self.decode(line)

    def decode(self, raw):
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a string is not valid UTF-8") from None

    # -- the stack -----------------------------------------------------------------

    def push(self, value):
        self.stack.append(value)

    def pop(self):
        if not self.stack or self.stack[-1] is _Mark:
            raise self.fail("an opcode finds no value on the stack")
        return self.stack.pop()

    def pop_mark(self):
        if not self.marks:
            raise self.fail("an opcode needs a MARK that is not there")
        mark = self.marks.pop()
        items = self.stack[mark + 1 :]
        del self.stack[mark:]
        return items

    def top(self, kind, opcode):
        if not self.stack or not isinstance(self.stack[-1], kind):
            found = type(self.stack[-1]).__name__ if self.stack else "nothing"
            raise self.fail(f"{opcode} applies to a {kind.__name__}, found {found}")
        return self.stack[-1]

    def set_items(self, target, items):
        if len(items) % 2:
            raise self.fail("SETITEMS has a key without a value")
        for index in range(0, len(items), 2):
            target[check_key(items[index], self.source)] = items[index + 1]

    # -- the loop ------------------------------------------------------------------

    def run(self):
        data, dispatch = self.data, _DISPATCH
        steps, allowed_steps = 0, self.limits.max_steps - self.budget.steps
        while True:
            steps += 1
            if steps > allowed_steps:
                self.budget.spend(steps)
            if self.pos >= self.end:
                self.read(1)  # raises: truncated, or longer than the limit
            code = data[self.pos]
            self.pos += 1
            if code == _STOP:
                self.budget.spend(steps)
                return self.stop()
            handler = dispatch.get(code)
            if handler is None:
                raise self.refuse_opcode(code)
            handler(self)

    def refuse_opcode(self, code):
        name = _OPCODE_NAMES.get(code)
        if name is None:
            return self.fail(f"byte {code:#04x} is not a pickle opcode")
        return CheckpointError(
            f"{self.source}: the checkpoint's pickle uses the opcode {name}, which a "
            "tensor checkpoint does not need and this reader refuses (it can construct "
            "arbitrary objects)."
        )

    def stop(self):
        value = self.pop()
        if self.stack or self.marks:
            raise self.fail("values are left on the stack at STOP")
        return value

    def resolve(self, module, name):
        try:
            return self.allowed_globals[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"{self.source}: the checkpoint's pickle references the global "
                f"'{module:.100}.{name:.100}', which is not on the allow list of tensor "
                "and state-dict types; refusing to load it (it could run arbitrary code)."
            ) from None

    def reduce(self):
        args = self.pop()
        function = self.pop()
        if id(function) not in self.callables or not callable(function):
            raise CheckpointError(
                f"{self.source}: the checkpoint's pickle calls a {type(function).__name__}, "
                "which is not an allow-listed tensor or state-dict constructor."
            )
        if type(args) is not tuple:
            raise self.fail(f"REDUCE arguments are a {type(args).__name__}, not a tuple")
        try:
            self.push(function(*args))
        except CheckpointError:
            raise
        except (TypeError, ValueError, OverflowError):
            raise self.fail(f"{len(args)} arguments do not fit the constructor") from None

    def build(self):
        state = self.pop()
        target = self.top(dict, "BUILD")
        # torch's state dicts carry a `_metadata` attribute (module versions), which
        # OrderedDict pickles as BUILD state: not data, so it is dropped. Setting
        # attributes of anything else could overwrite the reader's own stand-ins.
        if not isinstance(state, dict | type(None)):
            raise self.fail(f"BUILD state of a {type(target).__name__} is a {type(state).__name__}")

    def persistent(self):
        saved_id = self.pop()
        if self.persistent_load is None:
            raise self.fail("this pickle may not reference storages")
        self.push(self.persistent_load(saved_id))

    def mark(self):
        if len(self.marks) >= self.limits.max_depth:
            raise CheckpointError(
                f"{self.source}: the checkpoint's pickle nests deeper than "
                f"{self.limits.max_depth} levels."
            )
        self.marks.append(len(self.stack))
        self.stack.append(_Mark)

    def long(self, size):
        if size > self.limits.max_int_bytes:
            raise CheckpointError(
                f"{self.source}: the checkpoint holds an integer of {size} bytes; "
                f"at most {self.limits.max_int_bytes} are read."
            )
        self.push(int.from_bytes(self.read(size), "little", signed=True))

    def get(self, index):
        try:
            self.push(self.memo[index])
        except KeyError:
            raise self.fail(f"memo entry {index} is read before it is written") from None

    def put(self, index):
        if not self.stack or self.stack[-1] is _Mark:
            raise self.fail("PUT finds no value on the stack")
        self.memo[index] = self.stack[-1]


def _tuple_of(count):
    def load(reader):
        if count:
            items = reader.stack[-count:]
            if len(items) < count or any(item is _Mark for item in items):
                raise reader.fail(f"TUPLE{count} finds fewer than {count} values")
            del reader.stack[-count:]
        else:
            items = ()
        reader.push(tuple(items))

    return load


def _append(reader):
    value = reader.pop()
    reader.top(list, "APPEND").append(value)


def _appends(reader):
    items = reader.pop_mark()
    reader.top(list, "APPENDS").extend(items)


def _setitem(reader):
    value, key = reader.pop(), reader.pop()
    reader.set_items(reader.top(dict, "SETITEM"), [key, value])


def _setitems(reader):
    items = reader.pop_mark()
    reader.set_items(reader.top(dict, "SETITEMS"), items)


def _dict(reader):
    items = reader.pop_mark()
    target = {}
    reader.set_items(target, items)
    reader.push(target)


def _stack_global(reader):
    name, module = reader.pop(), reader.pop()
    if type(module) is not str or type(name) is not str:
        raise reader.fail("STACK_GLOBAL needs a module and a name string")
    reader.push(reader.resolve(module, name))


def _proto(reader):
    version = reader.read_uint(1)
    if not 2 <= version <= pickle.HIGHEST_PROTOCOL:
        raise reader.fail(f"unsupported pickle protocol {version}")


def _frame(reader):
    size = reader.read_uint(8)
    if size > reader.end - reader.pos:
        raise reader.fail("a FRAME is longer than the data")


def _unicode(length_bytes):
    return lambda reader: reader.push(reader.decode(reader.read(reader.read_uint(length_bytes))))


def _bytes(length_bytes):
    return lambda reader: reader.push(bytes(reader.read(reader.read_uint(length_bytes))))


def _dup(reader):
    value = reader.pop()
    reader.push(value)
    reader.push(value)


def _pop(reader):
    if reader.stack and reader.stack[-1] is _Mark:
        reader.pop_mark()
    else:
        reader.pop()


_P = pickle
_DISPATCH = {
    code[0]: handler
    for code, handler in {
        _P.PROTO: _proto,
        _P.FRAME: _frame,
        _P.MARK: _Reader.mark,
        _P.POP: _pop,
        _P.POP_MARK: _Reader.pop_mark,
        _P.DUP: _dup,
        _P.NONE: lambda reader: reader.push(None),
        _P.NEWTRUE: lambda reader: reader.push(True),
        _P.NEWFALSE: lambda reader: reader.push(False),
        _P.BININT: lambda reader: reader.push(struct.unpack("<i", reader.read(4))[0]),
        _P.BININT1: lambda reader: reader.push(reader.read_uint(1)),
        _P.BININT2: lambda reader: reader.push(reader.read_uint(2)),
        _P.LONG1: lambda reader: reader.long(reader.read_uint(1)),
        _P.LONG4: lambda reader: reader.long(reader.read_uint(4)),
        _P.BINFLOAT: lambda reader: reader.push(struct.unpack(">d", reader.read(8))[0]),
        _P.SHORT_BINUNICODE: _unicode(1),
        _P.BINUNICODE: _unicode(4),
        _P.BINUNICODE8: _unicode(8),
        _P.SHORT_BINSTRING: _unicode(1),  # Python 2 `str`, as torch.load reads it
        _P.BINSTRING: _unicode(4),
        _P.SHORT_BINBYTES: _bytes(1),
        _P.BINBYTES: _bytes(4),
        _P.BINBYTES8: _bytes(8),
        _P.EMPTY_TUPLE: _tuple_of(0),
        _P.TUPLE1: _tuple_of(1),
        _P.TUPLE2: _tuple_of(2),
        _P.TUPLE3: _tuple_of(3),
        _P.TUPLE: lambda reader: reader.push(tuple(reader.pop_mark())),
        _P.EMPTY_LIST: lambda reader: reader.push([]),
        _P.LIST: lambda reader: reader.push(reader.pop_mark()),
        _P.APPEND: _append,
        _P.APPENDS: _appends,
        _P.EMPTY_DICT: lambda reader: reader.push({}),
        _P.DICT: _dict,
        _P.SETITEM: _setitem,
        _P.SETITEMS: _setitems,
        _P.BINPUT: lambda reader: reader.put(reader.read_uint(1)),
        _P.LONG_BINPUT: lambda reader: reader.put(reader.read_uint(4)),
        _P.MEMOIZE: lambda reader: reader.put(len(reader.memo)),
        _P.BINGET: lambda reader: reader.get(reader.read_uint(1)),
        _P.LONG_BINGET: lambda reader: reader.get(reader.read_uint(4)),
        _P.GLOBAL: lambda reader: reader.push(reader.resolve(*reader.read_global())),
        _P.STACK_GLOBAL: _stack_global,
        _P.REDUCE: _Reader.reduce,
        _P.BUILD: _Reader.build,
        _P.BINPERSID: _Reader.persistent,
    }.items()
}
