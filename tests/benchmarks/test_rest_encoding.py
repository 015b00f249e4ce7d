"""Tests of benchmarks/rest_encoding.py: its writers give back the map's exact values."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

_SCRIPTS = Path(__file__).resolve().parents[2] / "benchmarks"
_spec = importlib.util.spec_from_file_location("rest_encoding", _SCRIPTS / "rest_encoding.py")
rest_encoding = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rest_encoding)


def test_shortest_decimal_gives_back_every_float32():
    rng = np.random.default_rng(3)
    values = (rng.random(4000) * 10.0 ** rng.integers(-30, 30, 4000)).astype(np.float32)
    special = np.array([0.0, -0.0, 0.1, -2.5, 1e-40, 3.4e38, 1.0, 123456.79], np.float32)
    values = np.concatenate([values, special, -values[:100]])
    decimals = rest_encoding.shortest_decimal(values)
    np.testing.assert_array_equal(decimals.astype(np.float32), values)
    text = orjson.dumps(decimals, option=orjson.OPT_SERIALIZE_NUMPY)
    np.testing.assert_array_equal(np.asarray(json.loads(text), np.float32), values)
    assert rest_encoding.shortest_decimal(np.float32([0.1]))[0] == 0.1  # not 0.100000001...


def test_the_map_is_a_density():
    density = rest_encoding.saliency_like_map()
    assert density.shape == (1, *rest_encoding.MAP_SIZE) and density.dtype == np.float32
    assert abs(float(density.sum()) - 1.0) < 1e-4 and density.max() > 100 * density.mean()


def test_two_processes_write_the_same_text(monkeypatch):
    # The spawned worker imports the script by name, as it would run from benchmarks/.
    monkeypatch.syspath_prepend(str(_SCRIPTS))
    monkeypatch.setitem(sys.modules, "rest_encoding", rest_encoding)
    values = np.random.default_rng(0).random((1, 7, 5), dtype=np.float32)
    writer = rest_encoding.TwoProcessWriter(values.size)
    try:
        text = writer(values)
    finally:
        writer.close()
    assert text == orjson.dumps({"predictions": values}, option=orjson.OPT_SERIALIZE_NUMPY)


@pytest.mark.parametrize("key", ["outputs", "predictions"])
def test_read_back_takes_either_answer(key):
    values = np.float32([[1.5, 2.25]])
    assert np.array_equal(rest_encoding.read_back(json.dumps({key: values.tolist()})), values)
