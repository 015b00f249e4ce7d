"""Assembles the explainable model: log-Gabor banks, tap reconstructions, a readout.

One functional Keras model (DESIGN.md §1):

    image ─► LogGaborBank(output_stride=s) for each tap stride s (or, with
             ``pooled_banks``, one bank at the finest stride whose magnitudes are
             area-pooled for the coarser taps)
          ─► optionally ImageNormalisation: the magnitudes and per-image normalised
             copies of them (``"ratio"``, ``"excess"``, ``"local"``), so what is rare
             in the image or in its surround stands out
          ─► one reconstruction per tap: Â_t = scale(F_t) W_t + b_t (W_t a k×k
             convolution with ``reconstruction_kernel_size`` k > 1)
          ─► readout "linear":  logits = Σ_t upsample(blur(Â_t · v_t)) + centre prior
             readout "decoder": the parent's frozen decoder fed the Â_t

Its dict output holds ``"saliency"`` (of the parent's output kind: a log-density
after a log-softmax over the pixels, or the logits as a map), the reconstruction of
every tap (``reconstruction_key(tap)``) and, for ``linear``, ``"contributions"``:
(B, H, W, G), one channel per log-Gabor feature summed over the taps and a last
``"prior"`` channel (centre prior and constants), adding up to the logits (every
copy of a normalised feature counts in its group: ``FoldCopies`` adds them at the
tap's resolution, before the upsampling). Every layer is a registered Keras layer,
so the model saves to ``.keras``, reloads and exports as a SavedModel like any
other.
"""

from collections.abc import Sequence

import keras

from tfsal.conventions import CONTRIBUTIONS, LOG_DENSITY, SALIENCY, reconstruction_key
from tfsal.explain.centre_prior import CentrePrior
from tfsal.explain.contributions import (
    PRIOR_GROUP,
    FeatureContributions,
    FoldCopies,
    feature_group_name,
)
from tfsal.explain.image_normalisation import ImageNormalisation, local_surrounds
from tfsal.explain.tap_readout import TapReadout
from tfsal.explain.taps import Tap
from tfsal.layers.bilinear_upsampling import BilinearUpsampling2D
from tfsal.layers.log_gabor import LogGaborBank
from tfsal.layers.reconstruction import LinearReconstruction
from tfsal.layers.spatial_log_softmax import SpatialLogSoftmax

READOUTS = ("linear", "decoder")
_BANK_PREFIX = "log_gabor_1_"


def bank_name(stride: int) -> str:
    """The layer name of the log-Gabor features at ``stride`` (a bank, or a pooling)."""
    return f"{_BANK_PREFIX}{stride}"


def normalisation_name(stride: int) -> str:
    """The layer name of the per-image normalisation of the bank at ``stride``."""
    return f"image_normalisation_1_{stride}"


def tap_layer_name(tap: str) -> str:
    """The layer name of a tap's reconstruction (``decoder``) or readout (``linear``)."""
    return f"explain_{tap}"


