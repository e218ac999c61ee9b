"""Tests for vae/figures.py: scatter plots, training curves and toy2d plots."""

from absl.testing import parameterized
from matplotlib import figure as figure_lib
import numpy as np
import tensorflow as tf

from vae import figures
from vae import toy2d


def _legend_texts(axes):
    return [text.get_text() for text in axes.get_legend().get_texts()]


def _lines_by_label(axes):
    return {line.get_label(): line for line in axes.get_lines()}


def _assert_not_blank(test, picture):
    """A rendered figure has more than a background: many distinct colours."""
    test.assertEqual(picture.dtype, np.uint8)
    test.assertGreater(len(np.unique(picture.reshape(-1, 3), axis=0)), 50)
    test.assertGreater(np.mean(np.any(picture < 200, axis=-1)), 0.01)


def _elbo_record(epoch, *, with_test=True):
    """A metrics.json epoch record of the ELBO trainer, values made up."""
    record = {
        "epoch": epoch,
        "global_step": 10 * epoch,
        "images_per_second": 100.0,
        "train": {"elbo": -200.0 + epoch, "reconstruction": 180.0 - epoch, "kl": 20.0},
    }
    if with_test:
        record["test"] = {
            "elbo": -205.0 + epoch,
            "reconstruction": 185.0 - epoch,
            "kl": 20.0,
        }
    return record


class RenderTest(tf.test.TestCase):
    def test_size_is_the_figure_size_in_pixels(self):
        figure = figure_lib.Figure(figsize=(3.0, 2.0), dpi=50)
        figure.add_subplot().plot([0, 1], [1, 0])
        picture = figures.render(figure)
        self.assertEqual(picture.shape, (100, 150, 3))
        self.assertEqual(picture.dtype, np.uint8)
        # The line is dark on the white background.
        self.assertAllEqual(picture[0, 0], [255, 255, 255])
        self.assertLess(int(picture.min()), 128)


class LatentScatterTest(tf.test.TestCase, parameterized.TestCase):
    def _clusters(self, num_classes=3, per_class=20):
        rng = np.random.default_rng(0)
        labels = np.repeat(np.arange(num_classes), per_class)
        points = labels[:, None] + rng.normal(0.0, 0.1, (labels.size, 2))
        return points, labels

    def test_axes_title_and_a_legend_of_class_names(self):
        points, labels = self._clusters()
        figure = figures.latent_scatter_figure(
            points, labels, 3, class_names=("cat", "dog", "owl"), title="Posterior means"
        )
        (axes,) = figure.axes
        self.assertEqual(axes.get_xlabel(), "latent dimension 1")
        self.assertEqual(axes.get_ylabel(), "latent dimension 2")
        self.assertEqual(axes.get_title(), "Posterior means")
        self.assertEqual(_legend_texts(axes), ["cat", "dog", "owl"])
        # Tick labels are numbers a reader can find the points by.
        figures.render(figure)
        ticks = [label.get_text() for label in axes.get_xticklabels()]
        self.assertNotEmpty([text for text in ticks if text])

    def test_legend_lists_the_classes_present_by_number_without_names(self):
        points, labels = self._clusters(num_classes=3)
        chosen = labels != 1
        figure = figures.latent_scatter_figure(points[chosen], labels[chosen], 3)
        self.assertEqual(_legend_texts(figure.axes[0]), ["0", "2"])

    def test_points_keep_their_order_and_class_colour(self):
        points = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]])
        labels = np.array([2, 0, 2])
        figure = figures.latent_scatter_figure(points, labels, 3)
        (collection,) = figure.axes[0].collections
        self.assertAllClose(collection.get_offsets(), points)
        self.assertAllClose(collection.get_facecolors(), figures.class_colours(3)[labels])

    def test_non_finite_points_are_left_out(self):
        points = np.array([[0.0, 0.0], [np.nan, 1.0], [1.0, np.inf]])
        figure = figures.latent_scatter_figure(points, np.array([0, 1, 1]), 2)
        self.assertLen(figure.axes[0].collections[0].get_offsets(), 1)
        self.assertEqual(_legend_texts(figure.axes[0]), ["0"])

    def test_more_classes_than_a_palette_get_distinct_colours(self):
        colours = figures.class_colours(26)
        self.assertLen(np.unique(colours, axis=0), 26)

    def test_rendered_picture(self):
        points, labels = self._clusters()
        picture = figures.latent_scatter(points, labels, 3, width=320, height=240)
        self.assertEqual(picture.shape, (240, 320, 3))
        _assert_not_blank(self, picture)
        # Class 0's colour is drawn (as the dots and the legend's marker).
        blue = np.round(figures.class_colours(3)[0, :3] * 255)
        self.assertTrue(np.any(np.all(np.abs(picture - blue) <= 2, axis=-1)))

    @parameterized.named_parameters(
        ("label_too_large", np.zeros((2, 2)), np.array([0, 3]), 3, ()),
        ("negative_label", np.zeros((2, 2)), np.array([0, -1]), 3, ()),
        ("fractional_label", np.zeros((2, 2)), np.array([0.0, 0.5]), 3, ()),
        ("label_count", np.zeros((2, 2)), np.array([0]), 3, ()),
        ("three_d_points", np.zeros((2, 3)), np.array([0, 1]), 3, ()),
        ("name_count", np.zeros((2, 2)), np.array([0, 1]), 3, ("a", "b")),
    )
    def test_bad_arguments_raise_value_error(
        self, points, labels, num_classes, class_names
    ):
        with self.assertRaises(ValueError):
            figures.latent_scatter_figure(
                points, labels, num_classes, class_names=class_names
            )

    def test_too_small_a_picture_is_refused(self):
        with self.assertRaisesRegex(ValueError, "width=50"):
            figures.latent_scatter_figure(np.zeros((1, 2)), [0], 1, width=50)


