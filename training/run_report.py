"""The run's page as the main job and ``python -m training.report`` write it.

Kept apart from the ``training.report`` command so that the job, which writes the
page after every run, and the command, which rebuilds it from a run folder and reuses
the job's stages, import in one direction only.
"""

import json
import os
import shutil
from pathlib import Path

from tfsal.io_utils import atomic_directory, atomic_write_text
from training import interpretation_page, report_page

REPORT_JSON = "report.json"
VERSION_KEY = "tfsal_version"


def replace_directory(new: Path, destination: Path) -> None:
    """Moves the finished folder ``new`` to ``destination``, replacing an old one.

    Two renames in the same parent: ``destination`` is missing only between them.
    """
    if destination.exists():
        old = destination.with_name(f".{destination.name}.old-{os.getpid()}")
        os.rename(destination, old)
        os.rename(new, destination)
        shutil.rmtree(old)
    else:
        os.rename(new, destination)


def write_run_report(
    folder, title: str, metrics: dict, samples: list[dict], details: dict, analysis=None
) -> Path:
    """Writes the whole report folder atomically; returns the path of its index.html.

    Args:
        folder: the report folder (``<run>/report``), replaced if it exists.
        title: the page heading.
        metrics: the ``metrics.json`` content.
        samples: the sample overlays (see ``report_page.write_report``).
        details: name -> value lines shown at the top.
        analysis: a ``tfsal.explain.report.Analysis``, or ``None`` for a page
            without the interpretation sections.
    """
    folder = Path(folder)
    staging = folder.with_name(f".{folder.name}.new-{os.getpid()}")
    with atomic_directory(staging) as temporary:
        section = ""
        if analysis is not None:
            from tfsal.explain import report_figures

            rendered = report_figures.render_figures(temporary, analysis)
            section = interpretation_page.interpretation_section(rendered, analysis.numbers)
            record = {
                "numbers": analysis.numbers,
                "plotted": rendered["plotted"],
                "files": rendered["files"],
                "groups": rendered["groups"],
            }
            atomic_write_text(temporary / REPORT_JSON, json.dumps(record, indent=1))
        report_page.write_report(temporary, title, metrics, samples, details, section)
    replace_directory(staging, folder)
    return folder / "index.html"


def interpret(config, parent, explainable, fidelity: dict, samples: list[dict]):
    """The interpretation numbers of a run, or ``None`` without an explainable model.

    ``parent`` is the deep model with the taps the explainable model rebuilds
    (``training.job.tapped_parent``).
    """
    import numpy as np

    from tfsal import models
    from tfsal.explain import report
    from tfsal.explain.explainable_model import reconstruction_layers

    if explainable is None or not reconstruction_layers(explainable) or not samples:
        return None
    images = np.stack([sample["image"] for sample in samples]).astype("float32")
    return report.analyse(
        parent,
        explainable,
        images,
        fidelity,
        output_kind=models.model_info(config.model).output,
        image_ids=[sample["image_id"] for sample in samples],
    )
