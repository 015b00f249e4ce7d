"""Reader of SALICON (Jiang, Huang, Duan, Zhao, CVPR 2015; images from MS-COCO 2014).

Two releases are read. The 2017 release (LSUN'17; used by UNISAL and most recent work):

```
ROOT/images/{train,val,test}/COCO_*.jpg
ROOT/fixations/{train,val}/COCO_*.mat   keys `image`, `resolution` ([480 640]) and
                                         `gaze`: one struct per observer with fields
                                         `location` (raw mouse samples), `timestamp`
                                         and `fixations`: (M, 2) [x, y], 1-based.
ROOT/maps/{train,val}/COCO_*.png        optional grayscale ground-truth maps
```

The 2015 release (chosen with ``release="2015"``): the same ``images/`` folder (or
images directly under ROOT) and COCO-style JSON files ``fixations_{train,val}2014.json``
under ROOT or ``ROOT/fixations/``, each with ``images[{id, file_name, width, height}]``
and ``annotations[{image_id, worker_id, fixations: [[row, col], ...]}]``, 1-based,
row first as the official salicon-api's ``buildFixMap`` reads them.

Image identifiers are the file stems (``COCO_train2014_000000000009``); only images
with fixations are listed (the test split has none). Observers are the ``gaze``
index (2017) or the ``worker_id`` (2015). Densities come from ``maps/`` when present
(2017), else from the fixations (``tfsal.data.density``). The two releases differ in
how fixations were derived from mouse movements; say which one results used.
"""

import json
from pathlib import Path

import numpy as np

from tfsal.data import images
from tfsal.data.readers import SaliencyDataset, load_mat, register_reader, require_directory
from tfsal.data.record import (
    SaliencyRecord,
    as_observer_ids,
    check_map_size,
    clean_fixations,
)

RELEASES = ("2017", "2015")


