"""Export a trained VAE as a SavedModel that needs none of this package's code.

The SavedModel holds three serving signatures, all float32:

* `encode(images [n, *image_shape]) -> {"mean", "stddev"}`, each
  [n, latent_dim]: the parameters of the diagonal Gaussian q(z|x);
* `decode(latent [n, latent_dim]) -> {"images", "logits" | "scale" |
  "continuous_bernoulli_logits"}`: the decoder's mean image (pixel
  probabilities for a Bernoulli decoder) and the rest of p(x|z): its logits
  (Bernoulli), its scale (Gaussian) or its logits (continuous Bernoulli);
* `sample(num_samples: int32 scalar) -> {"images"}`: decoded prior draws.

A conditional VAE's signatures take one more input, `labels` (int32 class
indices [n]), beside images or latents: `encode(images, labels)`,
`decode(latent, labels)`, and `sample(labels)`, which draws one image per
label. The SavedModel also records `num_classes` (0 when unconditional).

Load it anywhere TensorFlow runs, without installing this package:

    loaded = tf.saved_model.load("WORKDIR/export")
    images = loaded.signatures["sample"](num_samples=tf.constant(16))["images"]
"""

import os
import shutil

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


class _ServingModule(tf.Module):
    """Wraps a VAE in tf.functions with fixed input signatures."""

    def __init__(self, model: tf.Module):
        super().__init__(name="vae_serving")
        self.model = model
        self.num_classes_value = int(getattr(model, "num_classes", 0))
        self.num_classes = tf.Variable(
            self.num_classes_value, trainable=False, name="num_classes"
        )
        image_spec = tf.TensorSpec([None, *model.image_shape], tf.float32, name="images")
        latent_spec = tf.TensorSpec([None, model.latent_dim], tf.float32, name="latent")
        label_spec = tf.TensorSpec([None], tf.int32, name="labels")
        count_spec = tf.TensorSpec([], tf.int32, name="num_samples")
        if self.num_classes_value:
            self.encode = tf.function(
                self._encode, input_signature=[image_spec, label_spec]
            )
            self.decode = tf.function(
                self._decode, input_signature=[latent_spec, label_spec]
            )
            self.sample = tf.function(self._sample_labels, input_signature=[label_spec])
        else:
            self.encode = tf.function(self._encode, input_signature=[image_spec])
            self.decode = tf.function(self._decode, input_signature=[latent_spec])
            self.sample = tf.function(self._sample, input_signature=[count_spec])

    def _one_hot(self, labels):
        """Class indices -> the one-hot labels the model reads; none if unconditional."""
        if labels is None:
            return []
        return [tf.one_hot(labels, self.num_classes_value, dtype=tf.float32)]

    def _encode(self, images, labels=None):
        posterior = self.model.encode(images, *self._one_hot(labels), is_training=False)
        return {"mean": posterior.mean(), "stddev": posterior.stddev()}

    def _decode(self, latent, labels=None):
        likelihood = self.model.decode(latent, *self._one_hot(labels), is_training=False)
        outputs = {"images": likelihood.mean()}
        pixels = likelihood.distribution
        if self.model.config.likelihood == "bernoulli":
            outputs["logits"] = pixels.logits_parameter()
        elif self.model.config.likelihood == "continuous_bernoulli":
            outputs["continuous_bernoulli_logits"] = pixels.logits_parameter()
        else:
            outputs["scale"] = tf.broadcast_to(pixels.scale, tf.shape(outputs["images"]))
        return outputs

    def _sample(self, num_samples):
        latent = tf.random.normal([num_samples, self.model.latent_dim])
        if hasattr(self.model, "prior_latents"):
            # The model's own prior (a VampPrior's mixture, a two-level
            # model's p(z1)); the N(0, I) prior returns the noise.
            latent = self.model.prior_latents(
                latent, tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
            )
        return {"images": self.model.decode_mean(latent)}

    def _sample_labels(self, labels):
        latent = tf.random.normal([tf.shape(labels)[0], self.model.latent_dim])
        return {"images": self.model.decode_mean(latent, *self._one_hot(labels))}


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


class SavedModelVae:
    """A VAE read back from `export_saved_model`'s output.

    Exposes what the evaluation suite and the generator need of a VAE
    (`encode`, `decode`, `decode_mean`, `prior`, `latent_dim`, `image_shape`,
    `num_classes`, `is_conditional`) on top of the SavedModel's signatures, so
    an exported model can be used without its checkpoint or its
    configuration. Labels are one-hot, as `vae.models.VAE` takes them.
    """

    def __init__(self, export_dir: str):
        if not os.path.exists(os.path.join(export_dir, "saved_model.pb")):
            raise FileNotFoundError(
                f"{export_dir} holds no SavedModel (no saved_model.pb); "
                "expected the export/ folder that training writes when it "
                "completes."
            )
        self._loaded = tf.saved_model.load(export_dir)
        self._signatures = self._loaded.signatures
        image_spec = self._signatures["encode"].structured_input_signature[1]["images"]
        latent_spec = self._signatures["decode"].structured_input_signature[1]["latent"]
        self.image_shape: tuple[int, ...] = tuple(image_spec.shape[1:])
        self.latent_dim: int = int(latent_spec.shape[-1])
        # Exports written before conditioning existed have no such variable.
        recorded = getattr(self._loaded, "num_classes", None)
        self.num_classes: int = 0 if recorded is None else int(recorded.numpy())
        self.is_conditional = self.num_classes > 0

    def _label_inputs(self, labels) -> dict:
        if labels is None:
            if self.is_conditional:
                raise ValueError(
                    f"This exported model is conditioned on {self.num_classes} "
                    "classes and needs labels."
                )
            return {}
        if not self.is_conditional:
            raise ValueError("This exported model is unconditional but was given labels.")
        return {"labels": tf.argmax(labels, axis=-1, output_type=tf.int32)}

    def prior(self) -> tfd.Distribution:
        return tfd.MultivariateNormalDiag(loc=tf.zeros([self.latent_dim]))

    def encode(self, images, labels=None, *, is_training: bool = False, seed=None):
        del is_training, seed  # The export is in inference mode.
        outputs = self._signatures["encode"](images=images, **self._label_inputs(labels))
        return tfd.MultivariateNormalDiag(
            loc=outputs["mean"], scale_diag=outputs["stddev"]
        )

    def decode(self, latent, labels=None, *, is_training: bool = False, seed=None):
        del is_training, seed
        outputs = self._signatures["decode"](latent=latent, **self._label_inputs(labels))
        if "logits" in outputs:
            pixels = tfd.Bernoulli(logits=outputs["logits"], dtype=tf.float32)
        elif "continuous_bernoulli_logits" in outputs:
            pixels = tfd.ContinuousBernoulli(
                logits=outputs["continuous_bernoulli_logits"]
            )
        else:
            pixels = tfd.Normal(loc=outputs["images"], scale=outputs["scale"])
        return tfd.Independent(pixels, reinterpreted_batch_ndims=len(self.image_shape))

    def decode_mean(self, latent, labels=None, *, is_training: bool = False):
        del is_training
        return self._signatures["decode"](latent=latent, **self._label_inputs(labels))[
            "images"
        ]
