"""Procedural pop-out search arrays (P3-like) and the ``popout`` data set.

After the P3 stimuli of Kotseruba, Wloka, Rasouli & Tsotsos, "Do Saliency Models
Detect Odd-One-Out Targets? New Datasets and Evaluations" (BMVC 2019): a 7 x 7 grid of
items on grey (128), each jittered by up to 15/1024 of the image side, with one
singleton target that differs from the 48 distractors in colour (isoluminant in
CIELAB), orientation (bars) or size. Every stimulus comes with binary target and
distractor masks.

``PopoutDataset`` (format ``popout``, no path) generates them on the fly,
deterministically per seed and index, and is the offline default data set: its
records carry fixations sampled on the target and a density made from the target
mask. The metrics ``gsi``, ``msr_target``, ``msr_background`` and
``fixations_to_find`` follow ``ykotseruba/P3O3_metrics``; they live in
``tfsal.metrics.popout`` and are re-exported here.
"""

import copy
import dataclasses
import re

import cv2
import numpy as np
import scipy.ndimage

from tfsal.data.readers import SaliencyDataset, register_reader
from tfsal.data.record import SaliencyRecord

# Re-exported: stimuli and their metrics are used together.
from tfsal.metrics.popout import (  # noqa: F401
    fixations_to_find,
    gsi,
    msr_background,
    msr_target,
    target_region,
)

FAMILIES = ("colour", "orientation", "size")
GRID = 7
BACKGROUND = 128
LIGHTNESS = 70.0  # CIELAB L* of every item colour, as in P3's example image
HUE_DIFFERENCES = (30.0, 60.0, 90.0, 120.0, 180.0)  # degrees, colour family
ORIENTATION_DIFFERENCES = (15.0, 30.0, 45.0, 60.0, 90.0)  # degrees, orientation family
SIZE_RATIOS = (0.5, 0.65, 1.5, 1.7)  # target / distractor, size family
# Item geometry in grid pitches (P3: 146 px pitch, 75 px items, 15 px jitter).
JITTER = 15.0 / (1024 / GRID)
ITEM_SIZE = 0.5
BAR_LENGTH, BAR_WIDTH = 0.6, 0.15
SUPERSAMPLING = 4
# CIE XYZ of the D65 white (2 degree observer) and the sRGB primaries' XYZ matrix:
# the constants of scikit-image's rgb2lab/lab2rgb, so colours match its results.
D65_WHITE = np.array([0.95047, 1.0, 1.08883])
XYZ_FROM_LINEAR_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
LINEAR_RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_LINEAR_RGB)


@dataclasses.dataclass
class PopoutStimulus:
    """One search array and what is known about it.

    Attributes:
        image: (H, W, 3) uint8 RGB image.
        target_mask: (H, W) bool, the singleton.
        distractor_mask: (H, W) bool, the 48 distractors.
        family: "colour", "orientation" or "size".
        difference: hue difference (degrees), orientation difference (degrees) or
            size ratio of target to distractors.
        target_cell: (row, col) of the target in the 7 x 7 grid.
        target_centre: (row, col) pixel position of the target's centre.
        target_size: target diameter (bar length) in pixels.
        distractor_size: distractor diameter (bar length) in pixels.
        target_colour: (R, G, B) of the target.
        distractor_colour: (R, G, B) of the distractors (the target's too unless
            the family is "colour").
        target_angle: the target bar's long axis in degrees in [0, 180),
            anticlockwise from the image's x axis with rows pointing down (the
            log-Gabor bank's orientation convention); None for discs.
        distractor_angle: the distractor bars' long axis, as ``target_angle``.
        item_centres: (7, 7, 2) pixel position (row, col) of every item's centre.
    """

    image: np.ndarray
    target_mask: np.ndarray
    distractor_mask: np.ndarray
    family: str
    difference: float
    target_cell: tuple[int, int]
    target_centre: tuple[float, float]
    target_size: float
    distractor_size: float
    target_colour: tuple[int, int, int]
    distractor_colour: tuple[int, int, int]
    target_angle: float | None
    distractor_angle: float | None
    item_centres: np.ndarray

    def item_mask(self, cell: tuple[int, int]) -> np.ndarray:
        """The (H, W) bool mask of the item in grid ``cell`` (target or distractor)."""
        cell = tuple(int(v) for v in cell)
        if len(cell) != 2 or not all(0 <= v < GRID for v in cell):
            raise ValueError(
                f"cell must be (row, col) with 0 <= row, col < {GRID}. Received: {cell=}"
            )
        if cell == self.target_cell:
            return self.target_mask.copy()
        labels, _ = scipy.ndimage.label(self.distractor_mask)
        row, col = np.clip(np.round(self.item_centres[cell]).astype(int), 0, len(labels) - 1)
        if labels[row, col] == 0:
            raise AssertionError(
                f"no item covers the centre of cell {cell}"
            )  # items never move off it
        return labels == labels[row, col]


