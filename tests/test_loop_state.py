from absl.testing import absltest

from trainers import loop_state


class LoopStateTest(absltest.TestCase):
    def test_epoch_means_leave_out_skipped_steps(self):
        state = loop_state.LoopState()
        state.add_loop({"loss": 2.0}, num_steps=4, counted=4, seconds=1.0)
        # Three steps, one of them skipped: the mean of the other two is 5.
        state.add_loop({"loss": 5.0}, num_steps=3, counted=2, seconds=1.0)
        state.add_skipped(1)
        self.assertAlmostEqual(state.epoch_means()["loss"], (8.0 + 10.0) / 6)
        record = state.epoch_record(0, global_step=7, batch_size=10, with_skipped=True)
        self.assertEqual(record["epoch"], 1)
        self.assertEqual(record["skipped_nonfinite_steps"], 1)
        self.assertAlmostEqual(record["images_per_second"], 70 / 2.0)
        state.start_epoch()
        self.assertEqual(state.epoch_means(), {})
        self.assertEqual(state.total_skipped_steps, 1)
        self.assertAlmostEqual(state.total_train_seconds, 2.0)

    def test_a_restored_state_equals_the_saved_one(self):
        state = loop_state.LoopState()
        state.add_loop({"elbo": -100.5}, num_steps=2, counted=2, seconds=0.5)
        state.history.append({"epoch": 1, "train": {"elbo": -101.0}})
        state.steps_per_epoch = 9
        restored = loop_state.LoopState()
        restored.deserialize(state.serialize().encode("utf-8"))
        self.assertEqual(vars(restored), vars(state))

    def test_a_record_without_skip_counts_restores_with_none_skipped(self):
        # Checkpoints written before steps could be skipped.
        state = loop_state.LoopState()
        state.deserialize(
            '{"epoch_sums": {}, "epoch_steps": 0, "epoch_train_seconds": 0,'
            ' "total_train_seconds": 0, "total_wall_seconds": 0,'
            ' "steps_per_epoch": 3, "history": []}'
        )
        self.assertEqual(state.total_skipped_steps, 0)
        self.assertEqual(state.steps_per_epoch, 3)

    def test_metrics_payload_final_images_per_second_is_over_the_run(self):
        history = [
            {
                "epoch": 1,
                "images_per_second": 100.0,
                "epoch_train_seconds": 1.0,
                "train": {"elbo": -3.0},
            },
            {
                "epoch": 2,
                "images_per_second": 300.0,
                "epoch_train_seconds": 3.0,
                "train": {"elbo": -2.0},
            },
        ]
        payload = loop_state.metrics_payload(history)
        self.assertEqual(payload["epochs"], history)
        self.assertEqual(payload["final"]["epoch"], 2)
        self.assertEqual(payload["final"]["train"], {"elbo": -2.0})
        self.assertAlmostEqual(payload["final"]["images_per_second"], 1000 / 4)
        self.assertNotIn("epoch_train_seconds", payload["final"])
        self.assertEqual(loop_state.metrics_payload([]), {"epochs": []})


if __name__ == "__main__":
    absltest.main()
