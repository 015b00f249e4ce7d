import pickle
import zipfile

import numpy as np
import pytest

from tests.weights import torch_files
from tfsal.weights import CheckpointError, read_checkpoint, read_state_dict

IMAGENET_FILE = "mobilenet_v2-b0353104.pth"
WRITERS = {"zip": torch_files.write_zip, "legacy": torch_files.write_legacy}


def _state_dict():
    rng = np.random.default_rng(0)
    return {
        "conv.weight": rng.normal(size=(4, 3, 3, 3)).astype("float32"),
        "bn.running_var": rng.uniform(size=4).astype("float64"),
        "half": rng.normal(size=(2, 5)).astype("float16"),
        "bn.num_batches_tracked": np.asarray(7, dtype="int64"),
        "mask": np.asarray([True, False, True]),
        "bytes": np.arange(6, dtype="uint8").reshape(2, 3),
        "empty": np.zeros((0, 3), dtype="float32"),
    }


def test_reads_the_real_legacy_torchvision_file(weights_dir):
    path = weights_dir / IMAGENET_FILE
    assert not zipfile.is_zipfile(path)  # torchvision's file is the legacy format
    state_dict = read_state_dict(path)
    assert len(state_dict) == 314
    assert list(state_dict)[0] == "features.0.0.weight"
    assert state_dict["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state_dict["features.0.0.weight"].dtype == np.float32
    assert state_dict["classifier.1.weight"].shape == (1000, 1280)
    assert state_dict["features.0.1.num_batches_tracked"].dtype == np.int64
    # Trained BatchNorm variances are positive and not the initial ones.
    variance = state_dict["features.0.1.running_var"]
    assert np.all(variance > 0) and not np.allclose(variance, 1.0)


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_round_trip(tmp_path, layout):
    expected = _state_dict()
    path = tmp_path / f"state.{layout}.pth"
    WRITERS[layout](path, expected)
    loaded = read_state_dict(path)
    assert list(loaded) == list(expected)
    for key, value in expected.items():
        assert loaded[key].dtype == value.dtype, key
        assert loaded[key].shape == value.shape, key
        np.testing.assert_array_equal(loaded[key], value)


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_strided_views_share_a_storage(tmp_path, layout):
    storage = np.arange(24, dtype="float32")
    legacy = layout == "legacy"
    transposed = torch_files._tensor("0", "float32", 24, 0, (4, 6), (1, 4), legacy)
    offset_view = torch_files._tensor("0", "float32", 24, 6, (3, 2), (2, 1), legacy)
    main = torch_files.emit(torch_files.OrderedDictOf([("t", transposed), ("o", offset_view)]))
    path = tmp_path / "views.pth"
    WRITERS[layout](path, main_pickle=main, storages={"0": storage})
    loaded = read_state_dict(path)
    np.testing.assert_array_equal(loaded["t"], storage.reshape(6, 4).T)
    np.testing.assert_array_equal(loaded["o"], storage[6:12].reshape(3, 2))


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_refuses_globals_outside_the_allow_list_without_running_them(tmp_path, layout):
    marker = tmp_path / "pwned.txt"
    # Unpickling this with pickle.load would create `marker` through builtins.open.
    payload = torch_files.Call(torch_files.Global("builtins", "open"), str(marker), "w")
    main = torch_files.emit(torch_files.OrderedDictOf([("weight", payload)]))
    path = tmp_path / "malicious.pth"
    WRITERS[layout](path, main_pickle=main, storages={})
    with pytest.raises(CheckpointError, match=r"builtins\.open.*allow list"):
        read_checkpoint(path)
    assert not marker.exists()


def test_refuses_a_reduce_of_os_system(tmp_path):
    marker = tmp_path / "pwned.txt"
    payload = torch_files.Call(torch_files.Global("os", "system"), f"touch {marker}")
    path = tmp_path / "malicious.pth"
    torch_files.write_zip(path, main_pickle=torch_files.emit(payload), storages={})
    with pytest.raises(CheckpointError, match=r"os\.system"):
        read_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("layout", ["zip", "legacy"])
@pytest.mark.parametrize("keep", [0.3, 0.97])
def test_truncated_files(tmp_path, layout, keep):
    path = tmp_path / "state.pth"
    WRITERS[layout](path, _state_dict())
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="truncated|damaged|not a PyTorch"):
        read_checkpoint(path)


