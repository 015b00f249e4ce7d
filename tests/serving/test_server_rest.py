"""The REST API of the local server against TF Serving's documented JSON (api_rest.md)."""

import gzip
import json

import numpy as np
import pytest
import tensorflow as tf

from serving import rest_json
from tests.serving.conftest import MODEL, b64, http, jpeg, png


@pytest.fixture(scope="module")
def reference(model_base):
    """The exported signatures called in-process, without the server."""
    return tf.saved_model.load(str(model_base / "1")).signatures


def test_status_is_tf_serving_json(rest_url):
    status, body = http(rest_url)
    assert status == 200
    assert body == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert http(rest_url + "/versions/1") == (200, body)


def test_unknown_model_and_version_are_404(rest_url, server):
    status, body = http(f"http://127.0.0.1:{server.rest_port}/v1/models/nope")
    assert status == 404
    assert body["error"].startswith("Could not find any versions of model nope")
    status, body = http(rest_url + "/versions/7:predict", {"instances": [b64(jpeg(8, 8))]})
    assert (status, body["error"]) == (404, f"Servable not found for request: Specific({MODEL}, 7)")
    assert http(rest_url + "/versions/7")[0] == 404


def test_urls_are_case_insensitive(rest_url):
    assert http(rest_url.replace("/v1/models/", "/V1/Models/") + "/METADATA")[0] == 200


def test_metadata_lists_the_signatures(rest_url):
    status, body = http(rest_url + "/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert sorted(signatures) == ["predict_tensor", "serve", "serving_default"]
    image_bytes = signatures["serving_default"]["inputs"]["image_bytes"]
    assert image_bytes["dtype"] == "DT_STRING"
    assert image_bytes["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
    assert signatures["serving_default"]["method_name"] == "tensorflow/serving/predict"


def test_row_format_b64_batch_of_two_sizes(rest_url, reference):
    images = [jpeg(24, 32, seed=1), png(16, 40, seed=2)]
    status, body = http(rest_url + ":predict", {"instances": [b64(image) for image in images]})
    assert status == 200, body
    expected = reference["serving_default"](image_bytes=tf.constant(images))
    rows = body["predictions"]
    assert [row["height"] for row in rows] == [24, 16]
    assert [row["width"] for row in rows] == [32, 40]
    saliency = np.array([row["saliency"] for row in rows], dtype=np.float32)
    assert saliency.shape == (2, 24, 40)  # padded to the largest height and width
    np.testing.assert_allclose(saliency, expected["saliency"].numpy(), rtol=1e-6)
    assert not saliency[1, 16:].any()


def test_named_rows_and_columnar_agree(rest_url):
    images = [jpeg(12, 12, seed=3), jpeg(12, 12, seed=4)]
    _, rows = http(rest_url + ":predict", {"instances": [{"image_bytes": b64(i)} for i in images]})
    status, columns = http(
        rest_url + ":predict", {"inputs": {"image_bytes": [b64(i) for i in images]}}
    )
    assert status == 200
    assert sorted(columns["outputs"]) == ["height", "saliency", "width"]
    assert columns["outputs"]["height"] == [12, 12]
    assert [row["saliency"] for row in rows["predictions"]] == columns["outputs"]["saliency"]


def test_float_signature_with_one_output_answers_bare_values(rest_url, reference):
    images = np.random.default_rng(5).uniform(0, 255, [2, 3, 4, 3]).astype(np.float32)
    request = {"signature_name": "predict_tensor", "instances": images.tolist()}
    status, body = http(rest_url + ":predict", request)
    assert status == 200, body
    expected = reference["predict_tensor"](images=images)["saliency"].numpy()
    np.testing.assert_allclose(body["predictions"], expected, rtol=1e-6)
    columnar_request = {"signature_name": "predict_tensor", "inputs": images.tolist()}
    _, columnar = http(rest_url + ":predict", columnar_request)
    np.testing.assert_allclose(columnar["outputs"], expected, rtol=1e-6)


def test_non_finite_numbers_use_tf_serving_tokens(rest_url):
    # Requests may hold NaN/Infinity tokens (orjson refuses them; the fallback reads them).
    request = {"signature_name": "predict_tensor", "inputs": [[[[float("nan")] * 3]]]}
    assert http(rest_url + ":predict", request)[0] == 200
    # Responses write them as tokens too, not as null.
    body = rest_json.predict_response({"saliency": np.array([np.nan, np.inf], np.float32)}, False)
    assert body == b'{"outputs": [NaN, Infinity]}'
    assert rest_json.predict_response({"x": np.array([0.1], np.float32)}, True) == (
        b'{"predictions":[0.1]}'
    )


def test_gzip_request_body(rest_url):
    body = gzip.compress(json.dumps({"instances": [b64(jpeg(8, 8))]}).encode())
    status, answer = http(rest_url + ":predict", body, headers={"Content-Encoding": "gzip"})
    assert status == 200, answer
    assert answer["predictions"][0]["height"] == 8


def test_explicit_version_and_response_content_type(rest_url):
    import urllib.request

    request = urllib.request.Request(
        rest_url + "/versions/1:predict",
        data=json.dumps({"instances": [b64(jpeg(8, 8))]}).encode(),
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.headers["Content-Type"] == "application/json"
        assert json.loads(response.read())["predictions"][0]["width"] == 8


def test_classify_is_unimplemented(rest_url):
    status, body = http(rest_url + ":classify", {"examples": []})
    assert status == 501 and "predict" in body["error"]


def test_explain_signature_of_an_explainable_model(explainable_base):
    from serving import constants
    from tests.serving.conftest import start_server

    server = start_server(explainable_base)
    try:
        url = f"http://127.0.0.1:{server.rest_port}/v1/models/{MODEL}:predict"
        request = {"signature_name": "explain", "inputs": [b64(png(20, 28, seed=6))]}
        status, body = http(url, request)
    finally:
        server.stop()
    assert status == 200, body
    outputs = body["outputs"]
    assert constants.CONTRIBUTIONS_OUTPUT in outputs
    assert constants.reconstruction_key("encoder") in outputs
    assert outputs["height"] == [20] and np.array(outputs["saliency"]).shape == (1, 20, 28)
