"""Paired comparison of two models' test NLL, image by image.

`vae-evaluate` keeps, beside its results, the importance-sampled
log-likelihood of every test image it estimated (`PER_IMAGE_SUFFIX`). Two
models measured on the same images then differ in NLL by

    difference = NLL(other) - NLL(baseline)
               = mean_i [log p_baseline(x_i) - log p_other(x_i)],

and the standard error of that mean is the sample standard deviation of the
per-image differences over sqrt(n). Each model's own standard error is
dominated by how much harder some images are than others; that part is
common to both models and cancels in the differences, so the paired error
is several times smaller than sqrt(se_baseline^2 + se_other^2), the error
of two independent estimates, which is what the two NLLs alone allow. Both
treat the test images as a sample and include the importance sampling's own
noise; neither includes the spread over training seeds.

Pairing needs the same images in the same order: the per-image file carries
a digest of the images the model saw (after binarization, which for a
dynamically binarized dataset depends on the run's seed), and runs measured
on different images are refused.

Numpy only: `vae-compare` does not load TensorFlow.
"""

from collections.abc import Mapping, Sequence
import dataclasses
import json
import math
import os
from typing import Any

import numpy as np

# The per-image file of an evaluation written to OUTPUT is OUTPUT + this.
PER_IMAGE_SUFFIX = ".nll-per-image.npz"


class ComparisonError(ValueError):
    """Evaluations that cannot be compared; the message says why."""


@dataclasses.dataclass(frozen=True)
class PerImageLikelihoods:
    """One evaluation's likelihood estimate, image by image.

    Attributes:
      name: how tables call it (the workdir, or the results file).
      log_likelihoods: float64 `[n]`, log p(x_i) of test image i, in nats.
      num_samples: k of the importance-sampled estimate.
      images: digest of the images estimated (after binarization).
      labels: digest of their labels for a conditional model, else None.
    """

    name: str
    log_likelihoods: np.ndarray
    num_samples: int
    images: str
    labels: str | None

    @property
    def nll(self) -> float:
        return float(-self.log_likelihoods.mean())

    @property
    def standard_error(self) -> float:
        return standard_error_of_mean(self.log_likelihoods)


def standard_error_of_mean(values: np.ndarray) -> float:
    """The sample standard deviation of `values` over sqrt(n); 0 for n < 2.

    The error of an NLL over test images, and of a mean of per-image
    differences (evaluation.py uses it too, so both are the same formula).
    """
    if len(values) < 2:
        return 0.0
    return float(values.std(ddof=1) / math.sqrt(len(values)))


def read_per_image(results_path: str, name: str | None = None) -> PerImageLikelihoods:
    """Reads the per-image estimate that the results file `results_path`
    (an eval.json) names.

    Raises:
      ComparisonError: the results hold no likelihood estimate, name no
        per-image file (written before evaluations kept one), or the file
        is missing or unreadable.
    """
    name = name or results_path
    try:
        with open(results_path) as stream:
            results = json.load(stream)
    except FileNotFoundError:
        raise ComparisonError(
            f"{results_path} does not exist; expected the eval.json that "
            "vae-evaluate writes (or a workdir holding one)."
        ) from None
    except (OSError, ValueError) as error:
        raise ComparisonError(
            f"{results_path} cannot be read as evaluation results: {error}."
        ) from None
    likelihood = results.get("likelihood") if isinstance(results, dict) else None
    if not likelihood:
        raise ComparisonError(
            f"{results_path} holds no likelihood estimate; run vae-evaluate "
            "with --num_importance_samples above 0 on that run first."
        )
    if "per_image" not in likelihood:
        raise ComparisonError(
            f"{results_path} names no per-image log-likelihoods (it was "
            "written before vae-evaluate kept them). Run the same vae-evaluate "
            "command again: it gives the same numbers and writes "
            f"{os.path.basename(results_path) + PER_IMAGE_SUFFIX} beside them."
        )
    path = os.path.join(os.path.dirname(results_path), likelihood["per_image"])
    try:
        with np.load(path) as saved:
            key = json.loads(str(saved["key"]))
            values = np.asarray(saved["log_likelihoods"], np.float64)
    except FileNotFoundError:
        raise ComparisonError(
            f"{path}, the per-image log-likelihoods {results_path} names, "
            "does not exist; run the same vae-evaluate command again to "
            "write it."
        ) from None
    except (OSError, KeyError, ValueError) as error:
        raise ComparisonError(
            f"{path} cannot be read as per-image log-likelihoods ({error}); "
            "run the same vae-evaluate command again to write it anew."
        ) from None
    if values.ndim != 1 or len(values) != int(likelihood["examples"]):
        raise ComparisonError(
            f"{path} holds {values.shape} log-likelihoods, but {results_path} "
            f"reports an estimate on {likelihood['examples']} images; run the "
            "same vae-evaluate command again to write both anew."
        )
    return PerImageLikelihoods(
        name=name,
        log_likelihoods=values,
        num_samples=int(key["num_samples"]),
        images=str(key["images"]),
        labels=key.get("labels"),
    )


