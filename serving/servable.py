"""One loaded version of a SavedModel, called through its signatures.

The signatures are run as TF Serving runs them: inputs are checked against the
signature's names, dtypes and shapes before the graph runs (so a bad request gets a
message about the request, not about a node), outputs come back as numpy arrays keyed
by the signature's output names, and an error raised inside the graph (an image that
does not decode, an in-graph size limit) keeps TensorFlow's status code.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from serving import errors
from serving.constants import DEFAULT_SIGNATURE, MAX_WARMUP_RECORDS, METADATA_DIR, WARMUP_FILE

# tf.saved_model.save adds this pseudo-signature; TF Serving hides it from clients.
_INIT_OP_SIGNATURE = "__saved_model_init_op"


@dataclasses.dataclass(frozen=True)
class Servable:
    """A loaded SavedModel version.

    Attributes:
        name: the model name it is served under.
        version: its version number.
        path: its folder.
        signature_defs: the SignatureDefs of ``saved_model.pb`` (for metadata).
        functions: the callable signatures, by name.
    """

    name: str
    version: int
    path: Path
    signature_defs: Mapping[str, meta_graph_pb2.SignatureDef]
    functions: Mapping[str, tf.types.experimental.ConcreteFunction]
    # Holds the loaded object: the concrete functions need its variables alive.
    module: object = dataclasses.field(repr=False, compare=False)

    @classmethod
    def load(cls, name: str, version: int, path: Path) -> "Servable":
        """Loads the SavedModel at ``path``; raises what ``tf.saved_model.load`` raises."""
        module = tf.saved_model.load(str(path))
        saved_model = saved_model_pb2.SavedModel()
        saved_model.ParseFromString((path / "saved_model.pb").read_bytes())
        signature_defs = {
            key: value
            for key, value in saved_model.meta_graphs[0].signature_def.items()
            if key != _INIT_OP_SIGNATURE
        }
        functions = {key: module.signatures[key] for key in signature_defs}
        return cls(name, version, path, signature_defs, functions, module)

    def warm_up(self) -> int:
        """Replays the version's warmup records, as TF Serving does before AVAILABLE.

        The records (``assets.extra/tf_serving_warmup_requests``, a TFRecord of
        ``PredictionLog``) make the first real request skip lazy initialisation.

        Returns:
            How many requests were replayed (0 without a warmup file).

        Raises:
            ValueError: the file has more than 1000 records or a record that is not
                a predict request this version answers (TF Serving fails the load).
        """
        from tensorflow_serving.apis import prediction_log_pb2

        path = self.path / METADATA_DIR / WARMUP_FILE
        if not path.is_file():
            return 0
        replayed = 0
        for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            if replayed == MAX_WARMUP_RECORDS:
                raise ValueError(f"{path} has more than {MAX_WARMUP_RECORDS} warmup records.")
            log = prediction_log_pb2.PredictionLog.FromString(record)
            if log.WhichOneof("log_type") != "predict_log":
                raise ValueError(f"{path} holds a {log.WhichOneof('log_type')}; only predict.")
            request = log.predict_log.request
            inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
            try:
                self.predict(request.model_spec.signature_name, inputs, request.output_filter)
            except errors.ServingError as error:
                raise ValueError(f"Warmup request {replayed} of {path} failed: {error}") from None
            replayed += 1
        return replayed

    def signature_def_map(self):
        """The ``SignatureDefMap`` proto GetModelMetadata answers with."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, value in self.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(value)
        return signature_map

    def input_specs(self, signature_name: str) -> dict[str, tf.TensorSpec]:
        """The inputs of a signature, by name; raises INVALID_ARGUMENT if unknown."""
        return dict(self._function(signature_name).structured_input_signature[1])

    def _function(self, signature_name: str):
        function = self.functions.get(signature_name or DEFAULT_SIGNATURE)
        if function is None:
            # TF Serving's wording, followed by what would have been valid.
            raise errors.invalid_argument(
                f'Serving signature name: "{signature_name}" not found in signature def. '
                f"This model has: {sorted(self.functions)}."
            )
        return function

    def predict(
        self,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        output_filter: Sequence[str] = (),
    ) -> dict[str, np.ndarray]:
        """Runs a signature.

        Args:
            signature_name: the signature; empty means ``serving_default``.
            inputs: one array per signature input (``bytes`` objects for strings).
            output_filter: the outputs to return; empty means all.

        Returns:
            The outputs as numpy arrays, by output name.

        Raises:
            ServingError: INVALID_ARGUMENT for inputs that do not fit the signature or
                fail inside the graph; TF's own code for other graph errors.
        """
        function = self._function(signature_name)
        specs = function.structured_input_signature[1]
        _check_names("input", sorted(inputs), sorted(specs))
        tensors = {key: _to_tensor(key, inputs[key], spec) for key, spec in specs.items()}
        wanted = list(output_filter) or list(function.structured_outputs)
        unknown = sorted(set(wanted) - set(function.structured_outputs))
        if unknown:
            raise errors.invalid_argument(
                f"output_filter names {unknown}, which signature "
                f"{signature_name or DEFAULT_SIGNATURE!r} does not have; its outputs are "
                f"{sorted(function.structured_outputs)}."
            )
        try:
            outputs = function(**tensors)
        except tf.errors.OpError as error:
            raise errors.ServingError.from_tf_error(error) from None
        return {key: outputs[key].numpy() for key in wanted}


def _check_names(kind: str, sent: list[str], expected: list[str]) -> None:
    if sent == expected:
        return
    extra = sorted(set(sent) - set(expected))
    missing = sorted(set(expected) - set(sent))
    raise errors.invalid_argument(
        f"{kind} names do not match the signature: sent {sent}, expected {expected}. "
        f"Sent extra: {extra}. Missing but required: {missing}."
    )


def _to_tensor(key: str, value: np.ndarray, spec: tf.TensorSpec) -> tf.Tensor:
    value = np.asarray(value)
    if spec.dtype == tf.string:
        if value.dtype.kind not in "OSU":
            raise errors.invalid_argument(
                f"Input {key!r} must hold strings (DT_STRING); received {value.dtype} values."
            )
    elif value.dtype.kind in "OSU":
        raise errors.invalid_argument(
            f"Input {key!r} must hold {spec.dtype.name} numbers; received strings."
        )
    elif value.dtype != spec.dtype.as_numpy_dtype:
        # TF Serving does not convert tensors either; REST's JSON numbers are converted
        # to the signature's dtype before they get here.
        raise errors.invalid_argument(
            f"Input {key!r} must be {spec.dtype.name}; received {value.dtype}."
        )
    if not spec.shape.is_compatible_with(value.shape):
        expected = [-1 if dim is None else dim for dim in spec.shape.as_list()]
        raise errors.invalid_argument(
            f"Input {key!r} has shape {list(value.shape)}, but the signature expects "
            f"{expected} (-1: any size)."
        )
    return tf.constant(value, dtype=spec.dtype)
