"""Disentanglement metrics: MIG, the FactorVAE metric and DCI.

Each metric compares a representation, the codes `z` [N, D] of N examples (the
posterior means of a VAE's encoder), with the examples' known generating factors
`v` [N, K] (integer factor indices, e.g. `ArraySplit.factors` of dsprites). They
run on one fixed set of encoded examples (the dsprites test split: 10,000 images),
so all three are pure functions of (codes, factors, seed) and do not need to
render or encode anything themselves.

Mutual information gap (MIG; Chen, Li, Grosse and Duvenaud 2018, "Isolating
Sources of Disentanglement in VAEs"): for each factor k,

    MIG_k = (I(z_(1); v_k) - I(z_(2); v_k)) / H(v_k),

where z_(1) and z_(2) are the code dimensions with the largest and second-largest
mutual information with v_k; MIG is the mean over factors, in [0, 1]. The mutual
information is estimated as in disentanglement_lib (Locatello et al. 2019): each
code dimension is discretised into `num_bins` (20) equal-width bins spanning its
range over the N examples, and I(z_j; v_k) and H(v_k) are the plug-in estimates
(in nats) from the N x bins x values contingency table. A copy of the factors
scores 1; a code independent of them scores about the estimator's bias, which
shrinks as N / (bins x values) grows.

FactorVAE metric (Kim and Mnih 2018, "Disentangling by Factorising"): each code
dimension is divided by its empirical standard deviation over the N examples, and
dimensions whose standard deviation is below `prune_threshold` (collapsed to the
prior: their posterior mean does not move) are left out. One vote: draw a factor k
and one of its values uniformly, draw `batch_size` (64) examples with v_k equal to
that value (with replacement, from the N examples), and vote (argmin_j Var_batch
z_j / Var z_j, k). A majority-vote classifier maps each dimension to the factor
with most votes for it among `num_train_votes` (10,000) votes; the score is its
accuracy on `num_eval_votes` (5,000) further votes, in [0, 1] (1 / K at chance;
the train accuracy is reported too). Drawing from the N encoded examples instead
of from the full factor grid is what makes the metric need nothing but codes; with
the 10,000 dsprites test images every factor value has at least ~200 examples.

DCI disentanglement (Eastwood and Williams 2018, "A Framework for the Quantitative
Evaluation of Disentangled Representations"): for each factor k a classifier
predicts v_k from z, trained on a `train_fraction` (0.8) of the examples and
tested on the rest; its feature importances form column k of the importance matrix
R [D, K]. Eastwood and Williams use a random forest or Lasso, disentanglement_lib
gradient-boosted trees; here a random forest (scikit-learn,
`RandomForestClassifier(n_estimators=50, max_depth=8, min_samples_leaf=0.01)`
seeded by `seed`), because multi-class boosting fits one tree per class and
stage, which for the 40 orientations takes minutes on a CPU where the forest takes
a second. The leaves of at least 1% of the training examples keep the forest from
splitting on noise dimensions, which would otherwise take importance (and so
disentanglement) from the informative ones. With
P_jk = R_jk / sum_k R_jk,

    D_j = 1 - H_K(P_j.)  (entropy in base K),   D = sum_j rho_j D_j,
    rho_j = sum_k R_jk / sum_jk R_jk,

completeness C is the same with the roles of j and k swapped (entropy in base D),
and informativeness is the mean test accuracy of the classifiers.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

DEFAULT_NUM_BINS = 20
DEFAULT_BATCH_SIZE = 64
DEFAULT_NUM_TRAIN_VOTES = 10000
DEFAULT_NUM_EVAL_VOTES = 5000
DEFAULT_PRUNE_THRESHOLD = 0.05
DEFAULT_TRAIN_FRACTION = 0.8
DCI_FOREST = {"n_estimators": 50, "max_depth": 8, "min_samples_leaf": 0.01}
METRIC_NAMES = ("mig", "factor_vae", "dci")


def _check(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes = np.asarray(codes, np.float64)
    factors = np.asarray(factors)
    if (
        codes.ndim != 2
        or factors.ndim != 2
        or codes.shape[0] != factors.shape[0]
        or codes.shape[0] < 2
        or not np.issubdtype(factors.dtype, np.integer)
    ):
        raise ValueError(
            f"The disentanglement metrics take codes [N, D] and integer factors "
            f"[N, K] for the same N >= 2 examples; got codes {list(codes.shape)} and "
            f"factors {factors.dtype} {list(factors.shape)}."
        )
    if not np.isfinite(codes).all():
        raise ValueError(
            "The codes hold NaN or infinite values; expected finite "
            "codes (a diverged model cannot be scored)."
        )
    return codes, factors


def discretize(codes: np.ndarray, num_bins: int = DEFAULT_NUM_BINS) -> np.ndarray:
    """Bins each column into `num_bins` equal-width bins over its range.

    Args:
        codes: float [N, D].
        num_bins: bins per column.

    Returns:
        int64 [N, D] bin indices in [0, num_bins); a constant column is all 0.
    """
    codes = np.asarray(codes, np.float64)
    low, high = codes.min(axis=0), codes.max(axis=0)
    width = np.where(high > low, high - low, 1.0)
    bins = np.floor((codes - low) / width * num_bins).astype(np.int64)
    return np.clip(bins, 0, num_bins - 1)


def entropy(values: np.ndarray) -> float:
    """Plug-in entropy (nats) of a non-negative int array [N]."""
    counts = np.bincount(values)
    p = counts[counts > 0] / len(values)
    return float(-(p * np.log(p)).sum())


def mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in mutual information (nats) of two non-negative int arrays [N]."""
    a_values, a = np.unique(a, return_inverse=True)
    b_values, b = np.unique(b, return_inverse=True)
    joint = np.zeros((len(a_values), len(b_values)))
    np.add.at(joint, (a, b), 1.0)
    joint /= len(a)
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    nonzero = joint > 0
    return float((joint[nonzero] * np.log(joint[nonzero] / outer[nonzero])).sum())


