"""Stage 2 of the main job: the explainable model derived from the trained one.

``check_derivation`` tries the derive settings on an untrained copy of the model
before the first epoch; ``derive_explainable`` fits the explainable model after
training (``tfsal.explain.derive``) and writes its fidelity to ``derivation.json``.
``training.job`` runs both, and ``training.derive`` reruns the stage on a finished
run.
"""

import dataclasses
import json

from tfsal import explain, models
from tfsal.data.pipeline import make_pipeline
from tfsal.explain import group_refit
from tfsal.explain.workers import num_workers
from tfsal.io_utils import atomic_write_text
from training import configs, distributed, trainer

DERIVATION_FILE = "derivation.json"
EXPLAINABLE_SUFFIX = "_explainable"


def explainable_name(config: configs.FitConfig) -> str:
    """The explainable model's name in metrics.json and under export/."""
    return config.model + EXPLAINABLE_SUFFIX


def tapped_parent(config: configs.FitConfig, model) -> tuple:
    """The trained model rebuilt with the taps to derive from exposed; and those taps.

    Registered tap names are exposed by the builder; any other name is left to
    ``tfsal.explain`` as a layer name. The weights are copied from ``model``.
    """
    taps = list(config.derive.taps or models.model_info(config.model).default_taps)
    if not taps:
        raise ValueError(
            f"Model {config.model!r} registers no default taps for its explainable model; set "
            "derive.taps=[layer names] (e.g. --set 'derive.taps=[conv3]') or "
            "derive.enabled=false."
        )
    registered = {info.name for info in getattr(model, "feature_info", [])}
    builder_taps = [tap for tap in taps if tap in registered]
    parent = trainer.build_model(
        dataclasses.replace(config, weights=None, encoder_weights=None), taps=builder_taps
    )
    parent.set_weights(model.get_weights())
    return parent, taps


def _worker_share(strategy, image_ids: list[str]) -> list[str]:
    """This worker's images, cut so that every worker streams as many batches."""
    count = num_workers(strategy)
    if count == 1:
        return list(image_ids)
    index = strategy.cluster_resolver.task_id
    share = len(image_ids) // count
    if share == 0:
        raise ValueError(
            f"{len(image_ids)} image(s) cannot be shared by {count} workers; use more images."
        )
    return list(image_ids)[index::count][:share]


def check_derivation(config: configs.FitConfig) -> None:
    """Checks the derive settings against the model before the first epoch.

    Raises:
        ValueError: for taps the model lacks or cannot be derived from, or a readout
            the taps do not allow.
    """
    if not config.derive.enabled:
        return
    model = trainer.build_model(dataclasses.replace(config, weights=None, encoder_weights=None))
    parent, taps = tapped_parent(config, model)
    explain.check_parent(
        parent,
        config.image_size,
        taps=taps,
        readout=config.derive.readout,
        output_kind=models.model_info(config.model).output,
    )


def derive_explainable(config, model, dataset, train_ids, val_ids, outputs, strategy):
    """Stage 2: derives the explainable model from the trained one (every worker).

    Returns:
        The ``tfsal.explain.Derivation``, or ``None`` when ``derive.enabled`` is off.
    """
    if not config.derive.enabled:
        print("derive: skipped (derive.enabled is false)")
        return None
    parent, taps = tapped_parent(config, model)
    batch_size = config.derive.batch_size or config.batch_size
    batch_size = max(1, batch_size // num_workers(strategy))

    def batches(image_ids):
        return make_pipeline(
            dataset,
            _worker_share(strategy, image_ids),
            image_size=tuple(config.image_size),
            resize=config.resize,
            batch_size=batch_size,
        )

    derive_ids = train_ids[: config.derive.max_images]
    print(
        f"derive: {config.derive.readout} explainable model of {config.model} from taps "
        f"{taps}, fitted on {len(derive_ids)} of {len(train_ids)} training images"
    )
    derivation = explain.derive(
        parent,
        batches(derive_ids),
        batches(val_ids),
        taps=taps,
        readout=config.derive.readout,
        output_kind=models.model_info(config.model).output,
        readout_epochs=config.derive.readout_epochs,
        fine_tune_epochs=config.derive.fine_tune_epochs,
        learning_rate=config.derive.learning_rate,
        reconstruction_learning_rate=config.derive.reconstruction_learning_rate,
        blur_sigma=config.derive.blur_sigma,
        context_sigmas=tuple(config.derive.context_sigmas or ()),
        prior_widths=config.derive.prior_widths,
        prior_scale=config.derive.prior_scale,
        image_normalisation=bool(config.derive.image_normalisation),
        reconstruction_kernel_size=config.derive.reconstruction_kernel_size,
        normalisation_statistics=tuple(config.derive.normalisation_statistics or ("ratio",)),
        pooled_banks=bool(config.derive.pooled_banks),
        normalisation_sigma=config.derive.normalisation_sigma,
        strategy=strategy,
    )
    for tap, scores in derivation.fidelity["taps"].items():
        print(
            f"  {tap} (1/{scores['stride']}, {scores['channels']} ch): validation R² "
            f"{scores['r2']:.3f}, mean channel CC {scores['mean_cc']:.3f} (l2 {scores['l2']:g})"
        )
    saliency = derivation.fidelity["saliency"]
    print(f"  saliency vs parent: CC {saliency['cc']:.3f}, KLD {saliency['kld']:.3f}")
    if distributed.is_chief(strategy):
        # The normal equations first: the report checks them against derivation.json.
        group_refit.save_statistics(
            outputs.out / group_refit.STATISTICS_FILE, derivation.statistics
        )
        outputs.derivation = outputs.out / DERIVATION_FILE
        atomic_write_text(outputs.derivation, json.dumps(derivation.fidelity, indent=2))
        print(f"derive: fidelity -> {outputs.derivation}")
    return derivation
