"""Callbacks of the main job: atomic resumable checkpoints, early stopping, images.

A checkpoint is one ``.npz`` file per epoch, ``checkpoints/epoch-NNNN.npz``, holding
every model variable, every optimizer variable (moments, iteration count) and a JSON
record (epoch, logs, early-stopping state, the run's identity). It is written under
a temporary name and renamed into place (``tfsal.io_utils.atomic_path``), so a crash
or a full disk leaves the previous checkpoint intact, and ``--resume`` restores the
exact state of the last completed epoch.
"""

import json
import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfsal.conventions import LOG_DENSITY, SALIENCY
from tfsal.io_utils import atomic_path

CHECKPOINT_FORMAT = "tfsal-checkpoint-1"
_CHECKPOINT_NAME = re.compile(r"^epoch-(\d{4,})\.npz$")
BEST_WEIGHTS = "best.npz"


class CheckpointError(ValueError):
    """A checkpoint cannot be written or read; the message says which and why."""


def checkpoint_path(directory: str | Path, epoch: int) -> Path:
    """Returns the file of the checkpoint taken after ``epoch`` (1-based) epochs."""
    return Path(directory) / f"epoch-{epoch:04d}.npz"


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Returns the epoch checkpoints in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [path for path in directory.iterdir() if _CHECKPOINT_NAME.match(path.name)]
    return sorted(found, key=lambda path: int(_CHECKPOINT_NAME.match(path.name).group(1)))


def write_state(path: Path, model: keras.Model, record: dict, with_optimizer: bool = True):
    """Writes model (and optimizer) variables and a JSON record to ``path`` atomically.

    Raises:
        CheckpointError: if the file cannot be written (e.g. the disk is full); the
            previous file at ``path``, if any, is left as it was.
    """
    arrays = {f"model/{i:05d}": np.asarray(v) for i, v in enumerate(model.variables)}
    if with_optimizer and getattr(model, "optimizer", None) is not None:
        for i, variable in enumerate(model.optimizer.variables):
            arrays[f"optimizer/{i:05d}"] = np.asarray(variable)
    arrays["record"] = np.array(json.dumps({"format": CHECKPOINT_FORMAT, **record}))
    try:
        with atomic_path(path) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
    except OSError as error:
        raise CheckpointError(
            f"Could not write checkpoint {path}: {error.strerror or error}. "
            "The previous checkpoint is intact; free some space and rerun with --resume."
        ) from None


