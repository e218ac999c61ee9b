"""Numbers for how good a generative model's samples and reconstructions are.

Everything here is plain NumPy on host arrays (TensorFlow eager tensors are
accepted too and converted with `np.asarray`) and computes in float64, because
these are evaluation metrics over at most a few tens of thousands of examples
that fit in memory; no streaming is needed.

Frechet distance (Heusel et al., 2017, "GANs Trained by a Two Time-Scale Update
Rule Converge to a Local Nash Equilibrium", the "FID" when the features come
from Inception; here they come from our own classifier's penultimate layer).
Each feature set is summarised by a Gaussian `N(mu, Sigma)` and the distance is
the squared 2-Wasserstein distance between the two Gaussians:

    d^2 = ||mu_a - mu_b||^2 + Tr(Sigma_a + Sigma_b - 2 (Sigma_a Sigma_b)^(1/2)).

`Sigma_a Sigma_b` is not symmetric, so rather than a general matrix square root
(scipy's `sqrtm`, which can return complex noise) we use that it is similar to
the symmetric positive semi-definite matrix

    M = Sigma_a^(1/2) Sigma_b Sigma_a^(1/2)

(`Sigma_a^(1/2) M Sigma_a^(-1/2) = Sigma_a Sigma_b` when `Sigma_a` is
invertible, and the two still share their eigenvalues when it is not), so

    Tr((Sigma_a Sigma_b)^(1/2)) = sum_i sqrt(lambda_i(M)).

Both square roots then come from the symmetric eigensolver `np.linalg.eigh`;
eigenvalues that rounding pushed slightly below zero are clipped to zero.

Classifier score (Salimans et al., 2016, "Improved Techniques for Training
GANs", the "Inception score" with our own classifier):

    score = exp(mean_i KL(p(y|x_i) || p(y))),   p(y) = mean_i p(y|x_i).

It lies in `[1, K]`: 1 when every sample gets the same class distribution
(nothing recognisable, or no diversity), `K` when every sample is classified
confidently and the classes are used equally often.

Conditional accuracy: how often a classifier assigns a generated image the
label it was generated for (conditional generation) or transferred to (style
transfer), overall and per label.

Reconstruction errors: per-pixel binary cross-entropy (nats) and squared error
between images and their reconstructions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "gaussian_statistics",
    "frechet_distance_from_statistics",
    "frechet_distance",
    "classifier_score",
    "conditional_accuracy",
    "reconstruction_errors",
    "PROBABILITY_EPSILON",
]

# Probabilities are clipped to [eps, 1 - eps] before taking logs in the
# cross-entropy, so a decoder that is certain and wrong costs about
# -log(1e-7) ~= 16 nats for that pixel instead of infinity. Same value as
# Keras's backend epsilon, so our numbers agree with a Keras BCE loss.
PROBABILITY_EPSILON = 1e-7

# Tolerance on "each row of probabilities sums to one": softmax outputs in
# float32 are off by ~1e-7; anything off by more than this was not a
# probability vector (for example logits passed by mistake).
_ROW_SUM_TOLERANCE = 1e-3


def _as_float64(values: Any, name: str) -> np.ndarray:
    """`values` as a float64 array; ValueError naming `name` if it has non-finite values."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{name} could not be read as an array of numbers ({error}); expected a NumPy "
            f"array or tensor of real values."
        ) from None
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(
            f"{name} has {bad} NaN or infinite value(s) out of {array.size}; expected finite "
            f"numbers (a diverged model or a broken feature extractor produces these)."
        )
    return array


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The positive semi-definite square root of a symmetric PSD matrix [d, d]."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    # Covariances are PSD in exact arithmetic; rounding can leave eigenvalues
    # like -1e-17 that would otherwise become NaN under sqrt.
    roots = np.sqrt(np.clip(eigenvalues, 0.0, None))
    return (eigenvectors * roots) @ eigenvectors.T


