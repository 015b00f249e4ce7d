"""Configuration of the main job (``python -m training.fit``) as dataclasses.

A run is described by one ``FitConfig``. Values come, in increasing priority, from
the dataclass defaults, the recipes below (``defaults_for``: the model's recipe, then
the data set's), a YAML file (``--config``), and command-line flags; an image size
left open is the model's registered ``default_input_size``. ``resolve`` is the one
place that fills and checks them; the resolved configuration is written to
``<out>/config.yaml`` so a run can be repeated or resumed.

Per-model optimiser defaults follow the original papers, except UNISAL's on small
data sets:

- **UNISAL** (Droste et al., ECCV 2020, ``Trainer.json``): SGD with momentum 0.9,
  learning rate 0.04 decayed by 0.8 every epoch (``ExponentialLR``), weight decay
  1e-4, gradient clipping at norm 2.0, 16 epochs, backbone frozen for the first 2
  epochs, batch 32 for SALICON. The default for SALICON and any data format not in
  ``SMALL_DATA_FORMATS``.
- **UNISAL on small data sets** (``SMALL_DATA_FORMATS``: NUS, MIT1003, CAT2000,
  image folders; our choice, measured on a seeded 320/80 NUS scene split, see
  BENCHMARKS.md): the ImageNet MobileNetV2 encoder and the Gaussian output
  smoothing stay frozen for every epoch (``frozen_backbone_epochs=-1``; frozen
  BatchNorms run in inference mode, so small batches cannot spoil the ImageNet
  statistics), Adam with learning rate 1e-3 decayed by 0.9 per epoch, batch 8,
  224x224 inputs, 14 epochs (an upper bound: early stopping on validation CC
  restores the best epoch). The paper recipe on 320 NUS images (encoder trained
  from epoch 3 with batch-32 BatchNorm statistics, SGD at 0.04 on a randomly
  initialised decoder, 10 steps per epoch) stayed below the centre bias. The paper
  recipe stays available for these formats through ``--config`` (a YAML file with
  ``epochs: 16``, ``batch_size: 32`` and the ``optimizer`` values above).
- **MSI-Net** (Kroner et al., Neural Networks 2020, ``config.py``): Adam with
  learning rate 1e-5, constant, batch 1, 10 epochs.
- **CMRNet** (architecture not published; our choice, measured on the pop-out and
  NUS data): Adam with learning rate 1e-3 decayed by 0.9 per epoch, batch 8, 10
  epochs: trained from scratch, it needs a larger step than MSI-Net's fine-tuning
  rate and no backbone schedule.

Models without an entry use the CMRNet defaults. The generated ``popout`` data set
(the no-argument run) has its own recipe, which wins over these: ``DATA_DEFAULTS``
(3 epochs at 96x96, learning rate halved per epoch, a tenth of 2000 arrays held out).
"""

import dataclasses
import os
from pathlib import Path

import yaml

from tfsal import models
from tfsal.explain.centre_prior import DEFAULT_WIDTHS as DEFAULT_PRIOR_WIDTHS
from tfsal.explain.image_normalisation import STATISTICS as NORMALISATION_STATISTICS
from training import settings


@dataclasses.dataclass
class OptimizerConfig:
    """Optimiser and learning-rate schedule.

    Attributes:
        name: ``"sgd"`` (with momentum) or ``"adam"``.
        learning_rate: the initial learning rate.
        momentum: SGD momentum (ignored by Adam).
        weight_decay: decoupled weight decay; 0 disables it.
        decay_per_epoch: the learning rate is multiplied by this after every epoch
            (1 keeps it constant).
        clip_norm: clip each gradient to this global norm; ``None`` disables it.
        frozen_backbone_epochs: train with the pretrained encoder frozen (its
            BatchNorms in inference mode) for this many epochs first (UNISAL's
            warm-up); 0 trains everything from the start, -1 keeps the encoder
            frozen for every epoch.
    """

    name: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    decay_per_epoch: float = 0.9
    clip_norm: float | None = None
    frozen_backbone_epochs: int = 0


@dataclasses.dataclass
class LossConfig:
    """Loss weights (see ``tfsal.losses``).

    Attributes:
        kld_weight: weight of KLD (log-density models).
        nss_weight: weight subtracted per unit of NSS (log-density models).
        cc_weight: weight subtracted per unit of CC (log-density models).
        epsilon: MSI-Net's KLD regulariser (map models).
    """

    kld_weight: float = 1.0
    nss_weight: float = 0.1
    cc_weight: float = 0.1
    epsilon: float = 1e-7


