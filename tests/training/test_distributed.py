import numpy as np
import pytest

from tests import local_cluster
from training import distributed


@pytest.mark.slow
def test_two_local_workers_train_one_synchronised_step(tmp_path):
    runs = [
        local_cluster.Run("tests.training.worker_script", tmp_path / f"w{index}", tf_config)
        for index, tf_config in enumerate(local_cluster.worker_configs(2))
    ]
    outputs = local_cluster.run_together(runs, tmp_path / "logs", timeout=300)
    # 9 training images, global batch 8 over 2 workers: exactly one step each.
    assert "steps=1 chief=True" in outputs[0] and "steps=1 chief=False" in outputs[1]
    weights = [np.load(tmp_path / f"w{i}" / "weights.npz") for i in range(2)]
    initial = np.load(tmp_path / "w0" / "initial.npz")
    for key in weights[0].files:
        np.testing.assert_array_equal(weights[0][key], weights[1][key])
    assert any(not np.array_equal(weights[0][k], initial[k]) for k in initial.files)
    assert (tmp_path / "w0" / "checkpoints" / "epoch-0001.npz").is_file()
    assert not (tmp_path / "w1" / "checkpoints").exists()  # only the chief writes


def test_strategy_choice(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    strategy = distributed.choose_strategy("auto")
    assert not distributed.is_distributed(strategy)
    assert distributed.is_chief(strategy)
    with pytest.raises(ValueError, match="needs the TF_CONFIG"):
        distributed.choose_strategy("multi_worker")
    with pytest.raises(ValueError, match="strategy must be"):
        distributed.choose_strategy("parameter_server")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        distributed.choose_strategy("auto")


def test_single_process_input_keeps_every_image_in_epoch_order():
    import tensorflow as tf

    def make_epoch(image_ids, epoch, batch_size):
        values = [int(i) + 100 * epoch for i in image_ids]
        return tf.data.Dataset.from_tensor_slices(values).batch(batch_size)

    dataset, steps = distributed.distributed_epochs(
        tf.distribute.get_strategy(), make_epoch, ["0", "1", "2", "3", "4"], 2, range(1, 3)
    )
    assert steps == 3
    batches = [batch.numpy().tolist() for batch in dataset]
    assert batches == [[100, 101], [102, 103], [104], [200, 201], [202, 203], [204]]
