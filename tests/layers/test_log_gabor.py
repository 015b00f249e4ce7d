import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.test_case import run_export_test, run_layer_test
from tfsal.layers import LogGaborBank

TINY = dict(num_scales=2, num_orientations=4, min_wavelength=3.0, mult=2.0)


def _numpy_filter(fy, fx, wavelength, angle, num_orientations, sigma_onf=0.55):
    """Independent float64 re-implementation of one phasecong3 filter (reference §1.1)."""
    fy, fx = np.atleast_1d(fy).astype(float), np.atleast_1d(fx).astype(float)
    radius = np.hypot(fx, fy)
    with np.errstate(divide="ignore"):
        radial = np.exp(-(np.log(radius * wavelength) ** 2) / (2 * np.log(sigma_onf) ** 2))
    radial[radius == 0] = 0
    lowpass = 1 / (1 + (radius / 0.45) ** 30)
    theta = np.arctan2(-fy, fx)
    delta = np.abs(np.angle(np.exp(1j * (theta - angle))))
    angular = (1 + np.cos(np.minimum(delta * num_orientations / 2, np.pi))) / 2
    return radial * lowpass * angular


def _gray(image):
    return image[None, :, :, None].astype("float32")


def _smooth_noise(shape, seed=0, without_nyquist=False):
    rng = np.random.default_rng(seed)
    spectrum = np.fft.fft2(rng.standard_normal(shape))
    fy, fx = np.meshgrid(np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1]), indexing="ij")
    radius = np.maximum(np.hypot(fx, fy), 1.0 / max(shape))
    spectrum = spectrum / radius  # 1/f amplitude, like natural images
    if without_nyquist:
        spectrum[(fy == -0.5) | (fx == -0.5)] = 0
    image = np.real(np.fft.ifft2(spectrum))
    return (image - image.min()) / np.ptp(image)


def _complex(outputs):
    return outputs["even"].numpy() + 1j * outputs["odd"].numpy()


@pytest.mark.parametrize("cycles", [(0, 8), (8, 0), (5, 5)])
def test_grating_magnitude_is_half_the_gain(cycles):
    v, u = cycles
    size = 64
    y, x = np.mgrid[:size, :size]
    grating = np.cos(2 * np.pi * (u * x + v * y) / size)
    bank = LogGaborBank(colour_space="gray", value_range=(0, 1))
    magnitude = bank(_gray(grating)).numpy()[0]
    fy, fx = np.array(v / size), np.array(u / size)
    for channel, (_, scale, orientation) in enumerate(bank.feature_names):
        wavelength = 3.0 * 2.1**scale
        angle = orientation * np.pi / 6
        gain = _numpy_filter(fy, fx, wavelength, angle, 6) + _numpy_filter(
            -fy, -fx, wavelength, angle, 6
        )
        np.testing.assert_allclose(magnitude[..., channel], gain[0] / 2, atol=2e-6)
    if u == 0 or v == 0:
        # Orientation 0 passes gratings along x; orientation 3 (90 degrees) along y.
        along_x, along_y = magnitude[..., 0:6:3].max(axis=(0, 1))
        assert (along_x > 0.1) == (u > 0) and (along_y > 0.1) == (v > 0)
        assert min(along_x, along_y) < 1e-6


def test_adding_a_constant_changes_no_response():
    image = np.random.default_rng(0).random((1, 40, 48, 3)).astype("float32") * 200
    bank = LogGaborBank(**TINY)
    np.testing.assert_allclose(bank(image + 30.0), bank(image), atol=2e-5)


def test_agrees_with_phasepack_phasecong():
    phasepack = pytest.importorskip("phasepack")
    image = _smooth_noise((64, 80))
    outputs = LogGaborBank(colour_space="gray", value_range=(0, 1), return_complex=True)(
        _gray(image)
    )
    ours = _complex(outputs)[0]
    reference = phasepack.phasecong(image, nscale=4, norient=6, minWaveLength=3, mult=2.1)[5]
    for scale in range(4):
        for orientation in range(6):
            expected = reference[orientation][scale]  # phasepack indexes EO[o][s]
            actual = ours[..., scale * 6 + orientation]
            assert np.abs(actual - expected).max() <= 1e-5 * np.abs(expected).max()


