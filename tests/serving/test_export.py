import dataclasses
import json

import cv2
import numpy as np
import pytest
import tensorflow as tf

from serving import constants, image_ops
from serving.export import export_model, next_version
from tests.serving import tiny_models
from tests.serving.tiny_models import jpeg, picture, png
from tfsal.data.targets import model_input, resize_geometry

SIZE = tiny_models.INPUT_SIZE


@pytest.fixture(scope="module")
def deep():
    keras_model = tiny_models.deep_model()
    return keras_model


@pytest.fixture(scope="module")
def deep_export(deep, tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    path = export_model(deep, base, "tiny", input_size=SIZE, output="log_density")
    return path, tf.saved_model.load(str(path))


@pytest.fixture(scope="module")
def explainable_export(tmp_path_factory):
    keras_model = tiny_models.explainable_model()
    base = tmp_path_factory.mktemp("models")
    path = export_model(
        keras_model,
        base,
        "tiny_explainable",
        input_size=SIZE,
        output="log_density",
        contribution_groups=["luminance", "prior"],
    )
    return keras_model, path, tf.saved_model.load(str(path))


def keras_density(model, image):
    log_density = model(image[None].astype(np.float32), training=False)["saliency"]
    return np.exp(np.asarray(log_density)[0, ..., 0])


def call(loaded, signature, **inputs):
    outputs = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    return {key: value.numpy() for key, value in outputs.items()}


def test_signatures_and_metadata(deep_export):
    path, loaded = deep_export
    assert path.name == "1" and path.parent.name == "tiny"
    assert set(loaded.signatures) == {
        constants.DEFAULT_SIGNATURE,
        constants.TENSOR_SIGNATURE,
        constants.SERVE_ENDPOINT,
    }
    metadata = json.loads((path / constants.METADATA_DIR / constants.METADATA_FILE).read_text())
    assert metadata["input_size"] == list(SIZE)
    assert metadata["served_saliency"] == constants.SERVED_DENSITY
    assert metadata["explainable"] is False
    assert not list(path.parent.glob(".*"))  # nothing left of the temporary folder


def test_tensor_signature_matches_the_keras_model_at_its_input_size(deep, deep_export):
    image = picture(*SIZE)
    saliency = call(
        deep_export[1], constants.TENSOR_SIGNATURE, images=image[None].astype(np.float32)
    )
    expected = keras_density(deep, image)
    np.testing.assert_allclose(saliency["saliency"][0], expected / expected.sum(), rtol=1e-5)


def test_bytes_signature_matches_the_keras_model_for_a_lossless_image(deep, deep_export):
    image = picture(*SIZE)
    result = call(deep_export[1], constants.DEFAULT_SIGNATURE, image_bytes=[png(image)])
    expected = keras_density(deep, image)
    np.testing.assert_allclose(result["saliency"][0], expected / expected.sum(), rtol=1e-5)
    assert result["height"].tolist() == [SIZE[0]] and result["width"].tolist() == [SIZE[1]]


def test_mixed_sizes_come_back_padded_each_at_its_own_resolution(deep_export):
    loaded = deep_export[1]
    small, large = picture(20, 30, seed=1), picture(45, 40, seed=2)
    result = call(loaded, constants.DEFAULT_SIGNATURE, image_bytes=[png(small), png(large)])
    assert result["saliency"].shape == (2, 45, 40)
    assert result["height"].tolist() == [20, 45] and result["width"].tolist() == [30, 40]
    padded = result["saliency"][0]
    assert np.all(padded[20:] == 0) and np.all(padded[:, 30:] == 0)
    alone = call(loaded, constants.DEFAULT_SIGNATURE, image_bytes=[png(small)])["saliency"][0]
    np.testing.assert_allclose(padded[:20, :30], alone, rtol=1e-5, atol=1e-9)
    for saliency in result["saliency"]:
        assert saliency.sum() == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("resize", ["pad", "stretch"])
@pytest.mark.parametrize("shape", [(20, 30), (45, 40), (32, 32), (7, 90), (100, 3)])
def test_canvas_geometry_is_the_training_pipelines(shape, resize):
    top, left, height, width = image_ops.canvas_geometry(*shape, SIZE, resize)
    expected = resize_geometry(shape, SIZE, resize)
    found = [int(top), int(left), int(height), int(width)]
    assert found == [expected.top, expected.left, expected.content_height, expected.content_width]


@pytest.mark.parametrize("shape", [(64, 80), (20, 30)])  # shrinking (area), growing (bilinear)
def test_in_graph_canvas_follows_the_training_inputs(shape):
    image = picture(*shape)
    canvas = image_ops.to_canvas(tf.constant(image[None], tf.float32), SIZE, "pad")[0].numpy()
    expected, _ = model_input(image, SIZE, "pad")
    assert np.abs(canvas - expected).mean() < 1.5  # grey levels; cv2 rounds to uint8


def test_bytes_signature_agrees_with_the_numpy_predictor_path(deep, deep_export):
    # What serving.predictor computes with cv2 around the Keras model.
    image = picture(48, 60)
    canvas, geometry = model_input(image, SIZE, "pad")
    density = keras_density(deep, canvas.astype(np.uint8))[geometry.content_window]
    expected = cv2.resize(density, (60, 48), interpolation=cv2.INTER_LINEAR)
    served = call(deep_export[1], constants.DEFAULT_SIGNATURE, image_bytes=[png(image)])
    np.testing.assert_allclose(served["saliency"][0], expected / expected.sum(), rtol=0.05)


def test_grey_rgba_and_jpeg_inputs_are_accepted(deep_export):
    image = picture(24, 24)
    grey = tf.io.encode_png(image[..., :1]).numpy()
    rgba = tf.io.encode_png(np.concatenate([image, image[..., :1]], axis=-1)).numpy()
    result = call(
        deep_export[1], constants.DEFAULT_SIGNATURE, image_bytes=[grey, rgba, jpeg(image)]
    )
    assert result["saliency"].shape == (3, 24, 24)
    assert np.all(np.isfinite(result["saliency"]))


def test_map_models_are_only_cropped_and_resized(tmp_path):
    model = tiny_models.deep_model("map")
    path = export_model(model, tmp_path, "tiny_map", input_size=SIZE, output="map")
    image = picture(*SIZE)
    served = call(
        tf.saved_model.load(str(path)),
        constants.TENSOR_SIGNATURE,
        images=image[None].astype(np.float32),
    )
    expected = np.asarray(model(image[None].astype(np.float32))["saliency"])[0, ..., 0]
    np.testing.assert_allclose(served["saliency"][0], expected, rtol=1e-5)


def test_serve_endpoint_is_the_keras_model(deep, deep_export):
    image = picture(*SIZE)[None].astype(np.float32)
    served = call(deep_export[1], constants.SERVE_ENDPOINT, image=image)
    np.testing.assert_allclose(served["saliency"], np.asarray(deep(image)["saliency"]), rtol=1e-6)


def test_explain_signature_of_explainable_models(explainable_export):
    model, path, loaded = explainable_export
    assert constants.EXPLAIN_SIGNATURE in loaded.signatures
    image = picture(*SIZE)
    result = call(loaded, constants.EXPLAIN_SIGNATURE, image_bytes=[png(image), png(image[:16])])
    key = constants.reconstruction_key(tiny_models.TAP)
    assert set(result) == {"saliency", "height", "width", "contributions", key}
    assert result["contributions"].shape == (2, 32, 32, 2)
    assert result[key].shape == (2, 16, 16, 4)
    expected = model(image[None].astype(np.float32))
    np.testing.assert_allclose(
        result["contributions"][0], np.asarray(expected["contributions"])[0], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(result[key][0], np.asarray(expected[key])[0], rtol=1e-5, atol=1e-6)
    metadata = json.loads((path / constants.METADATA_DIR / constants.METADATA_FILE).read_text())
    assert metadata["explainable"] is True and metadata["taps"] == [tiny_models.TAP]
    assert metadata["contribution_groups"] == ["luminance", "prior"]
    assert metadata["signatures"] == sorted(loaded.signatures)


def test_versions_are_numbered_and_never_overwritten(deep, tmp_path):
    first = export_model(deep, tmp_path, "tiny", input_size=SIZE, output="log_density")
    second = export_model(deep, tmp_path, "tiny", input_size=SIZE, output="log_density")
    assert (first.name, second.name) == ("1", "2") and next_version(tmp_path / "tiny") == 3
    with pytest.raises(FileExistsError, match="already exists"):
        export_model(deep, tmp_path, "tiny", input_size=SIZE, output="log_density", version=2)
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["1", "2"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"output": "density"}, "output must be one of"),
        ({"resize": "crop"}, "resize must be"),
        ({"version": 0}, "version must be a positive integer"),
        ({"input_size": (32, 32, 3)}, "input_size"),
    ],
)
def test_bad_arguments_are_refused(deep, tmp_path, arguments, message):
    settings = {"input_size": SIZE, "output": "log_density", **arguments}
    with pytest.raises(ValueError, match=message):
        export_model(deep, tmp_path, "tiny", **settings)


