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
            without the interpretation sections. Its explainable saliency maps join
            the samples' overlays (the analysis ran the model on the same images).
    """
    folder = Path(folder)
    if analysis is not None:
        explained = analysis.maps["explainable_saliency"]
        samples = [{**s, "explainable": e} for s, e in zip(samples, explained, strict=True)]
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


def interpret(config, parent, explainable, fidelity: dict, samples: list[dict], statistics=None):
    """The interpretation numbers of a run, or ``None`` without an explainable model.

    ``parent`` is the deep model with the taps the explainable model rebuilds
    (``training.explainable_stage.tapped_parent``); ``statistics`` the derivation's normal
    equations, if kept (``tfsal.explain.group_refit``).
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
        statistics=statistics,
    )


def report_samples(config, dataset, val_ids: list[str], model) -> list[dict]:
    """The first ``config.report_samples`` validation images with the deep model's map.

    Returns:
        Dicts with ``image_id``, ``image``, ``saliency`` (the model's density or
        map), ``density`` and ``fixations`` (the ground truth at the model's size).
    """
    import numpy as np

    from tfsal import models
    from tfsal.conventions import LOG_DENSITY, SALIENCY
    from tfsal.data.pipeline import make_pipeline

    chosen = val_ids[: config.report_samples]
    if not chosen:
        return []
    batches = make_pipeline(
        dataset,
        chosen,
        image_size=tuple(config.image_size),
        resize=config.resize,
        batch_size=len(chosen),
    )
    images, targets = next(iter(batches))
    saliency = model.predict(images, verbose=0)[SALIENCY][..., 0]
    if models.model_info(config.model).output == LOG_DENSITY:
        saliency = np.exp(saliency)
    density, fixations = np.moveaxis(targets[SALIENCY].numpy(), -1, 0)
    return [
        {"image_id": i, "image": im, "saliency": s, "density": d, "fixations": f}
        for i, im, s, d, f in zip(chosen, images.numpy(), saliency, density, fixations, strict=True)
    ]


def write_page(
    config,
    folder,
    dataset,
    val_ids: list[str],
    model,
    metrics: dict,
    details: dict,
    parent=None,
    *,
    explainable=None,
    fidelity: dict | None = None,
    statistics: dict | None = None,
) -> Path:
    """The run's page, ``folder`` (``<out>/report/``), replaced atomically.

    Args:
        config: the run's configuration.
        folder: the report folder.
        dataset: the run's data set.
        val_ids: its validation images (the first ``config.report_samples`` are shown).
        model: the trained deep model.
        metrics: the ``metrics.json`` content.
        details: name -> value lines shown at the top of the page.
        parent: ``model`` with the explainable model's taps exposed
            (``training.explainable_stage.tapped_parent``); needed with ``explainable``.
        explainable: the explainable model, or ``None`` for a page without it.
        fidelity: its fidelity record (``derivation.json``).
        statistics: the derivation's normal equations (``Derivation.statistics``),
            or ``None`` if the run did not keep them.

    Returns:
        The path of index.html.
    """
    samples = report_samples(config, dataset, val_ids, model)
    analysis = None
    if explainable is not None:
        analysis = interpret(config, parent, explainable, fidelity, samples, statistics)
    title = f"tfsal run: {config.model} on {config.data}"
    return write_run_report(folder, title, metrics, samples, details, analysis)
