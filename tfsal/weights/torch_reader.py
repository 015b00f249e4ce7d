"""Reads PyTorch checkpoints without torch and without running pickled code.

``torch.save`` writes a pickle whose tensors refer to raw storage blocks stored
beside it, in one of two layouts:

- the zip format (torch >= 1.6): ``<archive>/data.pkl`` plus one entry
  ``<archive>/data/<key>`` per storage, and ``<archive>/byteorder``;
- the legacy format: a sequence of pickles in one file (magic number, protocol
  version, system info, the object, the list of storage keys) followed by each
  storage as an int64 element count and its raw bytes.

Unpickling with ``pickle`` runs whatever callables a pickle names, so a checkpoint
from the internet could execute arbitrary code. Every pickle of both layouts, the
legacy header included, is read by ``restricted_pickle.unpickle``, which resolves
only the allow list of ``torch_objects.TorchObjects`` (``OrderedDict``, torch's
tensor and parameter rebuild functions, its storage types) and never calls
anything else. What reading may cost is bounded by ``READ_LIMITS`` (values and
reasons in ``restricted_pickle``): a file beyond them ends in one
``CheckpointError``, before the memory is allocated.
"""

import collections
import os
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from tfsal.weights.read_limits import READ_LIMITS, Budget, CheckpointError
from tfsal.weights.restricted_pickle import unpickle
from tfsal.weights.torch_objects import Storage, TorchObjects

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


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
    objects = TorchObjects(Budget(str(path), READ_LIMITS))
    with open(path, "rb") as file:
        head = file.read(4)
    # Told apart by their first bytes, as torch.load does: a legacy file's storages
    # may happen to hold the end-of-archive record zipfile.is_zipfile looks for.
    if head == b"PK\x03\x04":
        result = _read_zip(path, objects)
    else:
        if head[:1] == b"\x80":
            result = _read_legacy(path, objects)
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
    return objects.materialise(result)


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


