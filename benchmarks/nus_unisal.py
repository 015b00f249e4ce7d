"""Real data: UNISAL (ImageNet MobileNetV2 encoder) on NUS scene, seeded 320/80 split.

Runs the main job (``training.job.run``) on the NUS scene data set from the shared
folder and prints the validation metrics of UNISAL next to the centre-bias and
spectral-residual baselines as a markdown table, with the wall time::

    python benchmarks/nus_unisal.py --image-size 224 224

Everything else is tfsal's UNISAL default for small data sets
(``training/recipes.py``): the ImageNet encoder frozen for every epoch (BatchNorm
in inference mode), Adam with learning rate 1e-3 decayed by 0.9 per epoch, batch
8, horizontal flips, at most 14 epochs with early stopping on validation CC (the
best epoch's weights are evaluated). ``--epochs``/``--batch-size`` override them.
"""

import argparse
import datetime
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tfsal.paths import nus_scene_dir, shared_weights_dir  # noqa: E402
from training import configs, job  # noqa: E402

COLUMNS = ("CC", "NSS", "AUC-Judd", "sAUC", "SIM", "KLD")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--image-size", type=int, nargs=2, default=[224, 224])
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    config = configs.FitConfig(
        model="unisal",
        data=f"nus:{nus_scene_dir()}",
        out=args.out or f"benchmarks/output/nus-unisal-{stamp}",
        epochs=args.epochs,
        batch_size=args.batch_size,
        image_size=list(args.image_size),
        encoder_weights=str(shared_weights_dir() / "mobilenet_v2-b0353104.pth"),
        train_size=320,
        val_size=80,
        seed=args.seed,
    )
    started = time.monotonic()
    outputs = job.run(config)
    wall = time.monotonic() - started

    import json

    metrics = json.loads(outputs.metrics.read_text())
    print(f"\nValidation: {metrics['n_images']} images; wall time {wall:.0f} s\n")
    print("| model | " + " | ".join(COLUMNS) + " |")
    print("| --- " * (len(COLUMNS) + 1) + "|")
    for name, scores in metrics["results"].items():
        cells = " | ".join(f"{scores[c]:.3f}" if c in scores else "–" for c in COLUMNS)
        print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()
