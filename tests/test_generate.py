"""End-to-end tests of conditional training and launch/generate.py."""

import json
import os

import imageio.v2 as imageio
import numpy as np
import tensorflow as tf

from tests import testing_utils

_TINY_CONDITIONAL_FLAGS = [
    "--architecture=mlp",
    "--hidden_units=8",
    "--latent_dim=2",
    "--conditional",
    "--hidden_batch_norm",
    "--hidden_dropout_rate=0.2",
    "--batch_size=32",
    "--eval_batch_size=64",
    "--binarization=none",
    "--progress=log",
    "--manifold_grid_size=3",
]


class GenerateProgramTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = testing_utils.private_temp_dir()
        cls.data_dir, cls.workdir = testing_utils.train_on_fake_mnist(
            cls.root, "cvae", ["--epochs=1", *_TINY_CONDITIONAL_FLAGS], num_test=40
        )
        cls.seven = os.path.join(cls.root, "seven.png")
        drawing = np.full([56, 56], 255, np.uint8)  # A dark 7 on white.
        drawing[10:14, 12:44] = 0
        for row in range(14, 48):
            column = 44 - (row - 14) // 2
            drawing[row, column - 2 : column + 2] = 0
        imageio.imwrite(cls.seven, drawing)

    def assert_clear_error(self, result, *fragments):
        testing_utils.assert_clear_error(self, result, *fragments)

    def test_conditional_run_writes_per_label_pictures(self):
        images = os.listdir(os.path.join(self.workdir, "images"))
        for name in (
            "style_transfer_epoch_001.png",
            "manifold_label_0_epoch_001.png",
            "manifold_label_9.gif",
            "latent_scatter_label_3_epoch_001.png",
            "samples_epoch_001.png",
        ):
            self.assertIn(name, images)
        with open(os.path.join(self.workdir, "run.json")) as stream:
            model = json.load(stream)["model"]
        self.assertEqual(model["num_classes"], 10)

    def test_samples_and_style_transfer_from_checkpoint_and_export(self):
        for source in ("checkpoint", "saved_model"):
            output_dir = os.path.join(self.root, f"generated_{source}")
            result = testing_utils.run_module(
                "launch.generate",
                [
                    f"--workdir={self.workdir}",
                    f"--source={source}",
                    "--labels=1,2,3",
                    "--rows=2",
                    f"--images={self.seven}",
                    "--image_labels=7",
                    "--resize",
                    f"--output_dir={output_dir}",
                ],
            )
            self.assertEqual(result.returncode, 0, result.stderr[-3000:])
            samples = imageio.imread(os.path.join(output_dir, "samples.png"))
            self.assertEqual(samples.shape[:2], (2 + 2 * 30, 2 + 3 * 30))
            transfer = imageio.imread(os.path.join(output_dir, "style_transfer.png"))
            # One row: the drawing, then the ten digits.
            self.assertEqual(transfer.shape[:2], (32, 2 + 11 * 30))
            # The drawing was inverted to white on black: its border is dark.
            self.assertLess(transfer[3:29, 3].mean(), 60)

    def test_label_out_of_range(self):
        result = testing_utils.run_module(
            "launch.generate", [f"--workdir={self.workdir}", "--labels=3,10"]
        )
        self.assert_clear_error(result, "label 10 is out of range", "0 to 9")

    def test_negative_label_is_a_flag_error(self):
        result = testing_utils.run_module(
            "launch.generate", [f"--workdir={self.workdir}", "--labels=-1"]
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("--labels", result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def test_wrong_image_size_without_resize(self):
        result = testing_utils.run_module(
            "launch.generate",
            [f"--workdir={self.workdir}", f"--images={self.seven}", "--image_labels=7"],
        )
        self.assert_clear_error(result, "seven.png is 56x56", "expects 28x28", "--resize")

    def test_file_that_is_not_an_image(self):
        path = os.path.join(self.root, "readme.png")
        with open(path, "w") as stream:
            stream.write("hello")
        result = testing_utils.run_module(
            "launch.generate",
            [f"--workdir={self.workdir}", f"--images={path}", "--image_labels=7"],
        )
        self.assert_clear_error(result, "readme.png is not an image")

    def test_image_labels_must_match_images(self):
        result = testing_utils.run_module(
            "launch.generate", [f"--workdir={self.workdir}", f"--images={self.seven}"]
        )
        self.assert_clear_error(result, "--image_labels has 0 entries for 1")


if __name__ == "__main__":
    tf.test.main()