def test_storage_size_mismatch_is_reported(tmp_path):
    main = torch_files.emit(
        torch_files.OrderedDictOf(
            [("w", torch_files._tensor("0", "float32", 10, 0, (10,), (1,), legacy=False))]
        )
    )
    path = tmp_path / "short.pth"
    torch_files.write_zip(path, main_pickle=main, storages={"0": np.zeros(4, "float32")})
    with pytest.raises(CheckpointError, match="storage '0' has 16 bytes, expected 40"):
        read_checkpoint(path)


def test_tensor_outside_its_storage_is_reported(tmp_path):
    main = torch_files.emit(
        torch_files.OrderedDictOf(
            [("w", torch_files._tensor("0", "float32", 4, 2, (4,), (1,), legacy=False))]
        )
    )
    path = tmp_path / "outside.pth"
    torch_files.write_zip(path, main_pickle=main, storages={"0": np.zeros(4, "float32")})
    with pytest.raises(CheckpointError, match="outside its storage"):
        read_checkpoint(path)


def test_files_that_are_not_checkpoints(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_checkpoint(text)

    numpy_file = tmp_path / "array.npy"
    np.save(numpy_file, np.zeros(3))
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_checkpoint(numpy_file)

    plain_pickle = tmp_path / "plain.pkl"
    plain_pickle.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(CheckpointError, match="wrong magic number"):
        read_checkpoint(plain_pickle)

    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "not a checkpoint")
    with pytest.raises(CheckpointError, match="data.pkl"):
        read_checkpoint(other_zip)

    with pytest.raises(FileNotFoundError, match="No checkpoint file"):
        read_checkpoint(tmp_path / "missing.pth")


def test_state_dict_inside_a_training_checkpoint(tmp_path):
    inner = torch_files.OrderedDictOf(
        [("w", torch_files._tensor("0", "float32", 3, 0, (3,), (1,), legacy=False))]
    )
    outer = torch_files.emit(torch_files.OrderedDictOf([("epoch", 4), ("model_state_dict", inner)]))
    path = tmp_path / "chkpnt.pth"
    storage = np.asarray([1, 2, 3], "float32")
    torch_files.write_zip(path, main_pickle=outer, storages={"0": storage})
    assert read_checkpoint(path)["epoch"] == 4
    np.testing.assert_array_equal(read_state_dict(path)["w"], storage)


def test_a_checkpoint_without_tensors_is_not_a_state_dict(tmp_path):
    path = tmp_path / "numbers.pth"
    main = torch_files.emit(torch_files.OrderedDictOf([("epoch", 4), ("lr", "0.1")]))
    torch_files.write_zip(path, main_pickle=main, storages={})
    with pytest.raises(CheckpointError, match="not a state dict of tensors"):
        read_state_dict(path)


def test_big_endian_zip(tmp_path):
    expected = _state_dict()
    path = tmp_path / "big.pth"
    torch_files.write_zip(path, expected, byteorder="big")
    loaded = read_state_dict(path)
    for key, value in expected.items():
        np.testing.assert_array_equal(loaded[key], value)


def test_bfloat16_tensors_become_float32(tmp_path):
    values = np.asarray([1.0, -2.5, 3.140625, 0.0], "float32")  # exact in bfloat16
    upper_halves = (values.view("uint32") >> 16).astype("uint16")
    tensor = torch_files.Call(
        torch_files.Global("torch._utils", "_rebuild_tensor_v2"),
        torch_files.Persistent(
            ("storage", torch_files.Global("torch", "BFloat16Storage"), "0", "cpu", 4)
        ),
        0,
        (2, 2),
        (2, 1),
        False,
        torch_files.OrderedDictOf([]),
    )
    path = tmp_path / "bf16.pth"
    main = torch_files.emit(torch_files.OrderedDictOf([("w", tensor)]))
    torch_files.write_zip(path, main_pickle=main, storages={"0": upper_halves})
    loaded = read_state_dict(path)["w"]
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, values.reshape(2, 2))
