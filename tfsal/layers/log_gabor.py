"""A fixed bank of log-Gabor filters applied in the frequency domain.

After Field, "Relations between the statistics of natural images and the response
properties of cortical cells", JOSA A 4(12), 1987, with the conventions of Kovesi's
phasecong3 (see ``log_gabor_filters`` for the formulas and the orientation convention).
This is the fixed, biologically plausible front end of the explainable saliency model
(Malladi et al., arXiv 2109.03575).
"""

import math

import keras
import tensorflow as tf

from tfsal.layers import log_gabor_filters as filters_lib
from tfsal.layers.colour import accepted_input_channels, colour_channel_names, convert_colour

PADDING_MODES = ("none", "reflect")
_CACHE_SIZE = 8


@keras.saving.register_keras_serializable(package="tfsal")
class LogGaborBank(keras.layers.Layer):
    """Log-Gabor response magnitudes of an RGB image in a perceptual colour space.

    The image is scaled from ``value_range`` to [0, 1], converted to ``colour_space``,
    and every colour channel is filtered by ``num_scales`` x ``num_orientations``
    log-Gabor filters. The output channels are ordered colour-major, then scale
    (finest first), then orientation: channel ``(c * num_scales + s) * num_orientations
    + o``. With ``lowpass_residual`` one low-pass channel per colour follows. The list
    ``feature_names`` gives (colour channel, scale, orientation) for every channel,
    with scale and orientation None for the residuals.

    Filters are built from the runtime height and width (cached per static shape), so
    any image size works, in eager mode, in a ``tf.function`` and in an exported
    SavedModel. The FFT maths runs in float32 whatever the dtype policy.

    With ``output_stride`` > 1 the layer returns magnitudes area-pooled to 1/stride of
    the input, computed cheaply: each filter's passband is demodulated to baseband and
    cropped (a box as large as the region where its gain is at least
    ``passband_threshold`` of its peak, with more samples along the filter's
    frequency axis, placed where natural images put the most response energy) before
    a small inverse FFT, and the envelope's samples are averaged per output cell.
    This approximates full resolution followed by area pooling: on 8 NUS images at
    288x384 and stride 8 the default threshold 0.2 gives a relative L2 error of 1.8%
    (worst channel 3.9%, correlation 0.9998); 0.1 gives 1.6% (worst 2.8%) for about
    35% more work (benchmarks/log_gabor_speed.py, BENCHMARKS.md). Height and width
    must be multiples of the stride.

    On CPU, ``tf.function(layer, jit_compile=True)`` (XLA) fuses the element-wise
    work around the FFTs and measured faster in the reduced-resolution mode, and so
    did single-threaded kernels (``TF_NUM_INTRAOP_THREADS=1``: its operations are
    small); see BENCHMARKS.md. The layer itself never requires XLA, so exported
    models run without it.

    Args:
        num_scales: number of scales, >= 1.
        num_orientations: number of orientations, >= 1.
        min_wavelength: wavelength in pixels of the finest scale, >= 2.
        mult: wavelength ratio between successive scales, > 1.
        sigma_onf: radial bandwidth parameter in (0, 1); 0.55 is about two octaves.
        angular_window: "cosine" (phasecong3) or "gaussian" (gaborconvolve).
        theta_sigma_ratio: Gaussian window only: orientation spacing over the window's
            standard deviation, > 0.
        colour_space: "yuv", "opponent", "lab", "rgb" or "gray".
        value_range: (low, high) of the input values, mapped to [0, 1].
        padding: "none" (circular filtering) or "reflect" (mirror the borders by the
            coarsest wavelength, rounded up to a multiple of the stride, to avoid
            wrap-around).
        lowpass_residual: whether to append one low-pass channel per colour.
        output_stride: 1 for full resolution, else the pooling factor.
        passband_threshold: reduced-resolution mode only: relative gain, in (0, 1),
            bounding the passband each filter keeps.
        return_complex: also return the even and odd responses (full resolution
            only); the output is then a dict with "magnitude", "even" and "odd".
        **kwargs: base layer arguments (name, dtype).
    """

    def __init__(
        self,
        num_scales: int = 4,
        num_orientations: int = 6,
        min_wavelength: float = 3.0,
        mult: float = 2.1,
        sigma_onf: float = 0.55,
        angular_window: str = "cosine",
        theta_sigma_ratio: float = 1.3,
        colour_space: str = "yuv",
        value_range: tuple[float, float] = (0.0, 255.0),
        padding: str = "none",
        lowpass_residual: bool = False,
        output_stride: int = 1,
        passband_threshold: float = 0.2,
        return_complex: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _require(num_scales, "num_scales", isinstance(num_scales, int) and num_scales >= 1, ">= 1")
        _require(
            num_orientations,
            "num_orientations",
            isinstance(num_orientations, int) and num_orientations >= 1,
            ">= 1",
        )
        _require(min_wavelength, "min_wavelength", min_wavelength >= 2, ">= 2 pixels")
        _require(mult, "mult", mult > 1, "> 1")
        _require(sigma_onf, "sigma_onf", 0 < sigma_onf < 1, "in (0, 1)")
        _require(
            angular_window,
            "angular_window",
            angular_window in filters_lib.ANGULAR_WINDOWS,
            f"one of {filters_lib.ANGULAR_WINDOWS}",
        )
        _require(theta_sigma_ratio, "theta_sigma_ratio", theta_sigma_ratio > 0, "> 0")
        colour_channel_names(colour_space)
        _require(
            value_range,
            "value_range",
            len(tuple(value_range)) == 2 and value_range[1] > value_range[0],
            "a pair (low, high) with high > low",
        )
        _require(padding, "padding", padding in PADDING_MODES, f"one of {PADDING_MODES}")
        _require(
            output_stride,
            "output_stride",
            isinstance(output_stride, int) and output_stride >= 1,
            "an int >= 1",
        )
        _require(passband_threshold, "passband_threshold", 0 < passband_threshold < 1, "in (0, 1)")
        _require(
            return_complex,
            "return_complex",
            not (return_complex and output_stride > 1),
            "False when output_stride > 1 (pooled responses have no phase)",
        )
        self.num_scales = num_scales
        self.num_orientations = num_orientations
        self.min_wavelength = float(min_wavelength)
        self.mult = float(mult)
        self.sigma_onf = float(sigma_onf)
        self.angular_window = angular_window
        self.theta_sigma_ratio = float(theta_sigma_ratio)
        self.colour_space = colour_space
        self.value_range = tuple(float(v) for v in value_range)
        self.padding = padding
        self.lowpass_residual = bool(lowpass_residual)
        self.output_stride = output_stride
        self.passband_threshold = float(passband_threshold)
        self.return_complex = bool(return_complex)
        self.spec = filters_lib.LogGaborSpec(
            num_scales,
            num_orientations,
            self.min_wavelength,
            self.mult,
            self.sigma_onf,
            angular_window,
            self.theta_sigma_ratio,
        )
        self.colour_channels = colour_channel_names(colour_space)
        largest = self.spec.largest_wavelength
        self.minimum_size = math.ceil(largest)
        self.pad_size = (
            output_stride * math.ceil(math.ceil(largest) / output_stride)
            if padding == "reflect"
            else 0
        )
        self._cache = _FilterCache()

    @property
    def feature_names(self) -> list[tuple[str, int | None, int | None]]:
        """(colour channel, scale, orientation) of every magnitude channel, in order."""
        names = [
            (colour, scale, orientation)
            for colour in self.colour_channels
            for scale in range(self.num_scales)
            for orientation in range(self.num_orientations)
        ]
        if self.lowpass_residual:
            names += [(colour, None, None) for colour in self.colour_channels]
        return names

    @property
    def num_features(self) -> int:
        """Number of magnitude channels."""
        return len(self.feature_names)

    def compute_output_shape(self, input_shape):
        """(batch, height / stride, width / stride, num_features), or a dict of them."""
        batch, height, width = input_shape[0], input_shape[1], input_shape[2]
        if self.output_stride > 1:
            height = None if height is None else height // self.output_stride
            width = None if width is None else width // self.output_stride
        magnitude = (batch, height, width, self.num_features)
        if not self.return_complex:
            return magnitude
        bands = (
            batch,
            height,
            width,
            len(self.colour_channels) * self.num_scales * self.num_orientations,
        )
        return {"magnitude": magnitude, "even": bands, "odd": bands}

    def call(self, inputs):
        """Filters a batch of images (B, H, W, channels) in ``value_range``."""
        self._check_input(inputs)
        low, high = self.value_range
        images = (tf.cast(inputs, tf.float32) - low) / (high - low)
        images = convert_colour(images, self.colour_space)
        if self.pad_size:
            pad = self.pad_size
            images = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        height, width = _spatial_size(images)
        images = tf.transpose(images, [0, 3, 1, 2])
        if self.output_stride == 1:
            spectrum = tf.signal.fft2d(tf.complex(images, 0.0))
            outputs = self._full_resolution(spectrum, height, width)
        else:
            outputs = self._reduced_resolution(_centred_spectrum(images), height, width)
        return tf.nest.map_structure(lambda x: tf.cast(x, self.compute_dtype), outputs)

    def _full_resolution(self, spectrum, height, width):
        plan = self._plan(
            height,
            width,
            lambda h, w: filters_lib.full_resolution_filters(
                h, w, self.spec, self.lowpass_residual
            ),
        )

        def filter_one_image(image_spectrum):
            # One colour channel and one scale at a time keeps the complex intermediate
            # small, which measured faster than large batches of transforms; the maps
            # of a colour channel are then moved to channels-last in one transpose,
            # which measured faster than one per scale or one for all channels.
            outputs = {"magnitude": [], "even": [], "odd": []}
            for channel in range(len(self.colour_channels)):
                maps = {"magnitude": [], "even": [], "odd": []}
                for scale in range(self.num_scales):
                    response = tf.signal.ifft2d(image_spectrum[channel, None] * plan[scale])
                    maps["magnitude"].append(_magnitude(response))
                    if self.return_complex:
                        maps["even"].append(tf.math.real(response))
                        maps["odd"].append(tf.math.imag(response))
                for key, values in maps.items():
                    if values:
                        outputs[key].append(tf.transpose(tf.concat(values, 0), [1, 2, 0]))
            if self.lowpass_residual:
                residual = tf.math.real(tf.signal.ifft2d(image_spectrum * plan[-1]))
                outputs["magnitude"].append(tf.transpose(residual, [1, 2, 0]))
            return {key: tf.concat(parts, axis=-1) for key, parts in outputs.items() if parts}

        num_bands = len(self.colour_channels) * self.num_scales * self.num_orientations
        static_size = [size if isinstance(size, int) else None for size in (height, width)]
        signature = {"magnitude": tf.TensorSpec([*static_size, self.num_features], tf.float32)}
        if self.return_complex:
            band_spec = tf.TensorSpec([*static_size, num_bands], tf.float32)
            signature.update(even=band_spec, odd=band_spec)
        if spectrum.shape[0] == 1:
            # A single image needs no loop (whose stacking would copy the output again).
            outputs = {key: value[None] for key, value in filter_one_image(spectrum[0]).items()}
        else:
            # Image by image: the working set of one image stays in cache.
            outputs = tf.map_fn(filter_one_image, spectrum, fn_output_signature=signature)
        outputs = {key: self._crop_padding(value) for key, value in outputs.items()}
        return outputs if self.return_complex else outputs["magnitude"]

    def _reduced_resolution(self, spectrum, height, width):
        # The spectrum is centred, so every crop is a plain slice (none crosses an edge).
        stride = self.output_stride
        if self._cache.crops is None:
            with tf.init_scope():
                crops = filters_lib.passband_crops(
                    self.spec, stride, self.passband_threshold, self.lowpass_residual
                )
                self._cache.groups = filters_lib.group_crops(crops)
                self._cache.crops = crops
        crops, groups = self._cache.crops, self._cache.groups
        plan = self._plan(height, width, lambda h, w: self._crop_plan(h, w, crops, groups))
        batch = tf.shape(spectrum)[0]
        colours = len(self.colour_channels)
        out_height, out_width = height // stride, width // stride
        pooled = []
        for group, (begins, crop_filters, corrections) in zip(groups, plan, strict=True):
            m_y, m_x = crops[group[0]].multipliers
            size = tf.stack([batch, colours, m_y * out_height, m_x * out_width])
            # One inverse FFT per crop: stacking the crops of a group for a batched
            # transform costs a copy of the crops that measured slower.
            for i in range(len(group)):
                cropped = tf.slice(spectrum, begins[i], size)
                response = tf.signal.ifft2d(cropped * crop_filters[i])
                if corrections is None:
                    values = _magnitude(response)
                else:
                    values = tf.math.real(response * corrections[i])
                # Area pooling of the m_y x m_x samples per cell (the filter's gain holds
                # the 1 / (m_y m_x) of the mean): x (contiguous) first.
                values = tf.reduce_sum(tf.reshape(values, [-1, m_x]), axis=1)
                values = tf.reduce_sum(tf.reshape(values, [-1, m_y, out_width]), axis=1)
                pooled.append(tf.reshape(values, [1, batch, colours, out_height, out_width]))
        bands = tf.concat(pooled, axis=0)  # (crop in group order, batch, colour, y, x)
        order = [index for group in groups for index in group]
        if order != sorted(order):
            bands = tf.gather(bands, [order.index(i) for i in range(len(order))])
        num_bands = self.num_scales * self.num_orientations
        # Channels colour-major, then scale and orientation (the crops' order).
        outputs = tf.transpose(bands[:num_bands], [1, 3, 4, 2, 0])
        outputs = tf.reshape(outputs, [batch, out_height, out_width, colours * num_bands])
        if self.lowpass_residual:
            outputs = tf.concat([outputs, tf.transpose(bands[num_bands], [0, 2, 3, 1])], axis=-1)
        return self._crop_padding(outputs, stride)

    def _crop_plan(self, height, width, crops, groups):
        """Slice starts, filters and residual corrections per group of equal crops.

        The corrections (None for band-pass groups, whose magnitudes need none) turn
        the residual's demodulated response back into the full-resolution one, whose
        real part is wanted. Everything is unstacked once here, so that no call slices
        stacked constants.
        """
        stride = self.output_stride
        plan = []
        for group in groups:
            members = [crops[i] for i in group]
            begins, crop_filters = filters_lib.cropped_filters(
                height, width, self.spec, stride, members
            )
            begins, crop_filters = tf.unstack(begins), tf.unstack(crop_filters)
            corrections = None
            if members[0].scale is None:
                m_y, m_x = members[0].multipliers
                corrections = [
                    filters_lib.demodulation_correction(
                        (begin[2] - height // 2, begin[3] - width // 2),
                        m_y * (height // stride),
                        m_x * (width // stride),
                    )
                    for begin in begins
                ]
            plan.append((begins, crop_filters, corrections))
        return plan

    def _crop_padding(self, images, stride=1):
        if not self.pad_size:
            return images
        crop = self.pad_size // stride
        return images[:, crop:-crop, crop:-crop]

    def _plan(self, height, width, build):
        """Filters for a size: cached when the size is static, else built in the graph."""
        if not (isinstance(height, int) and isinstance(width, int)):
            return build(height, width)
        plans = self._cache.plans
        key = (height, width)
        if key not in plans:
            with tf.init_scope():
                plan = build(height, width)
            if len(plans) >= _CACHE_SIZE:
                plans.pop(next(iter(plans)))
            plans[key] = plan
        return plans[key]

    def _check_input(self, inputs):
        shape = inputs.shape
        if shape.rank != 4:
            raise ValueError(
                "LogGaborBank expects images of rank 4 (batch, height, width, channels). "
                f"Received: inputs.shape={shape}"
            )
        if not inputs.dtype.is_floating:
            raise ValueError(
                f"LogGaborBank expects float inputs in value_range={self.value_range}; "
                f"cast them first. Received: inputs.dtype={inputs.dtype.name}"
            )
        accepted = accepted_input_channels(self.colour_space)
        if shape[-1] not in accepted:
            raise ValueError(
                f"colour_space={self.colour_space!r} needs {' or '.join(map(str, accepted))} "
                f"input channels. Received: inputs.shape={shape}"
            )
        for axis, size in (("height", shape[1]), ("width", shape[2])):
            if size is None:
                continue
            if size < self.minimum_size or (self.pad_size and size <= self.pad_size):
                raise ValueError(
                    f"Image {axis} must be at least {max(self.minimum_size, self.pad_size + 1)} "
                    f"pixels for a coarsest wavelength of {self.spec.largest_wavelength:.1f} "
                    f"(padding={self.padding!r}). Received: {axis}={size}"
                )
            if size % self.output_stride:
                raise ValueError(
                    f"Image {axis} must be a multiple of output_stride={self.output_stride}. "
                    f"Received: {axis}={size}"
                )

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            num_scales=self.num_scales,
            num_orientations=self.num_orientations,
            min_wavelength=self.min_wavelength,
            mult=self.mult,
            sigma_onf=self.sigma_onf,
            angular_window=self.angular_window,
            theta_sigma_ratio=self.theta_sigma_ratio,
            colour_space=self.colour_space,
            value_range=self.value_range,
            padding=self.padding,
            lowpass_residual=self.lowpass_residual,
            output_stride=self.output_stride,
            passband_threshold=self.passband_threshold,
            return_complex=self.return_complex,
        )
        return config


class _FilterCache:
    """Per-shape filters and crop layout, kept out of Keras and SavedModel tracking."""

    def __init__(self):
        self.crops = None
        self.groups = None
        self.plans = {}


def _require(value, name: str, condition: bool, expectation: str) -> None:
    if not condition:
        raise ValueError(f"{name} must be {expectation}. Received: {name}={value!r}")


def _centred_spectrum(images):
    """FFT of (..., H, W) real images with frequency 0 at index (H // 2, W // 2).

    For even sizes the images are multiplied by (-1)^(y + x) first, which shifts the
    spectrum by half its size without the copy that ``tf.signal.fftshift`` makes.
    """
    height, width = images.shape[-2], images.shape[-1]
    if height is None or width is None or height % 2 or width % 2:
        return tf.signal.fftshift(tf.signal.fft2d(tf.complex(images, 0.0)), axes=(-2, -1))
    rows = tf.range(height)[:, None]
    cols = tf.range(width)[None, :]
    signs = tf.cast(1 - 2 * ((rows + cols) % 2), images.dtype)
    return tf.signal.fft2d(tf.complex(images * signs, 0.0))


def _magnitude(response):
    """|response| of a complex tensor (measured twice as fast as ``tf.abs`` on CPU)."""
    return tf.sqrt(tf.square(tf.math.real(response)) + tf.square(tf.math.imag(response)))


def _spatial_size(images):
    """Static (height, width) as ints when known, else scalar tensors."""
    dynamic = tf.shape(images)
    height = images.shape[1] if images.shape[1] is not None else dynamic[1]
    width = images.shape[2] if images.shape[2] is not None else dynamic[2]
    return height, width
