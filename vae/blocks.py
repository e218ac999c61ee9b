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
* `output_hw`: the spatial size a stack of convolutions and poolings leaves.
* `GaussianEncoder`: images (and labels) -> `(loc, log_variance)` of q(z|x, y).
* `LatentDecoder`: latent codes (and labels) -> per-pixel parameters of p(x|z, y).

A checkpoint finds each variable by its object path, attribute names and list indices
(`encoder/net/layers/3/w`), so the elements a block returns, in order, are part of the
format of every saved run: an activation function takes an index of its own although it
holds no variable, and so does a dropout layer, whose index also seeds its mask.
`tests/test_checkpoint_compatibility.py` holds the paths the saved runs have.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import tensorflow as tf

from vae import layers


def check_labels(labels: tf.Tensor | None, num_classes: int,
                 module: tf.Module) -> tf.Tensor | None:
    """Returns `labels` as float32 `[batch, num_classes]`, or raises a clear error."""
    if num_classes == 0:
        if labels is not None:
            raise ValueError(
                f"{module.name}: this model is unconditional (num_classes=0) but was "
                "given labels; build it with num_classes > 0 to condition on them.")
        return None
    if labels is None:
        raise ValueError(
            f"{module.name}: this model is conditioned on {num_classes} classes and needs "
            f"one-hot labels [batch, {num_classes}]; none were given.")
    labels = tf.convert_to_tensor(labels, tf.float32)
    if labels.shape.rank != 2 or labels.shape[-1] != num_classes:
        raise ValueError(
            f"{module.name}: labels must be one-hot [batch, {num_classes}], got shape "
            f"{labels.shape}.")
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


def normalize_activate_drop(num_features: int, *, activation: str | None,
                            batch_norm: bool, dropout_rate: float,
                            name: str) -> list[Any]:
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


def dense_stack(input_size: int, units: Sequence[int], *, activation: str,
                batch_norm: bool, dropout_rate: float,
                norm_before_activation: bool) -> tuple[list[Any], int]:
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
        name = f"dense_{index}"
        stack.append(layers.Dense(size, width,
                                  None if norm_before_activation else activation,
                                  name=name))
        stack += normalize_activate_drop(
            width, activation=activation if norm_before_activation else None,
            batch_norm=batch_norm, dropout_rate=dropout_rate, name=name)
        size = width
    return stack, size


def output_hw(stack: Sequence[Any], input_hw: Sequence[int]) -> tuple[int, int]:
    """Spatial size `(height, width)` after the layers of `stack` that change it
    (those with `output_shape_for`: convolutions, pooling, upsampling)."""
    height_width = tuple(input_hw)
    for layer in stack:
        if hasattr(layer, "output_shape_for"):
            height_width = layer.output_shape_for(height_width)
    return height_width