def isoluminant_colours(rng: np.random.Generator, hue_difference: float) -> np.ndarray:
    """Returns two uint8 RGB colours of CIELAB L* = 70 whose hues differ as asked.

    The chroma starts at 40 and shrinks until both colours lie inside the sRGB gamut.

    Args:
        rng: the random generator (draws the first hue).
        hue_difference: hue angle between the colours, in degrees.

    Returns:
        (2, 3) uint8 array: distractor colour, target colour.
    """
    first_hue = rng.uniform(0.0, 360.0)
    hues = np.radians([first_hue, first_hue + hue_difference])
    for chroma in np.arange(40.0, 0.0, -2.0):
        lab = np.stack([np.full(2, LIGHTNESS), chroma * np.cos(hues), chroma * np.sin(hues)], 1)
        rgb = lab_to_rgb(lab)  # clipped into the gamut; detected below
        colours = np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
        achieved = rgb_to_lab(colours / 255.0)
        if np.abs(achieved - lab).max() < 1.0:
            return colours
    raise AssertionError("a grey of L* = 70 is always in gamut")


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Converts CIELAB (D65) to sRGB in [0, 1], clipping colours outside the gamut.

    Args:
        lab: (..., 3) L*, a*, b*.

    Returns:
        (..., 3) sRGB.
    """
    y = (lab[..., 0] + 16.0) / 116.0
    # A negative z has no colour; clamping it is what the out-of-gamut check expects.
    xyz = np.stack([lab[..., 1] / 500.0 + y, y, np.maximum(y - lab[..., 2] / 200.0, 0.0)], -1)
    xyz = np.where(xyz > 0.2068966, xyz**3, (xyz - 16.0 / 116.0) / 7.787) * D65_WHITE
    linear = xyz @ LINEAR_RGB_FROM_XYZ.T
    with np.errstate(invalid="ignore"):  # negative values take the linear branch
        rgb = np.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, 12.92 * linear)
    return np.clip(rgb, 0.0, 1.0)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Converts sRGB in [0, 1] to CIELAB (D65).

    Args:
        rgb: (..., 3) sRGB.

    Returns:
        (..., 3) L*, a*, b*.
    """
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = linear @ XYZ_FROM_LINEAR_RGB.T / D65_WHITE
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack(
        [
            116.0 * f[..., 1] - 16.0,
            500.0 * (f[..., 0] - f[..., 1]),
            200.0 * (f[..., 1] - f[..., 2]),
        ],
        -1,
    )


def _item_polygon(centre, size, angle_degrees, family) -> np.ndarray | None:
    if family != "orientation":
        return None
    box = ((centre[1], centre[0]), (size, size * BAR_WIDTH / BAR_LENGTH), angle_degrees)
    return cv2.boxPoints(box)


