"""TF Serving's ``BatchingParameters`` and ``MonitoringConfig`` messages, for tests.

The ``tensorflow-serving-api`` wheel ships neither ``session_bundle_config_pb2`` nor
``monitoring_config_pb2``, so the two messages are declared here field for field from
``tensorflow_serving/servables/tensorflow/session_bundle_config.proto`` and
``tensorflow_serving/config/monitoring_config.proto`` (same package, names, numbers and
types), in a private descriptor pool. Text-format parsing then fails on any field
name, type or nesting TF Serving would refuse.
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

_FIELD = descriptor_pb2.FieldDescriptorProto


def _message(file, name, fields):
    message = file.message_type.add(name=name)
    for number, (field_name, kind, type_name, repeated) in enumerate(fields, start=1):
        field = message.field.add(name=field_name, number=number, type=kind)
        field.label = _FIELD.LABEL_REPEATED if repeated else _FIELD.LABEL_OPTIONAL
        if type_name:
            field.type_name = type_name


def _build():
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(
        name="tfsal_tests/tf_serving_configs.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    int64 = (_FIELD.TYPE_MESSAGE, ".google.protobuf.Int64Value")
    _message(
        file,
        "BatchingParameters",
        [
            ("max_batch_size", *int64, False),
            ("batch_timeout_micros", *int64, False),
            ("max_enqueued_batches", *int64, False),
            ("num_batch_threads", *int64, False),
            ("thread_pool_name", _FIELD.TYPE_MESSAGE, ".google.protobuf.StringValue", False),
            ("allowed_batch_sizes", _FIELD.TYPE_INT64, None, True),
            ("pad_variable_length_inputs", _FIELD.TYPE_BOOL, None, False),
        ],
    )
    _message(
        file,
        "PrometheusConfig",
        [("enable", _FIELD.TYPE_BOOL, None, False), ("path", _FIELD.TYPE_STRING, None, False)],
    )
    _message(
        file,
        "MonitoringConfig",
        [("prometheus_config", _FIELD.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig", False)],
    )
    pool.Add(file)

    def message_class(name):
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))

    return (
        message_class("tensorflow.serving.BatchingParameters"),
        message_class("tensorflow.serving.MonitoringConfig"),
    )


BatchingParameters, MonitoringConfig = _build()
