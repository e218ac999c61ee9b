"""Evaluation of a run from a plain config; used by launch/evaluate.py.

Also prepares the data and classifier that training-time evaluation
(`--evaluate_every_epochs` of launch/train.py) uses, so both report the same
numbers.
"""

from collections.abc import Callable
import dataclasses
import glob
import hashlib
import os
from typing import Any

from absl import logging
import numpy as np

from launch import errors
from launch import flag_types
from launch import runs
from trainers import classification
from trainers import evaluation
from trainers import likelihood_comparison
from vae import atomic_files
from vae import datasets
from vae import disentanglement

CLASSIFIER_DATASETS = ("mnist", "fashion_mnist")


@dataclasses.dataclass(frozen=True)
class EvaluateProgramConfig:
    workdir: str
    data_dir: str | None = None
    source: str = "checkpoint"
    num_importance_samples: int = 1000
    likelihood_examples: int = 1000
    chunk_size: int = 250
    num_generated: int = 5000
    sample_quality: bool = True
    classifier_dir: str | None = None
    seed: int = 0
    output: str | None = None
    # Disentanglement metrics (vae.disentanglement.METRIC_NAMES); None: all of
    # them where the dataset has known factors, none elsewhere.
    disentanglement: tuple[str, ...] | None = None


def disentanglement_metrics(
    requested: tuple[str, ...] | None, dataset: str
) -> tuple[str, ...]:
    """The disentanglement metrics to compute for a run on `dataset`.

    Raises:
      ConfigError: an unknown metric name, or metrics asked for on a dataset
        whose generating factors are unknown.
    """
    if requested is None:
        return disentanglement.METRIC_NAMES if dataset in datasets.FACTOR_DATASETS else ()
    try:
        requested = disentanglement.check_metric_names(requested)
    except ValueError as error:
        raise errors.ConfigError(f"--disentanglement: {error}") from None
    if requested and dataset not in datasets.FACTOR_DATASETS:
        raise errors.ConfigError(
            f"--disentanglement={','.join(requested)} asks for disentanglement "
            f"metrics, which compare the codes with the known generating "
            f"factors of each test image; the run was trained on {dataset!r}, "
            f"whose factors are unknown. Expected a dataset with factors "
            f"({', '.join(datasets.FACTOR_DATASETS)}), or "
            f"--disentanglement=none."
        )
    return requested


def default_classifier_dir() -> str:
    return flag_types.default_cache_dir("classifiers")


@dataclasses.dataclass(frozen=True)
class EvaluationData:
    """Test images as the model sees them and as the classifier sees them."""

    model_view: np.ndarray  # binarized like the training data
    labels: np.ndarray  # integer labels of the test images
    reference_real: np.ndarray  # grayscale, first half of the test split
    heldout_real: np.ndarray  # grayscale, second half of the test split

    def images(self) -> dict[str, np.ndarray]:
        """The image arguments of `evaluation.evaluate_vae` (and of its hook)."""
        return {
            "test_images": self.model_view,
            "test_labels": self.labels,
            "real_test_images": self.reference_real,
            "real_reference_images": self.heldout_real,
        }


def evaluation_data(
    arrays: datasets.DatasetArrays, binarization: str, seed: int
) -> EvaluationData:
    """Splits the test set: the classifier's reference statistics come from
    its first half, the real-data row from its second half, so the reference
    row compares two disjoint sets of real images."""
    grayscale = datasets.binarize_numpy(arrays.test.images, "none", seed)
    half = len(grayscale) // 2
    return EvaluationData(
        model_view=datasets.binarize_numpy(arrays.test.images, binarization, seed),
        labels=np.asarray(arrays.test.labels),
        reference_real=grayscale[:half],
        heldout_real=grayscale[half:],
    )


