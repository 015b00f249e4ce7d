"""TF Serving's REST API as a WSGI application, and the bounded server that runs it.

Routes (case-insensitive, as ``http_rest_api_util.cc``):
- ``GET  /v1/models/NAME[/versions/N|/labels/L]``: the model's version status;
- ``GET  /v1/models/NAME[/versions/N|/labels/L]/metadata``: its signatures;
- ``POST /v1/models/NAME[/versions/N|/labels/L]:predict``: ``rest_json`` has the body;
- ``GET  /monitoring/prometheus/metrics``: request counts and latencies
  (``server_metrics``).

Every answer is JSON; errors are ``{"error": "..."}`` with TF Serving's HTTP statuses
(``errors.ServingError.http_status``), plus 413 for a body over the size limit —
checked on the declared length, on the bytes read, and again after gzip decompression.
As in TF Serving, the routes are matched on the path as sent, and only the model name
and label they capture are percent-decoded: ``/v1/models/..%2Fx`` asks for a model named
``../x`` (404), while ``/v1/models/../x`` matches no route (400). The name is only ever
looked up among the configured models; it never becomes a path.

The HTTP server is Werkzeug's: it parses HTTP, and answers each request on its own
connection (no keep-alive, so an idle client never holds a worker). Requests run on a
fixed pool of threads; when all are busy, new connections wait in the listen backlog
instead of each getting a thread of its own.
"""

import dataclasses
import logging
import re
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote, urlsplit

import grpc
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from serving import api_messages, errors, rest_json, server_metrics
from serving.model_manager import ModelManager
from serving.server_metrics import ServerMetrics

_LOG = logging.getLogger(__name__)
_MODEL = r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
_PREDICT_URL = re.compile(_MODEL + r":(?P<method>predict|classify|regress)", re.IGNORECASE)
_MODEL_URL = re.compile(_MODEL + r"(?P<metadata>/metadata)?", re.IGNORECASE)
# TF Serving's default monitoring path (monitoring.config's prometheus_config).
METRICS_PATH = "/monitoring/prometheus/metrics"


class RestApi:
    """The WSGI application.

    Args:
        manager: the models.
        max_request_bytes: the largest request body accepted, after decompression.
        metrics: where requests are counted and timed; also answers
            ``GET /monitoring/prometheus/metrics`` (None: no metrics).
    """

    def __init__(
        self, manager: ModelManager, max_request_bytes: int, metrics: ServerMetrics | None = None
    ):
        self._manager = manager
        self._max_request_bytes = max_request_bytes
        self._metrics = metrics

    def __call__(self, environ, start_response):
        """Answers one WSGI request."""
        start = time.perf_counter()
        request = Request(environ)
        request.max_content_length = self._max_request_bytes
        if request.path == METRICS_PATH and self._metrics is not None:
            return self._metrics_response(request)(environ, start_response)
        route = _Route()
        code = grpc.StatusCode.OK
        try:
            route = _route_of(request)
            status, body = 200, self._answer(request, route)
        except errors.ServingError as error:
            code, status = error.code, error.http_status
            body = rest_json.dumps({"error": error.message})
        except Exception as error:  # The last resort: say what broke, keep serving.
            _LOG.exception("REST request %s %s failed", request.method, request.path)
            code, status = grpc.StatusCode.INTERNAL, 500
            body = rest_json.dumps({"error": f"Internal error: {error}"})
        response = Response(body, status=status, content_type="application/json")
        if self._metrics is not None:
            self._metrics.record(route.name, route.api, "REST", code, time.perf_counter() - start)
        return response(environ, start_response)

    def _metrics_response(self, request: Request) -> Response:
        if request.method != "GET":
            body = rest_json.dumps({"error": f"Use GET for {METRICS_PATH}."})
            return Response(body, status=405, content_type="application/json")
        return Response(self._metrics.exposition(), content_type=server_metrics.CONTENT_TYPE)

    def _answer(self, request: Request, route: "_Route") -> bytes:
        if route.api:
            if route.api != "predict":
                raise errors.unimplemented(
                    f"{route.api} is not served; saliency models answer :predict."
                )
            return self._predict(request, route)
        if route.metadata:
            servable = self._manager.resolve(route.name, route.version, route.label)
            return rest_json.dumps(api_messages.metadata_json(servable))
        version = route.version
        if route.label:
            version = self._manager.resolve(route.name, None, route.label).version
        status = api_messages.model_status(self._manager, route.name, version)
        return rest_json.dumps(api_messages.to_json_dict(status))

    def _predict(self, request: Request, route: "_Route") -> bytes:
        servable = self._manager.resolve(route.name, route.version, route.label)
        body = rest_json.loads(self._read_body(request))
        signature_name = body.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise errors.invalid_argument("'signature_name' must be a string.")
        specs = servable.input_specs(signature_name)
        inputs, row_format = rest_json.parse_predict_request(body, specs)
        outputs = servable.predict(signature_name, inputs)
        return rest_json.predict_response(outputs, row_format)

    def _read_body(self, request: Request) -> bytes:
        limit = self._max_request_bytes
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            raise errors.too_large(
                f"The request body is larger than the server's limit of {limit} bytes "
                "(--max_request_bytes)."
            ) from None
        if "gzip" not in request.headers.get("Content-Encoding", "").lower():
            return body
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            # Never inflate more than the limit allows: a small gzip body can expand a
            # thousandfold.
            body = inflater.decompress(body, limit + 1)
        except zlib.error as error:
            raise errors.invalid_argument(f"The gzip request body is corrupt: {error}.") from None
        if len(body) > limit:
            raise errors.too_large(
                f"The decompressed request body is larger than the server's limit of {limit} "
                "bytes (--max_request_bytes)."
            )
        return body