class GaussianEncoder(tf.Module):
    """Maps images (and labels) to the mean and log-variance of a diagonal Gaussian.

    The stack ends with one Dense(2 * latent_dim) layer whose output is split into the
    two; that is the same function, with the same number of parameters, as two
    Dense(latent_dim) heads, and one matmul is cheaper.
    """

    def __init__(self, build_layers: Callable[[], tuple[list[Any], int]], *,
                 latent_dim: int, image_shape: Sequence[int], num_classes: int,
                 label_planes: bool, compute_dtype: str,
                 log_variance_clip: float = 0.0, name: str | None = "encoder"):
        """Builds every layer (and so every variable).

        Args:
            build_layers: returns the stack and the index of the layer before which
                a label joins; called in this module's name scope, so variable names
                read "encoder/conv_0/w".
            latent_dim: number of latent dimensions.
            image_shape: shape of one image.
            num_classes: 0 for an unconditional encoder, else the label's size.
            label_planes: the label joins as image planes (else as a vector).
            compute_dtype: "float32" or "bfloat16".
            log_variance_clip: if positive, the log-variance is clipped to
                `[-log_variance_clip, log_variance_clip]`.
            name: module name.
        """
        super().__init__(name=name)
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        self.label_planes = label_planes
        self.compute_dtype = tf.as_dtype(compute_dtype)
        self.log_variance_clip = float(log_variance_clip)
        with self.name_scope:
            stack, self._label_index = build_layers()
            self.net = layers.Sequential(stack, name="net")

    @tf.Module.with_name_scope
    def __call__(self, images: tf.Tensor, labels: tf.Tensor | None = None, *,
                 is_training: bool = False,
                 seed: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor]:
        """Encodes a batch.

        Args:
            images: float32 `[batch, *image_shape]`.
            labels: one-hot float32 `[batch, num_classes]` for a conditional model, else
                None.
            is_training: passed to layers that behave differently in training.
            seed: optional stateless seed `[2]` for dropout; every dropout layer folds
                in its own index, so no two share a mask.

        Returns:
            `(loc, log_variance)`, each float32 `[batch, latent_dim]`, the log-variance
            clipped when `log_variance_clip` is positive.

        Raises:
            ValueError: labels missing for a conditional model, given to an
                unconditional one, or of the wrong shape.
        """
        labels = check_labels(labels, self.num_classes, self)
        x = tf.cast(tf.convert_to_tensor(images, tf.float32), self.compute_dtype)
        x = self.net(x, is_training=is_training, seed=seed, stop=self._label_index)
        if labels is not None:
            x = join_label(x, tf.cast(labels, self.compute_dtype),
                           as_planes=self.label_planes)
        outputs = self.net(x, is_training=is_training, seed=seed,
                           start=self._label_index)
        # Distributions and losses are computed in float32 whatever the
        # network's compute dtype.
        loc, log_variance = tf.split(tf.cast(outputs, tf.float32), 2, axis=-1)
        if self.log_variance_clip > 0:
            # Clipped here, once, so that the KL term and the samples both see it.
            log_variance = tf.clip_by_value(log_variance, -self.log_variance_clip,
                                            self.log_variance_clip)
        return loc, log_variance


class LatentDecoder(tf.Module):
    """Maps latent codes (and labels) to per-pixel parameters `[batch, *image_shape]`."""

    def __init__(self, build_layers: Callable[[], list[Any]], *, latent_dim: int,
                 image_shape: Sequence[int], num_classes: int, compute_dtype: str,
                 name: str | None = "decoder"):
        """Builds every layer (and so every variable).

        Args:
            build_layers: returns the stack, which reads `concat(z, label)` (or z);
                called in this module's name scope, so variable names read
                "decoder/output/w".
            latent_dim: number of latent dimensions.
            image_shape: shape of one image.
            num_classes: 0 for an unconditional decoder, else the label's size.
            compute_dtype: "float32" or "bfloat16".
            name: module name.
        """
        super().__init__(name=name)
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        self.compute_dtype = tf.as_dtype(compute_dtype)
        with self.name_scope:
            self.net = layers.Sequential(build_layers(), name="net")

    @tf.Module.with_name_scope
    def __call__(self, z: tf.Tensor, labels: tf.Tensor | None = None, *,
                 is_training: bool = False, seed: tf.Tensor | None = None) -> tf.Tensor:
        """Decodes a batch of latent codes.

        Args:
            z: float32 `[batch, latent_dim]`.
            labels: one-hot float32 `[batch, num_classes]` for a conditional model, else
                None.
            is_training: passed to layers that behave differently in training.
            seed: optional stateless seed `[2]` for dropout.

        Returns:
            float32 `[batch, *image_shape]`: logits, or Gaussian means.

        Raises:
            ValueError: labels missing for a conditional model, given to an
                unconditional one, or of the wrong shape.
        """
        z = tf.cast(tf.convert_to_tensor(z, tf.float32), self.compute_dtype)
        labels = check_labels(labels, self.num_classes, self)
        if labels is not None:
            z = join_label(z, tf.cast(labels, self.compute_dtype), as_planes=False)
        return tf.cast(self.net(z, is_training=is_training, seed=seed), tf.float32)
