"""The training stage of the main job: model, optimiser, data order, resumable fit.

``train`` builds the registered model under the distribution strategy, compiles
it with the paper loss for its output kind, and fits it epoch by epoch with
atomic checkpoints. The order of the training images in epoch ``e`` depends only
on ``(seed, e)``, and every epoch's input is built from that order, so a run
resumed after epoch ``k`` sees exactly the batches the uninterrupted run would
have seen, with the same weights and optimizer state.
"""

import dataclasses
import importlib.util
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfsal import losses, metrics, models
from tfsal.conventions import LOG_DENSITY, SALIENCY
from tfsal.data.pipeline import make_pipeline
from tfsal.paths import shared_weights_dir
from training import callbacks, distributed, keras_private
from training.configs import FROZEN_THROUGHOUT, FitConfig, run_identity


@dataclasses.dataclass
class TrainingResult:
    """What the training stage hands to the later stages.

    Attributes:
        model: the trained model, holding the best epoch's weights.
        epochs_run: epochs completed in total (including resumed ones).
        best_epoch: the epoch whose weights the model holds (``None`` if no epoch
            produced a finite validation CC).
        history: per-epoch logs of this process's ``fit`` calls.
    """

    model: keras.Model
    epochs_run: int
    best_epoch: int | None
    history: list[dict]


def resolve_encoder_weights(config: FitConfig) -> str | None:
    """Returns the encoder weights to pass to the model builder, or ``None``."""
    if config.encoder_weights != "auto":
        return config.encoder_weights
    file_name = models.model_info(config.model).pretrained_encoder_file
    if file_name is None:
        return None
    path = shared_weights_dir() / file_name
    if not path.is_file():
        print(f"note: {path} not found; training {config.model} without a pretrained encoder.")
        return None
    return str(path)


def build_model(config: FitConfig, taps=()) -> keras.Model:
    """Builds the registered model, its encoder weights and ``--weights`` applied.

    Args:
        config: the run's configuration.
        taps: the model's named taps to expose next to its saliency.
    """
    kwargs = {"taps": tuple(taps), "input_size": tuple(config.image_size)}
    encoder_weights = resolve_encoder_weights(config)
    if encoder_weights:
        kwargs["encoder_weights"] = encoder_weights
    if config.weights and not config.weights.endswith(".npz"):
        kwargs["weights"] = config.weights
    model = models.get(config.model, **kwargs)
    if config.weights and config.weights.endswith(".npz"):
        callbacks.restore_state(config.weights, model, with_optimizer=False)
    return model


def build_optimizer(config: FitConfig) -> keras.optimizers.Optimizer:
    """Returns the configured optimiser (learning rate set per epoch by a callback)."""
    settings = config.optimizer
    common = {"learning_rate": settings.learning_rate, "global_clipnorm": settings.clip_norm}
    if settings.weight_decay:
        common["weight_decay"] = settings.weight_decay
    if settings.name == "sgd":
        return keras.optimizers.SGD(momentum=settings.momentum, **common)
    return keras.optimizers.Adam(**common)


def backbone_layers(model: keras.Model, model_name: str) -> list[keras.layers.Layer]:
    """Returns the layers of the model's pretrained encoder (by registered name prefix)."""
    prefixes = models.model_info(model_name).encoder_layer_prefixes
    return [layer for layer in model.layers if prefixes and layer.name.startswith(prefixes)]


def epoch_order(image_ids, seed: int, epoch: int) -> list[str]:
    """Returns the training images in the order of ``epoch``, fixed by ``(seed, epoch)``."""
    permutation = np.random.default_rng([seed, epoch]).permutation(len(image_ids))
    return [image_ids[i] for i in permutation]


def compile_model(
    model: keras.Model,
    config: FitConfig,
    output: str,
    optimizer: keras.optimizers.Optimizer | None = None,
) -> None:
    """Compiles with the paper loss and CC/NSS/KLD metrics on the density.

    Args:
        model: the model.
        config: the run configuration (loss weights).
        output: the model's output kind.
        optimizer: the optimiser; ``None`` keeps the model's current one (and its
            state) when recompiling.
    """
    loss_settings = config.loss
    if output == LOG_DENSITY:
        loss = losses.LogDensityLoss(
            loss_settings.kld_weight, loss_settings.nss_weight, loss_settings.cc_weight
        )
    else:
        loss = losses.MapKLDivergence(loss_settings.epsilon)
    model.compile(
        optimizer=optimizer or model.optimizer,
        loss={SALIENCY: loss},
        metrics={
            SALIENCY: [
                metrics.CorrelationCoefficient(output, name="cc"),
                metrics.NormalizedScanpathSaliency(output, name="nss"),
                metrics.KLDivergence(output, name="kld"),
            ]
        },
    )