@dataclasses.dataclass
class DeriveConfig:
    """The explainable model of stage 2 (``tfsal.explain.derive``).

    Attributes:
        enabled: derive, score and export the explainable model.
        taps: the parent's taps to rebuild; ``None`` for the model's registered
            default taps.
        readout: ``"linear"`` (transparent, with per-feature contributions) or
            ``"decoder"`` (the parent's frozen decoder fed the reconstructions).
        readout_epochs: epochs of fitting the linear readout to the parent's saliency;
            ``None`` for the recipe's, else 5.
        fine_tune_epochs: epochs of fine-tuning reconstructions and readout together.
        learning_rate: Adam learning rate of the readout (fitting and fine-tuning);
            ``None`` for the recipe's, else 0.05.
        reconstruction_learning_rate: Adam learning rate of the reconstructions in
            fine-tuning (the readout's 0.05 destroyed them on NUS).
        blur_sigma: blur of the linear readout's logits, in input pixels; ``None``
            for the recipe's (the pop-out recipe's 1.5), else 4.
        context_sigmas: blurs, in input pixels, of further copies of the linear
            readout per tap, each with its own vector (``tfsal.explain.TapReadout``);
            ``None`` for the recipe's (the pop-out recipe's one 12-pixel copy), else
            none.
        prior_widths: widths of the linear readout's centre-prior maps, in half-image
            units (``tfsal.explain.CentrePrior``); ``None`` for the recipe's, else
            ``DEFAULT_PRIOR_WIDTHS``.
        image_normalisation: also feed the reconstructions every log-Gabor channel
            divided by its mean over the image (``tfsal.explain.ImageNormalisation``);
            ``None`` for the recipe's choice (the pop-out recipe turns it on), else off.
        reconstruction_kernel_size: odd k: every tap's reconstruction reads the
            log-Gabor features of the k×k tap cells around each pixel (a linear
            convolution); ``None`` for the recipe's, else 1.
        normalisation_statistics: the normalised copies of ``image_normalisation``:
            ``"ratio"`` (each channel over its image mean) and/or ``"excess"`` (each
            channel's energy beyond its share in the image); ``None`` for the
            recipe's (the pop-out recipe's ``["excess"]``), else ``["ratio"]``.
        batch_size: images per batch of the derivation; ``None`` for ``batch_size``.
        max_images: derive from at most this many training images (the first of the
            seeded training order); ``None`` for the recipe's cap, else all of them.
    """

    enabled: bool = True
    taps: list[str] | None = None
    readout: str = "linear"
    readout_epochs: int | None = None
    fine_tune_epochs: int = 0
    learning_rate: float | None = None
    reconstruction_learning_rate: float = 5e-4
    blur_sigma: float | None = None
    context_sigmas: list[float] | None = None
    prior_widths: list[float] | None = None
    image_normalisation: bool | None = None
    reconstruction_kernel_size: int | None = None
    normalisation_statistics: list[str] | None = None
    batch_size: int | None = None
    max_images: int | None = None


