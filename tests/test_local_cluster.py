import json

import pytest

from tests import local_cluster


def test_run_together_returns_each_stdout(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"name": name}))
    runs = [local_cluster.Run("json.tool", tmp_path / f"{name}.json") for name in ("a", "b")]
    outputs = local_cluster.run_together(runs, tmp_path / "logs", timeout=60)
    assert [json.loads(output) for output in outputs] == [{"name": "a"}, {"name": "b"}]


def test_a_failing_process_fails_the_test_with_every_stderr(tmp_path):
    (tmp_path / "good.json").write_text("{}")
    runs = [
        local_cluster.Run("json.tool", tmp_path / "good.json", {"task": {"index": 0}}),
        local_cluster.Run("json.tool", tmp_path / "missing.json", {"task": {"index": 1}}),
    ]
    with pytest.raises(pytest.fail.Exception) as failure:
        local_cluster.run_together(runs, tmp_path / "logs", timeout=60)
    message = str(failure.value)
    assert "a process failed" in message
    assert "missing.json" in message  # the failing process's stderr
    assert "exit code 0" in message and "'index': 1" in message


def test_ports_are_distinct_and_workers_share_the_cluster():
    configs = local_cluster.worker_configs(2)
    workers = configs[0]["cluster"]["worker"]
    assert len(set(workers)) == 2 and configs[1]["cluster"]["worker"] == workers
    assert [config["task"]["index"] for config in configs] == [0, 1]
