"""Why is this region salient? ``python -m serving.explain``.

::

    python -m serving.explain --model RUN_DIR|SAVEDMODEL --image a.jpg
        --method gradcam ig smoothgrad occlusion gradients gradients_inputs loggabor
        [--region x,y,w,h] [--out DIR] [--layer NAME]

Every method explains the same number: the model's predicted saliency mass inside a
region (``serving.region_score``), by default the most salient quarter-size box
(``serving.region.most_salient_region``), or the ``--region`` box in image pixels.
For each method it writes ``OUT/<stem>_<method>.npy`` (the raw map at the image's
size, float32) and ``OUT/<stem>_<method>.png`` (the map over the image, the region
outlined), and ``OUT/<stem>_region.json`` (the region and its mass per model).

The tf-explain methods (``serving.attribution``) explain the deep model; ``loggabor``
weighs the explainable model's own contribution maps by the region's mass gradient
(Integrated Gradients over its logits, ``serving.contributions``) and also writes the
region's mass broken down by feature group as ``OUT/<stem>_loggabor_groups.{json,png}``
(the groups' shares sum to the region's mass minus the prior's alone). A run folder
holds both models; a SavedModel folder is used for every method asked (``loggabor``
needs it to be an explainable model). Grad-CAM needs the model's layers, which a SavedModel hides:
explain a Keras model in Python (``explain_image``) for it.
"""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from serving import attribution, contributions
from serving.loaded_model import LoadedModel, find_exports, load_model
from serving.region import Region, most_salient_region, parse_box
from serving.region_score import SCORE_INDEX, score_model
from tfsal import conventions
from tfsal.data.images import ImageDecodeError, read_image
from tfsal.data.targets import ResizeGeometry, model_input
from tfsal.io_utils import atomic_path, atomic_write_text

LOGGABOR = "loggabor"
METHODS = (*attribution.METHODS, LOGGABOR)


@dataclasses.dataclass
class Explanation:
    """Attribution maps of one image's region, on the model's canvas.

    Attributes:
        canvas: the (h, w, 3) model input.
        geometry: where the image lies on the canvas.
        region: the explained region on the canvas.
        image_box: the region as ``(x, y, w, h)`` image pixels (the user's box as given,
            or the canvas region mapped back, rounded outwards).
        mass: the predicted saliency mass in it.
        saliency: the (h, w) predicted density (or map) on the canvas.
        maps: method -> (h, w) attribution map on the canvas.
        breakdown: the region's mass by feature group (``loggabor`` only).
    """

    canvas: np.ndarray
    geometry: ResizeGeometry
    region: Region
    image_box: tuple[int, int, int, int]
    mass: float
    saliency: np.ndarray
    maps: dict[str, np.ndarray]
    breakdown: dict | None = None


def predicted_canvas(loaded: LoadedModel, canvas: np.ndarray) -> dict[str, np.ndarray]:
    """The model's outputs for one canvas, batch axis removed; saliency as a density/map."""
    outputs = loaded.model(canvas[None].astype(np.float32))
    outputs = {key: np.asarray(value)[0] for key, value in outputs.items()}
    saliency = outputs[conventions.SALIENCY][..., 0].astype(np.float64)
    if loaded.output_kind == conventions.LOG_DENSITY:
        saliency = np.exp(saliency - saliency.max())
        saliency /= saliency.sum()
    outputs[conventions.SALIENCY] = saliency
    return outputs


