r"""Writes a saliency data set as sharded TFRecord files.

```
python -m training.prepare --data nus:../shared/datasets/nus-scene --out shards/nus
python -m training.prepare --data salicon:/data/salicon --out shards/salicon \\
    --shards 64 --image-size 240 320
```

Shards are written atomically, with a progress bar; rerunning the same command after
an interruption skips the shards already complete. Without ``--image-size`` the
shards keep the original images and any pipeline size can read them; with it they
hold model-ready inputs and targets, smaller and faster to read, for that size only.
Read them back with
``tfsal.data.make_pipeline("shards/nus/shard-*.tfrecord", image_size=...)``, which
gives the same tensors as the pipeline over the reader itself.
"""

import argparse
import logging
import sys
from pathlib import Path

from tfsal import data
from tfsal.data import splits as splits_lib
from tfsal.data import tfrecords


def build_parser() -> argparse.ArgumentParser:
    """Returns the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m training.prepare",
        description="Write a saliency data set as sharded TFRecords (resumable).",
    )
    parser.add_argument(
        "--data",
        required=True,
        help=f"data set as FORMAT:PATH; formats: {', '.join(data.list_formats())}",
    )
    parser.add_argument("--out", required=True, help="output folder for the shards")
    parser.add_argument("--shards", type=int, default=8, help="number of shard files (default 8)")
    parser.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="prepare model-ready examples at this size (default: keep original images)",
    )
    parser.add_argument(
        "--resize",
        choices=("pad", "stretch"),
        default="pad",
        help="how --image-size is reached (default pad: keep the aspect ratio)",
    )
    parser.add_argument(
        "--split",
        help="write only one subset of a seeded split, as NAME=SIZE,...:NAME, e.g. "
        "train=320,val=80:train",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --split (default 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the process exit status."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        dataset = data.open_dataset(args.data)
        image_ids = dataset.ids()
        if args.split:
            image_ids = _select_split(image_ids, args.split, args.seed)
        paths = tfrecords.write_shards(
            dataset,
            args.out,
            num_shards=args.shards,
            image_ids=image_ids,
            image_size=tuple(args.image_size) if args.image_size else None,
            resize=args.resize,
            source=_describe(args.data),
        )
    except (ValueError, FileNotFoundError, KeyError) as error:
        print(f"training.prepare: error: {error}", file=sys.stderr)
        return 2
    print(
        f"Wrote {len(image_ids)} images in {len(paths)} shards: {tfrecords.shard_pattern(args.out)}"
    )
    return 0


def _describe(spec: str) -> str:
    """Returns ``spec`` with its path made absolute, so reruns compare plans reliably."""
    format_name, separator, location = spec.partition(":")
    if not separator or not location:
        return spec
    return f"{format_name}:{Path(location).expanduser().resolve()}"


def _select_split(image_ids: list[str], split: str, seed: int) -> list[str]:
    sizes_text, separator, chosen = split.rpartition(":")
    if not separator or not sizes_text or not chosen:
        raise ValueError(f"--split must look like train=320,val=80:train. Received: {split!r}")
    sizes = {}
    for item in sizes_text.split(","):
        name, equals, value = item.partition("=")
        if not equals:
            raise ValueError(f"--split entries must be NAME=SIZE. Received: {item!r}")
        sizes[name] = float(value) if "." in value else int(value)
    if chosen not in sizes:
        raise ValueError(f"--split chooses {chosen!r}, which is not among {sorted(sizes)}.")
    return splits_lib.split_ids(image_ids, sizes, seed)[chosen]


if __name__ == "__main__":
    sys.exit(main())