def _learning_rate_schedule(config: FitConfig):
    settings = config.optimizer
    return keras.callbacks.LearningRateScheduler(
        lambda epoch, _: settings.learning_rate * settings.decay_per_epoch**epoch
    )


@dataclasses.dataclass
class _Phase:
    """Epochs ``[start, stop)``, the pretrained encoder frozen or not (None: no encoder)."""

    start: int
    stop: int
    frozen: bool | None


def train(
    config: FitConfig,
    dataset,
    train_ids: list[str],
    val_ids: list[str],
    checkpoint_dir: Path,
    log_dir: Path,
    strategy: tf.distribute.Strategy,
    resume_from: Path | None = None,
) -> TrainingResult:
    """Trains ``config.model`` and returns it holding its best epoch's weights.

    Args:
        config: the resolved run configuration.
        dataset: the ``SaliencyDataset`` to read.
        train_ids: training images.
        val_ids: validation images (early stopping, best epoch).
        checkpoint_dir: where epoch checkpoints go.
        log_dir: the TensorBoard folder.
        strategy: the distribution strategy.
        resume_from: a checkpoint to continue from.

    Returns:
        The training result.
    """
    output = models.model_info(config.model).output
    keras.utils.set_random_seed(config.seed)
    model = _compiled_model(config, strategy, output)
    early_stopping = callbacks.ResumableEarlyStopping(
        monitor="val_cc", mode="max", patience=max(config.early_stopping_patience, 1)
    )
    checkpoint = callbacks.EpochCheckpoint(
        checkpoint_dir,
        identity=run_identity(config),
        extra_state=lambda: {"early_stopping": early_stopping.state()},
        is_chief=distributed.is_chief(strategy),
    )
    initial_epoch, completed_before = _resume(
        config, model, resume_from, checkpoint, early_stopping
    )
    validation = _validation_batches(config, dataset, val_ids, strategy)
    fit_callbacks = _fit_callbacks(
        config, early_stopping, checkpoint, validation, log_dir, strategy, output
    )
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        keras_private.build_before_multi_worker_fit(model, strategy, validation)
    history = []
    for phase in _phases(config, model, initial_epoch):
        if model.stop_training:
            break
        history += _fit_phase(
            config, model, phase, dataset, train_ids, validation, fit_callbacks, strategy
        )
    best_path = checkpoint_dir / callbacks.BEST_WEIGHTS
    if best_path.is_file():
        callbacks.restore_state(best_path, model, with_optimizer=False)
    return TrainingResult(model, completed_before + len(history), checkpoint.best_epoch, history)


def _compiled_model(config: FitConfig, strategy, output: str) -> keras.Model:
    with strategy.scope():
        model = build_model(config)
        optimizer = build_optimizer(config)
        # Built with every trainable variable, so the state survives the backbone warm-up.
        optimizer.build(model.trainable_variables)
        compile_model(model, config, output, optimizer)
    return model


def _resume(config, model, resume_from, checkpoint, early_stopping) -> tuple[int, int]:
    """Restores a checkpoint; returns (first epoch to fit, epochs completed before)."""
    if resume_from is None:
        return 0, 0
    record = callbacks.restore_state(resume_from, model)
    completed = record["epoch"]
    checkpoint.restore_best(record)
    early_stopping.load_state(record["extra"].get("early_stopping", {}))
    print(f"Resumed from {resume_from} (epoch {completed} of {config.epochs}).")
    if record.get("stop_training"):
        return config.epochs, completed
    return completed, completed


def _validation_batches(config, dataset, val_ids, strategy) -> tf.data.Dataset:
    validation = make_pipeline(
        dataset,
        val_ids,
        image_size=tuple(config.image_size),
        resize=config.resize,
        batch_size=config.batch_size,
    )
    if distributed.is_distributed(strategy):
        # Every worker scores all validation images: the metric means are unchanged and
        # no worker gets an empty shard of a small validation set.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        validation = validation.with_options(options)
    return validation


