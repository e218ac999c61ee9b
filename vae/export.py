"""Export a trained VAE as a SavedModel that needs none of this package's code.

The SavedModel holds three serving signatures, all float32:

* `encode(images [n, *image_shape]) -> {"mean", "stddev"}`, each
  [n, latent_dim]: the parameters of the diagonal Gaussian q(z|x);
* `decode(latent [n, latent_dim]) -> {"images"}`: the decoder's mean image
  (pixel probabilities for a Bernoulli decoder);
* `sample(num_samples: int32 scalar) -> {"images"}`: decoded prior draws.

Load it anywhere TensorFlow runs, without installing this package:

    loaded = tf.saved_model.load("WORKDIR/export")
    images = loaded.signatures["sample"](num_samples=tf.constant(16))["images"]
"""

import os
import shutil

import tensorflow as tf


class _ServingModule(tf.Module):
    """Wraps a VAE in tf.functions with fixed input signatures."""

    def __init__(self, model: tf.Module):
        super().__init__(name="vae_serving")
        self.model = model
        image_spec = tf.TensorSpec([None, *model.image_shape], tf.float32,
                                   name="images")
        latent_spec = tf.TensorSpec([None, model.latent_dim], tf.float32,
                                    name="latent")
        count_spec = tf.TensorSpec([], tf.int32, name="num_samples")
        self.encode = tf.function(self._encode, input_signature=[image_spec])
        self.decode = tf.function(self._decode, input_signature=[latent_spec])
        self.sample = tf.function(self._sample, input_signature=[count_spec])

    def _encode(self, images):
        posterior = self.model.encode(images, is_training=False)
        return {"mean": posterior.mean(), "stddev": posterior.stddev()}

    def _decode(self, latent):
        return {"images": self.model.decode_mean(latent)}

    def _sample(self, num_samples):
        latent = tf.random.normal([num_samples, self.model.latent_dim])
        return {"images": self.model.decode_mean(latent)}


def export_saved_model(model: tf.Module, export_dir: str) -> str:
    """Writes `model` as a SavedModel at `export_dir`, replacing it atomically.

    The new export is written beside the old one and swapped in with renames,
    so an interrupted export never leaves a half-written directory in place
    of a good one.

    Returns:
      `export_dir`.
    """
    module = _ServingModule(model)
    signatures = {
        "encode": module.encode.get_concrete_function(),
        "decode": module.decode.get_concrete_function(),
        "sample": module.sample.get_concrete_function(),
    }
    export_dir = os.path.abspath(export_dir)
    staging_dir = export_dir + ".partial"
    previous_dir = export_dir + ".previous"
    for leftover in (staging_dir, previous_dir):
        shutil.rmtree(leftover, ignore_errors=True)
    tf.saved_model.save(module, staging_dir, signatures=signatures)
    if os.path.exists(export_dir):
        os.replace(export_dir, previous_dir)
    os.replace(staging_dir, export_dir)
    shutil.rmtree(previous_dir, ignore_errors=True)
    return export_dir