def mutual_information_gap(
    codes: np.ndarray, factors: np.ndarray, *, num_bins: int = DEFAULT_NUM_BINS
) -> dict:
    """MIG of codes [N, D] with respect to integer factors [N, K].

    Returns:
        {"mig": mean over factors, "mig_per_factor": [K] gaps,
         "mutual_information": [D][K] nats}. A factor with a single value
        (zero entropy) is left out of the mean.
    """
    codes, factors = _check(codes, factors)
    binned = discretize(codes, num_bins)
    information = np.array(
        [
            [
                mutual_information(binned[:, j], factors[:, k])
                for k in range(factors.shape[1])
            ]
            for j in range(codes.shape[1])
        ]
    )
    gaps = []
    for k in range(factors.shape[1]):
        h = entropy(factors[:, k] - factors[:, k].min())
        if h <= 0.0:
            gaps.append(float("nan"))
            continue
        ordered = np.sort(information[:, k])[::-1]
        second = ordered[1] if len(ordered) > 1 else 0.0
        gaps.append(float((ordered[0] - second) / h))
    finite = [gap for gap in gaps if np.isfinite(gap)]
    return {
        "mig": float(np.mean(finite)) if finite else 0.0,
        "mig_per_factor": gaps,
        "mutual_information": information.tolist(),
    }


def factor_vae_score(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    seed: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_train_votes: int = DEFAULT_NUM_TRAIN_VOTES,
    num_eval_votes: int = DEFAULT_NUM_EVAL_VOTES,
    prune_threshold: float = DEFAULT_PRUNE_THRESHOLD,
) -> dict:
    """The FactorVAE metric of codes [N, D] with respect to integer factors [N, K].

    Returns:
        {"factor_vae": eval accuracy, "factor_vae_train": train accuracy,
         "factor_vae_active_dims": number of dimensions kept}; both accuracies
        are 0 when every dimension is pruned.
    """
    codes, factors = _check(codes, factors)
    rng = np.random.default_rng(seed)
    std = codes.std(axis=0)
    active = np.flatnonzero(std >= prune_threshold)
    result = {"factor_vae_active_dims": int(len(active))}
    if not len(active):
        return {"factor_vae": 0.0, "factor_vae_train": 0.0, **result}
    normalised = codes[:, active] / std[active]
    variances = normalised.var(axis=0)
    num_factors = factors.shape[1]
    # Examples of each value of each factor, for the fixed-factor batches.
    members = [
        [np.flatnonzero(factors[:, k] == value) for value in np.unique(factors[:, k])]
        for k in range(num_factors)
    ]

    def votes(count):
        table = np.zeros((len(active), num_factors), np.int64)
        for _ in range(count):
            k = rng.integers(num_factors)
            pool = members[k][rng.integers(len(members[k]))]
            batch = normalised[rng.choice(pool, size=batch_size, replace=True)]
            table[np.argmin(batch.var(axis=0) / variances), k] += 1
        return table

    train, evaluation = votes(num_train_votes), votes(num_eval_votes)
    classifier = np.argmax(train, axis=1)
    return {
        "factor_vae": float(
            evaluation[np.arange(len(active)), classifier].sum() / num_eval_votes
        ),
        "factor_vae_train": float(train.max(axis=1).sum() / num_train_votes),
        **result,
    }


