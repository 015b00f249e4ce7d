"""The status and metadata messages both APIs answer with (tensorflow-serving-api protos).

gRPC sends the protos; REST sends their proto3 JSON the way TF Serving prints it
(``http_rest_api_util.cc``): proto field names kept, fields without presence printed
even when empty, int64 values as strings.
"""

from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2

from serving.model_manager import ModelManager
from serving.servable import Servable

SIGNATURE_DEF_FIELD = "signature_def"


def model_status(
    manager: ModelManager, name: str, version: int | None
) -> get_model_status_pb2.GetModelStatusResponse:
    """The ``GetModelStatusResponse`` of a model or one of its versions."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for number, status in manager.status(name, version):
        entry = response.model_version_status.add(version=number, state=status.state)
        entry.status.error_code = status.error_code.value[0]
        entry.status.error_message = status.error_message
    return response


def model_metadata(servable: Servable) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """The ``GetModelMetadataResponse`` (its ``signature_def`` field) of a servable."""
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.CopyFrom(model_spec(servable))
    response.metadata[SIGNATURE_DEF_FIELD].Pack(servable.signature_def_map())
    return response


def model_spec(servable: Servable, signature_name: str = "") -> model_pb2.ModelSpec:
    """The ``ModelSpec`` naming the servable that answered."""
    spec = model_pb2.ModelSpec(name=servable.name, signature_name=signature_name)
    spec.version.value = servable.version
    return spec


def to_json_dict(message) -> dict:
    """A proto as TF Serving's REST API prints it."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def metadata_json(servable: Servable) -> dict:
    """The REST metadata body: the ``Any`` of the proto unpacked to its JSON."""
    return {
        "model_spec": to_json_dict(model_spec(servable)),
        "metadata": {SIGNATURE_DEF_FIELD: to_json_dict(servable.signature_def_map())},
    }
