"""Checkpoint import: PyTorch files read without torch, mapped onto Keras layers.

- ``read_state_dict(path)``: a PyTorch checkpoint (zip or legacy format) as
  name -> numpy array, through an allow-listed unpickler that never runs code
  and bounds what a file may cost (``read_limits``);
- ``load_keras_weights``: a Keras weight file of a whole model, with one clear
  error when it is of the wrong kind (every family's ``weights=`` loads Keras files
  through it);
- ``load_mobilenet_v2_encoder``: ImageNet MobileNetV2 weights (torchvision or
  tonylins key names) into UNISAL's encoder; ``mobilenet_v2_classifier`` builds
  the ImageNet classifier on the same encoder to check an import;
- ``load_unisal_weights``: the released UNISAL checkpoints (SALICON domain), and
  ``unisal_state_dict`` for the way back to PyTorch key names.

Models load them through ``tfsal.models.get(name, weights=..., encoder_weights=...)``.
"""

from tfsal.weights.keras_weights import load_keras_weights
from tfsal.weights.mobilenet_v2 import load_mobilenet_v2_encoder, mobilenet_v2_classifier
from tfsal.weights.torch_reader import CheckpointError, read_checkpoint, read_state_dict
from tfsal.weights.unisal import load_unisal_weights, unisal_state_dict

__all__ = [
    "CheckpointError",
    "load_keras_weights",
    "load_mobilenet_v2_encoder",
    "load_unisal_weights",
    "mobilenet_v2_classifier",
    "read_checkpoint",
    "read_state_dict",
    "unisal_state_dict",
]
