"""TF Serving's REST JSON for predict requests and responses, to and from numpy.

Request (``api_rest.md``):
- row format ``{"instances": [...]}``: one element per batch row; with several inputs
  each row is an object keyed by input name, and all inputs share the batch size;
- columnar format ``{"inputs": ...}``: a value for the one input, or an object keyed
  by input name;
- ``DT_STRING`` values may be ``{"b64": "<standard base64>"}``; the server decodes them,
  so the graph receives the raw bytes (an encoded JPEG stays an encoded JPEG);
- JSON numbers are converted to the signature's dtype.

Response: row format answers ``{"predictions": [...]}`` — a list of values with one
output, else a list of per-row objects — and columnar format answers ``{"outputs": ...}``
— the value with one output, else an object keyed by output name. Outputs whose name
ends in ``_bytes`` come back as ``{"b64": ...}``.

Encoding is, besides the model, most of what the server spends on a REST predict: a
288×384 float32 map is 110,592 numbers. orjson writes numpy arrays directly and prints
each float32 in its shortest round-trip form, as TF Serving does: 2.5-2.9 ms per map
with orjson 3.8 on a quiet machine, and 15-30% less CPU with 3.13 (both timed in one
process); the standard library's ``json``, with every float through Python, took about
100 ms against orjson's 8 ms in an earlier measurement under load. orjson writes NaN
and infinities as ``null``, so a response holding them is written by the standard
library instead, which emits the ``NaN``/``Infinity`` tokens TF Serving emits.
``rest_answers`` reads the answers back on the client's side.
"""

import base64
import binascii
import json
from collections.abc import Mapping

import numpy as np
import orjson
import tensorflow as tf

from serving import errors

_BYTES_SUFFIX = "_bytes"


