"""Signature, input and output names shared by exporter, server, clients and tests."""

# The float-tensor endpoint of every exported SavedModel: (batch, height, width, 3)
# float32 RGB in [0, 255] -> dict of outputs.
SERVE_ENDPOINT = "serve"
DEFAULT_SIGNATURE = "serving_default"

IMAGE_INPUT = "image"
SALIENCY_OUTPUT = "saliency"

# Written next to each exported SavedModel (in its assets.extra folder): JSON with
# "model" (registry name), "output" ("log_density" or "map") and "input_size"
# ([height, width]) so evaluators and servers know how to feed the model.
METADATA_DIR = "assets.extra"
METADATA_FILE = "tfsal.json"
