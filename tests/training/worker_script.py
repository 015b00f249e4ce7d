"""One worker of the two-worker test: trains one synchronised step, saves weights.

Run as ``python -m tests.training.worker_script OUT_DIR`` with ``TF_CONFIG`` set.
"""

import sys
from pathlib import Path

import numpy as np

from training import distributed

# The strategy must exist before TensorFlow runs any op.
strategy = distributed.choose_strategy("multi_worker")

from tests.training import tiny_model  # noqa: E402
from training import configs, job, trainer  # noqa: E402

tiny_model.register()


def main(out: Path) -> None:
    config = configs.resolve(
        configs.FitConfig(
            model=tiny_model.NAME,
            image_size=[32, 32],
            batch_size=8,
            epochs=1,
            # 9 training images (one step of 8) and a single validation image: fewer
            # sample images than workers, which the TensorBoard image logger must
            # survive (it once sharded them over the workers and crashed worker 1).
            max_images=10,
            val_fraction=0.1,
            augment=False,
            early_stopping_patience=0,
            strategy="multi_worker",
            out=str(out),
        )
    )
    dataset, train_ids, val_ids = job.load_split(config)
    initial = [np.asarray(v) for v in trainer.build_model(config).weights]
    result = trainer.train(
        config, dataset, train_ids, val_ids, out / "checkpoints", out / "logs", strategy
    )
    final = [np.asarray(v) for v in result.model.weights]
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "weights.npz", *final)
    np.savez(out / "initial.npz", *initial)
    steps = int(np.asarray(result.model.optimizer.iterations))
    print(f"steps={steps} chief={distributed.is_chief(strategy)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
