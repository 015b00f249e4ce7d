"""serving.client against the local server, over gRPC and REST, with a real export."""

import json
import socketserver
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving import client as client_lib
from serving import constants, model_config
from serving.export import export_model
from serving.server import ModelServer
from tests.serving import tiny_models
from tests.serving.tiny_models import jpeg, picture, png

NAME = "saliency"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    path = export_model(
        tiny_models.explainable_model(),
        base,
        NAME,
        input_size=tiny_models.INPUT_SIZE,
        output="log_density",
    )
    return path, tf.saved_model.load(str(path))


@pytest.fixture(scope="module")
def server(exported):
    sources = model_config.single_model(NAME, exported[0].parent)
    server = ModelServer(sources, grpc_port=0, rest_port=0, poll_wait_seconds=0.2, num_threads=4)
    server.start()
    assert server.wait_until_ready(120), "the model did not load"
    yield server
    server.stop()


def target(server, protocol):
    port = server.grpc_port if protocol == "grpc" else server.rest_port
    return f"127.0.0.1:{port}"


def direct(loaded, signature, images):
    outputs = loaded.signatures[signature](image_bytes=tf.constant(images))
    return {key: value.numpy() for key, value in outputs.items()}


@pytest.mark.parametrize("protocol", client_lib.PROTOCOLS)
def test_predictions_match_the_saved_model_cropped_to_each_image(server, exported, protocol):
    images = [png(picture(20, 30, seed=1)), jpeg(picture(45, 40, seed=2))]
    with client_lib.SaliencyClient(target(server, protocol), protocol, NAME) as client:
        predictions = client.predict(images)
    expected = direct(exported[1], constants.DEFAULT_SIGNATURE, images)["saliency"]
    assert [p.saliency.shape for p in predictions] == [(20, 30), (45, 40)]
    np.testing.assert_allclose(predictions[0].saliency, expected[0, :20, :30], rtol=1e-5)
    np.testing.assert_allclose(predictions[1].saliency, expected[1], rtol=1e-5)
    assert predictions[0].contributions is None and not predictions[0].reconstructions


@pytest.mark.parametrize("protocol", client_lib.PROTOCOLS)
def test_explain_returns_contributions_and_reconstructions(server, exported, protocol):
    images = [png(picture(24, 36))]
    with client_lib.SaliencyClient(target(server, protocol), protocol, NAME) as client:
        (prediction,) = client.predict(images, explain=True)
    expected = direct(exported[1], constants.EXPLAIN_SIGNATURE, images)
    np.testing.assert_allclose(
        prediction.contributions, expected["contributions"][0], rtol=1e-5, atol=1e-6
    )
    key = constants.reconstruction_key(tiny_models.TAP)
    np.testing.assert_allclose(
        prediction.reconstructions[tiny_models.TAP], expected[key][0], rtol=1e-5, atol=1e-6
    )


def test_large_explain_outputs_need_the_raised_grpc_limit(server):
    # 1000 x 800 x 2 float32 contributions alone are 6.4 MB, over gRPC's 4 MiB default.
    image = png(picture(1000, 800))
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = NAME, "explain"
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(np.array([image], object)))
    with grpc.insecure_channel(target(server, "grpc")) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Predict(request, timeout=60)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with client_lib.SaliencyClient(target(server, "grpc"), "grpc", NAME) as client:
        (prediction,) = client.predict([image], explain=True)
    assert prediction.contributions.shape == (1000, 800, 2)


@pytest.mark.parametrize("protocol", client_lib.PROTOCOLS)
def test_refusals_come_back_as_one_clear_error(server, protocol):
    address = target(server, protocol)
    with (
        client_lib.SaliencyClient(address, protocol, NAME) as client,
        pytest.raises(client_lib.ServingError, match="neither a JPEG nor a PNG"),
    ):
        client.predict([b"not an image"])
    with (
        client_lib.SaliencyClient(address, protocol, "no_such_model") as client,
        pytest.raises(client_lib.ServingError, match="NOT_FOUND|HTTP 404"),
    ):
        client.predict([png(picture(8, 8))])


def test_unreachable_servers_and_bad_arguments():
    with (
        client_lib.SaliencyClient("127.0.0.1:9", "rest", timeout=5) as client,
        pytest.raises(client_lib.ServingError, match="cannot reach"),
    ):
        client.predict([b"x"])
    with pytest.raises(ValueError, match="protocol must be one of"):
        client_lib.SaliencyClient("127.0.0.1:8500", "http")
    with pytest.raises(ValueError, match="target must be HOST:PORT"):
        client_lib.SaliencyClient("localhost", "grpc")


@pytest.mark.parametrize("protocol", client_lib.PROTOCOLS)
def test_command_line_writes_overlay_raw_map_and_explanation(server, tmp_path, protocol, capsys):
    image_file = tmp_path / "a.jpg"
    image_file.write_bytes(jpeg(picture(30, 50)))
    out = tmp_path / "a_saliency.png"
    client_lib.main(
        ["--target", target(server, protocol), "--protocol", protocol, "--image", str(image_file)]
        + ["--out", str(out), "--explain", "--model", NAME]
    )
    printed = capsys.readouterr().out
    saliency = np.load(tmp_path / "a_saliency.npy")
    assert saliency.shape == (30, 50) and saliency.sum() == pytest.approx(1.0, rel=1e-4)
    assert np.load(tmp_path / "a_saliency_contributions.npy").shape == (30, 50, 2)
    assert tf.io.decode_png(out.read_bytes()).shape == (30, 50, 3)
    assert tf.io.decode_png((tmp_path / "a_saliency_contributions.png").read_bytes()).shape == (
        30,
        100,
        3,
    )
    with np.load(tmp_path / "a_saliency_reconstructions.npz") as reconstructions:
        assert list(reconstructions) == [tiny_models.TAP]
    assert str(out) in printed


def test_command_line_errors_are_one_line(server, tmp_path, capsys):
    with pytest.raises(SystemExit):
        client_lib.main(
            ["--target", target(server, "grpc"), "--image", str(tmp_path / "missing.jpg")]
            + ["--out", str(tmp_path / "x.png")]
        )
    assert capsys.readouterr().err.startswith("error: ")


class _KeepAliveThenClose(socketserver.StreamRequestHandler):
    """Answers one predict on a kept-alive connection, then drops it while idle, as a
    server's keep-alive timeout does."""

    answer = json.dumps({"outputs": {"saliency": [[[0.5, 0.25]]], "height": [1], "width": [2]}})

    def handle(self):
        length = 0
        while (line := self.rfile.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        self.rfile.read(length)
        self.server.requests += 1
        body = self.answer.encode()
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )


def test_rest_client_sends_again_when_an_idle_connection_was_dropped():
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _KeepAliveThenClose) as fake:
        fake.requests = 0
        threading.Thread(target=fake.serve_forever, daemon=True).start()
        address = f"127.0.0.1:{fake.server_address[1]}"
        try:
            with client_lib.SaliencyClient(address, "rest", NAME, timeout=10) as client:
                for _ in range(3):
                    (prediction,) = client.predict([b"an image"])
                    np.testing.assert_array_equal(prediction.saliency, [[0.5, 0.25]])
        finally:
            fake.shutdown()
    assert fake.requests == 3
