"""Training runs that the distribution tests start in processes of their own.

A strategy over several devices needs TensorFlow's devices set up before
anything else runs (two logical CPUs for MirroredStrategy, a cluster for
MultiWorkerMirroredStrategy), which a pytest process that has already run
other tests cannot do. So tests/test_distribute.py and
tests/test_multi_worker.py run this module:

    python -m tests.distribute_cases mirrored OUTPUT.json
    TF_CONFIG=... python -m tests.distribute_cases worker OUTPUT.json \
        WORKDIR [EPOCH BATCH]

and read back what it wrote. `mirrored` splits the CPU into two logical
devices and trains each case under the default strategy and under
MirroredStrategy over both. `worker` is one worker of a multi-worker run of
`autoencoder_run` (with EPOCH BATCH, the chief sends itself SIGUSR1 when its
input pipeline makes that batch). The tests import `autoencoder_run` too, to
train the single-device reference in their own process.
"""

import json
import os
import signal
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf
import tf_keras

from tests import testing_utils
from trainers import autoencoder as autoencoder_trainer
from trainers import base
from trainers import elbo
from trainers import optimizers
from trainers import vaegan as vaegan_trainer
from vae import autoencoder
from vae import datasets
from vae import models
from vae import vaegan

AUTOENCODER_BATCH_SIZE = 20
AUTOENCODER_STEPS_PER_EPOCH = 10


def _toy2d_data(kill_at_batch=None):
    """200 toy2d points in batches of 20, 60 test points.

    With `kill_at_batch=(epoch, batch)`, the pipeline sends SIGUSR1 to this
    process when it makes that batch, as Slurm would before a time limit.
    """
    train, test = testing_utils.toy2d_splits(
        AUTOENCODER_BATCH_SIZE * AUTOENCODER_STEPS_PER_EPOCH
    )
    return testing_utils.array_data_source(
        train,
        test,
        batch_size=AUTOENCODER_BATCH_SIZE,
        eval_batch_size=25,
        binarization="none",
        num_classes=2,
        signal_at_batch=kill_at_batch,
        signal_number=signal.SIGUSR1,
    )


def two_epoch_config():
    """Two epochs in loops of two steps, in a workdir of the run's own: the
    config of the cases that compare strategies (tests/
    disentangling_distribute_cases.py's too)."""
    return base.TrainerConfig(
        workdir=tempfile.mkdtemp(), epochs=2, seed=5, steps_per_loop=2, progress="none"
    )


def autoencoder_run(workdir, strategy, *, epochs=3, kill_at_batch=None):
    """Trains a tiny autoencoder on toy2d (no noise: every strategy should
    follow the same trajectory) and returns what the tests compare.

    Returns:
      completed, stop_signal, global_step, is_chief, the per-epoch train and
      test mse (test None for epochs this worker did not evaluate: only the
      chief evaluates), the final weights as lists and where this worker
      wrote its checkpoints.
    """
    with strategy.scope():
        tf.random.set_seed(7)
        model = autoencoder.Autoencoder(
            autoencoder.AutoencoderConfig(hidden_units=(16,), code_dim=1)
        )
        trainer = autoencoder_trainer.AutoencoderTrainer(
            model,
            optimizers.make_optimizer("adam", 1e-2),
            base.TrainerConfig(
                workdir=workdir, epochs=epochs, seed=0, steps_per_loop=2, progress="none"
            ),
            _toy2d_data(kill_at_batch),
        )
    result = trainer.train()
    return {
        "completed": result.completed,
        "stop_signal": result.stop_signal,
        "global_step": result.global_step,
        "is_chief": trainer.is_chief,
        "train_mse": [record["train"]["mse"] for record in result.metrics["epochs"]],
        "test_mse": [
            record.get("test", {}).get("mse") for record in result.metrics["epochs"]
        ],
        "weights": [variable.numpy().tolist() for variable in model.trainable_variables],
        "checkpoint_directory": trainer.checkpoint_manager.directory,
    }


# ---------------------------------------------------------------------------
# Cases under MirroredStrategy.