def _read_zip(path, objects):
    try:
        with zipfile.ZipFile(path) as archive:
            entries = {info.filename: info for info in archive.infolist()}
            pickles = [name for name in entries if name.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise CheckpointError(
                    f"{path} is a zip file but not a PyTorch checkpoint (no '<archive>/data.pkl')."
                )
            prefix = pickles[0][: -len("data.pkl")]
            byteorder = "little"
            if f"{prefix}byteorder" in entries:
                entry = entries[f"{prefix}byteorder"]
                raw = _read_entry(archive, entry, path, what="the byte order", max_bytes=16)
                byteorder = raw.decode("ascii", "replace").strip()
                if byteorder not in ("little", "big"):
                    raise CheckpointError(f"{path}: unknown byte order {byteorder!r:.20}.")
            data = _read_entry(
                archive,
                entries[pickles[0]],
                path,
                what="the pickle 'data.pkl'",
                max_bytes=READ_LIMITS.max_pickle_bytes,
            )
            result = _unpickle(data, 0, objects, with_storages=True)[0]
            _check_declared_storage_bytes(objects, path)
            for key, storage in objects.storages.items():
                entry = entries.get(f"{prefix}data/{key}")
                if entry is None:
                    raise CheckpointError(f"{path}: the entry of storage '{key:.40}' is missing.")
                expected = storage.numel * storage.storage_type.dtype.itemsize
                raw = _read_entry(
                    archive,
                    entry,
                    path,
                    what=f"storage '{key:.40}'",
                    max_bytes=expected,
                    expected=expected,
                )
                storage.data = _decode_storage(raw, storage, byteorder)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as error:
        raise CheckpointError(f"{path} is a damaged or truncated zip checkpoint: {error}") from None
    except RuntimeError as error:  # encrypted entries
        raise CheckpointError(f"{path} is not a plain zip checkpoint: {error}") from None
    return result


def _check_declared_storage_bytes(objects, path):
    # Entries can share one compressed stream (a zip bomb that passes the check of
    # each entry's ratio); all storages together cannot expand more than deflate can.
    declared = sum(
        storage.numel * storage.storage_type.dtype.itemsize for storage in objects.storages.values()
    )
    ratio, file_size = READ_LIMITS.max_compression_ratio, path.stat().st_size
    if declared > ratio * file_size:
        raise CheckpointError(
            f"{path}: its storages declare {declared} bytes, more than {ratio} times the "
            f"file's {file_size}; refusing to read them."
        )


def _read_entry(archive, entry, path, *, what, max_bytes, expected=None):
    """Reads a zip entry of ``expected`` (or at most ``max_bytes``) bytes in chunks.

    The sizes in the zip directory are checked before reading and the decompressed
    read never goes beyond them, so an entry that inflates past what it declares
    costs no more memory than the declaration, which the pickle must agree with
    and ``_check_declared_storage_bytes`` bounds.
    """
    if expected is not None and entry.file_size != expected:
        raise CheckpointError(
            f"{path} is truncated or corrupt: {what} has {entry.file_size} bytes, "
            f"expected {expected}."
        )
    if entry.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        # torch stores entries uncompressed; zipfile inflates bzip2 and lzma without
        # bounding the output of one read, so they are refused rather than trusted.
        raise CheckpointError(
            f"{path}: {what} uses zip compression method {entry.compress_type}; only "
            "stored and deflated entries are read."
        )
    if entry.file_size > max_bytes:
        raise CheckpointError(
            f"{path}: {what} declares {entry.file_size} bytes, more than the {max_bytes} "
            "it may hold."
        )
    chunks, remaining = [], entry.file_size
    with archive.open(entry) as stream:
        while remaining:
            chunk = stream.read(min(remaining, READ_LIMITS.read_chunk_bytes))
            if not chunk:
                raise CheckpointError(f"{path} is truncated: {what} ends early.")
            chunks.append(chunk)
            remaining -= len(chunk)
    return b"".join(chunks)


def _read_legacy(path, objects):
    # One read of the whole file (its storages are most of it): the arrays view
    # these bytes until materialise copies the tensors out of them.
    data = path.read_bytes()
    magic, position = _unpickle(data, 0, objects)
    if type(magic) is not int or magic != LEGACY_MAGIC_NUMBER:
        raise CheckpointError(
            f"{path} starts with a pickle but is not a PyTorch checkpoint (wrong magic number)."
        )
    protocol, position = _unpickle(data, position, objects)
    if type(protocol) is not int or protocol != LEGACY_PROTOCOL_VERSION:
        raise CheckpointError(f"{path}: unsupported legacy protocol version.")
    _sys_info, position = _unpickle(data, position, objects)
    result, position = _unpickle(data, position, objects, with_storages=True)
    keys, position = _unpickle(data, position, objects)
    if type(keys) is not list or not all(type(key) is str for key in keys):
        raise CheckpointError(f"{path}: the list of storage keys is not a list of strings.")
    for key in keys:
        storage = objects.storages.get(key)
        if storage is None or storage.data is not None:
            raise CheckpointError(
                f"{path}: storage '{key:.40}' is listed twice or never used; the file is corrupt."
            )
        position = _read_legacy_storage(data, position, storage, path)
    return result


def _read_legacy_storage(data, position, storage, path):
    count_bytes = data[position : position + 8]
    if len(count_bytes) < 8:
        raise CheckpointError(f"{path} is truncated: storage '{storage.key:.40}' is missing.")
    count = int.from_bytes(count_bytes, "little", signed=True)
    if count != storage.numel:
        raise CheckpointError(
            f"{path}: storage '{storage.key:.40}' holds {count} elements, its tensors expect "
            f"{storage.numel}; the file is corrupt."
        )
    start = position + 8
    end = start + count * storage.storage_type.dtype.itemsize
    if end > len(data):
        raise CheckpointError(
            f"{path} is truncated or corrupt: storage '{storage.key:.40}' needs {end - start} "
            f"bytes, {len(data) - start} remain."
        )
    storage.data = _decode_storage(memoryview(data)[start:end], storage, "little")
    return end


def _unpickle(data, start, objects, with_storages=False):
    return unpickle(
        data,
        start,
        budget=objects.budget,
        allowed_globals=objects.allowed_globals if with_storages else {},
        persistent_load=objects.persistent_load if with_storages else None,
    )


def _decode_storage(raw, storage: Storage, byteorder):
    dtype = storage.storage_type.dtype
    if byteorder == "big":
        dtype = dtype.newbyteorder(">")
    data = np.frombuffer(raw, dtype=dtype)
    if storage.storage_type.name == "BFloat16Storage":
        # bfloat16 is the upper half of a float32.
        data = (data.astype("<u4") << 16).view("<f4")
    return data.astype(data.dtype.newbyteorder("="), copy=False)
