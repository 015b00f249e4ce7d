"""Exports a tfsal model as a versioned SavedModel with TF Serving signatures.

```python
from serving.export import export_model

version_dir = export_model(
    model, "models", "saliency", input_size=(240, 320), output="log_density"
)  # models/saliency/1/
```

The signatures (names in ``serving.constants``) are the same for every model; the
exporter tells deep and explainable models apart by their outputs only (an
explainable model returns ``contributions`` and ``reconstruction_<tap>`` maps):

- ``serving_default``: ``image_bytes`` (batch,) encoded JPEG/PNG -> ``saliency``
  (batch, Hmax, Wmax) at each image's own resolution, **padded with zeros to the
  largest image of the batch**, and ``height``, ``width`` (batch,) int32 giving each
  image's size (crop ``saliency[i, :height[i], :width[i]]``);
- ``predict_tensor``: ``images`` (batch, H, W, 3) float32 RGB in [0, 255] -> ``saliency``
  (batch, H, W);
- ``explain`` (explainable models): as ``serving_default`` plus each
  ``reconstruction_<tap>`` as the model gives it, on the model's canvas at the tap's
  resolution (padding included), and, for models that have them (the ``linear``
  readout), ``contributions`` (batch, Hmax, Wmax, groups): the additive per-pixel
  contributions of each feature group to the saliency logits, cropped and resized
  like ``saliency`` (in logit units, not exponentiated);
- ``serve``: the Keras model itself at its input size, raw outputs (what
  ``model.export()`` writes; ``serving.predictor`` uses it).

The served ``saliency`` of a log-density model is ``exp`` of it, cropped to the image,
resized and renormalised to sum to 1 over the image's own pixels: a fixation density.
A "map" model's scores are only cropped and resized.

Each version is written in a hidden folder beside its destination and renamed into
place (``tfsal.io_utils.atomic_directory``), so TF Serving, which polls the base path,
never loads a half-written version. ``assets.extra`` holds ``tfsal.json`` (metadata)
and TF Serving's warmup records. An explainable model's version also holds the Keras
model itself, ``model.keras`` (TF Serving ignores it), and its metadata records each
tap's name, stride and channels (``tap_info``).
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import keras
import tensorflow as tf

from serving import constants, image_ops, warmup
from tfsal.io_utils import atomic_directory, atomic_write_text


def model_outputs(model: keras.Model, input_size: Sequence[int]) -> dict:
    """The model's output specs for one canvas, checked against the conventions.

    Raises:
        ValueError: if the model does not return a dict holding a (batch, h, w, 1)
            ``saliency``.
    """
    height, width = input_size
    specs = model.compute_output_spec(keras.KerasTensor((1, height, width, 3)))
    if not isinstance(specs, Mapping) or constants.SALIENCY not in specs:
        found = sorted(specs) if isinstance(specs, Mapping) else type(specs).__name__
        raise ValueError(
            "The model must return a dict holding 'saliency' (tfsal's model "
            f"conventions). Received: {found}"
        )
    shape = tuple(specs[constants.SALIENCY].shape)
    if shape != (1, height, width, 1):
        raise ValueError(
            f"The model's saliency must be (batch, {height}, {width}, 1) for a "
            f"{height}x{width} input. Received: {shape}"
        )
    return dict(specs)


def is_explainable(outputs: Mapping) -> bool:
    """Whether model outputs are an explainable model's (tap reconstructions).

    A ``linear`` readout also returns ``contributions``; a ``decoder`` readout
    returns the reconstructions only, and its ``explain`` signature has no
    ``contributions`` output.
    """
    return any(key.startswith(constants.RECONSTRUCTION_PREFIX) for key in outputs)


class _Signatures:
    """The signature functions of one model (traced by ``ExportArchive``)."""

    def __init__(self, model, input_size, output, resize, max_pixels, max_side, batch_pixels):
        self.model = model
        self.canvas = tuple(int(v) for v in input_size)
        self.output = output
        self.resize = resize
        self.limits = (max_pixels, max_side, batch_pixels)

    def _readable(self, maps: tf.Tensor) -> tf.Tensor:
        # (batch, H, W, 1) resized model output -> what users read.
        maps = maps[..., 0]
        if self.output != constants.LOG_DENSITY:
            return maps
        return maps / tf.reduce_sum(maps, axis=(1, 2), keepdims=True)

    def _run(self, canvas: tf.Tensor) -> dict:
        outputs = self.model(canvas, training=False)
        return {key: tf.cast(value, tf.float32) for key, value in outputs.items()}

    def _to_model_scale(self, saliency: tf.Tensor) -> tf.Tensor:
        # Exponentiate before resizing so the resampling averages densities.
        return tf.exp(saliency) if self.output == constants.LOG_DENSITY else saliency

    def predict_tensor(self, images: tf.Tensor) -> dict:
        shape = tf.shape(images)
        max_pixels, _, _ = self.limits
        check = image_ops.check(
            tf.logical_and(tf.reduce_all(shape[1:3] >= 1), shape[1] * shape[2] <= max_pixels),
            f"images must be (batch, H, W, 3) with 1 <= H*W <= {max_pixels}.",
        )
        with tf.control_dependencies([check]):
            canvas = image_ops.to_canvas(images, self.canvas, self.resize)
        saliency = self._to_model_scale(self._run(canvas)[constants.SALIENCY])
        resized = image_ops.from_canvas(saliency, shape[1], shape[2], self.canvas, self.resize)
        return {constants.SALIENCY_OUTPUT: self._readable(resized)}

    def _decode_batch(self, image_bytes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        max_pixels, max_side, batch_pixels = self.limits
        count = tf.shape(image_bytes)[0]
        indices = tf.range(count)
        some = image_ops.check(count >= 1, "image_bytes must hold at least one image.")
        with tf.control_dependencies([some]):
            indices = tf.identity(indices)
        sizes = tf.map_fn(
            lambda item: image_ops.image_size(item[0], item[1], max_pixels, max_side),
            (image_bytes, indices),
            fn_output_signature=tf.TensorSpec((2,), tf.int64),
        )
        largest = tf.reduce_max(tf.concat([sizes, [[1, 1]]], axis=0), axis=0)
        within = image_ops.check(
            tf.cast(count, tf.int64) * largest[0] * largest[1] <= batch_pixels,
            "A batch of ",
            count,
            " images padded to ",
            largest[0],
            "x",
            largest[1],
            f" exceeds {batch_pixels} output pixels; send fewer or smaller images.",
        )
        with tf.control_dependencies([within]):
            canvases = tf.map_fn(
                lambda data: image_ops.to_canvas(
                    tf.cast(image_ops.decode_rgb(data), tf.float32)[None],
                    self.canvas,
                    self.resize,
                )[0],
                image_bytes,
                fn_output_signature=tf.TensorSpec((*self.canvas, 3), tf.float32),
            )
        return canvases, tf.cast(sizes, tf.int32)

    def _own_resolution(self, maps: tf.Tensor, sizes: tf.Tensor) -> tf.Tensor:
        # (batch, h, w, C) canvas maps -> (batch, Hmax, Wmax, C), each image's map at
        # its own size in the top-left corner, zeros elsewhere.
        largest = tf.reduce_max(sizes, axis=0)

        def one(item):
            image_maps, size = item
            resized = image_ops.from_canvas(
                image_maps[None], size[0], size[1], self.canvas, self.resize
            )[0]
            padding = [[0, largest[0] - size[0]], [0, largest[1] - size[1]], [0, 0]]
            return tf.pad(resized, padding)

        return tf.map_fn(
            one,
            (maps, sizes),
            fn_output_signature=tf.TensorSpec((None, None, maps.shape[-1]), tf.float32),
        )

    def _bytes_outputs(self, image_bytes: tf.Tensor, explain: bool) -> dict:
        canvases, sizes = self._decode_batch(image_bytes)
        outputs = self._run(canvases)
        saliency = self._to_model_scale(outputs[constants.SALIENCY])
        result = {
            constants.SALIENCY_OUTPUT: self._readable(self._own_resolution(saliency, sizes)),
            constants.HEIGHT_OUTPUT: sizes[:, 0],
            constants.WIDTH_OUTPUT: sizes[:, 1],
        }
        if not explain:
            return result
        if constants.CONTRIBUTIONS in outputs:
            contributions = outputs[constants.CONTRIBUTIONS]
            result[constants.CONTRIBUTIONS_OUTPUT] = self._own_resolution(contributions, sizes)
        for key, value in outputs.items():
            if key.startswith(constants.RECONSTRUCTION_PREFIX):
                result[key] = value
        return result

    def serving_default(self, image_bytes: tf.Tensor) -> dict:
        return self._bytes_outputs(image_bytes, explain=False)

    def explain(self, image_bytes: tf.Tensor) -> dict:
        return self._bytes_outputs(image_bytes, explain=True)

    def serve(self, image: tf.Tensor) -> dict:
        return self.model(image, training=False)


def tap_info(outputs: Mapping, input_size: Sequence[int]) -> list[dict]:
    """Name, stride and channels of each tap an explainable model rebuilds.

    Read from the ``reconstruction_<tap>`` output specs for one canvas, so any
    explainable model of the conventions describes itself.
    """
    prefix = constants.RECONSTRUCTION_PREFIX
    info = []
    for key in sorted(k for k in outputs if k.startswith(prefix)):
        _, height, _, channels = outputs[key].shape
        info.append(
            {"name": key[len(prefix) :], "stride": input_size[0] // height, "channels": channels}
        )
    return info


def save_keras_model(model: keras.Model, folder: Path) -> Path:
    """Saves ``model`` as ``folder/model.keras``; returns the path.

    Raises:
        ValueError: if Keras cannot save it (e.g. an unregistered custom layer).
    """
    path = Path(folder) / constants.KERAS_MODEL_FILE
    try:
        model.save(path)
    except Exception as error:  # Keras raises many types for a model it cannot save.
        raise ValueError(
            f"The explainable model cannot be saved as {constants.KERAS_MODEL_FILE} "
            f"({type(error).__name__}: {error}); register its custom layers with "
            "keras.saving.register_keras_serializable."
        ) from error
    return path


def next_version(model_folder: str | Path) -> int:
    """One more than the highest integer version folder under ``model_folder``."""
    folder = Path(model_folder)
    versions = [int(p.name) for p in folder.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export_model(
    model: keras.Model,
    base_path: str | Path,
    name: str,
    *,
    input_size: Sequence[int],
    output: str,
    resize: str = "pad",
    version: int | None = None,
    metadata: Mapping | None = None,
    contribution_groups: Sequence[str] | None = None,
    warmup_batch_sizes: Sequence[int] = (1,),
    max_image_pixels: int = constants.MAX_IMAGE_PIXELS,
) -> Path:
    """Writes ``base_path/name/version/``: the SavedModel, metadata and warmup records.

    Args:
        model: a functional model of tfsal's conventions: (batch, h, w, 3) RGB in
            [0, 255] -> dict with ``saliency`` (batch, h, w, 1), and for explainable
            models ``contributions`` and ``reconstruction_<tap>`` maps.
        base_path: the model base folder (TF Serving's ``--model_base_path`` parent).
        name: the model name (TF Serving's ``model_spec.name``).
        input_size: the model's (h, w) canvas, as trained.
        output: what ``saliency`` holds: "log_density" or "map".
        resize: how images were fitted to the canvas in training: "pad" or "stretch".
        version: the version number; default one more than the highest present.
        metadata: extra entries for ``assets.extra/tfsal.json``.
        contribution_groups: names of the ``contributions`` channels, recorded in the
            metadata (explainable models).
        warmup_batch_sizes: batch sizes of the warmup requests of each bytes signature.
        max_image_pixels: images whose header declares more pixels are refused.

    Returns:
        The version folder; an explainable model's also holds ``model.keras``.

    Raises:
        ValueError: for an invalid argument, a model outside the conventions, or an
            explainable model Keras cannot save.
        FileExistsError: if the version already exists.
    """
    if output not in constants.OUTPUT_KINDS:
        raise ValueError(
            f"output must be one of {constants.OUTPUT_KINDS}. Received: output={output!r}"
        )
    if resize not in ("pad", "stretch"):
        raise ValueError(f"resize must be 'pad' or 'stretch'. Received: resize={resize!r}")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"name must be a plain folder name. Received: name={name!r}")
    if version is not None and (not isinstance(version, int) or version < 1):
        raise ValueError(f"version must be a positive integer. Received: version={version!r}")
    if len(input_size) != 2 or min(input_size) < 1:
        raise ValueError(f"input_size must be (height, width). Received: input_size={input_size!r}")
    input_size = tuple(int(v) for v in input_size)
    outputs = model_outputs(model, input_size)
    explainable = is_explainable(outputs)
    if contribution_groups is not None:
        if constants.CONTRIBUTIONS not in outputs:
            raise ValueError("contribution_groups given, but the model has no contributions.")
        groups = outputs[constants.CONTRIBUTIONS].shape[-1]
        if len(contribution_groups) != groups:
            raise ValueError(
                f"contribution_groups must name the {groups} contribution channels. "
                f"Received: {len(contribution_groups)} names"
            )

    signatures = _Signatures(
        model,
        input_size,
        output,
        resize,
        max_image_pixels,
        constants.MAX_IMAGE_SIDE,
        constants.MAX_BATCH_PIXELS,
    )
    bytes_spec = [tf.TensorSpec((None,), tf.string, name=constants.IMAGE_BYTES_INPUT)]
    endpoints = {
        constants.DEFAULT_SIGNATURE: (signatures.serving_default, bytes_spec),
        constants.TENSOR_SIGNATURE: (
            signatures.predict_tensor,
            [tf.TensorSpec((None, None, None, 3), tf.float32, name=constants.IMAGES_INPUT)],
        ),
        constants.SERVE_ENDPOINT: (
            signatures.serve,
            [tf.TensorSpec((None, *input_size, 3), tf.float32, name=constants.IMAGE_INPUT)],
        ),
    }
    if explainable:
        endpoints[constants.EXPLAIN_SIGNATURE] = (signatures.explain, bytes_spec)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for endpoint, (function, input_signature) in endpoints.items():
        archive.add_endpoint(endpoint, function, input_signature)
    bytes_signatures = [s for s in endpoints if endpoints[s][1] is bytes_spec]
    description = {
        **(metadata or {}),
        "output": output,
        "input_size": list(input_size),
        "resize": resize,
        "served_saliency": (
            constants.SERVED_DENSITY if output == constants.LOG_DENSITY else constants.SERVED_MAP
        ),
        "signatures": sorted(endpoints),
        "explainable": explainable,
        "max_image_pixels": max_image_pixels,
    }
    if explainable:
        description["tap_info"] = tap_info(outputs, input_size)
        description["taps"] = [tap["name"] for tap in description["tap_info"]]
        if contribution_groups is not None:
            description["contribution_groups"] = list(contribution_groups)

    model_folder = Path(base_path) / name
    destination = model_folder / str(version or next_version(model_folder))
    with atomic_directory(destination) as folder:
        archive.write_out(str(folder), verbose=False)
        extra = folder / constants.METADATA_DIR
        atomic_write_text(extra / constants.METADATA_FILE, json.dumps(description, indent=2))
        warmup.write_warmup_requests(
            extra / constants.WARMUP_FILE,
            name,
            input_size,
            bytes_signatures,
            batch_sizes=warmup_batch_sizes,
        )
        if explainable:
            save_keras_model(model, folder)
    return destination
