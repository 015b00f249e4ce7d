"""Reader of a generic folder of images with optional maps and fixations.

Expected files:

```
ROOT/images/<stem>.<ext>        images (jpg, jpeg, png, bmp, tif, tiff, webp)
ROOT/maps/<stem>.<ext>          optional continuous density maps, any image format,
                                grayscale (colour maps are averaged), same size as
                                the image; normalised to sum 1 when read
ROOT/fixations/<stem>.csv       optional fixations, one per line: ``row,col`` or
                                ``row,col,observer``; 0-based pixel coordinates of
                                the original image (fractions allowed), observers
                                whole numbers from 0; line 1 may be a header of
                                column names (words only, e.g. ``row,col,observer``),
                                any other line that is not numbers is an error
ROOT/fixations/<stem>.npy       alternatively, an (N, 2) or (N, 3) array in the same
                                column order
```

Image identifiers are the image stems. When ``maps/`` or ``fixations/`` exists, every
image must have its file there; ``missing="skip"`` leaves such images out with a
logged count instead of raising. With neither folder, records carry no fixations and
no density (enough for prediction, not for training).
"""

import csv
import re
from collections.abc import Iterable
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
from tfsal.data.record import (
    SaliencyRecord,
    as_observer_ids,
    check_map_size,
    clean_fixations,
)

FIXATION_SUFFIXES = (".csv", ".npy")
# A header names the columns: words only, e.g. "row,col,observer" or "y, x".
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*")


@register_reader("folder")
class FolderDataset(SaliencyDataset):
    """A folder with ``images/``, optional ``maps/`` and optional ``fixations/``.

    Args:
        root: the data set folder.
        missing: "error" (default) or "skip" for images without their map or
            fixation file.
        invalid_fixations: "error" or "drop" (see ``SaliencyDataset``).
    """

    def __init__(self, root: str | Path, missing: str = "error", invalid_fixations: str = "error"):
        super().__init__(invalid_fixations=invalid_fixations)
        check_missing_policy(missing)
        self.root = require_directory(root, "folder data set")
        image_folder = require_directory(self.root / "images", "folder data set images (images/)")
        self._images = _by_stem(images.list_images(image_folder))
        if not self._images:
            raise FileNotFoundError(f"folder data set: no images in {image_folder}.")
        maps_folder, fixations_folder = self.root / "maps", self.root / "fixations"
        self._maps = _by_stem(images.list_images(maps_folder)) if maps_folder.is_dir() else None
        self._fixations = (
            _by_stem(
                path
                for path in sorted(fixations_folder.iterdir())
                if path.is_file() and path.suffix.lower() in FIXATION_SUFFIXES
            )
            if fixations_folder.is_dir()
            else None
        )
        incomplete = sorted(
            stem
            for stem in self._images
            if (self._maps is not None and stem not in self._maps)
            or (self._fixations is not None and stem not in self._fixations)
        )
        apply_missing_policy(
            missing,
            incomplete,
            where="folder data set",
            problem="images have no file in maps/ or fixations/",
            skipped="images without map or fixation file",
            remedy="Add them",
        )
        for stem in incomplete:
            del self._images[stem]
        if not self._images:
            raise FileNotFoundError(f"folder data set: no complete image under {self.root}.")

    @property
    def has_fixations(self) -> bool:
        """Whether the folder has ``fixations/``."""
        return self._fixations is not None

    @property
    def has_density(self) -> bool:
        """Whether the folder has ``maps/``."""
        return self._maps is not None

    def ids(self) -> list[str]:
        """Returns the image stems, sorted."""
        return sorted(self._images)

    def load(self, image_id: str) -> SaliencyRecord:
        """Reads an image with its fixations and map, where the folder has them."""
        path = self._images.get(image_id)
        if path is None:
            raise self._unknown_id(image_id)
        image = images.read_image(path)
        fixations, observers = np.zeros((0, 2)), None
        if self._fixations is not None:
            fixation_path = self._fixations[image_id]
            fixations, observers = read_fixation_file(fixation_path)
            if len(fixations) == 0:
                raise ValueError(f"folder data set: {fixation_path} holds no fixation.")
            fixations, observers = clean_fixations(
                fixations, image.shape[:2], observers, self.invalid_fixations, str(fixation_path)
            )
        density = None
        if self._maps is not None:
            map_path = self._maps[image_id]
            density = images.read_map(map_path)
            check_map_size(density, map_path, image, path, "folder data set")
            if density.sum() <= 0:
                raise ValueError(f"folder data set: {map_path} is all black.")
        return SaliencyRecord(image_id, image, fixations, observers=observers, density=density)


