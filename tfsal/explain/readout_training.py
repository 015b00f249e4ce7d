"""Gradient fitting of an explainable model's readout to its parent's saliency."""

import math

import keras
import numpy as np
import tensorflow as tf

from tfsal.conventions import LOG_DENSITY, SALIENCY
from tfsal.explain import workers
from tfsal.explain.batches import batch_images, with_progress
from tfsal.explain.explainable_model import reconstruction_layers, tap_readouts
from tfsal.explain.feature_cache import FeatureCache, copy_weights, feature_head


class ReadoutTrainer:
    """Fits the readout (and, when fine-tuning, the reconstructions) to the parent.

    The loss compares the explainable saliency with the parent's on each batch:
    KLD(parent || explainable) for log-densities, the mean squared error for maps.
    Gradients are averaged over the workers of a ``MultiWorkerMirroredStrategy``
    with its all-reduce, so every worker applies the same update.

    Two sources of batches give the same updates: ``fit(batches, ...)`` runs the
    parent and the whole explainable model on every step; ``fit(cache, ...)`` with a
    ``FeatureCache`` of the banks' features and the parent's saliency runs only
    the model after its banks (``feature_head``), which is several times cheaper.

    Args:
        model: the explainable model.
        run_parent: images -> the parent's outputs (``"saliency"`` among them).
        kind: the output kind, ``"log_density"`` or ``"map"``.
        learning_rate: Adam's learning rate of the readout.
        reconstruction_learning_rate: Adam's learning rate of the reconstructions
            when fine-tuning, and of a readout this trainer has already fitted. Far
            smaller than the readout's: each reconstruction weight feeds many
            readout terms, and on NUS fine-tuning at the readout's 0.05 sent the
            loss from 0.29 to 152 and every tap's R² below -1. A fitted readout
            restarted at 0.05 is thrown off too: Adam's first steps move every
            weight by about its rate, and the loss went from 0.254 to 5.98.
        strategy: the distribution strategy, or ``None``.
        progress: show progress bars.
    """

    def __init__(
        self,
        model,
        run_parent,
        kind,
        learning_rate,
        strategy,
        progress,
        reconstruction_learning_rate=5e-4,
    ):
        self.model = model
        self.run_parent = run_parent
        self.kind = kind
        self.learning_rate = learning_rate
        self.reconstruction_learning_rate = reconstruction_learning_rate
        self.strategy = strategy
        self.progress = progress
        self._head = None
        self._readout_fitted = False

    @staticmethod
    def _variables(model, fine_tune):
        """Readout vectors and centre prior; with ``fine_tune``, every reconstruction.

        Returns:
            ``(readout variables, reconstruction variables)``.
        """
        readouts = tap_readouts(model)
        variables = [weight for layer in readouts.values() for weight in layer.readout_weights()]
        if readouts:
            variables += model.get_layer("centre_prior").trainable_weights
        reconstruction = []
        if fine_tune:
            for layer in reconstruction_layers(model).values():
                reconstruction += [layer.kernel, layer.bias]
        return variables, reconstruction

    def loss(self, target, predicted):
        """KLD(parent || explainable) for log-densities, squared error for maps."""
        if self.kind == LOG_DENSITY:
            per_image = tf.reduce_sum(tf.exp(target) * (target - predicted), axis=(1, 2, 3))
        else:
            per_image = tf.reduce_mean(tf.square(target - predicted), axis=(1, 2, 3))
        return tf.reduce_mean(per_image)

    def _example(self, batch, cached: bool):
        """``(model inputs, the parent's saliency)`` of one batch or cache entry."""
        if cached:
            features, target = batch
            images = tf.zeros((*target.shape[:3], self.model.input.shape[-1]))
            return [images, *(tf.constant(f) for f in features)], tf.constant(target)
        images = batch_images(batch)
        return [images], self.run_parent(images)[SALIENCY]

    def _forward(self, inputs):
        if len(inputs) == 1:
            return self.model(inputs[0], training=False)[SALIENCY]
        return self._head(inputs, training=False)

    def fit(self, batches, epochs: int, fine_tune: bool) -> None:
        """Runs ``epochs`` over ``batches`` (image batches or a ``FeatureCache``).

        ``fine_tune`` also trains the reconstructions.
        """
        cached = isinstance(batches, FeatureCache)
        if cached:
            if self._head is None:
                self._head = feature_head(self.model)
            else:
                copy_weights(self.model, self._head)
        trained = self._head if cached else self.model
        readout, reconstruction = self._variables(trained, fine_tune)
        variables = readout + reconstruction
        readout_rate = self.learning_rate
        if fine_tune and self._readout_fitted:  # refine it, do not refit it
            readout_rate = self.reconstruction_learning_rate
        rates = {"readout": readout_rate, "reconstruction": self.reconstruction_learning_rate}
        optimizers = {name: keras.optimizers.Adam(rate) for name, rate in rates.items()}

        @tf.function(reduce_retracing=True)
        def gradients(inputs, target):
            with tf.GradientTape() as tape:
                loss = self.loss(tf.stop_gradient(target), self._forward(inputs))
            return loss, tape.gradient(loss, variables)

        count = workers.num_workers(self.strategy)
        label = "fine-tuning reconstructions and readout" if fine_tune else "readout"
        for epoch in range(1, epochs + 1):
            # Cosine decay per epoch: a full step first, small steps to settle (a
            # constant rate oscillated on NUS after three epochs).
            decay = 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))
            for name, optimizer in optimizers.items():
                optimizer.learning_rate.assign(rates[name] * decay)
            losses = []
            for batch in with_progress(batches, f"{label}: epoch {epoch}/{epochs}", self.progress):
                loss, grads = gradients(*self._example(batch, cached))
                grads = {str(i): g.numpy() for i, g in enumerate(grads)}
                grads = workers.sum_over_workers(self.strategy, grads)
                pairs = [(grads[str(i)] / count, v) for i, v in enumerate(variables)]
                # The decoder readout has no readout variables, only reconstructions.
                if readout:
                    optimizers["readout"].apply_gradients(pairs[: len(readout)])
                if reconstruction:
                    optimizers["reconstruction"].apply_gradients(pairs[len(readout) :])
                losses.append(float(loss))
            if self.progress:
                print(f"  loss {np.mean(losses):.4f}")
        if cached:
            copy_weights(self._head, self.model)
        self._readout_fitted = self._readout_fitted or (bool(readout) and epochs > 0)