def test_models_outside_the_conventions_are_refused(tmp_path):
    import keras

    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))
    with pytest.raises(ValueError, match="must return a dict holding 'saliency'"):
        export_model(model, tmp_path, "plain", input_size=SIZE, output="map")


def declare_size(encoded, height, width):
    # A valid small file whose header claims another size (a decompression bomb).
    data = bytearray(encoded)
    if data.startswith(b"\x89PNG"):
        data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    else:
        frame = data.index(b"\xff\xc0")  # baseline start-of-frame: length, precision, h, w
        data[frame + 5 : frame + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: b"GIF89a not what we take", "image_bytes\\[1\\] is neither a JPEG nor a PNG"),
        (lambda: b"", "image_bytes\\[1\\] is neither a JPEG nor a PNG"),
        (lambda: jpeg(picture(40, 40))[:-300], "image_bytes\\[1\\] is a truncated JPEG"),
        (lambda: png(picture(40, 40))[:-20], "image_bytes\\[1\\] is a truncated PNG"),
        (lambda: declare_size(jpeg(picture(40, 40)), 20000, 20000), "declares 20000x20000"),
        (lambda: declare_size(png(picture(40, 40)), 30000, 9000), "declares 30000x9000"),
        (lambda: declare_size(png(picture(40, 40)), 1, 20000), "sides of at most 16384"),
    ],
)
def test_bad_images_are_refused_with_a_clear_message(deep_export, make, message):
    good = png(picture(20, 20))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        call(deep_export[1], constants.DEFAULT_SIGNATURE, image_bytes=[good, make()])


