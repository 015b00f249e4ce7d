"""TF Serving warmup records: ``assets.extra/tf_serving_warmup_requests``.

TF Serving replays these requests when it loads a version, before the version is
marked AVAILABLE, so the first real request does not pay for lazy initialisation
(graph optimisation, kernel and cuFFT plan creation). The file is a TFRecord of
serialized ``tensorflow.serving.PredictionLog`` messages, at most 1000 of them; each
names its signature, so one record per signature and typical batch size covers them.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from serving import constants
from tfsal.io_utils import atomic_path


def warmup_image(size: Sequence[int]) -> np.ndarray:
    """A deterministic (h, w, 3) uint8 picture: colour ramps and a bright disc."""
    height, width = (int(v) for v in size)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp_down, ramp_across = rows / max(height - 1, 1), cols / max(width - 1, 1)
    disc = np.hypot(rows - height / 3, cols - width / 3) < min(height, width) / 6
    image = np.stack([ramp_across, ramp_down, 1.0 - ramp_across], axis=-1) * 200.0
    image[disc] = 255.0
    return image.astype(np.uint8)


def predict_log(name: str, signature: str, input_name: str, value) -> bytes:
    """One serialized ``PredictionLog`` holding a ``PredictRequest``."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(value))
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )
    return log.SerializeToString()


def warmup_records(
    name: str,
    input_size: Sequence[int],
    bytes_signatures: Sequence[str],
    batch_sizes: Sequence[int] = (1,),
) -> list[bytes]:
    """The warmup records of one model.

    Every bytes signature at every batch size, and the tensor signature at batch 1
    and the model's input size.

    Raises:
        ValueError: for a batch size below 1 or more than 1000 records.
    """
    if not batch_sizes or min(batch_sizes) < 1:
        raise ValueError(f"batch_sizes must be >= 1. Received: batch_sizes={batch_sizes!r}")
    count = len(bytes_signatures) * len(batch_sizes) + 1
    if count > constants.MAX_WARMUP_RECORDS:
        raise ValueError(
            f"TF Serving reads at most {constants.MAX_WARMUP_RECORDS} warmup records; "
            f"{len(bytes_signatures)} signatures x {len(batch_sizes)} batch sizes give "
            f"{count}. Use fewer batch sizes."
        )
    image = warmup_image(input_size)
    encoded = tf.io.encode_jpeg(image, quality=90).numpy()
    records = [
        predict_log(
            name, signature, constants.IMAGE_BYTES_INPUT, np.array([encoded] * size, dtype=object)
        )
        for signature in bytes_signatures
        for size in batch_sizes
    ]
    records.append(
        predict_log(
            name,
            constants.TENSOR_SIGNATURE,
            constants.IMAGES_INPUT,
            image[None].astype(np.float32),
        )
    )
    return records


def write_warmup_requests(
    path: str | Path,
    name: str,
    input_size: Sequence[int],
    bytes_signatures: Sequence[str],
    batch_sizes: Sequence[int] = (1,),
) -> Path:
    """Writes the warmup TFRecord of one model atomically; returns its path."""
    records = warmup_records(name, input_size, bytes_signatures, batch_sizes)
    path = Path(path)
    with atomic_path(path) as temporary, tf.io.TFRecordWriter(str(temporary)) as writer:
        for record in records:
            writer.write(record)
    return path
