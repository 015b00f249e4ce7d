"""serving.rest_answers reads what rest_json writes: the very numbers, in their shapes."""

import numpy as np
import pytest

from serving import rest_answers, rest_json


def float32_patterns(count: int, seed: int = 0) -> np.ndarray:
    """Finite float32 values of every exponent, subnormals and both zeros included."""
    bits = np.random.default_rng(seed).integers(0, 2**32, count, dtype=np.uint64)
    values = bits.astype(np.uint32).view(np.float32)
    extremes = np.float32([0.0, -0.0, 1.4e-45, -1.4e-45, 1.1754944e-38, 3.4028235e38, 0.1])
    return np.concatenate([values[np.isfinite(values)], extremes])


@pytest.mark.parametrize("row_length", [64, 4], ids=["simdjson buffer", "python lists"])
def test_float32_maps_come_back_bit_for_bit(row_length):
    values = float32_patterns(40000)
    values = values[: values.size // row_length * row_length].reshape(-1, row_length)
    body = rest_json.predict_response({"saliency": values}, row_format=False)
    read = rest_answers.read_predict_answer(body)
    assert read.shape == values.shape
    np.testing.assert_array_equal(read.astype(np.float32).view(np.uint32), values.view(np.uint32))


def test_row_format_stacks_each_outputs_rows():
    maps = np.random.default_rng(1).random((2, 3, 40), dtype=np.float32)
    sizes = np.array([3, 2], np.int32)
    outputs = {"saliency": maps, "height": sizes}
    body = rest_json.predict_response(outputs, row_format=True)
    read = rest_answers.read_predict_answer(body)
    assert sorted(read) == ["height", "saliency"]
    np.testing.assert_array_equal(read["saliency"].astype(np.float32), maps)
    np.testing.assert_array_equal(read["height"], sizes)


def test_one_output_is_the_bare_array_in_both_formats():
    maps = np.arange(2 * 33, dtype=np.float32).reshape(2, 33) / 7
    for row_format in (True, False):
        body = rest_json.predict_response({"saliency": maps}, row_format=row_format)
        np.testing.assert_array_equal(
            rest_answers.read_predict_answer(body).astype(np.float32), maps
        )


def test_non_finite_tokens_are_read():
    values = np.float32([1.5, np.nan, np.inf, -np.inf])
    body = rest_json.predict_response({"saliency": values}, row_format=False)
    np.testing.assert_array_equal(rest_answers.read_predict_answer(body), values)


def numbers(count: int) -> str:
    return "[" + ",".join(["1.5"] * count) + "]"


@pytest.mark.parametrize(
    "outputs",
    [
        f"[{numbers(40)}, {numbers(39)}]",
        f"[{numbers(40)}, {numbers(41)}]",
        f"[{numbers(40)}, 1.5]",
        f"[{numbers(40)}, {numbers(39)}, {numbers(41)}]",  # as many numbers as 3 x 40
        "[[1, 2], [3]]",  # short rows: the python-list path
    ],
    ids=["short row", "long row", "number for a row", "same count", "short rows"],
)
def test_ragged_lists_raise_rather_than_reshape(outputs):
    with pytest.raises(ValueError, match="not a rectangular array"):
        rest_answers.read_predict_answer(f'{{"outputs": {outputs}}}'.encode())


@pytest.mark.parametrize(
    "body, message",
    [
        (b"<html>busy</html>", "not JSON"),
        (b'{"error": "x"}', "'outputs' or 'predictions'"),
        (b'{"outputs": 1, "predictions": [1]}', "'outputs' or 'predictions'"),
        (b'{"predictions": [{"a": 1}, {"b": 2}]}', "with the outputs"),
    ],
)
def test_answers_that_are_not_predictions_raise(body, message):
    with pytest.raises(ValueError, match=message):
        rest_answers.read_predict_answer(body)
