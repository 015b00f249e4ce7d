"""The objects a PyTorch pickle may build: stand-ins for torch's tensor types.

A checkpoint's pickle names ``collections.OrderedDict``, torch's tensor and
parameter rebuild functions and its storage classes, and refers to storages by
persistent id. ``TorchObjects`` resolves exactly those names to harmless
stand-ins (the allow list of ``restricted_pickle.unpickle``), checks every
argument a pickle passes them, and turns the stand-ins into numpy arrays once the
storages are read. Sizes are checked against what the storages declare *before*
anything is allocated: a tensor must lie inside its storage, hold no more
elements than it, and all tensors together at most ``max_view_overlap`` times the
elements of all storages.
"""

import collections
import math

import numpy as np

from tfsal.weights.read_limits import Budget, CheckpointError, check_key, copy_tree

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

# Element counts and offsets beyond int64 are not torch's.
_MAX_INDEX = 2**63 - 1


class StorageType:
    """Stand-in for a ``torch.<X>Storage`` class named by a pickle."""

    def __init__(self, name):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class Storage:
    """A storage block referenced by the pickle; its bytes are read afterwards."""

    def __init__(self, key, storage_type, numel):
        self.key = key
        self.storage_type = storage_type
        self.numel = numel
        self.data = None


class _StorageView:
    """A slice of a storage (legacy format only)."""

    def __init__(self, storage, offset, numel):
        self.storage = storage
        self.offset = offset
        self.numel = numel


class _TensorRef:
    """A tensor view into a storage, materialised once every storage is read."""

    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride


def _contiguous_strides(size):
    strides, step = [], 1
    for length in reversed(size):
        strides.append(step)
        step *= length
    return tuple(reversed(strides))


def _is_index(value):
    return type(value) is int and 0 <= value <= _MAX_INDEX


