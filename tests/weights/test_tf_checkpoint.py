import numpy as np
import pytest
import tensorflow as tf

import tfsal.models
from tfsal.weights import tf_checkpoint
from tfsal.weights.msinet import (
    assign_msinet_tensors,
    load_msinet_weights,
    map_msinet_tensors,
    msinet_original_tensors,
)

SIZE = 32


@pytest.fixture(scope="module")
def source_tensors():
    """MSI-Net weights in the original TF1 naming, with non-zero biases."""
    model = tfsal.models.get("msinet", input_size=(SIZE, SIZE))
    rng = np.random.default_rng(0)
    tensors = msinet_original_tensors(model)
    for name, value in tensors.items():
        if name.endswith("bias"):
            tensors[name] = rng.normal(0.0, 0.05, value.shape).astype("float32")
    return tensors


@pytest.fixture(scope="module")
def target():
    return tfsal.models.get("msinet", taps=("conv3_3", "aspp"), input_size=(SIZE, SIZE))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")


def _conv(x, tensors, scope, dilation=1, relu=True):
    x = tf.nn.conv2d(x, tensors[f"{scope}/kernel"], 1, "SAME", dilations=dilation)
    x = x + tensors[f"{scope}/bias"]
    return tf.nn.relu(x) if relu else x


def _upsample(x, shape, factor):
    size = (shape[1] * factor, shape[2] * factor)
    return tf.compat.v1.image.resize_bilinear(x, size, half_pixel_centers=False)


def reference_forward(tensors, images):
    """MSI-Net written with raw TF ops after the original TF1 model.py."""
    x = images - tf.reshape(tf.constant([103.939, 116.779, 123.68]), (1, 1, 1, 3))
    pooled = []
    for stage, count in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)):
        for index in range(1, count + 1):
            x = _conv(x, tensors, f"conv{stage}/conv{stage}_{index}", 2 if stage == 5 else 1)
        stride = 2 if stage <= 3 else 1
        x = tf.nn.max_pool2d(x, 2, stride, "VALID" if stage <= 3 else "SAME")
        if stage >= 3:
            pooled.append(x)
    features = tf.concat(pooled, axis=3)
    branches = [_conv(features, tensors, "aspp/conv1_1")]
    for index, rate in ((2, 4), (3, 8), (4, 12)):
        branches.append(_conv(features, tensors, f"aspp/conv1_{index}", rate))
    context = tf.reduce_mean(features, axis=(1, 2), keepdims=True)
    context = _conv(context, tensors, "aspp/conv1_5")
    branches.append(_upsample(context, tf.shape(features), 1))
    x = _conv(tf.concat(branches, axis=3), tensors, "aspp/conv2")
    for index in (1, 2, 3):
        x = _conv(_upsample(x, tf.shape(x), 2), tensors, f"decoder/conv{index}")
    x = _conv(x, tensors, "decoder/conv4", relu=False)
    x -= tf.reduce_min(x, axis=(1, 2, 3), keepdims=True)
    return (x / (1e-7 + tf.reduce_max(x, axis=(1, 2, 3), keepdims=True))).numpy()


@pytest.fixture(scope="module")
def reference_output(source_tensors, images):
    return reference_forward(source_tensors, images)


def _clear(model):
    for weight in model.weights:
        weight.assign(tf.zeros(weight.shape, weight.dtype))


def _assert_reproduces(model, images, reference_output):
    np.testing.assert_allclose(model(images)["saliency"], reference_output, atol=2e-5)


def _write_checkpoint(tensors, prefix):
    names = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(tensors[name]) for name in names],
    )


def _write_frozen_graph(tensors, path):
    graph_def = tf.compat.v1.GraphDef()
    for name, value in tensors.items():
        node = graph_def.node.add(name=name, op="Const")
        node.attr["dtype"].type = tf.dtypes.as_dtype(value.dtype).as_datatype_enum
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
    path.write_bytes(graph_def.SerializeToString())


def test_checkpoint_in_original_naming_reproduces_outputs(
    source_tensors, target, images, reference_output, tmp_path
):
    # A training checkpoint also holds Adam slots and step counters: they are skipped.
    optimizer_state = {
        "conv1/conv1_1/kernel/Adam": np.zeros((3, 3, 3, 64), "float32"),
        "conv1/conv1_1/kernel/Adam_1": np.zeros((3, 3, 3, 64), "float32"),
        "beta1_power": np.float32(0.9),
        "global_step": np.int64(7),
    }
    prefix = tmp_path / "model_salicon_cpu.ckpt"
    _write_checkpoint({**source_tensors, **optimizer_state}, prefix)
    assert tf_checkpoint.detect_format(prefix) == tf_checkpoint.CHECKPOINT
    assert tf_checkpoint.detect_format(f"{prefix}.index") == tf_checkpoint.CHECKPOINT
    _clear(target)
    load_msinet_weights(target, prefix)
    _assert_reproduces(target, images, reference_output)
    # The registry builder takes the same path and the .index file alike.
    built = tfsal.models.get("msinet", weights=f"{prefix}.index", input_size=(SIZE, SIZE))
    _assert_reproduces(built, images, reference_output)


