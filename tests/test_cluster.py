"""Tests for launch/cluster.py: strategies by name, clusters from TF_CONFIG
or Slurm.

No multi-worker strategy is created here: it would configure this test
process's collectives for good (tests/test_multi_worker.py runs real
workers in processes of their own).
"""

import json
import os
from unittest import mock

import tensorflow as tf

from launch import cluster
from launch import errors

_SLURM_STEP = {
    "SLURM_JOB_ID": "4321",
    "SLURM_PROCID": "2",
    "SLURM_STEP_NUM_TASKS": "3",
    "SLURM_STEP_NODELIST": "gpu[07-08]",
    "SLURM_STEP_TASKS_PER_NODE": "2,1",
}


def _environment(**variables):
    """os.environ without TF_CONFIG and Slurm's variables, plus `variables`."""
    kept = {name: value for name, value in os.environ.items()
            if name != "TF_CONFIG" and not name.startswith("SLURM_")
            and name != "CUDA_VISIBLE_DEVICES"}
    return mock.patch.dict(os.environ, {**kept, **variables}, clear=True)


class MakeStrategyTest(tf.test.TestCase):

    def test_default_is_the_default_strategy(self):
        strategy = cluster.make_strategy("default")
        self.assertIs(strategy, tf.distribute.get_strategy())
        self.assertEqual(strategy.num_replicas_in_sync, 1)

    def test_mirrored_uses_this_machines_devices(self):
        strategy = cluster.make_strategy("mirrored")
        self.assertIsInstance(strategy, tf.distribute.MirroredStrategy)
        self.assertGreaterEqual(strategy.num_replicas_in_sync, 1)

    def test_unknown_name_is_refused(self):
        with self.assertRaisesRegex(errors.ConfigError, "'tpu'.*multi_worker"):
            cluster.make_strategy("tpu")

    def test_multi_worker_without_a_cluster_says_what_is_missing(self):
        with _environment():
            with self.assertRaisesRegex(
                    errors.ConfigError,
                    "TF_CONFIG is not set, and this is not a Slurm job step "
                    r"\(no SLURM_JOB_ID, .*srun"):
                cluster.make_strategy("multi_worker")


class TfConfigTest(tf.test.TestCase):

    def test_tf_config_names_the_cluster_and_this_task(self):
        tf_config = {"cluster": {"worker": ["a:1", "b:2"]},
                     "task": {"type": "worker", "index": 1}}
        with _environment(TF_CONFIG=json.dumps(tf_config), **_SLURM_STEP):
            resolver = cluster.cluster_resolver()
            # TF_CONFIG wins over Slurm's variables.
            self.assertEqual(resolver.cluster_spec().as_dict(),
                             {"worker": ["a:1", "b:2"]})
            self.assertEqual((resolver.task_type, resolver.task_id),
                             ("worker", 1))

    def test_unusable_tf_config_is_refused_naming_it(self):
        cases = {
            "{not json": "not a usable cluster description",
            json.dumps({"cluster": {"worker": ["a:1"]}}): "'task'",
            json.dumps({"cluster": {"worker": ["a:1"]},
                        "task": {"type": "chief", "index": 0}}):
                "task type 'chief' is not a job",
            json.dumps({"cluster": {"worker": ["a:1"]},
                        "task": {"type": "worker", "index": 3}}):
                "task index 3 is not one of the 1 tasks",
        }
        for text, fragment in cases.items():
            with self.subTest(text=text), _environment(TF_CONFIG=text):
                with self.assertRaises(errors.ConfigError) as caught:
                    cluster.cluster_resolver()
                self.assertIn(fragment, str(caught.exception))
                self.assertIn("TF_CONFIG", str(caught.exception))


class SlurmTest(tf.test.TestCase):

    def test_step_tasks_become_workers_on_job_specific_ports(self):
        with _environment(CUDA_VISIBLE_DEVICES="0,1", **_SLURM_STEP):
            resolver = cluster.cluster_resolver()
            # Two tasks on gpu07, one on gpu08; ports from the job id.
            port = 12000 + 4321
            self.assertEqual(resolver.cluster_spec().as_dict(), {
                "worker": [f"gpu07:{port}", f"gpu07:{port + 1}",
                           f"gpu08:{port}"]})
            self.assertEqual((resolver.task_type, resolver.task_id),
                             ("worker", 2))
            self.assertEqual(resolver.num_accelerators(), {"GPU": 2})
            # The GPUs Slurm made visible are left alone.
            self.assertEqual(os.environ["CUDA_VISIBLE_DEVICES"], "0,1")

    def test_cpu_nodes_list_every_task(self):
        with _environment(**dict(_SLURM_STEP, SLURM_PROCID="0",
                                 SLURM_STEP_TASKS_PER_NODE="3",
                                 SLURM_STEP_NODELIST="cpu01")):
            resolver = cluster.cluster_resolver()
            self.assertLen(resolver.cluster_spec().as_dict()["worker"], 3)
            self.assertEqual(resolver.num_accelerators(), {"GPU": 0})

    def test_batch_script_outside_a_step_is_refused(self):
        # sbatch's own shell has the job's variables but no step's.
        with _environment(SLURM_JOB_ID="1", SLURM_PROCID="0"):
            with self.assertRaisesRegex(errors.ConfigError,
                                        "SLURM_STEP_NUM_TASKS"):
                cluster.cluster_resolver()


if __name__ == "__main__":
    tf.test.main()
