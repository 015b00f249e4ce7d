r"""Real data: saliency read straight from the log-Gabor features, the reference rows.

The explainable model produces its saliency from reconstructions of the parent's
taps, and each tap's reconstruction is a linear map of the bank features at its
stride; so a log-linear readout fitted directly to the features spans what the
model's ``linear`` readout can express. Issue 13 asks the model to at least match
this direct readout::

    python benchmarks/direct_readout.py --parent /work/runs/nus-unisal \
        --out direct_readout.json --png direct_readout.png

1. reads the parent run's config and its own seeded train/validation split (the
   run folder is never written);
2. runs every training image once, letterboxed at the run's input size, through
   the 1/8, 1/16 and 1/32 ``LogGaborBank`` s (72 magnitudes each); each bank's
   features are scaled as ``LinearReconstruction`` scales them (log1p(x / training
   median), standardised on the training images), and the coarse ones are
   upsampled bilinearly to the 1/8 grid;
3. fits, per recipe (``RECIPES``: the centre prior's maps, some banks, blurred
   copies; ``--recipe`` picks some), a log-linear readout: logits = features · w
   over the 1/8 cells, a softmax over the cells the image covers, full-batch Adam
   on the KLD to the fixation density summed into the same cells;
4. scores every recipe and the centre-bias baseline on the validation images at
   original resolution (``tfsal.evaluation.evaluate_models``, the predictors of
   ``serving.predictor`` as for the explainable model: logits upsampled to the
   input size, letterbox cropped, resized to the image), prints a markdown table
   with the share of the parent's CC and NSS (its ``metrics.json``), writes it
   as JSON (``--out``) and as a bar chart (``--png``); ``--from-json`` redraws
   table and chart from an earlier ``--out``.
"""

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tqdm import tqdm  # noqa: E402

from benchmarks.charts import paired_bar_chart  # noqa: E402
from serving.predictor import predictor_from_function, resolve_model  # noqa: E402
from tfsal import evaluation  # noqa: E402
from tfsal.conventions import LOG_DENSITY  # noqa: E402
from tfsal.data.targets import make_example, resize_geometry  # noqa: E402
from tfsal.explain import CentrePrior  # noqa: E402
from tfsal.explain.tap_readout import normalised_blur  # noqa: E402
from tfsal.io_utils import atomic_write_text  # noqa: E402
from tfsal.layers import LinearReconstruction, LogGaborBank  # noqa: E402
from tfsal.visualize import write_png  # noqa: E402