def test_a_batch_too_large_to_answer_is_refused_before_decoding(deep_export):
    # Each declares 16 megapixels (allowed alone); seven padded maps exceed the bound.
    # The pixels do not match the header, so decoding would fail differently.
    fake = declare_size(png(picture(40, 40)), 4000, 4000)
    with pytest.raises(tf.errors.InvalidArgumentError, match="A batch of 7 images padded to"):
        call(deep_export[1], constants.DEFAULT_SIGNATURE, image_bytes=[fake] * 7)


def test_empty_batches_are_refused(deep_export):
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least one image"):
        call(deep_export[1], constants.DEFAULT_SIGNATURE, image_bytes=tf.constant([], tf.string))


def test_empty_tensor_images_are_refused(deep_export):
    with pytest.raises(tf.errors.InvalidArgumentError, match="1 <= H\\*W"):
        call(deep_export[1], constants.TENSOR_SIGNATURE, images=np.zeros((1, 0, 5, 3), np.float32))


def test_the_predictor_reads_the_export_like_the_keras_model(deep, deep_export):
    from serving import predictor

    image = picture(48, 60)
    loaded = predictor.load_saved_model(deep_export[0])(image)
    in_memory = predictor.predictor_from_function(
        lambda batch: deep(batch, training=False), SIZE, "log_density"
    )(image)
    np.testing.assert_allclose(loaded, in_memory, rtol=1e-5)