@dataclasses.dataclass(frozen=True)
class _Route:
    """What a request's path names (TF Serving's ``ParseModelInfo``).

    Attributes:
        api: ``predict``, ``classify`` or ``regress`` for a POST; empty for a GET.
        name: the model name, percent-decoded (empty until the path is parsed).
        version: the version asked for, if any.
        label: the version label asked for, if any, percent-decoded.
        metadata: whether a GET asks for the metadata rather than the status.
    """

    api: str = ""
    name: str = ""
    version: int | None = None
    label: str | None = None
    metadata: bool = False


def _route_of(request: Request) -> _Route:
    """The route of a request; raises INVALID_ARGUMENT ("Malformed request") for none."""
    # Werkzeug's request.path is percent-decoded, which would turn "..%2Fx" into two
    # path segments; its server keeps the request line's target in RAW_URI.
    raw = request.environ.get("RAW_URI")
    path = urlsplit(raw).path if raw else request.path
    if request.method == "POST":
        match = _PREDICT_URL.fullmatch(path)
    else:
        match = _MODEL_URL.fullmatch(path) if request.method == "GET" else None
    if match is None:
        raise errors.invalid_argument(f"Malformed request: {request.method} {path}")
    groups = match.groupdict()
    return _Route(
        api=(groups.get("method") or "").lower(),
        name=unquote(match["name"]),
        version=int(match["version"]) if match["version"] else None,
        label=unquote(match["label"]) if match["label"] else None,
        metadata=bool(groups.get("metadata")),
    )


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without a log line per request (TF Serving logs none)."""

    def log_request(self, *args, **kwargs) -> None:
        pass


class BoundedWSGIServer(BaseWSGIServer):
    """Werkzeug's WSGI server with a fixed pool of request threads.

    Args:
        host: the address to bind.
        port: the port; 0 picks a free one (see ``port``).
        app: the WSGI application.
        num_threads: how many requests run at once.
        timeout_seconds: the socket timeout of a connection (a stalled client).
    """

    multithread = True  # Tells the WSGI environ; requests do run concurrently.

    def __init__(self, host, port, app, num_threads: int, timeout_seconds: float):
        handler = type("_Handler", (_QuietHandler,), {"timeout": timeout_seconds})
        super().__init__(host, port, app, handler=handler)
        self._pool = ThreadPoolExecutor(num_threads, thread_name_prefix="rest")
        self._slots = threading.BoundedSemaphore(num_threads)

    def process_request(self, request, client_address) -> None:
        """Hands a connection to a pool thread, waiting for one to be free."""
        # Blocks the accept loop while every thread is busy: connections queue in the
        # kernel's backlog rather than in memory.
        self._slots.acquire()
        self._pool.submit(self._handle, request, client_address)

    def _handle(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def server_close(self) -> None:
        """Waits for the requests under way, then closes the socket."""
        self._pool.shutdown(wait=True)
        super().server_close()
