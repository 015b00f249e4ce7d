"""Signature, input and output names shared by exporter, server, clients and tests.

The saliency key and the output kinds are ``tfsal.conventions``'; they are named here
again so serving code reads every name it needs from one module.
"""

from tfsal import conventions

# The float-tensor endpoint of every exported SavedModel: (batch, height, width, 3)
# float32 RGB in [0, 255] -> dict of outputs.
SERVE_ENDPOINT = "serve"
DEFAULT_SIGNATURE = "serving_default"

IMAGE_INPUT = "image"
SALIENCY_OUTPUT = conventions.SALIENCY
CONTRIBUTIONS_OUTPUT = conventions.CONTRIBUTIONS
OUTPUT_KINDS = conventions.OUTPUT_KINDS

# Written next to each exported SavedModel (in its assets.extra folder): JSON with
# "model" (registry name), "output" (one of OUTPUT_KINDS) and "input_size"
# ([height, width]) so evaluators and servers know how to feed the model.
METADATA_DIR = "assets.extra"
METADATA_FILE = "tfsal.json"
