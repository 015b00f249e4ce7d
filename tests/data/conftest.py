"""Tiny data sets written in each real on-disk format by the tests themselves."""

import json

import cv2
import numpy as np
import pytest
import scipy.io

from tfsal.data.readers import SaliencyDataset
from tfsal.data.record import SaliencyRecord


def pipeline_elements(pipeline):
    """Returns a pipeline's images and saliency targets, all batches concatenated."""
    images, saliency = [], []
    for image, target in pipeline:
        images.append(image.numpy())
        saliency.append(target["saliency"].numpy())
    return np.concatenate(images), np.concatenate(saliency)


def random_image(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_rgb(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def write_gray(path, array, params=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array, list(params))


def fixation_cells(fixations_by_observer):
    """MATLAB cell row: one (N, 4) array per observer (row, col, onset, duration)."""
    cells = np.empty((1, len(fixations_by_observer)), dtype=object)
    for observer, points in enumerate(fixations_by_observer):
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        extra = np.tile([[0.1, 0.2]], (len(points), 1))
        cells[0, observer] = np.hstack([points, extra]) if len(points) else np.zeros((0, 4))
    return cells


def write_nus(root, images_and_fixations):
    """images_and_fixations: {number: (image, [observer 1-based (row, col) arrays])}."""
    count = max(images_and_fixations)
    observers = max(len(value[1]) for value in images_and_fixations.values())
    cells = np.empty((count, observers), dtype=object)
    for row in range(count):
        for col in range(observers):
            cells[row, col] = np.zeros((0, 4))
    sizes = np.zeros((count, 2), dtype=np.uint16)
    for number, (image, per_observer) in images_and_fixations.items():
        write_rgb(root / "stimuli" / f"{number:03d}.jpg", image)
        cells[number - 1, : len(per_observer)] = fixation_cells(per_observer)[0]
        sizes[number - 1] = image.shape[:2]
    scipy.io.savemat(root / "fixations.mat", {"fixations": cells})
    info = np.zeros((1, 1), dtype=[("size", object)])
    info[0, 0]["size"] = sizes
    scipy.io.savemat(root / "imgInfo.mat", {"imgInfo": info})
    return root


@pytest.fixture
def tiny_nus(tmp_path):
    """Two images, 2 observers; MATLAB 1-based fixations."""
    return write_nus(
        tmp_path / "nus",
        {
            1: (random_image(20, 30, 1), [[(1, 1), (20, 30)], [(10.5, 15.25)]]),
            3: (random_image(24, 16, 2), [[(5, 6)], [(24, 16), (0.5, 0.6)]]),
        },
    )


def write_mit1003(root, stems_shapes_points, nested=True, stray=True):
    stimuli = root / "ALLSTIMULI" / ("ALLSTIMULI" if nested else "")
    maps = root / "ALLFIXATIONMAPS"
    for index, (stem, (height, width), points) in enumerate(stems_shapes_points):
        write_rgb(stimuli / f"{stem}.jpeg", random_image(height, width, index))
        point_map = np.zeros((height, width), np.uint8)
        for row, col in points:
            point_map[row, col] = 255
        # Quality 100 keeps isolated white pixels isolated, as in the release.
        write_gray(maps / f"{stem}_fixPts.jpg", point_map, [cv2.IMWRITE_JPEG_QUALITY, 100])
        blurred = cv2.GaussianBlur(point_map.astype(np.float32), (0, 0), 2)
        write_gray(maps / f"{stem}_fixMap.jpg", np.uint8(255 * blurred / blurred.max()))
    if stray:
        write_gray(
            maps / "i05june05_static_street_boston_p1010764fixPts.jpg", np.zeros((8, 8), np.uint8)
        )
    return root


@pytest.fixture
def tiny_mit(tmp_path):
    return write_mit1003(
        tmp_path / "mit",
        [("a_img", (32, 40), [(5, 5), (20, 30)]), ("b_img", (40, 32), [(10, 10)])],
    )


def salicon_gaze(per_observer_xy):
    gaze = np.zeros(
        (len(per_observer_xy), 1),
        dtype=[(n, object) for n in ("location", "timestamp", "fixations")],
    )
    for index, points in enumerate(per_observer_xy):
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        gaze[index, 0]["location"] = points
        gaze[index, 0]["timestamp"] = np.arange(len(points), dtype=np.float64)
        gaze[index, 0]["fixations"] = points
    return gaze


def write_salicon_2017(root, entries, split="train", maps=True):
    """entries: {stem: (image, [observer 1-based (x, y) arrays])}."""
    for stem, (image, per_observer) in entries.items():
        write_rgb(root / "images" / split / f"{stem}.jpg", image)
        (root / "fixations" / split).mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(
            root / "fixations" / split / f"{stem}.mat",
            {
                "image": stem,
                "resolution": np.array([image.shape[:2]]),
                "gaze": salicon_gaze(per_observer),
            },
        )
        if maps:
            density = np.zeros(image.shape[:2], np.uint8)
            density[2:-2, 2:-2] = 128
            write_gray(root / "maps" / split / f"{stem}.png", density)
    return root


def write_salicon_2015(root, entries, split="train"):
    """entries: {stem: (image, {worker: [1-based (row, col)]})}."""
    coco_images, annotations = [], []
    for number, (stem, (image, per_worker)) in enumerate(entries.items(), start=1):
        write_rgb(root / "images" / split / f"{stem}.jpg", image)
        coco_images.append(
            {
                "id": number,
                "file_name": f"{stem}.jpg",
                "height": image.shape[0],
                "width": image.shape[1],
            }
        )
        for worker, points in per_worker.items():
            annotations.append(
                {
                    "id": len(annotations),
                    "image_id": number,
                    "worker_id": worker,
                    "fixations": points,
                }
            )
    contents = {"type": "fixations", "images": coco_images, "annotations": annotations}
    (root / f"fixations_{split}2014.json").write_text(json.dumps(contents))
    return root


def write_cat2000(root, entries):
    """entries: {"Category/NNN": (image, [(row, col)])}."""
    for image_id, (image, points) in entries.items():
        category, stem = image_id.split("/")
        write_rgb(root / "Stimuli" / category / f"{stem}.jpg", image)
        locations = np.zeros(image.shape[:2], np.uint8)
        for row, col in points:
            locations[row, col] = 1
        (root / "FIXATIONLOCS" / category).mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / "FIXATIONLOCS" / category / f"{stem}.mat", {"fixLocs": locations})
        blurred = cv2.GaussianBlur(locations.astype(np.float32), (0, 0), 2)
        write_gray(
            root / "FIXATIONMAPS" / category / f"{stem}.jpg",
            np.uint8(255 * blurred / blurred.max()),
        )
    return root


def write_folder(root, entries, with_maps=False, fixation_format="csv"):
    """entries: {stem: (image, [(row, col, observer)])}; 0-based."""
    for stem, (image, points) in entries.items():
        write_rgb(root / "images" / f"{stem}.png", image)
        if points is not None:
            (root / "fixations").mkdir(parents=True, exist_ok=True)
            if fixation_format == "csv":
                lines = ["row,col,observer"] + [",".join(str(v) for v in p) for p in points]
                (root / "fixations" / f"{stem}.csv").write_text("\n".join(lines) + "\n")
            else:
                np.save(root / "fixations" / f"{stem}.npy", np.asarray(points, dtype=np.float64))
        if with_maps:
            density = np.zeros(image.shape[:2], np.uint8)
            density[: image.shape[0] // 2] = 200
            write_gray(root / "maps" / f"{stem}.png", density)
    return root


@pytest.fixture
def tiny_folder(tmp_path):
    return write_folder(
        tmp_path / "folder",
        {
            "cat": (random_image(18, 26, 3), [(1, 2, 0), (10.5, 20, 1), (17, 25, 1)]),
            "dog": (random_image(30, 12, 4), [(0, 0, 0)]),
            "eel": (random_image(16, 16, 5), [(8, 8, 2), (3, 12, 0)]),
        },
    )


class MemoryDataset(SaliencyDataset):
    """Images whose pixels all equal their index, one fixation each; counts loads."""

    requires_path = False

    def __init__(self, count=12, shape=(12, 16)):
        super().__init__()
        self.count, self.shape, self.loads = count, shape, 0

    def ids(self):
        return [f"{index:02d}" for index in range(self.count)]

    def load(self, image_id):
        self.loads += 1
        index = int(image_id)
        image = np.full((*self.shape, 3), index, np.uint8)
        image[:, : self.shape[1] // 4] = 255  # an asymmetric band shows horizontal flips
        return SaliencyRecord(image_id, image, [[index % self.shape[0], 1 + index % 3]])
