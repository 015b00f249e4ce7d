"""A new version is picked up by polling and swapped in while clients keep asking."""

import os
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.serving.conftest import MODEL, b64, export_version, http, png, start_server
from tests.serving.test_server_grpc import predict_request

CLIENTS = 8  # half REST, half gRPC
IMAGE = png(24, 20, seed=11)


def expected_saliency(version_folder) -> np.ndarray:
    signature = tf.saved_model.load(str(version_folder)).signatures["serving_default"]
    return signature(image_bytes=tf.constant([IMAGE]))["saliency"].numpy()[0]


class Client(threading.Thread):
    """Sends requests until told to stop (at most 1000 or 180 s); records answers."""

    def __init__(self, server, use_grpc: bool, stop: threading.Event, expected: dict):
        super().__init__(daemon=True)
        self.server, self.use_grpc, self.stop, self.expected = server, use_grpc, stop, expected
        self.versions, self.failures = [], []

    def run(self):
        import grpc

        image, deadline = IMAGE, time.monotonic() + 180
        url = f"http://127.0.0.1:{self.server.rest_port}/v1/models/{MODEL}:predict"
        with grpc.insecure_channel(f"127.0.0.1:{self.server.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for _ in range(1000):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    if self.use_grpc:
                        response = stub.Predict(predict_request([image]), timeout=60)
                        saliency = tf.make_ndarray(response.outputs["saliency"])[0]
                    else:
                        status, body = http(url, {"instances": [b64(image)]})
                        assert status == 200, body
                        saliency = np.array(body["predictions"][0]["saliency"])
                    self.versions.append(self.answered_by(saliency))
                except Exception as error:
                    self.failures.append(repr(error))

    def answered_by(self, saliency: np.ndarray) -> int:
        for version, expected in self.expected.items():
            if np.allclose(saliency, expected, rtol=1e-5, atol=1e-7):
                return version
        raise AssertionError("the answer is neither version's")


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_hot_swap_under_load_fails_no_request(tmp_path):
    base = tmp_path / MODEL
    # Version 2 is exported beside the base path first, to know its answer.
    expected = {
        1: expected_saliency(export_version(base, 1)),
        2: expected_saliency(export_version(tmp_path / "staging" / MODEL, 2)),
    }
    assert not np.allclose(expected[1], expected[2])
    server = start_server(base, poll_wait_seconds=0.1)
    stop = threading.Event()
    clients = [Client(server, i % 2 == 1, stop, expected) for i in range(CLIENTS)]
    try:
        for client in clients:
            client.start()
        started = wait_for(lambda: all(len(c.versions) >= 3 for c in clients), 120)
        assert started, [c.failures[:1] for c in clients]
        # As the exporter does: written elsewhere, renamed into place.
        os.rename(tmp_path / "staging" / MODEL / "2", base / "2")
        swapped = wait_for(lambda: all(c.versions[-3:] == [2, 2, 2] for c in clients), 120)
    finally:
        stop.set()
        for client in clients:
            client.join(60)
        server.stop()
    assert swapped, [c.versions[-5:] for c in clients]
    assert [c.failures for c in clients] == [[]] * CLIENTS
    for client in clients:
        # Each client saw version 1, then only version 2 once it had seen it.
        first_two = client.versions.index(2)
        assert set(client.versions[:first_two]) == {1} and set(client.versions[first_two:]) == {2}
    states = {v: s.state for v, s in server.manager.status(MODEL)}
    from serving.model_manager import State

    assert states == {2: State.AVAILABLE, 1: State.END}