class TrainingCurvesTest(tf.test.TestCase):
    def test_one_epoch_is_one_marked_point_per_split(self):
        figure = figures.training_curves_figure([_elbo_record(1)], title="Run A")
        self.assertEqual(figure.get_suptitle(), "Run A")
        visible = [axes for axes in figure.axes if axes.get_visible()]
        self.assertEqual(
            [axes.get_ylabel() for axes in visible], ["elbo", "reconstruction", "kl"]
        )
        for axes in visible:
            self.assertEqual(axes.get_xlabel(), "epoch")
            self.assertNotEmpty(axes.get_title())
            self.assertEqual(_legend_texts(axes), ["train", "test"])
            for line in axes.get_lines():
                self.assertAllEqual(line.get_xdata(), [1])
                self.assertNotEqual(line.get_marker(), "None")
        # Epochs are whole numbers on the axis too.
        figures.render(figure)
        low, high = visible[0].get_xlim()
        ticks = [tick for tick in visible[0].get_xticks() if low <= tick <= high]
        self.assertEqual(ticks, [1.0])
        lines = _lines_by_label(visible[0])
        self.assertAllClose(lines["train"].get_ydata(), [-199.0])
        self.assertAllClose(lines["test"].get_ydata(), [-204.0])

    def test_several_epochs_in_order(self):
        history = [_elbo_record(epoch) for epoch in (3, 1, 2)]
        figure = figures.training_curves_figure(history)
        lines = _lines_by_label(figure.axes[1])  # reconstruction
        self.assertAllEqual(lines["train"].get_xdata(), [1, 2, 3])
        self.assertAllClose(lines["train"].get_ydata(), [179.0, 178.0, 177.0])
        self.assertAllClose(lines["test"].get_ydata(), [184.0, 183.0, 182.0])
        # Each split has one colour in every panel.
        for axes in figure.axes[:3]:
            self.assertEqual(
                _lines_by_label(axes)["test"].get_color(), lines["test"].get_color()
            )
        picture = figures.render(figure)
        self.assertEqual(picture.ndim, 3)
        _assert_not_blank(self, picture)

    def test_other_trainers_keys_get_panels_and_lines_where_measured(self):
        # A VAE-GAN's epoch: losses of its players in training only, the ELBO
        # terms also on the test set; the evaluation suite's numbers and
        # strings are not curves.
        history = [
            {
                "epoch": epoch,
                "train": {"prior": 3.0, "dis_llike": 5.0, "gan": 1.4, "schedule": "on"},
                "test": {"elbo": -90.0, "reconstruction": 80.0, "kl": 10.0, "prior": 3.1},
                "evaluation": {"frechet_distance": 9.0},
            }
            for epoch in (1, 2)
        ]
        self.assertEqual(
            figures.curve_quantities(history),
            ["elbo", "reconstruction", "kl", "dis_llike", "gan", "prior"],
        )
        figure = figures.training_curves_figure(history)
        panels = {axes.get_ylabel(): axes for axes in figure.axes if axes.get_visible()}
        self.assertLen(panels, 6)
        self.assertEqual(_legend_texts(panels["gan"]), ["train"])
        self.assertEqual(_legend_texts(panels["elbo"]), ["test"])
        self.assertEqual(_legend_texts(panels["prior"]), ["train", "test"])
        # Six panels in rows of three: no spare axes shown.
        self.assertLen(figure.axes, 6)

    def test_a_null_value_is_a_gap_and_an_all_null_metric_no_panel(self):
        history = [_elbo_record(epoch) for epoch in (1, 2, 3)]
        history[1]["train"]["elbo"] = None
        for record in history:
            record["train"]["diverged"] = None
        self.assertNotIn("diverged", figures.curve_quantities(history))
        figure = figures.training_curves_figure(history)
        values = _lines_by_label(figure.axes[0])["train"].get_ydata()
        self.assertTrue(np.isnan(values[1]))
        self.assertAllClose(values[[0, 2]], [-199.0, -197.0])

    def test_no_numbers_to_plot_is_an_error(self):
        self.assertEqual(figures.curve_quantities([{"epoch": 1}]), [])
        with self.assertRaisesRegex(ValueError, "numeric metric"):
            figures.training_curves_figure([{"epoch": 1, "train": {}}])


