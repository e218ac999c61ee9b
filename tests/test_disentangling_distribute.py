"""beta-TCVAE and FactorVAE train under MirroredStrategy (two logical CPUs);
see tests/disentangling_distribute_cases.py."""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tests import testing_utils


class DisentanglingMirroredTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        output = os.path.join(testing_utils.private_temp_dir(), "out.json")
        result = subprocess.run(
            [sys.executable, "-m", "tests.disentangling_distribute_cases", output],
            cwd=testing_utils.REPO_ROOT,
            env=testing_utils.program_environment(),
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0:
            raise AssertionError(result.stderr[-4000:])
        with open(output) as stream:
            cls.results = json.load(stream)

    def test_both_trainers_train_on_two_replicas(self):
        self.assertEqual(self.results["num_replicas"], 2)
        for trainer in ("tcvae", "factorvae"):
            one, two = (
                self.results[f"{trainer}_default"],
                self.results[f"{trainer}_mirrored"],
            )
            self.assertEqual(one["iterations"], two["iterations"])
            self.assertTrue(np.isfinite(two["test_elbo"]))
            self.assertTrue(all(np.isfinite(value) for value in two["train"].values()))
            # The per-replica estimates use half the batch each, so the runs
            # differ, but not by much on the same data and noise.
            self.assertAllClose(two["test_elbo"], one["test_elbo"], rtol=0.1)
        self.assertEqual(
            self.results["factorvae_mirrored"]["iterations"],
            {"vae": 8, "discriminator": 8},
        )

    def test_each_replica_permutes_its_own_rows(self):
        first, second = self.results["permutations"]
        self.assertNotEqual(first["replica_seed"], second["replica_seed"])
        for replica in (first, second):
            codes = np.array(replica["codes"])
            permuted = np.array(replica["permuted"])
            for column in range(codes.shape[1]):
                self.assertAllClose(
                    np.sort(permuted[:, column]), np.sort(codes[:, column])
                )
        self.assertNotAllClose(first["codes"], second["codes"])


if __name__ == "__main__":
    tf.test.main()