def check_classifier_exists(dataset: str, switch_flag: str = "--sample_quality") -> None:
    """Refuses a dataset the evaluation classifier cannot be trained on.

    `switch_flag` is the flag that turns the metrics off, named in the error.
    """
    if dataset not in CLASSIFIER_DATASETS:
        raise errors.ConfigError(
            f"Sample-quality metrics need a classifier for the dataset, and "
            f"there is none for {dataset!r} (its examples have no image "
            f"shape the classifier fits); expected one of "
            f"{CLASSIFIER_DATASETS}. Pass {switch_flag}=false to skip them."
        )


def load_classifier(
    dataset: str,
    data_dir: str | None,
    classifier_dir: str | None,
    switch_flag: str = "--sample_quality",
):
    """The cached evaluation classifier for `dataset` (trained on a miss)."""
    check_classifier_exists(dataset, switch_flag)
    try:
        classifier, info = classification.load_or_train_classifier(
            dataset, data_dir, classifier_dir or default_classifier_dir()
        )
    except classification.TrainingInterruptedError as error:
        raise errors.ConfigError(
            f"Training the evaluation classifier was interrupted ({error}); "
            "run the command again to resume it."
        ) from None
    return classifier, info


@dataclasses.dataclass(frozen=True)
class TrainingEvaluationConfig:
    """Evaluation during training (`--evaluate_every_epochs` and friends).

    Lighter defaults than vae-evaluate's, since it runs many times: k=100 on
    500 test images costs about as much as one training epoch of a small
    model.
    """

    every_epochs: int
    num_importance_samples: int = 100
    likelihood_examples: int = 500
    num_generated: int = 5000
    sample_quality: bool = True
    classifier_dir: str | None = None


def make_evaluation_hook(
    config: TrainingEvaluationConfig,
    arrays: datasets.DatasetArrays,
    *,
    binarization: str,
    data_dir: str | None,
    seed: int,
) -> evaluation.EvaluationHook:
    """The epoch-end hook that evaluates a VAE being trained on `arrays`.

    Loads (or trains, once) the classifier now, so that a dataset without one
    is refused before training starts.
    """
    classifier = None
    if config.sample_quality:
        classifier, _ = load_classifier(
            arrays.name,
            data_dir,
            config.classifier_dir,
            switch_flag="--eval_sample_quality",
        )
    data = evaluation_data(arrays, binarization, seed)
    return evaluation.EvaluationHook(
        every_epochs=config.every_epochs,
        **data.images(),
        classifier=classifier,
        config=evaluation.EvaluationConfig(
            num_importance_samples=config.num_importance_samples,
            likelihood_examples=config.likelihood_examples,
            num_generated=config.num_generated,
            seed=seed,
        ),
    )


def _data_dir_from_flags_file(workdir: str) -> str | None:
    path = os.path.join(workdir, "flags.txt")
    if not os.path.exists(path):
        return None
    with open(path) as stream:
        for line in stream:
            if line.startswith("--data_dir="):
                return line.strip().split("=", 1)[1] or None
    return None


def _evaluation_train_subset(dataset: str, recorded: dict[str, Any]) -> int:
    """The smallest dsprites training subset that still holds the recorded
    validation split. Evaluation reads only the test split, which does not
    depend on the subset, and unpacking all 727,280 training images would
    take 3 GB."""
    if dataset != "dsprites":
        return 0
    return int(recorded["validation_size"]) + 1


def _latents_beyond_export(model_config) -> str:
    """What of the model a SavedModel export does not carry ('' if none):
    a learned prior, a flow posterior or a second latent layer, whose
    densities only the checkpointed model computes."""
    parts = []
    if getattr(model_config, "prior", "standard") != "standard":
        parts.append(f"prior={model_config.prior!r}")
    if getattr(model_config, "posterior_flow", "none") != "none":
        parts.append(f"posterior_flow={model_config.posterior_flow!r}")
    if hasattr(model_config, "top_latent_dim"):
        parts.append("two latent layers")
    return " and ".join(parts)


