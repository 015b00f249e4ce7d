"""Command-line jobs: data preparation, training, derivation, evaluation and export.

Each job runs as ``python -m training.JOB``; ``python -m training.fit`` is the main job.
The library they drive lives in ``tfsal`` (evaluation, visualisation, models, data)
and ``serving`` (predictors); ``recipes`` holds the per-model training recipes and
``keras_private`` the one use of private Keras APIs. TensorFlow's start-up log lines
are kept out of the jobs' output (``tfsal.startup_logs``) unless
``TF_CPP_MIN_LOG_LEVEL`` is set.
"""

from tfsal.startup_logs import quiet_startup_logs

quiet_startup_logs()
