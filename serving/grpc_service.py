"""TF Serving's gRPC API on the servicers generated in tensorflow-serving-api.

- ``tensorflow.serving.PredictionService``: ``Predict`` (``model_spec`` version or
  label, ``signature_name``, ``output_filter``) and ``GetModelMetadata``
  (``signature_def``); ``Classify``, ``Regress`` and ``MultiInference`` keep the
  generated UNIMPLEMENTED answer — saliency models have no such signatures.
- ``tensorflow.serving.ModelService``: ``GetModelStatus``.
- ``grpc.health.v1.Health`` (grpcio-health-checking): the server and both services
  report SERVING once every configured model has a version up, NOT_SERVING before and
  during shutdown — TF Serving's ``--enable_grpc_healthcheck_service``.

Messages larger than ``max_request_bytes`` are refused by gRPC itself
(RESOURCE_EXHAUSTED) before they are parsed; responses are not limited. Bytes that do
not parse as the method's request message get INVALID_ARGUMENT (``_ParsingInterceptor``).
"""

import time
from concurrent import futures
from typing import NoReturn

import grpc
import tensorflow as tf
from google.protobuf import message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import api_messages, errors
from serving.constants import DEFAULT_SIGNATURE
from serving.model_manager import ModelManager
from serving.server_metrics import ServerMetrics

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"


def _resolve(manager: ModelManager, model_spec):
    version = model_spec.version.value if model_spec.HasField("version") else None
    label = model_spec.version_label if model_spec.HasField("version_label") else None
    return manager.resolve(model_spec.name, version, label)


def _abort(context: grpc.ServicerContext, error: errors.ServingError) -> NoReturn:
    # ServicerContext.abort raises: the RPC ends here with the error's code.
    context.abort(error.code, error.message)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """``Predict`` and ``GetModelMetadata`` over the managed models.

    Args:
        manager: the models.
        metrics: where ``Predict`` calls are counted and timed (None: nowhere).
    """

    def __init__(self, manager: ModelManager, metrics: ServerMetrics | None = None):
        self._manager = manager
        self._metrics = metrics

    def Predict(self, request, context):  # noqa: N802 (the generated method name)
        """Runs the requested signature on the request's tensors."""
        start = time.perf_counter()
        code = grpc.StatusCode.INTERNAL  # Unless the call ends otherwise.
        try:
            response = self._predict(request)
            code = grpc.StatusCode.OK
            return response
        except errors.ServingError as error:
            code = error.code
            _abort(context, error)
        finally:
            if self._metrics is not None:
                elapsed = time.perf_counter() - start
                self._metrics.record(request.model_spec.name, "Predict", "GRPC", code, elapsed)

    def _predict(self, request):
        servable = _resolve(self._manager, request.model_spec)
        inputs = {key: _to_array(key, proto) for key, proto in request.inputs.items()}
        signature_name = request.model_spec.signature_name
        outputs = servable.predict(signature_name, inputs, list(request.output_filter))
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(
            api_messages.model_spec(servable, signature_name or DEFAULT_SIGNATURE)
        )
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        """The signatures of the requested model version."""
        fields = list(request.metadata_field)
        if not fields:
            _abort(context, errors.invalid_argument("metadata_field must name 'signature_def'."))
        unsupported = [f for f in fields if f != api_messages.SIGNATURE_DEF_FIELD]
        if unsupported:
            _abort(
                context,
                errors.invalid_argument(
                    f"Metadata field {unsupported[0]} is not supported; ask for "
                    f"'{api_messages.SIGNATURE_DEF_FIELD}'."
                ),
            )
        try:
            return api_messages.model_metadata(_resolve(self._manager, request.model_spec))
        except errors.ServingError as error:
            _abort(context, error)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """``GetModelStatus`` over the managed models."""

    def __init__(self, manager: ModelManager):
        self._manager = manager

    def GetModelStatus(self, request, context):  # noqa: N802
        """The states of the requested model's versions."""
        spec = request.model_spec
        version = spec.version.value if spec.HasField("version") else None
        try:
            if spec.HasField("version_label"):
                version = _resolve(self._manager, spec).version
            return api_messages.model_status(self._manager, spec.name, version)
        except errors.ServingError as error:
            _abort(context, error)


class _ParsingInterceptor(grpc.ServerInterceptor):
    """Parses unary requests in the handler, so bad bytes get INVALID_ARGUMENT.

    When a generated deserializer fails, gRPC answers INTERNAL and logs a traceback
    per request, as though the server were broken; but the client sent bytes that are
    not the method's message, which is a bad argument. Each unary-unary handler is
    rebuilt to take the raw bytes and parse them itself.
    """

    def intercept_service(self, continuation, handler_call_details):
        """The method's handler, parsing its request itself."""
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        parse, answer = handler.request_deserializer, handler.unary_unary

        def parse_then_answer(raw: bytes, context: grpc.ServicerContext):
            try:
                request = parse(raw)
            except message.DecodeError as error:
                _abort(context, errors.invalid_argument(f"{error}; send the method's message."))
            return answer(request, context)

        return grpc.unary_unary_rpc_method_handler(
            parse_then_answer, response_serializer=handler.response_serializer
        )


def _to_array(key: str, proto):
    try:
        return tf.make_ndarray(proto)
    except (ValueError, TypeError, KeyError) as error:
        raise errors.invalid_argument(
            f"Input {key!r} is not a valid TensorProto: {error}"
        ) from None


class HealthReporter:
    """Keeps the gRPC health service in step with the models."""

    def __init__(self):
        self.servicer = health.HealthServicer()
        self.update(serving=False)

    def update(self, serving: bool) -> None:
        """Reports every service SERVING or NOT_SERVING."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", PREDICTION_SERVICE, MODEL_SERVICE):
            self.servicer.set(service, status)

    def shutdown(self) -> None:
        """Answers NOT_SERVING from now on (clients drain before the port closes)."""
        self.servicer.enter_graceful_shutdown()


def make_grpc_server(
    manager: ModelManager,
    health_reporter: HealthReporter,
    address: str,
    max_workers: int,
    max_request_bytes: int,
    metrics: ServerMetrics | None = None,
) -> tuple[grpc.Server, int]:
    """A gRPC server with the three services bound to ``address``; and its port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        interceptors=[_ParsingInterceptor()],
        # Requests beyond the workers wait, up to a bound; past it, RESOURCE_EXHAUSTED.
        maximum_concurrent_rpcs=max_workers * 4,
        options=[
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.max_send_message_length", -1),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(manager, metrics), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(manager), server)
    health_pb2_grpc.add_HealthServicer_to_server(health_reporter.servicer, server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"Could not bind the gRPC port at {address} (is it in use?).")
    return server, port
