import re

import numpy as np
import pytest
import skimage.data
import tensorflow as tf

import tfsal.models
from tests.weights import torch_files
from tfsal.weights import CheckpointError, read_state_dict
from tfsal.weights.mobilenet_v2 import load_mobilenet_v2_encoder, mobilenet_v2_classifier

IMAGENET_FILE = "mobilenet_v2-b0353104.pth"
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
CUP_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug

# torchvision -> tonylins module indices inside an inverted residual block.
_TONYLINS_PLAIN = {"0.0": "0", "0.1": "1", "1": "3", "2": "4"}
_TONYLINS_EXPANDED = {"0.0": "0", "0.1": "1", "1.0": "3", "1.1": "4", "2": "6", "3": "7"}


@pytest.fixture(scope="module")
def imagenet_path(weights_dir):
    path = weights_dir / IMAGENET_FILE
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def imagenet_state_dict(imagenet_path):
    return read_state_dict(imagenet_path)


def _to_tonylins(state_dict):
    renamed = {}
    for key, value in state_dict.items():
        match = re.fullmatch(r"features\.(\d+)\.conv\.(\d(?:\.\d)?)\.(\w+)", key)
        if match:
            block, module, parameter = match.groups()
            table = _TONYLINS_PLAIN if block == "1" else _TONYLINS_EXPANDED
            key = f"features.{block}.conv.{table[module]}.{parameter}"
        renamed[key] = value
    return renamed


def _top5(model, image):
    resized = tf.image.resize(image[None].astype("float32"), (224, 224), antialias=True)
    logits = model(resized.numpy()).numpy()[0]
    return set(np.argsort(-logits)[:5].tolist())


@pytest.mark.slow
def test_imported_encoder_reproduces_the_imagenet_classifier(imagenet_path):
    classifier = mobilenet_v2_classifier(imagenet_path)
    assert _top5(classifier, skimage.data.chelsea()) & CAT_CLASSES
    assert _top5(classifier, skimage.data.coffee()) & CUP_CLASSES


@pytest.fixture(scope="module")
def model():
    return tfsal.models.get("unisal", input_size=(64, 64))


def _assert_encoder_holds(model, torchvision_state_dict):
    expected = torchvision_state_dict
    np.testing.assert_array_equal(
        model.get_layer("stem_conv").kernel.numpy(),
        expected["features.0.0.weight"].transpose(2, 3, 1, 0),
    )
    np.testing.assert_array_equal(
        model.get_layer("block_1_depthwise").kernel.numpy()[:, :, :, 0],
        expected["features.1.conv.0.0.weight"][:, 0].transpose(1, 2, 0),
    )
    np.testing.assert_array_equal(
        model.get_layer("block_1_project").kernel.numpy()[0, 0],
        expected["features.1.conv.1.weight"][:, :, 0, 0].T,
    )
    np.testing.assert_array_equal(
        model.get_layer("block_9_expand_bn").moving_mean.numpy(),
        expected["features.9.conv.0.1.running_mean"],
    )
    np.testing.assert_array_equal(
        model.get_layer("block_17_project_bn").moving_variance.numpy(),
        expected["features.17.conv.3.running_var"],
    )
    np.testing.assert_array_equal(
        model.get_layer("head_bn").gamma.numpy(), expected["features.18.1.weight"]
    )


def test_encoder_weights_keyword_loads_the_encoder(imagenet_path, imagenet_state_dict):
    model = tfsal.models.get("unisal", input_size=(64, 64), encoder_weights=imagenet_path)
    _assert_encoder_holds(model, imagenet_state_dict)


def test_tonylins_names_load_the_same_weights(tmp_path, model, imagenet_state_dict):
    path = tmp_path / "mobilenet_v2_tonylins.pth"
    torch_files.write_legacy(path, _to_tonylins(imagenet_state_dict))
    load_mobilenet_v2_encoder(model, path)
    _assert_encoder_holds(model, imagenet_state_dict)


def test_imagenet_shortcut_resolves_to_the_shared_file(
    monkeypatch, model, imagenet_path, imagenet_state_dict
):
    monkeypatch.setenv("TFSAL_SHARED", str(imagenet_path.parent.parent))
    load_mobilenet_v2_encoder(model, "imagenet")
    _assert_encoder_holds(model, imagenet_state_dict)


def _small_encoder_file(tmp_path, state_dict):
    path = tmp_path / "encoder.pth"
    torch_files.write_zip(path, state_dict)
    return path


def test_missing_tensor_is_named(tmp_path, model, imagenet_state_dict):
    broken = dict(imagenet_state_dict)
    del broken["features.5.conv.1.1.running_mean"]
    path = _small_encoder_file(tmp_path, broken)
    with pytest.raises(
        CheckpointError, match=r"missing tensors \['features\.5\.conv\.1\.1\.running_mean'\]"
    ):
        load_mobilenet_v2_encoder(model, path)


def test_unexpected_tensor_is_named(tmp_path, model, imagenet_state_dict):
    broken = dict(imagenet_state_dict, **{"features.19.0.weight": np.zeros((3,), "float32")})
    path = _small_encoder_file(tmp_path, broken)
    with pytest.raises(CheckpointError, match=r"unexpected tensors \['features\.19\.0\.weight'\]"):
        load_mobilenet_v2_encoder(model, path)


def test_mis_shaped_tensor_is_named(tmp_path, model, imagenet_state_dict):
    broken = dict(imagenet_state_dict)
    broken["features.18.0.weight"] = np.zeros((1280, 320, 3, 3), "float32")
    path = _small_encoder_file(tmp_path, broken)
    with pytest.raises(
        CheckpointError, match=r"'features\.18\.0\.weight' has shape \(1280, 320, 3, 3\)"
    ):
        load_mobilenet_v2_encoder(model, path)


def test_not_a_mobilenet_state_dict(tmp_path, model):
    path = _small_encoder_file(tmp_path, {"fc.weight": np.zeros((2, 2), "float32")})
    with pytest.raises(CheckpointError, match="Not a MobileNetV2 state dict"):
        load_mobilenet_v2_encoder(model, path)


def test_a_unisal_checkpoint_is_not_encoder_weights(tmp_path, model):
    path = _small_encoder_file(tmp_path, {"cnn.features.0.0.weight": np.zeros(3, "float32")})
    with pytest.raises(CheckpointError, match="pass it as weights="):
        load_mobilenet_v2_encoder(model, path)
