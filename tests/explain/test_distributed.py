import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.training.test_distributed import REPOSITORY, _free_ports


def _run(out, index=None, workers=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    if workers is not None:
        env["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        )
    return subprocess.Popen(
        [sys.executable, "-m", "tests.explain.derive_worker", str(out)],
        cwd=REPOSITORY,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_two_workers_fit_the_same_model_as_one_process(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = [_run(tmp_path / f"w{i}", i, workers) for i in range(2)]
    processes.append(_run(tmp_path / "single"))
    try:
        outputs = [process.communicate(timeout=600)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    assert "derived worker=1 of 2" in outputs[1] and "derived worker=0 of 1" in outputs[2]
    single = np.load(tmp_path / "single" / "weights.npz")
    for worker in ("w0", "w1"):
        weights = np.load(tmp_path / worker / "weights.npz")
        assert sorted(weights.files) == sorted(single.files)
        for key in single.files:
            np.testing.assert_allclose(weights[key], single[key], rtol=1e-4, atol=1e-5, err_msg=key)
    fidelity = [json.loads((tmp_path / w / "fidelity.json").read_text()) for w in ("w0", "single")]
    assert fidelity[0]["rows"] == fidelity[1]["rows"]  # every row counted once
    for tap in ("enc2", "enc3"):
        assert fidelity[0]["taps"][tap]["r2"] == pytest.approx(
            fidelity[1]["taps"][tap]["r2"], abs=1e-5
        )
    assert fidelity[0]["saliency"]["images"] == 4
    assert fidelity[0]["saliency"]["cc"] == pytest.approx(fidelity[1]["saliency"]["cc"], abs=1e-4)
