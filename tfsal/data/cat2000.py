"""Reader of CAT2000 (Borji & Itti, "CAT2000: a large scale fixation dataset", 2015).

Expected files (the training set; the test set's fixations are not public):

```
ROOT/Stimuli/<Category>/NNN.jpg          images (20 categories x 100, mostly 1920x1080)
ROOT/FIXATIONMAPS/<Category>/NNN.jpg     continuous ground-truth maps
ROOT/FIXATIONLOCS/<Category>/NNN.mat     variable `fixLocs`: binary (H, W) map, nonzero
                                         at every fixated pixel
```

ROOT may also be the folder above ``trainSet``. Image identifiers are
``<Category>/NNN``. Sub-folders named ``Output`` (model outputs in some copies) are
ignored. Fixations are the nonzero pixels of ``fixLocs`` as 0-based (row, col);
observers are unknown. The density is the FIXATIONMAPS image normalised to sum 1.
Stimuli are read as stored, ignoring EXIF rotation (``testSet/Stimuli/Pattern/134.jpg``
carries a wrong one). A stimulus without its ``.mat`` and map raises, or with
``missing="skip"`` is left out with a logged count.
"""

from pathlib import Path

import numpy as np

from tfsal.data import images
from tfsal.data.readers import (
    SaliencyDataset,
    apply_missing_policy,
    check_missing_policy,
    load_mat,
    register_reader,
    require_directory,
)
from tfsal.data.record import SaliencyRecord, check_map_size, clean_fixations

_IGNORED_FOLDERS = ("Output",)


@register_reader("cat2000")
class CAT2000Dataset(SaliencyDataset):
    """CAT2000 training set: ``Stimuli``, ``FIXATIONMAPS`` and ``FIXATIONLOCS``.

    Args:
        root: the ``trainSet`` folder (or the folder holding it).
        categories: categories to read; default all.
        missing: "error" (default) or "skip" for stimuli without fixation data.
        invalid_fixations: "error" or "drop" (see ``SaliencyDataset``).
    """

    def __init__(
        self,
        root: str | Path,
        categories: tuple[str, ...] | None = None,
        missing: str = "error",
        invalid_fixations: str = "error",
    ):
        super().__init__(invalid_fixations=invalid_fixations)
        check_missing_policy(missing)
        root = require_directory(root, "CAT2000 data set")
        if not (root / "Stimuli").is_dir() and (root / "trainSet" / "Stimuli").is_dir():
            root = root / "trainSet"
        self.root = root
        stimuli = require_directory(root / "Stimuli", "CAT2000 stimuli (Stimuli/<Category>)")
        maps = require_directory(root / "FIXATIONMAPS", "CAT2000 maps (FIXATIONMAPS/<Category>)")
        locations = require_directory(
            root / "FIXATIONLOCS", "CAT2000 fixations (FIXATIONLOCS/<Category>/*.mat)"
        )
        found = sorted(
            path.name
            for path in stimuli.iterdir()
            if path.is_dir() and path.name not in _IGNORED_FOLDERS
        )
        if categories is not None:
            unknown = sorted(set(categories) - set(found))
            if unknown:
                raise ValueError(
                    f"CAT2000: categories {unknown} are not in {stimuli}. Known: {found}"
                )
            found = [name for name in found if name in categories]
        self._entries: dict[str, tuple[Path, Path, Path]] = {}
        incomplete = []
        for category in found:
            for image_path in images.list_images(stimuli / category):
                image_id = f"{category}/{image_path.stem}"
                map_path = _find_map(maps / category, image_path.stem)
                mat_path = locations / category / f"{image_path.stem}.mat"
                if map_path is None or not mat_path.is_file():
                    incomplete.append(image_id)
                    continue
                self._entries[image_id] = (image_path, map_path, mat_path)
        apply_missing_policy(
            missing,
            incomplete,
            where="CAT2000",
            problem="stimuli lack FIXATIONMAPS/FIXATIONLOCS files",
            skipped="stimuli without fixation data",
            remedy="Restore them",
        )
        if not self._entries:
            raise FileNotFoundError(f"CAT2000: no stimulus with fixation data under {root}.")

    @property
    def has_density(self) -> bool:
        """CAT2000 ships continuous fixation maps."""
        return True

    def ids(self) -> list[str]:
        """Returns ``<Category>/NNN`` identifiers, sorted."""
        return sorted(self._entries)

    def load(self, image_id: str) -> SaliencyRecord:
        """Reads a stimulus, its ``fixLocs`` fixations and its fixation map."""
        entry = self._entries.get(image_id)
        if entry is None:
            raise self._unknown_id(image_id)
        image_path, map_path, mat_path = entry
        image = images.read_image(image_path)
        density = images.read_map(map_path)
        contents = load_mat(mat_path, "CAT2000 fixations")
        if "fixLocs" not in contents:
            raise ValueError(f"CAT2000: {mat_path} must hold a binary map 'fixLocs'.")
        locations = np.asarray(contents["fixLocs"])
        for path, array in ((map_path, density), (mat_path, locations)):
            check_map_size(array, path, image, image_path, "CAT2000")
        fixations = np.argwhere(locations > 0).astype(np.float64)
        if len(fixations) == 0:
            raise ValueError(f"CAT2000: {mat_path} marks no fixation.")
        if density.sum() <= 0:
            raise ValueError(f"CAT2000: {map_path} is all black.")
        fixations, _ = clean_fixations(
            fixations, image.shape[:2], None, self.invalid_fixations, str(mat_path)
        )
        return SaliencyRecord(image_id, image, fixations, density=density)


def _find_map(folder: Path, stem: str) -> Path | None:
    for suffix in (".jpg", ".png", ".jpeg"):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None