def _regression_run(strategy):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 64).astype(np.float32)
    noise = rng.normal(0, 0.1, 64).astype(np.float32)

    def train_batches(epoch, skip_batches):
        order = np.random.default_rng(epoch).permutation(64)
        return (
            tf.data.Dataset.from_tensor_slices(
                {"x": x[order], "y": 3 * x[order] - 1 + noise[order]}
            )
            .batch(8, drop_remainder=True)
            .skip(skip_batches)
        )

    def eval_batches():
        return tf.data.Dataset.from_tensor_slices(
            {"x": x, "y": 3 * x - 1, "mask": np.ones(64, np.float32)}
        ).batch(16)

    data = base.DataSource(
        train_batches=train_batches,
        steps_per_epoch=8,
        batch_size=8,
        eval_batches={"test": eval_batches},
    )
    with strategy.scope():
        model = testing_utils.LinearModel()
        trainer = testing_utils.RegressionTrainer(
            model,
            base.TrainerConfig(
                workdir=tempfile.mkdtemp(), epochs=3, steps_per_loop=3, progress="none"
            ),
            data,
        )
    metrics = trainer.train().metrics
    return {
        "loss": [record["train"]["loss"] for record in metrics["epochs"]],
        "steps": metrics["final"]["train"]["steps"],
        "test": metrics["final"]["test"]["squared_error"],
        "weights": [float(model.weight.numpy()), float(model.bias.numpy())],
    }


# The VAE-GAN case: a batch of 4 whose first two images (replica 0's share)
# are black, with L_GAN 0.2, and whose last two (replica 1's) are white,
# with L_GAN 3.0.
_LOW_GAN, _HIGH_GAN = 0.2, 3.0


class _SteeredVaeGanTrainer(vaegan_trainer.VaeGanTrainer):
    """L_GAN per example is fixed by the image (black: low, white: high),
    whatever the weights, so the two replicas measure different L_GAN."""

    def loss_terms(self, images, labels, seed, *, is_training):
        terms = super().loss_terms(images, labels, seed, is_training=is_training)
        white = tf.reduce_mean(images, axis=[1, 2, 3]) > 0.5
        # Keeps the networks in the graph, with a zero gradient.
        terms["gan"] = tf.where(white, _HIGH_GAN, _LOW_GAN) + 0.0 * terms["gan"]
        return terms


def _vaegan_run(strategy, schedule="alternating"):
    """The steered VAE-GAN with the balanced alternating schedule, or the
    plain one with the simultaneous schedule (all three networks learn)."""
    images = np.zeros((4, 4, 4, 1), np.uint8)
    images[2:] = 255
    split = datasets.ArraySplit(images, np.zeros(4, np.int64))
    data = base.DataSource(
        # The same order every step: replica 0 gets the black images.
        train_batches=lambda epoch, skip: tf.data.Dataset.from_tensors(
            {"image": images.astype(np.float32) / 255.0}
        ).repeat(2 - skip),
        steps_per_epoch=2,
        batch_size=4,
        eval_batches={
            "test": lambda: datasets.eval_batches(
                split, batch_size=4, seed=0, binarization="none", num_classes=1
            )
        },
    )
    with strategy.scope():
        tf.random.set_seed(0)
        model = vaegan.VaeGan(
            vaegan.VaeGanConfig(
                image_shape=(4, 4, 1),
                latent_dim=1,
                num_classes=0,
                encoder_filters=(2, 2),
                encoder_dense_units=(2,),
                decoder_base_channels=2,
                decoder_filters=(2, 2),
                discriminator_filters=(2, 2),
                similarity_channels=2,
                dropout_rate=0.0,
            )
        )
        if schedule == "alternating":
            trainer_class = _SteeredVaeGanTrainer
            objective = vaegan_trainer.VaeGanObjective(
                d_steps=3, g_steps=3, d_threshold=1.0, g_threshold=2.0
            )
        else:
            trainer_class = vaegan_trainer.VaeGanTrainer
            objective = vaegan_trainer.VaeGanObjective(
                schedule=schedule, d_steps=1, g_steps=1
            )
        trainer = trainer_class(
            model,
            {
                player: optimizers.make_optimizer("rmsprop", 1e-3)
                for player in vaegan_trainer.PLAYERS
            },
            base.TrainerConfig(
                workdir=tempfile.mkdtemp(), epochs=1, steps_per_loop=2, progress="none"
            ),
            data,
            objective=objective,
        )
    final = trainer.train().metrics["final"]
    return {"train": final["train"], "test_elbo": final["test"]["elbo"]}


