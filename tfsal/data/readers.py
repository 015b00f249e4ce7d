"""The data set reader interface and the registry of formats.

Every format is a ``SaliencyDataset`` subclass registered under the name used on
command lines (``--data FORMAT:PATH``):

```python
from tfsal import data

dataset = data.open_dataset("nus:../shared/datasets/nus-scene")
record = dataset.load(dataset.ids()[0])
```

Readers hold only file names and small metadata; images are decoded in ``load``, so a
data set of any size can be streamed.
"""

import abc
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from tfsal.data.record import INVALID_FIXATION_POLICIES, SaliencyRecord

logger = logging.getLogger(__name__)

MISSING_POLICIES = ("error", "skip")

_READERS: dict[str, type["SaliencyDataset"]] = {}


class SaliencyDataset(abc.ABC):
    """A saliency data set: image identifiers and the records behind them.

    Subclasses set ``requires_path`` (False for generated data sets), implement
    ``ids`` and ``load``, override ``has_fixations`` / ``has_density`` when the
    data set lacks one of them, and ``stimulus`` when images are generated with a
    known layout.

    Args:
        invalid_fixations: what to do with NaN fixations or fixations outside their
            image: "error" (default) raises naming the image, "drop" skips them and
            logs how many were dropped.
    """

    name: str = "dataset"
    requires_path: bool = True

    def __init__(self, invalid_fixations: str = "error"):
        if invalid_fixations not in INVALID_FIXATION_POLICIES:
            raise ValueError(
                f"invalid_fixations must be one of {INVALID_FIXATION_POLICIES}. "
                f"Received: invalid_fixations={invalid_fixations!r}"
            )
        self.invalid_fixations = invalid_fixations

    @abc.abstractmethod
    def ids(self) -> list[str]:
        """Returns the identifiers of all images, in a stable order."""

    @abc.abstractmethod
    def load(self, image_id: str) -> SaliencyRecord:
        """Reads one image and its eye-tracking data.

        Args:
            image_id: one of ``ids()``.

        Returns:
            The record.

        Raises:
            KeyError: if ``image_id`` is not in the data set.
        """

    @property
    def has_fixations(self) -> bool:
        """Whether records carry discrete fixations."""
        return True

    @property
    def has_density(self) -> bool:
        """Whether records carry a density map read from the data set."""
        return False

    def stimulus(self, image_id: str) -> Any:
        """Returns what is known about how ``image_id`` was made, or None.

        Generated data sets return the stimulus behind an image (``popout``: a
        ``tfsal.data.popout.PopoutStimulus`` with its target and distractor masks),
        which the evaluation scores with the pop-out metrics; recorded data sets
        have none.

        Args:
            image_id: one of ``ids()``.
        """
        return None

    def __len__(self) -> int:
        return len(self.ids())

    def __iter__(self) -> Iterator[SaliencyRecord]:
        for image_id in self.ids():
            yield self.load(image_id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {len(self)} images>"

    def _unknown_id(self, image_id: str) -> KeyError:
        return KeyError(f"{image_id!r} is not an image of the {self.name} data set.")


def register_reader(
    format_name: str,
) -> Callable[[type[SaliencyDataset]], type[SaliencyDataset]]:
    """Class decorator registering a ``SaliencyDataset`` under ``format_name``.

    Args:
        format_name: the name used in ``open_dataset`` specs, e.g. "nus".

    Returns:
        The decorator, which returns the class unchanged (with ``name`` set).
    """
    if not format_name or ":" in format_name:
        raise ValueError(
            f"format_name must be a non-empty name without ':'. Received: {format_name!r}"
        )

    def decorate(cls: type[SaliencyDataset]) -> type[SaliencyDataset]:
        if not (isinstance(cls, type) and issubclass(cls, SaliencyDataset)):
            raise TypeError(f"register_reader expects a SaliencyDataset subclass. Received: {cls}")
        registered = _READERS.get(format_name)
        if registered is not None and registered.__qualname__ != cls.__qualname__:
            raise ValueError(
                f"Format {format_name!r} is already registered by {registered.__qualname__}."
            )
        cls.name = format_name
        _READERS[format_name] = cls
        return cls

    return decorate


def list_formats() -> list[str]:
    """Returns the registered format names, sorted."""
    return sorted(_READERS)


def open_dataset(spec: str, **kwargs) -> SaliencyDataset:
    """Opens a data set from a ``FORMAT:PATH`` spec.

    Args:
        spec: "FORMAT:PATH" (e.g. "nus:../shared/datasets/nus-scene",
            "folder:/data/mine") or a bare "FORMAT" for generated data sets such as
            "popout".
        **kwargs: passed to the reader's constructor.

    Returns:
        The opened data set.

    Raises:
        ValueError: for an unknown format, a missing path, or a path given to a
            generated data set.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"spec must be a 'FORMAT:PATH' string. Received: spec={spec!r}")
    format_name, separator, location = spec.partition(":")
    reader = _READERS.get(format_name)
    if reader is None:
        raise ValueError(
            f"Unknown data set format {format_name!r} in spec={spec!r}. "
            f"Known formats: {', '.join(list_formats())}."
        )
    if separator and not reader.requires_path:
        raise ValueError(
            f"Format {format_name!r} is generated and takes no path: write {format_name!r} "
            f"alone. Received: spec={spec!r}"
        )
    if not separator:
        if reader.requires_path:
            raise ValueError(
                f"Format {format_name!r} needs a path: write '{format_name}:PATH'. "
                f"Received: spec={spec!r}"
            )
        return reader(**kwargs)
    if not location:
        raise ValueError(f"The path after '{format_name}:' is empty. Received: spec={spec!r}")
    return reader(os.path.expanduser(location), **kwargs)


def require_directory(path: str | os.PathLike, what: str) -> Path:
    """Returns ``path`` as a Path, raising a clear error if it is not a folder.

    Args:
        path: the folder.
        what: what the folder should hold, for the message.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: folder {path} does not exist or is not a folder.")
    return path


def load_mat(path: str | os.PathLike, what: str) -> dict[str, np.ndarray]:
    """Reads a MATLAB file, raising one clear error if it is missing or unreadable.

    Args:
        path: the ``.mat`` file.
        what: names the data set and file in the message, e.g. "NUS fixations".

    Returns:
        Variable name -> value, as ``scipy.io.loadmat`` gives them.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if it is empty, truncated or not a MATLAB file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: {path} not found.")
    try:
        return scipy.io.loadmat(path)
    except Exception as error:  # scipy raises MatReadError, OSError, IndexError, ...
        raise ValueError(
            f"{what}: {path} is not a readable MATLAB file ({type(error).__name__}: {error}); "
            "re-download or re-export it."
        ) from error


def check_missing_policy(missing: str) -> None:
    """Raises a ValueError unless ``missing`` is one of ``MISSING_POLICIES``."""
    if missing not in MISSING_POLICIES:
        raise ValueError(
            f"missing must be one of {MISSING_POLICIES}. Received: missing={missing!r}"
        )


def apply_missing_policy(
    missing: str, incomplete: list[str], *, where: str, problem: str, skipped: str, remedy: str
) -> None:
    """Raises for images that lack files (``missing="error"``) or logs that they are skipped.

    Args:
        missing: "error" or "skip".
        incomplete: identifiers of the images that lack files; nothing happens if empty.
        where: names the data set in messages, e.g. "CAT2000".
        problem: what is wrong, after the count, e.g. "stimuli lack FIXATIONLOCS files".
        skipped: what was skipped, after the count, e.g. "stimuli without fixation data".
        remedy: how to restore the files, e.g. "Restore them".

    Raises:
        FileNotFoundError: if ``incomplete`` is not empty and ``missing`` is "error".
    """
    if not incomplete:
        return
    if missing == "error":
        raise FileNotFoundError(
            f"{where}: {len(incomplete)} {problem} (first: {incomplete[:3]}). {remedy}, or "
            "pass missing='skip' to leave those images out."
        )
    logger.warning(
        "%s: skipped %d %s (first: %s).", where, len(incomplete), skipped, incomplete[:3]
    )
