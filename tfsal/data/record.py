"""The record every data set reader returns: one image and its eye-tracking data.

Coordinate convention, shared by all readers: fixations are ``(row, col)`` in pixels
of the original image, 0-based, with pixel centres on integers, so a valid fixation
satisfies ``0 <= row <= H - 1`` and ``0 <= col <= W - 1``. Readers convert from the
data set's own convention (MATLAB 1-based ``x, y`` and so on) before building a
record, and ``SaliencyRecord`` refuses anything else.
"""

import dataclasses
import logging

import numpy as np

logger = logging.getLogger(__name__)

INVALID_FIXATION_POLICIES = ("error", "drop")

# Eye trackers report sub-pixel positions; a fixation up to one pixel beyond the
# first or last pixel centre still lies on the border pixel and is clamped onto it.
BORDER_TOLERANCE_PX = 1.0

_MAX_OBSERVER = int(np.iinfo(np.int32).max)


@dataclasses.dataclass
class SaliencyRecord:
    """One image of a saliency data set with its fixations and density.

    Attributes:
        image_id: identifier of the image inside its data set.
        image: (H, W, 3) uint8 RGB image.
        fixations: (N, 2) float64 ``(row, col)`` fixations, 0-based, in original
            pixels; shape (0, 2) when the data set has none for this image.
        observers: (N,) int32 observer index of every fixation, or None when the
            data set does not say.
        density: (H, W) float32 ground-truth density summing to 1, or None when it is
            to be made from the fixations (``tfsal.data.density``).
    """

    image_id: str
    image: np.ndarray
    fixations: np.ndarray
    observers: np.ndarray | None = None
    density: np.ndarray | None = None

    def __post_init__(self):
        where = f"record {self.image_id!r}"
        image = np.asarray(self.image)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"{where}: image must be an (H, W, 3) uint8 RGB array. "
                f"Received: shape={image.shape}, dtype={image.dtype}"
            )
        height, width = image.shape[:2]
        fixations = np.asarray(self.fixations, dtype=np.float64).reshape(-1, 2)
        check_fixations(fixations, (height, width), where)
        self.image = image
        self.fixations = fixations
        if self.observers is not None:
            observers = as_observer_ids(self.observers, where)
            if len(observers) != len(fixations):
                raise ValueError(
                    f"{where}: observers must have one entry per fixation. "
                    f"Received: {len(observers)} observers for {len(fixations)} fixations"
                )
            self.observers = observers
        if self.density is not None:
            density = np.asarray(self.density, dtype=np.float32)
            if density.shape != (height, width):
                raise ValueError(
                    f"{where}: density must have the image's shape {(height, width)}. "
                    f"Received: shape={density.shape}"
                )
            total = float(density.sum(dtype=np.float64))
            if not np.isfinite(total) or total <= 0 or density.min() < 0:
                raise ValueError(f"{where}: density must be finite, non-negative and not all zero.")
            self.density = density / np.float32(total)

    @property
    def shape(self) -> tuple[int, int]:
        """The original image's (height, width)."""
        return self.image.shape[:2]

    @property
    def has_fixations(self) -> bool:
        """Whether the record holds at least one fixation."""
        return len(self.fixations) > 0


def as_observer_ids(observers, where: str) -> np.ndarray:
    """Returns observer indices as (N,) int32, refusing values that are not indices.

    An observer index is a whole number in [0, 2**31 - 1]. Casting anything else
    would change it silently (0.5 -> 0, 1e12 -> a wrapped-around number), merging
    or splitting observers.

    Args:
        observers: the indices, any numeric array (floats must be whole numbers).
        where: names the record or file in the message.

    Raises:
        ValueError: for values that are not whole numbers in range.
    """
    values = np.asarray(observers).reshape(-1)
    if values.dtype.kind not in "iuf" and values.dtype != np.bool_:
        raise ValueError(
            f"{where}: observers must be whole numbers. Received: dtype={values.dtype}"
        )
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(values) & (values >= 0) & (values <= _MAX_OBSERVER)
        if values.dtype.kind == "f":
            valid &= values == np.floor(values)
    if not valid.all():
        first = int(np.argmax(~valid))
        raise ValueError(
            f"{where}: {int((~valid).sum())} of {len(values)} observer ids are not whole "
            f"numbers in [0, {_MAX_OBSERVER}] (first: entry {first}, {values[first]!r}); "
            "observer ids index the observers from 0."
        )
    return values.astype(np.int32)


