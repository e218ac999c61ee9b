"""A small convolutional image classifier, used to judge generated images.

Sample-quality measures such as the Frechet distance and the classifier score need
a network that knows the data: the Frechet distance compares the statistics of its
penultimate-layer features on real and on generated images, the classifier score and
the conditional accuracy read its class probabilities. This module defines that
network; training it (and caching the trained weights) is
`trainers.classification`'s job, so that `vae/` holds no training loop.

The network is the classic small MNIST CNN, built from `vae.layers`:

    for f in filters:  Conv2D(f, kernel_size, SAME, activation) -> 2x2 max-pool
    flatten -> Dense(dense_units, activation)      <- `features`, [batch, dense_units]
            -> Dropout(dropout_rate) -> Dense(num_classes)   <- `logits`

With the defaults (filters (32, 64), 128 dense units, dropout 0.5) it has about 420k
parameters and reaches 99.2% test accuracy on MNIST after 5 epochs of Adam (see
`trainers.classification.TrainingRecipe`).
Pooling uses SAME padding, so odd feature-map sizes round up instead of losing a row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import dataclasses
import math
from typing import Any

import tensorflow as tf

from vae import config_dicts
from vae import layers


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """Everything needed to build a `Classifier`.

    Lists given for tuple fields are turned into tuples, so a config read back from
    JSON compares equal to the one written in code (the cache in
    `trainers.classification` relies on this). Call `validate()` to check the values
    (the `Classifier` constructor does).

    Attributes:
        image_shape: `(height, width, channels)` of one image.
        num_classes: number of classes K, at least 2.
        filters: channels of each convolution; each is followed by a 2x2 max-pool.
        kernel_size: kernel size of every convolution.
        dense_units: size of the penultimate layer, which is the feature dimension.
        dropout_rate: dropout before the last layer during training, in [0, 1).
        activation: hidden-layer activation, a name from `vae.layers.ACTIVATION_NAMES`.
    """

    image_shape: tuple[int, ...] = (28, 28, 1)
    num_classes: int = 10
    filters: tuple[int, ...] = (32, 64)
    kernel_size: int = 3
    dense_units: int = 128
    dropout_rate: float = 0.5
    activation: str = "relu"

    def __post_init__(self):
        for name in ("image_shape", "filters"):
            value = getattr(self, name)
            if isinstance(value, list):
                # The dataclass is frozen, so go around its __setattr__.
                object.__setattr__(self, name, tuple(value))

    def validate(self) -> None:
        """Checks every field.

        Raises:
            ValueError: naming the first bad field, its value and what was expected.
        """
        if (
            not isinstance(self.image_shape, tuple)
            or len(self.image_shape) != 3
            or not all(config_dicts.is_int(v) and v > 0 for v in self.image_shape)
        ):
            self._fail(
                "image_shape", "(height, width, channels), three positive integers"
            )
        if not config_dicts.is_int(self.num_classes) or self.num_classes < 2:
            self._fail("num_classes", "an integer of at least 2")
        if (
            not isinstance(self.filters, tuple)
            or not self.filters
            or not all(config_dicts.is_int(v) and v > 0 for v in self.filters)
        ):
            self._fail("filters", "a non-empty tuple of positive integers")
        for name in ("kernel_size", "dense_units"):
            if not config_dicts.is_int(getattr(self, name)) or getattr(self, name) <= 0:
                self._fail(name, "a positive integer")
        rate = self.dropout_rate
        if (
            isinstance(rate, bool)
            or not isinstance(rate, (int, float))
            or not 0 <= rate < 1
        ):
            self._fail("dropout_rate", "a number in [0, 1)")
        if self.activation not in layers.ACTIVATION_NAMES:
            self._fail(
                "activation",
                "one of " + ", ".join(repr(name) for name in layers.ACTIVATION_NAMES),
            )

    def _fail(self, name: str, expected: str) -> None:
        raise ValueError(
            f"ClassifierConfig.{name} must be {expected}, got {getattr(self, name)!r}."
        )

    def feature_map_shape(self) -> tuple[int, int, int]:
        """Returns `(height, width, channels)` of the last pooled feature map."""
        height, width, _ = self.image_shape
        for _ in self.filters:
            # 2x2 pooling with stride 2 and SAME padding rounds odd sizes up.
            height, width = -(-height // 2), -(-width // 2)
        return height, width, self.filters[-1]

    def to_dict(self) -> dict[str, Any]:
        """Returns the fields as a dict of JSON-serialisable values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ClassifierConfig:
        """Builds and validates a config from `to_dict()` output, for example via JSON.

        Args:
            values: field name -> value; missing fields take their defaults.

        Returns:
            The validated config.

        Raises:
            ValueError: if `values` has a key that is not a field, or a bad value.
        """
        return config_dicts.from_dict(cls, values)


