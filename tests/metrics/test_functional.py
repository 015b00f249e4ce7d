import time

import numpy as np
import pytest

from tfsal import metrics
from tfsal.metrics import functional, roc

# The hand-checkable example of the reference notes (§2.3).
S = np.array([[0.1, 0.4, 0.2], [0.9, 0.3, 0.6]])
F = np.array([[0, 1, 0], [1, 0, 0]], float)
G = np.array([[0, 1, 0], [2, 0, 1]], float)


def random_case(seed, shape=(30, 40), num_fixations=25):
    rng = np.random.default_rng(seed)
    saliency = rng.random(shape)
    flat = rng.choice(saliency.size, num_fixations, replace=False)
    fixations = np.zeros(shape)
    fixations.flat[flat] = 1
    return saliency, fixations


def test_worked_example():
    assert metrics.auc_judd(S, F) == pytest.approx(0.9375, abs=1e-12)
    assert metrics.auc_borji(S, F, exact=True) == pytest.approx(0.75, abs=1e-12)
    assert metrics.nss(S, F, ddof=0) == pytest.approx(0.873296006, abs=1e-9)
    assert metrics.nss(S, F) == pytest.approx(0.797206537, abs=1e-9)
    assert metrics.cc(S, G) == pytest.approx(0.948478200, abs=1e-9)
    assert metrics.sim(S, G, min_max=False) == pytest.approx(0.76, abs=1e-12)
    assert metrics.sim(S, G) == pytest.approx(0.828947368, abs=1e-9)
    assert metrics.kld(S, G) == pytest.approx(0.286029308, abs=1e-9)
    uniform = np.ones_like(S)
    assert metrics.information_gain(S, F, uniform, min_max=False) == pytest.approx(
        0.526068812, abs=1e-9
    )
    assert metrics.emd(S, G, downsize=1) == pytest.approx(0.24, abs=1e-6)


def test_worked_example_auc_judd_is_jitter_proof():
    assert metrics.auc_judd(S, F, jitter=True) == pytest.approx(0.9375, abs=1e-12)


def test_constant_map():
    _, fixations = random_case(0)
    constant = np.full(fixations.shape, 3.0)
    density = np.random.default_rng(1).random(fixations.shape)
    assert metrics.auc_judd(constant, fixations) == 0.5
    assert metrics.auc_borji(constant, fixations) == 0.5
    assert metrics.auc_borji(constant, fixations, exact=True) == 0.5
    assert metrics.auc_shuffled(constant, fixations, 1 - fixations) == 0.5
    assert metrics.nss(constant, fixations) == 0.0
    assert metrics.cc(constant, density) == 0.0
    jittered = metrics.auc_judd(constant, fixations, jitter=True)
    assert 0.3 < jittered < 0.7 and jittered != 0.5


def test_constant_map_with_large_values_is_fast():
    saliency, fixations = random_case(0, shape=(40, 50))
    constant = np.full(fixations.shape, 1e6)
    others = 1 - fixations
    started = time.perf_counter()
    assert metrics.auc_borji(constant, fixations) == 0.5
    assert metrics.auc_shuffled(constant, fixations, others) == 0.5
    assert time.perf_counter() - started < 1.0  # 11 s before constant maps became zeros
    # A large offset on a non-constant map changes nothing either.
    assert metrics.auc_borji(saliency + 1e6, fixations) == pytest.approx(
        metrics.auc_borji(saliency, fixations), abs=1e-9
    )


def test_stepped_auc_matches_the_mit_loop_at_fine_steps():
    saliency, fixations = random_case(4)
    reference = mit_stepped_auc(
        saliency[fixations > 0], [saliency.ravel()[:25], saliency.ravel()[25:50]], 0.001
    )
    ours = roc._stepped_auc(
        saliency[fixations > 0], np.stack([saliency.ravel()[:25], saliency.ravel()[25:50]]), 0.001
    )
    assert ours == pytest.approx(reference, abs=1e-12)


