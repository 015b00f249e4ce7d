"""Saliency data sets: readers, densities, splits, tf.data pipelines and TFRecords.

Open any supported data set with ``open_dataset("FORMAT:PATH")``; ``list_formats()``
names the formats. Every reader returns ``SaliencyRecord`` objects with 0-based
``(row, col)`` fixations in original pixels.
"""

# Importing a reader module registers its format.
from tfsal.data import cat2000, folder, mit1003, nus, popout, salicon  # noqa: F401
from tfsal.data.checks import check_records
from tfsal.data.density import density_from_fixations, fixation_map
from tfsal.data.pipeline import make_pipeline
from tfsal.data.readers import SaliencyDataset, list_formats, open_dataset, register_reader
from tfsal.data.record import SaliencyRecord
from tfsal.data.splits import split_ids

__all__ = [
    "SaliencyDataset",
    "SaliencyRecord",
    "check_records",
    "density_from_fixations",
    "fixation_map",
    "list_formats",
    "make_pipeline",
    "open_dataset",
    "register_reader",
    "split_ids",
]