@dataclasses.dataclass
class FitConfig:
    """Everything that defines a run of the main job.

    Attributes:
        model: a registered model name (``tfsal.models.list_models()``).
        data: a data set spec, ``FORMAT:PATH`` or ``popout``.
        out: the output folder; ``None`` means ``runs/<timestamp>``.
        epochs: number of training epochs (upper bound with early stopping).
        batch_size: global batch size (split over replicas when distributed).
        image_size: ``[height, width]`` of the model input; ``None`` uses the
            model's default.
        resize: how images reach ``image_size``: ``"pad"`` (keep aspect ratio) or
            ``"stretch"``.
        augment: random horizontal flips during training.
        weights: a checkpoint of the whole model to start from.
        encoder_weights: pretrained encoder weights: ``"auto"`` (the shared
            ImageNet weights where the model has them), ``None``, or a path.
        val_fraction: share of the images held out for validation (used unless
            ``train_size``/``val_size`` are given); ``None`` (or ``null`` in a
            ``--config`` file) for the data set's recipe, else
            ``DEFAULT_VAL_FRACTION``. A run's own ``config.yaml`` always records the
            resolved value, and ``read_run_config`` refuses a ``null`` there.
        train_size: number of training images (with ``val_size``).
        val_size: number of validation images (with ``train_size``).
        max_images: use only the first this many images of the data set.
        seed: seeds the split, data order, augmentation and weight initialisation.
        early_stopping_patience: stop after this many epochs without a better
            validation CC; 0 disables early stopping.
        report_samples: number of validation images drawn in the report and
            TensorBoard.
        strategy: ``"auto"`` (multi-worker when ``TF_CONFIG`` is set, mirrored with
            several GPUs, else default), ``"mirrored"``, ``"multi_worker"`` or
            ``"default"``.
        optimizer: optimiser settings; per-model paper defaults when not given.
        loss: loss weights.
        derive: the explainable model's settings.
    """

    model: str = "cmrnet"
    data: str = "popout"
    out: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    image_size: list[int] | None = None
    resize: str = "pad"
    augment: bool = True
    weights: str | None = None
    encoder_weights: str | None = "auto"
    val_fraction: float | None = None
    train_size: int | None = None
    val_size: int | None = None
    max_images: int | None = None
    seed: int = 0
    early_stopping_patience: int = 3
    report_samples: int = 4
    strategy: str = "auto"
    optimizer: OptimizerConfig | None = None
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    derive: DeriveConfig = dataclasses.field(default_factory=DeriveConfig)


# The file in a run folder that records the run's resolved configuration.
CONFIG_FILE = "config.yaml"
# Share of the images held out for validation where no recipe sets one.
DEFAULT_VAL_FRACTION = 0.2

# ``frozen_backbone_epochs`` value that keeps the encoder frozen for every epoch.
FROZEN_THROUGHOUT = -1

# UNISAL's paper recipe for SALICON (module docstring); not the default here.
UNISAL_SALICON_RECIPE: dict = {
    "epochs": 16,
    "batch_size": 32,
    "optimizer": OptimizerConfig(
        name="sgd",
        learning_rate=0.04,
        momentum=0.9,
        weight_decay=1e-4,
        decay_per_epoch=0.8,
        clip_norm=2.0,
        frozen_backbone_epochs=2,
    ),
}

# Data formats of small data sets (hundreds to a few thousand images), which get
# ``SMALL_DATA_DEFAULTS`` where a model has them.
SMALL_DATA_FORMATS = ("nus", "mit1003", "cat2000", "folder")

# Our recipes for small data sets (module docstring); keys are registry names.
# UNISAL's explainable model on NUS (320/80 split, BENCHMARKS.md, "the explainable
# model of UNISAL on NUS scene"): every reconstruction reads the 3×3 tap cells
# around each pixel (validation R² 0.33 -> 0.44 at 1/8), each tap's readout has
# copies blurred over 16, 32 and 64 px, and the readout gets 15 epochs to settle
# them: CC 0.627 / NSS 1.595 against 0.602 / 1.522 with the library defaults. The
# reconstructions also read every bank channel over its image mean and its energy
# beyond the image's mix of colours, scales and orientations (the pop-out recipe's
# "excess"): CC 0.637 / NSS 1.621, sAUC 0.598 -> 0.604, better on every metric.
# The readout fits 25 epochs at 0.02 rather than 15 at 0.05 (Adam at 0.05 swung the
# loss up and down for ten epochs) beside a centre prior of five widths, 0.125 to 2
# half-images (a narrow peak and a nearly flat tilt the three defaults lack): CC
# 0.643 / NSS 1.648 (88.1% / 85.8% of the parent; NSS 1.632 is 85%), but sAUC 0.604
# -> 0.600, still below spectral residual's 0.609 (benchmarks/readout_sweep.py
# separates the two changes: +0.018 and +0.022 NSS).
SMALL_DATA_DEFAULTS: dict[str, dict] = {
    "unisal": {
        "epochs": 14,
        "batch_size": 8,
        "image_size": [224, 224],
        "optimizer": OptimizerConfig(
            name="adam",
            learning_rate=1e-3,
            decay_per_epoch=0.9,
            frozen_backbone_epochs=FROZEN_THROUGHOUT,
        ),
        "derive_reconstruction_kernel_size": 3,
        "derive_context_sigmas": [16.0, 32.0, 64.0],
        "derive_readout_epochs": 25,
        "derive_learning_rate": 0.02,
        "derive_prior_widths": [0.125, 0.25, 0.5, 1.0, 2.0],
        "derive_image_normalisation": True,
        "derive_normalisation_statistics": ["ratio", "excess"],
    },
}

