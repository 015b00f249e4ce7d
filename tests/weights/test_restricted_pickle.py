"""The restricted unpickler against pickles an attacker writes by hand.

Each case is a protocol-2 pickle of raw opcodes, read the way a checkpoint's
object pickle is (allow list and storages of ``TorchObjects``), and must end in
one ``CheckpointError`` without running anything or allocating what it declares.
"""

import pickle
import struct
import time

import numpy as np
import pytest

from tfsal.weights.read_limits import READ_LIMITS, Budget, CheckpointError, copy_tree
from tfsal.weights.restricted_pickle import unpickle
from tfsal.weights.torch_objects import TorchObjects

ORDERED_DICT = b"ccollections\nOrderedDict\n"
REBUILD = b"ctorch._utils\n_rebuild_tensor_v2\n"
FLOAT_STORAGE = b"ctorch\nFloatStorage\n"


def _string(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value):
    return b"J" + struct.pack("<i", value)


KEY = _string("0")
ZERO = _int(0)
TWO = b"K\x01K\x01\x86"  # the strides (1, 1)


def _storage(numel=4, storage_type=FLOAT_STORAGE, key=KEY):
    """A BINPERSID storage reference as torch's zip format writes it."""
    return b"(" + _string("storage") + storage_type + key + _string("cpu") + _int(numel) + b"tQ"


def _tensor(offset=ZERO, size=b"K\x04\x85", stride=b"K\x01\x85", storage=None):
    """``_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())``."""
    args = (storage or _storage()) + offset + size + stride + b"\x89" + ORDERED_DICT + b")R"
    return REBUILD + b"(" + args + b"tR"


def _load(opcodes):
    """Reads ``PROTO 2, opcodes, STOP`` as a checkpoint's object pickle."""
    objects = TorchObjects(Budget("crafted.pkl"))
    result, _ = unpickle(
        b"\x80\x02" + opcodes + b".",
        0,
        budget=objects.budget,
        allowed_globals=objects.allowed_globals,
        persistent_load=objects.persistent_load,
    )
    for storage in objects.storages.values():
        storage.data = np.arange(storage.numel, dtype=storage.storage_type.dtype)
    return objects.materialise(result)


def test_a_hand_written_state_dict_reads():
    state = _load(ORDERED_DICT + b")R" + b"(" + _string("w") + _tensor() + b"u")
    np.testing.assert_array_equal(state["w"], [0, 1, 2, 3])
    # STACK_GLOBAL (protocol 4) resolves through the same allow list.
    stack_global = b"\x8c\x0bcollections\x8c\x0bOrderedDict\x93"
    assert _load(stack_global + b")R") == {}


@pytest.mark.parametrize(
    ("opcodes", "message"),
    [
        # Globals outside the allow list, in both spellings.
        (b"cbuiltins\neval\n", r"builtins\.eval.*allow list"),
        (b"\x8c\x08builtins\x8c\x04exec\x93", r"builtins\.exec.*allow list"),
        (b"ctorch\nload\n", r"torch\.load.*allow list"),
        # Opcodes that construct objects, even from an allow-listed class.
        (b"(icollections\nOrderedDict\n", "opcode INST"),
        (b"(" + ORDERED_DICT + b"o", "opcode OBJ"),
        (ORDERED_DICT + b")\x81", "opcode NEWOBJ"),
        (ORDERED_DICT + b")}\x92", "opcode NEWOBJ_EX"),
        (b"\x82\x01", "opcode EXT1"),
        (b"Pstorage\n", "opcode PERSID"),
        (b"I1\n", "opcode INT"),
        # REDUCE: only allow-listed callables, with arguments that fit.
        (_string("os.system") + b")R", "calls a str"),
        (FLOAT_STORAGE + b")R", "calls a StorageType"),
        (ORDERED_DICT + b"]R", "REDUCE arguments are a list"),
        (ORDERED_DICT + b"(" + _string("ab") + b"tR", "OrderedDict is built from a str"),
        (ORDERED_DICT + b"(](" + _string("abc") + b"etR", "items that are not pairs"),
        (REBUILD + b"(" + b"N" * 12 + b"tR", "12 arguments do not fit"),
        (REBUILD + b"(" + _string("s") + _int(0) + b"K\x01\x85K\x01\x85tR", "storage is a str"),
        (b"ctorch._utils\n_rebuild_parameter\n(" + _string("w") + b"tR", "holds a str"),
        # BUILD sets attributes: only a dict's (dropped) metadata state.
        (_tensor() + b"}b", "BUILD applies to a dict, found _TensorRef"),
        (FLOAT_STORAGE + b"}b", "BUILD applies to a dict, found StorageType"),
        (ORDERED_DICT + b"}b", "BUILD applies to a dict, found method"),
        (b"}]b", "BUILD state of a dict is a list"),
        # Dictionary keys that are costly to hash or unhashable.
        (b"}](N\x85N\x85ts", "dictionary key is a list"),
        (b"}N\x85\x85K\x01s", "dictionary key is a tuple"),
        # Allow-listed values that are not data.
        (FLOAT_STORAGE, "StorageType appears as a value"),
        (_storage(), "storage appears outside a tensor"),
    ],
)
def test_refused_pickles(opcodes, message):
    with pytest.raises(CheckpointError, match=message):
        _load(opcodes)


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        (b"(" + _string("storage") + _string("FloatStorage") + b"tQ", "persistent id is not"),
        (_storage(storage_type=ORDERED_DICT), "persistent id is not"),
        (_storage(storage_type=_string("FloatStorage")), "persistent id is not"),
        (_storage(key=_int(0)), "persistent id is not"),
        (_storage(numel=-1), "persistent id is not"),
        (b"(" + _string("module") + b"tQ", "persistent id is not"),
        (_string("storage") + b"Q", "persistent id is not"),
    ],
)
def test_refused_persistent_ids(storage, message):
    with pytest.raises(CheckpointError, match=message):
        _load(_tensor(storage=storage))


