"""The importance-weighted bound and its gradients, as pure functions.

Burda, Grosse and Salakhutdinov (2016), "Importance Weighted Autoencoders"
(ICLR). With k latents z_1..z_k drawn independently from q(z|x) and the log
importance weights log w_i = log p(x, z_i) - log q(z_i|x),

    L_k(x) = E[ log (1/k) sum_i w_i ]  <=  log p(x).

* L_1 is the ELBO (one weight is the single-sample ELBO estimate with the
  Monte Carlo KL, log p(x|z) + log p(z) - log q(z|x)).
* L_k <= L_m <= log p(x) for k <= m (Burda et al., Theorem 1: the average of
  m weights is an unbiased estimate of the average of any k of them, and log
  is concave), so training on L_k with k > 1 tightens the bound the model
  is trained on; it lets the posterior be broader than the true one.

With the reparameterisation z_i = z(eps_i; phi), the gradient is

    grad L_k = E[ sum_i w~_i grad log w_i ],   w~_i = w_i / sum_j w_j,

a softmax-weighted average of the single-sample ELBO gradients; the
estimate `logsumexp(log w) - log k` differentiated by autodiff gives exactly
this.

Doubly reparameterised gradient (DReG; Tucker, Lawson, Gu and Maddison,
2019, "Doubly Reparameterized Gradient Estimators for Monte Carlo
Objectives", ICLR). For the encoder's parameters phi the total derivative
of log w_i has two parts, the path through z_i and the score function
-d log q_phi(z_i|x)/d phi at fixed z_i. The score part has expectation zero
in the ELBO, but in L_k its weighted sum is noisy, and its noise does not
shrink as k grows: the encoder's gradient signal-to-noise ratio falls like
1/sqrt(k) (Rainforth et al., 2018, "Tighter variational bounds are not
necessarily better"). Applying the reparameterisation trick a second time to
the score term gives the identity (Tucker et al., eq. 5)

    E[ sum_i w~_i d log q(z_i)/d phi |_z fixed ]
        = E[ sum_i (w~_i - w~_i^2) d log w_i/d z_i  d z_i/d phi ],

so the encoder's gradient of L_k equals

    E[ sum_i w~_i^2  d log w_i/d z_i  d z_i/d phi ],

where d log w_i/d z_i is the derivative in z with q's parameters held
fixed. The decoder's (theta's) gradient stays sum_i w~_i grad_theta log w_i.
When q(z|x) is the exact posterior, log w_i = log p(x) for every z, so
d log w_i/d z_i = 0 and the DReG encoder gradient is exactly zero, where the
standard estimator's is a random vector with mean zero.

`dreg_gradients` computes both with one pass of the networks: z is
computed from the encoder, then cut from it (`z_leaf`) so that log w can
be differentiated in z alone; q's log-density uses the encoder's outputs
with their gradients stopped; the encoder's gradient is then pulled back
through z with `output_gradients`. The prior's own dependence on the
encoder (a VampPrior shares the encoder) is a parameter of p, so it keeps
the theta-like gradient sum_i w~_i grad log p(z_i) at fixed z_i.

Every function takes log-weights `[k, batch]` (sample first, as
`vae.models.LatentTerms` returns them) and returns per-example `[batch]`
tensors, or gradients of the batch mean.
"""

from collections.abc import Sequence

import tensorflow as tf
import tensorflow_probability as tfp

from vae import models

tfd = tfp.distributions

IWAE_GRADIENTS = ("standard", "dreg")


def annealed_log_weights(terms: models.LatentTerms, kl_weight=1.0) -> tf.Tensor:
    """log p(x|z) + kl_weight * (log p(z) - log q(z|x)), float32 [k, batch].

    With kl_weight 1 these are the log importance weights; a smaller weight
    during KL warm-up anneals the prior and posterior terms as the ELBO
    trainer's warm-up anneals its rate.
    """
    return terms.log_likelihood + kl_weight * (terms.log_prior - terms.log_posterior)


