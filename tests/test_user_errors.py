"""Tests for launch/user_errors.py: how programs refuse what they were asked."""

import contextlib
import io

from absl import app
from absl.testing import absltest

from launch import user_errors


class RejectPositionalArgumentsTest(absltest.TestCase):
    def test_flags_only_pass(self):
        user_errors.reject_positional_arguments(["vae-train"])

    def test_stray_words_are_a_usage_error_that_names_them(self):
        with self.assertRaisesRegex(app.UsageError, "Unexpected arguments: stray words"):
            user_errors.reject_positional_arguments(["vae-train", "stray", "words"])


class ExitOnTest(absltest.TestCase):
    def test_a_listed_error_is_one_paragraph_and_exit_status_2(self):
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            with self.assertRaises(SystemExit) as raised:
                with user_errors.exit_on((ValueError,)):
                    raise ValueError("--epochs must be positive, got -1.")
        self.assertEqual(raised.exception.code, 2)
        self.assertIn("error: --epochs must be positive, got -1.", stderr.getvalue())
        self.assertNotIn("Traceback", stderr.getvalue())

    def test_other_errors_keep_their_traceback(self):
        with self.assertRaises(KeyError):
            with user_errors.exit_on((ValueError,)):
                raise KeyError("a bug")

    def test_no_error_no_exit(self):
        with user_errors.exit_on((ValueError,)):
            value = 1
        self.assertEqual(value, 1)


if __name__ == "__main__":
    absltest.main()
