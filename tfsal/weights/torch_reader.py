"""Reads PyTorch checkpoints without torch and without running pickled code.

``torch.save`` writes a pickle whose tensors refer to raw storage blocks stored
beside it, in one of two layouts:

- the zip format (torch >= 1.6): ``<archive>/data.pkl`` plus one entry
  ``<archive>/data/<key>`` per storage, and ``<archive>/byteorder``;
- the legacy format: a sequence of pickles in one file (magic number, protocol
  version, system info, the object, the list of storage keys) followed by each
  storage as an int64 element count and its raw bytes.

Unpickling runs whatever callables a pickle names, so a checkpoint from the
internet could execute arbitrary code. ``_SafeUnpickler`` resolves only an allow
list of globals (``OrderedDict``, torch's tensor and parameter rebuild functions
and storage types) to harmless stand-ins and refuses everything else before it
is called.
"""

import collections
import io
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# torch storage class name -> numpy dtype of one element ("bfloat16" is decoded by hand).
STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class CheckpointError(ValueError):
    """A file is not a readable PyTorch checkpoint, or does not fit the model."""


class _StorageType:
    """Stand-in for a ``torch.<X>Storage`` class named by a pickle."""

    def __init__(self, name):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class _Storage:
    """A storage block referenced by the pickle; its bytes arrive later (legacy)."""

    def __init__(self, key, storage_type, numel):
        self.key = key
        self.storage_type = storage_type
        self.numel = numel
        self.data = None


