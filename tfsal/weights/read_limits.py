"""What reading one checkpoint may cost: every limit, in one place.

A crafted weight file that passes the allow list of globals can still ask for a
lot: a few hundred bytes of pickle can describe containers that share children
(exponential when expanded), nest without end or contain themselves, integers of
any size, tensors far larger than their storage and storages that decompress far
beyond their declaration. ``restricted_pickle``, ``torch_objects`` and
``torch_reader`` check all of these against ``READ_LIMITS`` *before* allocating;
a file beyond a limit is refused with one ``CheckpointError`` naming it.

- ``max_pickle_bytes = 64 MiB``: the object pickle of a state dict costs about 150
  bytes per tensor (47 KB for MobileNetV2's 314), so this admits some 400 000
  tensors while keeping the pickle's memory small.
- ``max_steps = 2 000 000``: opcodes run plus container elements rebuilt while
  reading one checkpoint. MobileNetV2's file needs 12 444, so 160 times as large
  a state dict still reads; a crafted file stops within seconds (2 million cheap
  opcodes took 3.3 s on 2 cores at load 14), and lists or dicts that share
  children (memo references) are sized once and refused before they expand.
- ``max_depth = 100``: nesting of containers and pickle marks; state dicts nest 2
  to 5 levels. A self-referencing container is refused outright.
- ``max_int_bytes = 16``: integers of at most 128 bits (torch's legacy magic number
  needs 80); anything larger is not a size, an offset or a count.
- ``max_dims = 64``: tensor dimensions, far beyond any weight's (a convolution
  kernel has 4); it bounds the work of checking a tensor's extent.
- ``max_view_overlap = 2``: all tensors together may hold at most twice the elements
  of all storages (a weight and a slice of it are copied twice; more is a file
  built to exhaust memory).
- ``max_compression_ratio = 1100``: the storages of a zip checkpoint together may
  declare at most 1100 times the file's size. Deflate expands at most about
  1032:1 (torch stores its entries uncompressed, 1:1); beyond that the directory
  lies or entries share one compressed stream: a zip bomb.

Decompressed storages are read in chunks of ``read_chunk_bytes`` (16 MiB), never
beyond the size that both the zip directory and the pickle declare.

Dictionary keys are scalars or flat tuples of scalars: inserting a key hashes it,
and a tuple that shares its children hashes in exponential time.
"""

import dataclasses
from collections.abc import Callable


class CheckpointError(ValueError):
    """A weight file is not a readable checkpoint, or does not fit the model."""


@dataclasses.dataclass(frozen=True)
class ReadLimits:
    """Bounds on what reading one checkpoint may cost (see the module docstring)."""

    max_pickle_bytes: int = 64 * 2**20
    max_steps: int = 2_000_000
    max_depth: int = 100
    max_int_bytes: int = 16
    max_dims: int = 64
    max_view_overlap: int = 2
    max_compression_ratio: int = 1100
    read_chunk_bytes: int = 16 * 2**20


READ_LIMITS = ReadLimits()

# Dictionary keys are hashed (and compared) when inserted; a tuple key sharing its
# children can take exponential time to hash, so keys are scalars or flat tuples.
_SCALAR_TYPES = (str, bytes, int, float, bool, type(None))


class Budget:
    """Counts the steps spent reading one checkpoint against ``limits.max_steps``."""

    def __init__(self, source: str, limits: ReadLimits = READ_LIMITS):
        self.source = source
        self.limits = limits
        self.steps = 0

    def spend(self, steps: int) -> None:
        """Adds ``steps``; raises ``CheckpointError`` when the total exceeds the limit."""
        self.steps += steps
        if self.steps > self.limits.max_steps:
            raise CheckpointError(
                f"{self.source}: reading the checkpoint takes more than "
                f"{self.limits.max_steps} steps (objects and elements built); it is "
                "not a plain state dict (e.g. containers that share or repeat children)."
            )


def check_key(key, source: str):
    """Returns ``key`` if it may key a dict (a scalar or a flat tuple of scalars)."""
    if isinstance(key, _SCALAR_TYPES) or (
        type(key) is tuple and all(isinstance(item, _SCALAR_TYPES) for item in key)
    ):
        return key
    raise CheckpointError(
        f"{source}: a dictionary key is a {type(key).__name__}; checkpoints key their "
        "dictionaries by strings, numbers or flat tuples of them."
    )


def copy_tree(value, budget: Budget, convert: Callable[[object], object]):
    """Copies the containers of an unpickled object into a tree of bounded size.

    A pickle may reference one container from many places (memo); the copy gives
    each place its own container, so a consumer that walks the result sees a plain
    tree. Before copying, the size of that tree is counted once per distinct
    container (linear in the pickle, however much it shares) and spent from the
    budget, so a file whose tree would be too large is refused before it is built.

    Args:
        value: the result of ``unpickle``.
        budget: the step budget of the checkpoint being read.
        convert: applied to every value that is not a list, tuple or dict (it
            turns the caller's stand-ins into results, and may share them).

    Returns:
        The copy; dicts keep their type (``dict`` or ``OrderedDict``).

    Raises:
        CheckpointError: past ``max_depth`` levels, for self-references and when
            the budget runs out.
    """
    budget.spend(_tree_size(value, budget))

    def copy(node):
        if isinstance(node, dict):
            result = type(node)()
            for key, item in node.items():
                result[key] = copy(item)
            return result
        if isinstance(node, list):
            return [copy(item) for item in node]
        if isinstance(node, tuple):
            return tuple(copy(item) for item in node)
        return convert(node)

    return copy(value)


def _tree_size(value, budget):
    """The number of nodes of ``value`` expanded as a tree, checked on the way."""
    counted = {}  # id -> (tree size, height) of each container counted so far
    open_containers = set()
    limit, max_depth = budget.limits.max_steps - budget.steps, budget.limits.max_depth

    def too_deep():
        return CheckpointError(
            f"{budget.source}: the checkpoint nests containers deeper than {max_depth} levels."
        )

    def count(node, depth):
        if not isinstance(node, list | tuple | dict):
            return 1, 0
        if id(node) in counted:
            size, height = counted[id(node)]
            if depth + height > max_depth:
                raise too_deep()
            return size, height
        if id(node) in open_containers:
            raise CheckpointError(f"{budget.source}: the checkpoint contains itself.")
        if depth >= max_depth:
            raise too_deep()
        open_containers.add(id(node))
        size, height = 1, 1
        for item in node.values() if isinstance(node, dict) else node:
            item_size, item_height = count(item, depth + 1)
            size, height = size + item_size, max(height, item_height + 1)
            if size > limit:
                budget.spend(size)  # raises
        open_containers.discard(id(node))
        counted[id(node)] = size, height
        return size, height

    return count(value, 0)[0]
