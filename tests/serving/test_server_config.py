import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving import constants, server_config
from serving.export import export_model
from tests.serving import tiny_models
from tests.serving.serving_protos import BatchingParameters, MonitoringConfig


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    model = tiny_models.deep_model()
    for name in ("saliency", "saliency_small"):
        export_model(model, folder, name, input_size=tiny_models.INPUT_SIZE, output="log_density")
    (folder / "not_a_model").mkdir()
    return folder


def test_written_configs_parse_as_tf_serving_messages(base):
    written = server_config.write_server_configs(base)
    assert {p.name for p in written.values()} == {
        constants.MODEL_CONFIG_FILE,
        constants.BATCHING_PARAMETERS_FILE,
        constants.MONITORING_CONFIG_FILE,
    }
    models = text_format.Parse(
        written["models"].read_text(), model_server_config_pb2.ModelServerConfig()
    )
    entries = [(c.name, c.base_path, c.model_platform) for c in models.model_config_list.config]
    assert entries == [
        ("saliency", "/models/saliency", "tensorflow"),
        ("saliency_small", "/models/saliency_small", "tensorflow"),
    ]
    batching = text_format.Parse(written["batching"].read_text(), BatchingParameters())
    assert batching.max_batch_size.value == 8
    assert list(batching.allowed_batch_sizes) == [1, 2, 4, 8]
    assert batching.batch_timeout_micros.value == 2000
    assert batching.num_batch_threads.value == 4 and batching.max_enqueued_batches.value == 16
    assert not batching.pad_variable_length_inputs
    monitoring = text_format.Parse(written["monitoring"].read_text(), MonitoringConfig())
    assert monitoring.prometheus_config.enable
    assert monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_the_test_protos_refuse_what_tf_serving_would():
    with pytest.raises(text_format.ParseError):
        text_format.Parse("max_batch_size: 8", BatchingParameters())  # a wrapper, not an int
    with pytest.raises(text_format.ParseError):
        text_format.Parse("prometheus { enable: true }", MonitoringConfig())


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"max_batch_size": 8, "allowed_batch_sizes": (1, 4, 2, 8)}, "must increase"),
        ({"max_batch_size": 16, "allowed_batch_sizes": (1, 8)}, "end with max_batch_size"),
        ({"num_batch_threads": 0}, "num_batch_threads must be >= 1"),
        ({"batch_timeout_micros": -1}, "batch_timeout_micros must be >= 0"),
    ],
)
def test_bad_batching_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        server_config.BatchingSettings(**settings)


def test_cli_writes_local_paths_and_batch_sizes(base, tmp_path, capsys):
    server_config.main([str(base), "--serving-root", str(base), "--max-batch-size", "6"])
    printed = capsys.readouterr().out
    assert constants.MODEL_CONFIG_FILE in printed
    models = text_format.Parse(
        (base / constants.MODEL_CONFIG_FILE).read_text(),
        model_server_config_pb2.ModelServerConfig(),
    )
    assert models.model_config_list.config[0].base_path == f"{base}/saliency"
    batching = text_format.Parse(
        (base / constants.BATCHING_PARAMETERS_FILE).read_text(), BatchingParameters()
    )
    assert list(batching.allowed_batch_sizes) == [1, 2, 4, 6]
    with pytest.raises(SystemExit):
        server_config.main([str(tmp_path)])  # no exported model there
    assert "holds no exported model" in capsys.readouterr().err