def loads(body: bytes) -> dict:
    """Parses a request body; raises INVALID_ARGUMENT with the parser's message."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:  # The standard library also takes NaN/Infinity, which TF Serving accepts.
            request = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise errors.invalid_argument(f"JSON Parse error: {error}") from None
    if not isinstance(request, dict):
        raise errors.invalid_argument("The request body must be a JSON object.")
    return request


def parse_predict_request(
    request: dict, specs: Mapping[str, tf.TensorSpec]
) -> tuple[dict[str, np.ndarray], bool]:
    """The input arrays of a predict request and whether it used the row format.

    Args:
        request: the parsed body.
        specs: the signature's inputs, by name.

    Raises:
        ServingError: INVALID_ARGUMENT for anything TF Serving would reject.
    """
    has_instances, has_inputs = "instances" in request, "inputs" in request
    if has_instances == has_inputs:
        raise errors.invalid_argument(
            "Missing 'inputs' or 'instances' key"
            if not has_instances
            else "Request may have 'instances' or 'inputs', not both."
        )
    if has_instances:
        return _parse_rows(request["instances"], specs), True
    return _parse_columns(request["inputs"], specs), False


def _is_named(value) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _spec(name: str, specs: Mapping[str, tf.TensorSpec]) -> tf.TensorSpec:
    if name not in specs:
        raise errors.invalid_argument(
            f"{name!r} is not an input of the signature; its inputs are {sorted(specs)}."
        )
    return specs[name]


def _parse_rows(instances, specs) -> dict[str, np.ndarray]:
    if not isinstance(instances, list) or not instances:
        raise errors.invalid_argument("'instances' must be a non-empty JSON list.")
    if not all(_is_named(row) for row in instances):
        if len(specs) != 1:
            raise errors.invalid_argument(
                f"The signature has {len(specs)} inputs {sorted(specs)}: each instance must "
                "be a JSON object keyed by input name."
            )
        ((name, spec),) = specs.items()
        return {name: _to_array(name, instances, spec)}
    columns = {}
    for name in sorted(set().union(*(row.keys() for row in instances))):
        if any(name not in row for row in instances):
            raise errors.invalid_argument(f"Input {name!r} is missing from some instances.")
        spec = _spec(name, specs)
        rows = [_to_array(name, row[name], spec) for row in instances]
        if len({row.shape for row in rows}) > 1:
            raise errors.invalid_argument(
                f"Input {name!r} has instances of different shapes "
                f"{sorted({row.shape for row in rows})}; in the row format every instance "
                "of an input must have the same shape."
            )
        columns[name] = np.stack(rows)
    return columns


def _parse_columns(inputs, specs) -> dict[str, np.ndarray]:
    if _is_named(inputs):
        return {name: _to_array(name, value, _spec(name, specs)) for name, value in inputs.items()}
    if len(specs) != 1:
        raise errors.invalid_argument(
            f"The signature has {len(specs)} inputs {sorted(specs)}: 'inputs' must be a "
            "JSON object keyed by input name."
        )
    ((name, spec),) = specs.items()
    return {name: _to_array(name, inputs, spec)}


def _is_b64(value) -> bool:
    return isinstance(value, dict) and list(value) == ["b64"]


def _decode_strings(name: str, value):
    if isinstance(value, list):
        return [_decode_strings(name, item) for item in value]
    if _is_b64(value):
        encoded = value["b64"]
        try:
            # validate=True: standard alphabet only, as TF Serving's absl decoder.
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise errors.invalid_argument(
                f"Unable to base64 decode a value of input {name!r}: use standard base64 "
                "(+ and /, with padding), not the URL-safe alphabet."
            ) from None
    if isinstance(value, str):
        return value.encode("utf-8")
    raise errors.invalid_argument(
        f'Input {name!r} is DT_STRING: send strings or {{"b64": ...}} objects; '
        f"received {type(value).__name__} {str(value)[:40]}."
    )


def _to_array(name: str, value, spec: tf.TensorSpec) -> np.ndarray:
    if spec.dtype == tf.string:
        decoded = _decode_strings(name, value)
        array = np.empty(_nested_shape(name, decoded), dtype=object)
        array[...] = decoded
        return array
    if isinstance(value, dict):
        raise errors.invalid_argument(
            f'Input {name!r} is {spec.dtype.name}: objects such as {{"b64": ...}} are only '
            "for DT_STRING inputs."
        )
    try:
        return np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
    except (ValueError, TypeError) as error:
        raise errors.invalid_argument(
            f"Input {name!r} is not a rectangular list of {spec.dtype.name} numbers: {error}."
        ) from None


def _nested_shape(name: str, value) -> tuple[int, ...]:
    if not isinstance(value, list):
        return ()
    shapes = {_nested_shape(name, item) for item in value}
    if len(shapes) > 1:
        raise errors.invalid_argument(
            f"Input {name!r} is not rectangular: its lists have shapes {sorted(shapes)}."
        )
    return (len(value), *(shapes.pop() if shapes else ()))


def predict_response(outputs: dict[str, np.ndarray], row_format: bool) -> bytes:
    """The response body of a predict call, in the request's format."""
    encoded = {name: _encode(name, value) for name, value in outputs.items()}
    if not row_format:
        body = {"outputs": next(iter(encoded.values())) if len(encoded) == 1 else encoded}
        return dumps(body)
    sizes = {
        name: np.shape(value)[0] if np.ndim(value) else None for name, value in outputs.items()
    }
    batch = next(iter(sizes.values()))
    for name, size in sizes.items():
        if size is None or size != batch:
            raise errors.invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {size} expecting: {batch}. "
                "Ask with the columnar format ('inputs') for outputs without a shared batch."
            )
    if len(encoded) == 1:
        return dumps({"predictions": next(iter(encoded.values()))})
    rows = [{name: value[i] for name, value in encoded.items()} for i in range(batch)]
    return dumps({"predictions": rows})


def _encode(name: str, value: np.ndarray):
    if value.dtype.kind not in "OSU":
        return np.ascontiguousarray(value)
    if name.endswith(_BYTES_SUFFIX):
        return _map_nested(value.tolist(), lambda b: {"b64": base64.b64encode(b).decode()})
    return _map_nested(value.tolist(), lambda b: b.decode("utf-8", errors="replace"))


def _map_nested(value, function):
    if isinstance(value, list):
        return [_map_nested(item, function) for item in value]
    return function(value)


def dumps(body) -> bytes:
    """JSON bytes of a response body holding numpy arrays (see the module docstring)."""
    if _all_finite(body):
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(_to_lists(body)).encode()


def _all_finite(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind != "f" or bool(np.isfinite(value).all())
    if isinstance(value, dict):
        return all(_all_finite(item) for item in value.values())
    if isinstance(value, list):
        return all(_all_finite(item) for item in value)
    return not isinstance(value, float) or np.isfinite(value)


def _to_lists(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {key: _to_lists(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_lists(item) for item in value]
    return value
