"""Sharded TFRecord files of saliency records, written atomically and resumably.

Each ``tf.train.Example`` holds one image:

- ``image_id`` (bytes), ``image`` (lossless PNG, RGB), ``original_size`` ([H, W]);
- ``fixations`` (float64 bytes, (N, 2) 0-based original row, col) and ``observers``
  (int32 bytes, empty when unknown);
- ``density`` (float32 bytes of the data set's (H, W) map; empty when it is made from
  the fixations);
- ``prepared_size`` ([h, w], [0, 0] when not prepared), ``resize`` and ``target``
  (float32 bytes of the (h, w, 2) target) for shards prepared at a model size: then
  ``image`` is already the model input and reading needs no resizing.

A folder of shards holds ``shard-IIIII-of-NNNNN.tfrecord`` files and the plan
``tfsal_shards.json`` (data set, image identifiers per shard, size, and the byte
count and SHA-256 of every finished shard). A rerun keeps the shards that match the
plan, rewrites missing, truncated or corrupted ones and removes temporary files a
kill left behind; ``check_shards`` verifies shards against their plan before a
pipeline reads them, so damage is reported with the shard's name instead of as a
``DataLossError`` in the middle of an epoch. It reads a shard once per process: a
run builds its pipelines several times (each training phase, validation, scoring),
and a shard whose file is unchanged since it was verified is not hashed again.
"""

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from tfsal.data import images, targets
from tfsal.data.readers import SaliencyDataset
from tfsal.data.record import SaliencyRecord
from tfsal.io_utils import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

PLAN_FILE = "tfsal_shards.json"
SHARD_SUFFIX = ".tfrecord"
# The plan's record of finished shards: file name -> {"bytes": N, "sha256": HEX}.
FINISHED_KEY = "finished"

# What to do about a shard that fails its check.
_REMEDY = (
    "re-run the `python -m training.prepare` command that wrote these shards: it "
    "rewrites damaged shards and keeps the others."
)
# Shards this process has verified: absolute path -> what the check saw (see _stamp).
_verified: dict[Path, tuple] = {}

FEATURES = {
    "image_id": tf.io.FixedLenFeature([], tf.string),
    "image": tf.io.FixedLenFeature([], tf.string),
    "original_size": tf.io.FixedLenFeature([2], tf.int64),
    "fixations": tf.io.FixedLenFeature([], tf.string),
    "observers": tf.io.FixedLenFeature([], tf.string),
    "density": tf.io.FixedLenFeature([], tf.string),
    "prepared_size": tf.io.FixedLenFeature([2], tf.int64),
    "resize": tf.io.FixedLenFeature([], tf.string),
    "target": tf.io.FixedLenFeature([], tf.string),
}


def shard_pattern(folder: str | Path) -> str:
    """Returns the glob pattern matching the shards in ``folder``."""
    return str(Path(folder) / f"shard-*{SHARD_SUFFIX}")


