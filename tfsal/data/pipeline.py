"""tf.data pipelines of model inputs and saliency targets.

```python
from tfsal import data

dataset = data.open_dataset("nus:../shared/datasets/nus-scene")
splits = data.split_ids(dataset.ids(), {"train": 320, "val": 80}, seed=0)
train = data.make_pipeline(
    dataset, splits["train"], image_size=(192, 256), shuffle=True, augment=True, repeat=True
)
image, targets = next(iter(train))  # (8, 192, 256, 3), {"saliency": (8, 192, 256, 2)}
```

The pipeline holds image identifiers only: images are decoded and resized on demand
in parallel (``num_parallel_calls=tf.data.AUTOTUNE``, order kept), so data sets larger
than memory stream. TFRecord shards written by ``training.prepare`` stream the same
way and give identical tensors. With ``shuffle=False`` elements come in
``image_ids`` order (shard order for TFRecords), so evaluation can pair them with
``dataset.load(image_id).fixations`` at the original resolution.
"""

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfsal.conventions import SALIENCY
from tfsal.data import targets, tfrecords
from tfsal.data.readers import SaliencyDataset

_RECORD_SHUFFLE_BUFFER = 256


def make_pipeline(
    dataset: SaliencyDataset | str,
    image_ids: Sequence[str] | None = None,
    image_size: tuple[int, int] = (240, 320),
    resize: str = "pad",
    batch_size: int = 8,
    shuffle: bool = False,
    seed: int = 0,
    augment: bool = False,
    repeat: bool = False,
    shard: tuple[int, int] | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Builds a batched ``tf.data.Dataset`` of ``(image, {"saliency": target})``.

    Args:
        dataset: a ``SaliencyDataset``, or a TFRecord shard glob pattern such as
            ``"shards/shard-*.tfrecord"`` written by ``training.prepare``.
        image_ids: the images to use; default all. For shards, a filter.
        image_size: the model's input (height, width).
        resize: "pad" (aspect-preserving, centred, zero padding) or "stretch".
        batch_size: images per batch.
        shuffle: shuffle with ``seed`` (reshuffled every epoch, deterministically):
            all identifiers of a reader; shard files plus a buffer of 256 records
            for TFRecords.
        seed: seed of shuffling and augmentation.
        augment: flip images and targets horizontally together, with probability
            1/2 per element, seeded.
        repeat: repeat forever (for ``fit`` with ``steps_per_epoch``).
        shard: ``(num_workers, worker_index)``: this worker's share of the data,
            taken before any image is decoded (whole files for shards when there
            are at least as many files as workers). Pass it in multi-worker
            training, e.g. from ``tf.distribute.InputContext``; when None,
            ``tf.distribute`` may shard automatically, but by discarding decoded
            elements.
        drop_remainder: drop the last, smaller batch.

    Returns:
        Batches of (B, h, w, 3) float32 RGB images in [0, 255] and targets
        ``{"saliency": (B, h, w, 2)}``: channel 0 the density (sums to 1 per image),
        channel 1 the binary fixation map.
    """
    image_size = targets.check_resize_arguments(image_size, resize)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    if shard is not None:
        num_workers, worker_index = (int(value) for value in shard)
        if num_workers < 1 or not 0 <= worker_index < num_workers:
            raise ValueError(
                "shard must be (num_workers, worker_index) with 0 <= worker_index < "
                f"num_workers. Received: shard={shard}"
            )
    if isinstance(dataset, SaliencyDataset):
        examples = _from_reader(dataset, image_ids, image_size, resize, shuffle, seed, shard)
    elif isinstance(dataset, str):
        examples = _from_shards(dataset, image_ids, image_size, resize, shuffle, seed, shard)
    else:
        raise TypeError(
            "dataset must be a SaliencyDataset or a TFRecord shard pattern. "
            f"Received: {type(dataset).__name__}"
        )
    if repeat:
        examples = examples.repeat()
    if augment:
        examples = _flip_randomly(examples, seed)
    examples = examples.map(
        lambda image, target: (image, {SALIENCY: target}), num_parallel_calls=tf.data.AUTOTUNE
    )
    examples = examples.batch(int(batch_size), drop_remainder=drop_remainder)
    options = tf.data.Options()
    options.deterministic = True
    if shard is not None:
        # Already sharded by hand: tf.distribute must not shard again.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return examples.with_options(options).prefetch(tf.data.AUTOTUNE)


def _from_reader(dataset, image_ids, image_size, resize, shuffle, seed, shard):
    if not (dataset.has_fixations or dataset.has_density):
        raise ValueError(
            f"The {dataset.name} data set has neither fixations nor density maps, so it "
            "gives no training targets; add fixations/ or maps/ to it."
        )
    all_ids = dataset.ids()
    image_ids = list(all_ids if image_ids is None else image_ids)
    if not image_ids:
        raise ValueError("image_ids is empty: the pipeline would yield nothing.")
    unknown = sorted(set(image_ids) - set(all_ids))
    if unknown:
        raise ValueError(
            f"{len(unknown)} image_ids are not in the {dataset.name} data set "
            f"(first: {unknown[:3]})."
        )
    ids = tf.data.Dataset.from_tensor_slices(tf.constant(image_ids, dtype=tf.string))
    if shard is not None:
        ids = ids.shard(*shard)
    if shuffle:
        ids = ids.shuffle(len(image_ids), seed=seed, reshuffle_each_iteration=True)

    def load(image_id: bytes) -> tuple[np.ndarray, np.ndarray]:
        record = dataset.load(image_id.decode("utf-8"))
        return targets.make_example(
            record.image, record.fixations, record.density, image_size, resize, record.image_id
        )

    def load_tensors(image_id):
        image, target = tf.numpy_function(load, [image_id], [tf.float32, tf.float32])
        return _with_shapes(image, target, image_size)

    return ids.map(load_tensors, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _from_shards(pattern, image_ids, image_size, resize, shuffle, seed, shard):
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(
            f"No TFRecord shards match {pattern!r}; write them with "
            "`python -m training.prepare --data FORMAT:PATH --out DIR`."
        )
    tfrecords.check_shards(files)
    prepared_size, prepared_resize = tfrecords.read_layout(files)
    if prepared_size is not None and (prepared_size != image_size or prepared_resize != resize):
        raise ValueError(
            f"The shards {pattern!r} were prepared at image_size={prepared_size} with "
            f"resize={prepared_resize!r}, but the pipeline asks for image_size={image_size}, "
            f"resize={resize!r}. Use those values, or prepare the shards again without "
            "--image-size."
        )
    file_names = tf.data.Dataset.from_tensor_slices(files)
    shard_records = False
    if shard is not None:
        if len(files) >= shard[0]:
            file_names = file_names.shard(*shard)
        else:
            shard_records = True
    if shuffle:
        file_names = file_names.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        records = file_names.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(files), 8),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    else:
        records = file_names.flat_map(tf.data.TFRecordDataset)
    if shard_records:
        records = records.shard(*shard)
    parsed = records.map(tfrecords.parse_example, num_parallel_calls=tf.data.AUTOTUNE)
    if image_ids is not None:
        parsed = parsed.filter(_id_filter(files, image_ids))
    if shuffle:
        parsed = parsed.shuffle(_RECORD_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    decode = _decode_prepared if prepared_size is not None else _decode_original
    return parsed.map(
        lambda features: decode(features, image_size, resize),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def _id_filter(files: list[str], image_ids: Sequence[str]):
    wanted = sorted(set(image_ids))
    if not wanted:
        raise ValueError("image_ids is empty: the pipeline would yield nothing.")
    written = tfrecords.read_planned_ids(files)
    if written is not None:
        unknown = sorted(set(wanted) - written)
        if unknown:
            raise ValueError(
                f"{len(unknown)} image_ids are not in the shards (first: {unknown[:3]})."
            )
    keys = tf.constant(wanted, dtype=tf.string)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(keys, tf.ones_like(keys, dtype=tf.int32)),
        default_value=0,
    )
    return lambda features: table.lookup(features["image_id"]) > 0


def _decode_prepared(features, image_size, resize):
    del resize  # checked against the shards' own in _from_shards
    image = tf.cast(tf.io.decode_png(features["image"], channels=3), tf.float32)
    target = tf.reshape(tf.io.decode_raw(features["target"], tf.float32), (*image_size, 2))
    return _with_shapes(image, target, image_size)


def _decode_original(features, image_size, resize):
    image = tf.io.decode_png(features["image"], channels=3)

    def prepare(image_id, image, original_size, fixations, density):
        height, width = (int(value) for value in original_size)
        fixation_array = np.frombuffer(fixations, dtype=np.float64).reshape(-1, 2)
        density_array = (
            np.frombuffer(density, dtype=np.float32).reshape(height, width) if density else None
        )
        return targets.make_example(
            image, fixation_array, density_array, image_size, resize, image_id.decode("utf-8")
        )

    model_image, target = tf.numpy_function(
        prepare,
        [
            features["image_id"],
            image,
            features["original_size"],
            features["fixations"],
            features["density"],
        ],
        [tf.float32, tf.float32],
    )
    return _with_shapes(model_image, target, image_size)


def _with_shapes(image, target, image_size):
    image = tf.ensure_shape(image, (*image_size, 3))
    target = tf.ensure_shape(target, (*image_size, 2))
    return image, target


def _flip_randomly(examples: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    coins = tf.data.Dataset.random(seed=seed)

    def flip(example, coin):
        image, target = example
        should_flip = tf.equal(coin % 2, 1)
        return tf.cond(
            should_flip,
            lambda: (tf.reverse(image, axis=[1]), tf.reverse(target, axis=[1])),
            lambda: (image, target),
        )

    return tf.data.Dataset.zip((examples, coins)).map(flip, num_parallel_calls=tf.data.AUTOTUNE)