def iwae_bound(log_weights: tf.Tensor) -> tf.Tensor:
    """L_k per example: logsumexp_i(log w_i) - log k, shape [batch].

    Args:
        log_weights: [k, batch].
    """
    num_samples = tf.cast(tf.shape(log_weights)[0], log_weights.dtype)
    return tf.reduce_logsumexp(log_weights, axis=0) - tf.math.log(num_samples)


def normalized_weights(log_weights: tf.Tensor) -> tf.Tensor:
    """w~_i = w_i / sum_j w_j over the k samples, [k, batch], no gradient."""
    return tf.stop_gradient(tf.nn.softmax(log_weights, axis=0))


def effective_sample_size(log_weights: tf.Tensor) -> tf.Tensor:
    """1 / sum_i w~_i^2 per example, [batch]: between 1 and k.

    How many of the k samples carry the bound: near 1 when one weight
    dominates (q far from the posterior), k when all are equal.
    """
    weights = normalized_weights(log_weights)
    return 1.0 / tf.reduce_sum(tf.square(weights), axis=0)


def dreg_gradients(
    model,
    images: tf.Tensor,
    noise: tf.Tensor,
    variables: Sequence[tf.Variable],
    *,
    labels: tf.Tensor | None = None,
    kl_weight=1.0,
    is_training: bool = False,
    seed: tf.Tensor | None = None,
):
    """The DReG estimate of the gradient of -mean_batch L_k (see above).

    Args:
        model: a one-layer model whose q(z|x) is `encode`'s diagonal
            Gaussian (no flow): `encode`, `decode`, `prior` (any prior,
            a VampPrior included).
        images: [batch, *image_shape].
        noise: standard normal [k, batch, latent_dim]; z = loc + scale *
            noise.
        variables: the variables to differentiate.
        labels: one-hot labels of a conditional model, else None.
        kl_weight: as in `annealed_log_weights`; DReG's identity holds for
            kl_weight 1 (the trainer allows nothing else).
        is_training: passed to the networks.
        seed: stateless seed for dropout in training.

    Returns:
        `(bound, gradients, terms)`: L_k per example [batch] (float32), one
        gradient per variable (zeros where the loss does not depend on it)
        of the loss -mean_batch L_k, and the `vae.models.LatentTerms` of
        the k draws (values only; for logging).
    """
    encoder_seed = decoder_seed = None
    if is_training and seed is not None:
        encoder_seed = tf.random.experimental.stateless_fold_in(seed, 1)
        decoder_seed = tf.random.experimental.stateless_fold_in(seed, 2)
    batch_size = tf.cast(tf.shape(images)[0], tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        posterior = model.encode(
            images, labels, is_training=is_training, seed=encoder_seed
        )
        latents = posterior.bijector.forward(noise)
        # Cut z from the encoder: derivatives in z_leaf are d log w / d z.
        latent_leaf = tf.stop_gradient(latents)
        tape.watch(latent_leaf)
        fixed_posterior = tfd.MultivariateNormalDiag(
            loc=tf.stop_gradient(posterior.loc),
            scale_diag=tf.stop_gradient(posterior.scale.diag_part()),
        )
        terms = models.LatentTerms(
            log_likelihood=models.decoded_log_likelihood(
                model,
                latent_leaf,
                images,
                labels,
                is_training=is_training,
                seed=decoder_seed,
            ),
            log_prior=model.prior().log_prob(latent_leaf),
            log_posterior=fixed_posterior.log_prob(latent_leaf),
        )
        log_weights = annealed_log_weights(terms, kl_weight)
        weights = normalized_weights(log_weights)
        # theta (and any parameter of p): sum_i w~_i grad log w_i at fixed z.
        direct_loss = -tf.reduce_sum(weights * log_weights) / batch_size
        # phi through z: sum_i w~_i^2 d log w_i / d z_i.
        path_loss = -tf.reduce_sum(tf.square(weights) * log_weights) / batch_size
    direct = tape.gradient(
        direct_loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
    )
    latent_gradient = tape.gradient(path_loss, latent_leaf)
    path = tape.gradient(
        latents,
        variables,
        output_gradients=latent_gradient,
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
    del tape
    gradients = [d + p for d, p in zip(direct, path)]
    return iwae_bound(log_weights), gradients, terms
