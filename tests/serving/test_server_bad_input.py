"""Bad requests get one clear error with TF Serving's status, and the server keeps serving."""

import json
import struct
import zlib

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from tests.serving.conftest import MODEL, b64, http, jpeg, png
from tests.serving.test_server_grpc import predict_request

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def declaring(data: bytes, height: int, width: int) -> bytes:
    """A small image whose header declares another size: a decompression bomb."""
    data = bytearray(data)
    if data.startswith(b"\x89PNG"):  # IHDR width, height, then its CRC
        data[16:24] = struct.pack(">II", width, height)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    else:  # baseline start-of-frame: length, precision, height, width
        frame = data.index(b"\xff\xc0")
        data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


IMAGES = {
    "non_image": (b"this is not an image", "is neither a JPEG nor a PNG"),
    "truncated_jpeg": (truncated(jpeg(64, 64, seed=7)), "is a truncated JPEG"),
    "truncated_png": (truncated(png(64, 64, seed=7)), "is a truncated PNG"),
    "jpeg_bomb": (declaring(jpeg(16, 16, seed=8), 60000, 60000), "declares 60000x60000"),
    "png_bomb": (declaring(png(16, 16, seed=8), 15000, 15000), "declares 15000x15000"),
}


@pytest.fixture(autouse=True)
def still_serving(rest_url, prediction_stub):
    """After every bad request, good ones still get answers on both APIs."""
    yield
    status, body = http(rest_url + ":predict", {"instances": [b64(jpeg(8, 8))]})
    assert status == 200, body
    response = prediction_stub.Predict(predict_request([jpeg(8, 8)]), timeout=60)
    assert tf.make_ndarray(response.outputs["height"]).tolist() == [8]


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_bad_images_are_invalid_argument(name, rest_url, prediction_stub):
    data, words = IMAGES[name]
    status, body = http(rest_url + ":predict", {"instances": [b64(data)]})
    assert status == 400
    assert words in body["error"] and "node" not in body["error"], body
    with pytest.raises(grpc.RpcError) as error:
        prediction_stub.Predict(predict_request([data]), timeout=60)
    assert error.value.code() == INVALID and words in error.value.details()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/v1/models/..:predict", 404),
        ("POST", "/v1/models/%2E%2E:predict", 404),
        ("POST", "/v1/models/..%2Fsaliency:predict", 404),
        ("GET", "/v1/models/..%2F..%2F..%2Fetc%2Fpasswd/metadata", 404),
        ("GET", "/v1/models/saliency%2F..%2F..", 404),
        ("GET", "/v1/models/../../etc/passwd", 400),
        ("GET", "/v1/models/saliency/../../etc/passwd", 400),
    ],
)
def test_path_traversal_in_the_model_name(method, path, status, server):
    # As TF Serving: routes match the path as sent, then the captured name is decoded
    # ("..%2Fx" names a model "../x", unknown: 404); the name is only looked up among
    # the configured models, never joined to a path.
    body = b"{}" if method == "POST" else None
    answer = http(f"http://127.0.0.1:{server.rest_port}{path}", body, method=method)
    assert answer[0] == status and list(answer[1]) == ["error"]
    # TF Serving's wordings: predict and metadata, then status, then no route.
    words = ("Servable not found", "Could not find any versions")
    assert answer[1]["error"].startswith(words if status == 404 else "Malformed request"), answer


def test_percent_encoded_model_name_is_decoded(server):
    # TF Serving percent-decodes the name it captured: "%73aliency" is "saliency".
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/%73aliency"
    status, body = http(url)
    assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
    status, body = http(url + ":predict", {"instances": [b64(jpeg(8, 8))]})
    assert status == 200 and body["predictions"][0]["height"] == 8


