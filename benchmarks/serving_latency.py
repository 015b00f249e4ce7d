"""Latency and throughput of the local model server against a direct SavedModel call.

Run ``python benchmarks/serving_latency.py [--derive] [--rounds 16] [--per_round 3]
[--concurrent_rounds 2] [--out results.json]``.

One 288x384 JPEG (the first NUS image resized, or a synthetic picture without the
shared data) goes through ``serving_default`` of three models exported by
``serving.export``: UNISAL at its default size (288x384, random weights: the weights do
not change the cost); with ``--derive``, UNISAL's explainable model, derived by
``tfsal.explain.derive`` on 12 NUS images (the fit does not change the cost either); and
a *probe*, a model that only averages the colour channels, so its requests cost the
decoding, resizing and serving alone: the server's fixed cost per request shows as the
probe's latency over its direct call. Three ways are compared:

- ``direct``: the SavedModel loaded in this process, ``serving_default`` called;
- ``grpc``: ``PredictionService.Predict`` through the generated stub to
  ``python -m serving.server`` running in its own process, outputs decoded with
  ``tf.make_ndarray``;
- ``rest``: ``POST :predict`` with ``{"instances": [{"b64": ...}]}`` over a plain HTTP
  connection to the same server, the JSON answer read into an array by
  ``serving.rest_answers`` (as ``serving.client`` reads it).

Each server request is timed twice: when the answer has arrived (gRPC: the stub has
returned the parsed ``PredictResponse``; REST: the last byte of the body is in), which
is what the server costs, and when its map is a numpy array, which is what a Python
client costs. One client: the three ways take turns in rounds (order rotated), so the
machine's drift and the other engineers' load hit them alike; the overhead is the
median over rounds of (server p50 / direct p50 of the same round), for both times, and
the CPU time per request is counted too (this process plus the server process, from
/proc): it is far less inflated by load than wall time. Eight clients: eight threads
send requests at once for each way in turn; throughput is requests per second of wall
time. Each stage of a request (the model, the server's parsing and encoding, the
client's decoding, with orjson and numpy as well for comparison) is also timed alone
in this process. The load average is printed before and after.
"""

import argparse
import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import serving_stages  # noqa: E402  (beside this script)
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: E402

from serving import constants, rest_answers  # noqa: E402
from serving.export import export_model  # noqa: E402
from serving.warmup import warmup_image  # noqa: E402
from tfsal import models, paths  # noqa: E402

IMAGE_SIZE = (288, 384)
WAYS = ("direct", "grpc", "rest")
CLIENTS = 8


def benchmark_jpeg() -> tuple[bytes, str]:
    """A 288x384 JPEG: the first NUS image resized, else a synthetic picture."""
    stimuli = paths.shared_dir() / "datasets" / "nus-scene" / "stimuli"
    files = sorted(stimuli.glob("*.jpg")) if stimuli.is_dir() else []
    if files:
        image = tf.io.decode_jpeg(files[0].read_bytes(), channels=3)
        image = tf.cast(tf.image.resize(image, IMAGE_SIZE, antialias=True), tf.uint8)
        source = f"NUS {files[0].name} resized"
    else:
        image, source = warmup_image(IMAGE_SIZE), "synthetic picture"
    return tf.io.encode_jpeg(image, quality=90).numpy(), source


def export_unisal(base: Path) -> Path:
    model = models.get("unisal", input_size=IMAGE_SIZE)
    info = models.model_info("unisal")
    return export_model(model, base, "unisal", input_size=IMAGE_SIZE, output=info.output)


def export_probe(base: Path) -> Path:
    """A model whose own cost is negligible: the channel mean as the saliency map."""
    import keras

    inputs = keras.Input((*IMAGE_SIZE, 3), name="image")
    saliency = keras.layers.Lambda(lambda x: keras.ops.mean(x, axis=-1, keepdims=True))(inputs)
    model = keras.Model(inputs, {constants.SALIENCY: saliency})
    return export_model(model, base, "probe", input_size=IMAGE_SIZE, output="map")