def explain_image(
    loaded: LoadedModel,
    image: np.ndarray,
    methods: list[str],
    box: tuple[int, int, int, int] | None = None,
    options: attribution.AttributionOptions | None = None,
    region: Region | None = None,
    scorer: tuple | None = None,
) -> Explanation:
    """Explains the saliency mass of one region of ``image`` with each method.

    Args:
        loaded: the model (explainable for ``loggabor``).
        image: (H, W, 3) RGB image.
        methods: names from ``METHODS``.
        box: the region as ``(x, y, w, h)`` image pixels (default: the most salient).
        options: attribution settings.
        region: the region on the canvas directly (overrides ``box``).
        scorer: ``score_model(loaded.model, loaded.output_kind)``, built once by callers
            explaining many images, so tf-explain's traced functions are reused.
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"Unknown method(s) {unknown}; choose from {list(METHODS)}.")
    if LOGGABOR in methods and not loaded.explainable:
        raise ValueError(
            f"{loaded.name} has no {conventions.CONTRIBUTIONS!r} output: loggabor needs an "
            "explainable model (export/<model>_explainable of a training.fit run)."
        )
    options = options or attribution.AttributionOptions()
    canvas, geometry = model_input(image, loaded.input_size, loaded.resize)
    outputs = predicted_canvas(loaded, canvas)
    region_given = region
    if region is None:
        region = (
            Region.from_image_box(box, geometry)
            if box is not None
            else most_salient_region(outputs[conventions.SALIENCY], geometry)
        )
    mask = region.mask(canvas.shape[:2])
    score, region_score = scorer or score_model(loaded.model, loaded.output_kind)
    region_score.set_region(mask)
    mass = float(np.asarray(score(canvas[None]))[0, SCORE_INDEX])
    maps, breakdown = {}, None
    for method in methods:
        if method == LOGGABOR:
            maps[method], breakdown = _loggabor(loaded, outputs, mask)
        else:
            maps[method] = attribution.attribute(score, canvas, method, options)
    if box is not None and region_given is None:
        image_box = tuple(int(value) for value in box)
    else:
        image_box = region.to_image_box(geometry)
    return Explanation(
        canvas, geometry, region, image_box, mass, outputs[conventions.SALIENCY], maps, breakdown
    )


def _loggabor(loaded, outputs, mask):
    maps = outputs[conventions.CONTRIBUTIONS]
    names = contributions.group_names(maps.shape[-1], loaded.metadata, loaded.model)
    attributed = contributions.region_attribution(maps, mask, names, loaded.output_kind)
    return attributed.pixel_map, contributions.region_breakdown(attributed)


def to_image(canvas_map: np.ndarray, geometry: ResizeGeometry, shape) -> np.ndarray:
    """Crops a canvas map to the image's window and resizes it to ``shape``."""
    window = np.asarray(canvas_map, np.float32)[geometry.content_window]
    return cv2.resize(window, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def write_explanation(explanation: Explanation, image: np.ndarray, stem: str, out: Path, name: str):
    """Writes every map (``.npy`` + overlay PNG) and the region JSON; returns the paths."""
    from tfsal import visualize

    written = []
    x, y, w, h = explanation.image_box
    for method, canvas_map in explanation.maps.items():
        raw = to_image(canvas_map, explanation.geometry, image.shape[:2])
        npy_path = out / f"{stem}_{method}.npy"
        with atomic_path(npy_path) as temporary, open(temporary, "wb") as handle:
            np.save(handle, raw, allow_pickle=False)
        picture = visualize.overlay(image, raw)
        cv2.rectangle(picture, (x, y), (x + w - 1, y + h - 1), (255, 255, 255), 2)
        written += [npy_path, visualize.write_png(out / f"{stem}_{method}.png", picture)]
    if explanation.breakdown is not None:
        json_path = out / f"{stem}_{LOGGABOR}_groups.json"
        png_path = out / f"{stem}_{LOGGABOR}_groups.png"
        contributions.write_breakdown(
            {"model": name, "region": {"x": x, "y": y, "w": w, "h": h}, **explanation.breakdown},
            json_path,
            png_path,
            f"{stem}: region {x},{y},{w},{h} ({name})",
        )
        written += [json_path, png_path]
    return written


def build_parser() -> argparse.ArgumentParser:
    """The command line's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.explain",
        description="Explains the predicted saliency of one image region with several methods.",
    )
    parser.add_argument("--model", required=True, help="SavedModel folder or training.fit run")
    parser.add_argument("--image", required=True, type=Path)
    parser.add_argument("--method", required=True, nargs="+", choices=METHODS)
    parser.add_argument("--region", help="x,y,w,h in image pixels (default: most salient box)")
    parser.add_argument("--out", type=Path, default=Path("explanations"))
    parser.add_argument("--layer", help="Grad-CAM's layer (default: the last 4-D layer)")
    return parser


def methods_by_model(spec: str, methods: list[str]) -> dict[str, tuple[Path, list[str]]]:
    """Which export explains which methods, by display name.

    A run folder holds a deep model and its explainable model: ``loggabor`` goes to the
    explainable one, every other method to the deep one. A single SavedModel explains
    every method asked.

    Raises:
        ValueError: if a run folder lacks the explainable model ``loggabor`` needs.
    """
    exports = find_exports(spec)
    if len(exports) == 1:
        ((name, path),) = exports.items()
        return {name: (path, list(methods))}
    explainable = [key for key in exports if key.endswith("_explainable")]
    deep = [key for key in exports if key not in explainable] or list(exports)
    chosen = {}
    for method in methods:
        if method == LOGGABOR and not explainable:
            raise ValueError(
                f"{spec} holds no explainable model (export/<model>_explainable); derive it "
                "first (python -m training.derive RUN_DIR) or drop --method loggabor."
            )
        name = explainable[0] if method == LOGGABOR else deep[0]
        chosen.setdefault(name, (exports[name], []))[1].append(method)
    return chosen


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        image = read_image(args.image)
        box = parse_box(args.region) if args.region else None
        options = attribution.AttributionOptions(gradcam_layer=args.layer)
        report = {}
        for name, (path, methods) in methods_by_model(args.model, args.method).items():
            loaded = load_model(path, name)
            explanation = explain_image(loaded, image, methods, box, options)
            written = write_explanation(explanation, image, args.image.stem, args.out, name)
            x, y, w, h = explanation.image_box
            report[name] = {"region": {"x": x, "y": y, "w": w, "h": h}, "mass": explanation.mass}
            for path_written in written:
                print(f"wrote {path_written}")
        atomic_write_text(args.out / f"{args.image.stem}_region.json", json.dumps(report, indent=2))
    except (ValueError, ImageDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
