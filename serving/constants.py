"""Signature, input and output names shared by exporter, server, clients and tests.

Every SavedModel written by ``serving.export`` has these signatures (TF Serving's
``signature_name``), whatever model it holds:

- ``serving_default`` (``DEFAULT_SIGNATURE``): ``image_bytes`` (a batch of encoded
  JPEG/PNG strings) -> ``saliency`` (batch, Hmax, Wmax) float32, each image's map at
  its own resolution padded with zeros to the largest image of the batch, and
  ``height``/``width`` (batch,) int32, each image's size;
- ``predict_tensor`` (``TENSOR_SIGNATURE``): ``images`` (batch, H, W, 3) float32 RGB in
  [0, 255], any size -> ``saliency`` (batch, H, W);
- ``explain`` (``EXPLAIN_SIGNATURE``, explainable models only): as ``serving_default``
  plus one ``reconstruction_<tap>`` per tap, on the model's canvas, and (``linear``
  readouts) ``contributions`` (batch, Hmax, Wmax, groups);
- ``serve`` (``SERVE_ENDPOINT``): the Keras model itself, as ``model.export()`` writes
  it: (batch, h, w, 3) at the model's input size -> its raw outputs (a log-density for
  log-density models), for libraries that fit images themselves (``serving.predictor``).
"""

from tfsal.conventions import (  # noqa: F401  (re-exported for serving's users)
    CONTRIBUTIONS,
    LOG_DENSITY,
    MAP,
    OUTPUT_KINDS,
    RECONSTRUCTION_PREFIX,
    SALIENCY,
    reconstruction_key,
)

DEFAULT_SIGNATURE = "serving_default"
TENSOR_SIGNATURE = "predict_tensor"
EXPLAIN_SIGNATURE = "explain"
SERVE_ENDPOINT = "serve"

IMAGE_BYTES_INPUT = "image_bytes"
IMAGES_INPUT = "images"
IMAGE_INPUT = "image"  # the input of ``serve``

SALIENCY_OUTPUT = SALIENCY
HEIGHT_OUTPUT = "height"
WIDTH_OUTPUT = "width"
CONTRIBUTIONS_OUTPUT = CONTRIBUTIONS

# What the served ``saliency`` holds, by the model's output kind: a log-density model's
# map is exponentiated and renormalised over each image's own pixels (a fixation
# density summing to 1); a "map" model's scores are only cropped and resized.
SERVED_DENSITY, SERVED_MAP = "density", "map"

# Decoded images larger than this are refused from their header, before decoding
# (decompression bombs): 25 megapixels is a 6000x4000 camera frame.
MAX_IMAGE_PIXELS = 25_000_000
MAX_IMAGE_SIDE = 16_384
# One request's outputs are (batch, Hmax, Wmax) floats: bound batch x Hmax x Wmax.
MAX_BATCH_PIXELS = 4 * MAX_IMAGE_PIXELS

# Written next to each exported SavedModel (in its assets.extra folder): JSON with
# "model" (registry name), "output" ("log_density" or "map"), "input_size"
# ([height, width]) and "resize" so evaluators and servers know how to feed the
# model, plus the signatures, the served map kind and, for explainable models, the
# taps (with each one's stride and channels) and contribution groups.
METADATA_DIR = "assets.extra"
METADATA_FILE = "tfsal.json"
# An explainable model's Keras file, in its version folder beside the SavedModel
# (which keeps the computation but not the layers the report and Grad-CAM read).
KERAS_MODEL_FILE = "model.keras"
WARMUP_FILE = "tf_serving_warmup_requests"  # in METADATA_DIR, as TF Serving expects
MAX_WARMUP_RECORDS = 1000  # TF Serving's WarmupConsts::kMaxNumRecords

# Server configuration files written beside the model folders of a base path.
MODEL_CONFIG_FILE = "models.config"
BATCHING_PARAMETERS_FILE = "batching_parameters.txt"
MONITORING_CONFIG_FILE = "monitoring.config"
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"

GRPC_PORT, REST_PORT = 8500, 8501
DEFAULT_MODEL_NAME = "saliency"
