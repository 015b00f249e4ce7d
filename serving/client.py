r"""Query a served saliency model over gRPC or REST: a small library and a command line.

```python
from serving.client import SaliencyClient

with SaliencyClient("localhost:8500", protocol="grpc", model="saliency") as client:
    (prediction,) = client.predict([open("a.jpg", "rb").read()], explain=True)
prediction.saliency         # (H, W) at the image's own size
prediction.contributions    # (H, W, groups), explainable models with explain=True
prediction.reconstructions  # {tap: (h, w, C)} on the model's canvas
```

Command line::

    python -m serving.client --target localhost:8500 --protocol grpc \
        --image a.jpg --out a_saliency.png [--explain]

writes the heat-map overlay ``a_saliency.png`` and the raw map ``a_saliency.npy``
(float32, the image's size); with ``--explain`` also ``a_saliency_contributions.npy``
(H, W, groups), one overlay per group in ``a_saliency_contributions.png`` and the tap
reconstructions in ``a_saliency_reconstructions.npz``.

Works against TF Serving and ``python -m serving.server`` alike (the same API). The
images travel encoded, as the files are: raw bytes in the gRPC ``TensorProto``,
standard base64 in ``{"b64": ...}`` over REST (TF Serving decodes it). The gRPC
receive limit is raised to 512 MiB, since ``explain`` outputs (contribution maps at
the image's resolution) exceed gRPC's 4 MiB default for any photo.
"""

import argparse
import base64
import contextlib
import dataclasses
import http.client
import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from serving import constants, rest_answers

PROTOCOLS = ("grpc", "rest")
MAX_RECEIVE_BYTES = 512 << 20


class ServingError(RuntimeError):
    """The server refused a request or could not be reached (its message says why)."""


@dataclasses.dataclass
class Prediction:
    """One image's outputs, cropped to the image.

    Attributes:
        saliency: (H, W) float32 at the image's own size: a fixation density summing
            to 1 for log-density models, the model's scores for map models.
        contributions: (H, W, groups) additive contributions to the saliency logits
            (``explain`` only).
        reconstructions: tap -> (h, w, C) reconstructed activations on the model's
            canvas (``explain`` only).
    """

    saliency: np.ndarray
    contributions: np.ndarray | None = None
    reconstructions: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def split_outputs(outputs: dict[str, np.ndarray]) -> list[Prediction]:
    """Turns a batch of padded signature outputs into per-image ``Prediction``s."""
    prefix = constants.RECONSTRUCTION_PREFIX
    predictions = []
    heights, widths = outputs[constants.HEIGHT_OUTPUT], outputs[constants.WIDTH_OUTPUT]
    for index, (height, width) in enumerate(zip(heights, widths, strict=True)):
        window = (index, slice(0, int(height)), slice(0, int(width)))
        contributions = outputs.get(constants.CONTRIBUTIONS_OUTPUT)
        predictions.append(
            Prediction(
                saliency=np.asarray(outputs[constants.SALIENCY_OUTPUT][window], np.float32),
                contributions=None if contributions is None else contributions[window],
                reconstructions={
                    key[len(prefix) :]: value[index]
                    for key, value in outputs.items()
                    if key.startswith(prefix)
                },
            )
        )
    return predictions


