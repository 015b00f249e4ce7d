"""Configuration of the main job (``python -m training.fit``): resolving, checking, files.

A run is described by one ``FitConfig`` (``training.fit_config``; its classes are
importable from here too). Values come, in increasing priority, from the dataclass
defaults, the recipes (``training.recipes.defaults_for``: the model's recipe, then the
data set's), a YAML file (``--config``), and command-line flags; an image size left
open is the model's registered ``default_input_size``. ``resolve`` is the one place
that fills and checks them; the resolved configuration is written to
``<out>/config.yaml`` so a run can be repeated or resumed.
"""

import dataclasses
import os
from pathlib import Path

import yaml

from tfsal import models
from tfsal.explain.centre_prior import DEFAULT_WIDTHS as DEFAULT_PRIOR_WIDTHS
from tfsal.explain.image_normalisation import STATISTICS as NORMALISATION_STATISTICS
from training import settings
from training.fit_config import (
    FROZEN_THROUGHOUT,
    DeriveConfig,
    FitConfig,
    LossConfig,
    OptimizerConfig,
)
from training.recipes import defaults_for

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_VAL_FRACTION",
    "FROZEN_THROUGHOUT",
    "RUN_IDENTITY_FIELDS",
    "DeriveConfig",
    "FitConfig",
    "LossConfig",
    "OptimizerConfig",
    "apply_overrides",
    "check_fits_in_memory",
    "load_yaml",
    "memory_limit",
    "read_run_config",
    "resolve",
    "resolve_model_defaults",
    "run_identity",
    "to_dict",
    "to_yaml",
    "validate",
]

# The file in a run folder that records the run's resolved configuration.
CONFIG_FILE = "config.yaml"
# Share of the images held out for validation where no recipe sets one.
DEFAULT_VAL_FRACTION = 0.2

# Fields that must match for --resume to continue a run.
RUN_IDENTITY_FIELDS = ("model", "data", "image_size", "resize", "batch_size", "seed")


# Derive settings a recipe may set (as ``derive_<field>``), with their value when
# neither the user nor the recipe does (``None`` for max_images: every image).
_DERIVE_FALLBACKS = {
    "max_images": None,
    "readout_epochs": 5,
    "learning_rate": 0.05,
    "image_normalisation": False,
    "reconstruction_kernel_size": 1,
    "normalisation_statistics": ["ratio"],
    "pooled_banks": False,
    "prior_scale": 1.0,
    "normalisation_sigma": 32.0,
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
            config.derive.prior_scale is None or config.derive.prior_scale >= 0,
            "derive.prior_scale must be >= 0",
        ),
        (
            config.derive.normalisation_sigma is None
            or _surrounds_valid(config.derive.normalisation_sigma),
            "derive.normalisation_sigma must be a width > 0 or a list of them, each once",
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


def _surrounds_valid(sigma: float | list[float]) -> bool:
    """Whether ``sigma`` is one surround width > 0, or one or more, each > 0 and once."""
    widths = sigma if isinstance(sigma, list) else [sigma]
    return len(widths) > 0 and all(w > 0 for w in widths) and len(set(widths)) == len(widths)


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
