"""The settings of a run of the main job (``python -m training.fit``), as dataclasses.

``FitConfig`` holds everything that defines a run, with ``OptimizerConfig``,
``LossConfig`` and ``DeriveConfig`` as its parts. A field left as ``None`` is filled
from the recipes (``training.recipes``) by ``training.configs.resolve``, which also
checks the values and reads and writes them as YAML.
"""

import dataclasses

# ``frozen_backbone_epochs`` value that keeps the encoder frozen for every epoch.
FROZEN_THROUGHOUT = -1


@dataclasses.dataclass
class OptimizerConfig:
    """Optimiser and learning-rate schedule.

    Attributes:
        name: ``"sgd"`` (with momentum) or ``"adam"``.
        learning_rate: the initial learning rate.
        momentum: SGD momentum (ignored by Adam).
        weight_decay: decoupled weight decay; 0 disables it.
        decay_per_epoch: the learning rate is multiplied by this after every epoch
            (1 keeps it constant).
        clip_norm: clip each gradient to this global norm; ``None`` disables it.
        frozen_backbone_epochs: train with the pretrained encoder frozen (its
            BatchNorms in inference mode) for this many epochs first (UNISAL's
            warm-up); 0 trains everything from the start, -1 keeps the encoder
            frozen for every epoch.
    """

    name: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    decay_per_epoch: float = 0.9
    clip_norm: float | None = None
    frozen_backbone_epochs: int = 0


@dataclasses.dataclass
class LossConfig:
    """Loss weights (see ``tfsal.losses``).

    Attributes:
        kld_weight: weight of KLD (log-density models).
        nss_weight: weight subtracted per unit of NSS (log-density models).
        cc_weight: weight subtracted per unit of CC (log-density models).
        epsilon: MSI-Net's KLD regulariser (map models).
    """

    kld_weight: float = 1.0
    nss_weight: float = 0.1
    cc_weight: float = 0.1
    epsilon: float = 1e-7


@dataclasses.dataclass
class DeriveConfig:
    """The explainable model of stage 2 (``tfsal.explain.derive``).

    Attributes:
        enabled: derive, score and export the explainable model.
        taps: the parent's taps to rebuild; ``None`` for the model's registered
            default taps.
        readout: ``"linear"`` (transparent, with per-feature contributions) or
            ``"decoder"`` (the parent's frozen decoder fed the reconstructions).
        readout_epochs: epochs of fitting the linear readout to the parent's saliency;
            ``None`` for the recipe's, else 5.
        fine_tune_epochs: epochs of fine-tuning reconstructions and readout together.
        learning_rate: Adam learning rate of the readout (fitting and fine-tuning);
            ``None`` for the recipe's, else 0.05.
        reconstruction_learning_rate: Adam learning rate of the reconstructions in
            fine-tuning (the readout's 0.05 destroyed them on NUS).
        blur_sigma: blur of the linear readout's logits, in input pixels; ``None``
            for the recipe's (the pop-out recipe's 1.5), else 4.
        context_sigmas: blurs, in input pixels, of further copies of the linear
            readout per tap, each with its own vector (``tfsal.explain.TapReadout``);
            ``None`` for the recipe's (the pop-out recipe's one 12-pixel copy), else
            none.
        prior_widths: widths of the linear readout's centre-prior maps, in half-image
            units (``tfsal.explain.CentrePrior``); ``None`` for the recipe's, else
            the layer's defaults (0.25, 0.5, 1).
        image_normalisation: also feed the reconstructions every log-Gabor channel
            divided by its mean over the image (``tfsal.explain.ImageNormalisation``);
            ``None`` for the recipe's choice (the pop-out recipe turns it on), else off.
        reconstruction_kernel_size: odd k: every tap's reconstruction reads the
            log-Gabor features of the k×k tap cells around each pixel (a linear
            convolution); ``None`` for the recipe's, else 1.
        normalisation_statistics: the normalised copies of ``image_normalisation``:
            ``"ratio"`` (each channel over its image mean), ``"excess"`` (each
            channel's energy beyond its share in the image) and/or ``"local"``
            (each channel over its surround's mean); ``None`` for the
            recipe's (the pop-out recipe's ``["excess"]``), else ``["ratio"]``.
        normalisation_sigma: the surround of the ``"local"`` normalised copy (each
            channel over its Gaussian-weighted mean around the pixel), in input
            pixels, or a list of surrounds, one ``"local"`` copy each (centre-surround
            contrast at several scales); ``None`` for the recipe's, else 32.
        prior_scale: the fitted centre prior's weights are multiplied by this after
            fitting: below 1 the model keeps less of the centre bias it learnt from
            its parent, trading CC and NSS for sAUC (which discounts centre bias);
            ``None`` for the recipe's, else 1.
        pooled_banks: one log-Gabor bank at the finest tap stride, its magnitudes
            area-pooled for the coarser taps (a third of the banks' cost); ``None``
            for the recipe's choice, else one bank per tap stride.
        batch_size: images per batch of the derivation; ``None`` for ``batch_size``.
        max_images: derive from at most this many training images (the first of the
            seeded training order); ``None`` for the recipe's cap, else all of them.
    """

    enabled: bool = True
    taps: list[str] | None = None
    readout: str = "linear"
    readout_epochs: int | None = None
    fine_tune_epochs: int = 0
    learning_rate: float | None = None
    reconstruction_learning_rate: float = 5e-4
    blur_sigma: float | None = None
    context_sigmas: list[float] | None = None
    prior_widths: list[float] | None = None
    image_normalisation: bool | None = None
    reconstruction_kernel_size: int | None = None
    normalisation_statistics: list[str] | None = None
    normalisation_sigma: float | list[float] | None = None
    pooled_banks: bool | None = None
    prior_scale: float | None = None
    batch_size: int | None = None
    max_images: int | None = None