class TorchObjects:
    """The allow list and the storages of one checkpoint being read.

    Args:
        budget: the step budget of the checkpoint (its ``source`` names the file
            in errors, its ``limits`` bound the tensors).
    """

    def __init__(self, budget: Budget):
        self.budget = budget
        self.source = budget.source
        self.limits = budget.limits
        self.storages: dict[str, Storage] = {}
        self._tensor_elements = 0
        self._tensor_budget = 0
        self.allowed_globals = {
            ("collections", "OrderedDict"): self.ordered_dict,
            ("torch._utils", "_rebuild_tensor"): self.rebuild_tensor,
            ("torch._utils", "_rebuild_tensor_v2"): self.rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): self.rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): self.rebuild_parameter,
            **{("torch", name): StorageType(name) for name in STORAGE_DTYPES},
        }

    def error(self, message: str) -> CheckpointError:
        """A ``CheckpointError`` naming the file and what is wrong in it."""
        return CheckpointError(f"{self.source}: {message}; the file is corrupt or crafted.")

    # -- what the pickle may call ---------------------------------------------------

    def ordered_dict(self, items=()):
        """``OrderedDict()``, or ``OrderedDict(pairs)`` as Python 2's pickles hold it."""
        if type(items) not in (list, tuple):
            raise self.error(f"OrderedDict is built from a {type(items).__name__}")
        result = collections.OrderedDict()
        for pair in items:
            if type(pair) not in (list, tuple) or len(pair) != 2:
                raise self.error("OrderedDict is built from items that are not pairs")
            result[check_key(pair[0], self.source)] = pair[1]
        return result

    def rebuild_tensor(
        self, storage, storage_offset, size, stride, requires_grad=False, hooks=None, metadata=None
    ):
        """``torch._utils._rebuild_tensor(_v2)``: a view, checked against its storage."""
        del requires_grad, hooks, metadata  # autograd state, not data
        if not isinstance(storage, Storage | _StorageView):
            raise self.error(f"a tensor's storage is a {type(storage).__name__}")
        if not (
            _is_index(storage_offset)
            and type(size) is tuple
            and type(stride) is tuple
            and len(size) == len(stride) <= self.limits.max_dims
            and all(_is_index(value) for value in size + stride)
        ):
            raise self.error(
                f"a tensor's offset, size and stride are not {self.limits.max_dims} or fewer "
                "non-negative integers of matching length"
            )
        numel = math.prod(size)
        if math.prod(n or 1 for n in size) > _MAX_INDEX // 16:
            raise self.error(f"a tensor of shape {size} is larger than any array")
        if numel and (
            numel > storage.numel
            or storage_offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
            >= storage.numel
        ):
            raise self.error(
                f"a tensor of shape {size} with strides {stride} at offset {storage_offset} "
                f"lies outside its storage of {storage.numel} elements, or repeats them"
            )
        return _TensorRef(storage, storage_offset, size, stride)

    def rebuild_parameter(self, data, requires_grad=False, hooks=None, state=None):
        """``torch._utils._rebuild_parameter(_with_state)``: the tensor itself."""
        del requires_grad, hooks, state
        if not isinstance(data, _TensorRef):
            raise self.error(f"a parameter holds a {type(data).__name__}, not a tensor")
        return data

    def persistent_load(self, saved_id):
        """Resolves ``("storage", type, key, location, numel[, view])`` to a storage."""
        if not (
            type(saved_id) is tuple
            and len(saved_id) in (5, 6)
            and saved_id[0] == "storage"
            and isinstance(saved_id[1], StorageType)
            and type(saved_id[2]) is str
            and type(saved_id[3]) is str
            and _is_index(saved_id[4])
        ):
            raise self.error(
                "a persistent id is not ('storage', <torch storage type>, key, location, count)"
            )
        _, storage_type, key, _location, numel = saved_id[:5]
        storage = self.storages.setdefault(key, Storage(key, storage_type, numel))
        if storage.storage_type is not storage_type or storage.numel != numel:
            raise self.error(f"storage '{key:.40}' is declared twice with different types or sizes")
        view = saved_id[5] if len(saved_id) == 6 else None
        if view is None:
            return storage
        # Legacy storage views: (view key, element offset, element count).
        if not (
            type(view) is tuple
            and len(view) == 3
            and _is_index(view[1])
            and _is_index(view[2])
            and view[1] + view[2] <= numel
        ):
            raise self.error(f"a view of storage '{key:.40}' lies outside it")
        return _StorageView(storage, view[1], view[2])

    # -- the result -----------------------------------------------------------------

    def materialise(self, result):
        """Replaces every tensor stand-in in ``result`` by a numpy array.

        Raises:
            CheckpointError: if a storage was never read, or the tensors together
                ask for more than ``max_view_overlap`` times the storages' elements.
        """
        self._tensor_budget = self.limits.max_view_overlap * sum(
            storage.numel for storage in self.storages.values()
        )
        arrays = {}  # one array per tensor: tied weights stay one object

        def convert(value):
            if isinstance(value, _TensorRef):
                if id(value) not in arrays:
                    arrays[id(value)] = self._tensor_array(value)
                return arrays[id(value)]
            if isinstance(value, Storage | _StorageView):
                raise self.error("a storage appears outside a tensor")
            if value is None or isinstance(value, str | bytes | int | float):
                return value
            raise self.error(f"a {type(value).__name__} appears as a value")

        return copy_tree(result, self.budget, convert)

    def _tensor_array(self, ref):
        storage, offset = ref.storage, ref.offset
        if isinstance(storage, _StorageView):
            offset += storage.offset
            storage = storage.storage
        data = storage.data
        if data is None:
            raise self.error(f"storage '{storage.key:.40}' is never stored")
        numel = math.prod(ref.size)
        self._tensor_elements += numel
        if self._tensor_elements > self._tensor_budget:
            raise CheckpointError(
                f"{self.source}: the tensors view their storages more than "
                f"{self.limits.max_view_overlap} times over; refusing to copy them."
            )
        if numel == 0:
            return np.zeros(ref.size, dtype=data.dtype)
        if ref.stride == _contiguous_strides(ref.size):  # most weights: a plain slice
            return data[offset : offset + numel].reshape(ref.size).copy()
        view = np.lib.stride_tricks.as_strided(
            data[offset:],
            shape=ref.size,
            strides=tuple(stride * data.itemsize for stride in ref.stride),
            writeable=False,
        )
        return np.array(view)