def test_path_traversal_over_grpc(prediction_stub):
    with pytest.raises(grpc.RpcError) as error:
        prediction_stub.Predict(predict_request([jpeg(8, 8)], name="../" + MODEL), timeout=60)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_oversized_body(rest_url, prediction_stub):
    big = {"instances": [b64(bytes(3 << 20))]}  # the fixture's limit is 2 MiB
    status, body = http(rest_url + ":predict", big)
    assert status == 413 and "limit" in body["error"]
    with pytest.raises(grpc.RpcError) as error:
        prediction_stub.Predict(predict_request([bytes(3 << 20)]), timeout=60)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_gzip_bomb_is_oversized(rest_url):
    import gzip

    body = gzip.compress(json.dumps({"instances": [{"b64": "A" * (8 << 20)}]}).encode())
    assert len(body) < (1 << 20)
    status, answer = http(rest_url + ":predict", body, headers={"Content-Encoding": "gzip"})
    assert status == 413, answer


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"instances": [', "JSON Parse error"),
        (b"[1, 2]", "JSON object"),
        (b'{"nothing": 1}', "Missing 'inputs' or 'instances' key"),
        (b'{"instances": [], "inputs": []}', "not both"),
        (b'{"instances": [{"b64": "not base64!"}]}', "base64"),
        (b'{"instances": [{"b64": "-_-_"}]}', "URL-safe"),
        (b'{"instances": [3.5]}', "DT_STRING"),
        (b'{"instances": [{"pixels": [1]}]}', "not an input"),
        (b'{"signature_name": "predict_tensor", "instances": [[[[1, 2, 3]]], [1]]}', "rectangular"),
        (b'{"signature_name": "predict_tensor", "inputs": [[1, 2, 3]]}', "shape"),
        (b'{"signature_name": "predict_tensor", "inputs": {"b64": "AAAA"}}', "DT_STRING"),
    ],
)
def test_malformed_json(body, words, rest_url):
    status, answer = http(rest_url + ":predict", body)
    assert status == 400 and words in answer["error"], answer


def test_wrong_signature_name(rest_url, prediction_stub):
    status, body = http(rest_url + ":predict", {"signature_name": "explain_me", "instances": []})
    assert status == 400
    assert body["error"].startswith('Serving signature name: "explain_me" not found')
    with pytest.raises(grpc.RpcError) as error:
        prediction_stub.Predict(predict_request([jpeg(8, 8)], signature_name="nope"), timeout=60)
    assert error.value.code() == INVALID and "predict_tensor" in error.value.details()


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("tensorflow.serving.PredictionService/Predict", "PredictRequest"),
        ("tensorflow.serving.PredictionService/GetModelMetadata", "GetModelMetadataRequest"),
        ("tensorflow.serving.ModelService/GetModelStatus", "GetModelStatusRequest"),
    ],
)
def test_malformed_protobuf(method, message, channel, caplog):
    raw_call = channel.unary_unary(f"/{method}")
    with pytest.raises(grpc.RpcError) as error:
        raw_call(b"\xff\xff\xff\xff not a request", timeout=60)
    # gRPC alone would answer INTERNAL and log a traceback, as for a server fault.
    assert error.value.code() == INVALID
    assert f"tensorflow.serving.{message}" in error.value.details()
    assert not [record for record in caplog.records if record.exc_info], caplog.text


def test_inconsistent_tensor_proto(prediction_stub):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "predict_tensor"
    proto = request.inputs["images"]
    proto.CopyFrom(tf.make_tensor_proto(np.zeros([1, 2, 2, 3], np.float32)))
    proto.tensor_content = proto.tensor_content[:-5]  # 43 bytes for 12 floats
    with pytest.raises(grpc.RpcError) as error:
        prediction_stub.Predict(request, timeout=60)
    assert error.value.code() == INVALID and "images" in error.value.details()


def test_wrong_dtype_and_input_name_over_grpc(prediction_stub):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(np.zeros([1], np.float32)))
    with pytest.raises(grpc.RpcError) as error:
        prediction_stub.Predict(request, timeout=60)
    assert error.value.code() == INVALID and "DT_STRING" in error.value.details()
    request.inputs["extra"].CopyFrom(tf.make_tensor_proto(np.zeros([1], np.float32)))
    with pytest.raises(grpc.RpcError) as error:
        prediction_stub.Predict(request, timeout=60)
    assert "Sent extra: ['extra']" in error.value.details()
