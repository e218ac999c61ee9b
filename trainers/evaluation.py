"""The evaluation suite: likelihood, reconstruction and sample quality.

One call measures a trained VAE the way the literature compares them:

* test ELBO (closed-form KL) over the whole test split, in nats per image;
* the importance-sampled log-likelihood log p(x) with k samples (Burda et
  al., 2016), on the first `likelihood_examples` test images, reported as a
  negative log-likelihood (NLL) with its standard error and the ELBO of the
  same images, so that the gap log p(x) - ELBO is visible;
* reconstruction error of the test images through the posterior mean, per
  pixel: binary cross-entropy (nats) and mean squared error;
* sample quality measured with a classifier trained on the real data: the
  Frechet distance between its penultimate-layer features of generated
  samples and of test images (as TF-GAN's MNIST Frechet distance does), and
  the classifier score exp(E_x KL(p(y|x) || p(y))) (Salimans et al., 2016).
  The same two numbers for held-out real images give the reference row every
  table needs: the best a model could score.

For a conditional VAE (`model.is_conditional`) every number is conditional
on the test labels (the ELBO and NLL bound log p(x|y)), samples are drawn for
the labels 0, 1, ..., K-1 in turn, and two more metrics use the classifier:

* conditional accuracy: the share of samples generated for label y that the
  classifier reads as y, per label and overall;
* style-transfer accuracy: test images are encoded with their own labels to
  their posterior means and decoded with every label y; the share of those
  the classifier reads as y, per target label and overall.

Generated samples are the decoder's mean images for prior draws; the
classifier sees real images as grayscale intensities in [0, 1], so the
Frechet distance compares like with like whatever binarization the VAE was
trained with.
"""

from collections.abc import Callable, Mapping, MutableMapping
import dataclasses
import hashlib
import json
import time
from typing import Any

from absl import logging
import numpy as np
import tensorflow as tf

from trainers import likelihood_comparison
from trainers import losses
from vae import atomic_files
from vae import likelihood
from vae import models
from vae import sample_quality


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """What to measure and how hard.

    Attributes:
      num_importance_samples: k of the importance-sampled likelihood (0 skips
        it).
      likelihood_examples: test images the likelihood is estimated on (0: the
        whole split). The cost is k x examples decoder passes.
      chunk_size: importance samples decoded at once (bounds memory).
      num_generated: prior samples for the sample-quality metrics.
      style_transfer_examples: test images decoded with every label for the
        style-transfer accuracy of a conditional model.
      batch_size: images per batch for everything else.
      seed: seeds every draw, so two evaluations of a model agree.
    """

    num_importance_samples: int = 1000
    likelihood_examples: int = 1000
    chunk_size: int = 250
    num_generated: int = 10000
    style_transfer_examples: int = 1000
    batch_size: int = 500
    seed: int = 0

    def validate(self) -> None:
        for name in ("num_importance_samples", "likelihood_examples"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"EvaluationConfig.{name} must be >= 0, got {getattr(self, name)}."
                )
        for name in (
            "chunk_size",
            "num_generated",
            "batch_size",
            "style_transfer_examples",
        ):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"EvaluationConfig.{name} must be >= 1, got {getattr(self, name)}."
                )


def in_batches(function, *arrays: np.ndarray | None, batch_size: int) -> np.ndarray:
    """`function` over aligned slices of `arrays` (None entries are skipped)."""
    present = [array for array in arrays if array is not None]
    outputs = [
        np.asarray(
            function(
                *(tf.constant(array[start : start + batch_size]) for array in present)
            )
        )
        for start in range(0, len(present[0]), batch_size)
    ]
    return np.concatenate(outputs)


def one_hot(labels: np.ndarray | None, num_classes: int) -> np.ndarray | None:
    """float32 one-hot rows of `labels`; None without labels or classes."""
    if labels is None or not num_classes:
        return None
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels)]


