"""A new version is picked up by polling and swapped in while clients keep asking."""

import os
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.serving import stand_in_models
from tests.serving.conftest import MODEL, b64, http, start_server
from tests.serving.test_server_grpc import predict_request

CLIENTS = 8  # half REST, half gRPC
GREY = 102  # a flat grey image: saliency = version * 0.4 everywhere


def flat_png() -> bytes:
    return tf.io.encode_png(np.full([8, 8, 3], GREY, np.uint8)).numpy()


class Client(threading.Thread):
    """Sends requests until told to stop (at most 1000 or 180 s); records answers."""

    def __init__(self, server, use_grpc: bool, stop: threading.Event):
        super().__init__(daemon=True)
        self.server, self.use_grpc, self.stop = server, use_grpc, stop
        self.versions, self.failures = [], []

    def run(self):
        import grpc

        image, deadline = flat_png(), time.monotonic() + 180
        url = f"http://127.0.0.1:{self.server.rest_port}/v1/models/{MODEL}:predict"
        with grpc.insecure_channel(f"127.0.0.1:{self.server.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for _ in range(1000):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    if self.use_grpc:
                        response = stub.Predict(predict_request([image]), timeout=60)
                        saliency = tf.make_ndarray(response.outputs["saliency"])
                    else:
                        status, body = http(url, {"instances": [b64(image)]})
                        assert status == 200, body
                        saliency = np.array(body["predictions"][0]["saliency"])
                    self.versions.append(round(float(saliency.mean()) / (GREY / 255)))
                except Exception as error:
                    self.failures.append(repr(error))


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
    stand_in_models.write(base, 1)
    server = start_server(base, poll_wait_seconds=0.1)
    stop = threading.Event()
    clients = [Client(server, use_grpc=i % 2 == 1, stop=stop) for i in range(CLIENTS)]
    try:
        for client in clients:
            client.start()
        assert wait_for(lambda: all(len(c.versions) >= 3 for c in clients), 120)
        # As the exporter does: written elsewhere, renamed into place.
        staging = stand_in_models.write(tmp_path / "staging", 2)
        os.rename(staging, base / "2")
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