def test_huge_and_tiny_finite_values_do_not_overflow():
    saliency, fixations = random_case(3)
    density = np.random.default_rng(5).random(saliency.shape)
    for factor in (1e200, 1e-200, 1e300):
        assert metrics.cc(saliency * factor, density) == pytest.approx(
            metrics.cc(saliency, density), abs=1e-12
        )
        assert metrics.cc(saliency, density * factor) == pytest.approx(
            metrics.cc(saliency, density), abs=1e-12
        )
        assert metrics.nss(saliency * factor, fixations) == pytest.approx(
            metrics.nss(saliency, fixations), abs=1e-12
        )
        assert metrics.sim(saliency * factor, density * factor) == pytest.approx(
            metrics.sim(saliency, density), abs=1e-12
        )
        assert metrics.kld(saliency * factor, density) == pytest.approx(
            metrics.kld(saliency, density), abs=1e-12
        )


@pytest.mark.parametrize("metric", [metrics.cc, metrics.sim, metrics.kld, metrics.emd])
@pytest.mark.parametrize("density", [np.zeros_like(S), G - 1, -G])
def test_density_metrics_refuse_negative_or_all_zero_densities(metric, density):
    with pytest.raises(ValueError, match="density must be non-negative and not all zero"):
        metric(S, density)


@pytest.mark.parametrize(
    "metric, maps",
    [
        (metrics.nss, (np.zeros((0, 2, 3)),)),
        (metrics.cc, (np.zeros((0, 2, 3)),)),
        (metrics.auc_judd, (np.zeros((0, 2, 3)),)),
        (metrics.auc_shuffled, (np.zeros((0, 2, 3)), F)),
    ],
)
def test_empty_batch_is_an_error(metric, maps):
    with pytest.raises(ValueError, match="the batch is empty"):
        metric(np.zeros((0, 2, 3)), *maps)


def test_step_size_is_bounded():
    with pytest.raises(ValueError, match=r"step_size must be in \[0.0001, 1\]"):
        metrics.auc_borji(S, F, step_size=1e-6)


def test_identical_and_affine_maps():
    saliency, _ = random_case(2)
    assert metrics.cc(saliency, saliency) == pytest.approx(1.0, abs=1e-12)
    assert metrics.cc(saliency, 3 * saliency + 7) == pytest.approx(1.0, abs=1e-12)
    assert metrics.cc(-saliency, saliency) == pytest.approx(-1.0, abs=1e-12)
    assert metrics.sim(saliency, saliency) == pytest.approx(1.0, abs=1e-12)
    assert metrics.sim(saliency, saliency, min_max=False) == pytest.approx(1.0, abs=1e-12)
    assert metrics.kld(saliency, saliency) == pytest.approx(0.0, abs=1e-12)
    assert metrics.emd(saliency, saliency, downsize=10) == pytest.approx(0.0, abs=1e-6)
    assert metrics.information_gain(saliency, saliency > 0.9, saliency) == pytest.approx(0.0)


def test_indicator_map_nss_closed_form():
    _, fixations = random_case(3, num_fixations=12)
    n, k = fixations.size, 12
    assert metrics.nss(fixations, fixations, ddof=0) == pytest.approx(np.sqrt((n - k) / k))
    assert metrics.auc_judd(fixations, fixations) == 1.0
    # Negatives are all pixels, the fixated ones included (tied: half credit).
    assert metrics.auc_borji(1 - fixations, fixations, exact=True) == pytest.approx(0.5 * k / n)
    # Judd's curve only has thresholds at fixated values: from (0, 0) straight to (1, 1).
    assert metrics.auc_judd(1 - fixations, fixations) == 0.5


def test_emd_moves_mass_by_its_distance():
    first = np.zeros((5, 9))
    second = np.zeros((5, 9))
    first[1, 2] = 1
    second[4, 6] = 1
    assert metrics.emd(first, second, downsize=1) == pytest.approx(5.0, abs=1e-5)


def mit_stepped_auc(positives, negative_sets, step):
    # Literal transcription of the MATLAB loops of AUC_Borji / AUC_shuffled.
    aucs = []
    for current in negative_sets:
        top = max(positives.max(), current.max())
        thresholds = np.arange(0, top + 1e-12, step)[::-1]
        tp = [0.0] + [np.mean(positives >= t) for t in thresholds] + [1.0]
        fp = [0.0] + [np.mean(current >= t) for t in thresholds] + [1.0]
        aucs.append(np.trapezoid(tp, fp))
    return np.mean(aucs)


