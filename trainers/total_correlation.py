"""Total correlation of q(z): the estimators of beta-TCVAE and FactorVAE.

Both papers split the KL term of the ELBO averaged over the data (Chen, Li,
Grosse and Duvenaud 2018, "Isolating Sources of Disentanglement in VAEs",
eq. 2; Hoffman and Johnson 2016) with the aggregate posterior
q(z) = (1/N) sum_n q(z|x_n):

    E_x KL(q(z|x) || p(z))
        = I_q(x; z)                          index-code mutual information
                                             E log q(z|x) - log q(z)
        + KL(q(z) || prod_d q(z_d))          total correlation (TC)
                                             E log q(z) - log prod_d q(z_d)
        + sum_d KL(q(z_d) || p(z_d))         dimension-wise KL
                                             E log prod_d q(z_d) - log p(z),

expectations over x from the data and z ~ q(z|x). beta-TCVAE weights the three
as alpha, beta, gamma (the paper's beta-TCVAE: alpha = gamma = 1, beta on TC).

q(z) needs a sum over all N training images; the paper estimates it from a
minibatch {x_1..x_M} whose codes z_i ~ q(z|x_i) were drawn:

* minibatch-weighted sampling (MWS, the paper's eq. S5):
      log q(z_i) ~= logsumexp_j log q(z_i|x_j) - log(N M),
  and the same per dimension for log q(z_id), summed over d for the product;
* stratified (importance-weighted) sampling, "mss": q(z_i) is the mixture
  (1/N) q(z_i|x_i) + (1/N) sum_{n != i} q(z_i|x_n); the first component is
  known exactly and the sum over the other N - 1 images is estimated from the
  batch's other M - 1 images, each standing for (N - 1)/(M - 1) of them:
      log q(z_i) ~= logsumexp_j (log w_ij + log q(z_i|x_j)),
      w_ii = 1/N,  w_ij = (N - 1) / (N (M - 1)) for j != i.
  For a batch drawn uniformly without replacement this estimates q(z_i)
  without bias (log q(z_i) is still biased low, by Jensen, but far less than
  MWS's, which gives x_i's own component weight 1/(N M) instead of 1/N).
  The paper's minibatch-stratified sampling (its appendix C.2) is of this
  kind; its weights differ in how the batch is imagined to be drawn.

MWS's weights sum to 1/N per row instead of 1, which is harmless when each
q(z|x_j) is narrow (then q(z_i) ~= q(z_i|x_i) / N, the case the paper argues
for) but not when posteriors overlap: with every q(z|x) equal to the prior it
reports I = log N and TC = (D - 1) log N instead of 0 (82.5 nats for D = 10,
N = 9,600). That bias has no gradient
there, but it makes the logged terms hard to read; MSS has no such offset.

These are consistent but biased estimates whose quality grows with M; the
estimate runs on whatever batch the step holds, so under tf.distribute each
replica estimates from its own rows (M = the per-replica batch).

FactorVAE (Kim and Mnih 2018, "Disentangling by Factorising") instead estimates
TC with a discriminator D that tells codes z ~ q(z) from codes whose dimensions
were each permuted independently across the batch, an approximate sample of
prod_d q(z_d) (their Algorithm 1, `permute_dims`). With D's logit l(z)
= log D(z) / (1 - D(z)), the density-ratio trick gives
TC = E_q(z) log q(z) / prod_d q(z_d) ~= E_q(z) l(z); D is trained by logistic
regression, minimising E_q softplus(-l(z)) + E_permuted softplus(l(z~)).
"""

import math

import tensorflow as tf

ESTIMATORS = ("mws", "mss")
_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_density(
    z: tf.Tensor, loc: tf.Tensor, log_variance: tf.Tensor
) -> tf.Tensor:
    """log N(z; loc, exp(log_variance)) elementwise (broadcasting)."""
    return -0.5 * (_LOG_2PI + log_variance + tf.square(z - loc) * tf.exp(-log_variance))


