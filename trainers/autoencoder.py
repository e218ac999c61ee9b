"""The autoencoder trainer of the toy 2-D experiment.

Training minimises the mean squared reconstruction error, as Keras's "mse"
loss does: the squared error averaged over the coordinates of each example,
then over the batch. A conditional autoencoder gets the batch's one-hot labels
("label_onehot"); an unconditional one gets none. How far reconstructions lie
from the toy's curves, the experiment's number, is measured by `vae.toy2d`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from trainers import base
from vae import autoencoder as autoencoder_lib
from vae import datasets


def squared_error_per_example(points: tf.Tensor, reconstructions: tf.Tensor) -> tf.Tensor:
    """Squared error averaged over each example's coordinates.

    Args:
        points: float32 `[batch, dim]`.
        reconstructions: float32 `[batch, dim]`.

    Returns:
        float32 `[batch]`; its batch mean is Keras's "mse" loss.
    """
    return tf.reduce_mean(tf.math.squared_difference(points, reconstructions), axis=-1)


class AutoencoderTrainer(base.Trainer):
    """Trains an `Autoencoder` on mean squared reconstruction error.

    Args:
        model: the autoencoder; a conditional one is given each batch's
            "label_onehot".
        optimizer: updates all of `model.trainable_variables`.
        config: loop settings.
        data: batches with "image" `[batch, dim]` and "label_onehot"
            `[batch, num_classes]` entries (as `vae.datasets` gives them).
        hooks: epoch-end hooks.
        name: module name.
        strategy: see `base.Trainer`.
    """

    def __init__(
        self,
        model: autoencoder_lib.Autoencoder,
        optimizer: Any,
        config: base.TrainerConfig,
        data: base.DataSource,
        hooks: Sequence[base.Hook] = (),
        name: str | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ):
        super().__init__(
            model=model,
            optimizers={"autoencoder": (optimizer, model.trainable_variables)},
            config=config,
            data=data,
            hooks=hooks,
            name=name,
            strategy=strategy,
        )

    def train_step(self, batch: Mapping[str, tf.Tensor], seed: tf.Tensor) -> base.Logs:
        del seed  # Deterministic: an autoencoder draws no noise.
        points = batch["image"]
        variables = self.optimized_variables["autoencoder"]
        with tf.GradientTape() as tape:
            reconstructions = self.model.reconstruct(
                points, datasets.conditioning_labels(self.model, batch)
            )
            loss = tf.reduce_mean(squared_error_per_example(points, reconstructions))
        gradients = tape.gradient(loss, variables)
        self.optimizers["autoencoder"].apply_gradients(zip(gradients, variables))
        return {"mse": loss}

    def eval_step(self, batch: Mapping[str, tf.Tensor]) -> base.Logs:
        # The distance to the manifold is measured afterwards in NumPy
        # (`vae.toy2d.manifold_distance_summary`): it has no closed form for
        # the arc.
        points = batch["image"]
        reconstructions = self.model.reconstruct(
            points, datasets.conditioning_labels(self.model, batch)
        )
        return {"mse": squared_error_per_example(points, reconstructions)}


def reconstruct_points(
    model: autoencoder_lib.Autoencoder, points: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """Reconstructions of `points`, with their labels for a conditional model.

    Args:
        model: the autoencoder.
        points: float `[n, dim]`.
        labels: integer `[n]` class indices (unused by an unconditional model).

    Returns:
        float32 `[n, dim]`.
    """
    label_onehot = None
    if model.is_conditional:
        label_onehot = tf.one_hot(
            np.asarray(labels), model.config.num_classes, dtype=tf.float32
        )
    return model.reconstruct(np.asarray(points, np.float32), label_onehot).numpy()
