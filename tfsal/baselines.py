"""Classic saliency baselines every model is compared against.

Each baseline is a callable ``baseline(image) -> (H, W) float32 map`` at the input
size, taking an (H, W, 3) RGB image (uint8, or float in [0, 255]). They are
registered by the names the evaluation command accepts as ``baseline:NAME``:

```python
from tfsal import baselines

predict = baselines.get("spectral-residual")
saliency_map = predict(image)
```

- ``uniform``: the same value everywhere (chance level).
- ``centre-bias``: an isotropic-in-relative-units Gaussian at the image centre.
- ``fitted-centre-bias``: the mean fixation density of a training set, in relative
  coordinates (``FittedCentreBias``).
- ``spectral-residual``: Hou & Zhang, CVPR 2007 (OpenCV contrib).
- ``fine-grained``: Montabone & Soto, 2010 (OpenCV contrib).
- ``image-signature``: Hou, Harel & Koch, TPAMI 2012 (sign of the DCT).
"""

import functools
from collections.abc import Callable, Iterable

import cv2
import numpy as np
import scipy.fft
import scipy.ndimage

Baseline = Callable[[np.ndarray], np.ndarray]


def _as_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 1:
        raise ValueError(f"A baseline takes one (H, W, 3) RGB image. Received: shape={image.shape}")
    if image.dtype != np.uint8:
        if not np.isfinite(image).all():
            raise ValueError("The image contains NaN or infinite values.")
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return image


def uniform(image) -> np.ndarray:
    """Returns a constant map: every pixel equally salient."""
    height, width = _as_image(image).shape[:2]
    return np.full((height, width), 1.0 / (height * width), np.float32)