GRID_STRIDE = 8  # the readout's cells: the finest bank, UNISAL's finest tap


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Which features join the centre prior's maps in one readout.

    Attributes:
        strides: the banks whose scaled features are read, each on the 1/8 grid.
        blur_pixels: Gaussian widths, in input pixels, of blurred copies of those
            features (the spatial context the ``linear`` readout's
            ``derive.context_sigmas`` adds inside the model).
    """

    strides: tuple[int, ...]
    blur_pixels: tuple[float, ...] = ()


RECIPES = {
    "centre prior alone": Recipe(()),
    "+ 1/8 bank, 1×1 (reference row)": Recipe((8,)),
    "+ 1/8, 1/16, 1/32 banks, 1×1": Recipe((8, 16, 32)),
    "+ 1/8 bank and copies blurred at 8, 16, 32 px": Recipe((8,), (8, 16, 32)),
    "+ 1/8 bank and copies blurred at 16, 32, 64 px": Recipe((8,), (16, 32, 64)),
}
COLUMNS = ("CC", "NSS", "AUC-Judd", "sAUC", "SIM", "KLD")
_MASKED_LOGIT = -1e9  # exp() underflows to 0 in float32, and gradients stay finite


def pool_to_cells(density: np.ndarray, stride: int) -> np.ndarray:
    """Sums an (..., H, W) map over stride×stride blocks; H and W must be multiples."""
    *lead, height, width = density.shape
    if height % stride or width % stride:
        raise ValueError(
            f"The map's height and width must be multiples of stride={stride}. "
            f"Received: shape={density.shape}"
        )
    blocks = density.reshape(*lead, height // stride, stride, width // stride, stride)
    return blocks.sum(axis=(-3, -1))


def covered_cells(geometry, stride: int) -> np.ndarray:
    """(h, w) bool: the stride×stride canvas cells that hold any of the image.

    Cells of the letterbox padding hold no fixation density, so the softmax leaves
    them out; a cell the image covers only in part stays in (it may hold density).
    """
    rows = np.arange(geometry.height // stride) * stride
    cols = np.arange(geometry.width // stride) * stride
    top, left = geometry.top, geometry.left
    in_rows = (rows + stride > top) & (rows < top + geometry.content_height)
    in_cols = (cols + stride > left) & (cols < left + geometry.content_width)
    return in_rows[:, None] & in_cols[None, :]


def log_linear_kld(features, density, mask, weights):
    """Mean KLD(density || softmax(features · weights)) per image, over its unmasked cells.

    Args:
        features: (N, cells, F) float32.
        density: (N, cells) fixation densities, each summing to 1 on its mask.
        mask: (N, cells) float32, 1 for the cells the softmax runs over.
        weights: (F,) readout weights.
    """
    logits = tf.linalg.matvec(features, weights) + (1.0 - mask) * _MASKED_LOGIT
    log_q = tf.nn.log_softmax(logits, axis=-1)
    entropy_terms = tf.math.xlogy(density, density)
    return tf.reduce_mean(tf.reduce_sum(entropy_terms - density * log_q, axis=-1))


def fit_log_linear(
    features: np.ndarray,
    density: np.ndarray,
    mask: np.ndarray,
    steps: int = 400,
    learning_rate: float = 0.05,
    progress: bool = False,
) -> tuple[np.ndarray, list[float]]:
    """Fits the log-linear readout by full-batch Adam from zero weights.

    A softmax ignores constants, so the readout has no bias.

    Args:
        features: (N, cells, F) features of N images.
        density: (N, cells) fixation densities.
        mask: (N, cells) bool, the cells each image covers.
        steps: Adam steps over all images at once.
        learning_rate: Adam's learning rate.
        progress: show a progress bar.

    Returns:
        The (F,) weights and the loss (KLD) before every step and after the last.
    """
    if features.ndim != 3 or density.shape != features.shape[:2] or mask.shape != density.shape:
        raise ValueError(
            "features must be (N, cells, F) with density and mask (N, cells). Received: "
            f"features {features.shape}, density {density.shape}, mask {mask.shape}"
        )
    if steps < 1:
        raise ValueError(f"steps must be >= 1. Received: steps={steps!r}")
    x = tf.constant(features, tf.float32)
    p = tf.constant(density, tf.float32)
    m = tf.constant(mask, tf.float32)
    weights = keras.Variable(np.zeros(features.shape[-1], np.float32), name="readout_weights")
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = log_linear_kld(x, p, m, weights)
        optimizer.apply_gradients([(tape.gradient(loss, weights), weights)])
        return loss

    losses = [float(step()) for _ in tqdm(range(steps), desc="fitting", disable=not progress)]
    losses.append(float(log_linear_kld(x, p, m, weights)))
    return weights.numpy(), losses


class ReadoutFeatures:
    """The readout's features of letterboxed images: centre-prior maps and scaled banks.

    Args:
        image_size: the canvas (height, width), multiples of the coarsest stride.
        strides: the bank strides to compute.
    """

    def __init__(self, image_size: tuple[int, int], strides=(8, 16, 32)):
        self.image_size = tuple(image_size)
        self.grid = (self.image_size[0] // GRID_STRIDE, self.image_size[1] // GRID_STRIDE)
        self.banks = {stride: LogGaborBank(output_stride=stride) for stride in strides}
        self.scalers = {}
        self.prior_maps = CentrePrior().maps(tf.zeros((1, *self.grid, 1))).numpy()

    def bank_features(self, images) -> dict[int, np.ndarray]:
        """Raw magnitudes of every bank, (B, H/stride, W/stride, K) each."""
        images = tf.convert_to_tensor(images, tf.float32)
        return {stride: bank(images).numpy() for stride, bank in self.banks.items()}

    def adapt(self, raw: dict[int, np.ndarray]) -> None:
        """Fits each bank's median / log1p / standardisation to training features."""
        for stride, features in raw.items():
            scaler = LinearReconstruction(units=1)
            scaler.adapt(features)
            self.scalers[stride] = scaler

    def assemble(self, raw: dict[int, np.ndarray], recipe: Recipe) -> np.ndarray:
        """(B, h, w, 3 + 72·len(strides)·(1 + len(blurs))) features on the 1/8 grid.

        The prior maps come first, then each bank's scaled features, then their
        blurred copies (a normalised blur, as the model's context copies).
        """
        batch = next(iter(raw.values())).shape[0]
        banks = []
        for stride in recipe.strides:
            scaled = self.scalers[stride].scale_features(raw[stride])
            if stride != GRID_STRIDE:  # half-pixel bilinear, as BilinearUpsampling2D
                scaled = tf.image.resize(scaled, self.grid, method="bilinear")
            banks.append(tf.cast(scaled, tf.float32))
        blurred = [normalised_blur(b, px / GRID_STRIDE) for px in recipe.blur_pixels for b in banks]
        blocks = [np.repeat(self.prior_maps, batch, axis=0)] + banks + blurred
        return np.concatenate([np.asarray(block, np.float32) for block in blocks], axis=-1)

    def predictor(self, weights: np.ndarray, recipe: Recipe, resize: str):
        """``image -> (H, W) map`` of a fitted readout, as the models' predictors."""

        def serve(batch):
            features = self.assemble(self.bank_features(batch), recipe)
            logits = np.tensordot(features, weights, axes=1)[..., None]
            return tf.image.resize(logits, self.image_size, method="bilinear").numpy()

        return predictor_from_function(serve, self.image_size, LOG_DENSITY, resize)


