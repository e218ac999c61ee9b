"""Tests for vae/dsprites.py and the "dsprites" dataset of vae/datasets.py."""

import os

import numpy as np
import pytest

from vae import datasets
from vae import dsprites


def _bbox(image):
    rows = np.flatnonzero(image.any(axis=1))
    cols = np.flatnonzero(image.any(axis=0))
    return rows[0], rows[-1], cols[0], cols[-1]


def _centroid(image):
    rows, cols = np.nonzero(image)
    # Pixel centres, in the coordinates the sprite centre is given in.
    return rows.mean() + 0.5, cols.mean() + 0.5


@pytest.fixture
def small_grid(monkeypatch):
    """Shrinks the factor grid to 3 shapes x 1 scale x 2 orientations x 32 x 32
    (6144 images) so that rendering everything takes about a second."""
    sizes = (3, 1, 2, 32, 32)
    monkeypatch.setattr(dsprites, "FACTOR_SIZES", sizes)
    monkeypatch.setattr(dsprites, "NUM_IMAGES", int(np.prod(sizes)))
    return sizes


def test_factor_grid_size_and_order():
    assert dsprites.NUM_IMAGES == 737280
    grid = dsprites.factor_grid()
    assert grid.shape == (737280, 5)
    # Position y varies fastest, shape slowest, as in the published archive.
    np.testing.assert_array_equal(grid[0], [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(grid[1], [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(grid[32], [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(grid[1024], [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(grid[40 * 1024], [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(grid[-1], [2, 5, 39, 31, 31])
    values = dsprites.factor_values_of(grid[[0, -1]])
    np.testing.assert_allclose(
        values, [[1, 0.5, 0, 0, 0], [3, 1, 2 * np.pi, 1, 1]], rtol=1e-6
    )


def test_small_square_lies_where_hand_computed():
    # Scale 0.5: half-side 0.75 units * 5 px = 3.75 px around the centre at
    # column 11 + 42 * 1 = 53 and row 11 + 42 * 0 = 11: pixel centres in
    # [49.25, 56.75] x [7.25, 14.75], i.e. columns 49-56 and rows 7-14.
    image = dsprites.render_triple(0, 0, 0)[31, 0]
    expected = np.zeros((64, 64), bool)
    expected[7:15, 49:57] = True
    np.testing.assert_array_equal(image, expected)


def test_ellipse_is_horizontal_at_orientation_zero_and_turns():
    # Scale 1, centre column 11, row 53: semi-axes 10 px across, 5 px down.
    flat = dsprites.render_triple(1, 5, 0)[0, 31]
    assert _bbox(flat) == (48, 57, 1, 20)
    # Orientation index 10 is 2 pi * 10 / 39 = 92.3 degrees: nearly upright.
    upright = dsprites.render_triple(1, 5, 10)[0, 31]
    top, bottom, left, right = _bbox(upright)
    assert bottom - top + 1 >= 19 and right - left + 1 <= 12
    assert abs(flat.sum() - upright.sum()) < 0.05 * flat.sum()
    assert flat.sum() == pytest.approx(np.pi * 10 * 5, rel=0.05)


def test_heart_points_down_then_turns_counter_clockwise():
    centre = 11 + 42 * 15 / 31
    heart = dsprites.render_triple(2, 5, 0)[15, 15]
    row, col = _centroid(heart)
    # The lobes (top) outweigh the point (bottom); the shape is mirror-symmetric.
    assert row < centre - 0.5
    assert col == pytest.approx(centre, abs=0.5)
    # A quarter turn counter-clockwise on screen moves the point to the right,
    # so the mass moves left of the centre.
    turned = dsprites.render_triple(2, 5, 10)[15, 15]
    row, col = _centroid(turned)
    assert col < centre - 0.5
    assert row == pytest.approx(centre, abs=0.6)


@pytest.mark.parametrize("x,y", [(0, 0), (31, 0), (7, 20), (31, 31)])
def test_positions_and_scales(x, y):
    sprites = dsprites.render_triple(0, 5, 0)
    row, col = _centroid(sprites[x, y])
    assert col == pytest.approx(11 + 42 * x / 31, abs=0.5)
    assert row == pytest.approx(11 + 42 * y / 31, abs=0.5)
    # The square is 15 px * scale wide, give or take the one pixel that
    # sampling at pixel centres can add or drop on each axis.
    for scale_index, scale in enumerate(dsprites.FACTOR_VALUES[1]):
        area = dsprites.render_triple(0, scale_index, 0)[x, y].sum()
        assert (15 * scale - 1) ** 2 <= area <= (15 * scale + 1) ** 2


def test_rendering_is_deterministic_and_in_grid_order(small_grid, tmp_path):
    packed = dsprites.render_all()
    assert packed.shape == (6144, 64, 8)
    np.testing.assert_array_equal(packed, dsprites.render_all())
    grid = dsprites.factor_grid()
    for index in (0, 1, 33, 1024 + 5, 3000, 6143):
        shape, scale, orientation, x, y = grid[index]
        expected = dsprites.render_triple(shape, scale, orientation)[x, y]
        np.testing.assert_array_equal(
            np.unpackbits(packed[index], axis=-1).astype(bool), expected
        )


def test_rendered_images_are_cached(small_grid, tmp_path, monkeypatch):
    first = dsprites.rendered(str(tmp_path))
    path = dsprites.cache_path(str(tmp_path))
    assert os.path.exists(path) and "cached" not in first.source
    calls = []
    monkeypatch.setattr(dsprites, "render_all", lambda: calls.append(1) or np.zeros(0))
    second = dsprites.rendered(str(tmp_path))
    assert not calls and "cached" in second.source
    np.testing.assert_array_equal(first.packed, second.packed)
    # Another procedure (here: another grid) has another key and entry.
    monkeypatch.setattr(dsprites, "FACTOR_SIZES", (3, 1, 1, 32, 32))
    assert dsprites.cache_path(str(tmp_path)) != path


def test_load_dataset_renders_with_factors_and_subset(small_grid, tmp_path):
    arrays = datasets.load_dataset(
        "dsprites", None, cache_dir=str(tmp_path), train_subset=500, validation_size=100
    )
    assert arrays.example_shape == (64, 64, 1)
    assert arrays.num_classes == 3
    assert arrays.factor_names == dsprites.FACTOR_NAMES
    assert arrays.test.num_examples == 614
    assert arrays.train.num_examples == 400
    assert arrays.validation.num_examples == 100
    grid = dsprites.factor_grid()
    for split in (arrays.train, arrays.validation, arrays.test):
        assert split.images.dtype == np.uint8
        assert set(np.unique(split.images)) <= {0, 255}
        np.testing.assert_array_equal(split.labels, split.factors[:, 0])
        np.testing.assert_allclose(
            split.factor_values, dsprites.factor_values_of(split.factors)
        )
        # Every image is the rendering of its factors.
        for image, factors in zip(split.images[:3], split.factors[:3]):
            shape, scale, orientation, x, y = factors
            np.testing.assert_array_equal(
                image[..., 0] > 0, dsprites.render_triple(shape, scale, orientation)[x, y]
            )
    train_rows = {tuple(f) for f in arrays.train.factors}
    test_rows = {tuple(f) for f in arrays.test.factors}
    assert not train_rows & test_rows
    assert {tuple(f) for f in grid[dsprites.split_indices(6144)[1]]} == test_rows
    with pytest.raises(ValueError, match="train_subset=6000"):
        datasets.load_dataset(
            "dsprites", None, cache_dir=str(tmp_path), train_subset=6000
        )
    with pytest.raises(ValueError, match="train_subset"):
        datasets.load_dataset("toy2d", train_subset=5)


def test_split_indices_fixed_and_disjoint():
    train, test = dsprites.split_indices(737280)
    assert len(test) == 10000 and len(train) == 727280
    assert not np.intersect1d(train, test).size
    again_train, again_test = dsprites.split_indices(737280, train_subset=1000)
    np.testing.assert_array_equal(test, again_test)
    assert len(again_train) == 1000 and np.isin(again_train, train).all()


def _write_fake_archive(path, num_images=40):
    rng = np.random.default_rng(0)
    classes = np.zeros((num_images, 6), np.int64)
    for k, size in enumerate(dsprites.FACTOR_SIZES):
        classes[:, k + 1] = rng.integers(0, size, num_images)
    values = np.concatenate(
        [
            np.ones((num_images, 1)),
            dsprites.factor_values_of(classes[:, 1:]).astype(np.float64),
        ],
        axis=1,
    )
    imgs = rng.integers(0, 2, (num_images, 64, 64)).astype(np.uint8)
    np.savez_compressed(path, imgs=imgs, latents_values=values, latents_classes=classes)
    return imgs, classes, values


def test_reads_the_archive_when_data_dir_holds_it(tmp_path):
    imgs, classes, values = _write_fake_archive(tmp_path / dsprites.ARCHIVE_NAME)
    arrays = datasets.load_dataset("dsprites", str(tmp_path))
    assert "archive" in arrays.source
    assert arrays.test.num_examples == 4 and arrays.train.num_examples == 36
    train, test = dsprites.split_indices(40)
    for split, indices in ((arrays.train, train), (arrays.test, test)):
        np.testing.assert_array_equal(split.images[..., 0], imgs[indices] * 255)
        np.testing.assert_array_equal(split.factors, classes[indices, 1:])
        np.testing.assert_allclose(split.factor_values, values[indices, 1:], rtol=1e-6)
        np.testing.assert_array_equal(split.labels, classes[indices, 1])


def test_a_broken_archive_is_a_data_error(tmp_path):
    path = tmp_path / dsprites.ARCHIVE_NAME
    np.savez(path, imgs=np.zeros((3, 64, 64), np.uint8))
    with pytest.raises(datasets.DataError, match="lacks the keys"):
        datasets.load_dataset("dsprites", str(tmp_path))
    np.savez(
        path,
        imgs=np.zeros((3, 32, 32), np.uint8),
        latents_values=np.zeros((3, 6)),
        latents_classes=np.zeros((3, 6), np.int64),
    )
    with pytest.raises(datasets.DataError, match=r"imgs uint8 \[3, 32, 32\]"):
        datasets.load_dataset("dsprites", str(tmp_path))
