"""Which versions the server loads, serves and reports: config files, policies, states."""

import threading

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, predict_pb2, prediction_log_pb2

from serving import constants, model_config
from serving.errors import ServingError
from serving.model_manager import ModelManager, State
from serving.servable import Servable
from serving.server import ModelServer
from tests.serving.conftest import MODEL, b64, export_version, http, jpeg
from tests.serving.test_server_grpc import predict_request

CONFIG = """
model_config_list {
  config {
    name: "saliency"
    base_path: "models/saliency"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
}
"""


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    root = tmp_path_factory.mktemp("config")
    base = root / "models" / MODEL
    for version in (1, 2, 3):
        export_version(base, version)
    (root / "models.config").write_text(CONFIG)
    return root


def test_config_file_is_read_like_tf_serving(two_versions):
    [source] = model_config.read_model_config_file(two_versions / "models.config")
    assert source.name == MODEL and source.base_path == two_versions / "models" / MODEL
    assert source.policy == "specific" and source.versions == {1, 2}
    assert dict(source.labels) == {"stable": 1, "canary": 2}
    assert source.wanted([1, 2, 3]) == [2, 1]


def test_version_policies():
    latest = model_config.ModelSource("m", "/x", num_versions=2)
    assert latest.wanted([3, 10, 7]) == [10, 7]
    assert model_config.ModelSource("m", "/x", policy="all").wanted([1, 3]) == [3, 1]
    with pytest.raises(ValueError, match="Received: policy='newest'"):
        model_config.ModelSource("m", "/x", policy="newest")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "model_config_list { config { name: 'a' base_path: '/a' } config { name: 'a' "
            "base_path: '/b' } }",
            "more than once",
        ),
        (
            "model_config_list { config { name: 'a' model_platform: 'pytorch' } }",
            "only 'tensorflow'",
        ),
        ("model_config_list { nonsense: 1 }", "not a text-format ModelServerConfig"),
        ("model_config_list { }", "lists no model"),
    ],
)
def test_bad_config_files(tmp_path, text, words):
    path = tmp_path / "models.config"
    path.write_text(text)
    with pytest.raises(ValueError, match=words):
        model_config.read_model_config_file(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model_config.read_model_config_file(tmp_path / "missing.config")


def test_labels_and_specific_versions_over_both_apis(two_versions):
    sources = model_config.read_model_config_file(two_versions / "models.config")
    server = ModelServer(sources, grpc_port=0, rest_port=0, poll_wait_seconds=0)
    server.start()
    try:
        assert server.wait_until_ready(120)
        url = f"http://127.0.0.1:{server.rest_port}/v1/models/{MODEL}"
        _, status = http(url)
        assert [v["version"] for v in status["model_version_status"]] == ["2", "1"]
        assert http(url + "/versions/3")[0] == 404  # on disk, but not in the policy
        for label, version in (("stable", 1), ("canary", 2)):
            code, body = http(url + f"/labels/{label}/metadata")
            assert (code, body["model_spec"]["version"]) == (200, str(version))
        assert http(url + "/labels/beta:predict", {"instances": []})[0] == 400
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            from tensorflow_serving.apis import prediction_service_pb2_grpc

            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_request([jpeg(8, 8)])
            request.model_spec.version_label = "stable"
            assert stub.Predict(request, timeout=60).model_spec.version.value == 1
    finally:
        server.stop()


def test_a_loading_model_answers_unavailable(tmp_path, monkeypatch):
    export_version(tmp_path / MODEL, 1)
    release, original_load = threading.Event(), Servable.load

    def slow_load(*args):
        assert release.wait(120)
        return original_load(*args)

    monkeypatch.setattr(Servable, "load", slow_load)
    server = ModelServer(
        model_config.single_model(MODEL, tmp_path / MODEL), grpc_port=0, rest_port=0
    )
    server.start()
    try:
        url = f"http://127.0.0.1:{server.rest_port}/v1/models/{MODEL}"
        code, body = http(url + ":predict", {"instances": [b64(jpeg(8, 8))]})
        assert (code, body) == (503, {"error": f"Model '{MODEL}' is loading version 1."})
        _, status = http(url)
        assert status["model_version_status"][0]["state"] == "LOADING"
        release.set()
        assert server.wait_until_ready(120)
        assert http(url + ":predict", {"instances": [b64(jpeg(8, 8))]})[0] == 200
    finally:
        release.set()
        server.stop()


def test_a_broken_version_is_reported_and_the_old_one_keeps_serving(tmp_path):
    base = tmp_path / MODEL
    export_version(base, 1)
    (base / "2").mkdir()
    (base / "2" / "saved_model.pb").write_bytes(b"half a model")
    (base / "3.tmp").mkdir()  # an exporter's staging folder: not a version
    (base / "4").mkdir()  # no saved_model.pb yet: not a version
    manager = ModelManager(model_config.single_model(MODEL, base), max_load_retries=1)
    for _ in range(3):
        manager.poll()
    assert manager.resolve(MODEL).version == 1
    statuses = dict(manager.status(MODEL))
    assert sorted(statuses) == [1, 2]
    assert statuses[2].state == State.END and statuses[2].error_code != grpc.StatusCode.OK
    assert statuses[2].error_message
    assert statuses[1].state == State.AVAILABLE
    assert manager._failures[(MODEL, 2)] == 2  # first try + one retry, then no more
    response = get_model_status_pb2.ModelVersionStatus.State.Name(statuses[2].state)
    assert response == "END"


def test_warmup_records_are_replayed_before_serving(model_base, tmp_path):
    servable = Servable.load(MODEL, 1, model_base / "1")
    records = model_base / "1" / constants.METADATA_DIR / constants.WARMUP_FILE
    count = sum(1 for _ in tf.data.TFRecordDataset(str(records)))
    assert count >= 1 and servable.warm_up() == count
    # A warmup record the version cannot answer fails the load, as in TF Serving.
    base = tmp_path / MODEL
    folder = export_version(base, 1)
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = "no_such_signature"
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )
    with tf.io.TFRecordWriter(
        str(folder / constants.METADATA_DIR / constants.WARMUP_FILE)
    ) as writer:
        writer.write(log.SerializeToString())
    manager = ModelManager(model_config.single_model(MODEL, base), max_load_retries=0)
    manager.poll()
    [(_, status)] = manager.status(MODEL)
    assert status.state == State.END and "no_such_signature" in status.error_message
    unwarmed = ModelManager(model_config.single_model(MODEL, base), warm_up=False)
    unwarmed.poll()
    assert unwarmed.resolve(MODEL).version == 1


def test_a_model_without_versions_is_not_found_until_one_appears(tmp_path):
    base = tmp_path / MODEL
    base.mkdir()
    manager = ModelManager(model_config.single_model(MODEL, base))
    manager.poll()
    with pytest.raises(ServingError, match="Could not find any versions of model") as error:
        manager.status(MODEL)
    assert error.value.http_status == 404
    with pytest.raises(ServingError, match="No version folder") as error:
        manager.resolve(MODEL)
    assert error.value.code == grpc.StatusCode.NOT_FOUND
    export_version(base, 3)
    manager.poll()
    assert manager.resolve(MODEL).version == 3
    assert [version for version, _ in manager.status(MODEL)] == [3]
