"""What the readout fitting needs of every training batch, computed once.

Fitting the readout (and fine-tuning) changes neither the parent nor the fixed
log-Gabor banks, so the parent's saliency and the banks' magnitudes of every
training batch are the same in every epoch. The derivation stores them once, during
its pass over the training images, in a ``FeatureCache``; each epoch then runs only
the part of the explainable model after the banks (``feature_head``). On NUS (320
images at 224×224, three banks) that is about 0.5 MB per image.

Memory stays bounded: batches are held in memory up to ``memory_bytes``, and the
rest are written to ``.npy`` files in a temporary folder and read back memory-mapped,
one batch at a time. The folder is removed by ``close`` (or on leaving a ``with``
block).
"""

import tempfile
from pathlib import Path

import keras
import numpy as np

from tfsal.conventions import SALIENCY
from tfsal.explain.centre_prior import CentrePrior
from tfsal.layers.log_gabor import LogGaborBank

# 1 GiB in memory before spilling to disk: NUS at 224×224 takes about 160 MB.
DEFAULT_MEMORY_BYTES = 1 << 30


class FeatureCache:
    """Per-batch arrays (banks' features, the parent's saliency), in memory or on disk.

    Example:
    ```python
    with FeatureCache(memory_bytes=256 << 20) as cache:
        for images in batches:
            cache.append([bank(images) for bank in banks], parent(images)["saliency"])
        for features, target in cache:  # as many times as needed
            ...
    ```

    Args:
        memory_bytes: bytes held in memory before further batches go to a temporary
            folder (``tempfile``'s default location), >= 0.
    """

    def __init__(self, memory_bytes: int = DEFAULT_MEMORY_BYTES):
        if not isinstance(memory_bytes, int) or memory_bytes < 0:
            raise ValueError(
                f"memory_bytes must be an int >= 0. Received: memory_bytes={memory_bytes!r}"
            )
        self.memory_bytes = memory_bytes
        self.bytes_in_memory = 0
        self._entries = []  # (list of arrays) in memory, or (folder, count) on disk
        self._folder = None

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def on_disk(self) -> int:
        """How many batches were written to the temporary folder."""
        return sum(isinstance(entry, Path) for entry in self._entries)

    def append(self, features, target) -> None:
        """Stores one batch: a list of feature arrays and the parent's saliency."""
        arrays = [np.asarray(array, np.float32) for array in (*features, target)]
        size = sum(array.nbytes for array in arrays)
        if self.bytes_in_memory + size <= self.memory_bytes:
            self.bytes_in_memory += size
            self._entries.append(arrays)
            return
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="tfsal-feature-cache-")
        batch = Path(self._folder.name) / f"batch-{len(self._entries):06d}"
        batch.mkdir()
        for index, array in enumerate(arrays):
            np.save(batch / f"{index}.npy", array)
        self._entries.append(batch)

    def __iter__(self):
        """Yields ``(features, target)`` per stored batch, in the order appended."""
        for entry in self._entries:
            if isinstance(entry, Path):
                count = len(list(entry.glob("*.npy")))
                entry = [np.load(entry / f"{index}.npy", mmap_mode="r") for index in range(count)]
            yield list(entry[:-1]), entry[-1]

    def close(self) -> None:
        """Forgets every batch and removes the temporary folder."""
        self._entries = []
        self.bytes_in_memory = 0
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def bank_layers(model: keras.Model) -> list[LogGaborBank]:
    """The log-Gabor banks of an explainable model, in the model's layer order."""
    return [layer for layer in model.layers if isinstance(layer, LogGaborBank)]


def feature_head(model: keras.Model) -> keras.Model:
    """The explainable model from its banks' outputs on: ``[image, *features] -> saliency``.

    The head is built on a copy of ``model`` (a sub-model of the model's own layers
    would add graph nodes to them that break its serialisation), with ``model``'s
    weights at the time of the call; ``copy_weights`` moves weights between the two.
    The image is read only for its shape (by the centre prior), so a blank image of
    the batch's shape stands in for it.

    Raises:
        ValueError: if a layer other than the banks and the centre prior reads the
            image, so that the cached features would not stand for it.
    """
    readers = {
        layer.name
        for layer in model.layers
        for node in layer._inbound_nodes
        if any(tensor is model.input for tensor in node.input_tensors)
    }
    allowed = {layer.name for layer in bank_layers(model)}
    allowed |= {layer.name for layer in model.layers if isinstance(layer, CentrePrior)}
    if not readers <= allowed:
        raise ValueError(
            f"Layers {sorted(readers - allowed)} of {model.name!r} read the image itself, so "
            "the readout cannot be fitted on cached features; pass cache_features=False."
        )
    copy = keras.models.clone_model(model)
    features = [layer.output for layer in bank_layers(copy)]
    head = keras.Model([copy.input, *features], copy.output[SALIENCY], name="feature_head")
    copy_weights(model, head)
    return head


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Sets the weights of every layer of ``target`` from the same-named one of ``source``."""
    names = {layer.name for layer in source.layers}
    for layer in target.layers:
        if layer.name in names and layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())
