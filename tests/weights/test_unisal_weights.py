import re

import numpy as np
import pytest

import tfsal.models
from tests.weights import torch_files
from tfsal.weights import CheckpointError
from tfsal.weights.unisal import (
    SOURCES,
    is_ignored_key,
    load_unisal_weights,
    unisal_mappings,
    unisal_state_dict,
)

SIZE = (64, 64)


@pytest.fixture(scope="module")
def source_model():
    """A UNISAL model whose every weight (BN statistics included) is random."""
    model = tfsal.models.get("unisal", input_size=SIZE)
    rng = np.random.default_rng(1)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "variance" in variable.path:
            value = rng.uniform(0.5, 1.5, shape)
        elif "gaussians" in variable.path:
            value = variable.numpy() + rng.normal(0, 0.05, shape)
        else:
            value = variable.numpy() + rng.normal(0, 0.02, shape)
        variable.assign(value.astype("float32"))
    return model


@pytest.fixture(scope="module")
def target_model():
    return tfsal.models.get("unisal", input_size=SIZE)


def _released_layout(state_dict):
    """Adds what the released 4-domain checkpoint holds beyond the SALICON image path."""
    full = {}
    for key, value in state_dict.items():
        full[key] = value
        for source in SOURCES[:-1]:
            if ".bn_SALICON." in key:
                full[key.replace("bn_SALICON", f"bn_{source}")] = value + 1
            for module in ("coarse_gaussians", "adaptation", "smoothing"):
                if key.startswith(f"{module}_salicon"):
                    full[key.replace("_salicon", f"_{source.lower()}")] = value + 1
        if key.endswith("running_var"):
            full[key.replace("running_var", "num_batches_tracked")] = np.asarray(3, "int64")
    full["rnn.cell_list.0.conv_gates.weight"] = np.ones((512, 512, 3, 3), "float32")
    full["rnn.cell_list.0.drop_mask_1"] = np.ones((1, 256, 1, 1), "float32")
    full["post_rnn.0.weight"] = np.ones((256, 256, 1, 1), "float32")
    return full


def test_mapping_fills_every_weight_exactly_once(target_model):
    mappings = unisal_mappings()
    layers = [mapping.layer for mapping in mappings]
    assert len(layers) == len(set(layers))
    mapped = {id(w) for name in layers for w in target_model.get_layer(name).weights}
    assert mapped == {id(w) for w in target_model.weights}
    keys = [key for mapping in mappings for key in mapping.torch_keys()]
    assert len(keys) == len(set(keys))
    assert not any(is_ignored_key(key) for key in keys)


def test_key_names_follow_the_released_checkpoint():
    keys = {key for mapping in unisal_mappings() for key in mapping.torch_keys()}
    for key in (
        "cnn.features.0.0.weight",
        "cnn.features.1.conv.3.weight",
        "cnn.features.7.conv.7.running_var",
        "cnn.features.18.1.bias",
        "post_cnn.inv_res.conv.1.weight",
        "skip_2x.expansion.1.bn_SALICON.running_mean",
        "skip_4x.reduction.0.bias",
        "upsampling_2.inv_res.conv.7.bn_SALICON.weight",
        "post_upsampling_2.inv_res.conv.3.weight",
        "coarse_gaussians_salicon",
        "adaptation_salicon.0.weight",
        "smoothing_salicon.weight",
    ):
        assert key in keys, key
    # Encoder: 314 ImageNet tensors - 52 num_batches_tracked - 2 classifier = 260.
    # Decoder: post_cnn 2 convs + 2 BNs = 10; each skip 1 conv + conv with bias + 2 BNs = 11;
    # each expanded block 3 convs + 3 BNs = 15; priors 1, adaptation 2, smoothing 1.
    assert len(keys) == 260 + 10 + 2 * 11 + 2 * 15 + 4


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_released_checkpoint_round_trip(tmp_path, source_model, target_model, layout):
    path = tmp_path / f"weights_best.{layout}.pth"
    write = torch_files.write_zip if layout == "zip" else torch_files.write_legacy
    write(path, _released_layout(unisal_state_dict(source_model)))
    load_unisal_weights(target_model, path)
    for expected, actual in zip(source_model.weights, target_model.weights, strict=True):
        np.testing.assert_array_equal(actual.numpy(), expected.numpy(), err_msg=expected.path)
    images = np.random.default_rng(2).uniform(0, 255, (2, *SIZE, 3)).astype("float32")
    np.testing.assert_allclose(
        target_model(images)["saliency"].numpy(), source_model(images)["saliency"].numpy()
    )


def test_weights_keyword_and_the_gaussian_layout(tmp_path, source_model):
    path = tmp_path / "weights_ft_mit1003.pth"
    state_dict = unisal_state_dict(source_model)
    torch_files.write_zip(path, state_dict)
    model = tfsal.models.get("unisal", input_size=SIZE, weights=path)
    # (16, y/x, mu/logstd), UNISAL's layout, needs no transposition.
    np.testing.assert_array_equal(
        model.get_layer("gaussian_prior").gaussians.numpy(), state_dict["coarse_gaussians_salicon"]
    )
    np.testing.assert_array_equal(
        model.get_layer("smoothing").kernel.numpy()[:, :, 0, 0],
        state_dict["smoothing_salicon.weight"][0, 0],
    )


@pytest.mark.slow
def test_keras_weights_file(tmp_path, source_model):
    path = tmp_path / "unisal.weights.h5"
    source_model.save_weights(path)
    model = tfsal.models.get("unisal", input_size=SIZE, weights=path)
    np.testing.assert_array_equal(
        model.get_layer("adaptation").bias.numpy(),
        source_model.get_layer("adaptation").bias.numpy(),
    )


@pytest.mark.parametrize(
    "change, message",
    [
        ("drop:skip_4x.reduction.1.bn_SALICON.running_var", "missing tensors"),
        ("add:decoder.extra.weight", "unexpected tensors"),
        ("add:adaptation_salicon.1.weight", "unexpected tensors"),
        ("reshape:coarse_gaussians_salicon", "has shape"),
    ],
)
def test_mismatched_checkpoints_name_the_key(tmp_path, source_model, target_model, change, message):
    action, key = change.split(":")
    state_dict = unisal_state_dict(source_model)
    if action == "drop":
        del state_dict[key]
    elif action == "add":
        state_dict[key] = np.zeros(3, "float32")
    else:
        state_dict[key] = np.zeros((8, 2, 2), "float32")
    path = tmp_path / "broken.pth"
    torch_files.write_zip(path, state_dict)
    before = [w.numpy().copy() for w in target_model.weights]
    with pytest.raises(CheckpointError, match=f"(?=.*{message})(?=.*'{re.escape(key)}')"):
        load_unisal_weights(target_model, path)
    # Nothing is assigned when the checkpoint does not fit.
    for old, variable in zip(before, target_model.weights, strict=True):
        np.testing.assert_array_equal(variable.numpy(), old)


def test_imagenet_weights_are_not_a_unisal_checkpoint(tmp_path, target_model):
    path = tmp_path / "mobilenet.pth"
    torch_files.write_zip(path, {"features.0.0.weight": np.zeros((32, 3, 3, 3), "float32")})
    with pytest.raises(CheckpointError, match="use encoder_weights="):
        load_unisal_weights(target_model, path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        tfsal.models.get("unisal", input_size=SIZE, weights=tmp_path / "absent.pth")
