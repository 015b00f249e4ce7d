"""Where tfsal finds material that lives outside the repository.

The shared folder (real eye-tracking data, pretrained weights) sits beside the
repository as ``../shared``; the environment variable ``TFSAL_SHARED`` points
elsewhere.
"""

import os
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """Returns the shared folder: ``$TFSAL_SHARED``, else ``<repository>/../shared``."""
    configured = os.environ.get("TFSAL_SHARED")
    if configured:
        return Path(configured).expanduser().resolve()
    return (REPOSITORY_ROOT.parent / "shared").resolve()


def nus_scene_dir() -> Path:
    """Returns the NUS scene data set folder inside the shared folder."""
    return shared_dir() / "datasets" / "nus-scene"


def shared_weights_dir() -> Path:
    """Returns the folder of pretrained weights usable offline."""
    return shared_dir() / "weights"
