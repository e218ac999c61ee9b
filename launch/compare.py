r"""Compares evaluated runs' test NLL image by image, against the first.

    vae-compare --evaluations=runs/vae,runs/iaf,runs/vamp --output=comparison.json

Each entry is a workdir (its eval.json is read) or an evaluation's results
file (vae-evaluate --output). `vae-evaluate` keeps every test image's
log-likelihood beside its results; for two runs estimated on the same
images, the difference of their NLLs is the mean of the per-image
differences, and its standard error is that mean's (paired), several times
smaller than the two NLLs' errors combined, which the table shows beside it.
See trainers/likelihood_comparison.py. Prints the table and writes it as
JSON to --output. Does not load TensorFlow.
"""

import os

from absl import app
from absl import flags
from absl import logging

from launch import user_errors
from trainers import likelihood_comparison
from vae import atomic_files

_EVALUATIONS = flags.DEFINE_list(
    "evaluations",
    None,
    "Two or more workdirs or eval.json files, comma-separated; the first is "
    "the baseline.",
)
_OUTPUT = flags.DEFINE_string(
    "output", "comparison.json", "Where the comparison is written as JSON."
)

flags.mark_flag_as_required("evaluations")


def _results_path(entry: str) -> str:
    """A workdir's eval.json, or the results file itself."""
    return os.path.join(entry, "eval.json") if os.path.isdir(entry) else entry


def main(argv):
    user_errors.reject_positional_arguments(argv)
    with user_errors.exit_on((likelihood_comparison.ComparisonError,)):
        evaluations = [
            likelihood_comparison.read_per_image(_results_path(entry), name=entry)
            for entry in _EVALUATIONS.value
        ]
        comparison = likelihood_comparison.compare(evaluations)
        try:
            atomic_files.write_json(_OUTPUT.value, comparison)
        except OSError as error:
            raise likelihood_comparison.ComparisonError(
                f"Cannot write --output={_OUTPUT.value}: "
                f"{error.strerror or error}; expected a writable file path."
            ) from None
    print(likelihood_comparison.format_table(comparison))
    logging.info("Wrote %s.", _OUTPUT.value)


def run_main():
    """Console-script entry point (`vae-compare`)."""
    app.run(main, flags_parser=user_errors.parse_flags_or_exit)


if __name__ == "__main__":
    run_main()