def _gaborconvolve_in_our_convention(eo, scale, orientation, num_orientations=6):
    # phasecongruency measures angles from +fy: its o' is our (o' - 3) mod 6, and for
    # o' < 3 its passband is the mirror of ours, so the response is the conjugate.
    theirs = (orientation + num_orientations // 2) % num_orientations
    response = eo[scale][theirs]
    return np.conj(response) if theirs < num_orientations // 2 else response


@pytest.mark.parametrize("shape", [(63, 81), (64, 80)])
def test_agrees_with_phasecongruency_gaborconvolve(shape):
    phasecongruency = pytest.importorskip("phasecongruency")
    image = _smooth_noise(shape, seed=1, without_nyquist=True)
    bank = LogGaborBank(
        colour_space="gray",
        value_range=(0, 1),
        angular_window="gaussian",
        mult=1.7,
        sigma_onf=0.65,
        theta_sigma_ratio=1.3,
        return_complex=True,
    )
    outputs = bank(_gray(image))
    ours, magnitude = _complex(outputs)[0], outputs["magnitude"].numpy()[0]
    eo, _ = phasecongruency.gaborconvolve(image, 4, 6, 3, 1.7, 0.65, 1.3)
    for scale in range(4):
        for orientation in range(6):
            expected = _gaborconvolve_in_our_convention(eo, scale, orientation)
            channel = scale * 6 + orientation
            peak = np.abs(expected).max()
            # The conjugate mapping cannot mirror the Nyquist row and column of even
            # sizes (measured 2e-3 relative on 1/f noise), so the image has none there.
            assert np.abs(ours[..., channel] - expected).max() <= 1e-5 * peak
            assert np.abs(magnitude[..., channel] - np.abs(expected)).max() <= 1e-5 * peak


def test_feature_names_follow_channel_order():
    bank = LogGaborBank(colour_space="rgb", value_range=(0, 1), lowpass_residual=True, **TINY)
    names = bank.feature_names
    assert len(names) == bank.num_features == 3 * 2 * 4 + 3
    assert names[:9] == [("R", 0, o) for o in range(4)] + [("R", 1, o) for o in range(4)] + [
        ("G", 0, 0)
    ]
    assert names[-3:] == [("R", None, None), ("G", None, None), ("B", None, None)]
    image = np.zeros((1, 32, 32, 3), "float32")
    image[..., 1] = _smooth_noise((32, 32))  # only the green channel varies
    output = bank(image).numpy()[0]
    energy = np.abs(output).sum(axis=(0, 1))
    for channel, (colour, scale, _) in enumerate(names):
        if scale is not None:
            assert (energy[channel] > 1e-3) == (colour == "G"), names[channel]


def test_lowpass_residual_of_a_flat_image_is_its_colour():
    image = np.full((1, 32, 32, 3), 0.25, "float32")
    output = LogGaborBank(colour_space="rgb", value_range=(0, 1), lowpass_residual=True, **TINY)(
        image
    ).numpy()
    np.testing.assert_allclose(output[..., :-3], 0, atol=1e-6)
    np.testing.assert_allclose(output[..., -3:], 0.25, atol=1e-6)


def test_complex_output_matches_magnitude():
    image = np.random.default_rng(2).random((2, 24, 28, 3)).astype("float32") * 255
    outputs = LogGaborBank(return_complex=True, **TINY)(image)
    np.testing.assert_allclose(np.abs(_complex(outputs)), outputs["magnitude"], atol=1e-5)


def test_reflect_padding_equals_filtering_a_mirrored_image():
    image = np.random.default_rng(3).random((1, 30, 36, 3)).astype("float32") * 255
    padded_bank = LogGaborBank(padding="reflect", **TINY)
    pad = padded_bank.pad_size
    mirrored = np.pad(image, [(0, 0), (pad, pad), (pad, pad), (0, 0)], mode="reflect")
    expected = LogGaborBank(**TINY)(mirrored).numpy()[:, pad:-pad, pad:-pad]
    np.testing.assert_allclose(padded_bank(image), expected, atol=1e-4)


def test_filters_follow_the_runtime_shape_in_a_tf_function():
    bank = LogGaborBank(**TINY)
    dynamic = tf.function(bank, input_signature=[tf.TensorSpec([None, None, None, 3])])
    for shape in [(1, 24, 32, 3), (2, 33, 17, 3)]:
        image = np.random.default_rng(0).random(shape).astype("float32") * 255
        np.testing.assert_allclose(dynamic(image), bank(image), atol=1e-5)


@pytest.mark.parametrize("stride", [2, 4])
def test_reduced_resolution_without_cropping_is_exact(stride):
    image = _smooth_noise((32, 48))[None, :, :, None].repeat(3, -1).astype("float32") * 255
    config = dict(TINY, lowpass_residual=True, angular_window="gaussian")
    full = LogGaborBank(**config)(image)
    expected = tf.nn.avg_pool2d(full, stride, stride, "VALID")
    # The Gaussian window is nowhere zero and a threshold this small keeps every
    # frequency, so every pixel is sampled: only the shift and pooling path is tested.
    reduced = LogGaborBank(output_stride=stride, passband_threshold=1e-30, **config)
    assert all(
        crop_multipliers == (stride, stride) for crop_multipliers in _multipliers(reduced, image)
    )
    np.testing.assert_allclose(reduced(image), expected, rtol=1e-4, atol=1e-4)


def _multipliers(bank, image):
    bank(image)
    return [crop.multipliers for crop in bank._cache.crops]


def test_reduced_resolution_error_against_full_resolution_pooling():
    image = np.stack([_smooth_noise((96, 128), seed=s) for s in range(3)], -1)[None] * 255
    image = image.astype("float32")
    expected = tf.nn.avg_pool2d(LogGaborBank()(image), 8, 8, "VALID").numpy()
    reduced = LogGaborBank(output_stride=8)(image).numpy()
    assert reduced.shape == (1, 12, 16, 72)
    relative_error = np.linalg.norm(reduced - expected) / np.linalg.norm(expected)
    assert relative_error < 0.05
    assert np.corrcoef(reduced.ravel(), expected.ravel())[0, 1] > 0.995


@pytest.mark.parametrize("shape", [(1, 40, 56, 3), (2, 48, 40, 3)])
def test_reduced_resolution_on_odd_grids_and_dynamic_shapes(shape):
    # Output grids of odd size (5 x 7) make odd crop sizes; the residual's real part
    # needs the crop's rotation undone. Every frequency is kept, so the result is exact.
    image = np.random.default_rng(7).random(shape).astype("float32") * 255
    config = dict(TINY, lowpass_residual=True, angular_window="gaussian")
    expected = tf.nn.avg_pool2d(LogGaborBank(**config)(image), 8, 8, "VALID")
    reduced = LogGaborBank(output_stride=8, passband_threshold=1e-30, **config)
    np.testing.assert_allclose(reduced(image), expected, rtol=1e-4, atol=1e-4)
    dynamic = tf.function(reduced, input_signature=[tf.TensorSpec([None, None, None, 3])])
    np.testing.assert_allclose(dynamic(image), expected, rtol=1e-4, atol=1e-4)


def test_reduced_resolution_with_cropping_follows_the_runtime_shape():
    image = np.random.default_rng(8).random((2, 64, 96, 3)).astype("float32") * 255
    bank = LogGaborBank(output_stride=8, lowpass_residual=True)
    dynamic = tf.function(bank, input_signature=[tf.TensorSpec([None, None, None, 3])])
    np.testing.assert_allclose(dynamic(image), bank(image), rtol=1e-4, atol=1e-4)


def test_crops_are_placed_inside_the_passband():
    bank = LogGaborBank(output_stride=8)
    bank(np.zeros((1, 64, 64, 3), "float32"))
    for crop in bank._cache.crops:
        frequency = 1.0 / (3.0 * 2.1**crop.scale)
        angle = crop.orientation * np.pi / 6
        peak = np.array([-np.sin(angle), np.cos(angle)]) * frequency  # (fy, fx)
        # The box is centred within half its size of the filter's peak.
        half_size = np.array(crop.multipliers) / 8 / 2
        assert np.all(np.abs(np.array(crop.centre) - peak) <= half_size), crop


@pytest.mark.parametrize("stride", [1, 8])
def test_xla_compiled_call_matches(stride):
    image = np.random.default_rng(9).random((2, 64, 80, 3)).astype("float32") * 255
    bank = LogGaborBank(output_stride=stride, lowpass_residual=True)
    compiled = tf.function(bank, jit_compile=True)
    np.testing.assert_allclose(compiled(image), bank(image), rtol=1e-4, atol=1e-4)


def test_mixed_precision_keeps_fft_in_float32():
    image = np.random.default_rng(4).random((1, 24, 24, 3)).astype("float32") * 255
    expected = LogGaborBank(**TINY)(image)
    bank = LogGaborBank(dtype="mixed_float16", **TINY)
    output = bank(image)
    assert output.dtype == tf.float16
    np.testing.assert_allclose(output.numpy().astype("float32"), expected, rtol=1e-2, atol=1e-3)


def test_layer_anatomy():
    image = np.random.default_rng(5).random((2, 16, 24, 3)).astype("float32") * 255
    run_layer_test(
        LogGaborBank,
        dict(TINY, colour_space="opponent", lowpass_residual=True),
        image,
        expected_output_shape=(2, 16, 24, 27),
        run_training_step=False,
        expect_trainable_weights=0,
    )
    run_layer_test(
        LogGaborBank,
        dict(TINY, output_stride=4, angular_window="gaussian"),
        image,
        expected_output_shape=(2, 4, 6, 24),
        run_training_step=False,
    )


@pytest.mark.slow
def test_export_reloads_in_a_fresh_process(tmp_path):
    inputs = keras.Input((None, None, 3))
    outputs = LogGaborBank(**TINY)(inputs)
    reduced = LogGaborBank(output_stride=4, **TINY)(inputs)
    model = keras.Model(inputs, {"full": outputs, "reduced": reduced}, name="log_gabor")
    image = np.random.default_rng(6).random((2, 32, 40, 3)).astype("float32") * 255
    run_export_test(model, image, tmp_path, fresh_process=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_scales=0), "num_scales must be >= 1. Received: num_scales=0"),
        (dict(num_orientations=0), "num_orientations"),
        (dict(sigma_onf=1.5), "sigma_onf must be in (0, 1). Received: sigma_onf=1.5"),
        (dict(min_wavelength=1), "min_wavelength"),
        (dict(mult=1.0), "mult"),
        (dict(angular_window="box"), "angular_window"),
        (dict(colour_space="hsv"), "colour_space"),
        (dict(value_range=(1, 0)), "value_range"),
        (dict(padding="zeros"), "padding"),
        (dict(output_stride=0), "output_stride"),
        (dict(passband_threshold=0.0), "passband_threshold"),
        (dict(output_stride=8, return_complex=True), "return_complex"),
    ],
)
def test_invalid_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LogGaborBank(**kwargs)


