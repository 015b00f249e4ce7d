"""Reads named tensors from TensorFlow's weight formats without rebuilding the graph.

Three formats hold the released TensorFlow saliency models (MSI-Net among them):

- TF1 training checkpoints (``model.ckpt.index`` + ``model.ckpt.data-*``), whose keys
  are the variable names (``conv1/conv1_1/kernel``), read with
  ``tf.train.load_checkpoint``;
- frozen GraphDefs (``.pb``), where ``freeze_graph`` turned every variable into a
  ``Const`` node of the same name;
- SavedModels (a folder with ``saved_model.pb``), whose variables keep their names.

Each reader returns ``{name: numpy array}``; mapping names onto a Keras model is the
job of a model-specific module such as ``tfsal.weights.msinet``.
"""

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

CHECKPOINT = "checkpoint"
FROZEN_GRAPH = "frozen_graph"
SAVED_MODEL = "saved_model"
KERAS_WEIGHTS = "keras"
FORMATS = (CHECKPOINT, FROZEN_GRAPH, SAVED_MODEL, KERAS_WEIGHTS)


def _checkpoint_prefix(path: Path) -> Path | None:
    """Returns the checkpoint prefix that ``path`` names, or None if it names none."""
    if path.is_dir():
        latest = tf.train.latest_checkpoint(str(path))
        if latest:
            return Path(latest)
        indexes = sorted(path.glob("*.index"))
        return indexes[0].with_suffix("") if len(indexes) == 1 else None
    if path.suffix == ".index":
        return path.with_suffix("")
    if ".data-" in path.name:
        return path.with_name(path.name.split(".data-")[0])
    if path.with_name(path.name + ".index").exists():
        return path
    return None


def detect_format(path: str | os.PathLike) -> str:
    """Tells which weight format ``path`` holds, from its name and contents.

    Args:
        path: a checkpoint prefix (or its ``.index`` / ``.data-*`` file, or a folder
            holding one checkpoint), a frozen GraphDef ``.pb``, a SavedModel folder,
            or a Keras ``.weights.h5`` / ``.keras`` file.

    Returns:
        One of ``FORMATS``.

    Raises:
        FileNotFoundError: if nothing exists at ``path``.
        ValueError: if the path exists but is none of these formats.
    """
    path = Path(path)
    if path.is_dir() and (path / "saved_model.pb").exists():
        return SAVED_MODEL
    if path.is_file() and (path.name.endswith(".h5") or path.suffix == ".keras"):
        return KERAS_WEIGHTS
    if path.is_file() and path.suffix == ".pb":
        return FROZEN_GRAPH
    prefix = _checkpoint_prefix(path) if path.exists() or path.parent.is_dir() else None
    if prefix is not None and prefix.with_name(prefix.name + ".index").exists():
        return CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(
            f"No weights found at {path}: expected a checkpoint prefix (with a .index "
            "file beside it), a frozen graph .pb, a SavedModel folder or a .weights.h5 file."
        )
    raise ValueError(
        f"Cannot tell the weight format of {path}. Pass a TF checkpoint prefix or its "
        ".index file, a frozen GraphDef ending in .pb, a SavedModel folder (with "
        "saved_model.pb) or a Keras .weights.h5 file."
    )


def read_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads every tensor of a TF checkpoint, keyed by its variable name.

    Args:
        path: the checkpoint prefix, its ``.index`` or ``.data-*`` file, or a folder
            holding a single checkpoint.

    Returns:
        ``{variable name: value}``.

    Raises:
        FileNotFoundError: if no checkpoint is found at ``path``.
        ValueError: if the checkpoint files cannot be read.
    """
    path = Path(path)
    prefix = _checkpoint_prefix(path)
    if prefix is None or not prefix.with_name(prefix.name + ".index").exists():
        raise FileNotFoundError(f"No TF checkpoint at {path} (looked for {path}.index).")
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    except (tf.errors.OpError, ValueError) as error:
        raise ValueError(
            f"The TF checkpoint {prefix} is unreadable or corrupt ({type(error).__name__}: "
            f"{str(error).splitlines()[0]}). Download it again."
        ) from error


def read_frozen_graph(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads the ``Const`` nodes of a frozen GraphDef.

    Args:
        path: a binary ``GraphDef`` file (``.pb``).

    Returns:
        ``{node name: value}`` for every constant of the graph (weights and the
        graph's other constants alike).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is not a binary GraphDef.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No frozen graph at {path}.")
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as error:  # protobuf raises its own DecodeError
        raise ValueError(
            f"{path} is not a binary frozen GraphDef ({type(error).__name__}: {error}). "
            "Download it again or pass the checkpoint instead."
        ) from error
    constants = {
        node.name: tf.make_ndarray(node.attr["value"].tensor)
        for node in graph_def.node
        if node.op == "Const"
    }
    if not constants:
        raise ValueError(f"{path} holds no Const nodes: it is not a frozen GraphDef.")
    return constants


def _variable_name(variable: tf.Variable) -> str:
    name = variable.name
    return name[: -len(":0")] if name.endswith(":0") else name


def read_saved_model_variables(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads the variables of a SavedModel, keyed by variable name.

    Works for SavedModels written by TF2 (``tf.saved_model.save``) and for TF1
    SavedModels loaded through ``tf.saved_model.load``. No signature is run.

    Args:
        path: the SavedModel folder (holding ``saved_model.pb``).

    Returns:
        ``{variable name without ':0': value}``.

    Raises:
        FileNotFoundError: if ``path`` holds no ``saved_model.pb``.
        ValueError: if the SavedModel cannot be loaded or has duplicate names.
    """
    path = Path(path)
    if not (path / "saved_model.pb").exists():
        raise FileNotFoundError(f"No SavedModel at {path} (no saved_model.pb in it).")
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as error:  # loading raises many error types for corrupt files
        raise ValueError(
            f"The SavedModel at {path} cannot be loaded ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''})."
        ) from error
    variables = getattr(loaded, "variables", None)
    if not isinstance(variables, list | tuple):
        variables = [
            child
            for child in tf.train.TrackableView(loaded).descendants()
            if isinstance(child, tf.Variable)
        ]
    values: dict[str, np.ndarray] = {}
    seen: set[int] = set()
    for variable in variables:
        if id(variable) in seen:
            continue
        seen.add(id(variable))
        name = _variable_name(variable)
        if name in values:
            raise ValueError(f"The SavedModel at {path} has two variables named {name!r}.")
        values[name] = variable.numpy()
    return values


def read_tensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads the named tensors of any TensorFlow format ``detect_format`` knows.

    Args:
        path: a checkpoint, frozen graph or SavedModel.

    Returns:
        ``{name: value}``.

    Raises:
        ValueError: for Keras weight files (load those with ``model.load_weights``)
            or unknown formats.
    """
    weight_format = detect_format(path)
    readers = {
        CHECKPOINT: read_checkpoint,
        FROZEN_GRAPH: read_frozen_graph,
        SAVED_MODEL: read_saved_model_variables,
    }
    if weight_format not in readers:
        raise ValueError(
            f"{path} is a Keras weight file; load it with model.load_weights(), not read_tensors."
        )
    return readers[weight_format](path)
