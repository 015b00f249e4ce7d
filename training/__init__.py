"""Command-line jobs: data preparation, training, derivation, evaluation and export.

Each job runs as ``python -m training.JOB``; ``python -m training.fit`` is the main job.
"""
