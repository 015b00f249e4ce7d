"""TF Serving's REST predict answers read into numpy arrays: the client's side of rest_json.

A saliency map comes back as one JSON number per pixel (110,592 for 288x384). Parsing
them into Python floats and those into an array is most of what a REST client spends
on an answer: orjson's parse and numpy's list conversion took 5.7-5.9 ms per map on a
quiet machine. simdjson parses the document into its own tape and copies an array's
numbers into one float64 buffer without a Python object per number, about 3x faster
(``benchmarks/serving_latency.py`` times both). The numbers are then float64: the
nearest double to the server's shortest round-trip text of a float32, so casting back
to float32 gives the server's very numbers (tests check it bit for bit); integers are
exact up to 2**53.

The buffer is flat, so the nested lists' lengths are checked first: an answer whose
lists are not rectangular raises instead of being reshaped into a wrong map. Checking
costs one step per innermost list, which for arrays with short innermost lists (e.g.
a handful of contribution groups per pixel) would cost more than building Python lists,
so those, like answers holding strings or objects, take the plain path through Python
lists. So do answers with TF Serving's ``NaN``/``Infinity`` tokens, which are not
strict JSON: the standard library's parser reads them.
"""

import json
import math

import numpy as np
import simdjson

# Below this innermost length, checking every innermost list costs more than parsing
# its numbers into Python floats (about 1 us per list against 50 ns per number).
_MIN_FAST_ROW = 32


def read_predict_answer(body: bytes) -> np.ndarray | dict[str, np.ndarray]:
    """The outputs of a successful predict answer, as TF Serving lays them out.

    Args:
        body: the answer's JSON, ``{"outputs": ...}`` (columnar) or
            ``{"predictions": [...]}`` (row format).

    Returns:
        One array when the signature has one output (the answer holds a bare value),
        else a dict of arrays by output name; in the row format each output's rows are
        stacked into one array. Numbers come back as float64, the rest as numpy makes
        them from Python values (e.g. ``{"b64": ...}`` objects give an object array).

    Raises:
        ValueError: the body is not JSON, has neither key, or holds lists that are
            not rectangular.
    """
    try:
        answer = simdjson.Parser().parse(body)
    except ValueError:
        try:  # Not strict JSON, e.g. NaN and Infinity tokens.
            answer = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"The answer is not JSON: {error}") from None
    if not _is_object(answer) or ("outputs" in answer) == ("predictions" in answer):
        raise ValueError("The answer must be a JSON object with 'outputs' or 'predictions'.")
    if "outputs" in answer:
        outputs = answer["outputs"]
        if _is_object(outputs):
            return {name: _to_array(name, outputs[name]) for name in outputs}
        return _to_array("outputs", outputs)
    rows = answer["predictions"]
    if not _is_list(rows) or not len(rows) or not _is_object(rows[0]):
        return _to_array("predictions", rows)
    names = list(rows[0])
    if any(not _is_object(row) or sorted(row) != sorted(names) for row in rows):
        raise ValueError(f"Every prediction must be an object with the outputs {names}.")
    return {name: _stack(name, [_to_array(name, row[name]) for row in rows]) for name in names}


def _is_object(value) -> bool:
    return isinstance(value, (dict, simdjson.Object))


def _is_list(value) -> bool:
    return isinstance(value, (list, simdjson.Array))


def _stack(name: str, rows: list[np.ndarray]) -> np.ndarray:
    if len({row.shape for row in rows}) > 1:
        raise ValueError(f"The rows of output {name!r} have different shapes.")
    return np.stack(rows)


def _to_array(name: str, value) -> np.ndarray:
    if isinstance(value, simdjson.Array):
        shape = _leading_shape(value)
        if shape[-1] >= _MIN_FAST_ROW:
            _check_lengths(name, value, shape)
            try:
                numbers = np.frombuffer(value.as_buffer(of_type="d"), np.float64)
            except TypeError:  # Not all numbers: strings, objects, booleans, null.
                value = value.as_list()
            else:
                if numbers.size == math.prod(shape):
                    return numbers.reshape(shape)
                raise ValueError(f"Output {name!r} is not a rectangular array of numbers.")
        else:
            value = value.as_list()
    elif isinstance(value, simdjson.Object):
        value = value.as_dict()
    try:
        return np.asarray(value)
    except ValueError:
        raise ValueError(f"Output {name!r} is not a rectangular array.") from None


def _leading_shape(array: simdjson.Array) -> tuple[int, ...]:
    """The shape the nested lists have if each level is as long as its first list."""
    shape = []
    while isinstance(array, simdjson.Array):
        shape.append(len(array))
        if not len(array):
            break
        array = array[0]
    return tuple(shape)


def _check_lengths(name: str, array: simdjson.Array, shape: tuple[int, ...]) -> None:
    """Raises unless every list, down to the innermost ones, has the length of ``shape``."""
    if len(array) != shape[0]:
        raise ValueError(f"Output {name!r} is not a rectangular array: its lists differ.")
    if len(shape) > 1:
        for item in array:
            if not isinstance(item, simdjson.Array):
                raise ValueError(
                    f"Output {name!r} is not a rectangular array: it mixes lists and numbers."
                )
            _check_lengths(name, item, shape[1:])
