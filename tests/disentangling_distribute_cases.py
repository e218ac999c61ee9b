"""beta-TCVAE and FactorVAE under MirroredStrategy over two logical CPUs, run
in a process of its own by tests/test_disentangling_distribute.py (the devices
must be set up before anything else runs; see tests/distribute_cases.py):

    python -m tests.disentangling_distribute_cases OUTPUT.json
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

from tests import distribute_cases
from tests import test_factorvae_trainer
from tests import test_tcvae_trainer
from trainers import factorvae as factorvae_trainer
from trainers import tcvae
from trainers import total_correlation
from vae import factorvae
from vae import models


def _train(strategy, trainer_class, model_class, model_config, objective):
    with strategy.scope():
        tf.random.set_seed(7)
        model = model_class(model_config)
        trainer = trainer_class.from_objective(
            model,
            objective,
            distribute_cases.two_epoch_config(),
            test_tcvae_trainer.data_source(),
        )
    metrics = trainer.train().metrics
    return trainer, {
        "train": metrics["epochs"][-1]["train"],
        "test_elbo": metrics["final"]["test"]["elbo"],
        "iterations": {
            key: int(optimizer.iterations.numpy())
            for key, optimizer in trainer.optimizers.items()
        },
    }


def run(output):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {"num_replicas": mirrored.num_replicas_in_sync}
    for name, strategy in (
        ("default", tf.distribute.get_strategy()),
        ("mirrored", mirrored),
    ):
        _, results[f"tcvae_{name}"] = _train(
            strategy,
            tcvae.BetaTcvaeTrainer,
            models.VAE,
            test_tcvae_trainer.TINY,
            tcvae.BetaTcvaeObjective(beta=6.0, tc_estimator="mss"),
        )
        trainer, results[f"factorvae_{name}"] = _train(
            strategy,
            factorvae_trainer.FactorVaeTrainer,
            factorvae.FactorVAE,
            test_factorvae_trainer.TINY,
            factorvae_trainer.FactorVaeObjective(gamma=10.0),
        )

    # Each replica permutes its own rows with its own seed.
    seed = tf.constant([4, 2], tf.int32)

    def permuted_rows(seed):
        codes = trainer.example_noise(seed, tf.constant(6), [3])
        return {
            "codes": codes,
            "permuted": total_correlation.permute_dims(codes, trainer.replica_seed(seed)),
            "replica_seed": trainer.replica_seed(seed),
        }

    results["permutations"] = [
        {key: value.numpy().tolist() for key, value in replica.items()}
        for replica in mirrored.experimental_local_results(
            mirrored.run(permuted_rows, args=(seed,))
        )
    ]
    with open(output, "w") as stream:
        json.dump(results, stream, default=float)


if __name__ == "__main__":
    run(sys.argv[1])
