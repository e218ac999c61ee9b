"""The building blocks every model's networks are made of: VAE, CVAE and VAE-GAN.

A network here is a `vae.layers.Sequential` stack of layers with, for a conditional
model, the one-hot label joined in at one index of the stack: as a vector concatenated
to flattened features, or as `num_classes` constant planes stacked onto a feature map's
channels, so that every later convolution sees it. The model families differ only in
which layers their stacks hold; `vae.networks` builds the VAE's stacks from a
`ModelConfig` and `vae.vaegan` the VAE-GAN's from a `VaeGanConfig`, both from the
pieces here:

* `check_labels`: the label check every network makes before reading a label.
* `join_label`: a label joined to features, as a vector or as image planes.
* `normalize_activate_drop` and `dense_stack`: what follows a hidden layer,
  [BatchNorm] -> [activation] -> [Dropout], and a run of such dense layers.
* `dense_to_feature_map`: the dense layer and reshape a conv decoder starts with.
* `output_hw`: the spatial size a stack of convolutions and poolings leaves.
* `LabelledStack`: a network that runs its stack with the label joined in; the
  VAE-GAN's discriminator is one, and so are
* `GaussianEncoder`: images (and labels) -> `(loc, log_variance)` of q(z|x, y), and
* `LatentDecoder`: latent codes (and labels) -> per-pixel parameters of p(x|z, y).

A checkpoint finds each variable by its object path, attribute names and list indices
(`encoder/net/layers/3/w`), so the elements a block returns, in order, are part of the
format of every saved run: an activation function takes an index of its own although it
holds no variable, and so does a dropout layer, whose index also seeds its mask.
`tests/test_checkpoint_compatibility.py` holds the paths the saved runs have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import math
from typing import Any

import tensorflow as tf

from vae import layers


def check_labels(
    labels: tf.Tensor | None, num_classes: int, module: tf.Module
) -> tf.Tensor | None:
    """Returns `labels` as float32 `[batch, num_classes]`, or raises a clear error."""
    if num_classes == 0:
        if labels is not None:
            raise ValueError(
                f"{module.name}: this model is unconditional (num_classes=0) but was "
                "given labels; build it with num_classes > 0 to condition on them."
            )
        return None
    if labels is None:
        raise ValueError(
            f"{module.name}: this model is conditioned on {num_classes} classes and "
            f"needs one-hot labels [batch, {num_classes}]; none were given."
        )
    labels = tf.convert_to_tensor(labels, tf.float32)
    if labels.shape.rank != 2 or labels.shape[-1] != num_classes:
        raise ValueError(
            f"{module.name}: labels must be one-hot [batch, {num_classes}], got shape "
            f"{labels.shape}."
        )
    return labels


def join_label(x: tf.Tensor, labels: tf.Tensor, *, as_planes: bool) -> tf.Tensor:
    """Joins one-hot `labels` `[batch, num_classes]` to features `x`.

    Args:
        x: `[batch, features]`, or `[batch, height, width, channels]` with `as_planes`.
        labels: one-hot `[batch, num_classes]`, in `x`'s dtype.
        as_planes: stack `num_classes` constant planes, one per label entry, onto
            `x`'s channels (`[batch, height, width, channels + num_classes]`), so that
            every later convolution sees the label; else concatenate the label to the
            features (`[batch, features + num_classes]`).
    """
    if as_planes:
        labels = tf.ones_like(x[..., :1]) * labels[:, tf.newaxis, tf.newaxis, :]
    return tf.concat([x, labels], axis=-1)


def normalize_activate_drop(
    num_features: int,
    *,
    activation: str | None,
    batch_norm: bool,
    dropout_rate: float,
    name: str,
) -> list[Any]:
    """What follows a hidden layer: [BatchNorm] -> [activation] -> [Dropout].

    Args:
        num_features: size of the layer's last output dimension.
        activation: an activation name, applied after the batch norm; None when the
            layer applies its own activation, so the batch norm reads activations.
        batch_norm: whether to normalise.
        dropout_rate: dropout rate; 0 adds no dropout layer.
        name: prefix of the new layers' names.
    """
    block: list[Any] = []
    if batch_norm:
        block.append(layers.BatchNorm(num_features, name=f"{name}_batch_norm"))
    if activation is not None:
        block.append(layers.get_activation(activation))
    if dropout_rate > 0:
        block.append(layers.Dropout(dropout_rate, name=f"{name}_dropout"))
    return block


def _dense_layer(
    input_size: int,
    units: int,
    name: str,
    *,
    activation: str,
    batch_norm: bool,
    dropout_rate: float,
    norm_before_activation: bool,
) -> list[Any]:
    """Dense(units) and what follows it, the activation where the order puts it."""
    return [
        layers.Dense(
            input_size, units, None if norm_before_activation else activation, name=name
        ),
        *normalize_activate_drop(
            units,
            activation=activation if norm_before_activation else None,
            batch_norm=batch_norm,
            dropout_rate=dropout_rate,
            name=name,
        ),
    ]


def dense_stack(
    input_size: int,
    units: Sequence[int],
    *,
    activation: str,
    batch_norm: bool,
    dropout_rate: float,
    norm_before_activation: bool,
) -> tuple[list[Any], int]:
    """Hidden dense layers `dense_0`, `dense_1`, ..., each with what follows it.

    Args:
        input_size: size of the first layer's input.
        units: size of each layer.
        activation: hidden-layer activation name.
        batch_norm, dropout_rate: as `normalize_activate_drop` takes them.
        norm_before_activation: Dense -> [BatchNorm] -> activation (the VAE-GAN's
            order, reference 003's); False: Dense(activation) -> [BatchNorm] (the
            VAE's, reference 000's).

    Returns:
        The layers, and the size of the last one's output (`input_size` for none).
    """
    stack: list[Any] = []
    size = input_size
    for index, width in enumerate(units):
        stack += _dense_layer(
            size,
            width,
            f"dense_{index}",
            activation=activation,
            batch_norm=batch_norm,
            dropout_rate=dropout_rate,
            norm_before_activation=norm_before_activation,
        )
        size = width
    return stack, size


def dense_to_feature_map(
    input_size: int,
    shape: Sequence[int],
    *,
    activation: str,
    batch_norm: bool,
    dropout_rate: float,
    norm_before_activation: bool,
) -> list[Any]:
    """Where a conv decoder starts: a dense layer `dense_to_base` to `prod(shape)`
    units, with what follows it, reshaped to the feature map `shape`
    (`[height, width, channels]`); arguments as `dense_stack` takes them."""
    return [
        *_dense_layer(
            input_size,
            math.prod(shape),
            "dense_to_base",
            activation=activation,
            batch_norm=batch_norm,
            dropout_rate=dropout_rate,
            norm_before_activation=norm_before_activation,
        ),
        layers.Reshape(shape, name="reshape"),
    ]


def output_hw(stack: Sequence[Any], input_hw: Sequence[int]) -> tuple[int, int]:
    """Spatial size `(height, width)` after the layers of `stack` that change it
    (those with `output_shape_for`: convolutions, pooling, upsampling)."""
    height_width = tuple(input_hw)
    for layer in stack:
        if hasattr(layer, "output_shape_for"):
            height_width = layer.output_shape_for(height_width)
    return height_width


class LabelledStack(tf.Module):
    """A network that is a stack of layers reading its input and, for a conditional
    model, a one-hot label joined in at one index of the stack.

    A subclass names its layers (`build_layers`) and runs them in its `__call__`
    with `_apply`.
    """

    def __init__(
        self,
        config: Any,
        build_layers: Callable[[Any], tuple[Sequence[Any], int]],
        *,
        label_planes: bool,
        name: str | None = None,
    ):
        """Builds every layer (and so every variable).

        Args:
            config: a model config with `validate()`, `image_shape`, `num_classes`
                and `compute_dtype` ("float32" or "bfloat16"); validated here.
            build_layers: `build_layers(config)` returns the stack and the index of
                the layer before which a label joins; called in this module's name
                scope, so variable names read "encoder/conv_0/w".
            label_planes: the label joins as image planes (else as a vector).
            name: module name.

        Raises:
            ValueError: if `config` is invalid.
        """
        config.validate()  # Before any field is read.
        super().__init__(name=name)
        self.image_shape = tuple(config.image_shape)
        self.num_classes = config.num_classes
        self.label_planes = label_planes
        self.compute_dtype = tf.as_dtype(config.compute_dtype)
        with self.name_scope:
            stack, self._label_index = build_layers(config)
            self.net = layers.Sequential(stack, name="net")

    def _apply(
        self,
        inputs: tf.Tensor,
        labels: tf.Tensor | None,
        *,
        is_training: bool,
        seed: tf.Tensor | None,
        stop: int | None = None,
    ) -> tf.Tensor:
        """Runs the layers before `stop` (all by default), joining the label in.

        Args:
            inputs: float32 input of the first layer, `[batch, ...]`.
            labels: one-hot float32 `[batch, num_classes]` for a conditional network,
                else None.
            is_training: passed to layers that behave differently in training.
            seed: optional stateless seed `[2]` for dropout; every dropout layer folds
                in its own index, so no two share a mask.
            stop: index of the first layer not to run.

        Returns:
            The output of layer `stop - 1`, in the compute dtype.

        Raises:
            ValueError: labels missing for a conditional network, given to an
                unconditional one, or of the wrong shape.
        """
        labels = check_labels(labels, self.num_classes, self)
        x = tf.cast(tf.convert_to_tensor(inputs, tf.float32), self.compute_dtype)
        x = self.net(x, is_training=is_training, seed=seed, stop=self._label_index)
        if labels is not None:
            x = join_label(
                x, tf.cast(labels, self.compute_dtype), as_planes=self.label_planes
            )
        return self.net(
            x, is_training=is_training, seed=seed, start=self._label_index, stop=stop
        )


class GaussianEncoder(LabelledStack):
    """Maps images (and labels) to the mean and log-variance of a diagonal Gaussian.

    The stack ends with one Dense(2 * latent_dim) layer whose output is split into the
    two; that is the same function, with the same number of parameters, as two
    Dense(latent_dim) heads, and one matmul is cheaper.
    """

    def __init__(
        self,
        config: Any,
        build_layers: Callable[[Any], tuple[Sequence[Any], int]],
        *,
        label_planes: bool = False,
        log_variance_clip: float = 0.0,
        name: str | None = "encoder",
    ):
        """Builds every layer (and so every variable).

        Args:
            config: a model config, as `LabelledStack` takes it, with `latent_dim`.
            build_layers, label_planes, name: as `LabelledStack` takes them.
            log_variance_clip: if positive, the log-variance is clipped to
                `[-log_variance_clip, log_variance_clip]`.

        Raises:
            ValueError: if `config` is invalid.
        """
        super().__init__(config, build_layers, label_planes=label_planes, name=name)
        self.latent_dim = config.latent_dim
        self.log_variance_clip = float(log_variance_clip)

    @tf.Module.with_name_scope
    def __call__(
        self,
        images: tf.Tensor,
        labels: tf.Tensor | None = None,
        *,
        is_training: bool = False,
        seed: tf.Tensor | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Encodes a batch of images `[batch, *image_shape]`, as `_apply` takes them.

        Returns:
            `(loc, log_variance)`, each float32 `[batch, latent_dim]`, the log-variance
            clipped when `log_variance_clip` is positive.
        """
        outputs = self._apply(images, labels, is_training=is_training, seed=seed)
        # Distributions and losses are computed in float32 whatever the
        # network's compute dtype.
        loc, log_variance = tf.split(tf.cast(outputs, tf.float32), 2, axis=-1)
        if self.log_variance_clip > 0:
            # Clipped here, once, so that the KL term and the samples both see it.
            log_variance = tf.clip_by_value(
                log_variance, -self.log_variance_clip, self.log_variance_clip
            )
        return loc, log_variance