@dataclasses.dataclass
class FitConfig:
    """Everything that defines a run of the main job.

    Attributes:
        model: a registered model name (``tfsal.models.list_models()``).
        data: a data set spec, ``FORMAT:PATH`` or ``popout``.
        out: the output folder; ``None`` means ``runs/<timestamp>``.
        epochs: number of training epochs (upper bound with early stopping).
        batch_size: global batch size (split over replicas when distributed).
        image_size: ``[height, width]`` of the model input; ``None`` uses the
            model's default.
        resize: how images reach ``image_size``: ``"pad"`` (keep aspect ratio) or
            ``"stretch"``.
        augment: random horizontal flips during training.
        weights: a checkpoint of the whole model to start from.
        encoder_weights: pretrained encoder weights: ``"auto"`` (the shared
            ImageNet weights where the model has them), ``None``, or a path.
        val_fraction: share of the images held out for validation (used unless
            ``train_size``/``val_size`` are given); ``None`` (or ``null`` in a
            ``--config`` file) for the data set's recipe, else
            ``training.configs.DEFAULT_VAL_FRACTION``. A run's own ``config.yaml``
            always records the resolved value, and ``read_run_config`` refuses a
            ``null`` there.
        train_size: number of training images (with ``val_size``).
        val_size: number of validation images (with ``train_size``).
        max_images: use only the first this many images of the data set.
        seed: seeds the split, data order, augmentation and weight initialisation.
        early_stopping_patience: stop after this many epochs without a better
            validation CC; 0 disables early stopping.
        report_samples: number of validation images drawn in the report and
            TensorBoard.
        strategy: ``"auto"`` (multi-worker when ``TF_CONFIG`` is set, mirrored with
            several GPUs, else default), ``"mirrored"``, ``"multi_worker"`` or
            ``"default"``.
        optimizer: optimiser settings; per-model paper defaults when not given.
        loss: loss weights.
        derive: the explainable model's settings.
    """

    model: str = "cmrnet"
    data: str = "popout"
    out: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    image_size: list[int] | None = None
    resize: str = "pad"
    augment: bool = True
    weights: str | None = None
    encoder_weights: str | None = "auto"
    val_fraction: float | None = None
    train_size: int | None = None
    val_size: int | None = None
    max_images: int | None = None
    seed: int = 0
    early_stopping_patience: int = 3
    report_samples: int = 4
    strategy: str = "auto"
    optimizer: OptimizerConfig | None = None
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    derive: DeriveConfig = dataclasses.field(default_factory=DeriveConfig)