@pytest.mark.parametrize(
    "kwargs, image, message",
    [
        ({}, np.zeros((32, 32, 3), "float32"), "rank 4"),
        ({}, np.zeros((1, 32, 32, 1), "float32"), "needs 3 input channels"),
        ({}, np.zeros((1, 32, 32, 3), "uint8"), "inputs.dtype=uint8"),
        ({}, np.zeros((1, 16, 32, 3), "float32"), "height must be at least 28"),
        ({"padding": "reflect"}, np.zeros((1, 32, 28, 3), "float32"), "width must be at least"),
        ({"output_stride": 8}, np.zeros((1, 36, 32, 3), "float32"), "multiple of output_stride"),
    ],
)
def test_bad_inputs_are_named(kwargs, image, message):
    with pytest.raises(ValueError, match=message):
        LogGaborBank(**kwargs)(image)


@pytest.mark.parametrize(
    ("angle", "multipliers", "expected"),
    [
        (0.0, (5, 4), (4, 5)),  # vertical edges: frequency along x, longer side along x
        (np.pi / 2, (4, 5), (5, 4)),
        (np.pi / 6, (5, 4), (4, 5)),
        (np.pi / 3, (4, 5), (5, 4)),
        (0.0, (3, 3), (2, 4)),  # axis-aligned square box: one sample across for one along
        (np.pi / 2, (3, 3), (4, 2)),
        (0.0, (2, 2), (2, 2)),  # never below two samples per cell
        (0.0, (8, 8), (8, 8)),  # never beyond the stride
        (np.pi / 4, (5, 4), (5, 4)),  # no frequency axis to favour
    ],
)
def test_crop_boxes_are_longer_along_the_frequency_axis(angle, multipliers, expected):
    from tfsal.layers.log_gabor_filters import _orient_box

    assert _orient_box(multipliers, angle, stride=8) == expected


def test_reduced_resolution_with_an_odd_stride_and_odd_sizes():
    # Odd sizes take the fftshift path to the centred spectrum; nothing is cropped, so
    # the result is exact, and the cropping default agrees between static and dynamic.
    image = np.random.default_rng(9).random((1, 45, 57, 3)).astype("float32") * 255
    config = dict(TINY, lowpass_residual=True, angular_window="gaussian")
    expected = tf.nn.avg_pool2d(LogGaborBank(**config)(image), 3, 3, "VALID")
    exact = LogGaborBank(output_stride=3, passband_threshold=1e-30, **config)
    np.testing.assert_allclose(exact(image), expected, rtol=1e-4, atol=1e-4)
    bank = LogGaborBank(output_stride=3, lowpass_residual=True, **TINY)
    dynamic = tf.function(bank, input_signature=[tf.TensorSpec([None, None, None, 3])])
    np.testing.assert_allclose(dynamic(image), bank(image), rtol=1e-4, atol=1e-4)
