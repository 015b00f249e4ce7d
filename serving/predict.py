"""Saliency maps for a folder of images: ``python -m serving.predict``.

::

    python -m serving.predict --model RUN_DIR|SAVEDMODEL --images DIR_OR_FILES... --out DIR
        [--format png8|png16|npy] [--overlay] [--overwrite] [--batch-size N] [--workers N]

Every image (JPEG, PNG, BMP, TIFF, WebP; grey, RGBA and 16-bit read as
``tfsal.data.images`` documents) gets a map at its own resolution, ``OUT/<stem>.png``
(or ``.npy``), and with ``--overlay`` a heat map over the image,
``OUT/<stem>_overlay.png``. Images are fitted to the model's input as in training
(``tfsal.data.targets.model_input``), so every canvas has the model's size and a
batch is a plain stack; the map is cropped back to the image's window and resized to
its size.

What the files hold:
- ``png8``/``png16``: the map min-max scaled to 0..255 / 0..65535 (the saliency
  benchmarks' convention: only the order of pixels matters to their metrics);
- ``npy``: float32, the density (sums to 1 over the image) for log-density models,
  the model's map as it is for map models.

Existing outputs are never replaced unless ``--overwrite`` is given (so an
interrupted run can be repeated to finish); unreadable images are skipped with one
line each and counted. Files are written atomically.
"""

import argparse
import concurrent.futures
import dataclasses
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from serving.loaded_model import LoadedModel, find_exports, load_model
from tfsal import conventions
from tfsal.data.images import ImageDecodeError, list_images, read_image
from tfsal.data.targets import ResizeGeometry, model_input
from tfsal.io_utils import atomic_path

FORMATS = {"png8": ".png", "png16": ".png", "npy": ".npy"}
OVERLAY_SUFFIX = "_overlay.png"


@dataclasses.dataclass
class PredictionSummary:
    """What a prediction run did.

    Attributes:
        written: images whose maps were written.
        existing: images skipped because their outputs existed (no ``--overwrite``).
        failed: unreadable images and why.
    """

    written: list[Path] = dataclasses.field(default_factory=list)
    existing: list[Path] = dataclasses.field(default_factory=list)
    failed: dict[Path, str] = dataclasses.field(default_factory=dict)


def collect_images(inputs: Iterable[str | Path]) -> list[Path]:
    """The image files named by folders (their images, sorted) and files.

    Raises:
        ValueError: if an input does not exist, a folder holds no image, or two images
            would write the same output name.
    """
    images = []
    for entry in map(Path, inputs):
        if entry.is_dir():
            found = list_images(entry)
            if not found:
                raise ValueError(f"Folder {entry} holds no image files.")
            images.extend(found)
        elif entry.is_file():
            images.append(entry)
        else:
            raise ValueError(f"--images: {entry} is neither a file nor a folder.")
    by_stem = {}
    for image in images:
        by_stem.setdefault(image.stem, []).append(image)
    clashes = [paths for paths in by_stem.values() if len(paths) > 1]
    if clashes:
        names = "; ".join(", ".join(map(str, paths)) for paths in clashes[:3])
        raise ValueError(
            f"Images with the same name would write the same map ({names}); predict "
            "them into separate --out folders."
        )
    return images


def saliency_at_image_size(
    canvas_saliency: np.ndarray,
    geometry: ResizeGeometry,
    image_shape: tuple[int, int],
    output_kind: str,
) -> np.ndarray:
    """Turns one (h, w) canvas prediction into the map of the original image.

    Returns:
        (height, width) float32: a density summing to 1 for ``"log_density"``, the
        model's map for ``"map"``.
    """
    # float32 throughout: at 1600x1200 the float64 resize and scaling cost about as
    # much as the model's forward pass; the density's sum is accumulated in float64.
    window = np.asarray(canvas_saliency, np.float32)[geometry.content_window]
    if output_kind == conventions.LOG_DENSITY:
        window = np.exp(window - window.max())
    resized = cv2.resize(window, (image_shape[1], image_shape[0]), interpolation=cv2.INTER_LINEAR)
    if output_kind == conventions.LOG_DENSITY:
        resized *= np.float32(1.0 / resized.sum(dtype=np.float64))
    return resized


def encode_map(saliency: np.ndarray, output_format: str) -> bytes:
    """Encodes a map as PNG (min-max scaled to 8 or 16 bits) or as ``.npy`` bytes."""
    if output_format == "npy":
        import io

        buffer = io.BytesIO()
        np.save(buffer, saliency.astype(np.float32), allow_pickle=False)
        return buffer.getvalue()
    depth = cv2.CV_16U if output_format == "png16" else cv2.CV_8U
    if float(saliency.max()) > float(saliency.min()):
        # One pass: scale, round and saturate to the integer type.
        levels = cv2.normalize(
            saliency, None, 0, 65535 if depth == cv2.CV_16U else 255, cv2.NORM_MINMAX, depth
        )
    else:
        levels = np.zeros(saliency.shape, np.uint16 if depth == cv2.CV_16U else np.uint8)
    ok, encoded = cv2.imencode(".png", levels)
    if not ok:
        raise ValueError("OpenCV could not encode the map as PNG.")
    return encoded.tobytes()


def output_paths(image: Path, out: Path, output_format: str, overlay: bool) -> list[Path]:
    """The files prediction writes for ``image``: the map, then the overlay if asked."""
    paths = [out / (image.stem + FORMATS[output_format])]
    if overlay:
        paths.append(out / (image.stem + OVERLAY_SUFFIX))
    return paths


def _read(path: Path, loaded: LoadedModel):
    try:
        image = read_image(path)
    except ImageDecodeError as error:
        return path, None, str(error)
    canvas, geometry = model_input(image, loaded.input_size, loaded.resize)
    return path, (image, canvas, geometry), None


