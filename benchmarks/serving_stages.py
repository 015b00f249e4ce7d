"""Where a served request's time goes: each stage timed alone, in one process.

Used by ``serving_latency.py``: free of the cross-process scheduling a loaded machine
adds to every request, these times say what the model costs (the direct call), what
the server does besides (parsing the request, converting tensors, encoding the answer)
and what the client does to read the answer, over gRPC and REST; a REST answer is read
both as ``serving.client`` reads it and through orjson and numpy, for comparison.
"""

import base64
import json
import statistics
import time

import numpy as np
import orjson
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from serving import constants, rest_answers, rest_json


def rest_saliency_orjson(body: bytes) -> np.ndarray:
    """The same through Python floats: orjson's parse, then numpy's list conversion."""
    rows = orjson.loads(body)["predictions"]
    return np.asarray([row[constants.SALIENCY_OUTPUT] for row in rows], np.float32)


def stage_times(signature, image: bytes, repeats: int = 20) -> dict:
    """Median ms of each stage of one request, and the answers' sizes in bytes."""
    batch = tf.constant([image])
    outputs = {key: value.numpy() for key, value in signature(image_bytes=batch).items()}
    request = predict_pb2.PredictRequest()
    request.inputs[constants.IMAGE_BYTES_INPUT].CopyFrom(
        tf.make_tensor_proto(np.array([image], dtype=object))
    )
    grpc_bytes = request.SerializeToString()
    response = predict_pb2.PredictResponse()
    for key, value in outputs.items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
    grpc_answer = response.SerializeToString()
    rest_bytes = json.dumps({"instances": [{"b64": base64.b64encode(image).decode()}]}).encode()
    rest_answer = rest_json.predict_response(outputs, row_format=True)
    specs = dict(signature.structured_input_signature[1])

    def grpc_server():
        parsed = predict_pb2.PredictRequest.FromString(grpc_bytes)
        {key: tf.make_ndarray(proto) for key, proto in parsed.inputs.items()}
        answer = predict_pb2.PredictResponse()
        for key, value in outputs.items():
            answer.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        answer.SerializeToString()

    stages = {
        "model": lambda: signature(image_bytes=batch)[constants.SALIENCY_OUTPUT].numpy(),
        "grpc_server": grpc_server,
        "grpc_client_decode": lambda: tf.make_ndarray(
            predict_pb2.PredictResponse.FromString(grpc_answer).outputs[constants.SALIENCY_OUTPUT]
        ),
        "rest_server_parse": lambda: rest_json.parse_predict_request(
            rest_json.loads(rest_bytes), specs
        ),
        "rest_server_encode": lambda: rest_json.predict_response(outputs, row_format=True),
        "rest_client_decode": lambda: rest_answers.read_predict_answer(rest_answer)[
            constants.SALIENCY_OUTPUT
        ].astype(np.float32),
        "rest_client_decode_orjson": lambda: rest_saliency_orjson(rest_answer),
    }
    times = {
        stage: 1000 * statistics.median(seconds(work) for _ in range(repeats))
        for stage, work in stages.items()
    }
    return {**times, "grpc_answer_bytes": len(grpc_answer), "rest_answer_bytes": len(rest_answer)}


def seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start