def cache_training_cells(dataset, image_ids, image_size, resize, reader: ReadoutFeatures):
    """Bank features, cell densities and cell masks of the training images, one pass.

    Returns:
        ``({stride: (N, h_s, w_s, K)}, density (N, h, w), mask (N, h, w) bool)``.
    """
    raw, densities, masks = {stride: [] for stride in reader.banks}, [], []
    for image_id in tqdm(image_ids, desc=f"training images ({len(image_ids)})"):
        record = dataset.load(image_id)
        canvas, target = make_example(
            record.image, record.fixations, record.density, image_size, resize, image_id
        )
        geometry = resize_geometry(record.shape, image_size, resize)
        for stride, features in reader.bank_features(canvas[None]).items():
            raw[stride].append(features[0])
        densities.append(pool_to_cells(target[..., 0], GRID_STRIDE))
        masks.append(covered_cells(geometry, GRID_STRIDE))
    return {s: np.stack(f) for s, f in raw.items()}, np.stack(densities), np.stack(masks)


def markdown_table(results: dict, parent: dict | None) -> list[str]:
    """One row per model: the metrics and, given the parent's scores, its share of them."""
    lines = [
        "| readout | features | " + " | ".join(COLUMNS) + " | % of parent CC | % of parent NSS |",
        "| --- " * (len(COLUMNS) + 4) + "|",
    ]
    share = lambda scores, m: f"{100 * scores[m] / parent[m]:.0f}%" if parent else "n/a"  # noqa: E731
    for name, row in results.items():
        cells = [f"{row['scores'][column]:.3f}" for column in COLUMNS]
        cells += [share(row["scores"], "CC"), share(row["scores"], "NSS")]
        lines.append(f"| {name} | {row.get('features', '')} | " + " | ".join(cells) + " |")
    return lines


def share_chart(results: dict, parent: dict, title: str) -> np.ndarray:
    """Bars of every readout's CC and NSS as a share of the parent's, as an RGB picture."""
    import textwrap

    names = list(results)
    shares = {
        metric: [100 * results[name]["scores"][metric] / parent[metric] for name in names]
        for metric in ("CC", "NSS")
    }
    return paired_bar_chart(
        [textwrap.fill(name, 20) for name in names],
        (("CC", shares["CC"]), ("NSS", shares["NSS"])),
        size=(2.0 + 1.6 * len(names), 3.6),
        value_format="%.0f%%",
        ylabel="% of the parent's score",
        title=title,
        reference=(85, "85% (issue 13's line)"),
        ylim=(0, 115),
        tick_fontsize=8,
        legend_options={"loc": "upper left", "ncol": 3},
    )


