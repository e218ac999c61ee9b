"""Tests for trainers/progress.py: log lines off a terminal, a bar on one."""

import io
from unittest import mock

from absl import logging
from absl.testing import parameterized
import tensorflow as tf

from trainers import progress

LOGS = {"loss": 152.3149, "kl": 4.02111}


def _update(reporter, step_in_epoch, steps_per_epoch=10, epoch=0):
    reporter.update(
        epoch=epoch,
        num_epochs=3,
        step_in_epoch=step_in_epoch,
        steps_per_epoch=steps_per_epoch,
        global_step=epoch * steps_per_epoch + step_in_epoch,
        logs=LOGS,
        images_per_second=1234.4,
    )


class _TerminalStream(io.StringIO):
    def isatty(self):
        return True


class FormatLogsTest(tf.test.TestCase):
    def test_four_significant_digits_in_given_order(self):
        self.assertEqual(progress.format_logs(LOGS), "loss=152.3 kl=4.021")
        self.assertEqual(
            progress.format_logs({"b": 1e-7, "a": 123456.0}), "b=1e-07 a=1.235e+05"
        )
        self.assertEqual(progress.format_logs({}), "")


class ProgressReporterTest(tf.test.TestCase, parameterized.TestCase):
    def test_log_mode_at_most_once_per_interval_except_final_step(self):
        stream = io.StringIO()
        reporter = progress.ProgressReporter(
            "log", stream=stream, min_seconds_between_logs=10.0
        )
        # (time of the update, step in epoch); the epoch has 10 steps.
        timeline = [
            (100.0, 1),
            (101.0, 2),
            (105.0, 3),
            (111.0, 4),
            (112.0, 5),
            (120.0, 6),
            (121.5, 7),
            (122.0, 10),
        ]
        with mock.patch.object(
            progress.time, "monotonic", side_effect=[t for t, _ in timeline]
        ):
            with self.assertLogs(logging.get_absl_logger(), level="INFO") as captured:
                for _, step in timeline:
                    _update(reporter, step)
        messages = [record.getMessage() for record in captured.records]
        # 100 (first), 111 (>= 10 s later), 121.5 (>= 10 s after 111), and
        # the final step of the epoch even though it comes 0.5 s later.
        self.assertLen(messages, 4, msg=messages)
        for message, step in zip(messages, (1, 4, 7, 10)):
            self.assertIn(f"step {step}/10", message)
            self.assertIn("epoch 1/3", message)
            self.assertIn("loss=152.3 kl=4.021", message)
        self.assertIn("(global 10)", messages[-1])
        self.assertEqual(stream.getvalue(), "")

    def test_log_mode_logs_every_final_step(self):
        reporter = progress.ProgressReporter("log", min_seconds_between_logs=1e9)
        with self.assertLogs(logging.get_absl_logger(), level="INFO") as captured:
            for epoch in range(3):
                _update(reporter, 1, steps_per_epoch=2, epoch=epoch)
                _update(reporter, 2, steps_per_epoch=2, epoch=epoch)
        messages = [record.getMessage() for record in captured.records]
        # The very first update, then only the three epoch ends.
        self.assertLen(messages, 4, msg=messages)
        self.assertIn("epoch 1/3 step 1/2", messages[0])
        for epoch, message in enumerate(messages[1:]):
            self.assertIn(f"epoch {epoch + 1}/3 step 2/2", message)

    def test_bar_mode_redraws_one_line_with_carriage_returns(self):
        stream = io.StringIO()
        reporter = progress.ProgressReporter("bar", stream=stream)
        self.assertEqual(reporter.mode, "bar")
        with mock.patch.object(logging, "info") as log_info:
            _update(reporter, 5)
            _update(reporter, 10)
        log_info.assert_not_called()
        text = stream.getvalue()
        self.assertTrue(text.startswith("\r"), msg=repr(text))
        self.assertNotIn("\n", text)
        first, second = text.split("\r")[1:]
        self.assertEqual(
            first,
            "epoch 1/3 [" + "#" * 12 + "-" * 12 + "] 5/10 loss=152.3 kl=4.021 1234 img/s",
        )
        self.assertIn("[" + "#" * 24 + "] 10/10", second)
        reporter.end_line()
        reporter.end_line()  # A second call adds nothing.
        self.assertEqual(stream.getvalue(), text + "\n")

    def test_end_line_without_bar_writes_nothing(self):
        stream = io.StringIO()
        progress.ProgressReporter("bar", stream=stream).end_line()
        self.assertEqual(stream.getvalue(), "")

    @parameterized.named_parameters(
        ("string_io", io.StringIO, "log"),
        ("terminal", _TerminalStream, "bar"),
    )
    def test_auto_picks_bar_only_on_a_terminal(self, stream_class, expected):
        stream = stream_class()
        reporter = progress.ProgressReporter("auto", stream=stream)
        self.assertEqual(reporter.mode, expected)
        with self.assertLogs(logging.get_absl_logger(), level="INFO") as logs:
            _update(reporter, 10)
            logging.info("sentinel")  # assertLogs needs at least one record.
        if expected == "log":
            self.assertEqual(stream.getvalue(), "")
            self.assertLen(logs.records, 2)
        else:
            self.assertTrue(stream.getvalue().startswith("\repoch 1/3"))
            self.assertLen(logs.records, 1)

    def test_auto_with_stream_lacking_isatty_picks_log(self):
        class NoIsatty:
            def write(self, text):
                raise AssertionError(f"unexpected write {text!r}")

        self.assertEqual(progress.ProgressReporter("auto", stream=NoIsatty()).mode, "log")

    def test_none_mode_is_silent(self):
        stream = io.StringIO()
        reporter = progress.ProgressReporter("none", stream=stream)
        with mock.patch.object(logging, "info") as log_info:
            _update(reporter, 3)
            _update(reporter, 10)
            reporter.end_line()
        log_info.assert_not_called()
        self.assertEqual(stream.getvalue(), "")

    def test_unknown_mode_is_rejected_naming_it(self):
        with self.assertRaisesRegex(ValueError, r"'fancy'.*auto.*bar.*log.*none"):
            progress.ProgressReporter("fancy")


if __name__ == "__main__":
    tf.test.main()
