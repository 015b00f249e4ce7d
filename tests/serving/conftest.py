"""Fixtures of the local model server tests: exported models, a running server, clients."""

import base64
import json
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving import model_config
from serving.export import export_model
from serving.server import ModelServer
from tests.serving import tiny_models

MODEL = "saliency"


def export_version(base, version: int, model=None):
    """Exports a tiny deep model (new random weights unless given) as ``base/version``."""
    model = model or tiny_models.deep_model()
    return export_model(
        model,
        base.parent,
        base.name,
        input_size=tiny_models.INPUT_SIZE,
        output="log_density",
        version=version,
    )


def jpeg(height: int, width: int, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, [height, width, 3], dtype=np.uint8)
    return tf.io.encode_jpeg(pixels, quality=95).numpy()


def png(height: int, width: int, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, [height, width, 3], dtype=np.uint8)
    return tf.io.encode_png(pixels).numpy()


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


def http(url: str, body=None, headers=None, method=None, timeout: float = 60.0):
    """(status, parsed JSON) of one plain HTTP request; ``body`` is JSON-encoded unless bytes."""
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="session")
def model_base(tmp_path_factory):
    """A base path holding version 1 of a tiny model, exported by serving.export."""
    base = tmp_path_factory.mktemp("models") / MODEL
    export_version(base, 1)
    return base


@pytest.fixture(scope="session")
def explainable_base(tmp_path_factory):
    """A base path holding version 1 of a tiny explainable model (explain signature)."""
    base = tmp_path_factory.mktemp("models") / "explainable"
    export_version(base, 1, tiny_models.explainable_model())
    return base


def start_server(base, **kwargs) -> ModelServer:
    kwargs.setdefault("poll_wait_seconds", 0.2)
    kwargs.setdefault("num_threads", 8)
    server = ModelServer(model_config.single_model(MODEL, base), grpc_port=0, rest_port=0, **kwargs)
    server.start()
    assert server.wait_until_ready(120), "the model did not load"
    return server


@pytest.fixture(scope="module")
def server(model_base):
    server = start_server(model_base, max_request_bytes=2 << 20)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rest_url(server):
    return f"http://127.0.0.1:{server.rest_port}/v1/models/{MODEL}"


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield channel


@pytest.fixture(scope="module")
def prediction_stub(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def model_stub(channel):
    return model_service_pb2_grpc.ModelServiceStub(channel)