def gaussian_statistics(
    features: Any, *, name: str = "features"
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a feature set, the Gaussian the Frechet distance compares.

    Computing these once for the real test set and passing them to
    `frechet_distance_from_statistics` saves recomputing them for every model.

    Args:
        features: [num_examples, feature_dim] array, num_examples >= 2.
        name: what to call `features` in error messages.

    Returns:
        (mean [feature_dim], covariance [feature_dim, feature_dim]), float64. The
        covariance is the unbiased sample covariance (divides by num_examples - 1),
        as in the reference FID implementation.

    Raises:
        ValueError: `features` is not 2-D, has fewer than 2 rows or non-finite values.
    """
    array = _as_float64(features, name)
    if array.ndim != 2:
        raise ValueError(
            f"{name} has shape {array.shape}; expected a 2-D array [num_examples, feature_dim] "
            f"(flatten per-example features before calling)."
        )
    if array.shape[0] < 2 or array.shape[1] < 1:
        raise ValueError(
            f"{name} has shape {array.shape}; expected at least 2 examples and 1 feature, "
            f"since a covariance needs two or more examples."
        )
    mean = array.mean(axis=0)
    centred = array - mean
    covariance = centred.T @ centred / (array.shape[0] - 1)
    return mean, covariance


def frechet_distance_from_statistics(
    mean_a: Any, covariance_a: Any, mean_b: Any, covariance_b: Any
) -> float:
    """Squared 2-Wasserstein distance between N(mean_a, covariance_a) and N(mean_b, covariance_b).

    Args:
        mean_a: [feature_dim] mean of the first set.
        covariance_a: [feature_dim, feature_dim] symmetric PSD covariance of the first set.
        mean_b: [feature_dim] mean of the second set.
        covariance_b: [feature_dim, feature_dim] symmetric PSD covariance of the second set.

    Returns:
        The distance, a Python float >= 0.

    Raises:
        ValueError: shapes disagree, or a covariance is not square or has non-finite values.
    """
    mean_a = _as_float64(mean_a, "mean_a")
    mean_b = _as_float64(mean_b, "mean_b")
    covariance_a = _as_float64(covariance_a, "covariance_a")
    covariance_b = _as_float64(covariance_b, "covariance_b")
    if mean_a.ndim != 1 or mean_a.shape != mean_b.shape:
        raise ValueError(
            f"mean_a has shape {mean_a.shape} and mean_b has shape {mean_b.shape}; expected "
            f"two 1-D vectors of the same length feature_dim."
        )
    expected = (mean_a.shape[0], mean_a.shape[0])
    for name, covariance in (
        ("covariance_a", covariance_a),
        ("covariance_b", covariance_b),
    ):
        if covariance.shape != expected:
            raise ValueError(
                f"{name} has shape {covariance.shape}; expected {expected}, a square matrix "
                f"matching the means' feature_dim {mean_a.shape[0]}."
            )
    # Symmetrise: a covariance read back from disk or computed in float32 may be
    # asymmetric by rounding, and eigh silently reads only one triangle.
    covariance_a = 0.5 * (covariance_a + covariance_a.T)
    covariance_b = 0.5 * (covariance_b + covariance_b.T)
    sqrt_a = _symmetric_sqrt(covariance_a)
    middle = sqrt_a @ covariance_b @ sqrt_a
    middle = 0.5 * (middle + middle.T)
    trace_sqrt_product = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None)))
    mean_term = np.sum((mean_a - mean_b) ** 2)
    distance = (
        mean_term
        + np.trace(covariance_a)
        + np.trace(covariance_b)
        - 2.0 * trace_sqrt_product
    )
    # The exact value is >= 0; identical sets give rounding noise around 0.
    return float(max(distance, 0.0))


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Frechet distance between two feature sets, each summarised as a Gaussian.

    `||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))` (see the module docstring
    for how the matrix square root is computed stably), in float64.

    Args:
        features_a: [num_a, feature_dim] features of the first set (e.g. real images), num_a >= 2.
        features_b: [num_b, feature_dim] features of the second set (e.g. samples), num_b >= 2.

    Returns:
        The distance, a Python float >= 0; 0 for identical sets, symmetric in its arguments,
        independent of the order of the rows.

    Raises:
        ValueError: an input is not 2-D, has fewer than 2 rows or non-finite values, or the
            feature dimensions differ.
    """
    mean_a, covariance_a = gaussian_statistics(features_a, name="features_a")
    mean_b, covariance_b = gaussian_statistics(features_b, name="features_b")
    if mean_a.shape != mean_b.shape:
        raise ValueError(
            f"features_a has {mean_a.shape[0]} features per example and features_b has "
            f"{mean_b.shape[0]}; expected the same feature_dim (features from the same "
            f"extractor layer)."
        )
    return frechet_distance_from_statistics(mean_a, covariance_a, mean_b, covariance_b)


def classifier_score(probabilities: Any) -> float:
    """exp(mean_i KL(p(y|x_i) || p(y))): the Inception score computed with our own classifier.

    Args:
        probabilities: [num_examples, num_classes] class probabilities p(y|x_i) (softmax
            outputs, not logits); each row non-negative and summing to 1 (within 1e-3; rows
            are renormalised). Exact zeros are fine: 0 * log 0 counts as 0.

    Returns:
        The score, a Python float in [1, num_classes].

    Raises:
        ValueError: not 2-D, empty, negative or non-finite entries, or rows not summing to 1.
    """
    array = _as_float64(probabilities, "probabilities")
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(
            f"probabilities has shape {array.shape}; expected a non-empty 2-D array "
            f"[num_examples, num_classes]."
        )
    if np.any(array < 0.0):
        raise ValueError(
            f"probabilities has negative entries (smallest {array.min():.6g}); expected class "
            f"probabilities in [0, 1] (apply softmax to logits first)."
        )
    row_sums = array.sum(axis=1)
    worst = int(np.argmax(np.abs(row_sums - 1.0)))
    if abs(row_sums[worst] - 1.0) > _ROW_SUM_TOLERANCE:
        raise ValueError(
            f"probabilities row {worst} sums to {row_sums[worst]:.6g}; expected every row to "
            f"sum to 1 (apply softmax to logits first)."
        )
    array = array / row_sums[:, None]
    marginal = array.mean(axis=0)
    # Where p(y|x) > 0 the marginal is >= p(y|x) / n > 0, so only p(y|x) == 0 needs
    # guarding: those terms are 0 by the limit p log p -> 0.
    positive = array > 0.0
    safe = np.where(positive, array, 1.0)
    safe_marginal = np.broadcast_to(np.where(marginal > 0.0, marginal, 1.0), array.shape)
    terms = np.where(positive, array * (np.log(safe) - np.log(safe_marginal)), 0.0)
    mean_kl = terms.sum(axis=1).mean()
    # KL >= 0 exactly; rounding can give -1e-16 for identical rows.
    return float(np.exp(max(mean_kl, 0.0)))


def _as_labels(values: Any, name: str, num_classes: int) -> np.ndarray:
    """`values` as int64 labels [n] in [0, num_classes); ValueError naming `name` otherwise."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(
            f"{name} has shape {array.shape}; expected a 1-D array of integer labels [num_examples]."
        )
    if array.dtype.kind not in "iub":
        as_float = _as_float64(array, name)
        if not np.all(as_float == np.round(as_float)):
            raise ValueError(
                f"{name} has non-integer values (dtype {array.dtype}); expected integer class "
                f"labels (take the argmax of probabilities first)."
            )
        array = as_float
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        bad = array[(array < 0) | (array >= num_classes)][0]
        raise ValueError(
            f"{name} contains label {bad}; expected labels in [0, {num_classes - 1}] for "
            f"num_classes={num_classes}."
        )
    return array


def conditional_accuracy(
    predicted_labels: Any, target_labels: Any, num_classes: int
) -> dict[str, Any]:
    """How often generated images are classified as the label they were made for.

    Used both for conditional generation (target = the label the sample was
    conditioned on) and for style transfer (target = the label the image was
    transferred to).

    Args:
        predicted_labels: [num_examples] integer labels a classifier gave the images.
        target_labels: [num_examples] integer labels the images were generated for.
        num_classes: number of classes K; labels must lie in [0, K).

    Returns:
        A dict with
          * "overall": float, fraction of all examples with predicted == target;
          * "per_label": list of K entries, entry k the accuracy over examples whose
            target is k, or None when no example has target k (None rather than NaN
            so the dict can be written as strict JSON);
          * "per_label_count": list of K ints, the number of examples with target k.

    Raises:
        ValueError: shapes differ, no examples, non-integer or out-of-range labels, or
            num_classes is not a positive integer.
    """
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 1
    ):
        raise ValueError(f"num_classes is {num_classes!r}; expected a positive integer.")
    num_classes = int(num_classes)
    predicted = _as_labels(predicted_labels, "predicted_labels", num_classes)
    target = _as_labels(target_labels, "target_labels", num_classes)
    if predicted.shape != target.shape:
        raise ValueError(
            f"predicted_labels has {predicted.shape[0]} entries and target_labels has "
            f"{target.shape[0]}; expected one prediction per target."
        )
    if predicted.size == 0:
        raise ValueError(
            "predicted_labels and target_labels are empty; expected at least one example."
        )
    correct = predicted == target
    counts = np.bincount(target, minlength=num_classes)
    correct_counts = np.bincount(
        target, weights=correct.astype(np.float64), minlength=num_classes
    )
    per_label = [
        float(correct_counts[k] / counts[k]) if counts[k] else None
        for k in range(num_classes)
    ]
    return {
        "overall": float(correct.mean()),
        "per_label": per_label,
        "per_label_count": [int(count) for count in counts],
    }


def reconstruction_errors(images: Any, reconstructions: Any) -> dict[str, float]:
    """Per-pixel binary cross-entropy and squared error of reconstructions.

    Args:
        images: [batch, *image_shape] targets in [0, 1] (binary or grey levels; scale
            uint8 images by 1/255 first).
        reconstructions: [batch, *image_shape] reconstructed pixel probabilities / means
            in [0, 1] (e.g. `VAE.reconstruct`), same shape as `images`.

    Returns:
        A dict of Python floats averaged over every pixel of every image:
          * "binary_cross_entropy": -[x log r + (1 - x) log(1 - r)] in nats, with r
            clipped to [PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON];
          * "mean_squared_error": (x - r)^2.

    Raises:
        ValueError: shapes differ, inputs are empty, or values are non-finite or outside [0, 1].
    """
    targets = _as_float64(images, "images")
    predictions = _as_float64(reconstructions, "reconstructions")
    if targets.shape != predictions.shape:
        raise ValueError(
            f"images has shape {targets.shape} and reconstructions has shape "
            f"{predictions.shape}; expected the same shape."
        )
    if targets.size == 0:
        raise ValueError(
            f"images has shape {targets.shape}; expected at least one pixel."
        )
    for name, array in (("images", targets), ("reconstructions", predictions)):
        if array.min() < 0.0 or array.max() > 1.0:
            raise ValueError(
                f"{name} has values in [{array.min():.6g}, {array.max():.6g}]; expected values "
                f"in [0, 1] (divide uint8 images by 255; pass probabilities, not logits)."
            )
    clipped = np.clip(predictions, PROBABILITY_EPSILON, 1.0 - PROBABILITY_EPSILON)
    cross_entropy = -(targets * np.log(clipped) + (1.0 - targets) * np.log1p(-clipped))
    return {
        "binary_cross_entropy": float(cross_entropy.mean()),
        "mean_squared_error": float(np.mean((targets - predictions) ** 2)),
    }