def log_importance_weights(batch_size: int, dataset_size, estimator: str) -> tf.Tensor:
    """log w [M, M]: the weight of q(z_i|x_j) in the estimate of q(z_i).

    Args:
      batch_size: M >= 2 (a Python int or scalar int tensor).
      dataset_size: N >= M.
      estimator: "mws" (every weight 1 / (N M)) or "mss" (1/N on the
        diagonal, (N - 1) / (N (M - 1)) elsewhere; see the module docstring).

    Returns:
      float32 [M, M].
    """
    m = tf.cast(batch_size, tf.float32)
    n = tf.cast(dataset_size, tf.float32)
    if estimator == "mws":
        return tf.fill(tf.stack([batch_size, batch_size]), -tf.math.log(n * m))
    if estimator != "mss":
        raise ValueError(
            f"Unknown TC estimator {estimator!r}; expected one of {ESTIMATORS}."
        )
    index = tf.range(batch_size)
    diagonal = tf.cast(tf.equal(index[:, None], index[None, :]), tf.float32)
    weights = diagonal / n + (1.0 - diagonal) * (n - 1.0) / (n * (m - 1.0))
    return tf.math.log(weights)


def kl_decomposition(
    z: tf.Tensor,
    loc: tf.Tensor,
    log_variance: tf.Tensor,
    *,
    dataset_size,
    estimator: str = "mws",
) -> dict:
    """Per-example terms of the decomposition, estimated from one batch.

    Args:
      z: float32 [M, D] codes, z_i ~ q(z|x_i).
      loc: float32 [M, D] means of q(z|x_i).
      log_variance: float32 [M, D] log variances of q(z|x_i).
      dataset_size: N, the number of training images.
      estimator: one of ESTIMATORS.

    Returns:
      A dict of float32 [M]: "log_qz_given_x" (log q(z_i|x_i)), "log_qz"
      (estimated log q(z_i)), "log_prod_qzd" (estimated sum_d log q(z_id)),
      "log_pz" (standard normal prior), and the per-example terms
      "mutual_information" = log_qz_given_x - log_qz, "total_correlation" =
      log_qz - log_prod_qzd, "dimension_kl" = log_prod_qzd - log_pz, whose
      means are the three terms of the module docstring.
    """
    # [M (i), M (j), D]: log q(z_id | x_j).
    pairwise = gaussian_log_density(
        z[:, None, :], loc[None, :, :], log_variance[None, :, :]
    )
    log_weights = log_importance_weights(tf.shape(z)[0], dataset_size, estimator)
    log_qz = tf.reduce_logsumexp(log_weights + tf.reduce_sum(pairwise, axis=2), axis=1)
    log_prod_qzd = tf.reduce_sum(
        tf.reduce_logsumexp(log_weights[:, :, None] + pairwise, axis=1), axis=1
    )
    log_qz_given_x = tf.reduce_sum(gaussian_log_density(z, loc, log_variance), axis=1)
    log_pz = tf.reduce_sum(
        gaussian_log_density(z, tf.zeros_like(z), tf.zeros_like(z)), axis=1
    )
    return {
        "log_qz_given_x": log_qz_given_x,
        "log_qz": log_qz,
        "log_prod_qzd": log_prod_qzd,
        "log_pz": log_pz,
        "mutual_information": log_qz_given_x - log_qz,
        "total_correlation": log_qz - log_prod_qzd,
        "dimension_kl": log_prod_qzd - log_pz,
    }


def permute_dims(z: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Each column of z [M, D] shuffled by its own permutation of the rows.

    The permutations are the argsorts of a stateless uniform [M, D] draw, so
    the same seed gives the same permutations.
    """
    order = tf.argsort(tf.random.stateless_uniform(tf.shape(z), seed=seed), axis=0)
    # gather along rows per column: transpose so columns are the batch axis.
    return tf.transpose(tf.gather(tf.transpose(z), tf.transpose(order), batch_dims=1))


def discriminator_loss(real_logits: tf.Tensor, permuted_logits: tf.Tensor) -> tf.Tensor:
    """Logistic loss of D: codes of q(z) are class 1, permuted codes class 0.

    Args:
      real_logits: float32 [M] l(z) of codes z ~ q(z).
      permuted_logits: float32 [M'] l of permuted codes.

    Returns:
      scalar: mean softplus(-l(z)) + mean softplus(l(z~)).
    """
    return tf.reduce_mean(tf.nn.softplus(-real_logits)) + tf.reduce_mean(
        tf.nn.softplus(permuted_logits)
    )


__all__ = (
    "ESTIMATORS",
    "discriminator_loss",
    "gaussian_log_density",
    "kl_decomposition",
    "log_importance_weights",
    "permute_dims",
)