def _batches(paths, loaded, batch_size, pool) -> Iterator[list]:
    # Decoding runs in the pool's threads (OpenCV releases the GIL) while the model
    # runs; the window of pending reads is bounded so memory does not grow with the
    # folder.
    pending, batch = [], []
    for path in paths:
        pending.append(pool.submit(_read, path, loaded))
        if len(pending) >= 2 * batch_size:
            batch.append(pending.pop(0).result())
            if len(batch) == batch_size:
                yield batch
                batch = []
    for future in pending:
        batch.append(future.result())
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict_images(
    loaded: LoadedModel,
    images: list[Path],
    out: Path,
    output_format: str = "png8",
    overlay: bool = False,
    overwrite: bool = False,
    batch_size: int = 8,
    progress: bool = True,
    workers: int = 2,
) -> PredictionSummary:
    """Predicts and writes the map of every image.

    Args:
        loaded: the model.
        images: image files.
        out: output folder (created).
        output_format: ``"png8"``, ``"png16"`` or ``"npy"``.
        overlay: also write a heat-map overlay PNG per image.
        overwrite: replace existing outputs (otherwise those images are skipped).
        batch_size: images per model call.
        progress: show a progress bar.
        workers: threads that read and write images beside the model.

    Returns:
        What was written, skipped and why images failed.
    """
    from tqdm import tqdm

    if output_format not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}. Received: {output_format!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1. Received: workers={workers}")
    summary = PredictionSummary()
    todo = []
    for image in images:
        exists = any(path.exists() for path in output_paths(image, out, output_format, overlay))
        (summary.existing if exists and not overwrite else todo).append(image)
    bar = tqdm(total=len(todo), unit="image", disable=not progress, file=sys.stderr)
    # Reading and writing (resizing to the image, PNG encoding: on 1600x1200 NUS images
    # together as costly as the model) run in threads, overlapping the model's calls.
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        writes = []
        for batch in _batches(todo, loaded, batch_size, pool):
            readable = [(path, item) for path, item, _ in batch if item is not None]
            for path, _, error in batch:
                if error is not None:
                    summary.failed[path] = error
                    tqdm.write(f"skipped {path}: {error}", file=sys.stderr)
            if readable:
                canvases = np.stack([item[1] for _, item in readable])
                saliency = np.asarray(loaded.model(canvases)[conventions.SALIENCY])[..., 0]
                for (path, (image, _, geometry)), canvas_map in zip(
                    readable, saliency, strict=True
                ):
                    writes.append(
                        pool.submit(
                            _write_outputs,
                            path,
                            image,
                            canvas_map,
                            geometry,
                            loaded,
                            out,
                            output_format,
                            overlay,
                        )
                    )
            # Bounded: at most two batches' maps wait to be written.
            while len(writes) > 2 * batch_size:
                summary.written.append(writes.pop(0).result())
            bar.update(len(batch))
        for write in writes:
            summary.written.append(write.result())
    bar.close()
    return summary


def _write_outputs(path, image, canvas_map, geometry, loaded, out, output_format, overlay):
    from tfsal import visualize

    saliency = saliency_at_image_size(canvas_map, geometry, image.shape[:2], loaded.output_kind)
    map_path, *overlay_path = output_paths(path, out, output_format, overlay)
    with atomic_path(map_path) as temporary:
        temporary.write_bytes(encode_map(saliency, output_format))
    if overlay_path:
        visualize.write_png(overlay_path[0], visualize.overlay(image, saliency))
    return path


def build_parser() -> argparse.ArgumentParser:
    """The command line's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.predict",
        description="Predicts a saliency map for every image, at the image's own size.",
    )
    parser.add_argument("--model", required=True, help="SavedModel folder or training.fit run")
    parser.add_argument("--images", required=True, nargs="+", help="image folders and files")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--format", default="png8", choices=sorted(FORMATS))
    parser.add_argument("--overlay", action="store_true", help="also write overlay PNGs")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--workers", type=int, default=2, help="threads reading and writing images (default 2)"
    )
    parser.add_argument(
        "--name", help="which model of a run folder (default: the deep, not explainable, one)"
    )
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"))
    parser.add_argument("--output-kind", choices=conventions.OUTPUT_KINDS)
    parser.add_argument("--resize", choices=("pad", "stretch"))
    return parser


def choose_export(spec: str, name: str | None) -> tuple[str, Path]:
    """The one SavedModel a ``--model``/``--name`` pair names.

    A run folder holds the deep model and its explainable model; without ``--name``
    the deep one is used.

    Raises:
        ValueError: for an unknown ``--name``.
    """
    exports = find_exports(spec)
    if name is not None:
        if name not in exports:
            raise ValueError(f"--name {name!r} is not in {spec}; it holds {sorted(exports)}.")
        return name, exports[name]
    deep = [key for key in exports if not key.endswith("_explainable")] or list(exports)
    return deep[0], exports[deep[0]]


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        images = collect_images(args.images)
        name, path = choose_export(args.model, args.name)
        loaded = load_model(path, name, args.input_size, args.output_kind, args.resize)
        summary = predict_images(
            loaded,
            images,
            args.out,
            args.format,
            args.overlay,
            args.overwrite,
            args.batch_size,
            workers=args.workers,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(summary.written)} map(s) written to {args.out} with {name}.")
    if summary.existing:
        print(
            f"{len(summary.existing)} image(s) skipped: their outputs exist in {args.out} "
            "(pass --overwrite to replace them)."
        )
    if summary.failed:
        print(f"{len(summary.failed)} image(s) could not be read (listed above).")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
