import pickle
import struct
import time
import tracemalloc
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


# -- files built to run code or to exhaust the reader -------------------------------

Raw = torch_files.Raw
SLOTS = [("zip", "object")] + [("legacy", slot) for slot in torch_files.LEGACY_SLOTS]


def test_the_payload_runs_under_pickle_load(tmp_path):
    # The control for the tests below: the payload is live, so they can fail.
    marker = tmp_path / "pwned"
    pickle.loads(torch_files.payload_pickle(marker))
    assert marker.is_dir()


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize(("layout", "slot"), SLOTS)
def test_a_payload_in_any_pickle_never_runs(tmp_path, layout, slot, protocol):
    marker = tmp_path / "pwned"
    payload = torch_files.payload_pickle(marker, protocol)
    path = tmp_path / "malicious.pth"
    if layout == "zip":
        torch_files.write_zip(path, main_pickle=payload, storages={})
    else:
        torch_files.write_legacy(path, _state_dict(), slots={slot: payload})
    with pytest.raises(CheckpointError, match=r"posix\.mkdir.*allow list"):
        read_checkpoint(path)
    assert not marker.exists()


def _write_crafted(path, value, storages=None, layout="zip"):
    WRITERS[layout](path, main_pickle=torch_files.emit(value), storages=storages or {})
    return path


def _shared_containers(levels, kind):
    """Level i holds level i-1 twice: a few bytes per level, 2**levels leaves."""
    raw = Raw(b"]q\x000" if kind == "list" else b"}q\x000")
    for level in range(levels):
        get = b"h" + bytes([level])
        if kind == "list":
            raw.opcodes += b"(" + get + get + b"l"
        else:
            raw.opcodes += b"}(K\x00" + get + b"K\x01" + get + b"u"
        raw.opcodes += b"q" + bytes([level + 1]) + b"0"
    raw.opcodes += b"h" + bytes([levels])
    return raw


@pytest.mark.parametrize("layout", ["zip", "legacy"])
@pytest.mark.parametrize("kind", ["list", "dict"])
def test_containers_sharing_children_cost_bounded_time(tmp_path, layout, kind):
    value = torch_files.OrderedDictOf([("w", _shared_containers(60, kind))])
    path = _write_crafted(tmp_path / "shared.pth", value, layout=layout)
    assert path.stat().st_size < 2000
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="more than 2000000 steps"):
        read_checkpoint(path)
    assert time.perf_counter() - start < 30  # seconds, on a loaded machine; 2**60 without it


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (Raw(b"]" * 5000 + b"a" * 4999), "nests containers deeper than 100"),
        (Raw(b"N" + b"\x85" * 5000), "nests containers deeper than 100"),
        (Raw(b"(" * 5000 + b"N" + b"t" * 5000), "pickle nests deeper than 100"),
        (Raw(b"]q\x00h\x00a"), "contains itself"),
        (Raw(b"}q\x00K\x00h\x00s"), "contains itself"),
    ],
)
def test_deep_or_self_referencing_nesting(tmp_path, raw, message):
    path = _write_crafted(tmp_path / "deep.pth", torch_files.OrderedDictOf([("w", raw)]))
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)


def _refusal_and_peak_memory(path):
    """The message of the ``CheckpointError`` reading ``path`` and its peak memory."""
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as refusal:
            read_checkpoint(path)
        return str(refusal.value), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_a_tensor_larger_than_its_storage_is_refused_before_allocating(tmp_path, layout):
    # 20000 x 20000 float32 repeating one element: 1.6 GB from a file of a few hundred bytes.
    tensor = torch_files._tensor("0", "float32", 1, 0, (20000, 20000), (0, 0), layout == "legacy")
    path = _write_crafted(
        tmp_path / "repeat.pth",
        torch_files.OrderedDictOf([("w", tensor)]),
        storages={"0": np.ones(1, "float32")},
        layout=layout,
    )
    message, peak = _refusal_and_peak_memory(path)
    assert "outside its storage of 1 elements, or repeats them" in message
    assert peak < 2**20
    assert path.stat().st_size < 1000


def test_tensors_that_view_one_storage_many_times_over_are_refused(tmp_path):
    views = [
        (f"w{index}", torch_files._tensor("0", "float32", 1000, 0, (1000,), (1,), False))
        for index in range(3)
    ]
    path = _write_crafted(
        tmp_path / "views.pth",
        torch_files.OrderedDictOf(views),
        storages={"0": np.zeros(1000, "float32")},
    )
    with pytest.raises(CheckpointError, match="more than 2 times over"):
        read_checkpoint(path)