def build_explainable_model(
    taps: Sequence[Tap],
    *,
    readout: str = "linear",
    output_kind: str = LOG_DENSITY,
    input_shape: tuple = (None, None, 3),
    bank_config: dict | None = None,
    blur_sigma: float = 1.0,
    context_sigmas: Sequence[float] = (),
    prior_widths: Sequence[float] | None = None,
    image_normalisation: bool = False,
    reconstruction_kernel_size: int = 1,
    normalisation_statistics: Sequence[str] = ("ratio",),
    pooled_banks: bool = False,
    normalisation_sigma: float | Sequence[float] = 32.0,
    decoder: keras.Model | None = None,
    name: str = "explainable",
) -> keras.Model:
    """Builds an (unfitted) explainable model for ``taps``.

    Args:
        taps: the taps to rebuild, with their channels and strides.
        readout: ``"linear"`` or ``"decoder"``.
        output_kind: the parent's output kind, ``"log_density"`` or ``"map"``.
        input_shape: (H, W, 3) of the image input (None for any size).
        bank_config: ``LogGaborBank`` arguments shared by every bank (not
            ``output_stride``).
        blur_sigma: ``linear`` only: the logits' blur in input pixels (divided by
            each tap's stride).
        context_sigmas: ``linear`` only: blurs, in input pixels (divided by each
            tap's stride), of further readout copies per tap (``TapReadout``).
        prior_widths: ``linear`` only: widths of the centre prior's maps.
        image_normalisation: feed every reconstruction the bank's magnitudes and
            per-image normalised copies of them (``ImageNormalisation``).
        normalisation_statistics: with ``image_normalisation``, the copies, in
            order, any of ``"ratio"`` (each channel over its image mean),
            ``"excess"`` (each channel's energy beyond its share in the image) and
            ``"local"`` (each channel over its Gaussian surround).
        reconstruction_kernel_size: odd k: every reconstruction reads the features
            of the k×k tap cells around each pixel (``LinearReconstruction``).
        normalisation_sigma: with the ``"local"`` statistic, the surround's
            standard deviation in input pixels (divided by each tap's stride), or
            several, each > 0 and once: one ``"local"`` copy per surround, a
            centre-surround contrast at each scale (``ImageNormalisation``'s
            ``local_sigmas``).
        pooled_banks: compute one log-Gabor bank, at the finest tap stride, and feed
            the coarser taps its magnitudes area-pooled to their stride. The bank's
            ``output_stride`` mode itself approximates full resolution followed by
            area pooling, so the pooled features stand for the coarser banks' (per
            channel CC >= 0.997 on NUS images, BENCHMARKS.md) at a third of the
            cost of three banks. Every tap stride must be a multiple of the finest.
        decoder: ``decoder`` only: a model from the taps (a list in ``taps`` order)
            to the saliency.
        name: the model's name.

    Returns:
        The functional model; fit it with ``tfsal.explain.derive``.
    """
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}. Received: readout={readout!r}")
    if readout == "decoder" and decoder is None:
        raise ValueError("readout='decoder' needs the parent's decoder (decoder=).")
    bank_config = dict(bank_config or {})
    if "output_stride" in bank_config:
        raise ValueError("bank_config must not set output_stride: each tap sets its own.")
    strides = sorted({tap.stride for tap in taps})
    if pooled_banks and any(stride % strides[0] for stride in strides):
        raise ValueError(
            f"pooled_banks needs every tap stride to be a multiple of the finest, "
            f"{strides[0]}; pass pooled_banks=False. Received: strides {strides}"
        )
    image = keras.Input(shape=tuple(input_shape), name="image")
    features, first_bank = {}, None
    for stride in strides:
        if pooled_banks and stride > strides[0]:
            factor = stride // strides[0]
            pool = keras.layers.AveragePooling2D(factor, name=bank_name(stride))
            features[stride] = pool(features[strides[0]])
        else:
            bank = LogGaborBank(output_stride=stride, name=bank_name(stride), **bank_config)
            features[stride] = bank(image)
            first_bank = bank if first_bank is None else first_bank
    copies = 1
    if image_normalisation:
        surrounds = local_surrounds(normalisation_sigma, "normalisation_sigma")
        for stride in strides:
            normalisation = ImageNormalisation(
                statistics=tuple(normalisation_statistics),
                local_sigmas=tuple(sigma / stride for sigma in surrounds),
                name=normalisation_name(stride),
            )
            features[stride] = normalisation(features[stride])
            copies = normalisation.copies
    grid = (len(first_bank.colour_channels), first_bank.num_scales, first_bank.num_orientations)

    outputs = {}
    reconstructions = []
    tap_logits, tap_contributions = [], []
    for tap in taps:
        if readout == "decoder":
            layer = LinearReconstruction(
                tap.channels,
                feature_grid=grid,
                kernel_size=reconstruction_kernel_size,
                feature_copies=copies,
                name=tap_layer_name(tap.name),
            )
            reconstruction = layer(features[tap.stride])
        else:
            layer = TapReadout(
                tap.channels,
                feature_grid=grid,
                blur_sigma=blur_sigma / tap.stride,
                context_sigmas=tuple(sigma / tap.stride for sigma in context_sigmas),
                kernel_size=reconstruction_kernel_size,
                feature_copies=copies,
                name=tap_layer_name(tap.name),
            )
            reconstruction, logits, contributions = layer(features[tap.stride])
            if copies > 1:  # before the upsampling: copies times fewer channels to upsample
                contributions = FoldCopies(copies, name=f"fold_{tap.name}")(contributions)
            if tap.stride > 1:
                upsample = BilinearUpsampling2D(tap.stride, name=f"upsample_{tap.name}")
                logits, contributions = upsample(logits), upsample(contributions)
            tap_logits.append(logits)
            tap_contributions.append(contributions)
        outputs[reconstruction_key(tap.name)] = reconstruction
        reconstructions.append(reconstruction)

    if readout == "decoder":
        decoder.trainable = False
        saliency = decoder(reconstructions)
    else:
        prior = CentrePrior(
            **({"widths": tuple(prior_widths)} if prior_widths else {}), name="centre_prior"
        )(image)
        logits = keras.layers.Add(name="logits")([*tap_logits, prior])
        names = [feature_group_name(*feature) for feature in first_bank.feature_names]
        outputs[CONTRIBUTIONS] = FeatureContributions([*names, PRIOR_GROUP], name="contributions")(
            [*tap_contributions, prior]
        )
        if output_kind == LOG_DENSITY:
            saliency = SpatialLogSoftmax(name="log_density")(logits)
        else:
            saliency = keras.layers.Identity(name="saliency_map")(logits)
    outputs = {SALIENCY: saliency, **outputs}
    return keras.Model(image, outputs, name=name)


