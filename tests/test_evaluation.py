"""tfsal.evaluation: every model scored on the same images with the standard metrics."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from tfsal import baselines, evaluation
from tfsal.data import density as density_lib
from tfsal.data import open_dataset


def test_evaluate_models_scores_baselines_on_pop_out():
    dataset = open_dataset("popout", num_images=4, image_size=64)
    models = {"uniform": baselines.uniform, "signature": baselines.image_signature}
    report = evaluation.evaluate_models(dataset, dataset.ids(), models, progress=False)
    assert report["dataset"] == "popout" and report["n_images"] == 4
    assert report["metrics_absent"] == {}
    uniform, signature = report["results"]["uniform"], report["results"]["signature"]
    assert set(evaluation.METRICS) <= set(uniform)
    assert uniform["AUC-Judd"] == 0.5 and uniform["NSS"] == 0.0 and uniform["CC"] == 0.0
    assert signature["NSS"] > 1.0 and signature["AUC-Judd"] > 0.8
    assert {"GSI", "MSR_targ", "MSR_bg", "numfix2find", "border"} <= set(signature)
    assert uniform["border"] == pytest.approx(1.0)
    again = evaluation.evaluate_models(dataset, dataset.ids(), models, progress=False)
    assert again == report


def test_maps_are_scored_with_one_blas_thread_and_the_setting_is_restored():
    dataset = open_dataset("popout", num_images=2, image_size=64)
    seen = []

    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    def watching(image):
        seen.append(blas_threads())
        return baselines.uniform(image)

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        evaluation.evaluate_models(dataset, dataset.ids(), {"watching": watching}, progress=False)
        assert blas_threads() == before
    assert seen and all(threads == [1] * len(before) for threads in seen)
    assert before and all(threads == 2 for threads in before)  # the limit above held


def test_a_model_giving_nan_is_named_in_the_error():
    dataset = open_dataset("popout", num_images=2, image_size=64)

    def broken(image):
        return np.full(image.shape[:2], np.nan)

    with pytest.raises(ValueError, match=r"model 'broken' on image 'popout-0000'.*NaN"):
        evaluation.evaluate_models(dataset, dataset.ids(), {"broken": broken}, progress=False)


def test_pop_out_ratios_of_a_map_with_negative_values_use_the_shifted_map():
    dataset = open_dataset("popout", num_images=3, image_size=64)

    def negative(image):
        return baselines.image_signature(image) - 2.0

    def shifted(image):
        saliency = baselines.image_signature(image)
        return saliency - saliency.min()

    models = {"negative": negative, "shifted": shifted}
    results = evaluation.evaluate_models(dataset, dataset.ids(), models, progress=False)["results"]
    for metric in ("GSI", "MSR_targ", "MSR_bg", "numfix2find", "border"):
        assert results["negative"][metric] == pytest.approx(results["shifted"][metric])
    assert -1.0 < results["negative"]["GSI"] < 1.0 and results["negative"]["MSR_targ"] > 0


def test_other_images_fixations_land_on_the_pixels_a_fixation_map_marks():
    fixations = np.array([[2.6, 3.6], [0.0, 0.0], [9.4, 19.0]])
    other = evaluation._other_fixation_map([(fixations, (10, 20))], (10, 20))
    np.testing.assert_array_equal(other, density_lib.fixation_map(fixations, (10, 20)))
    # From an image twice as large: pixel-corner coordinates halve, then truncate.
    halved = evaluation._other_fixation_map(
        [(np.array([[19.0, 39.0], [0.0, 1.0]]), (20, 40))], (10, 20)
    )
    assert np.argwhere(halved).tolist() == [[0, 0], [9, 19]]


def test_a_model_giving_a_batch_axis_is_named_in_the_error_and_a_channel_axis_is_fine():
    dataset = open_dataset("popout", num_images=1, image_size=64)

    def batched(image):
        return baselines.centre_bias(image[::2, ::2])[None]

    def channel(image):
        return baselines.centre_bias(image[::2, ::2])[..., None]

    def plain(image):
        return baselines.centre_bias(image[::2, ::2])

    with pytest.raises(ValueError, match=r"'batched' on image 'popout-0000': a predictor must"):
        evaluation.evaluate_models(dataset, dataset.ids(), {"batched": batched}, progress=False)
    models = {"channel": channel, "plain": plain}
    results = evaluation.evaluate_models(dataset, dataset.ids(), models, progress=False)["results"]
    assert results["channel"] == results["plain"]