def _weights_digest(model, source: str) -> str:
    """SHA-256 naming the weights an estimate was made with: of a restored
    model's variables, or of an export's variable files (`source`)."""
    if hasattr(model, "variables"):
        return evaluation.images_digest(
            np.concatenate(
                [
                    np.ravel(variable.numpy()).astype(np.float64)
                    for variable in model.variables
                ]
                or [np.zeros([0])]
            )
        )
    digest = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(source, "variables", "*"))):
        with open(path, "rb") as stream:
            digest.update(stream.read())
    return digest.hexdigest()


def run_evaluation(
    config: EvaluateProgramConfig, stop_requested: Callable[[], bool] | None = None
) -> dict[str, Any]:
    """Loads the run, measures it, writes eval.json; returns the results.

    The likelihood estimate saves its progress beside the output
    (OUTPUT.nll-progress.npz) as it goes, so the same command resumes an
    interrupted evaluation; `stop_requested`, checked between its batches,
    stops it early with `evaluation.EvaluationInterrupted`. The finished
    estimate's per-image log-likelihoods stay in OUTPUT.nll-per-image.npz,
    named in the results, for `trainers.likelihood_comparison`.
    """
    identity = runs.read_run_identity(config.workdir)
    dataset = identity["data"]["dataset"]
    if dataset not in datasets.DATASET_NAMES:
        raise errors.ConfigError(
            f"{config.workdir}/run.json names the dataset {dataset!r}, which "
            f"this version cannot load; expected one of "
            f"{datasets.DATASET_NAMES}."
        )
    binarization = identity["data"]["binarization"]
    seed = int(identity["seed"])
    # Refuses a bad record early.
    recorded_model = runs.model_config(config.workdir, identity)
    if config.source == "saved_model" and _latents_beyond_export(recorded_model):
        raise errors.ConfigError(
            f"--source=saved_model cannot evaluate the run in "
            f"{config.workdir}: its model has "
            f"{_latents_beyond_export(recorded_model)}, and the export holds "
            "only the Gaussian q(z|x) and an N(0, I) prior, so its ELBO and "
            "NLL would be those of another model. Expected "
            "--source=checkpoint."
        )
    metrics = disentanglement_metrics(config.disentanglement, dataset)
    if config.sample_quality:
        check_classifier_exists(dataset)  # Before the model is loaded.
    model, source = runs.load_model(config.workdir, identity, config.source)

    data_dir = config.data_dir or _data_dir_from_flags_file(config.workdir)
    recorded = identity["data"]
    try:
        # Image folders, IDX and npz data are converted as for training.
        arrays = datasets.load_dataset(
            dataset,
            data_dir,
            validation_size=recorded["validation_size"],
            seed=seed,
            image_size=tuple(recorded.get("image_size", ())),
            channels=recorded.get("channels", 0),
            test_fraction=recorded.get("test_fraction", 0.1),
            cache_dir=flag_types.default_cache_dir("datasets"),
            train_subset=_evaluation_train_subset(dataset, recorded),
        )
    except datasets.DataError:
        raise
    except ValueError as error:
        raise errors.ConfigError(
            f"The data recorded in {config.workdir}/run.json cannot be loaded: {error}"
        ) from None
    data = evaluation_data(arrays, binarization, seed)
    classifier, classifier_info = (None, None)
    if config.sample_quality:
        classifier, classifier_info = load_classifier(
            dataset, data_dir, config.classifier_dir
        )
    output = config.output or os.path.join(config.workdir, "eval.json")
    progress_path = output + ".nll-progress.npz"
    weights = _weights_digest(model, source)
    progress: list[evaluation.LikelihoodProgress] = []

    def likelihood_progress(key):
        progress.append(
            evaluation.LikelihoodProgress(progress_path, {**key, "weights": weights})
        )
        return progress[-1]

    results = evaluation.evaluate_vae(
        model,
        **data.images(),
        classifier=classifier,
        config=evaluation.EvaluationConfig(
            num_importance_samples=config.num_importance_samples,
            likelihood_examples=config.likelihood_examples,
            chunk_size=config.chunk_size,
            num_generated=config.num_generated,
            seed=config.seed,
        ),
        likelihood_progress=likelihood_progress,
        stop_requested=stop_requested,
    )
    if metrics:
        results["disentanglement"] = disentanglement.evaluate_model(
            model,
            data.model_view,
            arrays.test.factors,
            seed=config.seed,
            metrics=metrics,
            labels=evaluation.one_hot(
                data.labels, int(getattr(model, "num_classes", 0) or 0)
            ),
            batch_size=config.chunk_size,
        )
        results["disentanglement"]["factor_names"] = list(arrays.factor_names)
    results["source"] = source
    results["dataset"] = dataset
    if classifier_info is not None:
        results["classifier"] = {
            key: classifier_info[key]
            for key in ("path", "test_accuracy")
            if key in classifier_info
        }
    per_image_path = output + likelihood_comparison.PER_IMAGE_SUFFIX
    if progress:
        # The finished estimate's per-image values stay beside the results,
        # for paired comparisons between models (vae-compare).
        results["likelihood"]["per_image"] = os.path.basename(per_image_path)
    atomic_files.write_json(output, results)
    if progress:
        # The progress file holds every image's value and the estimate's key
        # once the estimate ends: it becomes the per-image file.
        os.replace(progress[-1].path, per_image_path)
    elif os.path.exists(per_image_path):
        os.remove(per_image_path)  # An earlier estimate's, no longer named.
    logging.info("Wrote %s.", output)
    return results