def _normalised_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy in base `base` of each row of a non-negative [R, C] matrix."""
    totals = p.sum(axis=1, keepdims=True)
    p = np.divide(p, totals, out=np.full_like(p, 1.0 / p.shape[1]), where=totals > 0)
    logs = np.log(np.where(p > 0, p, 1.0)) / np.log(base)
    return -(p * logs).sum(axis=1)


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) of an importance matrix R [D, K]."""
    importance = np.abs(np.asarray(importance, np.float64))
    num_codes, num_factors = importance.shape
    total = importance.sum()
    if total <= 0:
        return 0.0, 0.0
    per_code = (
        1.0 - _normalised_entropy(importance, max(num_factors, 2))
        if num_factors > 1
        else np.ones(num_codes)
    )
    disentanglement = float((importance.sum(axis=1) / total * per_code).sum())
    per_factor = (
        1.0 - _normalised_entropy(importance.T, max(num_codes, 2))
        if num_codes > 1
        else np.ones(num_factors)
    )
    completeness = float((importance.sum(axis=0) / total * per_factor).sum())
    return disentanglement, completeness


def dci(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    seed: int,
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
) -> dict:
    """DCI of codes [N, D] with respect to integer factors [N, K].

    Returns:
        {"dci_disentanglement", "dci_completeness", "dci_informativeness" (mean
         test accuracy), "dci_importance": [D][K]}.
    """
    # scikit-learn is imported here so that the rest of the package loads
    # without it.
    from sklearn import ensemble  # pylint: disable=g-import-not-at-top

    codes, factors = _check(codes, factors)
    order = np.random.default_rng(seed).permutation(len(codes))
    num_train = int(round(train_fraction * len(codes)))
    if not 1 <= num_train < len(codes):
        raise ValueError(
            f"train_fraction={train_fraction} leaves no train or test "
            f"examples of {len(codes)}; expected it in (0, 1)."
        )
    train, test = order[:num_train], order[num_train:]
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    accuracies = []
    for k in range(factors.shape[1]):
        forest = ensemble.RandomForestClassifier(
            random_state=seed, n_jobs=1, **DCI_FOREST
        )
        forest.fit(codes[train], factors[train, k])
        importance[:, k] = forest.feature_importances_
        accuracies.append(float(forest.score(codes[test], factors[test, k])))
    disentanglement, completeness = dci_from_importance(importance)
    return {
        "dci_disentanglement": disentanglement,
        "dci_completeness": completeness,
        "dci_informativeness": float(np.mean(accuracies)),
        "dci_importance": importance.tolist(),
    }


def check_metric_names(metrics) -> tuple[str, ...]:
    """`metrics` as a tuple, or ValueError naming the unknown ones."""
    unknown = [name for name in metrics if name not in METRIC_NAMES]
    if unknown:
        raise ValueError(
            f"Unknown disentanglement metrics {unknown}; expected "
            f"names from {METRIC_NAMES}."
        )
    return tuple(metrics)


def evaluate(
    codes: np.ndarray, factors: np.ndarray, *, seed: int, metrics=METRIC_NAMES
) -> dict:
    """The metrics named in `metrics` (a subset of METRIC_NAMES), one dict."""
    check_metric_names(metrics)
    result = {}
    if "mig" in metrics:
        result.update(mutual_information_gap(codes, factors))
    if "factor_vae" in metrics:
        result.update(factor_vae_score(codes, factors, seed=seed))
    if "dci" in metrics:
        result.update(dci(codes, factors, seed=seed))
    return result


def posterior_means(
    model, images: np.ndarray, labels: np.ndarray | None = None, *, batch_size: int = 500
) -> np.ndarray:
    """The means of q(z|x) of `images`, the codes the metrics score.

    Args:
        model: a model with `encode(images, labels)` returning q(z|x).
        images: float32 [N, *image_shape], as the model sees them.
        labels: one-hot float32 [N, num_classes] for a conditional model, else None.
        batch_size: images encoded at once.

    Returns:
        float32 [N, latent_dim].
    """
    means = []
    for start in range(0, len(images), batch_size):
        stop = start + batch_size
        posterior = model.encode(
            tf.constant(images[start:stop]),
            None if labels is None else tf.constant(labels[start:stop]),
        )
        means.append(posterior.mean().numpy())
    return np.concatenate(means, axis=0)


def evaluate_model(
    model,
    images: np.ndarray,
    factors: np.ndarray,
    *,
    seed: int,
    metrics=METRIC_NAMES,
    labels: np.ndarray | None = None,
    batch_size: int = 500,
) -> dict:
    """Encodes `images` (posterior means) and scores the codes against `factors`.

    Returns:
        `evaluate`'s dict plus "num_examples", "metrics" and "seconds".
    """
    start = time.perf_counter()
    codes = posterior_means(model, images, labels, batch_size=batch_size)
    result = evaluate(codes, factors, seed=seed, metrics=metrics)
    result.update(
        num_examples=int(len(codes)),
        metrics=list(metrics),
        seconds=time.perf_counter() - start,
    )
    return result


__all__ = (
    "METRIC_NAMES",
    "check_metric_names",
    "evaluate_model",
    "posterior_means",
    "dci",
    "dci_from_importance",
    "discretize",
    "entropy",
    "evaluate",
    "factor_vae_score",
    "mutual_information",
    "mutual_information_gap",
)
