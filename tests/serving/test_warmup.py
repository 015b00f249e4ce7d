import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from serving import constants, warmup
from serving.export import export_model
from tests.serving import tiny_models


def read_logs(path):
    logs = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs


def test_exporter_writes_warmup_for_every_signature_and_batch_size(tmp_path):
    model = tiny_models.explainable_model()
    path = export_model(
        model,
        tmp_path,
        "tiny",
        input_size=tiny_models.INPUT_SIZE,
        output="log_density",
        warmup_batch_sizes=(1, 4),
    )
    logs = read_logs(path / constants.METADATA_DIR / constants.WARMUP_FILE)
    requests = [log.predict_log.request for log in logs]
    found = sorted(
        (r.model_spec.signature_name, tf.make_ndarray(next(iter(r.inputs.values()))).shape[0])
        for r in requests
    )
    assert found == [
        ("explain", 1),
        ("explain", 4),
        ("predict_tensor", 1),
        ("serving_default", 1),
        ("serving_default", 4),
    ]
    assert {r.model_spec.name for r in requests} == {"tiny"}
    # Every record replays against the exported model (what TF Serving does on load).
    loaded = tf.saved_model.load(str(path))
    for request in requests:
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
        assert np.all(np.isfinite(outputs["saliency"].numpy()))


def test_warmup_image_is_deterministic_and_encodes():
    image = warmup.warmup_image((24, 40))
    assert image.shape == (24, 40, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, warmup.warmup_image((24, 40)))
    assert image.std() > 10  # not a blank frame


def test_too_many_records_are_refused():
    with pytest.raises(ValueError, match="at most 1000 warmup records"):
        warmup.warmup_records("m", (8, 8), ["a", "b"], batch_sizes=range(1, 501))
    with pytest.raises(ValueError, match="batch_sizes must be >= 1"):
        warmup.warmup_records("m", (8, 8), ["a"], batch_sizes=(0,))
