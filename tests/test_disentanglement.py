"""Tests for vae/disentanglement.py on codes whose answer is known."""

import math

import numpy as np
import pytest

from vae import disentanglement

SIZES = (3, 6, 10, 8, 8)
N = 3000


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(1)
    return np.stack([rng.integers(0, size, N) for size in SIZES], axis=1)


def _standardised(factors):
    values = factors.astype(np.float64)
    return (values - values.mean(axis=0)) / values.std(axis=0)


def _codes(factors, kind):
    """10-dimensional codes: the factors copied into dimensions 0-4 (plus five
    noise dimensions), pure noise, or pairs of factors mixed by 45 degree
    rotations."""
    rng = np.random.default_rng(2)
    noise = rng.normal(size=(len(factors), 5))
    v = _standardised(factors)
    if kind == "copy":
        return np.concatenate([v, noise], axis=1)
    if kind == "random":
        return rng.normal(size=(len(factors), 10))
    mixed = np.stack(
        [
            v[:, 0] + v[:, 1],
            v[:, 0] - v[:, 1],
            v[:, 2] + v[:, 3],
            v[:, 2] - v[:, 3],
            v[:, 4],
        ],
        axis=1,
    )
    return np.concatenate([mixed, noise], axis=1)


def test_plug_in_estimates_by_hand():
    a = np.array([0, 0, 1, 1])
    assert disentanglement.entropy(a) == pytest.approx(math.log(2))
    assert disentanglement.mutual_information(a, a) == pytest.approx(math.log(2))
    assert disentanglement.mutual_information(a, np.array([0, 1, 0, 1])) == 0.0
    # p(a, b) = 1/2 on (0, 0), 1/4 on (1, 0) and (1, 1):
    # I = 1/2 log(1/2 / (1/2 * 3/4)) + 1/4 log(1/4 / (1/2 * 3/4))
    #     + 1/4 log(1/4 / (1/2 * 1/4)).
    b = np.array([0, 0, 0, 1])
    expected = (
        0.5 * math.log(0.5 / 0.375) + 0.25 * math.log(0.25 / 0.375) + 0.25 * math.log(2.0)
    )
    assert disentanglement.mutual_information(a, b) == pytest.approx(expected)
    np.testing.assert_array_equal(
        disentanglement.discretize(
            np.array([[0.0, 5.0], [1.0, 5.0], [0.5, 5.0]]), num_bins=4
        ),
        [[0, 0], [3, 0], [2, 0]],
    )


def test_dci_from_importance_by_hand():
    assert disentanglement.dci_from_importance(np.eye(3)) == pytest.approx((1, 1))
    assert disentanglement.dci_from_importance(np.ones((3, 3))) == pytest.approx(
        (0, 0), abs=1e-12
    )
    # Code 0 serves factor 0 only (D_0 = 1), code 1 both equally (D_1 = 0),
    # weights 1/3 and 2/3; factor 0 is split over both codes (C_0 = 0), factor
    # 1 held by code 1 only (C_1 = 1), weights 2/3 and 1/3.
    assert disentanglement.dci_from_importance(
        np.array([[1.0, 0.0], [1.0, 1.0]])
    ) == pytest.approx((1 / 3, 1 / 3))


def test_mig_orders_copy_mixed_random(factors):
    scores = {
        kind: disentanglement.mutual_information_gap(_codes(factors, kind), factors)[
            "mig"
        ]
        for kind in ("copy", "mixed", "random")
    }
    assert scores["copy"] > 0.95
    assert scores["random"] < 0.05
    assert 0.15 < scores["mixed"] < 0.8
    # Each factor's gap: the copy's dimension k holds all of H(v_k).
    per_factor = disentanglement.mutual_information_gap(_codes(factors, "copy"), factors)[
        "mig_per_factor"
    ]
    assert min(per_factor) > 0.9


def test_factor_vae_score_orders_copy_mixed_random(factors):
    scores = {
        kind: disentanglement.factor_vae_score(
            _codes(factors, kind),
            factors,
            seed=0,
            num_train_votes=500,
            num_eval_votes=500,
        )
        for kind in ("copy", "mixed", "random")
    }
    assert scores["copy"]["factor_vae"] == 1.0
    assert scores["copy"]["factor_vae_active_dims"] == 10
    # At chance the majority vote is right about 1 / 5 of the time.
    assert scores["random"]["factor_vae"] < 0.35
    assert 0.35 < scores["mixed"]["factor_vae"] < 0.95
    again = disentanglement.factor_vae_score(
        _codes(factors, "mixed"), factors, seed=0, num_train_votes=500, num_eval_votes=500
    )
    assert again == scores["mixed"]


def test_factor_vae_score_prunes_collapsed_dimensions(factors):
    codes = _codes(factors, "copy")
    codes[:, 5:] = 1e-3 * codes[:, 5:]
    score = disentanglement.factor_vae_score(
        codes, factors, seed=0, num_train_votes=100, num_eval_votes=100
    )
    assert score["factor_vae_active_dims"] == 5
    assert score["factor_vae"] == 1.0


def test_dci_orders_copy_mixed_random(factors):
    scores = {
        kind: disentanglement.dci(_codes(factors, kind), factors, seed=0)
        for kind in ("copy", "mixed", "random")
    }
    assert scores["copy"]["dci_disentanglement"] > 0.75
    assert scores["copy"]["dci_informativeness"] > 0.95
    # Dimension k of the copy holds factor k: the largest importance of each
    # factor's column sits on the diagonal.
    importance = np.array(scores["copy"]["dci_importance"])
    np.testing.assert_array_equal(np.argmax(importance, axis=0), range(5))
    assert scores["random"]["dci_disentanglement"] < 0.1
    assert scores["random"]["dci_informativeness"] < 0.3
    assert (
        scores["random"]["dci_disentanglement"] + 0.2
        < scores["mixed"]["dci_disentanglement"]
        < scores["copy"]["dci_disentanglement"] - 0.15
    )


def test_bad_codes_are_refused(factors):
    with pytest.raises(ValueError, match="codes"):
        disentanglement.mutual_information_gap(np.zeros((5, 2)), factors)
    with pytest.raises(ValueError, match="NaN"):
        disentanglement.evaluate(np.full((N, 2), np.nan), factors, seed=0)
    with pytest.raises(ValueError, match="Unknown disentanglement metrics"):
        disentanglement.evaluate(np.zeros((N, 2)), factors, seed=0, metrics=("beta_vae",))
