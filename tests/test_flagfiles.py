"""Tests for launch/flagfiles.py."""

import os

from absl import flags
import tensorflow as tf

from launch import flagfiles


class ResolvedIncludesTest(tf.test.TestCase):
    def test_include_is_read_relative_to_the_including_file(self):
        root = self.create_tempdir().full_path
        presets = os.path.join(root, "presets")
        os.makedirs(os.path.join(presets, "more"))
        with open(os.path.join(presets, "more", "base.flags"), "w") as stream:
            stream.write("# the base\n--size=3\n--name=base\n")
        with open(os.path.join(presets, "child.flags"), "w") as stream:
            stream.write("--flagfile=more/base.flags\n--name=child\n")
        with open(os.path.join(presets, "plain.flags"), "w") as stream:
            stream.write("--size=9\n")
        elsewhere = self.create_tempdir().full_path
        flag_values = flags.FlagValues()
        flags.DEFINE_integer("size", 0, "", flag_values=flag_values)
        flags.DEFINE_string("name", "", "", flag_values=flag_values)
        previous = os.getcwd()
        os.chdir(elsewhere)  # Neither file is reachable from here by absl.
        try:
            argv = [
                "program",
                f"--flagfile={presets}/child.flags",
                "--flagfile",
                f"{presets}/plain.flags",
                "--name=last",
            ]
            with flagfiles.resolved_includes(argv) as resolved:
                # A file without includes is passed as it is.
                self.assertEqual(resolved[2:], argv[2:])
                flag_values(resolved)
                copies = os.path.dirname(resolved[1][len("--flagfile=") :])
            self.assertFalse(os.path.exists(copies))  # Cleaned up.
        finally:
            os.chdir(previous)
        self.assertEqual(flag_values.size, 9)
        self.assertEqual(flag_values.name, "last")

    def test_include_relative_to_the_current_directory_still_works(self):
        root = self.create_tempdir().full_path
        with open(os.path.join(root, "base.flags"), "w") as stream:
            stream.write("--size=4\n")
        nested = os.path.join(root, "sub")
        os.makedirs(nested)
        with open(os.path.join(nested, "child.flags"), "w") as stream:
            stream.write("--flagfile=base.flags\n")
        previous = os.getcwd()
        os.chdir(root)
        try:
            self.assertEqual(
                flagfiles.resolve_include(
                    "base.flags", os.path.join(nested, "child.flags")
                ),
                os.path.join(root, "base.flags"),
            )
        finally:
            os.chdir(previous)


if __name__ == "__main__":
    tf.test.main()