def paired_difference(baseline: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """NLL(other) - NLL(baseline) from per-image log-likelihoods of the same
    images, with the standard error of the mean of the per-image differences.

    Args:
      baseline, other: float `[n]`, log p(x_i) under each model.

    Returns:
      {"difference", "standard_error"} in nats; negative: `other` is better.
    """
    baseline = np.asarray(baseline, np.float64)
    other = np.asarray(other, np.float64)
    if baseline.shape != other.shape or baseline.ndim != 1:
        raise ValueError(
            f"paired_difference: expected two [n] arrays, got {baseline.shape} "
            f"and {other.shape}."
        )
    differences = baseline - other
    return {
        "difference": float(differences.mean()),
        "standard_error": standard_error_of_mean(differences),
    }


def compare(evaluations: Sequence[PerImageLikelihoods]) -> dict[str, Any]:
    """Each evaluation's NLL, and its paired difference from the first's.

    Args:
      evaluations: two or more, measured on the same images.

    Returns:
      A JSON-ready dict: "baseline" (the first's name), "examples" and
      "rows", one per evaluation with name, num_samples, nll,
      nll_standard_error and, for all but the first, difference,
      difference_standard_error (paired) and
      independent_standard_error (what the two NLLs alone would allow).

    Raises:
      ComparisonError: fewer than two, or not all on the same images.
    """
    if len(evaluations) < 2:
        raise ComparisonError(
            f"A comparison needs two or more evaluations; got {len(evaluations)}."
        )
    baseline = evaluations[0]
    for other in evaluations[1:]:
        _check_same_images(baseline, other)
    rows = []
    for evaluation in evaluations:
        row: dict[str, Any] = {
            "name": evaluation.name,
            "num_samples": evaluation.num_samples,
            "nll": evaluation.nll,
            "nll_standard_error": evaluation.standard_error,
        }
        if evaluation is not baseline:
            paired = paired_difference(
                baseline.log_likelihoods, evaluation.log_likelihoods
            )
            row["difference"] = paired["difference"]
            row["difference_standard_error"] = paired["standard_error"]
            row["independent_standard_error"] = math.hypot(
                baseline.standard_error, evaluation.standard_error
            )
        rows.append(row)
    return {
        "baseline": baseline.name,
        "examples": int(len(baseline.log_likelihoods)),
        "rows": rows,
    }


def _check_same_images(baseline: PerImageLikelihoods, other: PerImageLikelihoods):
    if len(baseline.log_likelihoods) != len(other.log_likelihoods):
        raise ComparisonError(
            f"{other.name} was estimated on {len(other.log_likelihoods)} test "
            f"images and {baseline.name} on {len(baseline.log_likelihoods)}; "
            "a paired comparison needs the same images. Evaluate both with "
            "the same --likelihood_examples."
        )
    if (other.images, other.labels) != (baseline.images, baseline.labels):
        raise ComparisonError(
            f"{other.name} and {baseline.name} were estimated on different "
            "test images (or labels): runs on different datasets, or with "
            "dynamic binarization and different --seed values, which "
            "binarize the test images differently. A paired comparison needs "
            "the same images."
        )


def format_table(comparison: Mapping[str, Any]) -> str:
    """A plain-text table of `compare`'s result."""
    names = [row["name"] for row in comparison["rows"]]
    width = max(len("evaluation"), *(len(name) for name in names))
    lines = [
        f"{'evaluation':{width}s} {'k':>6s} {'NLL':>16s} "
        f"{'against the first':>18s} {'(independent)':>13s}"
    ]
    for row in comparison["rows"]:
        nll = f"{row['nll']:.2f}+-{row['nll_standard_error']:.2f}"
        if "difference" in row:
            against = f"{row['difference']:+.2f}+-{row['difference_standard_error']:.2f}"
            independent = f"+-{row['independent_standard_error']:.2f}"
        else:
            against, independent = "-", ""
        lines.append(
            f"{row['name']:{width}s} {row['num_samples']:6d} {nll:>16s} "
            f"{against:>18s} {independent:>13s}"
        )
    lines.append(
        f"NLL in nats on the same {comparison['examples']} test images; "
        "against the first: the mean of the per-image differences with its "
        "standard error (paired); in brackets, the standard error the two "
        "NLLs alone would give."
    )
    if len({row["num_samples"] for row in comparison["rows"]}) > 1:
        lines.append(
            "The estimates use different k: a difference also holds the "
            "estimators' different biases (a larger k gives a lower NLL)."
        )
    return "\n".join(lines)
