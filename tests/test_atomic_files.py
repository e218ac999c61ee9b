import json
import os

from absl.testing import absltest
import numpy as np

from vae import atomic_files


class AtomicFilesTest(absltest.TestCase):
    def test_json_is_strict_and_sorted(self):
        path = os.path.join(self.create_tempdir().full_path, "new", "m.json")
        atomic_files.write_json(
            path,
            {"b": float("nan"), "a": [1.0, float("inf")], "c": {"d": (float("-inf"), 2)}},
        )
        with open(path) as stream:
            text = stream.read()
        self.assertEqual(
            json.loads(text), {"a": [1.0, None], "b": None, "c": {"d": [None, 2]}}
        )
        self.assertLess(text.index('"a"'), text.index('"b"'))
        self.assertNotIn("NaN", text)

    def test_a_failed_write_keeps_the_previous_file_and_leaves_nothing(self):
        directory = self.create_tempdir().full_path
        path = os.path.join(directory, "results.json")
        atomic_files.write_json(path, {"version": 1})

        def fail(temporary_path):
            with open(temporary_path, "w") as stream:
                stream.write('{"version": ')
            raise OSError("disk full")

        with self.assertRaisesRegex(OSError, "disk full"):
            atomic_files.write_atomically(path, fail)
        with open(path) as stream:
            self.assertEqual(json.load(stream), {"version": 1})
        self.assertEqual(os.listdir(directory), ["results.json"])

    def test_npz_round_trip_and_readable_by_others(self):
        directory = self.create_tempdir().full_path
        path = os.path.join(directory, "cache.npz")
        old_umask = os.umask(0o022)
        try:
            atomic_files.write_npz(path, {"x": np.arange(3), "key": np.array("k")})
        finally:
            os.umask(old_umask)
        with np.load(path) as saved:
            np.testing.assert_array_equal(saved["x"], [0, 1, 2])
            self.assertEqual(str(saved["key"]), "k")
        # Results are for other people too: not the 0600 of tempfile.mkstemp.
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
        self.assertEqual(os.listdir(directory), ["cache.npz"])

    def test_the_writer_sees_the_target_extension(self):
        path = os.path.join(self.create_tempdir().full_path, "picture.png")
        seen = []
        atomic_files.write_atomically(
            path, lambda temporary: (seen.append(temporary), open(temporary, "w").close())
        )
        self.assertTrue(seen[0].endswith(".png"))
        self.assertNotEqual(seen[0], path)
        self.assertTrue(os.path.exists(path))


if __name__ == "__main__":
    absltest.main()