def read_fixation_file(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Reads a ``.csv`` or ``.npy`` fixation file of the folder format.

    Args:
        path: the file.

    Returns:
        (N, 2) float64 ``(row, col)`` fixations and (N,) int32 observers or None.
    """
    if path.suffix.lower() == ".npy":
        try:
            table = np.load(path, allow_pickle=False)
        except (OSError, EOFError, ValueError) as error:
            # The reason only, not the message: NumPy quotes the bytes it found.
            raise ValueError(
                f"{path}: not a readable NumPy array of fixations ({type(error).__name__})."
            ) from error
        if table.dtype.kind not in "iuf":
            raise ValueError(
                f"{path}: fixations must be numbers. Received: an array of dtype {table.dtype}"
            )
    else:
        table = _read_csv(path)
    table = np.asarray(table, dtype=np.float64)
    if table.size == 0:
        return np.zeros((0, 2)), None
    if table.ndim != 2 or table.shape[1] not in (2, 3):
        raise ValueError(
            f"{path}: fixations must have 2 columns (row, col) or 3 (row, col, observer). "
            f"Received: shape={table.shape}"
        )
    observers = as_observer_ids(table[:, 2], str(path)) if table.shape[1] == 3 else None
    return table[:, :2], observers


def _by_stem(paths: Iterable[Path]) -> dict[str, Path]:
    """Indexes files by stem, refusing two files with one stem (which would be a guess)."""
    by_stem: dict[str, Path] = {}
    for path in paths:
        if path.stem in by_stem:
            raise ValueError(
                f"folder data set: {by_stem[path.stem]} and {path} share the stem "
                f"{path.stem!r}; keep one of them."
            )
        by_stem[path.stem] = path
    return by_stem


def _read_csv(path: Path) -> list[list[float]]:
    """Reads the numbers of a fixation CSV; messages give line numbers, never content.

    The path may point at any file (a typo, a link), so no line of it is echoed.
    """
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            try:
                for fields in reader:
                    if not fields or all(not field.strip() for field in fields):
                        continue
                    numbers = _numbers(fields)
                    if numbers is not None:
                        rows.append(numbers)
                    elif not (reader.line_num == 1 and _is_header(fields)):
                        raise ValueError(
                            f"{path}, line {reader.line_num}: expected numbers "
                            f"'row,col[,observer]', but not all of its {len(fields)} field(s) "
                            "are numbers (only line 1 may be a header of column names)."
                        )
            except csv.Error as error:  # e.g. a NUL byte: a binary file
                raise ValueError(
                    f"{path}, line {reader.line_num + 1}: not CSV text; is this a fixation file?"
                ) from error
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: not a UTF-8 text file of fixations (byte {error.start} is not text)."
        ) from error
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        raise ValueError(f"{path}: lines have different numbers of columns {sorted(widths)}.")
    return rows


def _numbers(fields: list[str]) -> list[float] | None:
    try:
        return [float(field) for field in fields]
    except ValueError:
        return None


def _is_header(fields: list[str]) -> bool:
    """Whether every field is a column name, such as ``row,col,observer``."""
    return all(_COLUMN_NAME.fullmatch(field.strip()) for field in fields)
