"""Tests of trainers/likelihood_comparison.py and of the vae-compare program
(launch/compare.py), on per-image files written the way vae-evaluate writes
them (tests/test_evaluate.py runs the two programs end to end)."""

import json
import math
import os

from absl.testing import absltest
import numpy as np

from tests import testing_utils
from trainers import likelihood_comparison
from vae import atomic_files


def write_evaluation(
    directory,
    log_likelihoods,
    *,
    images="digest-a",
    labels=None,
    num_samples=200,
    per_image=True,
):
    """An eval.json and its per-image file, as launch/evaluation_program.py
    leaves them, in `directory`; returns the eval.json path."""
    os.makedirs(directory, exist_ok=True)
    values = np.asarray(log_likelihoods, np.float64)
    output = os.path.join(directory, "eval.json")
    likelihood = {
        "nll": float(-values.mean()),
        "num_samples": num_samples,
        "examples": len(values),
    }
    if per_image:
        likelihood["per_image"] = "eval.json" + likelihood_comparison.PER_IMAGE_SUFFIX
        key = {"num_samples": num_samples, "images": images, "labels": labels}
        atomic_files.write_npz(
            output + likelihood_comparison.PER_IMAGE_SUFFIX,
            {"key": np.array(json.dumps(key)), "log_likelihoods": values},
        )
    atomic_files.write_json(output, {"likelihood": likelihood})
    return output


class PairedDifferenceTest(absltest.TestCase):
    def test_hand_computed(self):
        baseline = [-1.0, -2.0, -3.0]
        other = [-0.5, -2.5, -2.0]
        # Per-image differences log p_baseline - log p_other: -0.5, 0.5, -1.0.
        mean = -1.0 / 3.0
        deviations = [-0.5 - mean, 0.5 - mean, -1.0 - mean]
        standard_error = math.sqrt(sum(d * d for d in deviations) / 2) / math.sqrt(3)
        paired = likelihood_comparison.paired_difference(baseline, other)
        self.assertAlmostEqual(paired["difference"], mean)
        self.assertAlmostEqual(paired["standard_error"], standard_error)

    def test_difference_is_the_difference_of_the_two_nlls(self):
        random = np.random.default_rng(0)
        baseline = -random.gamma(20.0, 4.0, size=500)
        other = baseline + random.normal(0.5, 1.0, size=500)
        paired = likelihood_comparison.paired_difference(baseline, other)
        self.assertAlmostEqual(
            paired["difference"], (-other.mean()) - (-baseline.mean()), places=10
        )

    def test_pairing_removes_the_spread_the_images_share(self):
        # Image difficulty varies by ~20 nats and is common to both models;
        # the models differ by 0.5 nats with 1 nat of noise per image.
        random = np.random.default_rng(1)
        difficulty = -random.gamma(20.0, 4.0, size=2000)
        baseline = difficulty + random.normal(0.0, 1.0, size=2000)
        other = difficulty + 0.5 + random.normal(0.0, 1.0, size=2000)
        comparison = likelihood_comparison.compare(
            [
                likelihood_comparison.PerImageLikelihoods("a", baseline, 200, "x", None),
                likelihood_comparison.PerImageLikelihoods("b", other, 200, "x", None),
            ]
        )
        row = comparison["rows"][1]
        self.assertAlmostEqual(row["difference"], -0.5, delta=0.1)
        # sqrt(2)/sqrt(2000) = 0.032 paired; ~18 * sqrt(2)/sqrt(2000) independent.
        self.assertAlmostEqual(row["difference_standard_error"], 0.032, delta=0.004)
        self.assertGreater(
            row["independent_standard_error"], 10 * row["difference_standard_error"]
        )

    def test_shapes_must_match(self):
        with self.assertRaisesRegex(ValueError, r"\(3,\) and \(2,\)"):
            likelihood_comparison.paired_difference([1.0, 2.0, 3.0], [1.0, 2.0])


class ReadAndCompareTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.root = self.create_tempdir().full_path

    def test_reads_what_it_names(self):
        path = write_evaluation(os.path.join(self.root, "a"), [-80.0, -90.0])
        read = likelihood_comparison.read_per_image(path, name="a")
        self.assertEqual(read.name, "a")
        self.assertEqual(read.num_samples, 200)
        self.assertAlmostEqual(read.nll, 85.0)
        self.assertAlmostEqual(read.standard_error, 5.0)

    def test_unreadable_inputs_are_named(self):
        directory = os.path.join(self.root, "cases")
        no_estimate = os.path.join(directory, "no_estimate.json")
        atomic_files.write_json(no_estimate, {"test": {"elbo": -90.0}})
        older = write_evaluation(
            os.path.join(directory, "older"), [-1.0], per_image=False
        )
        gone = write_evaluation(os.path.join(directory, "gone"), [-1.0])
        os.remove(gone + likelihood_comparison.PER_IMAGE_SUFFIX)
        wrong = write_evaluation(os.path.join(directory, "wrong"), [-1.0, -2.0])
        with open(wrong) as stream:
            results = json.load(stream)
        results["likelihood"]["examples"] = 3
        atomic_files.write_json(wrong, results)
        for path, fragment in (
            (os.path.join(self.root, "nothing.json"), "does not exist"),
            (no_estimate, "holds no likelihood estimate"),
            (older, "Run the same vae-evaluate command again"),
            (gone, "does not exist; run the same vae-evaluate"),
            (wrong, "reports an estimate on 3 images"),
        ):
            with self.subTest(fragment=fragment):
                with self.assertRaisesRegex(
                    likelihood_comparison.ComparisonError, fragment
                ) as raised:
                    likelihood_comparison.read_per_image(path)
                self.assertIn(path, str(raised.exception))

    def test_refuses_evaluations_of_other_images(self):
        def evaluation(name, values, images="x"):
            return likelihood_comparison.PerImageLikelihoods(
                name, np.asarray(values, np.float64), 200, images, None
            )

        with self.assertRaisesRegex(likelihood_comparison.ComparisonError, "got 1"):
            likelihood_comparison.compare([evaluation("a", [-1.0])])
        with self.assertRaisesRegex(
            likelihood_comparison.ComparisonError, "b was estimated on 1 test images"
        ):
            likelihood_comparison.compare(
                [evaluation("a", [-1.0, -2.0]), evaluation("b", [-1.0])]
            )
        with self.assertRaisesRegex(
            likelihood_comparison.ComparisonError, "different --seed values"
        ):
            likelihood_comparison.compare(
                [evaluation("a", [-1.0]), evaluation("b", [-1.0], images="y")]
            )


class CompareProgramTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.root = self.create_tempdir().full_path

    def test_table_and_json(self):
        baseline = write_evaluation(
            os.path.join(self.root, "vae"), [-80.0, -90.0, -100.0]
        )
        # The second is a workdir, the third a results file of its own name.
        write_evaluation(os.path.join(self.root, "iaf"), [-79.0, -89.5, -99.0])
        other = write_evaluation(
            os.path.join(self.root, "vamp"), [-81.0, -90.0, -99.0], num_samples=5000
        )
        renamed = os.path.join(self.root, "vamp", "k5000.json")
        os.replace(other, renamed)
        output = os.path.join(self.root, "comparison.json")
        result = testing_utils.run_module(
            "launch.compare",
            [
                f"--evaluations={baseline},{self.root}/iaf,{renamed}",
                f"--output={output}",
            ],
        )
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        with open(output) as stream:
            comparison = json.load(stream)
        self.assertEqual(comparison["examples"], 3)
        names = [row["name"] for row in comparison["rows"]]
        self.assertEqual(names, [baseline, f"{self.root}/iaf", renamed])
        # IAF: differences -1, -0.5, -1 (nats of NLL).
        iaf = comparison["rows"][1]
        self.assertAlmostEqual(iaf["difference"], -2.5 / 3)
        self.assertAlmostEqual(
            iaf["difference_standard_error"], math.sqrt(1 / 12) / math.sqrt(3)
        )
        self.assertIn("-0.83+-0.17", result.stdout)
        self.assertIn("different k", result.stdout)

    def test_bad_input_is_one_paragraph(self):
        baseline = write_evaluation(os.path.join(self.root, "a"), [-1.0, -2.0])
        other = write_evaluation(
            os.path.join(self.root, "b"), [-1.0, -2.0], images="another digest"
        )
        for arguments, fragment in (
            ([f"--evaluations={baseline},{self.root}/none"], "none does not exist"),
            ([f"--evaluations={baseline},{other}"], "different test images"),
            ([f"--evaluations={baseline}"], "needs two or more evaluations; got 1"),
            # The output's directory is a file.
            (
                [f"--evaluations={baseline},{baseline}", f"--output={baseline}/out.json"],
                "Cannot write --output=",
            ),
        ):
            with self.subTest(arguments=arguments):
                result = testing_utils.run_module(
                    "launch.compare",
                    [f"--output={self.root}/unwritten.json", *arguments],
                )
                testing_utils.assert_clear_error(self, result, fragment)
                self.assertFalse(os.path.exists(f"{self.root}/unwritten.json"))


if __name__ == "__main__":
    absltest.main()
