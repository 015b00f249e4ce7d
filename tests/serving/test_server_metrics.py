"""Prometheus metrics of the local server: TF Serving's names, labels and buckets."""

import re
import urllib.request

import grpc
import pytest

from serving import server_metrics
from serving.server_metrics import LATENCY_BOUNDS_US, REQUEST_COUNT, REQUEST_LATENCY, ServerMetrics
from tests.serving.conftest import MODEL, b64, http, jpeg
from tests.serving.test_server_grpc import predict_request

OK = grpc.StatusCode.OK
_SAMPLE = re.compile(r"^(?P<name>[^{\s]+)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")


def parse(text: str) -> dict:
    """{(name, frozenset of label pairs): value} of an exposition; checks its syntax."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.fullmatch(r"# (HELP|TYPE) \S+ .+", line), line
            continue
        match = _SAMPLE.fullmatch(line)
        assert match, line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match["labels"] or ""))
        samples[match["name"], labels] = float(match["value"])
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_counts_and_histogram_buckets():
    metrics = ServerMetrics(["saliency"])
    for seconds in (15e-6, 18e-6, 0.5, 0.5):  # 15 and 18 µs share the bucket le=18
        metrics.record("saliency", "predict", "REST", OK, seconds)
    metrics.record("saliency", "predict", "REST", grpc.StatusCode.INVALID_ARGUMENT, 2.0)
    samples = parse(metrics.exposition().decode())
    assert value(samples, REQUEST_COUNT, model_name="saliency", status="OK") == 4
    assert value(samples, REQUEST_COUNT, model_name="saliency", status="INVALID_ARGUMENT") == 1
    labels = {"model_name": "saliency", "API": "predict", "entrypoint": "REST"}
    bucket = REQUEST_LATENCY + "_bucket"
    assert value(samples, bucket, **labels, le="10") == 0
    assert value(samples, bucket, **labels, le="18") == 2
    # 0.5 s = 500000 µs lies between the bounds 10 * 1.8**18 = 393464 and 10 * 1.8**19.
    assert value(samples, bucket, **labels, le=f"{10 * 1.8**18:.6g}") == 2
    assert value(samples, bucket, **labels, le=f"{10 * 1.8**19:.6g}") == 4
    assert value(samples, bucket, **labels, le="+Inf") == 4  # failures are counted, not timed
    assert value(samples, REQUEST_LATENCY + "_count", **labels) == 4
    assert value(samples, REQUEST_LATENCY + "_sum", **labels) == pytest.approx(1_000_033)
    bounds = [b for (name, pairs) in samples if name == bucket for k, b in pairs if k == "le"]
    assert len(bounds) == len(LATENCY_BOUNDS_US) + 1 == 34


def test_unknown_model_names_share_one_label():
    metrics = ServerMetrics(["saliency"])
    for name in ("nope", "other", 'we"ird\n'):
        metrics.record(name, "Predict", "GRPC", grpc.StatusCode.NOT_FOUND, 0.001)
    samples = parse(metrics.exposition().decode())
    assert value(samples, REQUEST_COUNT, model_name="", status="NOT_FOUND") == 3
    assert [pairs for name, pairs in samples if name == REQUEST_COUNT] == [
        frozenset({("model_name", ""), ("status", "NOT_FOUND")})
    ]


def test_label_values_are_escaped():
    metrics = ServerMetrics(['a"b\\c\nd'])
    metrics.record('a"b\\c\nd', "predict", "REST", OK, 0.001)
    text = metrics.exposition().decode()
    assert 'model_name="a\\"b\\\\c\\nd"' in text
    parse(text)


def scrape(server) -> dict:
    url = f"http://127.0.0.1:{server.rest_port}/monitoring/prometheus/metrics"
    with urllib.request.urlopen(url, timeout=60) as response:
        assert response.headers["Content-Type"] == server_metrics.CONTENT_TYPE
        return parse(response.read().decode())


def test_the_server_counts_and_times_both_apis(server, rest_url, prediction_stub):
    before = scrape(server)
    assert http(rest_url + ":predict", {"instances": [b64(jpeg(8, 8))]})[0] == 200
    assert http(rest_url + ":predict", {"instances": [3]})[0] == 400
    assert http(rest_url)[0] == 200  # a status request: API ""
    prediction_stub.Predict(predict_request([jpeg(8, 8)]), timeout=60)
    with pytest.raises(grpc.RpcError):
        prediction_stub.Predict(predict_request([jpeg(8, 8)], name="unknown"), timeout=60)
    after = scrape(server)

    def added(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert added(REQUEST_COUNT, model_name=MODEL, status="OK") == 3
    assert added(REQUEST_COUNT, model_name=MODEL, status="INVALID_ARGUMENT") == 1
    assert added(REQUEST_COUNT, model_name="", status="NOT_FOUND") == 1
    count = REQUEST_LATENCY + "_count"
    assert added(count, model_name=MODEL, API="predict", entrypoint="REST") == 1
    assert added(count, model_name=MODEL, API="", entrypoint="REST") == 1
    assert added(count, model_name=MODEL, API="Predict", entrypoint="GRPC") == 1
    assert added(REQUEST_LATENCY + "_sum", model_name=MODEL, API="Predict", entrypoint="GRPC") > 0


def test_metrics_path_takes_get_only(server):
    url = f"http://127.0.0.1:{server.rest_port}/monitoring/prometheus/metrics"
    status, body = http(url, b"{}")
    assert status == 405 and "GET" in body["error"]
