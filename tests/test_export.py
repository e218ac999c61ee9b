"""Tests for vae/export.py: the SavedModel works without this package."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

from tests import testing_utils
from vae import export
from vae import models

MODEL_CONFIG = testing_utils.mlp_config((4, 4, 1), (8,))
REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs in a fresh interpreter. The repository may be installed in development
# mode, either as a .pth entry pointing at the checkout or as an import hook
# (what `pip install -e .` makes with current setuptools), so besides the
# empty PYTHONPATH and the foreign working directory, an import blocker
# refuses this project's packages before anything is imported.
_CHILD_PROGRAM = textwrap.dedent("""
    import json, os, sys

    class BlockProjectPackages:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("vae", "trainers", "launch"):
                raise ImportError(f"{name} is blocked in this process")
            return None

    sys.meta_path.insert(0, BlockProjectPackages())
    package_importable = True
    try:
        import vae
    except ImportError:
        package_importable = False

    import numpy as np
    import tensorflow as tf

    export_dir, output_path = sys.argv[1], sys.argv[2]
    loaded = tf.saved_model.load(export_dir)
    signatures = loaded.signatures
    images = np.load(os.path.join(os.path.dirname(output_path), "images.npy"))
    latent = np.load(os.path.join(os.path.dirname(output_path), "latent.npy"))
    encoded = signatures["encode"](images=tf.constant(images))
    decoded = signatures["decode"](latent=tf.constant(latent))
    sampled = signatures["sample"](num_samples=tf.constant(5, tf.int32))
    np.savez(output_path, mean=encoded["mean"].numpy(),
             stddev=encoded["stddev"].numpy(),
             decoded=decoded["images"].numpy(),
             sampled=sampled["images"].numpy())
    print(json.dumps({
        "package_importable": package_importable,
        "signatures": sorted(signatures.keys()),
        "encode_outputs": sorted(encoded.keys()),
        "modules": sorted(name for name in ("vae", "trainers", "launch",
                                            "tensorflow_probability")
                          if name in sys.modules),
    }))
""")


class ExportSavedModelTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        tf.random.set_seed(0)
        self.model = models.VAE(MODEL_CONFIG)
        rng = np.random.default_rng(0)
        self.images = rng.uniform(size=(3, 4, 4, 1)).astype(np.float32)
        self.latent = rng.normal(size=(6, 2)).astype(np.float32)

    def test_fresh_process_without_the_package_runs_every_signature(self):
        work = self.create_tempdir().full_path
        export_dir = os.path.join(work, "export")
        self.assertEqual(export.export_saved_model(self.model, export_dir), export_dir)
        np.save(os.path.join(work, "images.npy"), self.images)
        np.save(os.path.join(work, "latent.npy"), self.latent)
        output_path = os.path.join(work, "outputs.npz")
        environment = dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="2")
        completed = subprocess.run(
            [sys.executable, "-c", _CHILD_PROGRAM, export_dir, output_path],
            cwd=work,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.assertEqual(completed.returncode, 0, msg=completed.stderr[-3000:])
        report = json.loads(completed.stdout.strip().splitlines()[-1])
        self.assertFalse(report["package_importable"])
        self.assertEqual(report["modules"], [])
        self.assertEqual(report["signatures"], ["decode", "encode", "sample"])
        self.assertEqual(report["encode_outputs"], ["mean", "stddev"])

        outputs = np.load(output_path)
        self.assertEqual(outputs["mean"].shape, (3, 2))
        self.assertEqual(outputs["stddev"].shape, (3, 2))
        self.assertAllGreater(outputs["stddev"], 0.0)
        self.assertEqual(outputs["decoded"].shape, (6, 4, 4, 1))
        self.assertEqual(outputs["sampled"].shape, (5, 4, 4, 1))
        for name in ("decoded", "sampled"):
            self.assertAllInRange(outputs[name], 0.0, 1.0)
        # The exported functions compute what the model computes.
        posterior = self.model.encode(tf.constant(self.images))
        self.assertAllClose(outputs["mean"], posterior.mean(), atol=1e-6)
        self.assertAllClose(outputs["stddev"], posterior.stddev(), atol=1e-6)
        self.assertAllClose(
            outputs["decoded"],
            self.model.decode_mean(tf.constant(self.latent)),
            atol=1e-6,
        )

    def test_reexport_replaces_previous_export_atomically(self):
        work = self.create_tempdir().full_path
        export_dir = os.path.join(work, "export")
        export.export_saved_model(self.model, export_dir)
        # A crashed earlier export left a half-written staging directory.
        os.makedirs(export_dir + ".partial")
        with open(os.path.join(export_dir + ".partial", "junk"), "w") as f:
            f.write("half written")

        other_model = models.VAE(MODEL_CONFIG)
        export.export_saved_model(other_model, export_dir)
        self.assertEqual(sorted(os.listdir(work)), ["export"])
        self.assertNotIn("junk", os.listdir(export_dir))
        self.assertTrue(os.path.exists(os.path.join(export_dir, "saved_model.pb")))
        loaded = tf.saved_model.load(export_dir)
        mean = loaded.signatures["encode"](images=tf.constant(self.images))["mean"]
        self.assertAllClose(mean, other_model.encode(self.images).mean(), atol=1e-6)
        self.assertNotAllClose(mean, self.model.encode(self.images).mean())

    def test_encode_in_saved_model_equals_model_encode_mean(self):
        export_dir = os.path.join(self.create_tempdir().full_path, "export")
        export.export_saved_model(self.model, export_dir)
        loaded = tf.saved_model.load(export_dir)
        images = tf.constant(self.images)
        encoded = loaded.signatures["encode"](images=images)
        self.assertAllClose(encoded["mean"], self.model.encode(images).mean(), atol=1e-6)
        # The functions also work with a batch size not seen at export time.
        single = loaded.encode(images[:1])
        self.assertEqual(single["mean"].shape, (1, 2))
        self.assertAllClose(
            single["mean"], self.model.encode(images[:1]).mean(), atol=1e-6
        )


if __name__ == "__main__":
    tf.test.main()


class ConditionalExportTest(tf.test.TestCase):
    def test_signatures_take_labels_and_match_the_model(self):
        tf.random.set_seed(0)
        model = models.VAE(dataclasses.replace(MODEL_CONFIG, num_classes=3))
        export_dir = export.export_saved_model(
            model, os.path.join(self.get_temp_dir(), "export")
        )
        loaded = tf.saved_model.load(export_dir)
        self.assertEqual(int(loaded.num_classes.numpy()), 3)
        images = np.random.default_rng(1).uniform(size=(2, 4, 4, 1)).astype(np.float32)
        labels = tf.constant([0, 2], tf.int32)
        encoded = loaded.signatures["encode"](images=images, labels=labels)
        self.assertAllClose(
            encoded["mean"], model.encode(images, tf.one_hot(labels, 3)).mean()
        )
        latent = tf.constant([[0.1, 0.2], [0.1, 0.2]])
        decoded = loaded.signatures["decode"](latent=latent, labels=labels)
        self.assertAllClose(
            decoded["images"], model.decode_mean(latent, tf.one_hot(labels, 3))
        )
        sampled = loaded.signatures["sample"](labels=tf.constant([1, 1, 1]))
        self.assertEqual(sampled["images"].shape, [3, 4, 4, 1])
        adapter = export.SavedModelVae(export_dir)
        self.assertTrue(adapter.is_conditional)
        self.assertAllClose(
            adapter.decode_mean(latent, tf.one_hot(labels, 3)), decoded["images"]
        )
        with self.assertRaisesRegex(ValueError, "needs labels"):
            adapter.decode_mean(latent)
