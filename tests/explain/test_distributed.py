import json

import numpy as np
import pytest

from tests import local_cluster

WORKER = "tests.explain.derive_worker"


@pytest.mark.slow
def test_two_workers_fit_the_same_model_as_one_process(tmp_path):
    runs = [
        local_cluster.Run(WORKER, tmp_path / f"w{index}", tf_config)
        for index, tf_config in enumerate(local_cluster.worker_configs(2))
    ]
    runs.append(local_cluster.Run(WORKER, tmp_path / "single"))
    outputs = local_cluster.run_together(runs, tmp_path / "logs")
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
