r"""Evaluates a trained VAE: likelihood, reconstruction and sample quality.

    vae-evaluate --workdir=runs/tf_tutorial_conv --data_dir=../shared/data/mnist

Loads the latest checkpoint of the run in --workdir (or, with
--source=saved_model, its exported SavedModel), measures every metric that
applies (see trainers/evaluation.py; on dsprites also the disentanglement
metrics of vae/disentanglement.py), writes WORKDIR/eval.json and prints a
table with the real-data reference row. The sample-quality classifier is
trained once per dataset and cached in --classifier_dir.

The likelihood estimate (k x examples decoder passes: hours for k=5000 on
the whole test set on a CPU) saves its progress beside the output as it
goes. SIGTERM, SIGUSR1 or Ctrl-C stops it after the current batch, with exit
status 128 + the signal number; after that, or after kill -9 or a lost
node, the same command resumes where it stopped and ends with the numbers
an uninterrupted evaluation gives.
"""

import sys

from absl import app
from absl import flags
from absl import logging

from launch import errors
from launch import evaluation_program
from launch import exit_codes
from launch import flag_types
from launch import runs
from trainers import evaluation
from trainers import stop_signals

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a training run to evaluate.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir",
    None,
    "Dataset directory; unset: the --data_dir the run was "
    "trained with (from WORKDIR/flags.txt).",
)
_SOURCE = flags.DEFINE_enum(
    "source",
    "checkpoint",
    runs.SOURCES,
    "checkpoint: the latest checkpoint; saved_model: WORKDIR/export.",
)
_NUM_IMPORTANCE_SAMPLES = flags.DEFINE_integer(
    "num_importance_samples",
    1000,
    "k of the importance-sampled log-likelihood (0 skips it). The IWAE paper uses 5000.",
    lower_bound=0,
    upper_bound=100000,
)
_LIKELIHOOD_EXAMPLES = flags.DEFINE_integer(
    "likelihood_examples",
    1000,
    "Test images the likelihood is estimated on (0: all). Costs k x this "
    "many decoder passes.",
    lower_bound=0,
)
_CHUNK_SIZE = flags.DEFINE_integer(
    "chunk_size",
    250,
    "Importance samples decoded at once (bounds memory).",
    lower_bound=1,
)
_NUM_GENERATED = flags.DEFINE_integer(
    "num_generated", 5000, "Prior samples for the sample-quality metrics.", lower_bound=2
)
_SAMPLE_QUALITY = flags.DEFINE_boolean(
    "sample_quality",
    True,
    "Compute the classifier-based metrics (trains the classifier once).",
)
_CLASSIFIER_DIR = flag_types.DEFINE_classifier_dir()
_SEED = flags.DEFINE_integer("seed", 0, "Seed of every random draw.", lower_bound=0)
_DISENTANGLEMENT = flags.DEFINE_list(
    "disentanglement",
    ["auto"],
    "Disentanglement metrics (mig, factor_vae, dci), comma-separated; auto: "
    "all three on a dataset with known factors (dsprites), none elsewhere; "
    "none: skip them.",
)
_OUTPUT = flags.DEFINE_string(
    "output", None, "Where to write the results; unset: WORKDIR/eval.json."
)

flags.mark_flag_as_required("workdir")


def _disentanglement_request(values):
    """--disentanglement as the config takes it: None for auto, () for none."""
    if values == ["auto"]:
        return None
    if values in ([], ["none"]):
        return ()
    return tuple(values)


def main(argv):
    errors.reject_positional_arguments(argv)
    config = evaluation_program.EvaluateProgramConfig(
        workdir=_WORKDIR.value,
        data_dir=_DATA_DIR.value,
        source=_SOURCE.value,
        num_importance_samples=_NUM_IMPORTANCE_SAMPLES.value,
        likelihood_examples=_LIKELIHOOD_EXAMPLES.value,
        chunk_size=_CHUNK_SIZE.value,
        num_generated=_NUM_GENERATED.value,
        sample_quality=_SAMPLE_QUALITY.value,
        classifier_dir=_CLASSIFIER_DIR.value,
        seed=_SEED.value,
        output=_OUTPUT.value,
        disentanglement=_disentanglement_request(_DISENTANGLEMENT.value),
    )
    # The signals that stop training stop the evaluation too, resumably.
    stop = stop_signals.StopRequest(
        stopping="finishing the current batch of the likelihood estimate, then stopping"
    )
    stop.install()
    try:
        with errors.exit_on_user_error():
            results = evaluation_program.run_evaluation(
                config, stop_requested=lambda: stop.requested
            )
    except evaluation.EvaluationInterrupted as stopped:
        logging.warning("Evaluation %s. Run the same command again to resume.", stopped)
        sys.exit(exit_codes.stopped_by(stop.signal_number))
    print(evaluation_program.format_table(results))


def run_main():
    """Console-script entry point (`vae-evaluate`)."""
    app.run(main, flags_parser=errors.parse_flags_or_exit)


if __name__ == "__main__":
    run_main()
