"""The compiled step is traced once for a whole run: no retracing across
epochs, loops of different lengths, evaluations or a resume.

A Python statement in a `tf.function` runs only while the function is being
traced, so counting how often `train_step` and `eval_step` execute in
Python counts traces, whatever the trainer wraps them in. (The VAE-GAN trainer's balancing loops
have their own test in test_vaegan_trainer.py.)
"""

import numpy as np
import tensorflow as tf

from tests import testing_utils
from trainers import base
from trainers import elbo
from trainers import optimizers
from vae import datasets
from vae import models

IMAGE_SHAPE = (4, 4, 1)
BATCH_SIZE = 8
NUM_TRAIN = 40  # Five steps an epoch: loops of 3 then 2 steps.
STEPS_PER_LOOP = 3


def _split(num_examples, seed):
    rng = np.random.default_rng(seed)
    return datasets.ArraySplit(
        images=rng.integers(0, 256, (num_examples, *IMAGE_SHAPE), dtype=np.uint8),
        labels=rng.integers(0, 2, num_examples).astype(np.int64),
    )


def _data_source():
    return testing_utils.array_data_source(
        _split(NUM_TRAIN, 1),
        _split(12, 2),
        batch_size=BATCH_SIZE,
        eval_batch_size=5,
        binarization="dynamic",
        num_classes=2,
    )


def _counting(trainer_class):
    """`trainer_class` with Python counters in its step methods."""

    class Counting(trainer_class):
        train_traces = 0
        eval_traces = 0

        def train_step(self, batch, seed):
            type(self).train_traces += 1
            return super().train_step(batch, seed)

        def eval_step(self, batch):
            type(self).eval_traces += 1
            return super().eval_step(batch)

    return Counting


class NoRetracingTest(tf.test.TestCase):
    def _config(self, workdir, epochs):
        return base.TrainerConfig(
            workdir=workdir, epochs=epochs, steps_per_loop=STEPS_PER_LOOP, progress="none"
        )

    def _elbo_trainer(self, workdir, epochs):
        trainer_class = _counting(elbo.ElboTrainer)
        model = models.VAE(testing_utils.mlp_config(IMAGE_SHAPE, (8,)))
        return trainer_class(
            model,
            optimizers.make_optimizer("adam", 1e-3),
            self._config(workdir, epochs),
            _data_source(),
            objective=elbo.ElboObjective(kl="mc"),
        )

    def test_elbo_trainer_traces_its_step_once_over_two_epochs(self):
        trainer = self._elbo_trainer(self.create_tempdir().full_path, 2)
        result = trainer.train()
        self.assertTrue(result.completed)
        self.assertEqual(result.global_step, 10)
        # Four loops of 3 and 2 steps and two evaluations, on one trace each.
        self.assertEqual(type(trainer).train_traces, 1)
        self.assertEqual(type(trainer).eval_traces, 1)
        # The loop around the step takes a new iterator each epoch and its
        # number of steps as a tensor, so it is traced once too.
        self.assertEqual(trainer._train_loop_fn.experimental_get_tracing_count(), 1)

    def test_a_resumed_run_traces_once_more_and_then_never(self):
        workdir = self.create_tempdir().full_path
        self._elbo_trainer(workdir, 1).train()
        resumed = self._elbo_trainer(workdir, 3)
        self.assertTrue(resumed.train().completed)
        self.assertEqual(type(resumed).train_traces, 1)
