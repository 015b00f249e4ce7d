"""Exported saliency models as differentiable Keras models, with what is needed to feed them.

``find_exports`` reads one ``--model`` value of ``serving.predict``/``serving.explain``:
a SavedModel folder (holding ``saved_model.pb``) or a ``training.fit`` run folder
(every model under ``export/<name>/``, newest version). ``load_model`` opens one
SavedModel as a ``LoadedModel``: a functional Keras model around its float-tensor
endpoint (``keras.layers.TFSMLayer``, so gradients flow through it for attribution)
plus the input size, output kind and resize policy from its ``assets.extra/tfsal.json``
metadata. SavedModels exported elsewhere carry no metadata: pass them as overrides.
"""

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

import keras

from serving import constants
from tfsal import conventions
from tfsal.data.targets import check_resize_arguments


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A saliency model ready to predict and to be explained.

    Attributes:
        name: display name (the export's model folder name).
        model: functional Keras model, ``(batch, h, w, 3)`` float32 RGB in [0, 255] ->
            dict of outputs holding ``"saliency"`` (and ``"contributions"`` for an
            explainable model).
        input_size: the model's (height, width).
        output_kind: ``"log_density"`` or ``"map"``.
        resize: how images are fitted to ``input_size``: ``"pad"`` or ``"stretch"``.
        metadata: the export's metadata (group names of contributions, taps, ...).
    """

    name: str
    model: keras.Model
    input_size: tuple[int, int]
    output_kind: str
    resize: str = "pad"
    metadata: Mapping = dataclasses.field(default_factory=dict)

    @property
    def explainable(self) -> bool:
        """Whether the model outputs per-group contribution maps."""
        outputs = self.model.output
        return isinstance(outputs, dict) and conventions.CONTRIBUTIONS in outputs


def find_exports(spec: str | Path) -> dict[str, Path]:
    """The SavedModel folders one ``--model`` value names, by display name.

    Args:
        spec: a SavedModel folder or a ``training.fit`` run folder.

    Raises:
        ValueError: if ``spec`` is neither, or the run folder has no export.
    """
    path = Path(spec)
    if (path / "saved_model.pb").is_file():
        return {path.parent.name if path.name.isdigit() else path.name: path}
    export = path / "export"
    if export.is_dir():
        found = {}
        for model_folder in sorted(p for p in export.iterdir() if p.is_dir()):
            versions = [
                child
                for child in model_folder.iterdir()
                if child.name.isdigit() and (child / "saved_model.pb").is_file()
            ]
            if versions:
                found[model_folder.name] = max(versions, key=lambda child: int(child.name))
        if found:
            return found
        raise ValueError(f"Run folder {path} holds no SavedModel under export/<name>/<version>/.")
    raise ValueError(
        f"Cannot read model {str(spec)!r}: expected a SavedModel folder (with "
        "saved_model.pb) or a training.fit run folder (with export/)."
    )


def read_metadata(path: str | Path) -> dict:
    """The ``assets.extra/tfsal.json`` metadata of a SavedModel, or ``{}`` if absent.

    Raises:
        ValueError: if the file exists but is not a JSON object.
    """
    metadata_path = Path(path) / constants.METADATA_DIR / constants.METADATA_FILE
    if not metadata_path.is_file():
        return {}
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{metadata_path} is not valid JSON ({error}).") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{metadata_path} must hold a JSON object.")
    return metadata


def load_model(
    path: str | Path,
    name: str | None = None,
    input_size: tuple[int, int] | None = None,
    output_kind: str | None = None,
    resize: str | None = None,
) -> LoadedModel:
    """Opens a SavedModel as a differentiable Keras model.

    Args:
        path: the SavedModel folder.
        name: display name (default: the folder's).
        input_size: overrides the metadata's ``input_size``.
        output_kind: overrides the metadata's ``output``.
        resize: overrides the metadata's ``resize`` (default ``"pad"``).

    Raises:
        ValueError: if the input size or output kind is unknown, or the SavedModel has
            no float-tensor endpoint.
    """
    path = Path(path)
    metadata = read_metadata(path)
    input_size = input_size or metadata.get("input_size")
    output_kind = output_kind or metadata.get("output")
    resize = resize or metadata.get("resize", "pad")
    if input_size is None or output_kind is None:
        raise ValueError(
            f"SavedModel {path} does not say its input size and output kind (no "
            f"{constants.METADATA_DIR}/{constants.METADATA_FILE} from tfsal's exporter); "
            "pass --input-size H W and --output-kind log_density|map."
        )
    if output_kind not in conventions.OUTPUT_KINDS:
        raise ValueError(
            f"output kind must be one of {conventions.OUTPUT_KINDS}. Received: {output_kind!r}"
        )
    height, width = check_resize_arguments(input_size, resize)
    endpoint = constants.SERVE_ENDPOINT
    try:
        layer = keras.layers.TFSMLayer(str(path), call_endpoint=endpoint, name="saved_model")
    except ValueError:
        raise ValueError(
            f"SavedModel {path} has no {endpoint!r} endpoint taking (batch, h, w, 3) float "
            "images; export it with tfsal's exporter (serving.export)."
        ) from None
    image = keras.Input((height, width, 3), name=constants.IMAGE_INPUT)
    outputs = layer(image)
    if not isinstance(outputs, dict):
        outputs = {conventions.SALIENCY: outputs}
    if conventions.SALIENCY not in outputs:
        raise ValueError(
            f"SavedModel {path}'s {endpoint!r} endpoint has no {conventions.SALIENCY!r} "
            f"output (outputs: {sorted(outputs)})."
        )
    model = keras.Model(image, outputs, name=name or path.name)
    display = name or (path.parent.name if path.name.isdigit() else path.name)
    return LoadedModel(display, model, (height, width), output_kind, resize, metadata)
