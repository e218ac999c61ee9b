"""Workdirs written by earlier versions still restore, and compute what they did.

The VAE, the CVAE and the VAE-GAN are built from shared blocks (`vae/blocks.py`); a
checkpoint finds each variable by its object path (attribute names and list indices),
so any change to how the networks are put together could orphan every saved run. The
golden file `golden/network_checkpoints.json` holds, for small models of each kind, the
checkpoint keys and shapes, the parameter count, and sums of the networks' outputs with
variables set from their names; it was written by the networks as they were before the
blocks were shared. Regenerate it only for a deliberate, documented break:
`python -m tests.test_checkpoint_compatibility --write`.
"""

import json
import os
import sys
import zlib

import numpy as np
import tensorflow as tf

from vae import models
from vae import vaegan

GOLDEN_PATH = os.path.join(
    os.path.dirname(__file__), "golden", "network_checkpoints.json"
)

_CONV = dict(
    image_shape=(8, 8, 1),
    latent_dim=2,
    encoder_filters=(4, 4),
    encoder_dense_units=(6,),
    decoder_dense_units=(5,),
    decoder_base_channels=4,
    decoder_filters=(4, 4),
    hidden_batch_norm=True,
    hidden_dropout_rate=0.2,
)
_VAEGAN = dict(
    image_shape=(8, 8, 1),
    latent_dim=2,
    num_classes=3,
    encoder_filters=(4, 4),
    decoder_base_channels=4,
    decoder_filters=(4, 4),
    discriminator_filters=(4, 4),
    similarity_channels=2,
    batch_norm=True,
    dropout_rate=0.2,
)

# name -> (model class, config as a run record holds it). The VAE-GAN records use
# the integer dense-unit fields that run records held before those fields were lists.
CASES = {
    "conv_vae": (models.VAE, _CONV),
    "conv_cvae_label_maps": (
        models.VAE,
        {**_CONV, "num_classes": 3, "conditioning": "label_maps"},
    ),
    "conv_cvae_concat_gaussian": (
        models.VAE,
        {**_CONV, "num_classes": 3, "likelihood": "gaussian", "decoder_output": "conv"},
    ),
    "mlp_cvae": (
        models.VAE,
        dict(
            architecture="mlp",
            image_shape=(4, 4, 1),
            latent_dim=2,
            hidden_units=(6, 5),
            num_classes=3,
            hidden_dropout_rate=0.2,
        ),
    ),
    "cvae_gan": (
        vaegan.VaeGan,
        {**_VAEGAN, "encoder_dense_units": 6, "decoder_dense_units": 5},
    ),
    "vae_gan_unconditional": (
        vaegan.VaeGan,
        {**_VAEGAN, "num_classes": 0, "encoder_dense_units": 6, "decoder_dense_units": 0},
    ),
}


def _set_variables_from_names(model: tf.Module) -> None:
    """Gives every variable values that depend only on its name, not on the order
    in which the variables were made."""
    names = [variable.name for variable in model.variables]
    assert len(set(names)) == len(names), "variable names must be unique"
    for variable in model.variables:
        rng = np.random.default_rng(zlib.crc32(variable.name.encode()))
        values = rng.uniform(-0.5, 0.5, variable.shape)
        if "moving_variance" in variable.name:  # A variance is positive.
            values = values + 1.0
        variable.assign(values.astype(np.float32))


def _output_sums(model: tf.Module) -> dict:
    rng = np.random.default_rng(0)
    batch = 3
    images = rng.uniform(size=(batch, *model.image_shape)).astype(np.float32)
    z = rng.normal(size=(batch, model.latent_dim)).astype(np.float32)
    labels = tf.one_hot([0, 1, 2], model.num_classes) if model.num_classes else None
    sums = {}
    for is_training in (False, True):
        kwargs = dict(is_training=is_training, seed=tf.constant([1, 2]))
        loc, log_variance = model.encoder(images, labels, **kwargs)
        decoded = model.decoder(z, labels, **kwargs)
        outputs = {"loc": loc, "log_variance": log_variance, "decoded": decoded}
        if hasattr(model, "discriminator"):
            logits, features = model.discriminator(images, labels, **kwargs)
            outputs.update(discriminator_logits=logits, features=features)
        for key, value in outputs.items():
            sums[f"{key}_{'training' if is_training else 'eval'}"] = float(
                tf.reduce_sum(tf.abs(value))
            )
    return sums


def describe(name: str, directory: str) -> dict:
    """Checkpoint keys with shapes, parameter count and output sums of one case."""
    model_class, record = CASES[name]
    config_class = (
        vaegan.VaeGanConfig if model_class is vaegan.VaeGan else models.ModelConfig
    )
    model = model_class(config_class.from_dict(record))
    _set_variables_from_names(model)
    path = tf.train.Checkpoint(model=model).write(os.path.join(directory, name))
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    variables = {
        key.removesuffix(suffix): "x".join(map(str, shape))
        for key, shape in tf.train.list_variables(path)
        if key.startswith("model/")
    }
    return {
        "variables": variables,
        "parameters": int(sum(np.prod(v.shape) for v in model.variables)),
        "output_sums": _output_sums(model),
    }


class CheckpointCompatibilityTest(tf.test.TestCase):
    def test_networks_match_the_golden_record(self):
        with open(GOLDEN_PATH) as stream:
            golden = json.load(stream)
        self.assertEqual(sorted(golden), sorted(CASES))
        for name in CASES:
            with self.subTest(name):
                found = describe(name, self.create_tempdir().full_path)
                self.assertEqual(found["variables"], golden[name]["variables"])
                self.assertEqual(found["parameters"], golden[name]["parameters"])
                for key, value in golden[name]["output_sums"].items():
                    self.assertAllClose(
                        found["output_sums"][key], value, rtol=1e-5, msg=f"{name}: {key}"
                    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        import tempfile

        with tempfile.TemporaryDirectory() as directory:
            record = {name: describe(name, directory) for name in CASES}
        os.makedirs(os.path.dirname(GOLDEN_PATH), exist_ok=True)
        with open(GOLDEN_PATH, "w") as stream:
            json.dump(record, stream, indent=1, sort_keys=True)
            stream.write("\n")
    else:
        tf.test.main()
