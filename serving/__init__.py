"""Exporting tfsal models as SavedModels and serving them (TF Serving API).

- ``constants``: signature, input and output names (the saliency key and output
  kinds re-exported from ``tfsal.conventions``);
- ``predictor``: a SavedModel folder, a ``training.fit`` run folder or
  ``baseline:NAME`` as a predictor, ``image -> (H, W) saliency map``;
- ``server`` (``python -m serving.server``): a local server speaking TF Serving's gRPC
  and REST APIs, built from ``model_config`` (which models), ``model_manager``
  (polling, version states, hot swap), ``servable`` (signature calls), ``rest`` and
  ``rest_json`` (REST), ``grpc_service`` (gRPC and health), ``api_messages`` (status and
  metadata messages) and ``errors`` (TF Serving's codes and HTTP statuses).

Serving imports ``tfsal`` only, never ``training``. Its commands
(``python -m serving.predict``, ``python -m serving.explain``) keep TensorFlow's
start-up log lines out of their output (``tfsal.startup_logs``, installed here, the
only code that runs before such a module imports TensorFlow) unless
``TF_CPP_MIN_LOG_LEVEL`` is set.
"""

from tfsal.startup_logs import quiet_startup_logs

quiet_startup_logs()
