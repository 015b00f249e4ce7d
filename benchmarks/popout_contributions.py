r"""Pop-out: which feature groups make the singleton salient in the explainable model.

On a pop-out run (``python -m training.fit``, the no-argument run, then
``python -m training.derive RUN_DIR`` if its explainable export predates the report)::

    python benchmarks/popout_contributions.py /tmp/popout-run

For every validation search array, the explainable model's contributions are read
on the target (``tfsal.explain.report.target_contrast``: each group's mean on the
target minus its mean over the image, positive parts as shares), then averaged per
singleton family. Printed as a markdown table; written to
``<RUN_DIR>/popout_contributions.json``.
"""

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfsal.conventions import CONTRIBUTIONS  # noqa: E402
from tfsal.data.pipeline import make_pipeline  # noqa: E402
from tfsal.explain import group_names  # noqa: E402
from tfsal.explain.report import target_contrast  # noqa: E402
from training import configs, job  # noqa: E402
from training import report as run_report  # noqa: E402

CHROMA = {"U", "V", "a", "b", "O1", "O2"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a pop-out training.fit run folder.")
    args = parser.parse_args()
    config = configs.load_yaml(args.run / "config.yaml")
    if config.data != "popout":
        raise SystemExit(f"{args.run} is a run on {config.data!r}, not on pop-out stimuli.")
    export = run_report.latest_explainable(args.run, config.model)
    model = keras.saving.load_model(export / run_report.KERAS_FILE)
    names = group_names(model)
    dataset, _, val_ids = job.load_split(config)
    batches = make_pipeline(
        dataset, val_ids, image_size=tuple(config.image_size), resize=config.resize, batch_size=8
    )
    shares = {}
    start = 0
    for images, _ in batches:
        contributions = keras.ops.convert_to_numpy(model(images)[CONTRIBUTIONS])
        for offset, maps in enumerate(contributions):
            stimulus = dataset.stimulus(val_ids[start + offset])
            # Square stimuli, square run size: "pad" resizing is a plain resize.
            height, width = maps.shape[:2]
            mask = cv2.resize(stimulus.target_mask.astype(np.float32), (width, height))
            result = target_contrast(maps, mask > 0.5, names)
            chroma = sum(v for k, v in result["colour"].items() if k in CHROMA)
            top = max(result["orientation"].values())
            shares.setdefault(stimulus.family, []).append((chroma, top))
        start += len(contributions)
    orientations = len({n.split("/")[2] for n in names[:-1] if n.count("/") == 2})
    summary = {
        family: {
            "images": len(values),
            "chroma_share": float(np.mean([v[0] for v in values])),
            "top_orientation_share": float(np.mean([v[1] for v in values])),
        }
        for family, values in sorted(shares.items())
    }
    summary["orientations"] = orientations
    (args.run / "popout_contributions.json").write_text(json.dumps(summary, indent=2))
    print(f"{export}: {sum(len(v) for v in shares.values())} validation arrays")
    print("| singleton | arrays | chroma (U+V) share | strongest orientation's share |")
    print("| --- | --- | --- | --- |")
    for family, row in summary.items():
        if family != "orientations":
            print(
                f"| {family} | {row['images']} | {row['chroma_share']:.2f} | "
                f"{row['top_orientation_share']:.2f} (uniform {1 / orientations:.2f}) |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
