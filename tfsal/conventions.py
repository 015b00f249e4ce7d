"""Names and kinds shared by every part of tfsal: models, data, training and serving.

This module imports nothing of tfsal, so any module may import it; ``serving.constants``
re-exports what serving needs.

- ``SALIENCY``: the key of the saliency map in every model's dict output and in the
  data pipelines' targets.
- ``OUTPUT_KINDS``: what ``SALIENCY`` holds: ``"log_density"`` (``exp`` sums to 1 over
  the pixels of each image) or ``"map"`` (any monotone saliency score).
- ``CONTRIBUTIONS``: the key of an explainable model's per-pixel contribution maps,
  ``(batch, height, width, groups)``, one channel per feature group plus the prior,
  summing to the saliency logits.
- ``reconstruction_key(tap)``: the key of an explainable model's reconstruction of a
  parent's tap.
"""

SALIENCY = "saliency"
CONTRIBUTIONS = "contributions"
LOG_DENSITY, MAP = "log_density", "map"
OUTPUT_KINDS = (LOG_DENSITY, MAP)
RECONSTRUCTION_PREFIX = "reconstruction_"


def reconstruction_key(tap: str) -> str:
    """The output key of the reconstruction of ``tap`` in an explainable model."""
    return RECONSTRUCTION_PREFIX + tap