# The papers' recipes (module docstring); keys are registry names.
MODEL_DEFAULTS: dict[str, dict] = {
    "unisal": UNISAL_SALICON_RECIPE,
    "msinet": {
        "epochs": 10,
        "batch_size": 1,
        "optimizer": OptimizerConfig(name="adam", learning_rate=1e-5, decay_per_epoch=1.0),
    },
    "cmrnet": {
        "epochs": 10,
        "batch_size": 8,
        "optimizer": OptimizerConfig(name="adam", learning_rate=1e-3, decay_per_epoch=0.9),
    },
}

# Recipes per data format, over the model's. The no-argument run: CMRNet on generated
# pop-out arrays, within 5 minutes on two CPU cores (BENCHMARKS.md, "Default run").
# Fresh arrays matter more than epochs: on 240 arrays CMRNet learnt its training
# targets by heart (validation CC 0.14); on 1800 it finds the singletons of arrays it
# has not seen. 96x96 inputs keep the items about 7 px across; the learning rate
# halves every epoch for CMRNet so the last ones settle (validation CC 0.93 against
# 0.89 with its usual decay of 0.9); a tenth of the arrays validate. Three epochs, not
# four: the fourth cost a quarter of the training for validation CC 0.918 against
# 0.906, and the third epoch's model already meets every target of the run.
DATA_DEFAULTS: dict[str, dict] = {
    # The explainable model of the no-argument run is derived from 400 of the 1800
    # training arrays: one derivation pass plus five readout epochs over all of them
    # took longer than the training itself, for a readout of 4 x 72 weights. A
    # singleton is what is rare in its array, which local magnitudes cannot tell, so
    # its reconstructions also read, per channel, the energy beyond the channel's
    # share of the image's mix (``derive.image_normalisation`` with the "excess"
    # statistic): zero at every distractor, positive where the odd item departs in
    # either direction. The magnitude over its image mean ("ratio") is only a
    # per-image factor, which the features' log1p turns into a constant the
    # log-softmax cancels: with it the model found the singleton first in 52% of the
    # arrays and MSR_bg was 3.40 (spectral residual 0.98); with "excess" 83% and
    # 0.85, CC 0.63 -> 0.85, at the same cost. Each tap's readout has a copy blurred
    # over 12 px (about two item spacings), which reads an item against its
    # neighbours, and the logits are blurred over 1.5 px rather than 4: items are
    # about 7 px across, and blur 4 needed 16 fixations to find the singleton where
    # 1.5 needed 11.5 (BENCHMARKS.md, "Default run").
    "popout": {
        "image_size": [96, 96],
        "epochs": 3,
        "val_fraction": 0.1,
        "derive_max_images": 400,
        "derive_image_normalisation": True,
        "derive_normalisation_statistics": ["excess"],
        "derive_context_sigmas": [12.0],
        "derive_blur_sigma": 1.5,
    },
}
# Recipes of one model on one data format, over both of the above.
DATA_MODEL_DEFAULTS: dict[tuple[str, str], dict] = {
    ("popout", "cmrnet"): {
        "optimizer": OptimizerConfig(name="adam", learning_rate=1e-3, decay_per_epoch=0.5),
    },
}

# Constructor arguments of generated data sets: 2000 pop-out arrays (1800 to train on,
# 200 to validate), drawn at 128 px rather than the reader's 256 px default, which
# costs a quarter per array and still gives the smallest targets a hit circle of 2 px
# radius for fixations-to-find (at 96 px a peak one pixel off the centre misses it).
# They are kept in memory once generated (about 300 MB): the run reads every array
# several times (epochs, validation, derivation, evaluation).
GENERATED_DATA_OPTIONS: dict[str, dict] = {
    "popout": {"num_images": 2000, "image_size": 128, "cache": True}
}

# Fields that must match for --resume to continue a run.
RUN_IDENTITY_FIELDS = ("model", "data", "image_size", "resize", "batch_size", "seed")