def measure(parent_run: Path, recipes: list[str], steps: int, learning_rate: float) -> dict:
    """Fits every recipe on the run's training images and scores it on its validation ones."""
    from training import configs, job

    started, cpu_started = time.monotonic(), time.process_time()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"direct_readout: {parent_run}, {stamp}, load average {os.getloadavg()}")
    config = configs.read_run_config(parent_run)
    dataset, train_ids, val_ids = job.load_split(config)
    image_size = tuple(config.image_size)
    reader = ReadoutFeatures(image_size)
    raw, density, mask = cache_training_cells(dataset, train_ids, image_size, config.resize, reader)
    reader.adapt(raw)
    cells = density.shape[1] * density.shape[2]
    fits, predictors = {}, {}
    for name in recipes:
        recipe = RECIPES[name]
        features = reader.assemble(raw, recipe)
        print(f"direct_readout: {name}: {features.shape[-1]} features")
        weights, losses = fit_log_linear(
            features.reshape(len(train_ids), cells, -1),
            density.reshape(len(train_ids), cells),
            mask.reshape(len(train_ids), cells),
            steps,
            learning_rate,
            progress=True,
        )
        print(f"direct_readout: {name}: training KLD {losses[0]:.4f} -> {losses[-1]:.4f}")
        fits[name] = {"features": features.shape[-1], "train_kld": losses[-1]}
        fits[name].update(dataclasses.asdict(recipe), train_kld_by_step=losses[:: steps // 20 or 1])
        predictors[name] = reader.predictor(weights, recipe, config.resize)
    predictors.update(resolve_model("baseline:centre-bias"))
    scores = evaluation.evaluate_models(dataset, val_ids, predictors, seed=config.seed)
    results = {
        name: {**fits.get(name, {}), "scores": scores["results"][name]} for name in predictors
    }
    parent_metrics = parent_run / "metrics.json"
    parent = None
    if parent_metrics.is_file():
        parent = json.loads(parent_metrics.read_text(encoding="utf-8"))["results"].get(config.model)
    return {
        "parent_run": str(parent_run),
        "model": config.model,
        "parent_scores": parent,
        "image_size": list(image_size),
        "train_images": len(train_ids),
        "val_images": len(val_ids),
        "steps": steps,
        "learning_rate": learning_rate,
        "results": results,
        "wall_seconds": time.monotonic() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "started": stamp,
        "load_after": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--parent", help="a finished training.fit run folder (read only)")
    source.add_argument("--from-json", help="redraw an earlier --out instead of measuring")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--png", default=None, help="draw the share-of-parent chart here")
    parser.add_argument(
        "--recipe",
        action="append",
        choices=list(RECIPES),
        default=None,
        help="fit only these readouts (repeatable; default all)",
    )
    parser.add_argument("--steps", type=int, default=400, help="full-batch Adam steps")
    parser.add_argument("--learning-rate", type=float, default=0.05)
    args = parser.parse_args()
    try:
        if args.from_json:
            report = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        else:
            recipes = args.recipe or list(RECIPES)
            report = measure(Path(args.parent), recipes, args.steps, args.learning_rate)
    except (ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    print("\n" + "\n".join(markdown_table(report["results"], report["parent_scores"])))
    print(
        f"\n{report['model']} parent, {report['train_images']} training / "
        f"{report['val_images']} validation images at original resolution; "
        f"{report['wall_seconds']:.0f} s wall, {report['cpu_seconds']:.0f} CPU-s "
        f"(started {report['started']})."
    )
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(report, indent=2, default=list))
        print(f"direct_readout: results -> {args.out}")
    if args.png and report["parent_scores"]:
        title = f"Direct feature readouts vs the {report['model']} parent (validation)"
        write_png(args.png, share_chart(report["results"], report["parent_scores"], title))
        print(f"direct_readout: chart -> {args.png}")


if __name__ == "__main__":
    main()
