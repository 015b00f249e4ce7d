"""Fixtures of the main job's tests: the tiny model, and finished runs of it."""

import pytest

from tests.training import tiny_model
from training import fit


@pytest.fixture(scope="package", autouse=True)
def tiny_model_registered():
    """``tiny_test`` is registered while the tests of this package run, and only then."""
    with tiny_model.registered():
        yield


@pytest.fixture(scope="package")
def tiny_run(tmp_path_factory):
    """Returns ``(*options) -> run folder``: a finished one-epoch run of the tiny model.

    Each set of extra ``training.fit`` options is run once per test session; tests
    that change the folder pass options no other test uses, or work on a copy.
    """
    runs = {}

    def finished_run(*options: str):
        if options not in runs:
            out = tmp_path_factory.mktemp("tiny-run") / "run"
            arguments = [*tiny_model.FAST_ARGS, "--epochs", "1", "--out", str(out), *options]
            assert fit.main(arguments) == 0
            runs[options] = out
        return runs[options]

    return finished_run
