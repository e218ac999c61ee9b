"""Latent traversals: what each code dimension does, one row per dimension.

A traversal starts from one image's code, the posterior mean mu(x) of q(z|x), and
sweeps one dimension j over `num_steps` evenly spaced values from -limit to
+limit (2 by default: the prior's central 95%) while every other dimension stays
at mu(x); decoding the sweep gives a row of images in which only what dimension j
encodes changes. Rows are sorted by each dimension's mean KL divergence from the
prior over a set of test images,

    KL_j = mean_x 0.5 (mu_j(x)^2 + sigma_j(x)^2 - log sigma_j(x)^2 - 1),

largest first: a dimension the model does not use has q(z_j|x) = p(z_j), a KL of
0 and rows of identical images, so the active dimensions (on dSprites, ideally
one for each of position x, position y, scale, orientation and shape) come first
and the inactive ones last (Higgins et al. 2017 and Chen et al. 2018 show their
traversals this way).
"""

from __future__ import annotations

import numpy as np

from vae import pictures

DEFAULT_LIMIT = 2.0
DEFAULT_NUM_STEPS = 10


def dimension_kl(means: np.ndarray, stddevs: np.ndarray) -> np.ndarray:
    """Mean KL(q(z_j|x) || N(0, 1)) of each dimension over the examples.

    Args:
        means: float [N, D] posterior means.
        stddevs: float [N, D] posterior standard deviations (> 0).

    Returns:
        float64 [D] nats.
    """
    means = np.asarray(means, np.float64)
    variances = np.square(np.asarray(stddevs, np.float64))
    return np.mean(0.5 * (means**2 + variances - np.log(variances) - 1.0), axis=0)


def traversal_codes(
    base_code: np.ndarray,
    order: np.ndarray,
    *,
    num_steps: int = DEFAULT_NUM_STEPS,
    limit: float = DEFAULT_LIMIT,
) -> np.ndarray:
    """The codes of a traversal grid, row by row.

    Args:
        base_code: float [D], the code every sweep starts from.
        order: int [R], the dimension swept in each row.
        num_steps: values per sweep (columns).
        limit: each sweep runs from -limit to +limit.

    Returns:
        float32 [R * num_steps, D]: row r holds `base_code` with dimension
        `order[r]` replaced by linspace(-limit, limit, num_steps).
    """
    if num_steps < 2 or limit <= 0:
        raise ValueError(
            f"A traversal needs num_steps >= 2 and limit > 0; got "
            f"num_steps={num_steps} and limit={limit}."
        )
    base_code = np.asarray(base_code, np.float32)
    values = np.linspace(-limit, limit, num_steps, dtype=np.float32)
    codes = np.tile(base_code, (len(order), num_steps, 1))
    codes[np.arange(len(order)), :, np.asarray(order)] = values
    return codes.reshape(len(order) * num_steps, len(base_code))


def traversal_grid(
    decode_mean,
    base_code: np.ndarray,
    kl_per_dimension: np.ndarray,
    *,
    num_steps: int = DEFAULT_NUM_STEPS,
    limit: float = DEFAULT_LIMIT,
) -> tuple[np.ndarray, np.ndarray]:
    """A picture with one traversal row per dimension, the most used first.

    Args:
        decode_mean: maps float32 codes [M, D] to mean images [M, h, w, c] in [0, 1].
        base_code: float [D] the code the sweeps start from.
        kl_per_dimension: float [D] (see `dimension_kl`), which orders the rows.
        num_steps: columns.
        limit: sweep range.

    Returns:
        (picture, order): the uint8 grid (D rows of `num_steps` tiles, see
        `pictures.image_grid`), and int [D] the dimension of each row.
    """
    # A stable sort keeps ties (e.g. several unused dimensions) in index order.
    order = np.argsort(-np.asarray(kl_per_dimension), kind="stable")
    images = np.asarray(
        decode_mean(traversal_codes(base_code, order, num_steps=num_steps, limit=limit))
    )
    return pictures.image_grid(images, num_columns=num_steps), order


__all__ = ("dimension_kl", "traversal_codes", "traversal_grid")
