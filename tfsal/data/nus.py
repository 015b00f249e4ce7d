"""Reader of the NUS scene saliency data set (Liang, Jiang, Liang, Zhao, NUS VIP 2015).

Expected files, the original release's layout (../shared/datasets/nus-scene/README.md):

```
ROOT/stimuli/NNN.jpg      images; NNN is the 1-based image number (zero-padded)
ROOT/fixations.mat        variable `fixations`: (num_images, num_observers) cell array;
                          cell (NNN-1, s) is an (N, 4) float64 array of observer s's
                          fixations: column 0 = row (y), column 1 = column (x), both
                          1-based MATLAB pixels, then onset and duration in seconds.
ROOT/imgInfo.mat          optional; variable `imgInfo` with field `size`: (num_images, 2)
                          (height, width) per image number, checked against the images.
```

Image identifiers are the stimulus file stems ("001"). Fixations become 0-based by
subtracting 1; the few that the eye tracker placed less than a pixel before the first
pixel centre are clamped onto the border (see ``tfsal.data.record``). Observers are the
cell-array column. Densities are made from the fixations (``tfsal.data.density``).
"""

import logging
from pathlib import Path

import numpy as np

from tfsal.data import images
from tfsal.data.readers import SaliencyDataset, load_mat, register_reader, require_directory
from tfsal.data.record import SaliencyRecord, clean_fixations

logger = logging.getLogger(__name__)


@register_reader("nus")
class NUSDataset(SaliencyDataset):
    """The NUS scene data set: ``stimuli/NNN.jpg`` plus ``fixations.mat``.

    Args:
        root: the data set folder.
        invalid_fixations: "error" or "drop" (see ``SaliencyDataset``).
    """

    def __init__(self, root: str | Path, invalid_fixations: str = "error"):
        super().__init__(invalid_fixations=invalid_fixations)
        self.root = require_directory(root, "NUS scene data set")
        stimuli = require_directory(self.root / "stimuli", "NUS stimuli (stimuli/NNN.jpg)")
        self._fixations = _load_fixation_cells(self.root / "fixations.mat")
        self._sizes = _load_sizes(self.root / "imgInfo.mat")
        self._paths = {}
        for path in images.list_images(stimuli):
            if not path.stem.isdigit():
                logger.warning("NUS: skipping %s, whose name is not an image number.", path)
                continue
            self._paths[path.stem] = path
        if not self._paths:
            raise FileNotFoundError(f"NUS: no images found in {stimuli}.")
        beyond = [i for i in self._paths if int(i) < 1 or int(i) > self._fixations.shape[0]]
        if beyond:
            raise ValueError(
                f"NUS: images {beyond[:5]} have no row in fixations.mat, which covers "
                f"images 1..{self._fixations.shape[0]}."
            )

    def ids(self) -> list[str]:
        """Returns the image stems ("001", ...) in numerical order."""
        return sorted(self._paths, key=int)

    def load(self, image_id: str) -> SaliencyRecord:
        """Reads one image with its fixations (0-based row, col) and observers."""
        path = self._paths.get(image_id)
        if path is None:
            raise self._unknown_id(image_id)
        image = images.read_image(path)
        number = int(image_id)
        if self._sizes is not None and tuple(self._sizes[number - 1]) != image.shape[:2]:
            raise ValueError(
                f"NUS: {path} is {image.shape[0]}x{image.shape[1]} but imgInfo.mat says "
                f"{self._sizes[number - 1][0]}x{self._sizes[number - 1][1]}."
            )
        cells = self._fixations[number - 1]
        blocks, observers = [], []
        for observer, cell in enumerate(cells):
            cell = np.asarray(cell, dtype=np.float64)
            if cell.size == 0:
                continue
            if cell.ndim != 2 or cell.shape[1] < 2:
                raise ValueError(
                    f"NUS: fixations.mat cell ({number - 1}, {observer}) must be an (N, 4) "
                    f"array. Received: shape={cell.shape}"
                )
            blocks.append(cell[:, :2] - 1.0)
            observers.append(np.full(len(cell), observer, dtype=np.int32))
        if not blocks:
            raise ValueError(f"NUS: image {image_id} ({path}) has no fixations in fixations.mat.")
        fixations, observer_ids = clean_fixations(
            np.concatenate(blocks),
            image.shape[:2],
            np.concatenate(observers),
            self.invalid_fixations,
            where=f"NUS image {image_id}",
        )
        return SaliencyRecord(image_id, image, fixations, observers=observer_ids)


def _load_fixation_cells(path: Path) -> np.ndarray:
    contents = load_mat(path, "NUS eye-tracking data (fixations.mat)")
    if "fixations" not in contents:
        raise ValueError(f"NUS: {path} has no variable 'fixations'.")
    cells = contents["fixations"]
    if cells.dtype != object or cells.ndim != 2:
        raise ValueError(
            f"NUS: {path} variable 'fixations' must be a 2-D cell array. "
            f"Received: dtype={cells.dtype}, shape={cells.shape}"
        )
    return cells


def _load_sizes(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    info = load_mat(path, "NUS image sizes (imgInfo.mat)").get("imgInfo")
    if info is None or info.dtype.names is None or "size" not in info.dtype.names:
        raise ValueError(f"NUS: {path} must hold a struct 'imgInfo' with a field 'size'.")
    return np.asarray(info["size"][0, 0], dtype=np.int64)