def derive_explainable(base: Path) -> Path:
    """UNISAL's explainable model, derived on 12 NUS images and exported."""
    from tfsal.explain import derive

    stimuli = sorted((paths.shared_dir() / "datasets" / "nus-scene" / "stimuli").glob("*.jpg"))
    if len(stimuli) < 12:
        raise SystemExit("--derive needs the NUS images of the shared folder (TFSAL_SHARED).")
    images = np.stack(
        [
            tf.image.resize(tf.io.decode_jpeg(f.read_bytes(), channels=3), IMAGE_SIZE)
            for f in stimuli[:12]
        ]
    )
    taps = models.model_info("unisal").default_taps
    parent = models.get("unisal", input_size=IMAGE_SIZE, taps=taps)
    derivation = derive(parent, [images[:4], images[4:8]], [images[8:]], readout_epochs=1)
    return export_model(
        derivation.model, base, "unisal_explainable", input_size=IMAGE_SIZE, output="log_density"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """``python -m serving.server`` on free loopback ports, for one model folder."""

    def __init__(self, name: str, model_folder: Path):
        self.name, self.grpc_port, self.rest_port = name, free_port(), free_port()
        command = [
            sys.executable, "-m", "serving.server", "--port", str(self.grpc_port),
            "--rest_api_port", str(self.rest_port), "--model_name", name,
            "--model_base_path", str(model_folder), "--file_system_poll_wait_seconds", "0",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 600
        while not self._available():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not start: {self.process.stderr.read()[-2000:]}"
                )
            time.sleep(0.5)

    def _available(self) -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.rest_port, timeout=5)
            connection.request("GET", f"/v1/models/{self.name}")
            body = json.loads(connection.getresponse().read())
            return body["model_version_status"][0]["state"] == "AVAILABLE"
        except (OSError, KeyError, ValueError):
            return False

    def cpu_seconds(self) -> float:
        """The server process's CPU time so far (user + system, Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Stops the server as a user would: SIGTERM, then a clean exit."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def make_clients(server: ServerProcess, version_folder: Path, image: bytes) -> dict:
    """One callable per way, each returning the saliency map as a numpy array."""
    signature = tf.saved_model.load(str(version_folder)).signatures[constants.DEFAULT_SIGNATURE]
    batch = tf.constant([image])
    request = predict_pb2.PredictRequest()
    request.model_spec.name = server.name
    request.inputs[constants.IMAGE_BYTES_INPUT].CopyFrom(
        tf.make_tensor_proto(np.array([image], dtype=object))
    )
    body = json.dumps({"instances": [{"b64": base64.b64encode(image).decode()}]}).encode()
    local = threading.local()  # one gRPC channel per client thread

    def direct():
        saliency = signature(image_bytes=batch)[constants.SALIENCY_OUTPUT].numpy()
        return saliency, time.perf_counter()

    def grpc_predict():
        if not hasattr(local, "stub"):
            channel = grpc.insecure_channel(
                f"127.0.0.1:{server.grpc_port}", options=[("grpc.max_receive_message_length", -1)]
            )
            local.stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = local.stub.Predict(request, timeout=120)
        received = time.perf_counter()  # the stub has parsed the PredictResponse
        return tf.make_ndarray(response.outputs[constants.SALIENCY_OUTPUT]), received

    def rest_predict():
        connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=120)
        connection.request("POST", f"/v1/models/{server.name}:predict", body)
        response = connection.getresponse()
        answer = response.read()
        received = time.perf_counter()  # the body's last byte is in
        return rest_saliency(response.status, answer), received

    return {"direct": direct, "grpc": grpc_predict, "rest": rest_predict, "signature": signature}


def rest_saliency(status: int, body: bytes) -> np.ndarray:
    """The saliency maps of a REST predict answer, read as serving.client reads them."""
    if status != 200:
        raise RuntimeError(body[:500])
    outputs = rest_answers.read_predict_answer(body)
    return outputs[constants.SALIENCY_OUTPUT].astype(np.float32)


def timed(call) -> tuple[float, float]:
    """Seconds until the answer arrived and until it was an array (equal for direct)."""
    start = time.perf_counter()
    _, received = call()
    return received - start, time.perf_counter() - start


def one_client(clients: dict, server: ServerProcess, rounds: int, per_round: int) -> dict:
    samples = {way: [] for way in WAYS}  # (answer in, as array) seconds per request
    ratios = {way: [] for way in WAYS}  # per round: both p50s over direct's p50
    cpu = dict.fromkeys(WAYS, 0.0)
    for turn in range(rounds):
        medians = {}
        for way in WAYS[turn % 3 :] + WAYS[: turn % 3]:
            cpu_before = time.process_time() + server.cpu_seconds()
            times = [timed(clients[way]) for _ in range(per_round)]
            cpu[way] += time.process_time() + server.cpu_seconds() - cpu_before
            samples[way] += times
            medians[way] = np.median(times, axis=0)
        for way in WAYS:
            ratios[way].append(medians[way] / medians["direct"][1])
    results = {}
    for way in WAYS:
        received, parsed = np.array(samples[way]).T
        received_ratio, parsed_ratio = np.median(ratios[way], axis=0)
        results[way] = {
            **summary(list(parsed)),
            "received_p50_ms": 1000 * float(np.median(received)),
            "cpu_ms_per_request": 1000 * cpu[way] / len(parsed),
            "received_ratio_to_direct": float(received_ratio),
            "ratio_to_direct": float(parsed_ratio),
        }
    return results


def concurrent_clients(clients: dict, rounds: int, per_client: int) -> dict:
    latencies, walls = {way: [] for way in WAYS}, {way: 0.0 for way in WAYS}
    for turn in range(rounds):
        for way in WAYS[turn % 3 :] + WAYS[: turn % 3]:
            samples = []

            def work(way=way, samples=samples):
                for _ in range(per_client):
                    samples.append(timed(clients[way])[1])

            threads = [threading.Thread(target=work) for _ in range(CLIENTS)]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(600)
            walls[way] += time.perf_counter() - start
            latencies[way] += samples
    return {
        way: {**summary(latencies[way]), "throughput": len(latencies[way]) / walls[way]}
        for way in WAYS
    }


def summary(samples: list[float]) -> dict:
    return {
        "p50_ms": 1000 * float(np.percentile(samples, 50)),
        "p99_ms": 1000 * float(np.percentile(samples, 99)),
        "requests": len(samples),
    }


def benchmark_model(name, version_folder, image, args) -> dict:
    server = ServerProcess(name, version_folder.parent)
    try:
        clients = make_clients(server, version_folder, image)
        reference, _ = clients["direct"]()
        for way in WAYS:  # warm up, and check all three answer the same map
            np.testing.assert_allclose(clients[way]()[0], reference, rtol=1e-4, atol=1e-7)
        return {
            "stages_ms": serving_stages.stage_times(clients["signature"], image),
            "one_client": one_client(clients, server, args.rounds, args.per_round),
            "eight_clients": concurrent_clients(clients, args.concurrent_rounds, args.per_client),
        }
    finally:
        server.stop()


def print_table(results: dict) -> None:
    print(
        "| model | clients | way | p50 answer in (ms) | p50 as array (ms) | p99 (ms) "
        "| requests/s | answer in vs direct | as array vs direct | CPU ms |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, result in results.items():
        for clients, key in ((1, "one_client"), (CLIENTS, "eight_clients")):
            for way, row in result[key].items():
                throughput = row.get("throughput", 1000 / row["p50_ms"])
                received = row.get("received_p50_ms")
                received = f"{received:.1f}" if received is not None else ""
                ratios = [
                    f"{row[field]:.3f}x" if field in row else ""
                    for field in ("received_ratio_to_direct", "ratio_to_direct")
                ]
                cpu = f"{row['cpu_ms_per_request']:.1f}" if "cpu_ms_per_request" in row else ""
                print(
                    f"| {name} | {clients} | {way} | {received} | {row['p50_ms']:.1f} "
                    f"| {row['p99_ms']:.1f} | {throughput:.2f} | {ratios[0]} | {ratios[1]} "
                    f"| {cpu} |"
                )
    print("\nStages of one request, each timed alone in this process (median ms):")
    for name, result in results.items():
        stages = result["stages_ms"]
        print(
            f"- {name}: model {stages['model']:.2f}; gRPC server {stages['grpc_server']:.2f}, "
            f"client decode {stages['grpc_client_decode']:.2f} "
            f"({stages['grpc_answer_bytes']} bytes); REST server parse "
            f"{stages['rest_server_parse']:.2f}, JSON encode {stages['rest_server_encode']:.2f}, "
            f"client decode {stages['rest_client_decode']:.2f} (orjson and numpy: "
            f"{stages['rest_client_decode_orjson']:.2f}) ({stages['rest_answer_bytes']} bytes)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=16, help="one-client rounds")
    parser.add_argument("--per_round", type=int, default=3, help="requests per way per round")
    parser.add_argument("--concurrent_rounds", type=int, default=2)
    parser.add_argument("--per_client", type=int, default=3, help="requests per client thread")
    parser.add_argument("--derive", action="store_true", help="derive UNISAL's explainable model")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    image, source = benchmark_jpeg()
    load_before = os.getloadavg()
    print(f"image: {source}, {len(image)} bytes; load average before: {load_before}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as base:
        folders = {"probe": export_probe(Path(base)), "unisal (deep)": export_unisal(Path(base))}
        if args.derive:
            folders["explainable"] = derive_explainable(Path(base))
        for name, folder in folders.items():
            print(f"benchmarking {name} ({folder})", flush=True)
            results[name] = benchmark_model(folder.parent.name, folder, image, args)
    load_after = os.getloadavg()
    print(f"load average after: {load_after}; {os.cpu_count()} CPUs")
    print_table(results)
    if args.out:
        report = {"image": source, "load_before": load_before, "load_after": load_after}
        args.out.write_text(json.dumps({**report, "results": results}, indent=2))


if __name__ == "__main__":
    main()