def _elbo_run(strategy, regularised=True):
    """A VAE trained with sampled latents; `regularised` adds batch norm
    (statistics per replica, moving averages over the replicas) and dropout
    (masks per replica)."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (32, 8, 8, 1), dtype=np.uint8)
    split = datasets.ArraySplit(images, np.zeros(32, np.int64))
    data = testing_utils.array_data_source(
        split,
        split,
        batch_size=16,
        eval_batch_size=16,
        binarization="dynamic",
        num_classes=1,
        seed=3,
    )
    with strategy.scope():
        tf.random.set_seed(7)
        model = models.VAE(
            testing_utils.mlp_config(
                (8, 8, 1),
                (16,),
                hidden_batch_norm=regularised,
                hidden_dropout_rate=0.1 if regularised else 0.0,
            )
        )
        trainer = elbo.ElboTrainer(
            model,
            tf_keras.optimizers.Adam(1e-2),
            two_epoch_config(),
            data,
        )
    metrics = trainer.train().metrics

    seed = tf.constant([7, 11], tf.int32)  # As the loop draws it.

    def replica_draws(seed):
        # A global batch of 4, split over the replicas.
        rows = trainer.example_noise(
            seed, tf.constant(4 // strategy.num_replicas_in_sync), [3]
        )
        return {"seed": seed, "replica_seed": trainer.replica_seed(seed), "noise": rows}

    draws = strategy.experimental_local_results(strategy.run(replica_draws, args=(seed,)))
    moving_means = [
        variable for variable in model.variables if "moving_mean" in variable.name
    ]
    return {
        "train_elbo": [record["train"]["elbo"] for record in metrics["epochs"]],
        # Only the chief evaluates.
        "test_elbo": metrics["final"].get("test", {}).get("elbo"),
        "replica_draws": [
            {key: value.numpy().tolist() for key, value in replica.items()}
            for replica in draws
        ],
        "moving_mean_copies": [
            [
                copy.numpy().tolist()
                for copy in strategy.experimental_local_results(variable)
            ]
            for variable in moving_means
        ],
    }


def _refused_model_outside_scope(strategy):
    model = testing_utils.LinearModel()  # Not in the strategy's scope.
    data = base.DataSource(train_batches=None, steps_per_epoch=1, batch_size=2)
    try:
        with strategy.scope():
            testing_utils.RegressionTrainer(
                model,
                base.TrainerConfig(workdir=tempfile.mkdtemp(), epochs=1, progress="none"),
                data,
            )
    except ValueError as error:
        return str(error)
    return None


def _refused_odd_batch(strategy):
    data = base.DataSource(train_batches=None, steps_per_epoch=1, batch_size=7)
    try:
        with strategy.scope():
            testing_utils.RegressionTrainer(
                testing_utils.LinearModel(),
                base.TrainerConfig(workdir=tempfile.mkdtemp(), epochs=1, progress="none"),
                data,
            )
    except ValueError as error:
        return str(error)
    return None


def _resume_under_mirrored(mirrored):
    """One epoch under the default strategy, two more under mirrored."""
    workdir = tempfile.mkdtemp()
    autoencoder_run(workdir, tf.distribute.get_strategy(), epochs=1)
    return autoencoder_run(workdir, mirrored, epochs=3)


def run_mirrored_cases():
    """Every case under the default strategy and under two logical CPUs."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    tf.config.experimental.enable_op_determinism()
    default = tf.distribute.get_strategy()
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {"num_replicas": mirrored.num_replicas_in_sync}
    for name, strategy in (("default", default), ("mirrored", mirrored)):
        results[name] = {
            "regression": _regression_run(strategy),
            "autoencoder": autoencoder_run(tempfile.mkdtemp(), strategy),
            "vaegan": _vaegan_run(strategy),
            "vaegan_simultaneous": _vaegan_run(strategy, "simultaneous"),
            "plain_elbo": _elbo_run(strategy, regularised=False),
        }
    results["mirrored"]["elbo"] = _elbo_run(mirrored)
    results["mirrored"]["elbo_again"] = _elbo_run(mirrored)
    results["mirrored"]["resumed_autoencoder"] = _resume_under_mirrored(mirrored)
    results["mirrored"]["outside_scope_error"] = _refused_model_outside_scope(mirrored)
    results["mirrored"]["odd_batch_error"] = _refused_odd_batch(mirrored)
    return results


def run_worker(workdir, kill_at_batch):
    """One worker of a multi-worker autoencoder run (cluster from TF_CONFIG)."""
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    tf.config.experimental.enable_op_determinism()
    result = autoencoder_run(workdir, strategy, kill_at_batch=kill_at_batch)
    result["checkpoint_directory_left"] = os.path.exists(result["checkpoint_directory"])
    return result


def run_elbo_worker():
    """One worker of a multi-worker ELBO run with sampled latents."""
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    tf.config.experimental.enable_op_determinism()
    return _elbo_run(strategy, regularised=False)


def main(argv):
    case, output = argv[1], argv[2]
    if case == "mirrored":
        results = run_mirrored_cases()
    elif case == "elbo_worker":
        results = run_elbo_worker()
    elif case == "worker":
        kill_at_batch = (
            tuple(int(value) for value in argv[4:6]) if len(argv) > 4 else None
        )
        results = run_worker(argv[3], kill_at_batch)
    else:
        raise SystemExit(
            f"Unknown case {case!r}; expected mirrored, elbo_worker or worker."
        )
    with open(output, "w") as stream:
        json.dump(results, stream)


if __name__ == "__main__":
    main(sys.argv)