def log_gabor_bank(model: keras.Model) -> LogGaborBank:
    """The (first) log-Gabor bank of an explainable model: its banks share one config."""
    for layer in model.layers:
        if isinstance(layer, LogGaborBank):
            return layer
    raise ValueError(f"Model {model.name!r} has no LogGaborBank layer.")


def bank_features(model: keras.Model, images) -> dict:
    """The log-Gabor magnitudes at every tap stride of an explainable model.

    Args:
        model: an explainable model.
        images: (B, H, W, 3) RGB images as the model takes them.

    Returns:
        ``{stride: (B, H / stride, W / stride, K)}``: each bank's output, or for
        the coarser taps of a ``pooled_banks`` model the finest bank's, pooled.
    """
    size = len(_BANK_PREFIX)
    layers = {
        int(layer.name[size:]): layer
        for layer in model.layers
        if layer.name.startswith(_BANK_PREFIX) and layer.name[size:].isdigit()
    }
    features = {}
    for stride in sorted(layers):  # the finest first: pooled strides read it
        layer = layers[stride]
        if isinstance(layer, LogGaborBank):
            features[stride] = layer(images)
        else:
            features[stride] = layer(features[min(features)])
    return features


def reconstruction_inputs(model: keras.Model, stride: int, features):
    """What the reconstructions at ``stride`` read, from the bank's output there.

    Args:
        model: an explainable model.
        stride: a tap stride of the model.
        features: (B, h, w, K) the output of the model's bank at ``stride``.

    Returns:
        The features, normalised per image (2K channels) if the model does so.
    """
    names = {layer.name for layer in model.layers}
    if normalisation_name(stride) in names:
        return model.get_layer(normalisation_name(stride))(features)
    return features


def tap_features(model: keras.Model, stride: int, images):
    """The features the reconstructions at ``stride`` read, from the images.

    Args:
        model: an explainable model.
        stride: a tap stride of the model.
        images: (B, H, W, 3) RGB images as the model takes them.

    Returns:
        (B, H / stride, W / stride, K'): the bank's output, through the per-image
        normalisation if the model has one.
    """
    return reconstruction_inputs(model, stride, bank_features(model, images)[stride])


def group_names(model: keras.Model) -> list[str]:
    """The names of the ``contributions`` channels of a ``linear`` explainable model.

    Raises:
        ValueError: if the model has no contributions (e.g. a ``decoder`` readout).
    """
    for layer in model.layers:
        if isinstance(layer, FeatureContributions):
            return list(layer.group_names)
    raise ValueError(
        f"Model {model.name!r} has no contributions output (only the 'linear' readout has)."
    )


def reconstruction_layers(model: keras.Model) -> dict[str, LinearReconstruction]:
    """Every tap's ``LinearReconstruction`` in an explainable model, by tap name."""
    found = {}
    prefix = tap_layer_name("")
    for layer in model.layers:
        if isinstance(layer, TapReadout):
            found[layer.name[len(prefix) :]] = layer.reconstruction
        elif isinstance(layer, LinearReconstruction) and layer.name.startswith(prefix):
            found[layer.name[len(prefix) :]] = layer
    return found


def tap_readouts(model: keras.Model) -> dict[str, TapReadout]:
    """Every tap's ``TapReadout`` in a ``linear`` explainable model, by tap name."""
    prefix = tap_layer_name("")
    return {
        layer.name[len(prefix) :]: layer for layer in model.layers if isinstance(layer, TapReadout)
    }
