"""The shared test harness (after keras-hub's ``TestCase``).

Every custom layer goes through ``run_layer_test``; every model through
``run_model_saving_test`` and ``run_export_test``; a command's rejected input
through ``error_line``. The helpers assert; they are called from ordinary pytest
functions.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf


def _as_numpy_tree(outputs):
    return tf.nest.map_structure(lambda x: np.asarray(keras.ops.convert_to_numpy(x)), outputs)


def _assert_trees_close(actual, expected, atol, rtol=1e-5):
    tf.nest.assert_same_structure(actual, expected)
    for a, e in zip(tf.nest.flatten(actual), tf.nest.flatten(expected), strict=True):
        np.testing.assert_allclose(a, e, atol=atol, rtol=rtol)


def _shape_tree(outputs):
    return tf.nest.map_structure(lambda x: tuple(x.shape), outputs)


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape=None,
    run_training_step=True,
    expect_trainable_weights=None,
    atol=1e-5,
):
    """Checks a layer's anatomy: config round trip, symbolic and eager calls, training.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments.
        input_data: one batch of input (numpy array).
        expected_output_shape: the eager output shape (or a tree of shapes).
        run_training_step: whether to fit one step and check the loss is finite.
        expect_trainable_weights: if given, the number of trainable weights.
        atol: tolerance for the round-tripped layer's output.

    Returns:
        The eager output of the layer built from ``init_kwargs``.
    """
    layer = layer_cls(**init_kwargs)

    # get_config returns exactly the constructor arguments, and from_config rebuilds.
    config = layer.get_config()
    for key, value in init_kwargs.items():
        assert key in config, f"get_config() lacks constructor argument {key!r}"
        assert _normalise(config[key]) == _normalise(value), (
            f"get_config()[{key!r}] = {config[key]!r}, constructed with {value!r}"
        )
    revived = layer_cls.from_config(config)
    assert _normalise(revived.get_config()) == _normalise(config)
    serialized = keras.saving.serialize_keras_object(layer)
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert type(deserialized) is layer_cls

    # Eager call.
    output = layer(input_data)
    if expected_output_shape is not None:
        assert _shape_tree(output) == _normalise(expected_output_shape)
    if expect_trainable_weights is not None:
        assert len(layer.trainable_weights) == expect_trainable_weights

    # Symbolic call with a free batch size, consistent with compute_output_shape.
    symbolic_input = keras.Input(shape=input_data.shape[1:], dtype=str(input_data.dtype))
    symbolic_output = layer_cls(**init_kwargs)(symbolic_input)
    eager_shapes = _shape_tree(output)
    symbolic_shapes = tf.nest.map_structure(lambda x: tuple(x.shape), symbolic_output)
    tf.nest.assert_same_structure(symbolic_shapes, eager_shapes, check_types=False)
    for symbolic, eager in zip(
        _flatten_shapes(symbolic_shapes), _flatten_shapes(eager_shapes), strict=True
    ):
        assert symbolic[0] is None
        assert all(s is None or s == e for s, e in zip(symbolic[1:], eager[1:], strict=True)), (
            f"symbolic shape {symbolic} disagrees with eager shape {eager}"
        )

    # The revived layer computes the same function (weights copied when it has any).
    revived(input_data)
    if layer.weights:
        revived.set_weights(layer.get_weights())
    _assert_trees_close(_as_numpy_tree(revived(input_data)), _as_numpy_tree(output), atol)

    if run_training_step:
        _run_one_training_step(layer_cls(**init_kwargs), input_data)
    return output


def _flatten_shapes(shape_tree):
    if isinstance(shape_tree, tuple) and all(s is None or isinstance(s, int) for s in shape_tree):
        return [shape_tree]
    if isinstance(shape_tree, dict):
        return [s for key in sorted(shape_tree) for s in _flatten_shapes(shape_tree[key])]
    return [s for item in shape_tree for s in _flatten_shapes(item)]


def _normalise(value):
    if isinstance(value, list | tuple):
        return tuple(_normalise(v) for v in value)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


def _run_one_training_step(layer, input_data):
    inputs = keras.Input(shape=input_data.shape[1:], dtype=str(input_data.dtype))
    outputs = layer(inputs)
    flat = tf.nest.flatten(outputs)
    floats = [x for x in flat if "float" in str(x.dtype)]
    pooled = [keras.ops.mean(keras.ops.cast(x, "float32")) for x in floats]
    total = pooled[0] if len(pooled) == 1 else keras.ops.sum(keras.ops.stack(pooled))
    model = keras.Model(inputs, keras.ops.reshape(total, (1,)))
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    before = [w.numpy().copy() for w in layer.trainable_weights]
    history = model.fit(
        input_data,
        np.zeros((len(input_data), 1), "float32"),
        epochs=1,
        verbose=0,
        batch_size=len(input_data),
    )
    assert np.isfinite(history.history["loss"][-1]), "training step gave a non-finite loss"
    after = [w.numpy() for w in layer.trainable_weights]
    if before:
        assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True)), (
            "one training step changed no trainable weight"
        )


def run_model_saving_test(model, input_data, tmp_path, atol=1e-5):
    """Saves ``model`` as a ``.keras`` file, reloads it and compares outputs."""
    expected = _as_numpy_tree(model(input_data, training=False))
    path = Path(tmp_path) / f"{model.name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    _assert_trees_close(_as_numpy_tree(restored(input_data, training=False)), expected, atol)
    return restored


def run_export_test(
    model, input_data, tmp_path, other_batch_size=None, atol=1e-5, fresh_process=False
):
    """Exports ``model`` as a SavedModel, reloads it, and calls it with two batch sizes.

    Args:
        model: a Keras model taking one tensor input.
        input_data: one batch of input.
        tmp_path: a scratch folder.
        other_batch_size: a second batch size to call the reloaded model with
            (default: one more than ``len(input_data)``).
        atol: tolerance against the Keras model's outputs.
        fresh_process: also reload and call it in a new Python process that does
            not import tfsal, so no custom class is registered there.

    Returns:
        The export path.
    """
    path = Path(tmp_path) / f"{model.name}_savedmodel"
    model.export(str(path), format="tf_saved_model", verbose=False)
    reloaded = tf.saved_model.load(str(path))
    expected = _as_numpy_tree(model(input_data, training=False))
    _assert_trees_close(_as_numpy_tree(reloaded.serve(tf.constant(input_data))), expected, atol)

    other_batch_size = other_batch_size or len(input_data) + 1
    repeats = int(np.ceil(other_batch_size / len(input_data)))
    other = np.concatenate([input_data] * repeats)[:other_batch_size]
    other_expected = _as_numpy_tree(model(other, training=False))
    _assert_trees_close(_as_numpy_tree(reloaded.serve(tf.constant(other))), other_expected, atol)

    if fresh_process:
        np.save(Path(tmp_path) / "export_input.npy", other)
        np.save(
            Path(tmp_path) / "export_expected.npy", np.asarray(tf.nest.flatten(other_expected)[0])
        )
        script = textwrap.dedent(
            f"""
            import numpy as np, tensorflow as tf, sys
            assert "tfsal" not in sys.modules
            model = tf.saved_model.load({str(path)!r})
            out = model.serve(tf.constant(np.load({str(Path(tmp_path) / "export_input.npy")!r})))
            first = tf.nest.flatten(out)[0].numpy()
            expected = np.load({str(Path(tmp_path) / "export_expected.npy")!r})
            np.testing.assert_allclose(first, expected, atol={atol}, rtol=1e-5)
            print("fresh-process-ok")
            """
        )
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
        assert "fresh-process-ok" in result.stdout, result.stderr[-3000:]
    return path


def error_line(capsys) -> str:
    """Returns the one ``error: ...`` line a command printed to stderr.

    Asserts that there is exactly one and no traceback, as every command of the
    package reports bad input (``training.command``).
    """
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]
