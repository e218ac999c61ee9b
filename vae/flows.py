"""An inverse autoregressive flow (IAF) posterior, built from `tfp.bijectors`.

Kingma, Salimans, Jozefowicz, Chen, Sutskever and Welling (2016), "Improved
Variational Inference with Inverse Autoregressive Flow" (NeurIPS).

A diagonal Gaussian q0(z0|x) cannot express correlations between latents, nor
skewed or curved posteriors, and the ELBO pays the KL between the true
posterior and the best diagonal Gaussian. A normalising flow pushes z0
through T invertible maps f_1..f_T; by the change of variables

    z_T = f_T o ... o f_1(z0),
    log q(z_T|x) = log q0(z0|x) - sum_t log |det df_t/dz_{t-1}|.

An IAF step is autoregressive in its *input*: with a MADE network (Germain et
al., 2015, "MADE: Masked Autoencoder for Distribution Estimation") whose
output i depends on z_{<i} only (and on a context h(x)),

    z'_i = (z_i - m_i(z_{<i}, h)) * sigma_i(z_{<i}, h),

so all D outputs come from one network pass (sampling is parallel, which is
what a posterior needs), and the Jacobian dz'/dz is lower triangular with
diagonal sigma_i, so

    log |det dz'/dz| = sum_i log sigma_i.

In `tfp.bijectors` this is the inverse of a masked autoregressive flow:
`tfb.MaskedAutoregressiveFlow`'s *inverse* is x = (y - shift(y)) *
exp(-log_scale(y)), so `tfb.Invert(tfb.MaskedAutoregressiveFlow(fn))` is an
IAF whose forward pass is one call of `fn`, and whose log-determinant TFP
computes from the same call. The network `fn` is the `MADE` below rather
than `tfb.AutoregressiveNetwork`: that Keras layer enforces its masks only
through the kernel initialiser and a kernel *constraint*, which optimisers
outside Keras (this framework's hand-written steps, and Keras 3 optimisers
on tf_keras variables) do not apply, so after one update its outputs would
no longer be autoregressive and the log-determinant would be wrong. Here
the masks multiply the weights in every call.

The MADE (Germain et al., 2015): input i has degree d(i) (its place in the
ordering), each hidden unit a degree in 1..D-1, and a weight from a unit of
degree a to one of degree b is kept when b >= a (hidden layers) or b > a
(the output, whose unit for dimension i has degree d(i)); so output i sees
only inputs of smaller degree. The context enters the first hidden layer
through an unmasked weight.

Choices, after the paper:
* sigma = sigmoid(s + 2) in (0, 1) (here `log_scale = softplus(-(s + 2))`,
  so `exp(-log_scale) = sigmoid(s + 2)`): each step is a contraction that
  starts close to the identity (sigma ~ 0.88 at s = 0), which keeps the
  first steps of training as stable as the plain VAE's (the paper's
  "numerically stable" LSTM-like update).
* Successive steps alternate the MADE's variable order (left-to-right,
  right-to-left), so every latent can depend on every other after two steps.
* The context h(x) is the base posterior's parameters, (mu(x),
  log sigma(x)): a deterministic function of x that every encoder already
  computes, so the flow is conditioned on the image without a change to the
  encoder network (the paper adds an extra encoder output; this is the same
  idea with the smallest footprint).

The KL to the prior has no closed form, so the flow posterior is trained with
the Monte Carlo KL, log q(z_T|x) - log p(z_T) at the sample (`--kl=mc`), and
its importance weights use the log q above. `tests/test_flows.py` checks the
log-determinant against the log |det| of the autodiff Jacobian.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from vae import layers

tfb = tfp.bijectors

# sigma = sigmoid(s + _GATE_BIAS): the paper's initial forget-gate bias.
_GATE_BIAS = 2.0


class MADE(tf.Module):
    """Masked autoencoder `(z [n, D], context [n, C]) -> (shift, gate)`, each [n, D].

    Output i depends on the inputs before i in the ordering only (and on the
    whole context). The output layer starts at zero, so every step starts as
    z' = sigmoid(2) * z.
    """

    def __init__(
        self,
        latent_dim: int,
        context_dim: int,
        hidden_units: Sequence[int],
        activation="relu",
        reverse: bool = False,
        name: str | None = None,
    ):
        """Builds the weights and masks.

        Args:
            latent_dim: D.
            context_dim: C.
            hidden_units: hidden layer sizes.
            activation: name from `vae.layers.ACTIVATION_NAMES`, or a callable.
            reverse: order the dimensions D..1 instead of 1..D.
            name: module name.
        """
        super().__init__(name=name)
        self.latent_dim = latent_dim
        self.activation = layers.get_activation(activation)
        input_degrees = np.arange(1, latent_dim + 1)
        if reverse:
            input_degrees = input_degrees[::-1]
        degrees = [input_degrees]
        for units in hidden_units:
            degrees.append(np.arange(units) % max(1, latent_dim - 1) + 1)
        masks = [
            (later[None, :] >= earlier[:, None])
            for earlier, later in zip(degrees[:-1], degrees[1:])
        ]
        # Output unit (i, param) has input i's degree; strictly greater.
        output_degrees = np.repeat(input_degrees, 2)
        masks.append(output_degrees[None, :] > degrees[-1][:, None])
        self.masks = [tf.constant(mask, tf.float32) for mask in masks]
        sizes = [latent_dim, *hidden_units, 2 * latent_dim]
        with self.name_scope:
            self.kernels = []
            self.biases = []
            for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                last = index == len(sizes) - 2
                self.kernels.append(
                    tf.Variable(
                        tf.zeros([fan_in, fan_out])
                        if last
                        else layers._glorot_uniform([fan_in, fan_out], fan_in, fan_out),
                        name=f"kernel_{index}",
                    )
                )
                self.biases.append(tf.Variable(tf.zeros([fan_out]), name=f"bias_{index}"))
            first_size = sizes[1]
            self.context_kernel = tf.Variable(
                layers._glorot_uniform(
                    [context_dim, first_size], context_dim, first_size
                ),
                name="context_kernel",
            )

    def __call__(self, z: tf.Tensor, context: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = z
        last = len(self.kernels) - 1
        for index, (kernel, bias, mask) in enumerate(
            zip(self.kernels, self.biases, self.masks)
        ):
            x = tf.matmul(x, kernel * mask) + bias
            if index == 0:
                x += tf.matmul(context, self.context_kernel)
            if index < last:
                x = self.activation(x)
        # Columns are (dim 0 shift, dim 0 gate, dim 1 shift, ...).
        params = tf.reshape(x, [-1, self.latent_dim, 2])
        return params[..., 0], params[..., 1]


class InverseAutoregressiveFlow(tf.Module):
    """T IAF steps over `latent_dim` dimensions, conditioned on a context vector."""

    def __init__(
        self,
        latent_dim: int,
        context_dim: int,
        num_steps: int,
        hidden_units: Sequence[int],
        activation="relu",
        name: str | None = "flow",
    ):
        """Builds the steps.

        Args:
            latent_dim: D.
            context_dim: size of the context vector h(x).
            num_steps: T >= 1.
            hidden_units: hidden layer sizes of each step's MADE.
            activation: hidden activation of the MADEs.
            name: module name.
        """
        super().__init__(name=name)
        self.latent_dim = latent_dim
        self.context_dim = context_dim
        self.networks = []
        with self.name_scope:
            for step in range(num_steps):
                # Alternate the ordering, so that after two steps every latent
                # can depend on every other.
                self.networks.append(
                    MADE(
                        latent_dim,
                        context_dim,
                        hidden_units,
                        activation,
                        reverse=step % 2 == 1,
                        name=f"made_{step}",
                    )
                )

    def bijectors(self) -> list[tfb.Bijector]:
        """The steps as `tfb.Invert(tfb.MaskedAutoregressiveFlow(...))` bijectors.

        Made on demand rather than kept: they hold only closures over the
        networks, and keeping them would put TFP objects in the model's
        checkpoint and SavedModel graphs for nothing.
        """
        return [
            tfb.Invert(
                tfb.MaskedAutoregressiveFlow(
                    shift_and_log_scale_fn=_gated(network), name=f"maf_{step}"
                )
            )
            for step, network in enumerate(self.networks)
        ]

    def __call__(self, z: tf.Tensor, context: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Pushes `z` through every step.

        Args:
            z: float32 `[..., latent_dim]`, draws from the base posterior.
            context: float32 `[..., context_dim]`, the same leading shape as `z`
                (broadcast it first).

        Returns:
            `(z_T, log_det)`: float32 `[..., latent_dim]` and `[...]`, the sum over
            the steps of log |det dz_t/dz_{t-1}|.
        """
        log_det = tf.zeros(tf.shape(z)[:-1])
        for step in self.bijectors():
            log_det += step.forward_log_det_jacobian(
                z, event_ndims=1, conditional_input=context
            )
            z = step.forward(z, conditional_input=context)
        return z, log_det


def _gated(network: MADE):
    """shift_and_log_scale_fn for MAF whose inverse scale is sigmoid(gate + 2)."""

    def shift_and_log_scale(y, conditional_input=None):
        # The MADE works on [n, D]; flatten any leading dimensions.
        leading = tf.shape(y)[:-1]
        flat_y = tf.reshape(y, [-1, y.shape[-1]])
        flat_context = tf.reshape(conditional_input, [-1, conditional_input.shape[-1]])
        shift, gate = network(flat_y, flat_context)
        # MAF's inverse multiplies by exp(-log_scale) = sigmoid(gate + 2).
        log_scale = tf.nn.softplus(-(gate + _GATE_BIAS))
        shape = tf.concat([leading, [y.shape[-1]]], axis=0)
        return tf.reshape(shift, shape), tf.reshape(log_scale, shape)

    return shift_and_log_scale
