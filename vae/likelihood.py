"""Importance-sampled estimates of the marginal log-likelihood log p(x) of a VAE.

The ELBO a VAE is trained on is only a lower bound on log p(x); to compare models
by how well they fit held-out data we estimate log p(x) itself. With the encoder
q(z|x) as a proposal,

    p(x) = E_q(z|x)[ p(x|z) p(z) / q(z|x) ],

so with z_1..z_k drawn independently from q(z|x) and the log importance weights

    log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x),

the estimate is

    L_k(x) = log (1/k) sum_i w_i = logmeanexp_i(log w_i).

This is the bound of Burda, Grosse and Salakhutdinov (2016), "Importance Weighted
Autoencoders" (ICLR), and the usual way VAE papers report test log-likelihoods
(k = 5000 in that paper). Its properties, which `tests/test_likelihood.py` checks:

* L_1 is a one-sample estimate of the ELBO: E[L_1] = ELBO(x).
* E[L_k] <= E[L_m] <= log p(x) for k <= m (Jensen's inequality, Burda et al.,
  Theorem 1), and L_k -> log p(x) as k -> infinity when the weights are bounded.
* If q(z|x) is the exact posterior p(z|x), every weight equals p(x), so L_k is
  exact for every k.

The estimate is biased low for finite k, so a model's reported number is a
conservative one; its bias shrinks like Var(w) / (2 k p(x)^2).

Other models. The weights above are those of one Gaussian latent layer with
a fixed prior. A model whose latents are more than that asks for its own: when
the model has a method `log_importance_weights(images, labels, *,
num_samples, seed, posterior)` (as every `vae.models.LatentVariableModel`
does, with the plain VAE's weights as the default), each chunk's weights come
from it. So a VampPrior's log p(z) is the mixture's, a flow posterior's log
q(z|x) is the base density less the flow's log-determinant, and a two-level
model's weight is log p(x|z1) + log p(z1|z2) + log p(z2) - log q(z1|x) -
log q(z2|z1); the estimate and all its properties above are unchanged, with
z standing for all the latents. Objects with only `encode`, `decode` and
`prior` (such as a loaded SavedModel) get the weights of this module's
`log_importance_weights`.

Computation. k can be thousands while a batch of images times k decoder passes
does not fit in memory, so the k samples are drawn in chunks of `chunk_size`:
each chunk is one decoder call on `[chunk_size * batch, latent_dim]` latents, and
the chunk's log-weights are folded into a running log-sum-exp
(`logsumexp(a, b) = max + log(exp(a - max) + exp(b - max))`, both as
`tf.reduce_logsumexp`), so memory is O(batch * chunk_size) whatever k is. The loop
is a `tf.while_loop` inside one `tf.function`, so the chunk is traced once, not
once per chunk, and it runs one iteration at a time (parallel_iterations=1) so
that chunks are never in memory together. The three log-densities are added and
the log-sum-exp taken in float64: log-weights are hundreds of nats for MNIST, so
this keeps rounding far below the Monte Carlo error at any k, for the price of a
few casts. Chunk `i` draws its samples with the stateless seed
`stateless_fold_in(seed, i)`, so the same seed, k and chunk size always give the
same estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
import math
from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

SeedLike = int | Sequence[int] | tf.Tensor


def _is_int(value: Any) -> bool:
    # bool is a subclass of int, but True samples is a mistake, not a count.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_count(name: str, value: Any) -> None:
    if not _is_int(value) or value < 1:
        raise ValueError(
            f"importance_sampled_log_likelihood: {name} must be a positive Python "
            f"integer, got {value!r}."
        )


def _stateless_seed(seed: SeedLike) -> tf.Tensor:
    """Turns an int, a pair or a `[2]` tensor into an int32 `[2]` stateless seed."""
    if _is_int(seed):
        if not -(2**31) <= seed < 2**31:
            raise ValueError(
                f"importance_sampled_log_likelihood: an integer seed must fit in 32 bits "
                f"(as TFP's stateless samplers need), got {seed}."
            )
        return tf.constant([seed, 0], tf.int32)
    if seed is None or isinstance(seed, (bool, float, str, bytes)):
        raise ValueError(
            f"importance_sampled_log_likelihood: seed must be an integer, a pair of "
            f"integers or an integer tensor of shape [2], got {seed!r}; the estimate "
            "is random and needs an explicit seed to be reproducible."
        )
    seed_tensor = tf.convert_to_tensor(seed)
    if not seed_tensor.dtype.is_integer or seed_tensor.shape != (2,):
        raise ValueError(
            f"importance_sampled_log_likelihood: seed must be an integer, a pair of "
            f"integers or an integer tensor of shape [2], got {seed!r} (dtype "
            f"{seed_tensor.dtype.name}, shape {seed_tensor.shape})."
        )
    # TFP's samplers take int32 seeds; larger values wrap, which keeps them seeds.
    return tf.cast(seed_tensor, tf.int32)


def log_importance_weights(
    model: Any,
    images: tf.Tensor,
    posterior: tfd.Distribution,
    *,
    num_samples: int,
    seed: tf.Tensor,
    labels: tf.Tensor | None = None,
) -> tf.Tensor:
    """Draws `num_samples` latents per image from `posterior` and returns log w.

    log w = log p(x|z) + log p(z) - log q(z|x), for one chunk of samples. The
    decoder sees all `num_samples * batch` latents in a single call.

    Args:
        model: a VAE exposing `decode(z, is_training=...) -> p(x|z)` (batch shape
            `[n]` for `z` of shape `[n, latent_dim]`) and `prior() -> p(z)`.
        images: float32 `[batch, *image_shape]`, the x that `posterior` encodes.
        posterior: q(z|x) with batch shape `[batch]` and event shape `[latent_dim]`.
        num_samples: number of latents per image, a Python int.
        seed: stateless seed, an integer tensor of shape `[2]`.
        labels: one-hot `[batch, num_classes]` for a conditional model, repeated for
            every sample like the images; None otherwise.

    Returns:
        float64 `[num_samples, batch]`: row i holds the log-weights of sample i.
    """
    # [num_samples, batch, latent_dim]: sample i of every image, side by side.
    latents = posterior.sample(num_samples, seed=seed)
    log_posterior = posterior.log_prob(latents)
    log_prior = model.prior().log_prob(latents)
    batch_size = tf.shape(images)[0]
    flat_latents = tf.reshape(latents, [num_samples * batch_size, -1])
    # Repeat the batch once per sample so row i * batch + b is image b, matching
    # the row-major flattening of the latents.
    flat_images = tf.reshape(
        tf.repeat(images[tf.newaxis], num_samples, axis=0),
        tf.concat([[num_samples * batch_size], tf.shape(images)[1:]], axis=0),
    )
    decoder_inputs = [flat_latents]
    if labels is not None:
        decoder_inputs.append(
            tf.reshape(
                tf.repeat(labels[tf.newaxis], num_samples, axis=0),
                [num_samples * batch_size, -1],
            )
        )
    flat_log_likelihood = model.decode(*decoder_inputs, is_training=False).log_prob(
        flat_images
    )
    log_likelihood = tf.reshape(flat_log_likelihood, [num_samples, batch_size])
    return (
        tf.cast(log_likelihood, tf.float64)
        + tf.cast(log_prior, tf.float64)
        - tf.cast(log_posterior, tf.float64)
    )


# No autograph: the loop is an explicit tf.while_loop and every Python branch is on
# static values, so converting the model's code would only slow tracing down.
@tf.function(autograph=False)
def _log_likelihood_graph(
    model: Any,
    images: tf.Tensor,
    num_samples: int,
    chunk_size: int,
    seed: tf.Tensor,
    labels: tf.Tensor | None,
) -> tf.Tensor:
    # num_samples and chunk_size are Python ints, so each (k, chunk_size) pair is
    # traced once; the seed is a tensor, so new seeds reuse the trace.
    # Unconditional models are called without labels, so any object with
    # encode(images, is_training=...) serves.
    label_args = [] if labels is None else [labels]
    posterior = model.encode(images, *label_args, is_training=False)
    chunk_size = min(chunk_size, num_samples)
    num_full_chunks, remainder = divmod(num_samples, chunk_size)

    def add_chunk(running_logsumexp, size, chunk_index):
        chunk_seed = tf.cast(
            tf.random.experimental.stateless_fold_in(seed, chunk_index), tf.int32
        )
        if hasattr(model, "log_importance_weights"):
            # The model knows its own latents (a learned prior, a flow
            # posterior, several layers); see
            # `vae.models.LatentVariableModel.log_importance_weights`.
            log_weights = model.log_importance_weights(
                images, labels, num_samples=size, seed=chunk_seed, posterior=posterior
            )
        else:
            log_weights = log_importance_weights(
                model, images, posterior, num_samples=size, seed=chunk_seed, labels=labels
            )
        chunk_logsumexp = tf.reduce_logsumexp(log_weights, axis=0)
        # reduce_logsumexp of -inf and a finite value is that value, so the
        # running total may start at -inf.
        return tf.reduce_logsumexp(tf.stack([running_logsumexp, chunk_logsumexp]), axis=0)

    def body(chunk_index, running_logsumexp):
        return chunk_index + 1, add_chunk(running_logsumexp, chunk_size, chunk_index)

    start = tf.fill([tf.shape(images)[0]], tf.constant(-math.inf, tf.float64))
    _, total = tf.while_loop(
        lambda chunk_index, _: chunk_index < num_full_chunks,
        body,
        (tf.constant(0, tf.int64), start),
        # One chunk at a time: otherwise TF may run several iterations at once
        # and the memory bound of one chunk no longer holds.
        parallel_iterations=1,
    )
    if remainder:
        total = add_chunk(total, remainder, tf.constant(num_full_chunks, tf.int64))
    return tf.cast(total - math.log(num_samples), tf.float32)


def importance_sampled_log_likelihood(
    model: Any,
    images: tf.Tensor,
    *,
    num_samples: int,
    chunk_size: int = 500,
    seed: SeedLike,
    labels: tf.Tensor | None = None,
) -> tf.Tensor:
    """Estimates log p(x) per image with `num_samples` importance samples from q(z|x).

    Returns logmeanexp over z_1..z_k ~ q(z|x) of log p(x|z) + log p(z) - log q(z|x),
    the IWAE bound of Burda et al. (2016); see the module docstring. Networks run
    with `is_training=False`.

    Args:
        model: a VAE exposing `encode(images, is_training=...) -> q(z|x)` (batch
            shape `[batch]`, event shape `[latent_dim]`), `decode(z, is_training=...)
            -> p(x|z)` (batch shape `[n]` for `z` of shape `[n, latent_dim]`) and
            `prior() -> p(z)`, such as `vae.models.VAE`.
        images: float32 `[batch, *image_shape]`; binary for a Bernoulli decoder.
        num_samples: k, the number of importance samples per image.
        chunk_size: samples drawn per decoder call; the decoder sees
            `min(chunk_size, num_samples) * batch` latents at once, which bounds
            memory. A last, smaller chunk takes the remainder when `num_samples` is
            not a multiple of `chunk_size`.
        seed: an int, a pair of ints or an integer `[2]` tensor. The same seed,
            `num_samples` and `chunk_size` give the same estimate; chunk i uses
            `stateless_fold_in(seed, i)`.
        labels: one-hot float32 `[batch, num_classes]` for a conditional VAE, whose
            estimate is then of log p(x|y); None for an unconditional one.

    Returns:
        float32 `[batch]`: the estimates of log p(x) (or log p(x|y)), in nats.

    Raises:
        ValueError: if `num_samples` or `chunk_size` is not a positive int, `seed`
            is not a valid seed, or `images` does not match `model.image_shape`.
    """
    _check_count("num_samples", num_samples)
    _check_count("chunk_size", chunk_size)
    seed = _stateless_seed(seed)
    images = tf.convert_to_tensor(images, tf.float32)
    image_shape = getattr(model, "image_shape", None)
    if image_shape is not None and tuple(images.shape[1:]) != tuple(image_shape):
        raise ValueError(
            f"importance_sampled_log_likelihood: images have shape {tuple(images.shape)}, "
            f"expected [batch, {', '.join(map(str, image_shape))}] to match the "
            f"model's image_shape {tuple(image_shape)}."
        )
    if labels is not None:
        labels = tf.convert_to_tensor(labels, tf.float32)
    return _log_likelihood_graph(model, images, num_samples, chunk_size, seed, labels)
