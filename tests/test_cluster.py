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
    kept = {
        name: value
        for name, value in os.environ.items()
        if name != "TF_CONFIG"
        and not name.startswith("SLURM_")
        and name != "CUDA_VISIBLE_DEVICES"
    }
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
                r"\(no SLURM_JOB_ID, .*srun",
            ):
                cluster.make_strategy("multi_worker")


class TfConfigTest(tf.test.TestCase):
    def test_tf_config_names_the_cluster_and_this_task(self):
        tf_config = {
            "cluster": {"worker": ["a:1", "b:2"]},
            "task": {"type": "worker", "index": 1},
        }
        with _environment(TF_CONFIG=json.dumps(tf_config), **_SLURM_STEP):
            resolver = cluster.cluster_resolver()
            # TF_CONFIG wins over Slurm's variables.
            self.assertEqual(
                resolver.cluster_spec().as_dict(), {"worker": ["a:1", "b:2"]}
            )
            self.assertEqual((resolver.task_type, resolver.task_id), ("worker", 1))

    def test_unusable_tf_config_is_refused_naming_it(self):
        cases = {
            "{not json": "not a usable cluster description",
            json.dumps({"cluster": {"worker": ["a:1"]}}): "'task'",
            json.dumps(
                {"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}
            ): "task type 'chief' is not a job",
            json.dumps(
                {"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}
            ): "task index 3 is not one of the 1 tasks",
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
            # Two tasks on gpu07, one on gpu08; without VAE_WORKER_PORT the
            # ports come from the job id: 15000 + (4321 % 1000) * 16.
            port = 15000 + 321 * 16
            self.assertEqual(
                resolver.cluster_spec().as_dict(),
                {"worker": [f"gpu07:{port}", f"gpu07:{port + 1}", f"gpu08:{port}"]},
            )
            self.assertEqual((resolver.task_type, resolver.task_id), ("worker", 2))
            self.assertEqual(resolver.num_accelerators(), {"GPU": 2})
            # The GPUs Slurm made visible are left alone.
            self.assertEqual(os.environ["CUDA_VISIBLE_DEVICES"], "0,1")

    def test_neighbouring_jobs_get_disjoint_ports(self):
        def ports(job_id):
            spec, _ = cluster.slurm_cluster_spec(
                dict(
                    _SLURM_STEP,
                    SLURM_JOB_ID=str(job_id),
                    SLURM_STEP_NODELIST="n1",
                    SLURM_STEP_TASKS_PER_NODE="3",
                )
            )
            return {int(address.rpartition(":")[2]) for address in spec["worker"]}

        self.assertFalse(ports(100) & ports(101))
        self.assertEqual(min(ports(999)), 15000 + 999 * 16)

    def test_chief_is_slurms_rank_0_on_any_host_list(self):
        # TensorFlow's SlurmClusterResolver sorted node10 before node9.
        for nodelist, tasks_per_node, hosts in (
            ("node[9-10]", "1(x2)", ["node9", "node10"]),
            ("a[1-2],b3", "1(x3)", ["a1", "a2", "b3"]),
            ("n[9-10],a1", "2,1,1", ["n9", "n9", "n10", "a1"]),
        ):
            for rank in range(len(hosts)):
                with self.subTest(nodelist=nodelist, rank=rank):
                    spec, task_id = cluster.slurm_cluster_spec(
                        dict(
                            _SLURM_STEP,
                            SLURM_STEP_NODELIST=nodelist,
                            SLURM_STEP_TASKS_PER_NODE=tasks_per_node,
                            SLURM_STEP_NUM_TASKS=str(len(hosts)),
                            SLURM_PROCID=str(rank),
                            VAE_WORKER_PORT="23000",
                        )
                    )
                    self.assertEqual(
                        [address.rpartition(":")[0] for address in spec["worker"]], hosts
                    )
                    self.assertEqual(task_id, rank)
        spec, _ = cluster.slurm_cluster_spec(
            dict(
                _SLURM_STEP,
                SLURM_STEP_NODELIST="n[9-10],a1",
                SLURM_STEP_TASKS_PER_NODE="2,1,1",
                SLURM_STEP_NUM_TASKS="4",
                SLURM_PROCID="0",
                VAE_WORKER_PORT="23000",
            )
        )
        self.assertEqual(
            spec["worker"], ["n9:23000", "n9:23001", "n10:23000", "a1:23000"]
        )

    def test_non_block_layout_and_bad_port_are_refused(self):
        with self.assertRaisesRegex(errors.ConfigError, "--distribution=block"):
            cluster.slurm_cluster_spec(
                dict(
                    _SLURM_STEP,
                    SLURMD_NODENAME="gpu08",
                    SLURM_LOCALID="0",
                    SLURM_PROCID="1",
                )
            )
        with self.assertRaisesRegex(
            errors.ConfigError, "VAE_WORKER_PORT='80x' is not a port"
        ):
            cluster.slurm_cluster_spec(dict(_SLURM_STEP, VAE_WORKER_PORT="80x"))

    def test_port_in_use_is_refused_naming_it(self):
        import socket  # pylint: disable=import-outside-toplevel

        with socket.socket() as holder:
            holder.bind(("", 0))
            holder.listen()
            port = holder.getsockname()[1]
            with _environment(
                **dict(_SLURM_STEP, SLURM_PROCID="0", VAE_WORKER_PORT=str(port))
            ):
                with self.assertRaisesRegex(
                    errors.ConfigError, f"port {port} .* is in use"
                ):
                    cluster.cluster_resolver()

    def test_cpu_nodes_list_every_task(self):
        with _environment(
            **dict(
                _SLURM_STEP,
                SLURM_PROCID="0",
                SLURM_STEP_TASKS_PER_NODE="3",
                SLURM_STEP_NODELIST="cpu01",
            )
        ):
            resolver = cluster.cluster_resolver()
            self.assertLen(resolver.cluster_spec().as_dict()["worker"], 3)
            self.assertEqual(resolver.num_accelerators(), {"GPU": 0})

    def test_batch_script_outside_a_step_is_refused(self):
        # sbatch's own shell has the job's variables but no step's.
        with _environment(SLURM_JOB_ID="1", SLURM_PROCID="0"):
            with self.assertRaisesRegex(errors.ConfigError, "SLURM_STEP_NUM_TASKS"):
                cluster.cluster_resolver()


if __name__ == "__main__":
    tf.test.main()
