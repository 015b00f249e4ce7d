"""The private Keras APIs tfsal touches, in one module, behind a version guard.

Multi-worker training (``tf.distribute.MultiWorkerMirroredStrategy``) meets two Keras 3
bugs, checked with the versions in ``CHECKED_KERAS_VERSIONS``:

- every train and test log is reduced with ``strategy.reduce("MEAN", value, axis=0)``
  (``keras.src.backend.tensorflow.trainer.reduce_per_replica``), which fails for the
  scalar losses and metrics ("Invalid reduction dimension 0");
  ``patch_multi_worker_log_reduction`` averages scalars over the workers without an
  axis instead, leaving every other reduction to Keras;
- model, loss and metrics are built lazily from the first distributed batch, which
  Keras averages with ``strategy.reduce`` over the whole ``(image, targets)`` tuple;
  the strategy cannot reduce a nested structure and raises.
  ``build_before_multi_worker_fit`` builds every state from a local batch
  (``Model._symbolic_build``) and skips the lazy step (``_maybe_symbolic_build``).

Both first call ``check_keras``: on a Keras version not in ``CHECKED_KERAS_VERSIONS``,
or one without the private names used here, they raise ``KerasCompatibilityError``
instead of patching blindly. ``tests/training/test_keras_private.py`` fails as soon
as the installed Keras is not a checked one, so an upgrade re-checks the bugs (run
``tests/training/test_distributed.py`` without the workarounds) before this module
is extended or removed.
"""

import importlib

import keras
import tensorflow as tf

# Keras major.minor versions whose multi-worker bugs and private names were checked.
CHECKED_KERAS_VERSIONS = ("3.15",)
_TRAINER_MODULE = "keras.src.backend.tensorflow.trainer"
_MODEL_METHODS = ("_symbolic_build", "_maybe_symbolic_build")


class KerasCompatibilityError(RuntimeError):
    """The installed Keras is not one the private-API workarounds were checked with."""


def installed_keras_version() -> str:
    """Returns the installed Keras as ``major.minor``."""
    return ".".join(keras.__version__.split(".")[:2])


def missing_private_apis() -> list[str]:
    """Returns the private Keras names used here that the installed Keras lacks."""
    missing = []
    try:
        trainer = importlib.import_module(_TRAINER_MODULE)
    except ImportError:
        return [_TRAINER_MODULE]
    if not callable(getattr(trainer, "reduce_per_replica", None)):
        missing.append(f"{_TRAINER_MODULE}.reduce_per_replica")
    missing += [f"keras.Model.{name}" for name in _MODEL_METHODS if not hasattr(keras.Model, name)]
    return missing


def check_keras() -> None:
    """Raises unless the installed Keras is a checked version with every private name.

    Raises:
        KerasCompatibilityError: saying what to re-check.
    """
    version = installed_keras_version()
    if version not in CHECKED_KERAS_VERSIONS:
        raise KerasCompatibilityError(
            f"Multi-worker training works around Keras bugs through private APIs checked "
            f"with Keras {', '.join(CHECKED_KERAS_VERSIONS)}; Keras {keras.__version__} is "
            "installed. Re-check the bugs described in training/keras_private.py and add "
            "the version to CHECKED_KERAS_VERSIONS (or remove the workaround), or install "
            f"Keras {CHECKED_KERAS_VERSIONS[-1]}."
        )
    missing = missing_private_apis()
    if missing:
        raise KerasCompatibilityError(
            f"Keras {keras.__version__} lacks {', '.join(missing)}, which the multi-worker "
            "workarounds in training/keras_private.py patch; re-check them."
        )


def patch_multi_worker_log_reduction() -> None:
    """Averages scalar logs over the workers without an axis (process-wide, once).

    Raises:
        KerasCompatibilityError: see ``check_keras``.
    """
    check_keras()
    trainer = importlib.import_module(_TRAINER_MODULE)
    original = trainer.reduce_per_replica
    if getattr(original, "tfsal_patched", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and isinstance(
            strategy, tf.distribute.MultiWorkerMirroredStrategy
        ):
            return tf.nest.map_structure(
                lambda value: strategy.reduce("MEAN", value, axis=None), values
            )
        return original(values, strategy, reduction)

    reduce_per_replica.tfsal_patched = True
    trainer.reduce_per_replica = reduce_per_replica


def build_before_multi_worker_fit(
    model: keras.Model, strategy: tf.distribute.Strategy, batches: tf.data.Dataset
) -> None:
    """Builds model, loss and metrics from a local batch before a multi-worker ``fit``.

    Args:
        model: the compiled model.
        strategy: the multi-worker strategy.
        batches: batches of this worker's own pipeline (one is read).

    Raises:
        KerasCompatibilityError: see ``check_keras``.
    """
    check_keras()
    with strategy.scope():
        model._symbolic_build(data_batch=next(iter(batches)))
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
