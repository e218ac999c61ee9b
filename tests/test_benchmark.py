"""Tests for vae-benchmark (launch/benchmark.py, benchmarking.py and
benchmark_worker.py): FLOP counting, window statistics, the tables, bad
input, and one short end-to-end run in which both implementations of two
presets train."""

import json
import os

import tensorflow as tf

from launch import benchmark_worker
from launch import benchmarking
from tests import testing_utils


class FlopCountTest(tf.test.TestCase):
    def test_matmul_and_convolutions_are_counted_exactly(self):
        @tf.function
        def network(images, kernel, weights):
            features = tf.nn.conv2d(images, kernel, 1, "SAME")  # [2,5,5,4]
            return tf.matmul(tf.reshape(features, [2, 100]), weights)

        concrete = network.get_concrete_function(
            tf.TensorSpec([2, 5, 5, 3]),
            tf.TensorSpec([3, 3, 3, 4]),
            tf.TensorSpec([100, 7]),
        )
        conv = 2 * (2 * 5 * 5 * 4) * (3 * 3 * 3)
        matmul = 2 * (2 * 7) * 100
        self.assertEqual(benchmark_worker.graph_flops(concrete), conv + matmul)

    def test_gradients_of_a_convolution_cost_twice_its_forward_pass(self):
        kernel = tf.Variable(tf.ones([3, 3, 2, 4]))

        @tf.function
        def loss_and_gradients(images):
            with tf.GradientTape() as tape:
                tape.watch(images)
                loss = tf.reduce_sum(tf.nn.conv2d(images, kernel, 1, "SAME"))
            return tape.gradient(loss, [images, kernel])

        concrete = loss_and_gradients.get_concrete_function(tf.TensorSpec([2, 6, 6, 2]))
        forward = 2 * (2 * 6 * 6 * 4) * (3 * 3 * 2)
        self.assertEqual(benchmark_worker.graph_flops(concrete), 3 * forward)


class WindowSummaryTest(tf.test.TestCase):
    def test_median_of_steady_windows_and_first_step(self):
        summary = benchmark_worker._windows_summary(
            [5.0, 1.0, 3.0, 2.0], warmup_windows=1, window_steps=10, batch_size=4
        )
        self.assertAllClose(summary["images_per_second"], 40 / 2.0)
        self.assertAllClose(summary["steady_spread"], (3.0 - 1.0) / 2.0)
        # The first window less nine steady steps of 0.2 s.
        self.assertAllClose(summary["first_step_seconds"], 5.0 - 1.8)


class TableTest(tf.test.TestCase):
    def _runs(self, images_per_second, parameters=10):
        return [
            {
                "images_per_second": images_per_second,
                "first_step_seconds": 1.5,
                "peak_rss_mib": 900.0,
                "parameters": parameters,
                "batch_size": 8,
                "flops_per_step": 8e6,
            }
        ]

    def test_ratio_flops_and_parameter_mismatch(self):
        row = benchmarking.summarize(
            "mlp_vae",
            {"framework": self._runs(300.0), "keras": self._runs(200.0, parameters=11)},
            peak_flops=1e9,
        )
        self.assertAllClose(row["ratio"], 1.5)
        self.assertFalse(row["same_parameters"])
        # 8e6 FLOPs per step of 8 images at 300 images/s.
        self.assertAllClose(row["framework_flops_per_second"], 3e8)
        self.assertAllClose(row["fraction_of_peak"], 0.3)
        table = benchmarking.format_table([row])
        self.assertIn("| mlp_vae | 8 | 10 (Keras 11) | 300 | 200 | 1.50 |", table)
        self.assertIn("30.0%", table)

    def test_machine_peak_is_cores_times_clock_times_32(self):
        peak = benchmarking.machine_peak_flops()
        if peak is None:
            self.skipTest("No clock or no AVX2/FMA in /proc/cpuinfo here.")
        cores = len(os.sched_getaffinity(0))
        per_core_hertz = peak / cores / benchmarking.FLOPS_PER_CYCLE_AVX2_FMA
        self.assertBetween(per_core_hertz, 5e8, 6e9)


def _run_benchmark(*args):
    return testing_utils.run_module("launch.benchmark", list(args))


class BenchmarkProgramTest(tf.test.TestCase):
    def test_unknown_preset_is_refused_in_one_paragraph(self):
        testing_utils.assert_clear_error(
            self,
            _run_benchmark("--presets=mlp_vae,resnet"),
            "--presets=mlp_vae,resnet names resnet",
            "expected",
        )

    def test_missing_data_dir_is_refused(self):
        testing_utils.assert_clear_error(
            self,
            _run_benchmark("--data_dir=/no/such/place"),
            "--data_dir=/no/such/place is not a directory",
        )

    def test_both_implementations_train_every_kind_of_preset(self):
        # The conv CVAE (label maps, transposed convolutions) and the
        # VAE-GAN: two short windows each, on random data.
        output = os.path.join(self.create_tempdir().full_path, "bench.json")
        completed = _run_benchmark(
            "--presets=conv_cvae,cvae_gan",
            "--windows=1",
            "--window_scale=0.02",
            f"--output={output}",
        )
        self.assertEqual(completed.returncode, 0, completed.stdout + completed.stderr)
        with open(output) as stream:
            report = json.load(stream)
        self.assertEqual(
            [row["preset"] for row in report["rows"]], ["conv_cvae", "cvae_gan"]
        )
        for row in report["rows"]:
            # Same networks on both sides, or the ratio would mean nothing.
            self.assertTrue(row["same_parameters"], row["preset"])
            self.assertGreater(row["flops_per_step"], 0)
            for side in ("framework", "keras"):
                self.assertGreater(row[side]["images_per_second"], 0)
                self.assertGreater(row[side]["peak_rss_mib"], 100)
                self.assertLen(row[side]["runs"][0]["window_seconds"], 2)
        self.assertIn("| conv_cvae | 128 |", completed.stdout)