def defaults_for(model: str, data: str | None) -> dict:
    """Returns the default recipe of ``model`` on the data set spec ``data``.

    ``SMALL_DATA_DEFAULTS`` where the model has them and the data format is in
    ``SMALL_DATA_FORMATS``, else the paper recipe (``MODEL_DEFAULTS``; the CMRNet
    one for models without an entry); ``DATA_DEFAULTS`` of the data format override
    either, and ``DATA_MODEL_DEFAULTS`` of the pair override all.
    """
    data_format = str(data or "").split(":", 1)[0]
    if data_format in SMALL_DATA_FORMATS and model in SMALL_DATA_DEFAULTS:
        recipe = SMALL_DATA_DEFAULTS[model]
    else:
        recipe = MODEL_DEFAULTS.get(model, MODEL_DEFAULTS["cmrnet"])
    return {
        **recipe,
        **DATA_DEFAULTS.get(data_format, {}),
        **DATA_MODEL_DEFAULTS.get((data_format, model), {}),
    }


# Derive settings a recipe may set (as ``derive_<field>``), with their value when
# neither the user nor the recipe does (``None`` for max_images: every image).
_DERIVE_FALLBACKS = {
    "max_images": None,
    "readout_epochs": 5,
    "learning_rate": 0.05,
    "image_normalisation": False,
    "reconstruction_kernel_size": 1,
    "normalisation_statistics": ["ratio"],
    "context_sigmas": [],
    "prior_widths": list(DEFAULT_PRIOR_WIDTHS),
    "blur_sigma": 4.0,
}


def resolve_model_defaults(config: FitConfig) -> FitConfig:
    """Fills the fields left as ``None`` with the default recipe.

    Only ``None`` means "not set": a value the user gave wins even when it equals a
    default (``--set val_fraction=0.2`` on pop-out data, whose recipe holds out 0.1).
    """
    defaults = defaults_for(config.model, config.data)
    resolved = dataclasses.replace(config)
    for field in ("epochs", "batch_size", "image_size"):
        if getattr(resolved, field) is None and field in defaults:
            setattr(
                resolved, field, list(defaults[field]) if field == "image_size" else defaults[field]
            )
    if resolved.optimizer is None:
        resolved.optimizer = dataclasses.replace(defaults["optimizer"])
    for field, fallback in _DERIVE_FALLBACKS.items():
        if getattr(resolved.derive, field) is not None:
            continue
        value = defaults.get(f"derive_{field}", fallback)
        resolved.derive = dataclasses.replace(
            resolved.derive, **{field: list(value) if isinstance(value, list) else value}
        )
    if resolved.val_fraction is None:
        resolved.val_fraction = defaults.get("val_fraction", DEFAULT_VAL_FRACTION)
    return resolved


def resolve(config: FitConfig) -> FitConfig:
    """Fills every default of a run and checks the result: the one place defaults meet.

    The recipe (``defaults_for``) fills the fields left as ``None``, the model's
    registered ``default_input_size`` an image size still open; then the values and
    the image size are checked against the model.

    Raises:
        ValueError: for an unknown model, bad settings or an image size the model
            cannot take.
    """
    info = models.model_info(config.model)  # unknown model -> ValueError listing models
    config = resolve_model_defaults(config)
    if config.image_size is None:
        config = dataclasses.replace(config, image_size=list(info.default_input_size))
    validate(config, resolved=True)
    models.check_input_size(config.model, *config.image_size)
    check_fits_in_memory(config.image_size, config.batch_size)
    return config


# Bytes one input pixel of a training batch takes in the data pipeline alone: the
# float32 RGB image and 2-channel target, held in the prefetch buffer and again by the
# model's step (the model's activations come on top of this).
_PIPELINE_BYTES_PER_PIXEL = (3 + 2) * 4 * 2


def memory_limit() -> int:
    """Returns the bytes of memory this process may use (physical or cgroup limit)."""
    limit = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        cgroup = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return limit
    return min(limit, int(cgroup)) if cgroup.isdigit() else limit


