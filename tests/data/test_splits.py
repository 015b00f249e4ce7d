import pytest

from tfsal.data.splits import split_ids

IDS = [f"{i:03d}" for i in range(1, 101)]


def test_split_is_disjoint_deterministic_and_order_independent():
    first = split_ids(IDS, {"train": 70, "val": 20, "test": 10}, seed=3)
    again = split_ids(list(reversed(IDS)), {"train": 70, "val": 20, "test": 10}, seed=3)
    assert first == again
    assert [len(first[k]) for k in ("train", "val", "test")] == [70, 20, 10]
    assert set(first["train"]) | set(first["val"]) | set(first["test"]) == set(IDS)
    assert not set(first["train"]) & set(first["val"])
    assert first["val"] == sorted(first["val"])
    assert split_ids(IDS, {"train": 70, "val": 20, "test": 10}, seed=4) != first


def test_fractions_use_every_id_when_they_sum_to_one():
    result = split_ids(IDS[:10], {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, seed=0)
    assert sum(len(v) for v in result.values()) == 10


def test_counts_may_leave_ids_out():
    result = split_ids(IDS, {"train": 5}, seed=0)
    assert len(result["train"]) == 5


@pytest.mark.parametrize(
    "ids, sizes, message",
    [
        (["a", "a"], {"x": 1}, "duplicates"),
        (IDS, {}, "at least one subset"),
        (IDS, {"x": 0.5, "y": 10}, "all counts"),
        (IDS, {"x": -1}, ">= 0"),
        (IDS, {"x": 0.7, "y": 0.7}, "at most 1"),
        (IDS, {"x": 90, "y": 20}, "only 100"),
        # 0.3 * 5 = 1.5 rounds to 2 three times: 6 of 5 images, so 'd' would get -1.
        (IDS[:5], {"a": 0.3, "b": 0.3, "c": 0.3, "d": 0.1}, "leaves -1 for 'd'; give counts"),
    ],
)
def test_bad_sizes_raise(ids, sizes, message):
    with pytest.raises(ValueError, match=message):
        split_ids(ids, sizes, seed=0)
