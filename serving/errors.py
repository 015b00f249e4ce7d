"""The errors of the local model server, with TF Serving's codes and messages.

Every failure a request can meet is raised as one ``ServingError`` carrying a gRPC
status code; the gRPC service passes that code through and the REST API maps it to an
HTTP status the way TF Serving's ``http_server.cc`` does (400 for bad input, 404 for an
unknown model or version, 503 while a model loads, ...), with the body
``{"error": "<message>"}``.

TensorFlow's own error codes are gRPC's (``tf.errors.INVALID_ARGUMENT == 3`` ==
``grpc.StatusCode.INVALID_ARGUMENT``), so an error raised inside a signature — an
undecodable image, an in-graph size assertion — keeps its code. Its message is cut down
to what the op said: the graph node names and "Graph execution error" framing are
noise to a client.
"""

import re

import grpc
import tensorflow as tf

_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}

# http_server.cc::ToHTTPStatusCode.
_HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

# Lines of a TF runtime error that locate the failing node rather than say what failed.
_NODE_NOISE = re.compile(
    r"^(Graph execution error:|Detected at node .*|<stack traces unavailable>|\s*File \".*|"
    r"\s*\[\[\{\{node .*)$"
)
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\]\s*$")
_NODE_SUFFIX = re.compile(r"\s*\[\[\{\{node [^}]*\}\}\]\]")


class ServingError(Exception):
    """A request failed; ``code`` says how, ``message`` says what to do about it.

    Args:
        code: the gRPC status code (the REST API maps it to an HTTP status).
        message: a sentence for the client.
        http_status: the HTTP status when it is not the code's usual one (413).
    """

    def __init__(self, code: grpc.StatusCode, message: str, http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self._http_status = http_status

    @property
    def http_status(self) -> int:
        """The HTTP status TF Serving's REST API answers this error with."""
        return self._http_status or _HTTP_STATUS[self.code]

    @classmethod
    def from_tf_error(cls, error: tf.errors.OpError) -> "ServingError":
        """The error of a failed signature call, with TF's code and the op's message."""
        code = _CODES_BY_NUMBER.get(error.error_code, grpc.StatusCode.INTERNAL)
        return cls(code, clean_tf_message(error.message))


def clean_tf_message(message: str) -> str:
    """What a TF runtime error says, without the node names and stack framing.

    Args:
        message: ``tf.errors.OpError.message``.

    Returns:
        The op's own message, e.g. ``"jpeg::Uncompress failed. Invalid JPEG data or crop
        window."``; the original if nothing is left after cleaning.
    """
    kept = []
    for line in message.splitlines():
        if _NODE_NOISE.match(line):
            continue
        line = _NODE_SUFFIX.sub("", _OP_SUFFIX.sub("", line)).strip()
        if line:
            kept.append(line)
    return " ".join(kept) or message.strip()


def invalid_argument(message: str) -> ServingError:
    """A request the client must change (HTTP 400)."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    """An unknown model, version, label or path (HTTP 404)."""
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def unavailable(message: str) -> ServingError:
    """A model that is known but still loading (HTTP 503)."""
    return ServingError(grpc.StatusCode.UNAVAILABLE, message)


def too_large(message: str) -> ServingError:
    """A request over the server's size limit (HTTP 413)."""
    return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, http_status=413)


def unimplemented(message: str) -> ServingError:
    """A TF Serving method this server does not offer (HTTP 501)."""
    return ServingError(grpc.StatusCode.UNIMPLEMENTED, message)
