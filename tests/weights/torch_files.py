"""A tiny writer of PyTorch checkpoint files, for tests (torch is not installed).

It emits the pickle opcodes that ``torch.save`` produces for a state dict, in both
the zip format and the legacy pickle-sequence format, and can also write pickles
naming arbitrary globals, raw opcodes (``Raw``) and code-running payloads
(``Payload``), to check that the reader refuses them.
"""

import os
import pickle
import struct
import zipfile

import numpy as np

STORAGE_NAMES = {
    np.dtype("float64"): "DoubleStorage",
    np.dtype("float32"): "FloatStorage",
    np.dtype("float16"): "HalfStorage",
    np.dtype("int64"): "LongStorage",
    np.dtype("int32"): "IntStorage",
    np.dtype("int16"): "ShortStorage",
    np.dtype("int8"): "CharStorage",
    np.dtype("uint8"): "ByteStorage",
    np.dtype("bool"): "BoolStorage",
}


class Global:
    """A global reference (``module.name``) in the emitted pickle."""

    def __init__(self, module, name):
        self.module, self.name = module, name


class Call:
    """``function(*args)`` in the emitted pickle (GLOBAL + args + REDUCE)."""

    def __init__(self, function, *args):
        self.function, self.args = function, args


class Persistent:
    """A persistent id (BINPERSID)."""

    def __init__(self, saved_id):
        self.saved_id = saved_id


class Raw:
    """Opcodes emitted verbatim (one value on the stack when they are done)."""

    def __init__(self, opcodes):
        self.opcodes = opcodes


class Payload:
    """Creates the directory ``marker`` when unpickled by ``pickle.load``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def payload_pickle(marker, protocol=2) -> bytes:
    """A pickle that runs ``os.mkdir(marker)`` when loaded, as an attacker writes it."""
    return pickle.dumps(Payload(marker), protocol=protocol)


class OrderedDictOf:
    """An ``OrderedDict`` built with SETITEMS, as torch state dicts are."""

    def __init__(self, items):
        self.items = list(items)


def emit(value) -> bytes:
    """Pickles ``value`` (protocol 2) with the marker classes above."""
    return b"\x80\x02" + _emit(value) + b"."


def _emit(value) -> bytes:
    if isinstance(value, Global):
        return b"c" + value.module.encode() + b"\n" + value.name.encode() + b"\n"
    if isinstance(value, Call):
        return _emit(value.function) + _emit(tuple(value.args)) + b"R"
    if isinstance(value, Raw):
        return value.opcodes
    if isinstance(value, Persistent):
        return _emit(value.saved_id) + b"Q"
    if isinstance(value, OrderedDictOf):
        body = _emit(Call(Global("collections", "OrderedDict")))
        if value.items:
            body += b"(" + b"".join(_emit(k) + _emit(v) for k, v in value.items) + b"u"
        return body
    if value is None:
        return b"N"
    if value is True:
        return b"\x88"
    if value is False:
        return b"\x89"
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return b"J" + struct.pack("<i", value)
        encoded = pickle.encode_long(value)
        return b"\x8a" + bytes([len(encoded)]) + encoded
    if isinstance(value, str):
        data = value.encode()
        return b"X" + struct.pack("<I", len(data)) + data
    if isinstance(value, tuple):
        return b"(" + b"".join(_emit(item) for item in value) + b"t"
    if isinstance(value, list):
        return b"](" + b"".join(_emit(item) for item in value) + b"e"
    raise TypeError(f"cannot emit {type(value)}")


def _tensor(storage_key, array_dtype, numel, offset, shape, stride, legacy):
    storage_type = Global("torch", STORAGE_NAMES[np.dtype(array_dtype)])
    saved_id = ("storage", storage_type, storage_key, "cpu", numel)
    if legacy:
        saved_id += (None,)
    return Call(
        Global("torch._utils", "_rebuild_tensor_v2"),
        Persistent(saved_id),
        offset,
        tuple(shape),
        tuple(stride),
        False,
        OrderedDictOf([]),
    )


def _contiguous_stride(shape):
    stride, step = [], 1
    for size in reversed(shape):
        stride.insert(0, step)
        step *= size
    return tuple(stride)


def state_dict_pickle(state_dict, legacy=False):
    """The main pickle of a state dict and its storages (key -> flat array)."""
    storages, items = {}, []
    for index, (name, array) in enumerate(state_dict.items()):
        array = np.array(array, order="C")
        key = str(index)
        storages[key] = array.reshape(-1)
        tensor = _tensor(
            key, array.dtype, array.size, 0, array.shape, _contiguous_stride(array.shape), legacy
        )
        items.append((name, tensor))
    return emit(OrderedDictOf(items)), storages


def write_zip(path, state_dict=None, main_pickle=None, storages=None, byteorder="little"):
    """Writes a zip-format checkpoint (torch >= 1.6) of ``state_dict``."""
    if state_dict is not None:
        main_pickle, storages = state_dict_pickle(state_dict)
    order = "<" if byteorder == "little" else ">"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", main_pickle)
        archive.writestr("archive/byteorder", byteorder)
        for key, flat in (storages or {}).items():
            archive.writestr(
                f"archive/data/{key}", flat.astype(flat.dtype.newbyteorder(order)).tobytes()
            )
        archive.writestr("archive/version", "3\n")


LEGACY_SLOTS = ("magic", "protocol", "sys_info", "object", "storage_keys")


def write_legacy(path, state_dict=None, main_pickle=None, storages=None, slots=None):
    """Writes a legacy-format checkpoint (a sequence of pickles) of ``state_dict``.

    ``slots`` replaces pickles of the sequence (names in ``LEGACY_SLOTS``) by bytes.
    """
    if state_dict is not None:
        main_pickle, storages = state_dict_pickle(state_dict, legacy=True)
    storages = storages or {}
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}
    pickles = {
        "magic": pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2),
        "protocol": pickle.dumps(1001, protocol=2),
        "sys_info": pickle.dumps(sys_info, protocol=2),
        "object": main_pickle,
        "storage_keys": pickle.dumps(list(storages), protocol=2),
        **(slots or {}),
    }
    with open(path, "wb") as file:
        for slot in LEGACY_SLOTS:
            file.write(pickles[slot])
        for flat in storages.values():
            file.write(struct.pack("<q", flat.size))
            file.write(flat.astype(flat.dtype.newbyteorder("<")).tobytes())