class Classifier(tf.Module):
    """Small CNN mapping images to class logits, with its penultimate features exposed.

    All variables are created in the constructor. `__call__` is `logits`.
    """

    def __init__(
        self, config: ClassifierConfig = ClassifierConfig(), name: str | None = None
    ):
        """Builds the layers, with all their variables.

        Args:
            config: classifier configuration; validated here.
            name: module name.

        Raises:
            ValueError: if `config` is invalid (see `ClassifierConfig.validate`).
        """
        super().__init__(name=name)
        config.validate()
        self.config = config
        self.image_shape = tuple(config.image_shape)
        self.num_classes = config.num_classes
        self.feature_dim = config.dense_units
        with self.name_scope:  # So variable names start with the classifier's name.
            channels = config.image_shape[-1]
            self.convolutions = []
            for index, filters in enumerate(config.filters):
                self.convolutions.append(
                    layers.Conv2D(
                        channels,
                        filters,
                        config.kernel_size,
                        stride=1,
                        padding="SAME",
                        activation=config.activation,
                        name=f"conv_{index}",
                    )
                )
                channels = filters
            self.flatten = layers.Flatten(name="flatten")
            self.hidden = layers.Dense(
                math.prod(config.feature_map_shape()),
                config.dense_units,
                config.activation,
                name="hidden",
            )
            self.dropout = layers.Dropout(config.dropout_rate, name="dropout")
            self.output_layer = layers.Dense(
                config.dense_units, config.num_classes, name="output"
            )

    def _check_images(self, images: tf.Tensor) -> tf.Tensor:
        images = tf.convert_to_tensor(images, tf.float32)
        if images.shape.rank != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"{self.name} was built for images of shape [batch, "
                f"{', '.join(map(str, self.image_shape))}], but got a tensor of shape "
                f"{images.shape.as_list() if images.shape.rank is not None else 'unknown'}."
            )
        return images

    @tf.Module.with_name_scope
    def features(self, images: tf.Tensor, *, is_training: bool = False) -> tf.Tensor:
        """Returns the penultimate-layer activations (the Frechet-distance features).

        Args:
            images: float32 `[batch, height, width, channels]`, pixels in [0, 1].
            is_training: accepted for a uniform signature; the features do not depend
                on it (dropout comes after them).

        Returns:
            float32 `[batch, feature_dim]`, where `feature_dim == config.dense_units`.
        """
        outputs = self._check_images(images)
        for convolution in self.convolutions:
            outputs = convolution(outputs, is_training=is_training)
            outputs = tf.nn.max_pool2d(outputs, ksize=2, strides=2, padding="SAME")
        return self.hidden(self.flatten(outputs), is_training=is_training)

    @tf.Module.with_name_scope
    def logits(
        self,
        images: tf.Tensor,
        *,
        is_training: bool = False,
        seed: tf.Tensor | Sequence[int] | None = None,
    ) -> tf.Tensor:
        """Returns unnormalised class scores.

        Args:
            images: float32 `[batch, height, width, channels]`, pixels in [0, 1].
            is_training: apply dropout to the features when True.
            seed: optional stateless seed (int `[2]`) for the dropout mask; None uses
                TensorFlow's stateful generator. Unused when not training.

        Returns:
            float32 `[batch, num_classes]`.
        """
        features = self.features(images, is_training=is_training)
        features = self.dropout(features, is_training=is_training, seed=seed)
        return self.output_layer(features, is_training=is_training)

    @tf.Module.with_name_scope
    def __call__(
        self,
        images: tf.Tensor,
        *,
        is_training: bool = False,
        seed: tf.Tensor | Sequence[int] | None = None,
    ) -> tf.Tensor:
        """Same as `logits`: float32 `[batch, num_classes]`."""
        return self.logits(images, is_training=is_training, seed=seed)

    @tf.Module.with_name_scope
    def probabilities(self, images: tf.Tensor) -> tf.Tensor:
        """Returns p(y|x), the softmax of the evaluation-mode logits.

        Args:
            images: float32 `[batch, height, width, channels]`, pixels in [0, 1].

        Returns:
            float32 `[batch, num_classes]`, rows summing to 1.
        """
        return tf.nn.softmax(self.logits(images, is_training=False), axis=-1)