def test_a_storage_declaring_more_than_the_file_holds_is_refused_before_reading(tmp_path):
    # Legacy: the element count before the bytes says 2**40 floats (4 TiB).
    tensor = torch_files._tensor("0", "float32", 2**40, 0, (1,), (1,), legacy=True)
    path = tmp_path / "huge.pth"
    torch_files.write_legacy(
        path,
        main_pickle=torch_files.emit(torch_files.OrderedDictOf([("w", tensor)])),
        slots={"storage_keys": pickle.dumps(["0"], protocol=2)},
    )
    with open(path, "ab") as file:
        file.write(struct.pack("<q", 2**40) + b"\x00" * 4)
    with pytest.raises(CheckpointError, match="needs 4398046511104 bytes, 4 remain"):
        read_checkpoint(path)


def test_a_negative_storage_count_is_refused(tmp_path):
    tensor = torch_files._tensor("0", "float32", 1, 0, (1,), (1,), legacy=True)
    path = tmp_path / "negative.pth"
    torch_files.write_legacy(
        path,
        main_pickle=torch_files.emit(torch_files.OrderedDictOf([("w", tensor)])),
        slots={"storage_keys": pickle.dumps(["0"], protocol=2)},
    )
    with open(path, "ab") as file:
        file.write(struct.pack("<q", -1) + b"\x00" * 4)
    with pytest.raises(CheckpointError, match="holds -1 elements"):
        read_checkpoint(path)


def _deflated_zip(path, storage_bytes, numel):
    main = torch_files.emit(
        torch_files.OrderedDictOf(
            [("w", torch_files._tensor("0", "float32", numel, 0, (numel,), (1,), False))]
        )
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", main)
        archive.writestr("archive/data/0", storage_bytes)


def _patch_declared_size(path, name, size):
    """Rewrites the uncompressed size the central directory declares for ``name``."""
    data = bytearray(path.read_bytes())
    header = data.find(b"PK\x01\x02")
    while data[header + 46 : header + 46 + len(name)] != name.encode():
        header = data.find(b"PK\x01\x02", header + 4)
    data[header + 24 : header + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(data))


def test_a_storage_that_decompresses_beyond_its_declaration_costs_no_memory(tmp_path):
    # The pickle declares 10 floats; the entry inflates to 64 MB (from about 64 KB).
    path = tmp_path / "bomb.pth"
    _deflated_zip(path, b"\x00" * 64 * 2**20, numel=10)
    assert path.stat().st_size < 200_000
    message, peak = _refusal_and_peak_memory(path)
    assert "storage '0' has 67108864 bytes, expected 40" in message
    assert peak < 2**20
    # The central directory lies: it declares the 40 bytes the pickle expects.
    _patch_declared_size(path, "archive/data/0", 40)
    message, peak = _refusal_and_peak_memory(path)
    assert "damaged" in message
    assert peak < 2**20
    # ... or it declares 1 GiB for a 1 KB entry: more than deflate can expand.
    _deflated_zip(path, b"\x00" * 2**20, numel=2**28)
    _patch_declared_size(path, "archive/data/0", 2**30)
    message, peak = _refusal_and_peak_memory(path)
    assert "storages declare 1073741824 bytes, more than 1100 times the file's" in message
    assert peak < 2**20


def test_stored_entries_declaring_more_than_the_file_holds_are_refused_before_reading(tmp_path):
    # A stored entry whose directory record claims 1 GiB (compressed and not): as
    # with entries sharing one compressed stream, the storages together declare
    # more than any file of this size can hold.
    tensor = torch_files._tensor("0", "float32", 2**28, 0, (1,), (1,), False)
    path = _write_crafted(
        tmp_path / "stored.pth",
        torch_files.OrderedDictOf([("w", tensor)]),
        storages={"0": np.zeros(4, "float32")},
    )
    data = bytearray(path.read_bytes())
    header = data.find(b"PK\x01\x02")
    while data[header + 46 : header + 46 + len("archive/data/0")] != b"archive/data/0":
        header = data.find(b"PK\x01\x02", header + 4)
    data[header + 20 : header + 28] = struct.pack("<II", 2**30, 2**30)
    path.write_bytes(bytes(data))
    message, peak = _refusal_and_peak_memory(path)
    assert "storages declare 1073741824 bytes, more than 1100 times the file's" in message
    assert peak < 2**20


def test_a_legacy_file_holding_a_zip_end_record_is_read_as_legacy(tmp_path):
    # The storage bytes end with what zipfile.is_zipfile takes for an archive.
    end_record = np.frombuffer(b"PK\x05\x06" + b"\x00" * 18 + b"\x00\x00", dtype="uint8")
    path = tmp_path / "legacy.pth"
    torch_files.write_legacy(path, {"bytes": end_record.copy()})
    assert zipfile.is_zipfile(path)
    np.testing.assert_array_equal(read_state_dict(path)["bytes"], end_record)


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_zip_entries_compressed_without_a_bounded_inflate_are_refused(tmp_path, method):
    path = tmp_path / "bzip2.pth"
    torch_files.write_zip(path, _state_dict())
    repacked = tmp_path / "repacked.pth"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(repacked, "w", method) as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
    with pytest.raises(CheckpointError, match=f"compression method {method}; only stored"):
        read_checkpoint(repacked)