def test_frozen_graph_loads(source_tensors, target, images, reference_output, tmp_path):
    path = tmp_path / "model_salicon_cpu.pb"
    graph_constants = {"imagenet_mean": np.array([103.939, 116.779, 123.68], "float32")}
    _write_frozen_graph({**source_tensors, **graph_constants}, path)
    assert tf_checkpoint.detect_format(path) == tf_checkpoint.FROZEN_GRAPH
    assert set(tf_checkpoint.read_frozen_graph(path)) == {*source_tensors, "imagenet_mean"}
    _clear(target)
    load_msinet_weights(target, path)
    _assert_reproduces(target, images, reference_output)


def test_saved_model_variables_copied_by_name(
    source_tensors, target, images, reference_output, tmp_path
):
    module = tf.Module()
    module.weights = [tf.Variable(value, name=name) for name, value in source_tensors.items()]
    path = tmp_path / "msinet_savedmodel"
    tf.saved_model.save(module, str(path))
    assert tf_checkpoint.detect_format(path) == tf_checkpoint.SAVED_MODEL
    assert set(tf_checkpoint.read_saved_model_variables(path)) == set(source_tensors)
    _clear(target)
    load_msinet_weights(target, path)
    _assert_reproduces(target, images, reference_output)


def test_keras_weights_file_loads(source_tensors, target, images, reference_output, tmp_path):
    assign_msinet_tensors(target, source_tensors, "test")
    path = tmp_path / "msinet.weights.h5"
    target.save_weights(path)
    _clear(target)
    load_msinet_weights(target, path)
    _assert_reproduces(target, images, reference_output)


def test_prefixed_and_keras_style_names_are_mapped(source_tensors):
    renamed = {}
    for index, (name, value) in enumerate(source_tensors.items()):
        if index % 2:
            renamed[f"msinet/{name}:0"] = value
        else:
            scope, kind = name.rsplit("/", 1)
            layer = scope.split("/")[1] if scope.startswith("conv") else scope.replace("/", "_")
            renamed[f"{layer}/{kind}"] = value
    mapped = map_msinet_tensors(renamed, "test")
    assert set(mapped) == set(source_tensors)
    for name, value in mapped.items():
        np.testing.assert_array_equal(value, source_tensors[name])


def test_missing_tensor_is_named(source_tensors):
    tensors = dict(source_tensors)
    del tensors["aspp/conv1_5/bias"]
    with pytest.raises(ValueError, match="aspp/conv1_5/bias"):
        map_msinet_tensors(tensors, "test")


def test_extra_tensor_is_named(source_tensors):
    tensors = {**source_tensors, "conv6/conv6_1/kernel": np.zeros((3, 3, 1, 1), "float32")}
    with pytest.raises(ValueError, match="conv6/conv6_1/kernel"):
        map_msinet_tensors(tensors, "test")


def test_tensor_found_twice_is_named(source_tensors):
    tensors = {
        **source_tensors,
        "copy/decoder/conv4/kernel": source_tensors["decoder/conv4/kernel"],
    }
    with pytest.raises(ValueError, match="decoder/conv4/kernel.*twice"):
        map_msinet_tensors(tensors, "test")


def test_misshaped_tensor_is_named(source_tensors, target):
    tensors = dict(source_tensors)
    tensors["conv2/conv2_1/kernel"] = np.zeros((3, 3, 64, 64), "float32")
    before = target.get_layer("conv1_1").kernel.numpy().copy()
    with pytest.raises(ValueError, match=r"conv2/conv2_1/kernel.*\(3, 3, 64, 128\)"):
        assign_msinet_tensors(target, tensors, "test")
    # Nothing is assigned when any tensor does not fit.
    np.testing.assert_array_equal(target.get_layer("conv1_1").kernel.numpy(), before)


def test_missing_path_is_reported(tmp_path, target):
    with pytest.raises(FileNotFoundError, match="nowhere.ckpt"):
        load_msinet_weights(target, tmp_path / "nowhere.ckpt")


def test_unknown_file_is_reported(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"1234")
    with pytest.raises(ValueError, match="Cannot tell the weight format"):
        tf_checkpoint.detect_format(path)


def test_corrupt_frozen_graph_is_reported(tmp_path):
    path = tmp_path / "broken.pb"
    path.write_bytes(b"\x08\x96\x01 this is not a graph \xff\xff")
    with pytest.raises(ValueError, match="broken.pb"):
        tf_checkpoint.read_frozen_graph(path)


def test_corrupt_checkpoint_is_reported(tmp_path):
    prefix = tmp_path / "broken.ckpt"
    _write_checkpoint({"conv1/conv1_1/bias": np.ones(64, "float32")}, prefix)
    index = tmp_path / "broken.ckpt.index"
    index.write_bytes(index.read_bytes()[:20])
    with pytest.raises(ValueError, match="broken.ckpt"):
        tf_checkpoint.read_checkpoint(prefix)


def test_checkpoint_from_another_model_is_rejected(tmp_path, target):
    prefix = tmp_path / "other.ckpt"
    _write_checkpoint({"dense/kernel": np.ones((2, 2), "float32")}, prefix)
    with pytest.raises(ValueError, match="dense/kernel"):
        load_msinet_weights(target, prefix)


def test_folder_with_one_checkpoint_is_detected(tmp_path):
    _write_checkpoint({"conv1/conv1_1/bias": np.ones(64, "float32")}, tmp_path / "only.ckpt")
    assert tf_checkpoint.detect_format(tmp_path) == tf_checkpoint.CHECKPOINT
    assert set(tf_checkpoint.read_checkpoint(tmp_path)) == {"conv1/conv1_1/bias"}
