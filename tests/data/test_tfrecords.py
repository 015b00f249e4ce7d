import json
import os

import numpy as np
import pytest

from tests.data.conftest import MemoryDataset, pipeline_elements, random_image, write_folder
from tfsal import data
from tfsal.data import tfrecords
from training import prepare

SIZE = (10, 14)


@pytest.fixture
def mapped_folder(tmp_path):
    entries = {
        f"im{index}": (random_image(12 + index, 20 - index, index), [(1, 1, 0), (5, 6, 1)])
        for index in range(5)
    }
    return write_folder(tmp_path / "f", entries, with_maps=True)


@pytest.mark.parametrize("image_size", [None, SIZE])
@pytest.mark.parametrize("fixture", ["tiny_folder", "mapped_folder"])
def test_shards_read_back_identically(fixture, image_size, request, tmp_path):
    dataset = data.open_dataset(f"folder:{request.getfixturevalue(fixture)}")
    tfrecords.write_shards(dataset, tmp_path / "shards", num_shards=2, image_size=image_size)
    direct = pipeline_elements(data.make_pipeline(dataset, image_size=SIZE, batch_size=2))
    from_shards = pipeline_elements(
        data.make_pipeline(
            tfrecords.shard_pattern(tmp_path / "shards"), image_size=SIZE, batch_size=2
        )
    )
    for expected, actual in zip(direct, from_shards, strict=True):
        np.testing.assert_array_equal(actual, expected)


def test_shards_keep_order_shuffle_and_filter(tmp_path):
    dataset = MemoryDataset(count=9)
    tfrecords.write_shards(dataset, tmp_path / "s", num_shards=3)
    pattern = tfrecords.shard_pattern(tmp_path / "s")

    def order(**kwargs):
        images, _ = pipeline_elements(data.make_pipeline(pattern, image_size=(12, 16), **kwargs))
        return [int(image[6, 8, 0]) for image in images]

    assert order() == list(range(9))
    shuffled = order(shuffle=True, seed=3)
    assert sorted(shuffled) == list(range(9)) and shuffled == order(shuffle=True, seed=3)
    assert order(image_ids=["07", "02"]) == [2, 7]
    with pytest.raises(ValueError, match="1 image_ids are not in the shards"):
        order(image_ids=["02", "11"])


@pytest.mark.parametrize("num_workers", [3, 4])  # one file each; more workers than files
def test_shards_split_between_workers(num_workers, tmp_path):
    tfrecords.write_shards(MemoryDataset(count=9), tmp_path / "s", num_shards=3)
    pattern = tfrecords.shard_pattern(tmp_path / "s")
    seen = []
    for index in range(num_workers):
        pipeline = data.make_pipeline(pattern, image_size=(12, 16), shard=(num_workers, index))
        seen += [int(image[6, 8, 0]) for image in pipeline_elements(pipeline)[0]]
    assert sorted(seen) == list(range(9))


def test_prepared_shards_refuse_another_size(tmp_path):
    tfrecords.write_shards(MemoryDataset(count=2), tmp_path / "s", num_shards=1, image_size=SIZE)
    with pytest.raises(ValueError, match="prepared at image_size=\\(10, 14\\)"):
        data.make_pipeline(tfrecords.shard_pattern(tmp_path / "s"), image_size=(20, 28))


def test_rerun_skips_complete_shards_and_rejects_another_plan(tmp_path):
    out = tmp_path / "s"
    paths = tfrecords.write_shards(MemoryDataset(count=6), out, num_shards=3)
    assert [path.name for path in paths] == [f"shard-0000{i}-of-00003.tfrecord" for i in range(3)]
    plan = json.loads((out / tfrecords.PLAN_FILE).read_text())
    assert plan["ids_per_shard"] == [["00", "01"], ["02", "03"], ["04", "05"]]
    paths[1].unlink()
    again = MemoryDataset(count=6)
    tfrecords.write_shards(again, out, num_shards=3)
    assert again.loads == 2 and paths[1].exists()
    assert sorted(path.name for path in out.iterdir() if path.name.startswith(".")) == []
    with pytest.raises(ValueError, match="written with other arguments"):
        tfrecords.write_shards(MemoryDataset(count=6), out, num_shards=2)


def test_interrupted_shard_leaves_no_partial_file(tmp_path):
    class Failing(MemoryDataset):
        def load(self, image_id):
            if image_id == "03":
                raise OSError("disk went away")
            return super().load(image_id)

    out = tmp_path / "s"
    with pytest.raises(OSError):
        tfrecords.write_shards(Failing(count=4), out, num_shards=2)
    assert sorted(path.name for path in out.iterdir()) == [
        "shard-00000-of-00002.tfrecord",
        tfrecords.PLAN_FILE,
    ]