def _draw(canvas, centre, size, angle_degrees, family) -> None:
    scaled_centre = np.asarray(centre) * SUPERSAMPLING
    polygon = _item_polygon(scaled_centre, size * SUPERSAMPLING, angle_degrees, family)
    if polygon is None:
        point = (round(scaled_centre[1]), round(scaled_centre[0]))
        cv2.circle(canvas, point, round(size * SUPERSAMPLING / 2), 255, thickness=-1)
    else:
        cv2.fillPoly(canvas, [np.round(polygon).astype(np.int32)], 255)


def generate_stimulus(
    seed: int, index: int, *, image_size: int = 256, family: str | None = None
) -> PopoutStimulus:
    """Generates one search array, the same for the same arguments.

    Args:
        seed: the data set's seed.
        index: the stimulus number; chooses the family (cycling) unless ``family``.
        image_size: side of the square image in pixels (P3 uses 1024).
        family: "colour", "orientation" or "size"; None cycles by ``index``.

    Returns:
        The stimulus with its masks.
    """
    if image_size < 4 * GRID:
        raise ValueError(f"image_size must be >= {4 * GRID}. Received: image_size={image_size}")
    family = FAMILIES[index % len(FAMILIES)] if family is None else family
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}. Received: family={family!r}")
    rng = np.random.default_rng([seed, index])
    pitch = image_size / GRID
    base_size = (BAR_LENGTH if family == "orientation" else ITEM_SIZE) * pitch
    sizes = np.full(2, base_size)
    angles = np.zeros(2)
    difference = 0.0
    if family == "colour":
        difference = float(rng.choice(HUE_DIFFERENCES))
    elif family == "orientation":
        difference = float(rng.choice(ORIENTATION_DIFFERENCES))
        angles[0] = rng.uniform(0.0, 180.0)
        angles[1] = angles[0] + difference * rng.choice([-1.0, 1.0])
    else:
        difference = float(rng.choice(SIZE_RATIOS))
        sizes[1] = base_size * difference
    colours = isoluminant_colours(rng, difference if family == "colour" else 0.0)
    target_cell = divmod(int(rng.integers(GRID * GRID)), GRID)
    grid = (np.arange(GRID) + 0.5) * pitch
    centres = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1)
    centres = centres + rng.uniform(-JITTER, JITTER, centres.shape) * pitch

    layers = np.zeros((2, image_size * SUPERSAMPLING, image_size * SUPERSAMPLING), np.uint8)
    for row in range(GRID):
        for col in range(GRID):
            is_target = int((row, col) == target_cell)
            _draw(layers[is_target], centres[row, col], sizes[is_target], angles[is_target], family)
    coverage = np.stack(
        [
            cv2.resize(layer, (image_size, image_size), interpolation=cv2.INTER_AREA)
            for layer in layers
        ]
    ).astype(np.float64)
    coverage /= 255.0
    image = BACKGROUND + np.einsum("khw,kc->hwc", coverage, colours.astype(np.float64) - BACKGROUND)
    # cv2 turns boxes clockwise on screen (rows down); the bank counts anticlockwise.
    bar_angles = [float(-angle % 180.0) if family == "orientation" else None for angle in angles]
    return PopoutStimulus(
        image=np.clip(np.rint(image), 0, 255).astype(np.uint8),
        target_mask=coverage[1] > 0.5,
        distractor_mask=coverage[0] > 0.5,
        family=family,
        difference=difference,
        target_cell=target_cell,
        target_centre=tuple(float(v) for v in centres[target_cell]),
        target_size=float(sizes[1]),
        distractor_size=float(sizes[0]),
        target_colour=tuple(int(v) for v in colours[1]),
        distractor_colour=tuple(int(v) for v in colours[0]),
        target_angle=bar_angles[1],
        distractor_angle=bar_angles[0],
        item_centres=centres,
    )