def elbo_terms_per_example(
    model,
    images: np.ndarray,
    *,
    batch_size: int,
    seed: int,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """Reconstruction and KL (closed form if the model has one, else the
    Monte Carlo estimate over all its latents) of each image, float64 [n, 2].

    `labels` (one-hot) are given to a conditional model.
    """

    # Closed form where the model has one; a learned prior, a flow posterior
    # or a second latent layer takes the Monte Carlo KL (seeded, unbiased).
    kl_estimator = "analytic" if getattr(model, "has_analytic_kl", True) else "mc"

    @tf.function
    def terms(batch, batch_labels, batch_seed):
        values = losses.elbo_terms(
            model,
            batch,
            labels=batch_labels,
            kl_estimator=kl_estimator,
            seed=batch_seed,
            is_training=False,
        )
        return tf.stack([values.distortion, values.rate], axis=1)

    per_example = np.concatenate(
        [
            terms(
                tf.constant(images[start : start + batch_size]),
                None
                if labels is None
                else tf.constant(labels[start : start + batch_size]),
                tf.constant([seed, index], tf.int32),
            ).numpy()
            for index, start in enumerate(range(0, len(images), batch_size))
        ]
    )
    return per_example.astype(np.float64)


def _elbo_summary(per_example: np.ndarray) -> dict[str, float]:
    """ELBO, reconstruction and KL averaged over `elbo_terms_per_example`."""
    reconstruction, kl = per_example.mean(axis=0)
    return {
        "elbo": float(-(reconstruction + kl)),
        "reconstruction": float(reconstruction),
        "kl": float(kl),
    }


class EvaluationInterrupted(Exception):
    """A stop was requested during the likelihood estimate; what was done is
    saved in the progress file, and the same evaluation resumes from it."""

    def __init__(self, done: int, total: int, path: str | None):
        super().__init__(
            f"stopped after {done} of {total} images"
            + (f"; progress saved in {path}" if path else "")
        )
        self.done, self.total, self.path = done, total, path


class LikelihoodProgress:
    """The per-image log-likelihoods estimated so far, kept in a file so that
    an interrupted estimate (a signal, kill -9, a preempted job) resumes
    where it stopped instead of starting over.

    The file holds a key of everything the numbers depend on (the model's
    weights, k, the chunk and batch sizes, the seed, the images); a file with
    another key is ignored, so a resumed estimate always equals an
    uninterrupted one: batch i is drawn from the seed (seed, i) whether it
    runs now or after a resume.

    Args:
      path: the progress file (.npz), written atomically.
      key: JSON-serialisable description of the estimate.
    """

    def __init__(self, path: str, key: Mapping[str, Any]):
        self.path = path
        self.key = json.dumps(key, sort_keys=True)

    def load(self) -> np.ndarray:
        """The log-likelihoods saved for this key (empty if none)."""
        try:
            with np.load(self.path) as saved:
                if str(saved["key"]) == self.key:
                    return np.asarray(saved["log_likelihoods"], np.float64)
                logging.info(
                    "Ignoring %s: it was written for another estimate.", self.path
                )
        except (OSError, KeyError, ValueError):
            pass
        return np.zeros([0], np.float64)

    def save(self, log_likelihoods: np.ndarray) -> None:
        atomic_files.write_npz(
            self.path, {"key": np.array(self.key), "log_likelihoods": log_likelihoods}
        )


def images_digest(images: np.ndarray) -> str:
    """SHA-256 of an image array's shape and bytes, for progress keys."""
    digest = hashlib.sha256(repr(images.shape).encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    return digest.hexdigest()


def negative_log_likelihood(
    model,
    images: np.ndarray,
    *,
    num_samples: int,
    chunk_size: int,
    batch_size: int,
    seed: int,
    labels: np.ndarray | None = None,
    progress: LikelihoodProgress | None = None,
    stop_requested: Callable[[], bool] | None = None,
) -> dict[str, float]:
    """Importance-sampled NLL of `images` with its standard error.

    `labels` (one-hot) make it the conditional NLL -log p(x|y). With
    `progress`, the images already estimated are read from it and each batch
    is added to it as it is done; `stop_requested()`, checked after every
    batch, ends the estimate early with `EvaluationInterrupted`.
    """
    done_values = progress.load() if progress is not None else np.zeros([0])
    # Batch boundaries are fixed, so a resume starts at a batch boundary.
    first = len(done_values) // batch_size
    per_example = [done_values[: first * batch_size]]
    if first:
        logging.info(
            "NLL (k=%d): resuming after %d/%d images.",
            num_samples,
            first * batch_size,
            len(images),
        )
    started = last_report = time.perf_counter()
    resumed_from = first * batch_size
    for index, start in enumerate(range(0, len(images), batch_size)):
        if index < first:
            continue
        batch = tf.constant(images[start : start + batch_size])
        batch_labels = (
            None if labels is None else tf.constant(labels[start : start + batch_size])
        )
        per_example.append(
            likelihood.importance_sampled_log_likelihood(
                model,
                batch,
                num_samples=num_samples,
                chunk_size=chunk_size,
                seed=(seed, index),
                labels=batch_labels,
            ).numpy()
        )
        now, done = time.perf_counter(), start + len(batch)
        if progress is not None:
            progress.save(np.concatenate(per_example).astype(np.float64))
        if stop_requested is not None and stop_requested() and done < len(images):
            raise EvaluationInterrupted(
                done, len(images), progress.path if progress else None
            )
        # k x images decoder passes can take many minutes: say how far along.
        if now - last_report > 30 and done < len(images):
            last_report = now
            remaining = (now - started) / (done - resumed_from) * (len(images) - done)
            logging.info(
                "NLL (k=%d): %d/%d images, about %.0f s left.",
                num_samples,
                done,
                len(images),
                remaining,
            )
    log_likelihoods = np.concatenate(per_example).astype(np.float64)
    return {
        "nll": float(-log_likelihoods.mean()),
        "nll_standard_error": likelihood_comparison.standard_error_of_mean(
            log_likelihoods
        ),
        "num_samples": int(num_samples),
        "examples": int(len(log_likelihoods)),
    }


def classifier_metrics(
    classifier, images: np.ndarray, *, reference_features: np.ndarray, batch_size: int
) -> dict[str, float]:
    """Frechet distance to the reference features, and classifier score."""
    features = in_batches(classifier.features, images, batch_size=batch_size)
    logits = in_batches(classifier.logits, images, batch_size=batch_size)
    probabilities = tf.nn.softmax(logits.astype(np.float64)).numpy()
    return {
        "frechet_distance": sample_quality.frechet_distance(features, reference_features),
        "classifier_score": sample_quality.classifier_score(probabilities),
    }


def _predicted_labels(classifier, images: np.ndarray, batch_size: int) -> np.ndarray:
    return in_batches(classifier.logits, images, batch_size=batch_size).argmax(axis=-1)


def style_transfer(
    model, images: np.ndarray, labels: np.ndarray, target_label: int, *, batch_size: int
) -> np.ndarray:
    """Decodes each image's posterior mean (given its own one-hot label) with
    `target_label` instead; returns the decoder's mean images."""
    targets = one_hot(np.full(len(images), target_label), model.num_classes)
    codes = in_batches(
        lambda x, y: model.encode(x, y).mean(), images, labels, batch_size=batch_size
    )
    return in_batches(model.decode_mean, codes, targets, batch_size=batch_size)


def evaluate_vae(
    model,
    *,
    test_images: np.ndarray,
    test_labels: np.ndarray | None = None,
    real_test_images: np.ndarray | None = None,
    real_reference_images: np.ndarray | None = None,
    classifier=None,
    config: EvaluationConfig = EvaluationConfig(),
    likelihood_progress: Callable[[Mapping[str, Any]], LikelihoodProgress] | None = None,
    stop_requested: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Every metric that applies to `model`.

    Args:
      model: a VAE (`encode`, `decode`, `decode_mean`, `prior`; a conditional
        one also has `num_classes` > 0 and `is_conditional`).
      test_images: float32 [n, *image_shape], as the model sees them (after
        binarization).
      test_labels: int [n], their labels; needed for a conditional model.
      real_test_images: the same test images as grayscale intensities in
        [0, 1], for the classifier; needed for the sample-quality metrics.
      real_reference_images: held-out real images (not the test set) for the
        real-data reference row; optional.
      classifier: an object with `features(images)` and `logits(images)`;
        None skips the sample-quality metrics.
      config: what to measure.
      likelihood_progress: key -> the `LikelihoodProgress` that the NLL
        estimate resumes from and saves to (None: it is not saved).
      stop_requested: checked between batches of the NLL estimate, which
        raises `EvaluationInterrupted` when it returns True.

    Returns:
      A JSON-ready dict: "test" (elbo, reconstruction, kl), "likelihood",
      "reconstruction_error", "samples" and "real_data" (sample-quality
      metrics of generated and of real images), for a conditional model
      "conditional_accuracy" and "style_transfer_accuracy" (overall and per
      label), and "seconds" per part.

    Raises:
      ValueError: a conditional model without `test_labels`.
    """
    config.validate()
    num_classes = int(getattr(model, "num_classes", 0) or 0)
    if num_classes and test_labels is None:
        raise ValueError("evaluate_vae: a conditional model needs test_labels.")
    labels = one_hot(test_labels, num_classes)
    results: dict[str, Any] = {"seconds": {}}
    start = time.perf_counter()
    elbo_terms = elbo_terms_per_example(
        model, test_images, batch_size=config.batch_size, seed=config.seed, labels=labels
    )
    results["test"] = _elbo_summary(elbo_terms)
    results["seconds"]["test_elbo"] = time.perf_counter() - start

    if config.num_importance_samples > 0:
        start = time.perf_counter()
        count = config.likelihood_examples or len(test_images)
        subset = test_images[:count]
        subset_labels = None if labels is None else labels[:count]
        # Small batches keep chunk_size x batch latents in memory at once.
        batch_size = 20
        progress = None
        if likelihood_progress is not None:
            progress = likelihood_progress(
                {
                    "num_samples": config.num_importance_samples,
                    "chunk_size": config.chunk_size,
                    "batch_size": batch_size,
                    "seed": config.seed,
                    "images": images_digest(subset),
                    "labels": (
                        None if subset_labels is None else images_digest(subset_labels)
                    ),
                }
            )
        nll = negative_log_likelihood(
            model,
            subset,
            num_samples=config.num_importance_samples,
            chunk_size=config.chunk_size,
            batch_size=batch_size,
            seed=config.seed,
            labels=subset_labels,
            progress=progress,
            stop_requested=stop_requested,
        )
        # The per-image ELBO is already known: no second pass over them.
        nll["elbo_same_examples"] = _elbo_summary(elbo_terms[:count])["elbo"]
        results["likelihood"] = nll
        results["seconds"]["likelihood"] = time.perf_counter() - start
        logging.info(
            "NLL (k=%d, %d images): %.2f +- %.2f nats",
            nll["num_samples"],
            nll["examples"],
            nll["nll"],
            nll["nll_standard_error"],
        )

    start = time.perf_counter()
    means = in_batches(
        lambda *x: model.encode(*x).mean(),
        test_images,
        labels,
        batch_size=config.batch_size,
    )
    reconstructions = in_batches(
        model.decode_mean, means, labels, batch_size=config.batch_size
    )
    if len(model.image_shape) == 3:
        results["reconstruction_error"] = sample_quality.reconstruction_errors(
            test_images, np.clip(reconstructions, 0.0, 1.0)
        )
    results["seconds"]["reconstruction"] = time.perf_counter() - start

    if classifier is not None and real_test_images is not None:
        start = time.perf_counter()
        reference_features = in_batches(
            classifier.features, real_test_images, batch_size=config.batch_size
        )
        prior_draws = models.prior_draws(
            model,
            np.random.default_rng(config.seed)
            .standard_normal([config.num_generated, model.latent_dim])
            .astype(np.float32),
            config.seed,
        ).numpy()
        # Labels 0, 1, ..., K-1 in turn: every class equally often.
        sample_targets = (
            np.arange(config.num_generated) % num_classes if num_classes else None
        )
        samples = np.clip(
            in_batches(
                model.decode_mean,
                prior_draws,
                one_hot(sample_targets, num_classes),
                batch_size=config.batch_size,
            ),
            0.0,
            1.0,
        )
        results["samples"] = classifier_metrics(
            classifier,
            samples,
            reference_features=reference_features,
            batch_size=config.batch_size,
        )
        if real_reference_images is not None:
            results["real_data"] = classifier_metrics(
                classifier,
                real_reference_images,
                reference_features=reference_features,
                batch_size=config.batch_size,
            )
        if num_classes:
            results["conditional_accuracy"] = sample_quality.conditional_accuracy(
                _predicted_labels(classifier, samples, config.batch_size),
                sample_targets,
                num_classes,
            )
            count = min(config.style_transfer_examples, len(test_images))
            predicted, targets = [], []
            for target in range(num_classes):
                transferred = style_transfer(
                    model,
                    test_images[:count],
                    labels[:count],
                    target,
                    batch_size=config.batch_size,
                )
                predicted.append(
                    _predicted_labels(
                        classifier, np.clip(transferred, 0.0, 1.0), config.batch_size
                    )
                )
                targets.append(np.full(count, target))
            results["style_transfer_accuracy"] = sample_quality.conditional_accuracy(
                np.concatenate(predicted), np.concatenate(targets), num_classes
            )
        results["seconds"]["sample_quality"] = time.perf_counter() - start
    return results


def scalar_summaries(results: Mapping[str, Any]) -> dict[str, float]:
    """The headline numbers of `evaluate_vae`'s results, flat, for logging.

    Keys are TensorBoard tags such as "likelihood/nll" or "samples/
    frechet_distance"; timings and bookkeeping (sample counts) are left out.
    """
    wanted = {
        "test": ("elbo", "reconstruction", "kl"),
        "likelihood": ("nll", "nll_standard_error", "elbo_same_examples"),
        "reconstruction_error": ("binary_cross_entropy", "mean_squared_error"),
        "samples": ("frechet_distance", "classifier_score"),
        "real_data": ("frechet_distance", "classifier_score"),
    }
    summaries = {
        f"{group}/{key}": float(results[group][key])
        for group, keys in wanted.items()
        if group in results
        for key in keys
        if key in results[group]
    }
    for group in ("conditional_accuracy", "style_transfer_accuracy"):
        if group in results:
            summaries[f"{group}/overall"] = float(results[group]["overall"])
            for label, value in enumerate(results[group]["per_label"]):
                if value is not None:
                    summaries[f"{group}/label_{label}"] = float(value)
    return summaries


class EvaluationHook:
    """Runs `evaluate_vae` every `every_epochs` epochs and after the last.

    Its results join the epoch's record under "evaluation" (so they reach
    metrics.json) and TensorBoard under "evaluation/...". The real-data row
    does not change during training, so it is measured once and reused.

    Args:
      every_epochs: evaluate after epochs every_epochs, 2 * every_epochs, ...
        and after the final epoch.
      test_images, test_labels, real_test_images, real_reference_images,
        classifier, config: as for `evaluate_vae`.
    """

    def __init__(
        self,
        *,
        every_epochs: int,
        test_images: np.ndarray,
        test_labels: np.ndarray | None = None,
        real_test_images: np.ndarray | None = None,
        real_reference_images: np.ndarray | None = None,
        classifier=None,
        config: EvaluationConfig = EvaluationConfig(),
    ):
        if every_epochs < 1:
            raise ValueError(
                f"EvaluationHook: every_epochs must be >= 1, got {every_epochs}."
            )
        config.validate()
        self.every_epochs = every_epochs
        self.test_images = test_images
        self.test_labels = test_labels
        self.real_test_images = real_test_images
        self.real_reference_images = real_reference_images
        self.classifier = classifier
        self.config = config
        self._real_data: dict[str, float] | None = None

    def on_epoch_end(self, trainer, epoch: int, logs: MutableMapping[str, Any]) -> None:
        completed = epoch + 1
        if completed % self.every_epochs and completed != trainer.config.epochs:
            return
        start = time.perf_counter()
        measure_real_data = self._real_data is None
        results = evaluate_vae(
            trainer.model,
            test_images=self.test_images,
            test_labels=self.test_labels,
            real_test_images=self.real_test_images,
            real_reference_images=(
                self.real_reference_images if measure_real_data else None
            ),
            classifier=self.classifier,
            config=self.config,
        )
        if measure_real_data and "real_data" in results:
            self._real_data = results["real_data"]
        elif self._real_data is not None:
            results["real_data"] = self._real_data
        summaries = scalar_summaries(results)
        with trainer.summary_writer.as_default(step=int(trainer.global_step.numpy())):
            for tag, value in summaries.items():
                tf.summary.scalar(f"evaluation/{tag}", value)
        logs["evaluation"] = summaries
        logging.info(
            "epoch %d evaluation (%.0f s): %s",
            completed,
            time.perf_counter() - start,
            ", ".join(f"{tag}={value:.4g}" for tag, value in summaries.items()),
        )
