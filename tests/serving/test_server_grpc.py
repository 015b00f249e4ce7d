"""The gRPC API of the local server, called with tensorflow-serving-api's generated stubs."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
)

from tests.serving.conftest import MODEL, jpeg, png


def predict_request(images, signature_name="", **spec):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = spec.pop("name", MODEL)
    request.model_spec.signature_name = signature_name
    if "version" in spec:
        request.model_spec.version.value = spec.pop("version")
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(np.array(images, dtype=object)))
    return request


def test_predict_round_trip(prediction_stub, model_base):
    images = [jpeg(24, 32, seed=1), png(16, 40, seed=2)]
    response = prediction_stub.Predict(predict_request(images), timeout=60)
    assert response.model_spec.name == MODEL
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    outputs = {key: tf.make_ndarray(value) for key, value in response.outputs.items()}
    expected = tf.saved_model.load(str(model_base / "1")).signatures["serving_default"](
        image_bytes=tf.constant(images)
    )
    assert sorted(outputs) == ["height", "saliency", "width"]
    np.testing.assert_array_equal(outputs["height"], [24, 16])
    np.testing.assert_array_equal(outputs["saliency"], expected["saliency"].numpy())


def test_output_filter_and_version(prediction_stub):
    request = predict_request([jpeg(8, 10)], version=1)
    request.output_filter.append("width")
    response = prediction_stub.Predict(request, timeout=60)
    assert list(response.outputs) == ["width"]
    assert tf.make_ndarray(response.outputs["width"]).tolist() == [10]


def test_float_signature(prediction_stub, model_base):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "predict_tensor"
    images = np.random.default_rng(3).uniform(0, 255, [2, 20, 30, 3]).astype(np.float32)
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
    response = prediction_stub.Predict(request, timeout=60)
    signature = tf.saved_model.load(str(model_base / "1")).signatures["predict_tensor"]
    expected = signature(images=tf.constant(images))["saliency"].numpy()
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["saliency"]), expected)


def test_metadata(prediction_stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = MODEL
    response = prediction_stub.GetModelMetadata(request, timeout=60)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    assert sorted(signatures.signature_def) == ["predict_tensor", "serve", "serving_default"]
    inputs = signatures.signature_def["serving_default"].inputs
    assert inputs["image_bytes"].dtype == tf.string.as_datatype_enum
    with pytest.raises(grpc.RpcError) as error:
        prediction_stub.GetModelMetadata(
            get_model_metadata_pb2.GetModelMetadataRequest(
                model_spec=request.model_spec, metadata_field=["graph"]
            ),
            timeout=60,
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_model_status_states(model_stub):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    response = model_stub.GetModelStatus(request, timeout=60)
    [status] = response.model_version_status
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as error:
        model_stub.GetModelStatus(request, timeout=60)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_unknown_model_and_version_are_not_found(prediction_stub):
    for request, message in [
        (
            predict_request([jpeg(8, 8)], name="nope"),
            "Servable not found for request: Latest(nope)",
        ),
        (predict_request([jpeg(8, 8)], version=9), f"Specific({MODEL}, 9)"),
    ]:
        with pytest.raises(grpc.RpcError) as error:
            prediction_stub.Predict(request, timeout=60)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        assert message in error.value.details()


def test_health_service(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "tensorflow.serving.PredictionService"):
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=60)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_classify_is_unimplemented(prediction_stub):
    with pytest.raises(grpc.RpcError) as error:
        prediction_stub.Classify(classification_pb2.ClassificationRequest(), timeout=60)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
