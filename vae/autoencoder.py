"""A deterministic autoencoder, optionally conditioned on a class label.

This is the model of the 2-D "disconnected manifold" experiment (launch/toy2d.py).
The data lie near two curves that do not touch: an arc y = sin(x) and a circle
(see `vae.toy2d`). The autoencoder squeezes each 2-D point through a
one-number code and back:

    encoder: x [2] -> Dense(64, elu) -> Dense(64, elu) -> Dense(1) = code
    decoder: code [1] -> Dense(64, elu) -> Dense(64, elu) -> Dense(2) = x_hat

Both networks are continuous, so the decoder maps the code line onto one
connected curve in the plane. Two disconnected curves cannot both be traced
by one connected curve without a bridge between them, and reconstructions of
points whose code lands on the bridge fall between the curves.

The conditional variant feeds the one-hot label y to both halves:
encoder(concat(x, y)) and decoder(concat(code, y)). The label is the
discontinuity the networks cannot make themselves: for each label the decoder
is a separate curve, so each part of the manifold gets a code line of its own.
The same idea, with a Gaussian code, is the conditional VAE.

Following the Sonnet convention, sizes are given up front and every variable
exists once the constructor returns.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from vae import config_dicts
from vae import layers


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
    """Everything needed to build an `Autoencoder`.

    The defaults are the network of the toy experiment: 2-64-64-1-64-64-2 with
    ELU activations, unconditional.

    Attributes:
        input_dim: size of one example (2 for points in the plane).
        hidden_units: hidden layer sizes of the encoder; the decoder uses them
            in reverse order. May be empty (then both halves are linear).
        code_dim: size of the code between encoder and decoder.
        activation: hidden-layer activation, a name from
            `vae.layers.ACTIVATION_NAMES`. The code and the output are linear.
        num_classes: 0 for an unconditional autoencoder; K > 0 to condition
            encoder and decoder on a one-hot label of K classes.
    """

    input_dim: int = 2
    hidden_units: tuple[int, ...] = (64, 64)
    code_dim: int = 1
    activation: str = "elu"
    num_classes: int = 0

    def __post_init__(self):
        if isinstance(self.hidden_units, list):
            # Flags and JSON give lists; a tuple keeps the config hashable and
            # equal to one written in code. The dataclass is frozen.
            object.__setattr__(self, "hidden_units", tuple(self.hidden_units))

    def validate(self) -> None:
        """Checks every field.

        Raises:
            ValueError: naming the first bad field, its value and what was expected.
        """
        for name in ("input_dim", "code_dim"):
            if not config_dicts.is_int(getattr(self, name)) or getattr(self, name) <= 0:
                self._fail(name, "a positive integer")
        if not isinstance(self.hidden_units, tuple) or not all(
            config_dicts.is_int(units) and units > 0 for units in self.hidden_units
        ):
            self._fail("hidden_units", "a tuple of positive integers")
        if self.activation not in layers.ACTIVATION_NAMES:
            self._fail(
                "activation",
                "one of " + ", ".join(repr(name) for name in layers.ACTIVATION_NAMES),
            )
        if not config_dicts.is_int(self.num_classes) or self.num_classes < 0:
            self._fail("num_classes", "0 (unconditional) or a positive number of classes")

    def _fail(self, name: str, expected: str) -> None:
        raise ValueError(
            f"AutoencoderConfig.{name} must be {expected}, got {getattr(self, name)!r}."
        )

    @property
    def is_conditional(self) -> bool:
        """True when encoder and decoder also see a one-hot label."""
        return self.num_classes > 0


class Autoencoder(tf.Module):
    """Deterministic autoencoder `x -> code -> x_hat`, optionally label-conditioned.

    `encoder` and `decoder` are kept as attributes so that a trainer can reach
    either network's variables.

    Args:
        config: the architecture; validated here.
        name: module name.
    """

    def __init__(
        self, config: AutoencoderConfig = AutoencoderConfig(), name: str | None = None
    ):
        super().__init__(name=name)
        config.validate()
        self.config = config
        label_size = config.num_classes
        with self.name_scope:
            self.encoder = self._mlp(
                config.input_dim + label_size,
                config.hidden_units,
                config.code_dim,
                name="encoder",
            )
            self.decoder = self._mlp(
                config.code_dim + label_size,
                tuple(reversed(config.hidden_units)),
                config.input_dim,
                name="decoder",
            )

    def _mlp(
        self, input_size: int, hidden_units: tuple[int, ...], output_size: int, name: str
    ) -> layers.Sequential:
        stack = []
        # Layers are built before the Sequential that holds them, so they
        # need its scope here: otherwise encoder and decoder variables would
        # share names such as dense_0/w.
        with tf.name_scope(name):
            for index, units in enumerate(hidden_units):
                stack.append(
                    layers.Dense(
                        input_size, units, self.config.activation, name=f"dense_{index}"
                    )
                )
                input_size = units
            # A linear last layer: neither the code nor the points are bounded.
            stack.append(layers.Dense(input_size, output_size, name="output"))
        return layers.Sequential(stack, name=name)

    @property
    def is_conditional(self) -> bool:
        """True when `encode` and `decode` need a one-hot label."""
        return self.config.is_conditional

    def _with_label(
        self, inputs: tf.Tensor, label_onehot: tf.Tensor | None, method: str
    ) -> tf.Tensor:
        """Appends the label to `inputs` for a conditional model, checking it."""
        if not self.is_conditional:
            if label_onehot is not None:
                # Ignoring it silently would hide a model built with the wrong
                # config; the caller is better told.
                raise ValueError(
                    f"{self.name}.{method} got label_onehot, but the model is "
                    "unconditional (num_classes=0); pass label_onehot=None, or "
                    "build the model with num_classes > 0 to condition on labels."
                )
            return inputs
        if label_onehot is None:
            raise ValueError(
                f"{self.name}.{method} needs label_onehot: the model is "
                f"conditioned on {self.config.num_classes} classes, so expected "
                f"a float tensor of shape [batch, {self.config.num_classes}]."
            )
        label_onehot = tf.convert_to_tensor(label_onehot, tf.float32)
        if (
            label_onehot.shape.rank != 2
            or label_onehot.shape[-1] != self.config.num_classes
        ):
            raise ValueError(
                f"{self.name}.{method} got label_onehot of shape "
                f"{label_onehot.shape.as_list()}; expected [batch, "
                f"{self.config.num_classes}] (one-hot over num_classes="
                f"{self.config.num_classes})."
            )
        batch, label_batch = inputs.shape[0], label_onehot.shape[0]
        if batch is not None and label_batch is not None and batch != label_batch:
            raise ValueError(
                f"{self.name}.{method} got {batch} examples but {label_batch} "
                "labels; expected one label per example."
            )
        return tf.concat([inputs, label_onehot], axis=-1)

    @tf.Module.with_name_scope
    def encode(self, x: tf.Tensor, label_onehot: tf.Tensor | None = None) -> tf.Tensor:
        """Maps examples to codes.

        Args:
            x: float32 `[batch, input_dim]`.
            label_onehot: float32 `[batch, num_classes]` for a conditional
                model; None for an unconditional one.

        Returns:
            float32 `[batch, code_dim]`.

        Raises:
            ValueError: if the label is missing, has the wrong width, or is
                given to an unconditional model.
        """
        x = tf.convert_to_tensor(x, tf.float32)
        return self.encoder(self._with_label(x, label_onehot, "encode"))

    @tf.Module.with_name_scope
    def decode(self, code: tf.Tensor, label_onehot: tf.Tensor | None = None) -> tf.Tensor:
        """Maps codes back to examples.

        Args:
            code: float32 `[batch, code_dim]`.
            label_onehot: as for `encode`.

        Returns:
            float32 `[batch, input_dim]`.

        Raises:
            ValueError: as for `encode`.
        """
        code = tf.convert_to_tensor(code, tf.float32)
        return self.decoder(self._with_label(code, label_onehot, "decode"))

    def reconstruct(
        self, x: tf.Tensor, label_onehot: tf.Tensor | None = None
    ) -> tf.Tensor:
        """`decode(encode(x))`, with the same label given to both halves.

        Args:
            x: float32 `[batch, input_dim]`.
            label_onehot: as for `encode`.

        Returns:
            float32 `[batch, input_dim]`.
        """
        return self.decode(self.encode(x, label_onehot), label_onehot)

    def __call__(self, x: tf.Tensor, label_onehot: tf.Tensor | None = None) -> tf.Tensor:
        """Same as `reconstruct`."""
        return self.reconstruct(x, label_onehot)