class _TensorRef:
    """A tensor view into a storage, materialised once every storage is read."""

    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = int(offset)
        self.size = tuple(int(s) for s in size)
        self.stride = tuple(int(s) for s in stride)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    return data


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals and torch storage ids."""

    def __init__(self, file, path, storages):
        super().__init__(file)
        self._path = path
        self._storages = storages

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"{self._path}: the checkpoint's pickle references the global "
                f"'{module}.{name}', which is not on the allow list of tensor and "
                "state-dict types; refusing to load it (it could run arbitrary code)."
            ) from None

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and saved_id and saved_id[0] == "storage"):
            raise CheckpointError(
                f"{self._path}: unsupported persistent id {saved_id!r:.80} "
                "(only tensor storages are supported)."
            )
        storage_type, key, _location, numel = saved_id[1:5]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"{self._path}: unknown storage type {storage_type!r}.")
        view_metadata = saved_id[5] if len(saved_id) > 5 else None
        if key not in self._storages:
            self._storages[key] = _Storage(key, storage_type, int(numel))
        storage = self._storages[key]
        if view_metadata is not None:
            # Legacy storage views: (view key, element offset, element count).
            _view_key, view_offset, view_size = view_metadata
            return _StorageView(storage, int(view_offset), int(view_size))
        return storage


class _StorageView:
    """A slice of a storage (legacy format only)."""

    def __init__(self, storage, offset, numel):
        self.storage = storage
        self.offset = offset
        self.numel = numel


def read_checkpoint(path: str | os.PathLike):
    """Reads a PyTorch checkpoint into Python objects with numpy arrays for tensors.

    Args:
        path: a file written by ``torch.save`` (zip or legacy format).

    Returns:
        The saved object (usually an ordered dict), with every tensor and
        parameter replaced by a numpy array.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointError: if the file is not a PyTorch checkpoint, is truncated or
            corrupt, or references a global outside the allow list.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint file at {path}.")
    storages = {}
    if zipfile.is_zipfile(path):
        result = _read_zip(path, storages)
    else:
        with open(path, "rb") as file:
            head = file.read(2)
        if head[:1] == b"\x80":
            result = _read_legacy(path, storages)
        elif tarfile.is_tarfile(path):
            raise CheckpointError(
                f"{path} is a tar-format PyTorch checkpoint (torch < 0.4), which is not "
                "supported; re-save it with a recent torch."
            )
        else:
            raise CheckpointError(
                f"{path} is not a PyTorch checkpoint (neither the zip format of torch >= 1.6 "
                "nor the legacy pickle format)."
            )
    return _materialise(result, path)


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads the tensors of a PyTorch state dict: name -> numpy array.

    Accepts a bare ``state_dict`` or a training checkpoint holding one under
    ``"state_dict"``, ``"model_state_dict"`` or ``"model"``.

    Args:
        path: a file written by ``torch.save``.

    Returns:
        An ordered dict of arrays, in the file's order.

    Raises:
        CheckpointError: if the file holds no state dict of tensors (see also
            ``read_checkpoint``).
    """
    content = read_checkpoint(path)
    if isinstance(content, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(content.get(key), dict):
                content = content[key]
                break
    if not isinstance(content, dict) or not content:
        raise CheckpointError(f"{path} holds no state dict (found {type(content).__name__}).")
    not_tensors = [key for key, value in content.items() if not isinstance(value, np.ndarray)]
    if not_tensors:
        raise CheckpointError(
            f"{path} is not a state dict of tensors: entries {not_tensors[:5]} are not tensors."
        )
    return collections.OrderedDict((str(key), value) for key, value in content.items())


def _read_zip(path, storages):
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pickles = [name for name in names if name.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise CheckpointError(
                    f"{path} is a zip file but not a PyTorch checkpoint (no '<archive>/data.pkl')."
                )
            prefix = pickles[0][: -len("data.pkl")]
            byteorder = "little"
            if f"{prefix}byteorder" in names:
                byteorder = archive.read(f"{prefix}byteorder").decode().strip()
            result = _unpickle(io.BytesIO(archive.read(pickles[0])), path, storages)
            for key, storage in storages.items():
                entry = f"{prefix}data/{key}"
                if entry not in names:
                    raise CheckpointError(f"{path}: storage entry '{entry}' is missing.")
                storage.data = _decode_storage(archive.read(entry), storage, byteorder, path)
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise CheckpointError(f"{path} is a damaged or truncated zip checkpoint: {error}") from None
    return result


def _read_legacy(path, storages):
    with open(path, "rb") as file:
        try:
            magic = pickle.load(file)
            if magic != LEGACY_MAGIC_NUMBER:
                raise CheckpointError(
                    f"{path} starts with a pickle but is not a PyTorch checkpoint "
                    "(wrong magic number)."
                )
            protocol = pickle.load(file)
            if protocol != LEGACY_PROTOCOL_VERSION:
                raise CheckpointError(f"{path}: unsupported legacy protocol version {protocol}.")
            _sys_info = _unpickle(file, path, {})
            result = _unpickle(file, path, storages)
            keys = _unpickle(file, path, {})
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
            if isinstance(error, CheckpointError):
                raise
            raise CheckpointError(
                f"{path} is a damaged or truncated legacy checkpoint: {error}"
            ) from None
        for key in keys:
            if key not in storages:
                raise CheckpointError(f"{path}: storage '{key}' is listed but never used.")
            storage = storages[key]
            count_bytes = file.read(8)
            if len(count_bytes) < 8:
                raise CheckpointError(f"{path} is truncated: storage '{key}' is missing.")
            count = int.from_bytes(count_bytes, "little", signed=True)
            if count != storage.numel:
                raise CheckpointError(
                    f"{path}: storage '{key}' holds {count} elements, its tensors expect "
                    f"{storage.numel}; the file is corrupt."
                )
            raw = file.read(count * storage.storage_type.dtype.itemsize)
            storage.data = _decode_storage(raw, storage, "little", path)
    return result


def _unpickle(file, path, storages):
    try:
        return _SafeUnpickler(file, path, storages).load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{path}: the checkpoint's pickle is damaged: {error}") from None


def _decode_storage(raw, storage, byteorder, path):
    dtype = storage.storage_type.dtype
    expected = storage.numel * dtype.itemsize
    if len(raw) != expected:
        raise CheckpointError(
            f"{path} is truncated or corrupt: storage '{storage.key}' has {len(raw)} bytes, "
            f"expected {expected}."
        )
    if byteorder == "big":
        dtype = dtype.newbyteorder(">")
    data = np.frombuffer(raw, dtype=dtype)
    if storage.storage_type.name == "BFloat16Storage":
        # bfloat16 is the upper half of a float32.
        data = (data.astype("<u4") << 16).view("<f4")
    return data.astype(data.dtype.newbyteorder("="), copy=False)


def _materialise(obj, path):
    if isinstance(obj, _TensorRef):
        return _tensor_array(obj, path)
    if isinstance(obj, dict):
        materialised = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for key, value in obj.items():
            materialised[key] = _materialise(value, path)
        return materialised
    if isinstance(obj, list):
        return [_materialise(item, path) for item in obj]
    if isinstance(obj, tuple):
        return tuple(_materialise(item, path) for item in obj)
    return obj


def _tensor_array(ref, path):
    storage, offset = ref.storage, ref.offset
    if isinstance(storage, _StorageView):
        offset += storage.offset
        storage = storage.storage
    data = storage.data
    if data is None:
        raise CheckpointError(f"{path}: storage '{storage.key}' was never read.")
    if any(size == 0 for size in ref.size):
        return np.zeros(ref.size, dtype=data.dtype)
    last = offset + sum(
        (size - 1) * stride for size, stride in zip(ref.size, ref.stride, strict=True)
    )
    if offset < 0 or last >= len(data) or any(stride < 0 for stride in ref.stride):
        raise CheckpointError(
            f"{path}: a tensor of shape {ref.size} lies outside its storage '{storage.key}'; "
            "the file is corrupt."
        )
    view = np.lib.stride_tricks.as_strided(
        data[offset:],
        shape=ref.size,
        strides=tuple(stride * data.itemsize for stride in ref.stride),
        writeable=False,
    )
    return np.array(view)
