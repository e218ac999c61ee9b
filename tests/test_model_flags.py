"""Tests for launch/model_flags.py: the model flags of the VAE and of the VAE-GAN."""

import json
import subprocess
import sys

import tensorflow as tf

from tests import testing_utils

# Defines the model flags of each config class in turn, as `vae-train` does for
# its trainer, and prints each flag's type. In a process of its own, since the
# two sets share names and absl holds one set of flags per process.
_FLAG_TYPES = """
import json
from absl import flags
from launch import model_flags
from vae import models
from vae import vaegan
types = []
for config_class in (models.ModelConfig, vaegan.VaeGanConfig):
    before = set(flags.FLAGS)
    model_flags.define(config_class)
    added = set(flags.FLAGS) - before
    types.append({name: flags.FLAGS[name].flag_type() for name in added})
    for name in added:
        delattr(flags.FLAGS, name)
print(json.dumps(types))
"""


class ModelFlagsTest(tf.test.TestCase):
    def test_a_name_both_models_use_has_one_type(self):
        completed = subprocess.run(
            [sys.executable, "-c", _FLAG_TYPES],
            cwd=testing_utils.REPO_ROOT,
            env=testing_utils.program_environment(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.assertEqual(completed.returncode, 0, completed.stderr[-3000:])
        vae_types, vaegan_types = json.loads(completed.stdout.splitlines()[-1])
        shared = sorted(set(vae_types) & set(vaegan_types))
        self.assertContainsSubset(
            [
                "activation",
                "decoder_dense_units",
                "encoder_dense_units",
                "encoder_filters",
            ],
            shared,
        )
        self.assertEqual(
            {name: vae_types[name] for name in shared},
            {name: vaegan_types[name] for name in shared},
        )


if __name__ == "__main__":
    tf.test.main()