def test_a_storage_declared_twice_with_different_sizes_is_refused():
    with pytest.raises(CheckpointError, match="declared twice"):
        _load(b"(" + _tensor(storage=_storage(4)) + _tensor(storage=_storage(8)) + b"t")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"offset": _int(-1)}, "non-negative integers"),
        ({"offset": b"\x8a\x08" + (2**62).to_bytes(8, "little")}, "outside its storage"),
        ({"offset": b"G" + struct.pack(">d", 1.0)}, "non-negative integers"),
        ({"size": b"\x88\x85"}, "non-negative integers"),  # True is not a size
        ({"size": _int(-4) + b"\x85"}, "non-negative integers"),
        ({"stride": _int(-1) + b"\x85"}, "non-negative integers"),
        ({"stride": b"K\x01K\x01\x86"}, "matching length"),
        ({"size": b"(" + b"K\x01" * 65 + b"t", "stride": b"(" + b"K\x01" * 65 + b"t"}, "64 or"),
        ({"size": b"K\x05\x85"}, "outside its storage of 4 elements"),
        ({"offset": _int(1)}, "outside its storage of 4 elements"),
        ({"size": b"K\x02K\x02\x86", "stride": b"K\x02K\x02\x86"}, "outside its storage"),
        ({"size": b"M\xff\xffM\xff\xff\x86", "stride": b"K\x00K\x00\x86"}, "or repeats them"),
        (
            {"size": b"K\x00\x8a\x08" + (2**62).to_bytes(8, "little") + b"\x86", "stride": TWO},
            "larger than any array",
        ),
    ],
)
def test_refused_tensor_geometry(fields, message):
    with pytest.raises(CheckpointError, match=message):
        _load(_tensor(**fields))


@pytest.mark.parametrize(
    ("opcodes", "message"),
    [
        # Lengths far beyond the data: refused, never allocated.
        (b"\x8d" + struct.pack("<Q", 2**62), "declares 4611686018427387904 bytes"),
        (b"\x8e" + struct.pack("<Q", 2**62), "declares 4611686018427387904 bytes"),
        (b"X" + struct.pack("<I", 2**31), "declares 2147483648 bytes"),
        (b"\x95" + struct.pack("<Q", 2**62), "FRAME is longer"),
        (b"\x8b" + struct.pack("<I", 2**31), "integer of 2147483648 bytes"),
        (b"\x8a\x11" + b"\x01" * 17, "integer of 17 bytes"),
        (b"j" + struct.pack("<I", 2**32 - 1), "memo entry 4294967295 is read before"),
        (b"X\x02\x00\x00\x00\xff\xfe", "not valid UTF-8"),
        (b"N\x80\x07", "unsupported pickle protocol 7"),
        (b"\xff", "byte 0xff is not a pickle opcode"),
        (b"a", "finds no value on the stack"),
        (b"u", "needs a MARK"),
        (b"NN", "left on the stack"),
    ],
)
def test_refused_sizes_and_damaged_pickles(opcodes, message):
    with pytest.raises(CheckpointError, match=message):
        _load(opcodes)


def test_a_truncated_pickle_is_damaged():
    with pytest.raises(CheckpointError, match="damaged"):
        unpickle(b"\x80\x02]", 0, budget=Budget("t"), allowed_globals={})


def test_many_cheap_opcodes_run_out_of_steps_quickly():
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=f"more than {READ_LIMITS.max_steps} steps"):
        _load(b"N0" * (READ_LIMITS.max_steps // 2 + 1) + b"N")
    assert time.perf_counter() - start < 60  # seconds on a loaded machine


def test_sharing_is_counted_at_every_depth_it_is_reached():
    chain = node = []
    for _ in range(60):
        node.append([])
        node = node[0]
    reaches_deeper = node = []
    for _ in range(50):
        node.append([])
        node = node[0]
    node.append(chain)  # the 60-deep chain again, 50 levels down
    with pytest.raises(CheckpointError, match="deeper than 100"):
        copy_tree([chain, reaches_deeper], Budget("t"), lambda value: value)
    shared = copy_tree([chain, chain], Budget("t"), lambda value: value)
    assert shared[0] == shared[1] and shared[0] is not shared[1]


def test_a_legitimate_pickle_reads_like_pickle_does():
    # (bytes need protocol 3: protocol 2 spells them as a call of _codecs.encode)
    value = {"epoch": 3, "lr": 0.5, "name": "run", "flags": [True, None], "pair": (1, b"x")}
    for protocol in (3, 4, 5):
        result, _ = unpickle(
            pickle.dumps(value, protocol), 0, budget=Budget("t"), allowed_globals={}
        )
        assert result == value