def _damage(path, damage):
    """Truncates ``path`` or flips one bit in it, its modification time moved on."""
    content = bytearray(path.read_bytes())
    if damage == "truncate":
        del content[-30:]
    else:
        content[len(content) // 2] ^= 0x01
    before = path.stat().st_mtime_ns
    path.write_bytes(bytes(content))
    # Later than the verified file's, however coarse the file system's clock.
    os.utime(path, ns=(before + 10**9, before + 10**9))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_shard_is_named_by_the_pipeline_and_rewritten_by_a_rerun(damage, tmp_path):
    out = tmp_path / "s"
    paths = tfrecords.write_shards(MemoryDataset(count=4), out, num_shards=2)
    _damage(paths[1], damage)
    pattern = tfrecords.shard_pattern(out)
    with pytest.raises(ValueError, match=r"shard-00001-of-00002.tfrecord: the shard is trunc"):
        data.make_pipeline(pattern, image_size=(12, 16))
    again = MemoryDataset(count=4)
    tfrecords.write_shards(again, out, num_shards=2)
    assert again.loads == 2  # only the damaged shard is written again
    images, _ = pipeline_elements(data.make_pipeline(pattern, image_size=(12, 16)))
    assert [int(image[6, 8, 0]) for image in images] == [0, 1, 2, 3]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_shard_without_a_plan_is_named(damage, tmp_path):
    out = tmp_path / "s"
    paths = tfrecords.write_shards(MemoryDataset(count=4), out, num_shards=2)
    (out / tfrecords.PLAN_FILE).unlink()
    pattern = tfrecords.shard_pattern(out)
    data.make_pipeline(pattern, image_size=(12, 16))  # intact shards pass
    _damage(paths[1], damage)
    with pytest.raises(ValueError, match=r"shard-00001-of-00002.tfrecord: the shard is trunc"):
        data.make_pipeline(pattern, image_size=(12, 16))


def test_plan_records_finished_shards_and_unlisted_shards_are_refused(tmp_path):
    out = tmp_path / "s"
    paths = tfrecords.write_shards(MemoryDataset(count=4), out, num_shards=2)
    plan = json.loads((out / tfrecords.PLAN_FILE).read_text())
    recorded = plan[tfrecords.FINISHED_KEY][paths[0].name]
    assert recorded["bytes"] == paths[0].stat().st_size and len(recorded["sha256"]) == 64
    del plan[tfrecords.FINISHED_KEY][paths[0].name]
    (out / tfrecords.PLAN_FILE).write_text(json.dumps(plan))
    with pytest.raises(ValueError, match="does not list this shard as finished"):
        data.make_pipeline(tfrecords.shard_pattern(out), image_size=(12, 16))


def test_damaged_plan_is_named(tmp_path):
    out = tmp_path / "s"
    tfrecords.write_shards(MemoryDataset(count=2), out, num_shards=1)
    (out / tfrecords.PLAN_FILE).write_bytes(b"\x00{not json")
    with pytest.raises(ValueError, match="tfsal_shards.json is not a readable shard plan"):
        data.make_pipeline(tfrecords.shard_pattern(out), image_size=(12, 16))
    with pytest.raises(ValueError, match="tfsal_shards.json is not a readable shard plan"):
        tfrecords.write_shards(MemoryDataset(count=2), out, num_shards=1)


def test_rerun_removes_temporary_files_of_a_killed_run(tmp_path):
    out = tmp_path / "s"
    tfrecords.write_shards(MemoryDataset(count=4), out, num_shards=2)
    leftovers = [
        out / ".shard-00001-of-00002.tfrecord.abc123.tmp",
        out / f".{tfrecords.PLAN_FILE}.xyz.tmp",
    ]
    for leftover in leftovers:
        leftover.write_bytes(b"half written")
    (out / "notes.tmp").write_text("not ours")
    tfrecords.write_shards(MemoryDataset(count=4), out, num_shards=2)
    assert not any(leftover.exists() for leftover in leftovers)
    assert (out / "notes.tmp").exists()


def test_bad_shard_counts_raise(tmp_path):
    with pytest.raises(ValueError, match="num_shards must be between 1 and the number of images"):
        tfrecords.write_shards(MemoryDataset(count=2), tmp_path, num_shards=3)


def test_prepare_command_writes_and_resumes(tiny_folder, tmp_path, capsys):
    out = tmp_path / "out"
    arguments = ["--data", f"folder:{tiny_folder}", "--out", str(out), "--shards", "2"]
    assert prepare.main([*arguments, "--image-size", "10", "14"]) == 0
    assert "Wrote 3 images in 2 shards" in capsys.readouterr().out
    assert prepare.main([*arguments, "--image-size", "10", "14"]) == 0  # resumes: nothing to do
    shard = sorted(out.glob("shard-*"))[0]
    shard.write_bytes(shard.read_bytes()[:-10])
    assert prepare.main([*arguments, "--image-size", "10", "14"]) == 0  # rewrites the shard
    capsys.readouterr()
    assert prepare.main(arguments) == 2
    assert "written with other arguments" in capsys.readouterr().err
    images, _ = pipeline_elements(data.make_pipeline(tfrecords.shard_pattern(out), image_size=SIZE))
    assert images.shape == (3, *SIZE, 3)


def test_prepare_split_and_bad_arguments(tiny_folder, tmp_path, capsys):
    out = tmp_path / "out"
    arguments = ["--data", f"folder:{tiny_folder}", "--out", str(out), "--shards", "1"]
    assert prepare.main([*arguments, "--split", "train=2,val=1:val"]) == 0
    plan = json.loads((out / tfrecords.PLAN_FILE).read_text())
    assert len(plan["ids_per_shard"][0]) == 1
    assert prepare.main([*arguments, "--split", "train=2"]) == 2
    assert prepare.main(["--data", "imagenet:/x", "--out", str(out)]) == 2
    assert "Unknown data set format 'imagenet'" in capsys.readouterr().err


def test_real_nus_shards_read_back_identically(nus_dir, tmp_path):
    dataset = data.open_dataset(f"nus:{nus_dir}")
    image_ids = dataset.ids()[:4]
    assert (
        prepare.main(
            [
                "--data",
                f"nus:{nus_dir}",
                "--out",
                str(tmp_path / "nus"),
                "--shards",
                "2",
                "--split",
                f"few={len(image_ids)}:few",
            ]
        )
        == 0
    )
    written = tfrecords.read_planned_ids([str(tmp_path / "nus" / "x.tfrecord")])
    direct = pipeline_elements(data.make_pipeline(dataset, sorted(written), image_size=(48, 64)))
    from_shards = pipeline_elements(
        data.make_pipeline(tfrecords.shard_pattern(tmp_path / "nus"), image_size=(48, 64))
    )
    for expected, actual in zip(direct, from_shards, strict=True):
        np.testing.assert_array_equal(actual, expected)


def _count_calls(monkeypatch, name):
    calls = []
    real = getattr(tfrecords, name)

    def counted(path, *args):
        calls.append(path.name)
        return real(path, *args)

    monkeypatch.setattr(tfrecords, name, counted)
    return calls


def test_a_verified_shard_is_hashed_again_only_once_its_file_changes(tmp_path, monkeypatch):
    paths = tfrecords.write_shards(MemoryDataset(count=4), tmp_path / "s", num_shards=2)
    hashed = _count_calls(monkeypatch, "_fingerprint")
    files = [str(path) for path in paths]
    tfrecords.check_shards(files)
    tfrecords.check_shards(files)
    data.make_pipeline(tfrecords.shard_pattern(tmp_path / "s"), image_size=(12, 16))
    assert sorted(hashed) == [path.name for path in paths]  # once per shard and process
    _damage(paths[1], "flip")  # the same size
    with pytest.raises(ValueError, match=r"shard-00001-of-00002.tfrecord: the shard is trunc"):
        tfrecords.check_shards(files)
    assert hashed[2:] == [paths[1].name]  # the unchanged shard is not read again


def test_a_shard_without_a_plan_is_read_through_once(tmp_path, monkeypatch):
    paths = tfrecords.write_shards(MemoryDataset(count=4), tmp_path / "s", num_shards=2)
    (tmp_path / "s" / tfrecords.PLAN_FILE).unlink()
    read = _count_calls(monkeypatch, "_check_records_readable")
    files = [str(path) for path in paths]
    tfrecords.check_shards(files)
    tfrecords.check_shards(files)
    assert sorted(read) == [path.name for path in paths]
    _damage(paths[0], "flip")
    with pytest.raises(ValueError, match=r"shard-00000-of-00002.tfrecord: the shard is trunc"):
        tfrecords.check_shards(files)
