"""Reader of MIT1003 (Judd, Ehinger, Durand, Torralba, ICCV 2009).

Expected files, found by recursive search under ROOT (the release zips nest, e.g.
``ALLSTIMULI/ALLSTIMULI/...``):

```
ROOT/**/ALLSTIMULI/**/<stem>.jpeg                 the 1003 images
ROOT/**/ALLFIXATIONMAPS/**/<stem>_fixMap.jpg      continuous ground-truth density
ROOT/**/ALLFIXATIONMAPS/**/<stem>_fixPts.jpg      binary map, white at every fixation
```

Image identifiers are the stems. Fixations are the white pixels of ``_fixPts``
(threshold 0.5: the maps are JPEG-compressed), as 0-based (row, col); observers are
not known from these maps. The density is ``_fixMap`` normalised to sum 1.

The release holds a stray ``i05june05_static_street_boston_p1010764fixPts.jpg``
(missing underscore); it is skipped with a logged note. Other files in
ALLFIXATIONMAPS that match no stimulus are skipped with a logged count. A stimulus
without its ``_fixPts``/``_fixMap`` pair raises, or with ``missing="skip"`` is left
out with a logged count.
"""

import logging
from pathlib import Path

import numpy as np

from tfsal.data import images
from tfsal.data.readers import (
    SaliencyDataset,
    apply_missing_policy,
    check_missing_policy,
    register_reader,
    require_directory,
)
from tfsal.data.record import SaliencyRecord, check_map_size, clean_fixations

logger = logging.getLogger(__name__)

KNOWN_STRAY_FILE = "i05june05_static_street_boston_p1010764fixPts.jpg"

_FIXATION_POINTS_SUFFIX = "_fixPts"
_FIXATION_MAP_SUFFIX = "_fixMap"
_POINT_THRESHOLD = 0.5


@register_reader("mit1003")
class MIT1003Dataset(SaliencyDataset):
    """MIT1003: ``ALLSTIMULI`` images with ``ALLFIXATIONMAPS`` fixation maps.

    Args:
        root: folder holding (at any depth) ``ALLSTIMULI`` and ``ALLFIXATIONMAPS``.
        missing: "error" (default) or "skip" for stimuli without fixation maps.
        invalid_fixations: "error" or "drop" (see ``SaliencyDataset``).
    """

    def __init__(self, root: str | Path, missing: str = "error", invalid_fixations: str = "error"):
        super().__init__(invalid_fixations=invalid_fixations)
        check_missing_policy(missing)
        self.root = require_directory(root, "MIT1003 data set")
        stimuli = _images_under(self.root, "ALLSTIMULI")
        maps = _images_under(self.root, "ALLFIXATIONMAPS")
        points_files, map_files, unmatched = {}, {}, 0
        for path in maps:
            if path.name == KNOWN_STRAY_FILE:
                logger.info("MIT1003: skipping the known stray file %s.", path)
                continue
            stem, suffix = path.stem[:-7], path.stem[-7:]
            if suffix == _FIXATION_POINTS_SUFFIX:
                points_files[stem] = path
            elif suffix == _FIXATION_MAP_SUFFIX:
                map_files[stem] = path
            else:
                unmatched += 1
        if unmatched:
            logger.warning(
                "MIT1003: skipped %d files in ALLFIXATIONMAPS not named "
                "<stem>_fixPts/<stem>_fixMap.",
                unmatched,
            )
        self._entries = {}
        incomplete = []
        for path in stimuli:
            if path.stem in points_files and path.stem in map_files:
                self._entries[path.stem] = (path, points_files[path.stem], map_files[path.stem])
            else:
                incomplete.append(path.stem)
        apply_missing_policy(
            missing,
            incomplete,
            where="MIT1003",
            problem="stimuli have no <stem>_fixPts.jpg and <stem>_fixMap.jpg in ALLFIXATIONMAPS",
            skipped="stimuli without fixation maps",
            remedy="Restore them",
        )
        if not self._entries:
            raise FileNotFoundError(f"MIT1003: no stimulus with fixation maps under {self.root}.")

    @property
    def has_density(self) -> bool:
        """MIT1003 ships continuous fixation maps."""
        return True

    def ids(self) -> list[str]:
        """Returns the stimulus stems, sorted."""
        return sorted(self._entries)

    def load(self, image_id: str) -> SaliencyRecord:
        """Reads a stimulus, its fixation points and its fixation map."""
        entry = self._entries.get(image_id)
        if entry is None:
            raise self._unknown_id(image_id)
        image_path, points_path, map_path = entry
        image = images.read_image(image_path)
        points = images.read_map(points_path)
        density = images.read_map(map_path)
        for path, array in ((points_path, points), (map_path, density)):
            check_map_size(array, path, image, image_path, "MIT1003")
        fixations = np.argwhere(points > _POINT_THRESHOLD).astype(np.float64)
        if len(fixations) == 0:
            raise ValueError(f"MIT1003: {points_path} marks no fixation.")
        if density.sum() <= 0:
            raise ValueError(f"MIT1003: {map_path} is all black.")
        fixations, _ = clean_fixations(
            fixations, image.shape[:2], None, self.invalid_fixations, where=str(points_path)
        )
        return SaliencyRecord(image_id, image, fixations, density=density)


def _images_under(root: Path, folder_name: str) -> list[Path]:
    folders = [path for path in [root, *root.rglob(folder_name)] if path.name == folder_name]
    folders = [path for path in folders if path.is_dir()]
    if not folders:
        raise FileNotFoundError(f"MIT1003: no {folder_name} folder under {root}.")
    # An outer and a nested ALLSTIMULI both list the nested files: count each file once,
    # and keep one file per name (the first in path order) where copies were unpacked twice.
    found = {}
    for folder in folders:
        for path in images.list_images(folder, recursive=True):
            found[path.resolve()] = path
    by_name = {}
    for path in sorted(found.values()):
        by_name.setdefault(path.name, path)
    return sorted(by_name.values())
