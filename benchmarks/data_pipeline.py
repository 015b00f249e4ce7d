"""Throughput of the data readers, the tf.data pipeline and TFRecord shards on NUS.

Run ``python benchmarks/data_pipeline.py [--image-size H W] [--batch-size B]``; it
prints a markdown table of images per second for each way of feeding a model from the
real NUS scene data set (400 images, 172x288 to 2736x3648) in the shared folder.
"""

import argparse
import contextlib
import io
import logging
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfsal import data, paths  # noqa: E402
from tfsal.data import tfrecords  # noqa: E402


def _timed(function):
    start = time.perf_counter()
    count = function()
    return count, time.perf_counter() - start


def _drain(pipeline) -> int:
    return sum(int(images.shape[0]) for images, _ in pipeline)


def _write(dataset, folder, image_size):
    with contextlib.redirect_stderr(io.StringIO()):  # keep the progress bar out of the table
        tfrecords.write_shards(dataset, folder, num_shards=8, image_size=image_size)
    return len(dataset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, nargs=2, default=(240, 320))
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    size, batch = tuple(args.image_size), args.batch_size
    dataset = data.open_dataset(f"nus:{paths.nus_scene_dir()}")
    rows = []

    def record(stage, result):
        count, seconds = result
        rows.append((stage, count, seconds, count / seconds))

    record("reader: `load` every record (decode only)", _timed(lambda: sum(1 for _ in dataset)))
    record(
        f"`make_pipeline` over the reader, {size[0]}x{size[1]} pad",
        _timed(lambda: _drain(data.make_pipeline(dataset, image_size=size, batch_size=batch))),
    )
    with tempfile.TemporaryDirectory() as folder:
        original, prepared = f"{folder}/original", f"{folder}/prepared"
        record(
            "write 8 shards, original images (PNG)", _timed(lambda: _write(dataset, original, None))
        )
        record(
            f"`make_pipeline` over original shards, {size[0]}x{size[1]}",
            _timed(
                lambda: _drain(
                    data.make_pipeline(
                        tfrecords.shard_pattern(original), image_size=size, batch_size=batch
                    )
                )
            ),
        )
        record(
            f"write 8 shards prepared at {size[0]}x{size[1]}",
            _timed(lambda: _write(dataset, prepared, size)),
        )
        record(
            f"`make_pipeline` over prepared shards, {size[0]}x{size[1]}",
            _timed(
                lambda: _drain(
                    data.make_pipeline(
                        tfrecords.shard_pattern(prepared), image_size=size, batch_size=batch
                    )
                )
            ),
        )
    print(f"NUS scene, {len(dataset)} images, batch {batch}, {os.cpu_count()} CPU cores\n")
    print("| stage | images | seconds | images/s |")
    print("|---|---:|---:|---:|")
    for stage, count, seconds, rate in rows:
        print(f"| {stage} | {count} | {seconds:.1f} | {rate:.0f} |")


if __name__ == "__main__":
    main()