def format_table(results: dict[str, Any]) -> str:
    """A plain-text table of the results, real-data row included."""
    test = results["test"]
    likelihood = results.get("likelihood")
    lines = [f"{'':14s} {'ELBO':>9s} {'NLL':>16s} {'Frechet':>9s} {'class. score':>12s}"]
    nll = (
        f"{likelihood['nll']:.2f}+-{likelihood['nll_standard_error']:.2f}"
        if likelihood
        else "-"
    )

    def quality_cells(metrics) -> str:
        if not metrics:
            return f"{'-':>9s} {'-':>12s}"
        return f"{metrics['frechet_distance']:9.3f} {metrics['classifier_score']:12.3f}"

    lines.append(
        f"{'model':14s} {test['elbo']:9.2f} {nll:>16s} "
        f"{quality_cells(results.get('samples'))}"
    )
    if "real_data" in results:
        lines.append(
            f"{'real data':14s} {'-':>9s} {'-':>16s} "
            f"{quality_cells(results['real_data'])}"
        )
    if likelihood:
        lines.append(
            f"NLL: k={likelihood['num_samples']} on {likelihood['examples']} "
            f"test images (ELBO on the same images "
            f"{likelihood['elbo_same_examples']:.2f})."
        )
    for group, what in (
        ("conditional_accuracy", "Conditional accuracy"),
        ("style_transfer_accuracy", "Style-transfer accuracy"),
    ):
        if group in results:
            per_label = " ".join(
                "-" if value is None else f"{100 * value:.0f}"
                for value in results[group]["per_label"]
            )
            lines.append(
                f"{what}: {100 * results[group]['overall']:.2f}% "
                f"(per label, %: {per_label})."
            )
    if "disentanglement" in results:
        scores = results["disentanglement"]
        cells = [
            f"{name} {scores[key]:.3f}"
            for name, key in (
                ("MIG", "mig"),
                ("FactorVAE metric", "factor_vae"),
                ("DCI disentanglement", "dci_disentanglement"),
            )
            if key in scores
        ]
        lines.append(
            f"Disentanglement on {scores['num_examples']} test "
            f"images: {', '.join(cells)}."
        )
    if "reconstruction_error" in results:
        error = results["reconstruction_error"]
        lines.append(
            f"Reconstruction per pixel: cross-entropy "
            f"{error['binary_cross_entropy']:.4f} nats, squared "
            f"error {error['mean_squared_error']:.4f}."
        )
    return "\n".join(lines)