class SaliencyClient:
    """A client of one served model.

    Args:
        target: ``HOST:PORT`` of the server (gRPC port for "grpc", REST port for "rest").
        protocol: "grpc" or "rest".
        model: the served model's name.
        version: a model version; default the newest the server serves.
        timeout: seconds to wait for each answer.
    """

    def __init__(
        self,
        target: str,
        protocol: str = "grpc",
        model: str = constants.DEFAULT_MODEL_NAME,
        version: int | None = None,
        timeout: float = 60.0,
    ):
        if protocol not in PROTOCOLS:
            raise ValueError(
                f"protocol must be one of {PROTOCOLS}. Received: protocol={protocol!r}"
            )
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"target must be HOST:PORT. Received: target={target!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0. Received: timeout={timeout}")
        self.target, self.protocol, self.model = target, protocol, model
        self.version, self.timeout = version, timeout
        if protocol == "grpc":
            import grpc
            from tensorflow_serving.apis import prediction_service_pb2_grpc

            self._channel = grpc.insecure_channel(
                target, options=[("grpc.max_receive_message_length", MAX_RECEIVE_BYTES)]
            )
            self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        else:
            # One keep-alive connection per calling thread: http.client connections
            # are not thread-safe, and TF Serving keeps connections open between requests.
            self._connections = threading.local()

    def predict(self, images: Sequence[bytes], explain: bool = False) -> list[Prediction]:
        """Saliency (and with ``explain`` the explanation) of encoded JPEG/PNG images.

        Raises:
            ServingError: if the server refuses the request (bad image, unknown model
                or signature, e.g. ``explain`` on a deep model) or cannot be reached.
        """
        if not images:
            raise ValueError("images must hold at least one encoded image.")
        signature = constants.EXPLAIN_SIGNATURE if explain else constants.DEFAULT_SIGNATURE
        return split_outputs(self.run(signature, list(images)))

    def run(self, signature: str, images: list[bytes]) -> dict[str, np.ndarray]:
        """The raw (batch-padded) outputs of a bytes signature."""
        if self.protocol == "grpc":
            return self._run_grpc(signature, images)
        return self._run_rest(signature, images)

    def _run_grpc(self, signature: str, images: list[bytes]) -> dict[str, np.ndarray]:
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model
        request.model_spec.signature_name = signature
        if self.version is not None:
            request.model_spec.version.value = self.version
        request.inputs[constants.IMAGE_BYTES_INPUT].CopyFrom(
            tf.make_tensor_proto(np.array(images, dtype=object))
        )
        try:
            response = self._stub.Predict(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise ServingError(
                f"{self.target} answered {error.code().name}: {error.details()}"
            ) from None
        return {key: tf.make_ndarray(value) for key, value in response.outputs.items()}

    def _run_rest(self, signature: str, images: list[bytes]) -> dict[str, np.ndarray]:
        version = f"/versions/{self.version}" if self.version is not None else ""
        path = f"/v1/models/{self.model}{version}:predict"
        encoded = [{"b64": base64.b64encode(image).decode("ascii")} for image in images]
        body = {"signature_name": signature, "inputs": {constants.IMAGE_BYTES_INPUT: encoded}}
        status, answer = self._post(path, json.dumps(body).encode())
        if status != 200:
            message = answer[:200].decode("utf-8", errors="replace")
            with contextlib.suppress(ValueError, AttributeError):  # Not {"error": ...}
                message = json.loads(answer).get("error", message)
            raise ServingError(f"http://{self.target}{path} answered HTTP {status}: {message}")
        try:
            outputs = rest_answers.read_predict_answer(answer)
            if not isinstance(outputs, dict):
                raise ValueError("the signature answered with one unnamed output")
            sizes = (constants.HEIGHT_OUTPUT, constants.WIDTH_OUTPUT)
            return {
                key: value.astype(np.int32 if key in sizes else np.float32)
                for key, value in outputs.items()
            }
        except ValueError as error:
            raise ServingError(
                f"http://{self.target}{path} gave an unreadable answer: {error}"
            ) from None

    def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body) of a POST on this thread's connection, reconnecting once."""
        connection = getattr(self._connections, "connection", None)
        reused = connection is not None
        if connection is None:
            host, _, port = self.target.rpartition(":")
            connection = http.client.HTTPConnection(host.strip("[]"), int(port), self.timeout)
            self._connections.connection = connection
        headers = {"Content-Type": "application/json"}
        try:
            try:
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if not reused:
                    raise
                # The server closed the kept-alive connection while it was idle; a
                # predict changes nothing, so it is sent again on a new connection.
                connection.close()
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
            # http.client opens a new connection by itself once the server has
            # closed this one (the local server closes after every answer).
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise ServingError(f"cannot reach http://{self.target}{path}: {error}") from None

    def close(self) -> None:
        """Closes the connection (REST: the calling thread's; others close with their thread)."""
        if self.protocol == "grpc":
            self._channel.close()
        elif getattr(self._connections, "connection", None) is not None:
            self._connections.connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def write_outputs(image: np.ndarray, prediction: Prediction, out: str | Path) -> list[Path]:
    """Writes the overlay PNG, the raw map and the explanation files; returns them."""
    from tfsal.io_utils import atomic_path
    from tfsal.visualize import overlay, write_png

    out = Path(out)
    written = [write_png(out, overlay(image, prediction.saliency))]

    def save(suffix, write):
        path = out.with_name(out.stem + suffix)
        with atomic_path(path) as temporary, open(temporary, "wb") as handle:
            write(handle)
        written.append(path)

    save(".npy", lambda handle: np.save(handle, prediction.saliency))
    if prediction.contributions is not None:
        save("_contributions.npy", lambda handle: np.save(handle, prediction.contributions))
        groups = np.moveaxis(prediction.contributions, -1, 0)
        strip = np.concatenate([overlay(image, group) for group in groups], axis=1)
        written.append(write_png(out.with_name(out.stem + "_contributions.png"), strip))
    if prediction.reconstructions:
        save("_reconstructions.npz", lambda handle: np.savez(handle, **prediction.reconstructions))
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: one image's saliency from a served model."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.client",
        description="Asks a served tfsal model (TF Serving or python -m serving.server) for "
        "an image's saliency; writes an overlay PNG and the raw map (.npy).",
    )
    parser.add_argument("--target", required=True, help="HOST:PORT of the server")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="grpc")
    parser.add_argument("--image", required=True, help="a JPEG or PNG file")
    parser.add_argument("--out", required=True, help="the overlay PNG to write")
    parser.add_argument("--explain", action="store_true", help="also the explanation")
    parser.add_argument("--model", default=constants.DEFAULT_MODEL_NAME, help="model name")
    parser.add_argument("--version", type=int, help="model version (default: newest)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    args = parser.parse_args(argv)
    from tfsal.data.images import ImageDecodeError, read_image

    try:
        data = Path(args.image).read_bytes()
        image = read_image(args.image)
        with SaliencyClient(
            args.target, args.protocol, args.model, args.version, args.timeout
        ) as client:
            (prediction,) = client.predict([data], explain=args.explain)
        written = write_outputs(image, prediction, args.out)
    except (OSError, ValueError, ImageDecodeError, ServingError) as error:
        parser.exit(1, f"error: {error}\n")
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