def test_explainable_models_without_contributions_explain_their_taps(tmp_path):
    model = tiny_models.decoder_readout_model()
    path = export_model(model, tmp_path, "decoder", input_size=SIZE, output="log_density")
    loaded = tf.saved_model.load(str(path))
    result = call(loaded, constants.EXPLAIN_SIGNATURE, image_bytes=[png(picture(*SIZE))])
    assert set(result) == {"saliency", "height", "width", "reconstruction_encoder"}
    with pytest.raises(ValueError, match="no contributions"):
        export_model(
            model, tmp_path, "d", input_size=SIZE, output="log_density", contribution_groups=["a"]
        )


def test_loaded_model_reads_the_export_like_the_keras_model(deep, deep_export, explainable_export):
    from serving.loaded_model import load_model

    image = picture(*SIZE)[None].astype(np.float32)
    loaded = load_model(deep_export[0])
    assert loaded.input_size == SIZE and loaded.output_kind == "log_density"
    np.testing.assert_allclose(
        np.asarray(loaded.model(image)["saliency"]), np.asarray(deep(image)["saliency"]), rtol=1e-5
    )
    model, path, _ = explainable_export
    outputs = load_model(path).model(image)
    np.testing.assert_allclose(
        np.asarray(outputs["contributions"]),
        np.asarray(model(image)["contributions"]),
        rtol=1e-5,
        atol=1e-6,
    )


def test_explainable_exports_record_their_taps_and_hold_their_keras_model(tmp_path):
    import importlib.util
    from pathlib import Path

    import keras

    from serving.loaded_model import load_model
    from tests.explain.parents import SMALL_BANK
    from tfsal.explain import build_explainable_model
    from tfsal.explain.taps import Tap

    model = build_explainable_model(
        [Tap("fine", 4, 4), Tap("coarse", 5, 8)], input_shape=(32, 32, 3), bank_config=SMALL_BANK
    )
    path = export_model(model, tmp_path, "explainable", input_size=(32, 32), output="map")
    metadata = json.loads((path / constants.METADATA_DIR / constants.METADATA_FILE).read_text())
    assert metadata["tap_info"] == [
        {"name": "coarse", "stride": 8, "channels": 5},
        {"name": "fine", "stride": 4, "channels": 4},
    ]
    assert metadata["taps"] == ["coarse", "fine"]
    image = picture(32, 32)[None].astype(np.float32)
    reloaded = keras.saving.load_model(path / constants.KERAS_MODEL_FILE)
    np.testing.assert_allclose(reloaded(image)["saliency"], model(image)["saliency"], atol=1e-6)

    # The faithfulness benchmark reads it instead of rebuilding the model.
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "faithfulness.py"
    spec = importlib.util.spec_from_file_location("faithfulness_benchmark", script)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    saved = load_model(path)
    saved = dataclasses.replace(saved, metadata={**saved.metadata, "path": str(path)})
    with_layers = benchmark.explainable_keras_model(saved)
    assert with_layers.model.get_layer("explain_fine") is not None
    (path / constants.KERAS_MODEL_FILE).unlink()
    with pytest.raises(SystemExit, match="has no model.keras.*training.derive"):
        benchmark.explainable_keras_model(saved)
    # A deep model's export has neither.
    deep_path = export_model(
        tiny_models.deep_model(), tmp_path, "deep", input_size=SIZE, output="log_density"
    )
    assert not (deep_path / constants.KERAS_MODEL_FILE).exists()