class LatentDecoder(LabelledStack):
    """Maps latent codes (and labels) to per-pixel parameters `[batch, *image_shape]`.

    Its stack reads `concat(z, label)`, or z for an unconditional model.
    """

    def __init__(
        self,
        config: Any,
        build_layers: Callable[[Any], Sequence[Any]],
        *,
        name: str | None = "decoder",
    ):
        """Builds every layer (and so every variable).

        Args:
            config: a model config, as `LabelledStack` takes it, with `latent_dim`.
            build_layers: `build_layers(config)` returns the stack.
            name: module name.

        Raises:
            ValueError: if `config` is invalid.
        """
        # The label joins z before the first layer.
        super().__init__(
            config,
            lambda config: (build_layers(config), 0),
            label_planes=False,
            name=name,
        )
        self.latent_dim = config.latent_dim

    @tf.Module.with_name_scope
    def __call__(
        self,
        z: tf.Tensor,
        labels: tf.Tensor | None = None,
        *,
        is_training: bool = False,
        seed: tf.Tensor | None = None,
    ) -> tf.Tensor:
        """Decodes a batch of latent codes `[batch, latent_dim]`, as `_apply` takes
        them.

        Returns:
            float32 `[batch, *image_shape]`: logits, or Gaussian means.
        """
        return tf.cast(
            self._apply(z, labels, is_training=is_training, seed=seed), tf.float32
        )
