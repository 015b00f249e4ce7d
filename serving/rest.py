"""TF Serving's REST API as a WSGI application, and the bounded server that runs it.

Routes (case-insensitive, as ``http_rest_api_util.cc``):
- ``GET  /v1/models/NAME[/versions/N|/labels/L]``: the model's version status;
- ``GET  /v1/models/NAME[/versions/N|/labels/L]/metadata``: its signatures;
- ``POST /v1/models/NAME[/versions/N|/labels/L]:predict``: ``rest_json`` has the body.

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

import logging
import re
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote, urlsplit

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from serving import api_messages, errors, rest_json
from serving.model_manager import ModelManager

_LOG = logging.getLogger(__name__)
_MODEL = r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
_PREDICT_URL = re.compile(_MODEL + r":(?P<method>predict|classify|regress)", re.IGNORECASE)
_MODEL_URL = re.compile(_MODEL + r"(?P<metadata>/metadata)?", re.IGNORECASE)


class RestApi:
    """The WSGI application.

    Args:
        manager: the models.
        max_request_bytes: the largest request body accepted, after decompression.
    """

    def __init__(self, manager: ModelManager, max_request_bytes: int):
        self._manager = manager
        self._max_request_bytes = max_request_bytes

    def __call__(self, environ, start_response):
        """Answers one WSGI request."""
        request = Request(environ)
        request.max_content_length = self._max_request_bytes
        try:
            status, body = 200, self._dispatch(request)
        except errors.ServingError as error:
            status, body = error.http_status, rest_json.dumps({"error": error.message})
        except Exception as error:  # The last resort: say what broke, keep serving.
            _LOG.exception("REST request %s %s failed", request.method, request.path)
            status, body = 500, rest_json.dumps({"error": f"Internal error: {error}"})
        response = Response(body, status=status, content_type="application/json")
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> bytes:
        path = _path_as_sent(request)
        match = _PREDICT_URL.fullmatch(path) if request.method == "POST" else None
        if match:
            if match["method"].lower() != "predict":
                raise errors.unimplemented(
                    f"{match['method']} is not served; saliency models answer :predict."
                )
            return self._predict(request, *_model_of(match))
        match = _MODEL_URL.fullmatch(path) if request.method == "GET" else None
        if match is None:
            raise errors.invalid_argument(f"Malformed request: {request.method} {path}")
        name, version, label = _model_of(match)
        if match["metadata"]:
            servable = self._manager.resolve(name, version, label)
            return rest_json.dumps(api_messages.metadata_json(servable))
        if label:
            version = self._manager.resolve(name, None, label).version
        status = api_messages.model_status(self._manager, name, version)
        return rest_json.dumps(api_messages.to_json_dict(status))

    def _predict(self, request: Request, name: str, version: int | None, label) -> bytes:
        servable = self._manager.resolve(name, version, label)
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


def _path_as_sent(request: Request) -> str:
    # Werkzeug's request.path is percent-decoded, which would turn "..%2Fx" into two
    # path segments; its server keeps the request line's target in RAW_URI.
    raw = request.environ.get("RAW_URI")
    return urlsplit(raw).path if raw else request.path


def _model_of(match: re.Match) -> tuple[str, int | None, str | None]:
    """The model name, version and label a route captured, percent-decoded."""
    version = int(match["version"]) if match["version"] else None
    label = unquote(match["label"]) if match["label"] else None
    return unquote(match["name"]), version, label


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
