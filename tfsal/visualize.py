"""Saliency maps as pictures: colour-mapped heat maps, overlays on images, PNG files.

Every picture is ``(h, w, 3)`` uint8 RGB. Maps of any range are min-max normalised
before colour mapping (a constant map becomes the colour of 0), so log-densities,
densities and raw scores draw alike; ``write_png`` writes atomically, so a report
reader never sees half a file.
"""

from pathlib import Path

import cv2
import numpy as np

from tfsal.io_utils import atomic_path


def heatmap(saliency: np.ndarray, colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """Colour-maps a saliency map, min-max normalised.

    Args:
        saliency: ``(h, w)`` map of any range.
        colormap: an OpenCV colour map (``cv2.COLORMAP_*``).

    Returns:
        ``(h, w, 3)`` uint8 RGB.

    Raises:
        ValueError: if ``saliency`` is not a non-empty finite 2-D map.
    """
    saliency = np.asarray(saliency, np.float64)
    if saliency.ndim != 2 or saliency.size == 0 or not np.isfinite(saliency).all():
        raise ValueError(
            "saliency must be a non-empty finite (h, w) map. "
            f"Received: shape={saliency.shape}, finite={bool(np.isfinite(saliency).all())}"
        )
    span = saliency.max() - saliency.min()
    unit = (saliency - saliency.min()) / span if span > 0 else np.zeros_like(saliency)
    heat = cv2.applyColorMap((unit * 255).astype(np.uint8), colormap)
    return cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)


def overlay(image: np.ndarray, saliency: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Blends a saliency map onto an image as a colour heat map.

    Args:
        image: ``(h, w, 3)`` RGB, uint8 or float in [0, 255].
        saliency: ``(h, w)`` map of any range (min-max normalised here).
        opacity: weight of the heat map, in [0, 1].

    Returns:
        ``(h, w, 3)`` uint8 RGB.

    Raises:
        ValueError: if ``opacity`` is outside [0, 1] or the shapes do not match.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1]. Received: opacity={opacity}")
    image = np.clip(np.asarray(image, np.float32), 0, 255).astype(np.uint8)
    heat = heatmap(saliency)
    if image.shape != heat.shape:
        raise ValueError(
            "image must be (h, w, 3) with the saliency map's (h, w). "
            f"Received: image {image.shape}, saliency {heat.shape[:2]}"
        )
    return cv2.addWeighted(image, 1 - opacity, heat, opacity, 0)


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Writes an RGB picture as PNG, atomically.

    Args:
        path: the destination file (its folder is created).
        rgb: ``(h, w, 3)`` uint8 RGB.

    Returns:
        The path written.

    Raises:
        ValueError: if ``rgb`` is not ``(h, w, 3)`` uint8 or cannot be encoded.
    """
    path = Path(path)
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8 or rgb.size == 0:
        raise ValueError(
            f"rgb must be a non-empty (h, w, 3) uint8 picture. "
            f"Received: shape={rgb.shape}, dtype={rgb.dtype}"
        )
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"Could not encode {path.name} as PNG.")
    with atomic_path(path) as temporary:
        temporary.write_bytes(encoded.tobytes())
    return path