@register_reader("popout")
class PopoutDataset(SaliencyDataset):
    """Generated pop-out search arrays: the offline default data set (``popout``).

    Images are ``popout-0000``, ``popout-0001``, ...; families cycle colour,
    orientation, size. Each record's fixations are ``num_fixations`` pixels drawn on
    the target mask and its density is the target mask blurred by a Gaussian of a
    quarter of the target size. Everything is regenerated from (seed, index), so the
    data set costs no disk and is identical on every machine.

    Args:
        num_images: number of stimuli.
        image_size: side of the square images in pixels.
        seed: seed of the whole data set.
        num_fixations: fixations per image, all on the target.
        invalid_fixations: see ``SaliencyDataset``.
        cache: keep every array in memory once generated (about 150 KB per array at
            128 px). A run reads each training array once per epoch and each
            validation array every epoch, in the derivation and in the evaluation:
            generating its 2000 arrays once saved the default run about 20 s of CPU
            (BENCHMARKS.md, "Default run"). Callers get copies, so no caller can
            change what the next one reads.
    """

    requires_path = False

    def __init__(
        self,
        num_images: int = 300,
        image_size: int = 256,
        seed: int = 0,
        num_fixations: int = 8,
        invalid_fixations: str = "error",
        cache: bool = False,
    ):
        super().__init__(invalid_fixations=invalid_fixations)
        if num_images < 1:
            raise ValueError(f"num_images must be >= 1. Received: num_images={num_images}")
        if num_fixations < 1:
            raise ValueError(f"num_fixations must be >= 1. Received: num_fixations={num_fixations}")
        self.num_images = int(num_images)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.num_fixations = int(num_fixations)
        self.cache = bool(cache)
        # index -> (stimulus, fixations, density), filled on first use when caching.
        self._generated: dict[int, tuple[PopoutStimulus, np.ndarray, np.ndarray]] = {}
        generate_stimulus(self.seed, 0, image_size=self.image_size)  # validates image_size

    def ids(self) -> list[str]:
        """Returns ``popout-0000`` ... in index order."""
        return [f"popout-{index:04d}" for index in range(self.num_images)]

    @property
    def has_density(self) -> bool:
        """Records carry a density made from the target mask."""
        return True

    def _index(self, image_id: str) -> int:
        match = re.fullmatch(r"popout-(\d+)", str(image_id))
        if match is None or int(match.group(1)) >= self.num_images:
            raise self._unknown_id(image_id)
        return int(match.group(1))

    def stimulus(self, image_id: str) -> PopoutStimulus:
        """Returns the stimulus behind ``image_id``, with its masks."""
        index = self._index(image_id)
        if not self.cache:
            return generate_stimulus(self.seed, index, image_size=self.image_size)
        return copy.deepcopy(self._generate(index)[0])

    def load(self, image_id: str) -> SaliencyRecord:
        """Generates the record of ``image_id`` (or copies the cached one)."""
        stimulus, fixations, density = self._generate(self._index(image_id))
        return SaliencyRecord(
            image_id=image_id,
            image=stimulus.image.copy(),
            fixations=fixations.copy(),
            density=density.copy(),
        )

    def _generate(self, index: int) -> tuple[PopoutStimulus, np.ndarray, np.ndarray]:
        """The stimulus of ``index``, its fixations and its density."""
        if index in self._generated:
            return self._generated[index]
        stimulus = generate_stimulus(self.seed, index, image_size=self.image_size)
        target_pixels = np.argwhere(stimulus.target_mask).astype(np.float64)
        rng = np.random.default_rng([self.seed, index, 1])
        picks = rng.choice(
            len(target_pixels),
            self.num_fixations,
            replace=len(target_pixels) < self.num_fixations,
        )
        density = scipy.ndimage.gaussian_filter(
            stimulus.target_mask.astype(np.float32), max(1.0, stimulus.target_size / 4)
        )
        generated = stimulus, target_pixels[picks], density
        if self.cache:
            self._generated[index] = generated
        return generated
