import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from training import callbacks

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Runs the CLI on the tiny model with every training batch slowed down (0.15 s), so
# an epoch lasts long enough to be killed in the middle.
SCRIPT = textwrap.dedent(
    """
    import sys, time
    import tensorflow as tf
    from tests.training import tiny_model
    from training import fit, trainer

    real_make_pipeline = trainer.make_pipeline

    def slow(value):
        time.sleep(0.15)
        return value

    def slow_make_pipeline(*args, **kwargs):
        def delay(image, target):
            delayed = tf.numpy_function(slow, [image], tf.float32)
            return tf.ensure_shape(delayed, image.shape), target
        return real_make_pipeline(*args, **kwargs).map(delay)

    trainer.make_pipeline = slow_make_pipeline
    tiny_model.register()
    sys.exit(fit.main(tiny_model.FAST_ARGS + sys.argv[1:]))
    """
)


def _start(out, *extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    arguments = ["--out", str(out), "--epochs", "4", "--set", "early_stopping_patience=0"]
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, *arguments, *extra],
        cwd=REPOSITORY,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process):
    output = process.communicate(timeout=400)[0]
    assert process.returncode == 0, output[-3000:]
    return output


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_from_its_last_checkpoint(tmp_path):
    interrupted = tmp_path / "interrupted"
    process = _start(interrupted)
    second = callbacks.checkpoint_path(interrupted / "checkpoints", 2)
    deadline = time.monotonic() + 300
    while not second.exists():
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "no second checkpoint within 300 s"
        time.sleep(0.05)
    time.sleep(0.5)  # well inside epoch 3 (5 batches of >= 0.15 s each)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    names = [p.name for p in callbacks.list_checkpoints(interrupted / "checkpoints")]
    assert names == ["epoch-0001.npz", "epoch-0002.npz"]  # epoch 3 never completed
    record, _, _ = callbacks.read_state(second)
    assert record["epoch"] == 2

    output = _finish(_start(interrupted, "--resume"))
    assert "Resumed from" in output and "epoch-0002.npz (epoch 2 of 4)" in output
    assert "Epoch 1/4" not in output and "Epoch 3/4" in output

    reference = tmp_path / "reference"
    _finish(_start(reference))
    # Same weights, optimizer state and data order: the resumed run ends where an
    # uninterrupted run ends.
    _, resumed_model, resumed_optimizer = callbacks.read_state(
        callbacks.checkpoint_path(interrupted / "checkpoints", 4)
    )
    _, reference_model, reference_optimizer = callbacks.read_state(
        callbacks.checkpoint_path(reference / "checkpoints", 4)
    )
    for resumed, expected in zip(
        resumed_model + resumed_optimizer, reference_model + reference_optimizer, strict=True
    ):
        np.testing.assert_array_equal(resumed, expected)
