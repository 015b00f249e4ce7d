r"""TF Serving configuration files for a folder of exported models.

``python -m serving.server_config BASE`` writes, beside the model folders
``BASE/NAME/VERSION/``:

- ``models.config``: a text-format ``ModelServerConfig`` listing every model
  (``--model_config_file``), each served from ``SERVING_ROOT/NAME`` (``/models`` in the
  Docker image, where ``BASE`` is mounted);
- ``batching_parameters.txt``: a text-format ``BatchingParameters``
  (``--enable_batching --batching_parameters_file``);
- ``monitoring.config``: a text-format ``MonitoringConfig`` exposing Prometheus metrics
  at ``/monitoring/prometheus/metrics`` on the REST port (``--monitoring_config_file``).

Batching merges concurrent requests along the batch axis. ``serving_default`` and
``explain`` batch safely whatever the image sizes, because their input is the
(batch,) tensor of encoded strings: with batching, ``saliency`` may come back padded
to the largest image of the *server's* batch, so always crop by ``height``/``width``.
``predict_tensor`` requests merged into one batch must share H and W (TF Serving
refuses mixed shapes with padding off, which is how these parameters leave it:
zero-padding an image would change its map).
"""

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving import constants
from tfsal.io_utils import atomic_write_text


@dataclasses.dataclass(frozen=True)
class BatchingSettings:
    """TF Serving's ``BatchingParameters`` (the fields this project sets).

    The defaults suit one GPU serving images online: batches of up to 8 are formed
    within 2 ms; ``allowed_batch_sizes`` keeps the number of distinct batch shapes (and
    so of cuFFT plans and autotuned kernels) at four; a short queue bounds latency
    under overload (TF Serving answers UNAVAILABLE when it is full).

    Attributes:
        max_batch_size: the largest batch formed.
        batch_timeout_micros: how long a request waits for others to join its batch.
        allowed_batch_sizes: batches are padded up to the next of these sizes;
            increasing, the last equal to ``max_batch_size``.
        num_batch_threads: batches processed in parallel.
        max_enqueued_batches: the queue length, in batches.
    """

    max_batch_size: int = 8
    batch_timeout_micros: int = 2000
    allowed_batch_sizes: tuple[int, ...] = (1, 2, 4, 8)
    num_batch_threads: int = 4
    max_enqueued_batches: int = 16

    def __post_init__(self):
        for field in ("max_batch_size", "num_batch_threads", "max_enqueued_batches"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1. Received: {field}={getattr(self, field)}")
        if self.batch_timeout_micros < 0:
            raise ValueError(
                "batch_timeout_micros must be >= 0. "
                f"Received: batch_timeout_micros={self.batch_timeout_micros}"
            )
        sizes = tuple(self.allowed_batch_sizes)
        increasing = all(a < b for a, b in zip(sizes, sizes[1:], strict=False))
        if sizes and (not increasing or sizes[0] < 1 or sizes[-1] != self.max_batch_size):
            raise ValueError(
                "allowed_batch_sizes must increase and end with max_batch_size "
                f"({self.max_batch_size}). Received: allowed_batch_sizes={sizes}"
            )

    def to_text(self) -> str:
        """The text-format ``BatchingParameters`` message."""
        lines = [
            f"max_batch_size {{ value: {self.max_batch_size} }}",
            f"batch_timeout_micros {{ value: {self.batch_timeout_micros} }}",
            f"max_enqueued_batches {{ value: {self.max_enqueued_batches} }}",
            f"num_batch_threads {{ value: {self.num_batch_threads} }}",
        ]
        lines += [f"allowed_batch_sizes: {size}" for size in self.allowed_batch_sizes]
        return "\n".join(lines) + "\n"


def model_server_config(models: Mapping[str, str]) -> str:
    """The text-format ``ModelServerConfig`` serving ``models`` (name -> base path)."""
    config = model_server_config_pb2.ModelServerConfig()
    for name, base_path in sorted(models.items()):
        config.model_config_list.config.add(
            name=name, base_path=str(base_path), model_platform="tensorflow"
        )
    return text_format.MessageToString(config)


def monitoring_config(path: str = constants.PROMETHEUS_PATH) -> str:
    """The text-format ``MonitoringConfig`` exposing Prometheus metrics at ``path``."""
    return f'prometheus_config {{\n  enable: true\n  path: "{path}"\n}}\n'


def exported_models(base_path: str | Path) -> list[str]:
    """Names of the folders under ``base_path`` holding a numbered SavedModel version."""
    base = Path(base_path)
    return sorted(
        folder.name
        for folder in base.iterdir()
        if folder.is_dir()
        and any(v.name.isdigit() and (v / "saved_model.pb").is_file() for v in folder.iterdir())
    )


def write_server_configs(
    base_path: str | Path,
    serving_root: str = "/models",
    batching: BatchingSettings | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Writes the three configuration files into ``base_path`` (atomically).

    Args:
        base_path: the folder holding ``NAME/VERSION/`` model folders.
        serving_root: where the server sees ``base_path`` (``/models`` in the Docker
            image); models are served from ``serving_root/NAME``.
        batching: the batching parameters; default ``BatchingSettings()``.
        names: the models to list; default every exported model under ``base_path``.

    Returns:
        The written files by kind ("models", "batching", "monitoring").

    Raises:
        ValueError: if ``base_path`` holds no exported model.
    """
    base = Path(base_path)
    if not base.is_dir():
        raise ValueError(f"{base} is not a folder; export a model into it first.")
    names = list(names) if names is not None else exported_models(base)
    if not names:
        raise ValueError(
            f"{base} holds no exported model (NAME/VERSION/saved_model.pb); export one first."
        )
    root = serving_root.rstrip("/") or "/"
    files = {
        "models": (
            base / constants.MODEL_CONFIG_FILE,
            model_server_config({name: f"{root}/{name}" for name in names}),
        ),
        "batching": (
            base / constants.BATCHING_PARAMETERS_FILE,
            (batching or BatchingSettings()).to_text(),
        ),
        "monitoring": (base / constants.MONITORING_CONFIG_FILE, monitoring_config()),
    }
    for path, text in files.values():
        atomic_write_text(path, text)
    return {kind: path for kind, (path, _) in files.items()}


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: write the server configuration files for a base folder."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.server_config", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("base", help="the folder holding NAME/VERSION/ exported models")
    parser.add_argument(
        "--serving-root",
        default="/models",
        help="where the server sees BASE (default /models, the Docker image's mount point; "
        "pass BASE's absolute path for a local server)",
    )
    parser.add_argument("--max-batch-size", type=int, default=BatchingSettings.max_batch_size)
    parser.add_argument(
        "--batch-timeout-micros", type=int, default=BatchingSettings.batch_timeout_micros
    )
    parser.add_argument("--num-batch-threads", type=int, default=BatchingSettings.num_batch_threads)
    args = parser.parse_args(argv)
    sizes = [1]
    while sizes[-1] * 2 < args.max_batch_size:
        sizes.append(sizes[-1] * 2)
    if sizes[-1] != args.max_batch_size:
        sizes.append(args.max_batch_size)
    try:
        batching = BatchingSettings(
            max_batch_size=args.max_batch_size,
            batch_timeout_micros=args.batch_timeout_micros,
            allowed_batch_sizes=tuple(sizes),
            num_batch_threads=args.num_batch_threads,
        )
        written = write_server_configs(args.base, args.serving_root, batching)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    for kind, path in written.items():
        print(f"{kind}: {os.fspath(path)}")


if __name__ == "__main__":
    main()
