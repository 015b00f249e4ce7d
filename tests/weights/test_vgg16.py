import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfsal.models
from tfsal.weights import vgg16

SHAPES = {
    "conv1_1": (3, 3, 3, 64),
    "conv1_2": (3, 3, 64, 64),
    "conv2_1": (3, 3, 64, 128),
    "conv2_2": (3, 3, 128, 128),
    "conv3_1": (3, 3, 128, 256),
    "conv3_2": (3, 3, 256, 256),
    "conv3_3": (3, 3, 256, 256),
    "conv4_1": (3, 3, 256, 512),
    "conv4_2": (3, 3, 512, 512),
    "conv4_3": (3, 3, 512, 512),
    "conv5_1": (3, 3, 512, 512),
    "conv5_2": (3, 3, 512, 512),
    "conv5_3": (3, 3, 512, 512),
}


@pytest.fixture(scope="module")
def model():
    return tfsal.models.get("msinet", input_size=(16, 16))


@pytest.fixture(scope="module")
def hed_path(weights_dir):
    path = weights_dir / "hed_bsds500.weights.h5"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


def _fake_convolutions(seed=0):
    rng = np.random.default_rng(seed)
    return {
        name: (
            rng.normal(size=shape).astype("float32"),
            rng.normal(size=shape[-1]).astype("float32"),
        )
        for name, shape in SHAPES.items()
    }


def test_hed_file_holds_every_convolution(hed_path):
    convolutions = vgg16.read_vgg16_convolutions(hed_path)
    assert sorted(convolutions) == sorted(SHAPES)
    for name, (kernel, bias) in convolutions.items():
        assert kernel.shape == SHAPES[name]
        assert bias.shape == (SHAPES[name][-1],)
        assert np.abs(kernel).sum() > 0


def test_hed_encoder_loads_into_msinet(hed_path, model):
    convolutions = vgg16.read_vgg16_convolutions(hed_path)
    vgg16.load_vgg16_encoder(model, hed_path)
    for name, (kernel, bias) in convolutions.items():
        layer = model.get_layer(name)
        expected_kernel = kernel[:, :, ::-1, :] if name == "conv1_1" else kernel
        np.testing.assert_array_equal(layer.kernel.numpy(), expected_kernel)
        np.testing.assert_array_equal(layer.bias.numpy(), bias)
    vgg16.load_vgg16_encoder(model, hed_path, bgr_to_rgb=False)
    np.testing.assert_array_equal(
        model.get_layer("conv1_1").kernel.numpy(), convolutions["conv1_1"][0]
    )


def test_bgr_to_rgb_keeps_responses_to_swapped_colours():
    convolutions = _fake_convolutions()
    kernel, bias = convolutions["conv1_1"]
    image_rgb = np.random.default_rng(3).normal(size=(1, 6, 6, 3)).astype("float32")
    bgr_response = tf.nn.conv2d(image_rgb[..., ::-1], kernel, 1, "SAME") + bias
    rgb_kernel = kernel[:, :, ::-1, :]
    rgb_response = tf.nn.conv2d(image_rgb, rgb_kernel, 1, "SAME") + bias
    np.testing.assert_allclose(rgb_response, bgr_response, atol=1e-5)


def test_legacy_keras_h5_layout(tmp_path, model):
    convolutions = _fake_convolutions(seed=1)
    path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with h5py.File(path, "w") as weights_file:
        for name, (kernel, bias) in convolutions.items():
            block, index = name[4], name[6]
            layer_name = f"block{block}_conv{index}"
            group = weights_file.create_group(layer_name)
            names = [f"{layer_name}_W_1:0".encode(), f"{layer_name}_b_1:0".encode()]
            group.attrs["weight_names"] = names
            group.create_dataset(names[0].decode(), data=kernel)
            group.create_dataset(names[1].decode(), data=bias)
    vgg16.load_vgg16_encoder(model, path, bgr_to_rgb=False)
    for name, (kernel, bias) in convolutions.items():
        np.testing.assert_array_equal(model.get_layer(name).kernel.numpy(), kernel)
        np.testing.assert_array_equal(model.get_layer(name).bias.numpy(), bias)


def test_tf_vgg16_checkpoint(tmp_path, model):
    convolutions = _fake_convolutions(seed=2)
    tensors = {}
    for name, (kernel, bias) in convolutions.items():
        tensors[f"{name}/weights"] = kernel
        tensors[f"{name}/biases"] = bias
    names = sorted(tensors)
    prefix = tmp_path / "vgg16_hybrid.ckpt"
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(tensors[name]) for name in names],
    )
    vgg16.load_vgg16_encoder(model, prefix, bgr_to_rgb=False)
    np.testing.assert_array_equal(
        model.get_layer("conv4_2").kernel.numpy(), tensors["conv4_2/weights"]
    )


def test_keras3_file_without_every_convolution_is_rejected(tmp_path, model):
    partial = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(64, 3, name="block1_conv1")]
    )
    path = tmp_path / "partial.weights.h5"
    partial.save_weights(path)
    with pytest.raises(ValueError, match=r"lacks VGG16 convolutions \['conv1_2'"):
        vgg16.load_vgg16_encoder(model, path)


def test_misshaped_convolution_is_named(tmp_path, model, monkeypatch):
    convolutions = _fake_convolutions()
    convolutions["conv3_2"] = (np.zeros((3, 3, 256, 128), "float32"), np.zeros(128, "float32"))
    monkeypatch.setattr(vgg16, "read_vgg16_convolutions", lambda source: convolutions)
    with pytest.raises(ValueError, match=r"conv3_2 kernel.*\(3, 3, 256, 256\)"):
        vgg16.load_vgg16_encoder(model, "fake")


def test_offline_imagenet_gives_clear_message(monkeypatch):
    def offline(**kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.applications, "VGG16", offline)
    with pytest.raises(RuntimeError, match="offline: pass a local file"):
        vgg16.read_vgg16_convolutions("imagenet")


def test_corrupt_h5_is_reported(tmp_path):
    path = tmp_path / "broken.weights.h5"
    path.write_bytes(b"not an hdf5 file")
    with pytest.raises(ValueError, match="broken.weights.h5"):
        vgg16.read_vgg16_convolutions(path)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError):
        vgg16.read_vgg16_convolutions(tmp_path / "absent.h5")


def test_registry_builder_takes_encoder_weights(hed_path):
    built = tfsal.models.get("msinet", input_size=(16, 16), encoder_weights=hed_path)
    kernel, bias = vgg16.read_vgg16_convolutions(hed_path)["conv4_3"]
    np.testing.assert_array_equal(built.get_layer("conv4_3").kernel.numpy(), kernel)
    np.testing.assert_array_equal(built.get_layer("conv4_3").bias.numpy(), bias)
