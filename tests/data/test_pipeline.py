import numpy as np
import pytest
import tensorflow as tf

from tests.data.conftest import MemoryDataset, pipeline_elements, random_image, write_folder
from tfsal import data
from tfsal.data import targets

SIZE = (8, 12)


def _order(images):
    return [int(image[image.shape[0] // 2, image.shape[1] // 2, 0]) for image in images]


def test_batches_match_make_example_in_id_order(tiny_folder):
    dataset = data.open_dataset(f"folder:{tiny_folder}")
    pipeline = data.make_pipeline(dataset, ["eel", "cat", "dog"], image_size=SIZE, batch_size=2)
    assert pipeline.element_spec[0].shape.as_list() == [None, *SIZE, 3]
    assert pipeline.element_spec[1]["saliency"].shape.as_list() == [None, *SIZE, 2]
    images, saliency = pipeline_elements(pipeline)
    assert images.shape == (3, *SIZE, 3) and saliency.shape == (3, *SIZE, 2)
    for index, image_id in enumerate(["eel", "cat", "dog"]):
        record = dataset.load(image_id)
        expected = targets.make_example(record.image, record.fixations, None, SIZE, "pad")
        np.testing.assert_array_equal(images[index], expected[0])
        np.testing.assert_array_equal(saliency[index], expected[1])
    np.testing.assert_allclose(saliency[..., 0].sum(axis=(1, 2)), 1.0, rtol=1e-5)
    assert set(np.unique(saliency[..., 1])) <= {0.0, 1.0}


def test_nothing_is_loaded_until_iteration():
    dataset = MemoryDataset()
    pipeline = data.make_pipeline(dataset, image_size=SIZE, batch_size=4)
    assert dataset.loads == 0
    pipeline_elements(pipeline)
    assert dataset.loads == 12


def test_shuffling_is_seeded_and_reshuffles_every_epoch():
    def orders(seed):
        pipeline = data.make_pipeline(
            MemoryDataset(), image_size=SIZE, batch_size=12, shuffle=True, seed=seed, repeat=True
        )
        return [_order(batch[0].numpy()) for batch in pipeline.take(2)]

    first = orders(1)
    assert first == orders(1)
    assert first != orders(2)
    assert first[0] != first[1] and sorted(first[0]) == list(range(12))


def test_shards_split_the_data_between_workers():
    seen = [
        _order(
            pipeline_elements(data.make_pipeline(MemoryDataset(), image_size=SIZE, shard=(3, i)))[0]
        )
        for i in range(3)
    ]
    assert sorted(sum(seen, [])) == list(range(12))
    assert all(len(part) == 4 for part in seen)
    options = data.make_pipeline(MemoryDataset(), image_size=SIZE, shard=(3, 0)).options()
    assert (
        options.experimental_distribute.auto_shard_policy
        == tf.data.experimental.AutoShardPolicy.OFF
    )


def test_flip_augmentation_moves_image_and_targets_together():
    plain_images, plain_targets = pipeline_elements(
        data.make_pipeline(MemoryDataset(), image_size=SIZE)
    )
    images, saliency = pipeline_elements(
        data.make_pipeline(MemoryDataset(), image_size=SIZE, augment=True, seed=5)
    )
    flipped = 0
    for index in range(12):
        if np.array_equal(images[index], plain_images[index]):
            np.testing.assert_array_equal(saliency[index], plain_targets[index])
        else:
            np.testing.assert_array_equal(images[index], plain_images[index][:, ::-1])
            np.testing.assert_array_equal(saliency[index], plain_targets[index][:, ::-1])
            flipped += 1
    assert 0 < flipped < 12
    again, _ = pipeline_elements(
        data.make_pipeline(MemoryDataset(), image_size=SIZE, augment=True, seed=5)
    )
    np.testing.assert_array_equal(again, images)


def test_stretch_and_drop_remainder():
    pipeline = data.make_pipeline(
        MemoryDataset(count=5, shape=(30, 10)),
        image_size=SIZE,
        resize="stretch",
        batch_size=2,
        drop_remainder=True,
    )
    images, _ = pipeline_elements(pipeline)
    assert images.shape[0] == 4
    assert images[1].min() == 1  # image 1 fills the canvas: no zero padding


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"image_ids": ["99"]}, ValueError, "not in the"),
        ({"image_ids": []}, ValueError, "image_ids is empty"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"shard": (2, 2)}, ValueError, "shard must be"),
        ({"resize": "crop"}, ValueError, "resize must be one of"),
    ],
)
def test_bad_arguments_raise(kwargs, error, message):
    with pytest.raises(error, match=message):
        data.make_pipeline(MemoryDataset(), **({"image_size": SIZE} | kwargs))


def test_wrong_dataset_type_and_missing_shards_raise(tmp_path):
    with pytest.raises(TypeError, match="SaliencyDataset or a TFRecord shard pattern"):
        data.make_pipeline([1, 2, 3], image_size=SIZE)
    with pytest.raises(FileNotFoundError, match="training.prepare"):
        data.make_pipeline(str(tmp_path / "*.tfrecord"), image_size=SIZE)


def test_data_without_targets_fails_early(tmp_path):
    root = write_folder(tmp_path / "f", {"lonely": (random_image(6, 6), None)})
    with pytest.raises(ValueError, match="folder data set has neither fixations nor density"):
        data.make_pipeline(data.open_dataset(f"folder:{root}"), image_size=SIZE)


def test_image_without_targets_fails_with_its_name():
    class Partial(MemoryDataset):
        def load(self, image_id):
            record = super().load(image_id)
            if image_id == "01":
                record.fixations = np.zeros((0, 2))
            return record

    pipeline = data.make_pipeline(Partial(count=2), image_size=SIZE)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Image '01' has neither"):
        pipeline_elements(pipeline)
