"""Tests for trainers/workdir.py: one workdir holds one run, never a mix."""

import json
import os
from unittest import mock

from absl.testing import parameterized
import tensorflow as tf

from trainers import workdir as workdir_lib

IDENTITY = {
    "data": {"dataset": "mnist", "binarization": "none"},
    "model": {"architecture": "conv", "latent_dim": 2, "encoder_filters": (32, 64)},
    "batch_size": 32,
    "seed": 0,
}


def _snapshot(directory):
    """Path -> (bytes, mtime_ns) for every file under `directory`."""
    contents = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as stream:
                contents[os.path.relpath(path, directory)] = (
                    stream.read(),
                    os.stat(path).st_mtime_ns,
                )
    return contents


class ClaimWorkdirTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        self.workdir = os.path.join(self.create_tempdir().full_path, "run")

    def _run_file(self):
        return os.path.join(self.workdir, workdir_lib.RUN_FILE)

    def test_new_workdir_is_created_and_records_identity(self):
        self.assertFalse(os.path.exists(self.workdir))
        self.assertFalse(workdir_lib.claim_workdir(self.workdir, IDENTITY))
        with open(self._run_file()) as stream:
            recorded = json.load(stream)
        # Stored as JSON: the tuple becomes a list, everything else as given.
        self.assertEqual(recorded, json.loads(json.dumps(IDENTITY)))
        self.assertEqual(recorded["model"]["encoder_filters"], [32, 64])
        self.assertEqual(os.listdir(self.workdir), [workdir_lib.RUN_FILE])

    def test_same_identity_resumes_and_leaves_record_alone(self):
        workdir_lib.claim_workdir(self.workdir, IDENTITY)
        before = _snapshot(self.workdir)
        # A dict built in another order with lists for tuples is the same run.
        same = json.loads(json.dumps(IDENTITY))
        same = dict(reversed(list(same.items())))
        self.assertTrue(workdir_lib.claim_workdir(self.workdir, same))
        self.assertTrue(workdir_lib.claim_workdir(self.workdir, IDENTITY))
        self.assertEqual(_snapshot(self.workdir), before)

    def test_different_identity_is_refused_naming_the_field(self):
        workdir_lib.claim_workdir(self.workdir, IDENTITY)
        os.makedirs(os.path.join(self.workdir, "checkpoints"))
        with open(
            os.path.join(self.workdir, "checkpoints", "ckpt-1.index"), "wb"
        ) as stream:
            stream.write(b"\x00checkpoint bytes")
        with open(os.path.join(self.workdir, "metrics.json"), "w") as stream:
            stream.write('{"epochs": []}\n')
        before = _snapshot(self.workdir)

        other = json.loads(json.dumps(IDENTITY))
        other["model"]["latent_dim"] = 16
        with self.assertRaises(workdir_lib.WorkdirConflictError) as caught:
            workdir_lib.claim_workdir(self.workdir, other)
        message = str(caught.exception)
        self.assertIn("model.latent_dim", message)
        self.assertIn("workdir has 2", message)
        self.assertIn("this command has 16", message)
        self.assertIn(self.workdir, message)
        # Only the differing field is named.
        self.assertNotIn("batch_size", message)
        self.assertNotIn("model.architecture", message)
        self.assertIsInstance(caught.exception, ValueError)
        self.assertEqual(_snapshot(self.workdir), before)

    def test_added_and_removed_fields_are_differences(self):
        workdir_lib.claim_workdir(self.workdir, IDENTITY)
        before = _snapshot(self.workdir)
        extra = dict(IDENTITY, optimizer="adam")
        with self.assertRaisesRegex(
            workdir_lib.WorkdirConflictError, r"optimizer: workdir has '\(unset\)'"
        ):
            workdir_lib.claim_workdir(self.workdir, extra)
        fewer = {key: value for key, value in IDENTITY.items() if key != "seed"}
        with self.assertRaisesRegex(
            workdir_lib.WorkdirConflictError,
            r"seed: workdir has 0, this command has "
            r"'\(unset\)'",
        ):
            workdir_lib.claim_workdir(self.workdir, fewer)
        self.assertEqual(_snapshot(self.workdir), before)

    def test_checkpoints_without_run_record_are_refused(self):
        checkpoint_dir = os.path.join(self.workdir, "checkpoints")
        os.makedirs(checkpoint_dir)
        with open(os.path.join(checkpoint_dir, "checkpoint"), "w") as stream:
            stream.write('model_checkpoint_path: "ckpt-3"\n')
        before = _snapshot(self.workdir)
        with self.assertRaisesRegex(
            workdir_lib.WorkdirConflictError, r"has checkpoints but no run\.json"
        ):
            workdir_lib.claim_workdir(self.workdir, IDENTITY)
        self.assertFalse(os.path.exists(self._run_file()))
        self.assertEqual(_snapshot(self.workdir), before)

    def test_empty_checkpoint_directory_is_claimed(self):
        os.makedirs(os.path.join(self.workdir, "checkpoints"))
        self.assertFalse(workdir_lib.claim_workdir(self.workdir, IDENTITY))
        self.assertTrue(os.path.exists(self._run_file()))

    @parameterized.named_parameters(
        ("truncated_json", b'{"model": {"latent_dim": 2,'),
        ("empty_file", b""),
        ("not_utf8", b"\xff\xfe\x00garbage"),
        ("json_list", b"[1, 2]\n"),
        ("json_null", b"null\n"),
    )
    def test_unreadable_run_record_is_refused_and_kept(self, contents):
        os.makedirs(self.workdir)
        with open(self._run_file(), "wb") as stream:
            stream.write(contents)
        before = _snapshot(self.workdir)
        with self.assertRaises(workdir_lib.WorkdirConflictError) as caught:
            workdir_lib.claim_workdir(self.workdir, IDENTITY)
        message = str(caught.exception)
        self.assertIn(self._run_file(), message)
        self.assertIn("cannot be read", message)
        self.assertTrue(caught.exception.__suppress_context__)
        self.assertEqual(_snapshot(self.workdir), before)