def check_fixations(fixations: np.ndarray, shape: tuple[int, int], where: str) -> None:
    """Raises a ValueError if any fixation is NaN, infinite or outside the image.

    Args:
        fixations: (N, 2) 0-based ``(row, col)`` fixations.
        shape: the image's (height, width).
        where: names the record or file in the message.
    """
    invalid = ~_valid_mask(fixations, shape)
    if invalid.any():
        first = fixations[np.argmax(invalid)]
        raise ValueError(
            f"{where}: {int(invalid.sum())} of {len(fixations)} fixations are NaN or "
            f"outside the {shape[0]}x{shape[1]} image (first: row={first[0]}, "
            f"col={first[1]}); 0-based (row, col) must satisfy 0 <= row <= "
            f"{shape[0] - 1} and 0 <= col <= {shape[1] - 1}. Open the data set with "
            "invalid_fixations='drop' to skip such fixations."
        )


def check_map_size(values: np.ndarray, path, image: np.ndarray, image_path, where: str) -> None:
    """Raises a ValueError if a map (or mask) read for an image is not the image's size.

    Args:
        values: the (H, W) map.
        path: the map's file, named in the message.
        image: the (H, W, 3) image it belongs to.
        image_path: the image's file (or record), named in the message.
        where: the data set, e.g. ``"MIT1003"``.
    """
    if values.shape != image.shape[:2]:
        size = "x".join(str(n) for n in values.shape)
        raise ValueError(
            f"{where}: {path} is {size} but its image {image_path} is "
            f"{image.shape[0]}x{image.shape[1]}; maps must have their image's size."
        )


def clean_fixations(
    fixations: np.ndarray,
    shape: tuple[int, int],
    observers: np.ndarray | None,
    policy: str,
    where: str,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Clamps border fixations and applies ``policy`` to invalid ones.

    Fixations within ``BORDER_TOLERANCE_PX`` of the image are clamped onto it;
    NaN, infinite or farther ones raise (``policy="error"``) or are dropped with a
    logged count (``policy="drop"``).

    Args:
        fixations: (N, 2) 0-based ``(row, col)`` fixations.
        shape: the image's (height, width).
        observers: (N,) observer indices or None.
        policy: "error" or "drop".
        where: names the record or file in messages.

    Returns:
        The cleaned fixations (float64) and observers.
    """
    if policy not in INVALID_FIXATION_POLICIES:
        raise ValueError(
            f"invalid_fixations must be one of {INVALID_FIXATION_POLICIES}. "
            f"Received: invalid_fixations={policy!r}"
        )
    fixations = np.asarray(fixations, dtype=np.float64).reshape(-1, 2)
    limits = np.asarray(shape, dtype=np.float64) - 1.0
    with np.errstate(invalid="ignore"):
        within_tolerance = np.all(
            (fixations >= -BORDER_TOLERANCE_PX) & (fixations <= limits + BORDER_TOLERANCE_PX),
            axis=1,
        )
    if not within_tolerance.all():
        if policy == "error":
            check_fixations(fixations, shape, where)
        logger.warning(
            "%s: dropped %d of %d fixations that are NaN or outside the %dx%d image.",
            where,
            int((~within_tolerance).sum()),
            len(fixations),
            shape[0],
            shape[1],
        )
        fixations = fixations[within_tolerance]
        if observers is not None:
            observers = np.asarray(observers)[within_tolerance]
    fixations = np.clip(fixations, 0.0, limits)
    return fixations, observers


def _valid_mask(fixations: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    limits = np.asarray(shape, dtype=np.float64) - 1.0
    with np.errstate(invalid="ignore"):
        return np.all((fixations >= 0) & (fixations <= limits), axis=1)