def check_fits_in_memory(image_size: list[int], batch_size: int) -> None:
    """Refuses an image size whose batches cannot fit in this machine's memory.

    The bound is the data alone (``_PIPELINE_BYTES_PER_PIXEL``), so a refused size is
    certain to fail; sizes that pass may still be slow.

    Raises:
        ValueError: with the memory the batch needs and the memory there is.
    """
    height, width = image_size
    needed = batch_size * height * width * _PIPELINE_BYTES_PER_PIXEL
    available = memory_limit()
    if needed > available:
        raise ValueError(
            f"image_size {height}x{width} with batch_size {batch_size} needs at least "
            f"{needed / 2**30:.1f} GiB for one batch of images and targets (the model's "
            f"activations come on top), more than the {available / 2**30:.1f} GiB of memory "
            "here. Choose a smaller --image-size or --batch-size."
        )


def validate(config: FitConfig, resolved: bool = False) -> None:
    """Checks values that do not depend on the model or the data.

    Args:
        config: the configuration.
        resolved: whether ``config`` is meant to be resolved (``resolve``'s result,
            or a run's recorded ``config.yaml``), so that the split's
            ``val_fraction`` must be set: a ``None`` there would be re-resolved from
            today's recipe and could move training images into validation.

    Raises:
        ValueError: naming the first bad field and what to do.
    """
    checks = [
        (
            not resolved or config.val_fraction is not None,
            "val_fraction must be set in a run's recorded configuration (training.fit "
            "writes the fraction it held out; null would re-split with the recipe's): "
            "set it to the run's value",
        ),
        (config.epochs is None or config.epochs >= 1, "epochs must be >= 1"),
        (config.batch_size is None or config.batch_size >= 1, "batch_size must be >= 1"),
        (
            config.val_fraction is None or 0 < config.val_fraction < 1,
            "val_fraction must be between 0 and 1 (exclusive)",
        ),
        (config.resize in ("pad", "stretch"), "resize must be 'pad' or 'stretch'"),
        (config.early_stopping_patience >= 0, "early_stopping_patience must be >= 0"),
        (config.max_images is None or config.max_images >= 2, "max_images must be >= 2"),
        (
            config.strategy in ("auto", "mirrored", "multi_worker", "default"),
            "strategy must be 'auto', 'mirrored', 'multi_worker' or 'default'",
        ),
        (
            (config.train_size is None) == (config.val_size is None),
            "train_size and val_size must be given together",
        ),
        (
            config.image_size is None
            or (len(config.image_size) == 2 and all(int(s) > 0 for s in config.image_size)),
            "image_size must be two positive integers [height, width]",
        ),
    ]
    checks += [
        (
            config.derive.readout in ("linear", "decoder"),
            "derive.readout must be 'linear' or 'decoder'",
        ),
        (
            config.derive.readout_epochs is None or config.derive.readout_epochs >= 0,
            "derive.readout_epochs must be >= 0",
        ),
        (config.derive.fine_tune_epochs >= 0, "derive.fine_tune_epochs must be >= 0"),
        (
            config.derive.learning_rate is None or config.derive.learning_rate > 0,
            "derive.learning_rate must be > 0",
        ),
        (
            config.derive.reconstruction_learning_rate > 0,
            "derive.reconstruction_learning_rate must be > 0",
        ),
        (
            config.derive.blur_sigma is None or config.derive.blur_sigma >= 0,
            "derive.blur_sigma must be >= 0",
        ),
        (
            all(sigma > 0 for sigma in config.derive.context_sigmas or []),
            "derive.context_sigmas must all be > 0",
        ),
        (
            config.derive.prior_widths is None
            or (
                len(config.derive.prior_widths) > 0
                and all(width > 0 for width in config.derive.prior_widths)
            ),
            "derive.prior_widths must list one or more widths > 0",
        ),
        (
            config.derive.reconstruction_kernel_size is None
            or (
                config.derive.reconstruction_kernel_size >= 1
                and config.derive.reconstruction_kernel_size % 2 == 1
            ),
            "derive.reconstruction_kernel_size must be an odd int >= 1",
        ),
        (
            config.derive.normalisation_statistics is None
            or (
                0
                < len(set(config.derive.normalisation_statistics))
                == len(config.derive.normalisation_statistics)
                and set(config.derive.normalisation_statistics) <= set(NORMALISATION_STATISTICS)
            ),
            f"derive.normalisation_statistics must list one or more of "
            f"{list(NORMALISATION_STATISTICS)}, each once",
        ),
        (
            config.derive.max_images is None or config.derive.max_images >= 1,
            "derive.max_images must be >= 1",
        ),
        (
            config.derive.batch_size is None or config.derive.batch_size >= 1,
            "derive.batch_size must be >= 1",
        ),
    ]
    if config.optimizer is not None:
        checks += [
            (config.optimizer.name in ("sgd", "adam"), "optimizer.name must be 'sgd' or 'adam'"),
            (config.optimizer.learning_rate > 0, "optimizer.learning_rate must be > 0"),
            (config.optimizer.weight_decay >= 0, "optimizer.weight_decay must be >= 0"),
            (config.optimizer.momentum >= 0, "optimizer.momentum must be >= 0"),
            (
                config.optimizer.clip_norm is None or config.optimizer.clip_norm > 0,
                "optimizer.clip_norm must be > 0, or null to disable clipping",
            ),
            (0 < config.optimizer.decay_per_epoch <= 1, "optimizer.decay_per_epoch in (0, 1]"),
            (
                config.optimizer.frozen_backbone_epochs >= FROZEN_THROUGHOUT,
                "optimizer.frozen_backbone_epochs must be >= 0, or -1 for every epoch",
            ),
        ]
    for passed, message in checks:
        if not passed:
            field = message.split(" ")[0]
            value = _get_dotted(config, field)
            raise ValueError(f"{message}. Received: {field}={value!r}")