class Toy2dFigureTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        self.points, self.labels = toy2d.draw_points(np.random.default_rng(0))
        self.points, self.labels = self.points[:200], self.labels[:200]

    def test_one_panel_per_model_with_the_fixed_view_labels_and_legend(self):
        figure = figures.toy2d_figure(
            self.points,
            self.labels,
            {"unconditional": self.points * 0.5, "conditional": self.points},
            title="Toy",
        )
        self.assertEqual(figure.get_suptitle(), "Toy")
        self.assertEqual(
            [axes.get_title() for axes in figure.axes], ["unconditional", "conditional"]
        )
        for axes in figure.axes:
            self.assertEqual(axes.get_xlim(), toy2d.VIEW_X)
            self.assertEqual(axes.get_ylim(), toy2d.VIEW_Y)
            self.assertEqual(axes.get_xlabel(), "x")
            self.assertEqual(axes.get_ylabel(), "y")
            # In drawing order, bottom layer first.
            self.assertEqual(
                _legend_texts(axes),
                [
                    "data: arc (label 0)",
                    "data: circle (label 1)",
                    "true curves",
                    "reconstructions",
                ],
            )
        # The reconstructions drawn are each model's own.
        reconstructions = figure.axes[0].collections[-1].get_offsets()
        self.assertAllClose(reconstructions, self.points * 0.5)

    def test_rendered_pictures_line_up(self):
        one = figures.toy2d_picture(
            self.points, self.labels, {"a": self.points}, panel_width=300, height=200
        )
        two = figures.toy2d_picture(
            self.points,
            self.labels,
            {"a": self.points, "b": self.points},
            panel_width=300,
            height=200,
        )
        self.assertEqual(one.shape, (200, 300, 3))
        self.assertEqual(two.shape, (200, 600, 3))
        _assert_not_blank(self, two)

    def test_bad_inputs(self):
        good = np.zeros((3, 2), np.float32)
        with self.assertRaisesRegex(ValueError, "reconstructions\\['a'\\]"):
            figures.toy2d_figure(good, np.zeros(3, int), {"a": np.zeros((3, 3))})
        with self.assertRaisesRegex(ValueError, "labels"):
            figures.toy2d_figure(good, np.array([0, 1, 2]), {"a": good})
        with self.assertRaisesRegex(ValueError, "empty"):
            figures.toy2d_figure(good, np.zeros(3, int), {})


if __name__ == "__main__":
    tf.test.main()
