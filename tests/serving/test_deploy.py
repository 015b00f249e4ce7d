"""The production files (no Docker engine here): read, parsed and checked for agreement
with the exporter's files, and the readiness script run against the local server."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tensorflow as tf
import yaml

from serving import constants, model_config, server_config
from serving.export import export_model
from serving.server import ModelServer
from tests.serving import tiny_models

SERVING = Path(__file__).resolve().parents[2] / "serving"
DOCKERFILE = SERVING / "Dockerfile"
KUBERNETES = SERVING / "deploy" / "kubernetes.yaml"
READY_SCRIPT = SERVING / "deploy" / "model_ready.sh"


def dockerfile_instructions():
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())  # join continued lines
    lines = [line.strip() for line in text.splitlines()]
    return [line.split(None, 1) for line in lines if line and not line.startswith("#")]


def entrypoint_flags():
    (arguments,) = [rest for word, rest in dockerfile_instructions() if word == "ENTRYPOINT"]
    command = json.loads(arguments)
    assert command[0].endswith("tensorflow_model_server")
    return dict(flag[2:].split("=", 1) for flag in command[1:])


def test_image_is_the_tf_serving_gpu_release_of_the_exporting_tensorflow():
    instructions = dockerfile_instructions()
    (version,) = [rest.split("=", 1)[1] for word, rest in instructions if word == "ARG"]
    assert version.split(".")[:2] == tf.__version__.split(".")[:2]
    (base,) = [rest for word, rest in instructions if word == "FROM"]
    assert base == "tensorflow/serving:${TF_SERVING_VERSION}-gpu"
    for word, rest in instructions:
        if word == "COPY":
            source = rest.split()[0]
            assert (SERVING / source).is_file(), source


def test_server_flags_turn_on_batching_monitoring_and_warmup_with_the_exported_files():
    flags = entrypoint_flags()
    assert flags["enable_batching"] == "true" and flags["enable_model_warmup"] == "true"
    assert flags["model_config_file"] == f"/models/{constants.MODEL_CONFIG_FILE}"
    assert flags["batching_parameters_file"] == f"/models/{constants.BATCHING_PARAMETERS_FILE}"
    assert flags["monitoring_config_file"] == f"/models/{constants.MONITORING_CONFIG_FILE}"
    assert flags["port"] == str(constants.GRPC_PORT)
    assert flags["rest_api_port"] == str(constants.REST_PORT)
    assert flags["enable_grpc_healthcheck_service"] == "true"  # the liveness probe's


def test_kubernetes_example_is_consistent():
    documents = {doc["kind"]: doc for doc in yaml.safe_load_all(KUBERNETES.read_text())}
    deployment, service = documents["Deployment"], documents["Service"]
    assert deployment["spec"]["replicas"] > 1
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"] == pod["metadata"]["labels"]
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
    (container,) = pod["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"grpc": constants.GRPC_PORT, "rest": constants.REST_PORT}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= set(ports)
    ready = container["readinessProbe"]["exec"]["command"]
    copied = [rest.split()[1] for word, rest in dockerfile_instructions() if word == "COPY"]
    assert ready == [copied[0]] and Path(copied[0]).name == READY_SCRIPT.name
    assert container["livenessProbe"]["grpc"]["port"] == constants.GRPC_PORT
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    mount = container["volumeMounts"][0]
    assert mount["mountPath"] == "/models" and mount["readOnly"] is True
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == constants.PROMETHEUS_PATH


@pytest.mark.skipif(not shutil.which("curl"), reason="the readiness script needs curl")
def test_readiness_script_follows_the_model_status(tmp_path):
    base = tmp_path / "models"
    export_model(
        tiny_models.deep_model(), base, "saliency", input_size=(32, 32), output="log_density"
    )
    written = server_config.write_server_configs(base, serving_root=str(base))
    sources = model_config.read_model_config_file(written["models"])
    server = ModelServer(sources, grpc_port=0, rest_port=0, poll_wait_seconds=0.2, num_threads=2)

    def ready(config):
        address = f"127.0.0.1:{server.rest_port}"
        return subprocess.run(["sh", str(READY_SCRIPT), str(config), address], capture_output=True)

    server.start()
    try:
        assert server.wait_until_ready(120)
        assert ready(written["models"]).returncode == 0
        other = tmp_path / "other.config"
        other.write_text(server_config.model_server_config({"absent": str(base / "absent")}))
        refused = ready(other)
        assert refused.returncode == 1 and b"absent is not AVAILABLE" in refused.stderr
    finally:
        server.stop()
    assert ready(written["models"]).returncode != 0  # nothing answers any more
