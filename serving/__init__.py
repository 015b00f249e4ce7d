"""Exporting tfsal models as SavedModels and serving them (TF Serving API).

- ``constants``: signature, input and output names (the saliency key and output
  kinds re-exported from ``tfsal.conventions``);
- ``predictor``: a SavedModel folder, a ``training.fit`` run folder or
  ``baseline:NAME`` as a predictor, ``image -> (H, W) saliency map``.

Serving imports ``tfsal`` only, never ``training``.
"""