def centre_bias(image, *, sigma: float = 0.25) -> np.ndarray:
    """Returns a Gaussian centred on the image.

    Args:
        image: the image (only its size is used).
        sigma: standard deviation as a fraction of the height (vertically) and of
            the width (horizontally).
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0. Received: sigma={sigma}")
    height, width = _as_image(image).shape[:2]
    rows = (np.arange(height) + 0.5) / height - 0.5
    cols = (np.arange(width) + 0.5) / width - 0.5
    vertical = np.exp(-0.5 * (rows / sigma) ** 2)
    horizontal = np.exp(-0.5 * (cols / sigma) ** 2)
    return np.outer(vertical, horizontal).astype(np.float32)


class FittedCentreBias:
    """The average fixation density of a training set, as a baseline.

    Fixations are mapped to relative coordinates (row / H, col / W), histogrammed on
    a ``grid_size`` square grid, blurred with a Gaussian of ``bandwidth`` (a fraction
    of the image side) and stretched to each image's size. This is the "centre bias
    fitted to the training fixations" that deep models must beat.

    Args:
        relative_fixations: (N, 2) fixations in relative (row, col) coordinates in
            [0, 1].
        grid_size: resolution of the fitted map.
        bandwidth: Gaussian blur as a fraction of the image side.
    """

    def __init__(self, relative_fixations, *, grid_size: int = 64, bandwidth: float = 0.04):
        relative_fixations = np.asarray(relative_fixations, np.float64).reshape(-1, 2)
        if len(relative_fixations) == 0:
            raise ValueError("FittedCentreBias needs at least one fixation to fit.")
        if (
            not np.isfinite(relative_fixations).all()
            or ((relative_fixations < 0) | (relative_fixations > 1)).any()
        ):
            raise ValueError("relative_fixations must be finite (row, col) fractions in [0, 1].")
        if grid_size < 2 or bandwidth <= 0:
            raise ValueError(
                f"grid_size must be >= 2 and bandwidth > 0. Received: grid_size={grid_size}, "
                f"bandwidth={bandwidth}"
            )
        cells = np.minimum((relative_fixations * grid_size).astype(int), grid_size - 1)
        histogram = np.zeros((grid_size, grid_size))
        np.add.at(histogram, (cells[:, 0], cells[:, 1]), 1.0)
        density = scipy.ndimage.gaussian_filter(histogram, bandwidth * grid_size, mode="nearest")
        self.density = (density / density.sum()).astype(np.float32)
        self.num_fixations = len(relative_fixations)

    @classmethod
    def from_records(cls, records: Iterable, **kwargs) -> "FittedCentreBias":
        """Fits the map to the fixations of ``SaliencyRecord``s.

        Args:
            records: the training records (only their fixations and sizes are used).
            **kwargs: ``grid_size`` and ``bandwidth``.
        """
        relative = [
            record.fixations / np.maximum(np.asarray(record.shape, np.float64) - 1.0, 1.0)
            for record in records
            if len(record.fixations)
        ]
        if not relative:
            raise ValueError("FittedCentreBias.from_records: the records hold no fixations.")
        return cls(np.concatenate(relative), **kwargs)

    def __call__(self, image) -> np.ndarray:
        """Returns the fitted map stretched to ``image``'s size."""
        height, width = _as_image(image).shape[:2]
        resized = cv2.resize(self.density, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.maximum(resized, 0.0).astype(np.float32)

    def __repr__(self) -> str:
        return f"FittedCentreBias(fitted on {self.num_fixations} fixations)"


def _opencv_saliency(image, create) -> np.ndarray:
    bgr = cv2.cvtColor(_as_image(image), cv2.COLOR_RGB2BGR)
    ok, saliency_map = create().computeSaliency(bgr)
    if not ok:
        raise RuntimeError(f"OpenCV {create.__name__} failed on an image of shape {bgr.shape}.")
    return np.asarray(saliency_map, np.float32).reshape(bgr.shape[:2])


def spectral_residual(image) -> np.ndarray:
    """Spectral residual saliency (Hou & Zhang, CVPR 2007), OpenCV's implementation."""
    return _opencv_saliency(image, cv2.saliency.StaticSaliencySpectralResidual_create)


def fine_grained(image) -> np.ndarray:
    """Fine-grained static saliency (Montabone & Soto, 2010), OpenCV's implementation."""
    return _opencv_saliency(image, cv2.saliency.StaticSaliencyFineGrained_create)


def image_signature(image, *, width: int = 64, blur: float = 0.045) -> np.ndarray:
    """Image signature saliency (Hou, Harel & Koch, TPAMI 2012).

    The image is shrunk to ``width`` columns and converted to CIELAB; for each channel
    the signature ``IDCT(sign(DCT(x)))`` is squared, the channels summed and blurred
    by a Gaussian of ``blur`` times the width, and the result resized back.

    Args:
        image: the image.
        width: working width in pixels (aspect ratio kept).
        blur: Gaussian standard deviation as a fraction of the working width.
    """
    image = _as_image(image)
    if width < 4 or blur <= 0:
        raise ValueError(f"width must be >= 4 and blur > 0. Received: width={width}, blur={blur}")
    height, full_width = image.shape[:2]
    small_size = (width, max(4, round(height * width / full_width)))
    small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    saliency_map = np.zeros(lab.shape[:2])
    for channel in np.moveaxis(lab, -1, 0):
        signature = scipy.fft.idctn(np.sign(scipy.fft.dctn(channel, norm="ortho")), norm="ortho")
        saliency_map += signature**2
    saliency_map = scipy.ndimage.gaussian_filter(saliency_map, blur * width, mode="nearest")
    resized = cv2.resize(saliency_map.astype(np.float32), (full_width, height))
    return resized / max(float(resized.max()), np.finfo(np.float32).tiny)


_BASELINES: dict[str, Baseline] = {
    "uniform": uniform,
    "centre-bias": centre_bias,
    "spectral-residual": spectral_residual,
    "fine-grained": fine_grained,
    "image-signature": image_signature,
}
FITTED_CENTRE_BIAS = "fitted-centre-bias"


def list_baselines() -> list[str]:
    """Returns the names ``get`` accepts, sorted."""
    return sorted([*_BASELINES, FITTED_CENTRE_BIAS])


def get(name: str, *, training_records: Iterable | None = None, **kwargs) -> Baseline:
    """Returns the baseline registered as ``name``.

    Args:
        name: one of ``list_baselines()``.
        training_records: ``SaliencyRecord``s to fit ``fitted-centre-bias`` to.
        **kwargs: the baseline's options (e.g. ``sigma`` for ``centre-bias``).

    Returns:
        A callable mapping an (H, W, 3) image to an (H, W) float32 map.

    Raises:
        ValueError: for an unknown name, or ``fitted-centre-bias`` without records.
    """
    if name == FITTED_CENTRE_BIAS:
        if training_records is None:
            raise ValueError(
                f"Baseline {name!r} is fitted to training fixations: pass training_records."
            )
        return FittedCentreBias.from_records(training_records, **kwargs)
    if name not in _BASELINES:
        raise ValueError(
            f"Unknown baseline {name!r}. Known baselines: {', '.join(list_baselines())}."
        )
    return functools.partial(_BASELINES[name], **kwargs) if kwargs else _BASELINES[name]