def _get_dotted(config, dotted: str):
    value = config
    for part in dotted.split("."):
        value = getattr(value, part, None)
    return value


def _merge_optimizer_defaults(values: dict) -> dict:
    """Completes a partial ``optimizer`` mapping with the model's paper defaults."""
    optimizer = values.get("optimizer")
    if not isinstance(optimizer, dict):
        return values
    # Wrong types are reported by settings.dataclass_from_values; here they only fall
    # back to defaults.
    model, data = values.get("model"), values.get("data")
    model = model if isinstance(model, str) else FitConfig.model
    data = data if isinstance(data, str) else FitConfig.data
    defaults = defaults_for(model, data)["optimizer"]
    return {**values, "optimizer": {**dataclasses.asdict(defaults), **optimizer}}


def load_yaml(path: str | Path) -> FitConfig:
    """Reads a ``FitConfig`` from a YAML file of (nested) settings.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if it is not valid YAML or names unknown settings.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file {path} not found.")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"Config file {path} is not valid YAML: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(
            f"Config file {path} must hold a mapping of settings (name: value), e.g. "
            f"'epochs: 4'. Received: a YAML {type(values).__name__}"
        )
    return settings.dataclass_from_values(FitConfig, _merge_optimizer_defaults(values), str(path))


def read_run_config(run: str | Path) -> FitConfig:
    """Reads the configuration a ``training.fit`` run recorded in ``<run>/config.yaml``.

    Raises:
        ValueError: if ``run`` is not a run folder, or its file is not a valid
            resolved configuration (e.g. a hand-edited ``val_fraction: null``).
    """
    path = Path(run) / CONFIG_FILE
    if not path.is_file():
        raise ValueError(
            f"{run} is not a training.fit run folder (no {CONFIG_FILE}); pass the --out "
            "folder of a run, or train one with python -m training.fit --out DIR."
        )
    config = load_yaml(path)
    try:
        validate(config, resolved=True)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return config


def apply_overrides(config: FitConfig, overrides: dict) -> FitConfig:
    """Returns ``config`` with dotted settings replaced, e.g. ``{"optimizer.name": "sgd"}``.

    Raises:
        ValueError: for an unknown setting.
    """
    values = to_dict(config)
    for dotted, value in overrides.items():
        target = values
        *parents, leaf = dotted.split(".")
        for parent in parents:
            if target.get(parent) is None:
                target[parent] = {}
            target = target[parent]
        target[leaf] = value
    return settings.dataclass_from_values(
        FitConfig, _merge_optimizer_defaults(values), "the overrides"
    )


def to_dict(config: FitConfig) -> dict:
    """Returns the configuration as plain nested dicts and lists."""
    return dataclasses.asdict(config)


def to_yaml(config: FitConfig) -> str:
    """Returns the configuration as YAML text (what ``<out>/config.yaml`` holds)."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def run_identity(config: FitConfig) -> dict:
    """Returns the settings that identify a run for ``--resume``."""
    values = to_dict(config)
    return {field: values[field] for field in RUN_IDENTITY_FIELDS}
