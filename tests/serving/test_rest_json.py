"""TF Serving's REST JSON: float32 outputs come back as the very same numbers."""

import json

import numpy as np

from serving import rest_json


def parsed_floats(body: bytes, key: str = "outputs") -> np.ndarray:
    return np.asarray(json.loads(body)[key], dtype=np.float32)


def test_float32_outputs_round_trip_bit_for_bit():
    # Every finite float32 bit pattern class: normals of every exponent, subnormals,
    # both zeros, the extremes.
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, 20000, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    extremes = [0.0, -0.0, 1.4e-45, -1.4e-45, 1.1754944e-38, 3.4028235e38, -3.4028235e38, 0.1]
    values = np.concatenate([values[np.isfinite(values)], np.float32(extremes)])
    body = rest_json.predict_response({"saliency": values}, row_format=False)
    np.testing.assert_array_equal(parsed_floats(body).view(np.uint32), values.view(np.uint32))


def test_row_format_keeps_each_rows_numbers():
    maps = np.random.default_rng(1).random((2, 3, 5), dtype=np.float32) / 1e5
    sizes = np.array([3, 3], np.int32)
    body = rest_json.predict_response({"saliency": maps, "height": sizes}, row_format=True)
    rows = json.loads(body)["predictions"]
    assert [row["height"] for row in rows] == [3, 3]
    np.testing.assert_array_equal(np.float32([row["saliency"] for row in rows]), maps)


def test_non_finite_values_use_tf_serving_tokens():
    values = np.float32([1.5, np.nan, np.inf, -np.inf])
    body = rest_json.predict_response({"saliency": values}, row_format=False)
    assert body.decode().replace(" ", "") == '{"outputs":[1.5,NaN,Infinity,-Infinity]}'
