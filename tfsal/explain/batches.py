"""The batches a derivation streams: images alone or first of a pair, with progress."""

import keras
import tensorflow as tf


def batch_images(batch) -> tf.Tensor:
    """The images of a batch: the batch itself, or the first item of a pair."""
    if isinstance(batch, (tuple, list)):
        batch = batch[0]
    if isinstance(batch, dict):
        if "image" not in batch:
            raise ValueError(f"A dict batch must hold 'image'. Received keys: {sorted(batch)}")
        batch = batch["image"]
    images = tf.convert_to_tensor(batch, tf.float32)
    if images.shape.rank != 4:
        raise ValueError(
            "Batches must hold images (batch, height, width, 3), alone or as the first item "
            f"of a pair. Received: shape {images.shape}"
        )
    return images


def first_images(batches, name: str) -> tf.Tensor:
    """The images of the first batch; raises when there is none."""
    for batch in batches:
        return batch_images(batch)
    raise ValueError(f"{name} holds no batches; the derivation needs images.")


def _length(batches) -> int | None:
    if isinstance(batches, tf.data.Dataset):
        cardinality = int(batches.cardinality())
        return cardinality if cardinality >= 0 else None
    try:
        return len(batches)
    except TypeError:
        return None


def with_progress(batches, label, enabled):
    """Yields the batches, showing a Keras progress bar under ``label``."""
    total = _length(batches)
    if enabled:
        print(label)
    bar = keras.utils.Progbar(total, unit_name="batch", verbose=1 if enabled else 0)
    step = 0
    for step, batch in enumerate(batches, start=1):
        yield batch
        bar.update(step)
    if total is None:
        bar.update(step, finalize=True)