def _fit_callbacks(config, early_stopping, checkpoint, validation, log_dir, strategy, output):
    fit_callbacks = [
        _learning_rate_schedule(config),
        keras.callbacks.TerminateOnNaN(),
        *([early_stopping] if config.early_stopping_patience else []),
        checkpoint,
    ]
    if importlib.util.find_spec("tensorboard") is None:
        print("note: TensorBoard logs need `pip install tensorboard`; none written.")
        return fit_callbacks
    if distributed.is_chief(strategy):
        sample_images, sample_targets = _samples(validation, config.report_samples)
        fit_callbacks.append(keras.callbacks.TensorBoard(str(log_dir), write_graph=False))
        fit_callbacks.append(
            callbacks.SaliencyImageLogger(log_dir, sample_images, sample_targets[..., 0], output)
        )
    return fit_callbacks


def _phases(config: FitConfig, model: keras.Model, initial_epoch: int) -> list[_Phase]:
    """The frozen-encoder warm-up, then the rest; phases without epochs are left out."""
    # The warm-up protects pretrained encoder weights; without them there is none.
    has_backbone = bool(resolve_encoder_weights(config)) and bool(
        backbone_layers(model, config.model)
    )
    frozen_epochs = config.optimizer.frozen_backbone_epochs
    frozen_until = 0
    if frozen_epochs and not has_backbone:
        print(f"note: {config.model} has no pretrained encoder here; no frozen warm-up.")
    elif has_backbone:
        throughout = frozen_epochs == FROZEN_THROUGHOUT
        frozen_until = config.epochs if throughout else min(frozen_epochs, config.epochs)
    phases = [
        _Phase(initial_epoch, frozen_until, frozen=True if has_backbone else None),
        _Phase(max(initial_epoch, frozen_until), config.epochs, False if has_backbone else None),
    ]
    return [phase for phase in phases if phase.start < phase.stop]


def _fit_phase(config, model, phase, dataset, train_ids, validation, fit_callbacks, strategy):
    """Fits the epochs of one phase; returns their logs."""
    if phase.frozen is not None:
        _set_backbone_frozen(
            model,
            phase.frozen,
            strategy,
            config,
            models.model_info(config.model).output,
            throughout=config.optimizer.frozen_backbone_epochs == FROZEN_THROUGHOUT,
        )

    def make_epoch(image_ids, epoch, batch_size):
        return make_pipeline(
            dataset,
            epoch_order(list(image_ids), config.seed, epoch),
            image_size=tuple(config.image_size),
            resize=config.resize,
            batch_size=batch_size,
            shuffle=False,
            seed=config.seed * 100_003 + epoch,
            augment=config.augment,
        )

    inputs, steps = distributed.distributed_epochs(
        strategy, make_epoch, train_ids, config.batch_size, range(phase.start, phase.stop)
    )
    fit = model.fit(
        inputs,
        initial_epoch=phase.start,
        epochs=phase.stop,
        steps_per_epoch=steps,
        validation_data=validation,
        callbacks=fit_callbacks,
        shuffle=False,  # the order is fixed per epoch by epoch_order
        verbose=2 if distributed.is_distributed(strategy) else 1,
    )
    return [
        {key: float(values[i]) for key, values in fit.history.items()}
        for i in range(len(fit.epoch))
    ]


def _set_backbone_frozen(model, frozen, strategy, config, output, throughout=False) -> None:
    """Freezes or unfreezes the encoder and recompiles, keeping the optimiser state.

    Frozen for every epoch (``throughout``), the layers registered as the model's
    ``fixed_with_frozen_encoder`` are frozen too.
    """
    layers = backbone_layers(model, config.model)
    if frozen and throughout:
        fixed = models.model_info(config.model).fixed_with_frozen_encoder
        layers += [layer for layer in model.layers if layer.name in fixed]
    for layer in layers:
        layer.trainable = not frozen
    with strategy.scope():
        compile_model(model, config, output)


def _samples(validation: tf.data.Dataset, count: int):
    images, targets = [], []
    for image_batch, target_batch in validation:
        images.append(image_batch.numpy())
        targets.append(target_batch[SALIENCY].numpy())
        if sum(len(batch) for batch in images) >= count:
            break
    return np.concatenate(images)[:count], np.concatenate(targets)[:count]