class CheckWorkdirUsableTest(tf.test.TestCase):
    def test_a_file_is_refused(self):
        path = os.path.join(self.create_tempdir().full_path, "file")
        open(path, "w").close()
        with self.assertRaisesRegex(
            workdir_lib.WorkdirUnusableError, f"{path} is a file"
        ):
            workdir_lib.check_workdir_usable(path)

    def test_a_file_as_parent_is_refused(self):
        parent = os.path.join(self.create_tempdir().full_path, "file")
        open(parent, "w").close()
        with self.assertRaisesRegex(
            workdir_lib.WorkdirUnusableError, f"{parent} is a file"
        ):
            workdir_lib.check_workdir_usable(os.path.join(parent, "deeper", "run"))

    def test_new_and_existing_writable_workdirs_pass(self):
        root = self.create_tempdir().full_path
        workdir_lib.check_workdir_usable(os.path.join(root, "new", "run"))
        workdir_lib.check_workdir_usable(root)

    # Tests run as root, for whom permission bits do not stop writes, so
    # os.access is made to answer as it does for another user (or on a
    # read-only filesystem) for one path.
    def _refusing_access_to(self, refused):
        real_access = os.access
        return mock.patch.object(
            workdir_lib.os,
            "access",
            lambda path, mode: (
                False if os.path.abspath(path) == refused else real_access(path, mode)
            ),
        )

    def test_unwritable_parent_of_a_new_workdir_is_refused(self):
        root = self.create_tempdir().full_path
        with self._refusing_access_to(root):
            with self.assertRaisesRegex(
                workdir_lib.WorkdirUnusableError, f"may not write in {root}"
            ):
                workdir_lib.check_workdir_usable(os.path.join(root, "run"))

    def test_unwritable_existing_run_is_refused(self):
        root = self.create_tempdir().full_path
        log = os.path.join(root, "launches.log")
        open(log, "w").close()
        with self._refusing_access_to(root):
            with self.assertRaisesRegex(
                workdir_lib.WorkdirUnusableError, f"may not write {root}"
            ):
                workdir_lib.check_workdir_usable(root)
        with self._refusing_access_to(log):
            with self.assertRaisesRegex(
                workdir_lib.WorkdirUnusableError, f"may not write {log}"
            ):
                workdir_lib.check_workdir_usable(root)


if __name__ == "__main__":
    tf.test.main()


class UpgradeRecordedTest(tf.test.TestCase):
    def test_older_record_resumes_after_upgrade(self):
        workdir = self.get_temp_dir()
        workdir_lib.claim_workdir(workdir, {"model": {"latent_dim": 2}})
        newer = {"model": {"latent_dim": 2, "num_classes": 0}}
        with self.assertRaises(workdir_lib.WorkdirConflictError):
            workdir_lib.claim_workdir(workdir, newer)
        add_default = lambda record: {"model": {"num_classes": 0, **record["model"]}}
        self.assertTrue(
            workdir_lib.claim_workdir(workdir, newer, upgrade_recorded=add_default)
        )
        # The record on disk is left as it was.
        with open(os.path.join(workdir, "run.json")) as stream:
            self.assertEqual(json.load(stream), {"model": {"latent_dim": 2}})
