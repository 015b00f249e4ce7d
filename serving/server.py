r"""A local server speaking TF Serving's gRPC and REST APIs: ``python -m serving.server``.

The real ``tensorflow_model_server`` ships only as a Docker image or from Google's own
apt repository, so local use, demos and tests run this instead; production runs TF
Serving (see the Dockerfile and README). The flags are TF Serving's where they apply::

    python -m serving.server --port 8500 --rest_api_port 8501 \
        --model_name saliency --model_base_path runs/fit/export/unisal
    python -m serving.server --model_config_file models.config --rest_api_port 8501

Differences from TF Serving, each on purpose: it binds 127.0.0.1 unless ``--host`` says
otherwise; a request body over ``--max_request_bytes`` is refused (413 / gRPC
RESOURCE_EXHAUSTED) where TF Serving takes up to 2 GB; the gRPC health service is always
on, and so are the request metrics at ``/monitoring/prometheus/metrics`` on the REST port
(TF Serving's default path; ``server_metrics`` has the names); a model that is still
loading answers 503 (UNAVAILABLE) rather than 404. SIGTERM and SIGINT stop it cleanly:
health turns NOT_SERVING, no new requests are taken, and those under way finish (up to
``--shutdown_grace_seconds``).
"""

import argparse
import logging
import os
import signal
import sys
import threading

from serving import model_config, rest
from serving.grpc_service import HealthReporter, make_grpc_server
from serving.model_manager import ModelManager
from serving.server_metrics import ServerMetrics

_LOG = logging.getLogger("serving.server")
# Four request threads per core, TF Serving's default for both APIs.
_DEFAULT_THREADS = 4 * (os.cpu_count() or 1)


class ModelServer:
    """The gRPC and REST servers over one model manager, started and stopped together.

    Args:
        sources: the models to serve.
        host: the address both servers bind.
        grpc_port: the gRPC port; 0 picks a free one.
        rest_port: the REST port; 0 picks a free one; None turns REST off.
        poll_wait_seconds: ``--file_system_poll_wait_seconds``.
        max_request_bytes: the largest request accepted, on either API.
        num_threads: request threads per API.
        rest_timeout_seconds: the socket timeout of a REST connection.
        warm_up: replay each version's warmup records before it serves.
    """

    def __init__(
        self,
        sources: list[model_config.ModelSource],
        host: str = "127.0.0.1",
        grpc_port: int = 8500,
        rest_port: int | None = None,
        poll_wait_seconds: float = 1.0,
        max_request_bytes: int = 64 << 20,
        num_threads: int = _DEFAULT_THREADS,
        rest_timeout_seconds: float = 30.0,
        warm_up: bool = True,
    ):
        if max_request_bytes < 1:
            raise ValueError(f"max_request_bytes must be >= 1. Received: {max_request_bytes}")
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1. Received: {num_threads}")
        self.health = HealthReporter()
        self.manager = ModelManager(
            sources,
            poll_wait_seconds,
            on_poll=lambda manager: self.health.update(manager.all_available()),
            warm_up=warm_up,
        )
        self.metrics = ServerMetrics(self.manager.model_names)
        self._grpc, self.grpc_port = make_grpc_server(
            self.manager,
            self.health,
            _address(host, grpc_port),
            num_threads,
            max_request_bytes,
            self.metrics,
        )
        self._rest = None
        self.rest_port = None
        if rest_port is not None:
            app = rest.RestApi(self.manager, max_request_bytes, self.metrics)
            self._rest = rest.BoundedWSGIServer(
                host, rest_port, app, num_threads, rest_timeout_seconds
            )
            self.rest_port = self._rest.port
        self._rest_thread = None
        self._stopped = threading.Event()

    def start(self) -> None:
        """Starts loading models and answering requests (in background threads)."""
        self.manager.start()
        self._grpc.start()
        if self._rest is not None:
            self._rest_thread = threading.Thread(
                target=self._rest.serve_forever, kwargs={"poll_interval": 0.1}, name="rest"
            )
            self._rest_thread.start()

    def wait_until_ready(self, timeout: float) -> bool:
        """Whether every model has a version serving within ``timeout`` seconds."""
        return self.manager.wait_for_first_poll(timeout) and self.manager.all_available()

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stops taking requests, lets those under way finish, stops polling."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.shutdown()
        grpc_done = self._grpc.stop(grace_seconds)
        if self._rest is not None:
            self._rest.shutdown()  # Returns once serve_forever has left its loop.
            self._rest_thread.join(grace_seconds)
        grpc_done.wait(grace_seconds)
        self.manager.stop(grace_seconds)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _boolean(text: str) -> bool:
    # TF Serving's flags take --flag=true/false.
    if text.lower() not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() in ("true", "1")


def build_parser() -> argparse.ArgumentParser:
    """The command line (TF Serving's flag names where they apply)."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.server",
        description="Serve SavedModels over TF Serving's gRPC and REST APIs, locally.",
    )
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (0: any free one).")
    parser.add_argument(
        "--rest_api_port", type=int, default=0, help="REST port; 0 (the default) turns REST off."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="Address to bind (0.0.0.0 exposes the server)."
    )
    parser.add_argument("--model_name", default="default", help="Name of the single model.")
    parser.add_argument("--model_base_path", help="Folder of the model's version folders.")
    parser.add_argument(
        "--model_config_file", help="TF Serving ModelServerConfig text file (several models)."
    )
    parser.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="Seconds between looks for new versions; 0 looks once at start-up.",
    )
    parser.add_argument(
        "--max_request_bytes", type=int, default=64 << 20, help="Largest request body accepted."
    )
    parser.add_argument(
        "--rest_api_num_threads", type=int, default=_DEFAULT_THREADS, help="Request threads."
    )
    parser.add_argument(
        "--rest_api_timeout_in_ms", type=int, default=30000, help="REST connection timeout."
    )
    parser.add_argument(
        "--enable_model_warmup",
        type=_boolean,
        default=True,
        help="Replay assets.extra/tf_serving_warmup_requests before serving a version.",
    )
    parser.add_argument("--shutdown_grace_seconds", type=float, default=10.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the server until SIGTERM or SIGINT."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        if args.model_config_file:
            sources = model_config.read_model_config_file(args.model_config_file)
        elif args.model_base_path:
            sources = model_config.single_model(args.model_name, args.model_base_path)
        else:
            raise ValueError("Give --model_base_path (one model) or --model_config_file.")
        server = ModelServer(
            sources,
            host=args.host,
            grpc_port=args.port,
            rest_port=args.rest_api_port or None,
            poll_wait_seconds=args.file_system_poll_wait_seconds,
            max_request_bytes=args.max_request_bytes,
            num_threads=args.rest_api_num_threads,
            rest_timeout_seconds=args.rest_api_timeout_in_ms / 1000,
            warm_up=args.enable_model_warmup,
        )
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop.set())
    server.start()
    # TF Serving's start-up lines, which scripts wait for.
    print(f"Running gRPC ModelServer at {_address(args.host, server.grpc_port)} ...", flush=True)
    if server.rest_port is not None:
        print(f"Exporting HTTP/REST API at:{args.host}:{server.rest_port} ...", flush=True)
    stop.wait()
    _LOG.info("Shutting down")
    server.stop(args.shutdown_grace_seconds)
    print("Server stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