@register_reader("salicon")
class SALICONDataset(SaliencyDataset):
    """SALICON, 2017 ``.mat`` fixations or 2015 COCO-style JSON.

    Args:
        root: the data set folder.
        release: "2017" (default) or "2015".
        splits: which splits to read, e.g. ("train",); default all with fixations.
        invalid_fixations: "error" or "drop" (see ``SaliencyDataset``).
    """

    def __init__(
        self,
        root: str | Path,
        release: str = "2017",
        splits: tuple[str, ...] = ("train", "val"),
        invalid_fixations: str = "error",
    ):
        super().__init__(invalid_fixations=invalid_fixations)
        if str(release) not in RELEASES:
            raise ValueError(f"release must be one of {RELEASES}. Received: release={release!r}")
        self.release = str(release)
        self.root = require_directory(root, f"SALICON {self.release} data set")
        image_paths = {
            path.stem: path
            for folder in (self.root / "images", self.root)
            if folder.is_dir()
            for path in images.list_images(folder, recursive=folder != self.root)
        }
        self._images = image_paths
        self._maps: dict[str, Path] = {}
        self._fixation_files: dict[str, Path] = {}
        self._annotations: dict[str, list[tuple[int, np.ndarray]]] = {}
        if self.release == "2017":
            self._index_2017(splits)
        else:
            self._index_2015(splits)
        missing = sorted(set(self._ids) - set(image_paths))
        if missing:
            raise FileNotFoundError(
                f"SALICON: {len(missing)} images with fixations are missing from "
                f"{self.root / 'images'} (first: {missing[:3]})."
            )

    def _index_2017(self, splits: tuple[str, ...]) -> None:
        fixation_root = require_directory(
            self.root / "fixations", "SALICON 2017 fixations (fixations/{train,val}/*.mat)"
        )
        for split in splits:
            for path in sorted((fixation_root / split).glob("*.mat")):
                self._fixation_files[path.stem] = path
            for path in sorted((self.root / "maps" / split).glob("*.png")):
                self._maps[path.stem] = path
        if not self._fixation_files:
            raise FileNotFoundError(
                f"SALICON: no .mat fixation files in {fixation_root}/{{{','.join(splits)}}}."
            )
        self._ids = sorted(self._fixation_files)

    def _index_2015(self, splits: tuple[str, ...]) -> None:
        files = [
            folder / f"fixations_{split}2014.json"
            for split in splits
            for folder in (self.root, self.root / "fixations")
            if (folder / f"fixations_{split}2014.json").is_file()
        ]
        if not files:
            raise FileNotFoundError(
                f"SALICON 2015: no fixations_{{{','.join(splits)}}}2014.json in {self.root} "
                f"or {self.root / 'fixations'}."
            )
        for path in files:
            try:
                with open(path, encoding="utf-8") as handle:
                    contents = json.load(handle)
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                raise ValueError(
                    f"SALICON 2015: {path} is not a readable JSON file ({error}); re-download it."
                ) from error
            try:
                stems = {item["id"]: Path(item["file_name"]).stem for item in contents["images"]}
                for annotation in contents["annotations"]:
                    stem = stems[annotation["image_id"]]
                    points = np.asarray(annotation["fixations"], dtype=np.float64).reshape(-1, 2)
                    # Checked as an observer id when the record is built; None: unknown.
                    worker = annotation.get("worker_id")
                    self._annotations.setdefault(stem, []).append((worker, points))
            except (KeyError, TypeError, ValueError) as error:
                # The reason is not quoted: it would echo values from the file.
                raise ValueError(
                    f"SALICON 2015: {path} is not a COCO-style fixation file: it needs "
                    "'images' with 'id' and 'file_name', and 'annotations' with 'image_id' "
                    f"and numeric 'fixations' ({type(error).__name__})."
                ) from error
        self._ids = sorted(self._annotations)

    @property
    def has_density(self) -> bool:
        """Whether ground-truth maps (2017 ``maps/``) cover every image."""
        return bool(self._maps) and set(self._ids) <= set(self._maps)

    def ids(self) -> list[str]:
        """Returns the stems of the images that have fixations, sorted."""
        return list(self._ids)

    def load(self, image_id: str) -> SaliencyRecord:
        """Reads an image with its per-observer fixations (and map, if any)."""
        if image_id not in self._fixation_files and image_id not in self._annotations:
            raise self._unknown_id(image_id)
        image = images.read_image(self._images[image_id])
        if self.release == "2017":
            source = self._fixation_files[image_id]
            per_observer = _read_gaze(source)
            # The .mat files store [x, y]; records use (row, col).
            per_observer = [(observer, points[:, ::-1]) for observer, points in per_observer]
        else:
            source = f"SALICON 2015 annotations of {image_id}"
            per_observer = self._annotations[image_id]
        blocks = [points - 1.0 for _, points in per_observer if len(points)]
        if not blocks:
            raise ValueError(f"SALICON: {source} holds no fixation for {image_id}.")
        observers = None
        if all(observer is not None for observer, _ in per_observer):
            observers = as_observer_ids(
                np.concatenate(
                    [np.full(len(points), observer) for observer, points in per_observer]
                ),
                str(source),
            )
        fixations, observers = clean_fixations(
            np.concatenate(blocks), image.shape[:2], observers, self.invalid_fixations, str(source)
        )
        density = None
        if image_id in self._maps:
            density = images.read_map(self._maps[image_id])
            check_map_size(density, self._maps[image_id], image, self._images[image_id], "SALICON")
        return SaliencyRecord(image_id, image, fixations, observers=observers, density=density)


def _read_gaze(path: Path) -> list[tuple[int, np.ndarray]]:
    contents = load_mat(path, "SALICON 2017 fixations")
    try:
        gaze = contents["gaze"]
        fields = gaze.dtype.names or ()
        if "fixations" not in fields:
            raise KeyError("gaze.fixations")
        return [
            (observer, np.asarray(entry["fixations"], dtype=np.float64).reshape(-1, 2))
            for observer, entry in enumerate(gaze.reshape(-1))
        ]
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(
            f"SALICON: {path} is not a 2017 fixation file with a 'gaze' struct holding "
            f"'fixations' ({error!r})."
        ) from error