def test_auc_borji_follows_mit_algorithm():
    saliency, fixations = random_case(4)
    normalised = (saliency - saliency.min()) / (saliency.max() - saliency.min())
    positives = normalised[fixations > 0]
    draws = np.random.default_rng(7).integers(0, saliency.size, (100, len(positives)))
    expected = mit_stepped_auc(positives, normalised.ravel()[draws], 0.1)
    assert metrics.auc_borji(saliency, fixations, seed=7) == pytest.approx(expected, abs=1e-12)
    assert metrics.auc_borji(saliency, fixations, seed=7) == metrics.auc_borji(
        saliency, fixations, seed=7
    )


def test_auc_shuffled_follows_mit_algorithm():
    saliency, fixations = random_case(5, num_fixations=30)
    _, other = random_case(6, num_fixations=50)
    normalised = (saliency - saliency.min()) / (saliency.max() - saliency.min())
    positives = normalised[fixations > 0]
    other_values = normalised.ravel()[np.flatnonzero(other)]
    rng = np.random.default_rng(3)
    # MATLAB's randperm: a random permutation per split, the first 30 kept.
    picks = np.argsort(rng.random((100, len(other_values))), axis=1)[:, :30]
    expected = mit_stepped_auc(positives, other_values[picks], 0.1)
    assert metrics.auc_shuffled(saliency, fixations, other, seed=3) == pytest.approx(expected)


def test_sampled_aucs_approach_exact_auc():
    saliency, fixations = random_case(8, shape=(60, 80), num_fixations=200)
    saliency = saliency + 3 * fixations * np.random.default_rng(0).random(saliency.shape)
    exact = metrics.auc_borji(saliency, fixations, exact=True)
    assert metrics.auc_borji(saliency, fixations, step_size=0.01) == pytest.approx(exact, abs=0.02)


def test_batched_forms_average_per_image_values():
    cases = [random_case(seed) for seed in range(3)]
    saliency = np.stack([c[0] for c in cases])
    fixations = np.stack([c[1] for c in cases])
    per_image = [metrics.nss(s, f) for s, f in cases]
    assert metrics.nss(saliency, fixations) == pytest.approx(np.mean(per_image))
    np.testing.assert_allclose(metrics.nss(saliency, fixations, reduction="none"), per_image)
    baseline = np.ones(saliency.shape[1:])  # shared by every image
    gains = metrics.information_gain(saliency, fixations, baseline, reduction="none")
    assert gains.shape == (3,)
    with pytest.raises(ValueError, match="one map per image"):
        metrics.nss(saliency, fixations[:2])
    with pytest.raises(ValueError, match="reduction"):
        metrics.nss(saliency, fixations, reduction="sum")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: metrics.nss(S, F[:, :2]), r"fixations must have the saliency map's shape"),
        (lambda: metrics.cc(S, G.T), r"density must have the saliency map's shape"),
        (lambda: metrics.auc_judd(S, np.zeros_like(F)), "no fixated pixel"),
        (lambda: metrics.nss(np.full((2, 3), np.nan), F), "NaN or infinite"),
        (lambda: metrics.kld(S, np.where(G > 0, np.inf, 0)), "NaN or infinite"),
        (lambda: metrics.sim(S.ravel(), G.ravel()), r"\(H, W\) map"),
        (lambda: metrics.nss(S, F, ddof=2), "ddof must be 0 or 1"),
        (lambda: metrics.auc_borji(S, F, num_splits=0), "num_splits must be >= 1"),
        (lambda: metrics.auc_shuffled(S, F, np.zeros_like(F)), "other_fixations has no"),
        (lambda: metrics.kld(S, -G), "density must be non-negative"),
        (lambda: metrics.auc_judd(S, np.ones_like(F)), "every pixel is fixated"),
        (lambda: metrics.nss(S, -F), "non-negative fixation map"),
        (lambda: metrics.auc_borji(S, 2 * F, count_duplicates=True), "needs exact=True"),
        (lambda: metrics.auc_shuffled(S, F, 1 - F, count_duplicates=True), "needs exact=True"),
    ],
)
def test_bad_input_gives_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_duplicates_collapse_by_default():
    counts = F * np.array([[1, 3, 1], [1, 1, 1]])  # pixel (0, 1) fixated three times
    assert metrics.nss(S, counts) == metrics.nss(S, F)
    assert metrics.nss(S, counts, count_duplicates=True) != metrics.nss(S, F)


def test_eps_is_matlab_eps():
    assert functional.EPS == 2.220446049250313e-16
