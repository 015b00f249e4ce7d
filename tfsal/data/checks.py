"""Checking a data set's records before training reads them.

A record that cannot be read (a truncated image, a fixation outside its image, a
density that vanishes at the model size) fails inside ``tf.data`` as a long
TensorFlow traceback in the middle of an epoch, and a resume meets it again.
``check_records`` reads every record once, with a progress bar, the way the
pipeline will, and raises one error that lists the images that fail and why (each
reader's message names the file).

Policy: nothing is skipped silently. Readers opened with
``invalid_fixations="drop"`` (and ``missing="skip"`` where a reader has it) leave
out bad fixations or incomplete images with a logged count, as documented there;
what is still unreadable is an error.
"""

import concurrent.futures
import logging
import os
from collections.abc import Sequence

from tqdm.auto import tqdm

from tfsal.data import targets
from tfsal.data.readers import SaliencyDataset

logger = logging.getLogger(__name__)

# Failures listed in the message; the count covers all of them.
_LISTED_FAILURES = 5


class RecordCheckError(ValueError):
    """Some records of a data set cannot be used; the message lists them."""


def check_records(
    dataset: SaliencyDataset,
    image_ids: Sequence[str] | None = None,
    image_size: tuple[int, int] | None = None,
    resize: str = "pad",
) -> None:
    """Reads every record once and raises if any cannot be used for training.

    Args:
        dataset: the data set.
        image_ids: the images to check; default all.
        image_size: also build each training target at this model (height, width),
            as the pipeline will (catches densities that vanish when resized).
        resize: "pad" or "stretch", used with ``image_size``.

    Raises:
        RecordCheckError: listing how many images fail and, for the first few,
            the image identifier and the reason (naming the file).
    """
    image_ids = list(dataset.ids() if image_ids is None else image_ids)
    if image_size is not None:
        image_size = targets.check_resize_arguments(image_size, resize)

    def problem(image_id: str) -> str | None:
        try:
            record = dataset.load(image_id)
            if image_size is not None:
                targets.make_example(
                    record.image, record.fixations, record.density, image_size, resize, image_id
                )
            elif not (record.has_fixations or record.density is not None):
                raise ValueError("it has neither fixations nor a density map")
        except (ValueError, OSError, KeyError) as error:
            return f"{image_id!r}: {error}"
        return None

    # Decoding releases the GIL, and the pipeline already calls ``load`` from
    # several threads, so threads check as fast as the pipeline will read.
    with concurrent.futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        problems = tqdm(
            pool.map(problem, image_ids),
            total=len(image_ids),
            desc=f"Checking {dataset.name} images",
            unit="image",
        )
        failures = [message for message in problems if message is not None]
    if failures:
        listed = "\n  ".join(failures[:_LISTED_FAILURES])
        more = len(failures) - _LISTED_FAILURES
        raise RecordCheckError(
            f"{len(failures)} of {len(image_ids)} images of the {dataset.name} data set "
            f"cannot be used:\n  {listed}"
            + (f"\n  ... and {more} more." if more > 0 else "")
            + "\nRepair or remove those files (or leave the images out) and run again."
        )
    logger.info("Checked %d %s images: all readable.", len(image_ids), dataset.name)