def read_state(path: str | Path) -> tuple[dict, list[np.ndarray], list[np.ndarray]]:
    """Reads a file written by ``write_state``.

    Returns:
        The record, the model variables and the optimizer variables.

    Raises:
        CheckpointError: if the file is missing, truncated or not a tfsal checkpoint.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as contents:
            record = json.loads(str(contents["record"]))
            model = [contents[k] for k in sorted(contents.files) if k.startswith("model/")]
            optimizer = [contents[k] for k in sorted(contents.files) if k.startswith("optimizer/")]
    except Exception as error:  # zipfile, numpy and json each raise their own kind.
        raise CheckpointError(
            f"Checkpoint {path} is corrupt or unreadable ({type(error).__name__}: {error}). "
            "Delete it to resume from the one before, or start a new run with another --out."
        ) from None
    if record.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a tfsal checkpoint (format {record.get('format')}).")
    return record, model, optimizer


def restore_state(path: str | Path, model: keras.Model, with_optimizer: bool = True) -> dict:
    """Loads a checkpoint into ``model`` (and its built optimizer); returns its record.

    Raises:
        CheckpointError: if the checkpoint is unreadable or does not fit the model.
    """
    record, model_values, optimizer_values = read_state(path)
    targets = [(model.variables, model_values, "model")]
    if with_optimizer and optimizer_values:
        targets.append((model.optimizer.variables, optimizer_values, "optimizer"))
    for variables, values, what in targets:
        shapes = [tuple(v.shape) for v in variables]
        if shapes != [value.shape for value in values]:
            raise CheckpointError(
                f"Checkpoint {path} does not fit this {what}: it holds {len(values)} "
                f"variables, the {what} has {len(shapes)} (or their shapes differ). Was it "
                "written by another model or configuration?"
            )
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
    return record


class EpochCheckpoint(keras.callbacks.Callback):
    """Writes an atomic, resumable checkpoint after every epoch.

    Also keeps ``best.npz``: the model variables of the epoch with the best
    ``monitor`` value, which evaluation and export use.

    Args:
        directory: the checkpoint folder.
        identity: the run's identity (``training.configs.run_identity``), stored so
            ``--resume`` can refuse another run's checkpoints.
        monitor: the log entry that decides the best epoch.
        mode: ``"max"`` or ``"min"``: which direction is better.
        keep: how many epoch checkpoints to keep (the newest ones); at least 2, so a
            previous one survives a checkpoint that turns out corrupt.
        extra_state: a callable returning JSON-serialisable state to store with each
            checkpoint (e.g. early stopping).
        is_chief: only the chief worker writes files in multi-worker training.
    """

    def __init__(
        self,
        directory,
        identity: dict,
        monitor: str = "val_cc",
        mode: str = "max",
        keep: int = 2,
        extra_state=None,
        is_chief: bool = True,
    ):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min'. Received: mode={mode!r}")
        if keep < 2:
            raise ValueError(f"keep must be >= 2. Received: keep={keep}")
        self.directory = Path(directory)
        self.identity = identity
        self.monitor = monitor
        self.mode = mode
        self.keep = keep
        self.extra_state = extra_state
        self.is_chief = is_chief
        self.best_value = None
        self.best_epoch = None

    def _improved(self, value) -> bool:
        if value is None or not np.isfinite(value):
            return False
        if self.best_value is None:
            return True
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def on_epoch_end(self, epoch, logs=None):
        """Writes ``epoch-NNNN.npz`` (and ``best.npz`` when the monitor improved)."""
        logs = {key: float(value) for key, value in (logs or {}).items()}
        if not np.isfinite(logs.get("loss", 0.0)):
            print(
                f"\nnote: epoch {epoch + 1} ended with a non-finite loss; not checkpointed, "
                "the previous checkpoint is kept."
            )
            return
        value = logs.get(self.monitor)
        if self._improved(value):
            self.best_value, self.best_epoch = value, epoch + 1
            if self.is_chief:
                write_state(
                    self.directory / BEST_WEIGHTS,
                    self.model,
                    {"epoch": epoch + 1, "logs": logs, "identity": self.identity},
                    with_optimizer=False,
                )
        if not self.is_chief:
            return
        record = {
            "epoch": epoch + 1,
            "logs": logs,
            "identity": self.identity,
            "best": {"value": self.best_value, "epoch": self.best_epoch},
            "extra": self.extra_state() if self.extra_state else {},
            "stop_training": bool(self.model.stop_training),
        }
        write_state(checkpoint_path(self.directory, epoch + 1), self.model, record)
        for stale in list_checkpoints(self.directory)[: -self.keep]:
            stale.unlink(missing_ok=True)

    def restore_best(self, record: dict) -> None:
        """Restores the best-epoch bookkeeping from a checkpoint record."""
        best = record.get("best") or {}
        self.best_value, self.best_epoch = best.get("value"), best.get("epoch")


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """``EarlyStopping`` whose counters survive ``--resume`` and split ``fit`` calls.

    Keras resets ``wait`` and ``best`` at the start of every ``fit``; the main job
    trains in phases (frozen backbone, then everything) and resumes from
    checkpoints, so the state is carried in ``state()`` / ``load_state()``.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._carried = None

    def state(self) -> dict:
        """Returns the counters as JSON-serialisable values."""
        best = self.best
        return {"wait": int(self.wait), "best": None if best is None else float(best)}

    def load_state(self, state: dict) -> None:
        """Sets the counters to apply at the start of the next ``fit``."""
        self._carried = dict(state)

    def on_train_begin(self, logs=None):
        """Resets as Keras does, then reapplies the carried counters."""
        super().on_train_begin(logs)
        if self._carried:
            self.wait = self._carried["wait"]
            if self._carried["best"] is not None:
                self.best = self._carried["best"]

    def on_train_end(self, logs=None):
        """Carries the counters into the next ``fit`` call."""
        super().on_train_end(logs)
        self._carried = self.state()


class SaliencyImageLogger(keras.callbacks.Callback):
    """Writes sample images, predicted and ground-truth saliency to TensorBoard.

    Args:
        log_dir: the TensorBoard folder (a ``images`` run is written inside it).
        images: ``(n, h, w, 3)`` float32 RGB in [0, 255].
        densities: ``(n, h, w)`` ground-truth densities.
        output: the model's output kind, ``"log_density"`` or ``"map"``.

    Under multi-worker training only the chief adds this callback. It calls the
    model on its own copy of the weights rather than through ``Model.predict``,
    which would shard the few sample images over the workers: a worker left with
    an empty shard fails inside the model (one validation image, two workers) and
    the other then loses its peer mid-step ("Socket closed").
    """

    def __init__(self, log_dir, images, densities, output: str = LOG_DENSITY):
        super().__init__()
        self.log_dir = str(Path(log_dir) / "images")
        self.images = np.asarray(images, "float32")
        self.densities = np.asarray(densities, "float32")
        self.output = output
        self._writer = None

    @staticmethod
    def _to_unit_range(maps: np.ndarray) -> np.ndarray:
        low = maps.min(axis=(1, 2), keepdims=True)
        high = maps.max(axis=(1, 2), keepdims=True)
        return (maps - low) / np.maximum(high - low, 1e-12)

    def on_epoch_end(self, epoch, logs=None):
        """Logs the model's saliency on the sample images."""
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        saliency = self.model(self.images, training=False)
        saliency = np.asarray(saliency[SALIENCY] if isinstance(saliency, dict) else saliency)
        saliency = saliency[..., 0]
        if self.output == LOG_DENSITY:
            saliency = np.exp(saliency - saliency.max(axis=(1, 2), keepdims=True))
        with self._writer.as_default(step=epoch + 1):
            tf.summary.image("images", self.images / 255.0, max_outputs=len(self.images))
            tf.summary.image(
                "saliency/predicted", self._to_unit_range(saliency)[..., None], len(self.images)
            )
            tf.summary.image(
                "saliency/ground_truth",
                self._to_unit_range(self.densities)[..., None],
                len(self.images),
            )
        self._writer.flush()

    def on_train_end(self, logs=None):
        """Closes the summary writer."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
