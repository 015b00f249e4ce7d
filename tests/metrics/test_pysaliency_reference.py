"""tfsal's metrics against pysaliency 0.2.22 wherever the two conventions coincide."""

import numpy as np
import pytest

from tfsal import metrics

SEEDS = [0, 1, 2]


def make_image(seed, shape=(30, 40), num_fixations=40, duplicates=False):
    rng = np.random.default_rng(seed)
    saliency = rng.gamma(1.0, size=shape)
    if duplicates:
        ys = rng.integers(0, shape[0], num_fixations)
        xs = rng.integers(0, shape[1], num_fixations)
        ys[:5], xs[:5] = ys[0], xs[0]  # one pixel fixated five times
    else:
        flat = rng.choice(saliency.size, num_fixations, replace=False)
        ys, xs = np.unravel_index(flat, shape)
    counts = np.zeros(shape)
    np.add.at(counts, (ys, xs), 1)
    return saliency, ys, xs, counts


@pytest.mark.parametrize("seed", SEEDS)
def test_auc_judd_matches_pysaliency(pysaliency, seed):
    from pysaliency.roc import general_roc

    saliency, ys, xs, counts = make_image(seed)
    expected = general_roc(saliency[ys, xs], saliency[counts == 0], judd=1)[0]
    assert metrics.auc_judd(saliency, counts) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_auc_judd_counting_duplicates_matches_pysaliency(pysaliency, seed):
    from pysaliency.roc import general_roc

    saliency, ys, xs, counts = make_image(seed, duplicates=True)
    expected = general_roc(saliency[ys, xs], saliency[counts == 0], judd=1)[0]
    actual = metrics.auc_judd(saliency, counts, count_duplicates=True)
    assert actual == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_exact_auc_borji_matches_pysaliency_uniform_auc(pysaliency, seed):
    from pysaliency.roc import general_roc

    saliency, ys, xs, counts = make_image(seed, duplicates=True)
    saliency = np.round(saliency, 1)  # many ties
    expected = general_roc(saliency[ys, xs], saliency.ravel(), judd=0)[0]
    actual = metrics.auc_borji(saliency, counts, exact=True, count_duplicates=True)
    assert actual == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_exact_auc_shuffled_matches_pysaliency(pysaliency, seed):
    from pysaliency.roc import general_roc

    saliency, ys, xs, counts = make_image(seed)
    _, other_ys, other_xs, other_counts = make_image(seed + 10, duplicates=True)
    expected = general_roc(saliency[ys, xs], saliency[other_ys, other_xs], judd=0)[0]
    actual = metrics.auc_shuffled(saliency, counts, other_counts, exact=True)
    assert actual == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_nss_with_pysaliency_convention(pysaliency, seed):
    from pysaliency.metrics import NSS

    saliency, ys, xs, counts = make_image(seed, duplicates=True)
    expected = NSS(saliency, xs, ys).mean()
    actual = metrics.nss(saliency, counts, ddof=0, count_duplicates=True)
    assert actual == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_density_metrics_match_pysaliency(pysaliency, seed):
    from pysaliency.metrics import CC, SIM, MIT_KLDiv

    saliency, _, _, _ = make_image(seed)
    density, _, _, _ = make_image(seed + 100)
    assert metrics.cc(saliency, density) == pytest.approx(CC(saliency, density), abs=1e-6)
    assert metrics.kld(saliency, density) == pytest.approx(MIT_KLDiv(saliency, density), abs=1e-6)
    expected_sim = SIM(saliency, density)
    assert metrics.sim(saliency, density, min_max=False) == pytest.approx(expected_sim, abs=1e-6)
    # MIT's min-max step makes a difference once the map does not start at 0.
    shifted = SIM(saliency + 1, density)
    assert metrics.sim(saliency + 1, density) != pytest.approx(shifted, abs=1e-3)


@pytest.mark.parametrize("seed", SEEDS)
def test_information_gain_matches_pysaliency_probabilistic_model(pysaliency, seed):
    saliency, ys, xs, counts = make_image(seed, duplicates=True)
    log_density = np.log(saliency / saliency.sum())

    class ArrayModel(pysaliency.Model):
        def __init__(self):
            super().__init__(caching=False)

        def _log_density(self, stimulus):
            return log_density

    stimuli = pysaliency.Stimuli([np.zeros((*saliency.shape, 3), np.uint8)])
    fixations = pysaliency.Fixations.create_without_history(
        xs.astype(float), ys.astype(float), np.zeros(len(xs), int)
    )
    expected = ArrayModel().information_gain(
        stimuli, fixations, baseline_model=pysaliency.UniformModel()
    )
    uniform = np.ones_like(saliency)
    actual = metrics.information_gain(
        np.exp(log_density), counts, uniform, min_max=False, count_duplicates=True
    )
    assert actual == pytest.approx(expected, abs=1e-6)