def serialize_record(
    record: SaliencyRecord, image_size: tuple[int, int] | None = None, resize: str = "pad"
) -> bytes:
    """Serialises a record as a ``tf.train.Example``.

    Args:
        record: the record.
        image_size: the model (height, width) to prepare the example at, or None to
            keep the original image (resized when read).
        resize: "pad" or "stretch", used with ``image_size``.

    Returns:
        The serialised example.
    """
    image, density_bytes, target_bytes = record.image, b"", b""
    prepared_size = (0, 0)
    if record.density is not None:
        density_bytes = record.density.astype(np.float32).tobytes()
    if image_size is not None:
        model_image, target = targets.make_example(
            record.image, record.fixations, record.density, image_size, resize, record.image_id
        )
        image = model_image.astype(np.uint8)
        target_bytes = target.astype(np.float32).tobytes()
        prepared_size = tuple(int(value) for value in image_size)
        density_bytes = b""  # the prepared target replaces the full-resolution map
    observers = b"" if record.observers is None else record.observers.astype(np.int32).tobytes()
    feature = {
        "image_id": _bytes_feature(record.image_id.encode("utf-8")),
        "image": _bytes_feature(images.encode_png(image)),
        "original_size": _int64_feature(record.shape),
        "fixations": _bytes_feature(record.fixations.astype(np.float64).tobytes()),
        "observers": _bytes_feature(observers),
        "density": _bytes_feature(density_bytes),
        "prepared_size": _int64_feature(prepared_size),
        "resize": _bytes_feature(resize.encode("utf-8") if image_size is not None else b""),
        "target": _bytes_feature(target_bytes),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one serialised example into its feature tensors (``FEATURES``)."""
    return tf.io.parse_single_example(serialized, FEATURES)


def read_layout(files: list[str]) -> tuple[tuple[int, int] | None, str]:
    """Returns the prepared size (None if not prepared) and resize mode of shards.

    Reads the first example of the first shard.

    Args:
        files: the shard files.
    """
    for serialized in tf.data.TFRecordDataset(files[:1]).take(1):
        features = parse_example(serialized)
        size = tuple(int(value) for value in features["prepared_size"].numpy())
        resize = features["resize"].numpy().decode("utf-8")
        return (None if size == (0, 0) else size), resize
    raise ValueError(f"{files[0]} holds no example; rerun training.prepare.")


def read_planned_ids(files: list[str]) -> set[str] | None:
    """Returns the image identifiers the plans beside ``files`` list, or None.

    Args:
        files: shard files; their folders are searched for ``PLAN_FILE``.
    """
    plans = {Path(name).parent / PLAN_FILE for name in files}
    if not all(plan.is_file() for plan in plans):
        return None
    written = set()
    for plan in plans:
        blocks = _read_plan(plan)["ids_per_shard"]
        written.update(image_id for block in blocks for image_id in block)
    return written


def write_shards(
    dataset: SaliencyDataset,
    out_dir: str | Path,
    num_shards: int,
    image_ids: list[str] | None = None,
    image_size: tuple[int, int] | None = None,
    resize: str = "pad",
    source: str | None = None,
) -> list[Path]:
    """Writes a data set as sharded TFRecords; shards already complete are kept.

    Images are split into ``num_shards`` contiguous blocks in ``image_ids`` order.
    Every shard is written under a temporary name and renamed when complete, and its
    byte count and SHA-256 go into the plan, so a rerun with the same arguments
    keeps the shards that still match and rewrites missing or damaged ones.

    Args:
        dataset: the data set to read.
        out_dir: the output folder.
        num_shards: number of shard files (at most the number of images).
        image_ids: the images to write; default all.
        image_size: prepare examples at this model (height, width), or None to
            store original images.
        resize: "pad" or "stretch", used with ``image_size``.
        source: describes the data set in the plan; default its format name.

    Returns:
        The shard paths, in order.

    Raises:
        ValueError: for bad arguments, or an ``out_dir`` holding shards of another plan.
    """
    image_ids = list(dataset.ids() if image_ids is None else image_ids)
    if not image_ids:
        raise ValueError("image_ids is empty: there is nothing to write.")
    if not 1 <= int(num_shards) <= len(image_ids):
        raise ValueError(
            f"num_shards must be between 1 and the number of images ({len(image_ids)}). "
            f"Received: num_shards={num_shards}"
        )
    if image_size is not None:
        image_size = targets.check_resize_arguments(image_size, resize)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    blocks = [
        list(block) for block in np.array_split(np.asarray(image_ids, dtype=object), num_shards)
    ]
    plan = {
        "source": source or dataset.name,
        "num_shards": int(num_shards),
        "image_size": None if image_size is None else list(image_size),
        "resize": resize if image_size is not None else None,
        "ids_per_shard": blocks,
    }
    plan_path = out_dir / PLAN_FILE
    plan[FINISHED_KEY] = _check_or_write_plan(plan_path, plan)
    _remove_leftovers(out_dir)
    paths = [
        out_dir / f"shard-{index:05d}-of-{num_shards:05d}{SHARD_SUFFIX}"
        for index in range(num_shards)
    ]
    complete = [_is_complete(path, plan[FINISHED_KEY].get(path.name)) for path in paths]
    done = sum(len(block) for block, ok in zip(blocks, complete, strict=True) if ok)
    if done:
        logger.info("Resuming: %d of %d images are in complete shards.", done, len(image_ids))
    with tqdm(total=len(image_ids), initial=done, desc="Writing shards", unit="image") as bar:
        for block, path, ok in zip(blocks, paths, complete, strict=True):
            if ok:
                continue
            if path.exists():
                logger.warning(
                    "%s does not match its plan (truncated or corrupted): rewriting.", path
                )
            with atomic_path(path) as temporary, tf.io.TFRecordWriter(str(temporary)) as writer:
                for image_id in block:
                    writer.write(serialize_record(dataset.load(image_id), image_size, resize))
                    bar.update(1)
            plan[FINISHED_KEY][path.name] = _fingerprint(path)
            atomic_write_text(plan_path, json.dumps(plan, indent=1) + "\n")
    return paths


def check_shards(files: list[str]) -> None:
    """Checks shards against the byte counts and checksums their plans recorded.

    Shards in a folder without a plan, or with a plan of an older tfsal that did not
    record them, are read through once instead, which checks every record's CRC.
    A shard verified before in this process is skipped while its inode, size and
    modification and change times are the same and its plan records the same
    checksum: a rewrite, an atomic replacement or a truncation changes them.

    Args:
        files: shard files.

    Raises:
        ValueError: naming the first shard that is missing from its plan's finished
            shards, or whose size or checksum differs from the plan's.
    """
    plans: dict[Path, dict | None] = {}
    for name in tqdm(files, desc="Checking shards", unit="shard", disable=len(files) < 8):
        path = Path(name)
        if path.parent not in plans:
            plans[path.parent] = _finished_shards(path.parent / PLAN_FILE)
        finished = plans[path.parent]
        stamp = _stamp(path, None if finished is None else finished.get(path.name))
        if stamp is not None and _verified.get(path.resolve()) == stamp:
            continue
        if finished is None:
            _check_records_readable(path, _REMEDY)
        else:
            _check_against_plan(path, finished, _REMEDY)
        if stamp is not None:
            _verified[path.resolve()] = stamp


def _check_against_plan(path: Path, finished: dict, remedy: str) -> None:
    if path.name not in finished:
        raise ValueError(
            f"{path}: the plan {PLAN_FILE} does not list this shard as finished "
            f"(an interrupted or foreign write); {remedy}"
        )
    if not _is_complete(path, finished[path.name]):
        raise ValueError(
            f"{path}: the shard is truncated or corrupted (its size or SHA-256 differs "
            f"from what {PLAN_FILE} recorded when it was written); {remedy}"
        )


def _stamp(path: Path, recorded: dict | None) -> tuple | None:
    """What identifies the verified state of ``path``, or None if it is not a file."""
    try:
        status = path.stat()
    except OSError:
        return None
    checksum = None if recorded is None else recorded.get("sha256")
    return (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns, checksum)


def _check_records_readable(path: Path, remedy: str) -> None:
    try:
        # Counting in the dataset runtime reads every record and checks its CRC.
        tf.data.TFRecordDataset(str(path)).reduce(np.int64(0), lambda count, _: count + 1)
    except tf.errors.DataLossError as error:
        reason = error.message.strip().splitlines()[0]
        raise ValueError(
            f"{path}: the shard is truncated or corrupted ({reason}); {remedy}"
        ) from error


def _finished_shards(plan_path: Path) -> dict | None:
    if not plan_path.is_file():
        return None
    return _read_plan(plan_path).get(FINISHED_KEY)


def _read_plan(path: Path) -> dict:
    problem = (
        f"{path} is not a readable shard plan (damaged, or not written by tfsal); delete "
        "the folder and run training.prepare again."
    )
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(problem) from error
    if not isinstance(plan, dict) or not isinstance(plan.get("ids_per_shard"), list):
        raise ValueError(problem)
    return plan


def _fingerprint(path: Path) -> dict:
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return {"bytes": path.stat().st_size, "sha256": digest}


def _is_complete(path: Path, recorded: dict | None) -> bool:
    """Whether ``path`` exists with the size and checksum ``recorded`` for it."""
    if recorded is None or not path.is_file() or path.stat().st_size != recorded["bytes"]:
        return False
    return _fingerprint(path) == recorded


def _remove_leftovers(out_dir: Path) -> None:
    """Removes temporary shards and plans of a run that was killed mid-write."""
    for leftover in [
        *out_dir.glob(f".shard-*{SHARD_SUFFIX}.*.tmp"),
        *out_dir.glob(f".{PLAN_FILE}.*.tmp"),
    ]:
        logger.info("Removing %s, left by an interrupted run.", leftover)
        leftover.unlink(missing_ok=True)


def _check_or_write_plan(path: Path, plan: dict) -> dict:
    """Writes ``plan`` or checks it against the one in ``path``; returns its finished shards."""
    if path.exists():
        existing = _read_plan(path)
        finished = existing.pop(FINISHED_KEY, {})
        if existing != plan:
            raise ValueError(
                f"{path.parent} holds shards written with other arguments (see {path}). "
                "Choose a new output folder, or delete that one to start again."
            )
        return finished
    atomic_write_text(path, json.dumps({**plan, FINISHED_KEY: {}}, indent=1) + "\n")
    return {}


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64_feature(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
