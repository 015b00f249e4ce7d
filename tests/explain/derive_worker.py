"""One process of the distributed derivation test: derives, saves the fitted weights.

Run as ``python -m tests.explain.derive_worker OUT_DIR``; with ``TF_CONFIG`` set it is
one of the workers of a ``MultiWorkerMirroredStrategy`` and derives from its shard
(every other image), else it derives from all images in one process. Both see the
same images per step (4 per step overall), so they must fit the same model.
"""

import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

# The strategy must exist before TensorFlow runs any op.
strategy = tf.distribute.MultiWorkerMirroredStrategy() if os.environ.get("TF_CONFIG") else None

from tests.explain.parents import SMALL_BANK, images, toy_parent  # noqa: E402
from tfsal import explain  # noqa: E402


def main(out: Path) -> None:
    index, count = 0, 1
    if strategy is not None:
        index, count = strategy.cluster_resolver.task_id, strategy.num_replicas_in_sync
    per_step = 4 // count
    train = images(8)[index::count]
    val = images(4, seed=9)[index::count]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few rows for the features
        derivation = explain.derive(
            toy_parent(),
            [train[i : i + per_step] for i in range(0, len(train), per_step)],
            [val[i : i + per_step] for i in range(0, len(val), per_step)],
            taps=["enc2", "enc3"],
            output_kind="log_density",
            bank_config=SMALL_BANK,
            readout_epochs=1,
            strategy=strategy,
            progress=False,
        )
    arrays = {}
    for tap, layer in explain.reconstruction_layers(derivation.model).items():
        arrays[f"{tap}/kernel"] = layer.kernel.numpy()
        arrays[f"{tap}/bias"] = layer.bias.numpy()
        arrays[f"{tap}/feature_median"] = layer.feature_median.numpy()
    for tap, layer in explain.tap_readouts(derivation.model).items():
        arrays[f"{tap}/readout"] = layer.readout.numpy()
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "weights.npz", **arrays)
    (out / "fidelity.json").write_text(json.dumps(derivation.fidelity))
    print(f"derived worker={index} of {count}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
