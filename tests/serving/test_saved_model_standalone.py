"""The exported SavedModel on its own: plain TensorFlow, and saved_model_cli."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from serving import constants
from serving.export import export_model
from tests.serving import tiny_models
from tests.serving.tiny_models import picture, png

# Loads the SavedModel with plain TensorFlow and proves neither tfsal nor serving was
# imported (the graph holds only TF ops).
FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    path, image_file, out_file = sys.argv[1:]
    image = np.load(image_file)
    loaded = tf.saved_model.load(path)
    default = loaded.signatures["serving_default"]
    tensor = loaded.signatures["predict_tensor"]
    explain = loaded.signatures["explain"]
    encoded = tf.io.encode_png(image)
    results = {
        "default": default(image_bytes=tf.stack([encoded]))["saliency"].numpy(),
        "tensor": tensor(images=tf.constant(image[None], tf.float32))["saliency"].numpy(),
        "contributions": explain(image_bytes=tf.stack([encoded]))["contributions"].numpy(),
    }
    np.savez(out_file, **results)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("tfsal", "serving", "keras"))
    print(json.dumps(leaked))
    """
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = tiny_models.explainable_model()
    base = tmp_path_factory.mktemp("models")
    path = export_model(
        model, base, "tiny", input_size=tiny_models.INPUT_SIZE, output="log_density"
    )
    return model, path


@pytest.mark.slow
def test_fresh_process_without_tfsal_gives_the_keras_outputs(exported, tmp_path):
    model, path = exported
    image = picture(*tiny_models.INPUT_SIZE)
    np.save(tmp_path / "image.npy", image)
    script = tmp_path / "load.py"
    script.write_text(FRESH_PROCESS)
    completed = subprocess.run(
        [
            sys.executable,
            str(script),
            str(path),
            str(tmp_path / "image.npy"),
            str(tmp_path / "out.npz"),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,  # not the repository: nothing of it is importable by accident
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    imported = json.loads(completed.stdout.strip().splitlines()[-1])
    assert not [m for m in imported if m.split(".")[0] in ("tfsal", "serving")], imported
    outputs = model(image[None].astype(np.float32), training=False)
    density = np.exp(np.asarray(outputs["saliency"])[0, ..., 0])
    density /= density.sum()
    results = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(results["default"][0], density, rtol=1e-5)
    np.testing.assert_allclose(results["tensor"][0], density, rtol=1e-5)
    np.testing.assert_allclose(
        results["contributions"][0], np.asarray(outputs["contributions"])[0], rtol=1e-5, atol=1e-6
    )


@pytest.mark.slow
def test_saved_model_cli_lists_the_documented_signatures(exported):
    cli = shutil.which("saved_model_cli")
    if cli is None:
        pytest.skip("saved_model_cli is not on PATH")
    _, path = exported
    listing = subprocess.run(
        [cli, "show", "--dir", str(path), "--all"], capture_output=True, text=True, check=True
    ).stdout
    key = constants.reconstruction_key(tiny_models.TAP)
    for signature, inputs, outputs in [
        ("serving_default", ["image_bytes"], ["saliency", "height", "width"]),
        ("explain", ["image_bytes"], ["saliency", "height", "width", "contributions", key]),
        ("predict_tensor", ["images"], ["saliency"]),
        ("serve", ["image"], ["saliency", "contributions", key]),
    ]:
        start = listing.index(f"signature_def['{signature}']:")
        section = listing[start:].split("signature_def[", 2)[1]
        for name in inputs:
            assert f"inputs['{name}']" in section, (signature, name)
        for name in outputs:
            assert f"outputs['{name}']" in section, (signature, name)
    assert "dtype: DT_STRING" in listing and "tensorflow/serving/predict" in listing


@pytest.mark.slow
def test_a_registered_model_family_exports_and_matches_keras(tmp_path):
    from tfsal import models

    model = models.get("cmrnet", widths=(8, 8, 8, 8), blocks_per_stage=(1, 1, 1, 1))
    path = export_model(model, tmp_path, "cmrnet", input_size=(32, 32), output="log_density")
    loaded = tf.saved_model.load(str(path))
    image = picture(32, 32)
    served = loaded.signatures["serving_default"](image_bytes=tf.constant([png(image)]))
    density = np.exp(np.asarray(model(image[None].astype(np.float32))["saliency"])[0, ..., 0])
    np.testing.assert_allclose(served["saliency"].numpy()[0], density / density.sum(), rtol=1e-4)
