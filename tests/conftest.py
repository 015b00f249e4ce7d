"""Shared fixtures: the shared data folder and quiet TensorFlow logs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from tfsal import paths  # noqa: E402


@pytest.fixture(scope="session")
def shared_dir():
    """The shared folder (``$TFSAL_SHARED`` or ``../shared``); skips if absent."""
    folder = paths.shared_dir()
    if not folder.is_dir():
        pytest.skip(f"shared folder {folder} not found; set TFSAL_SHARED")
    return folder


@pytest.fixture(scope="session")
def nus_dir(shared_dir):
    """The real NUS scene data set in the shared folder."""
    folder = shared_dir / "datasets" / "nus-scene"
    if not folder.is_dir():
        pytest.skip(f"NUS scene data set not found at {folder}")
    return folder


@pytest.fixture(scope="session")
def weights_dir(shared_dir):
    """The folder of pretrained weights in the shared folder."""
    return shared_dir / "weights"
