"""Walk-forward splits (purge, embargo), fold metrics and out-of-sample stitching."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata
from sklearn import metrics as skm

from cryptoai.errors import BadInputError
from cryptoai.modeling.evaluation import (
    aggregate_metrics,
    classification_metrics,
    direction_score,
    evaluate_predictions,
    hit_rate,
    information_coefficient,
    prediction_frame,
    regression_metrics,
    stitch_oos,
)
from cryptoai.modeling.models import make_model
from cryptoai.modeling.splits import WalkForwardSplit, walk_forward_predict, walk_forward_splits


# ------------------------------------------------------------------------- splits
def _expected_train(n, k, n_splits, test_size, train_size, purge, embargo):
    """The definition, written as a plain set computation."""
    first = n - n_splits * test_size
    s = first + k * test_size
    lo = 0 if train_size is None else s - purge - train_size
    rows = set(range(lo, s - purge))
    for j in range(n_splits):
        e_j = first + (j + 1) * test_size
        rows -= set(range(e_j, e_j + embargo))
    return sorted(rows)


@pytest.mark.parametrize(
    ("n", "n_splits", "test_size", "train_size", "purge", "embargo"),
    [
        (60, 3, 10, None, 0, 0),
        (60, 3, 10, None, 3, 0),
        (60, 4, 8, 12, 2, 0),
        (80, 5, 9, None, 4, 3),
        (80, 5, 9, 20, 1, 5),
    ],
)
def test_splits_checked_bar_by_bar(n, n_splits, test_size, train_size, purge, embargo):
    splits = walk_forward_splits(
        n,
        n_splits=n_splits,
        test_size=test_size,
        train_size=train_size,
        purge=purge,
        embargo=embargo,
    )
    assert len(splits) == n_splits
    all_test = np.concatenate([te for _, te in splits])
    # test blocks: consecutive, the last n_splits * test_size rows, each bar exactly once
    assert all_test.tolist() == list(range(n - n_splits * test_size, n))
    for k, (train, test) in enumerate(splits):
        assert len(test) == test_size
        assert not set(train) & set(test)
        for i, j in itertools.product(train, test):
            assert i < j, "walk-forward training must precede its test block"
            assert j - i > purge, f"train bar {i} within {purge} bars before test bar {j}"
        for j in range(k):  # embargoed bars after every earlier test block
            end = splits[j][1][-1] + 1
            assert not set(train) & set(range(end, end + embargo))
        assert train.tolist() == _expected_train(
            n, k, n_splits, test_size, train_size, purge, embargo
        )


def test_hand_computed_example_with_embargo():
    splits = walk_forward_splits(30, n_splits=3, test_size=5, purge=1, embargo=2)
    # blocks [15, 20), [20, 25), [25, 30); training ends 1 bar before each block
    assert [te.tolist() for _, te in splits] == [
        list(range(15, 20)),
        list(range(20, 25)),
        list(range(25, 30)),
    ]
    assert splits[0][0].tolist() == list(range(14))
    # fold 1 ends at 19, before any bar after an earlier block: embargo does not bite
    assert splits[1][0].tolist() == list(range(19))
    # fold 2: bars 20 and 21 follow block 0 and are embargoed
    assert splits[2][0].tolist() == [*range(20), 22, 23]
    no_embargo = walk_forward_splits(30, n_splits=3, test_size=5, purge=1)
    assert no_embargo[2][0].tolist() == list(range(24))


def test_expanding_grows_and_rolling_keeps_its_size():
    exp = walk_forward_splits(100, n_splits=4, test_size=10, purge=2)
    assert [len(tr) for tr, _ in exp] == [58, 68, 78, 88]
    assert all(tr[0] == 0 for tr, _ in exp)
    roll = walk_forward_splits(100, n_splits=4, test_size=10, train_size=30, purge=2)
    assert [len(tr) for tr, _ in roll] == [30, 30, 30, 30]
    assert [(tr[0], tr[-1]) for tr, _ in roll] == [(28, 57), (38, 67), (48, 77), (58, 87)]


def test_default_test_size_leaves_room_for_training():
    splits = walk_forward_splits(100, n_splits=4, purge=0)
    assert len(splits[0][1]) == 20 and len(splits[0][0]) == 20
    roll = walk_forward_splits(100, n_splits=4, train_size=40, purge=0)
    assert len(roll[0][1]) == 15 and len(roll[0][0]) == 40


def test_index_input_and_sklearn_cross_validator():
    idx = pd.date_range("2024-01-01", periods=50, freq="h", tz="UTC")
    a = walk_forward_splits(idx, n_splits=2, test_size=10, purge=1)
    cv = WalkForwardSplit(n_splits=2, test_size=10, purge=1)
    b = list(cv.split(np.zeros((50, 3))))
    assert cv.get_n_splits() == 2
    for (tr1, te1), (tr2, te2) in zip(a, b, strict=True):
        assert np.array_equal(tr1, tr2) and np.array_equal(te1, te2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_splits": 5, "test_size": 20},  # 100 test bars leave no training bars
        {"n_splits": 2, "test_size": 10, "train_size": 90},
        {"n_splits": 2, "test_size": 10, "purge": -1},
        {"n_splits": 0, "test_size": 10},
        {"n_splits": 2, "test_size": 0},
        {"n_splits": 2, "test_size": 10, "embargo": 1.5},
    ],
)
def test_impossible_layouts_are_bad_input(kwargs):
    with pytest.raises(BadInputError):
        walk_forward_splits(100, **kwargs)


# ------------------------------------------------------------------------ metrics
def test_classification_metrics_by_hand_and_against_sklearn():
    y = np.array([0, 1, 1, 0, 1, 0])
    p1 = np.array([0.2, 0.8, 0.4, 0.3, 0.9, 0.6])
    proba = np.column_stack([1 - p1, p1])
    m = classification_metrics(y, proba, [0, 1])
    pred = (p1 > 0.5).astype(int)  # [0,1,0,0,1,1]: 4 of 6 right
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx(0.5 * (2 / 3 + 2 / 3))
    # log loss by hand: mean of -log p(true class)
    p_true = np.where(y == 1, p1, 1 - p1)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log(p_true)))
    # AUC by hand: share of (positive, negative) pairs ranked correctly
    pos, neg = p1[y == 1], p1[y == 0]
    auc = np.mean([(a > b) + 0.5 * (a == b) for a in pos for b in neg])
    assert m["roc_auc"] == pytest.approx(auc)
    tp, fp, fn = 2, 1, 1
    assert m["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))


def test_multiclass_metrics_and_block_missing_a_class():
    rng = np.random.default_rng(3)
    y = rng.choice([-1, 0, 1], size=60)
    proba = rng.dirichlet([1, 1, 1], size=60)
    m = classification_metrics(y, proba, [-1, 0, 1])
    assert m["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, labels=[-1, 0, 1], multi_class="ovr")
    )
    assert m["f1"] == pytest.approx(
        skm.f1_score(y, np.array([-1, 0, 1])[proba.argmax(1)], average="macro")
    )
    y2 = np.where(y == 0, 1, y)  # class 0 absent from this block
    m2 = classification_metrics(y2, proba, [-1, 0, 1])
    expected = np.mean([skm.roc_auc_score(y2 == c, proba[:, i]) for i, c in [(0, -1), (2, 1)]])
    assert m2["roc_auc"] == pytest.approx(expected)
    assert np.isnan(classification_metrics(np.ones(5), proba[:5], [-1, 0, 1])["roc_auc"])


def test_information_coefficient_by_hand():
    score = np.array([0.3, -0.1, 0.5, 0.2, -0.4, 0.05])
    ret = np.array([0.01, 0.02, 0.03, -0.01, -0.02, 0.0])
    rs, rr = rankdata(score), rankdata(ret)
    by_hand = np.corrcoef(rs, rr)[0, 1]  # Spearman = Pearson of ranks
    assert information_coefficient(score, ret) == pytest.approx(by_hand)
    # NaNs are dropped pairwise; constant predictions have no IC
    assert information_coefficient(np.r_[score, np.nan], np.r_[ret, 1.0]) == pytest.approx(by_hand)
    assert np.isnan(information_coefficient(np.zeros(6), ret))


def test_hit_rate_by_hand():
    score = np.array([1.0, -2.0, 0.5, 0.0, -1.0, 3.0])
    ret = np.array([0.1, 0.2, -0.3, 0.4, -0.1, 0.0])
    # used rows: 0 (hit), 1 (miss), 2 (miss), 4 (hit); row 3 has no view, row 5 no move
    assert hit_rate(score, ret) == pytest.approx(2 / 4)
    assert np.isnan(hit_rate(np.zeros(6), ret))


def test_direction_score():
    p = np.array([[0.3, 0.7], [0.9, 0.1]])
    assert direction_score(p, [0, 1]).tolist() == pytest.approx([0.4, -0.8])
    p3 = np.array([[0.2, 0.3, 0.5]])
    assert direction_score(p3, [-1, 0, 1]).tolist() == pytest.approx([0.3])
    assert np.isnan(direction_score(p, [2, 3])).all()


def test_regression_metrics_by_hand():
    y, p = np.array([0.01, -0.02, 0.03]), np.array([0.0, -0.01, 0.01])
    m = regression_metrics(y, p)
    assert m["mse"] == pytest.approx((0.01**2 + 0.01**2 + 0.02**2) / 3)
    assert m["mae"] == pytest.approx((0.01 + 0.01 + 0.02) / 3)


def test_aggregate_is_mean_and_sample_std():
    agg = aggregate_metrics([{"a": 1.0, "n_bars": 5}, {"a": 3.0, "n_bars": 5}, {"a": np.nan}])
    assert agg["a_mean"] == pytest.approx(2.0)
    assert agg["a_std"] == pytest.approx(np.std([1.0, 3.0], ddof=1))
    assert "n_bars_mean" not in agg


# ------------------------------------------------------------ stitching and baseline
def _toy(n=120, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    X = pd.DataFrame(rng.normal(size=(n, 3)), index=idx, columns=["a", "b", "c"])
    y = pd.Series((X["a"] + 0.3 * rng.normal(size=n) > 0.4).astype(float), index=idx)
    return X, y


def test_oos_stitching_covers_each_test_bar_once():
    X, y = _toy()
    splits = walk_forward_splits(len(X), n_splits=4, test_size=15, purge=2)
    oos, fitted = walk_forward_predict(make_model("logreg"), X, y, splits, progress=False)
    expected = X.index[np.concatenate([te for _, te in splits])]
    assert oos.index.equals(expected)
    assert not oos.index.duplicated().any()
    assert oos["fold"].tolist() == np.repeat(np.arange(4), 15).tolist()
    assert oos["y_true"].tolist() == y.loc[expected].tolist()
    assert len(fitted) == 4
    # each fold's model saw only its training rows: refit fold 2 by hand and compare
    tr, te = splits[2]
    by_hand = make_model("logreg").fit(X.iloc[tr], y.iloc[tr]).predict_proba(X.iloc[te])[:, 1]
    np.testing.assert_allclose(oos.loc[X.index[te], "proba_1"], by_hand)


def test_overlapping_folds_cannot_be_stitched():
    idx = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    a = prediction_frame(idx[:3], [0, 1, 0], pred=[0.0, 1.0, 0.0])
    b = prediction_frame(idx[2:], [0, 1], pred=[1.0, 1.0])
    with pytest.raises(BadInputError, match="more than one fold"):
        stitch_oos([a, b])


def test_missing_class_in_a_fold_gets_probability_zero():
    idx = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    a = prediction_frame(idx[:2], [0, 1], proba=np.array([[0.4, 0.6]] * 2), classes=[0, 1])
    b = prediction_frame(
        idx[2:], [-1, 1], proba=np.array([[0.2, 0.3, 0.5]] * 2), classes=[-1, 0, 1]
    )
    out = stitch_oos([a, b])
    assert out.loc[idx[:2], "proba_-1"].tolist() == [0.0, 0.0]


def test_baseline_is_the_training_folds_majority_class():
    X, y = _toy()
    splits = walk_forward_splits(len(X), n_splits=3, test_size=20, purge=1)
    oos, _ = walk_forward_predict(make_model("baseline"), X, y, splits, progress=False)
    for k, (tr, te) in enumerate(splits):
        share = y.iloc[tr].mean()
        block = oos[oos["fold"] == k]
        assert block.index.equals(X.index[te])
        assert (block["pred"] == float(share > 0.5)).all()
        np.testing.assert_allclose(block["proba_1"], share)
    reg, _ = walk_forward_predict(
        make_model("baseline", "regression"), X, X["a"], splits, progress=False
    )
    assert (reg["pred"] == 0.0).all()


def test_evaluate_predictions_skips_rows_without_prediction():
    X, y = _toy(60)
    idx = X.index[:6]
    proba = np.array([[0.2, 0.8], [0.6, 0.4], [np.nan, np.nan], [0.3, 0.7], [0.9, 0.1], [0.5, 0.5]])
    frame = prediction_frame(idx, [1, 0, 1, 0, 0, 1], proba=proba, classes=[0, 1])
    ret = pd.Series([0.01, -0.01, 0.02, 0.01, -0.03, 0.0], index=idx)
    m = evaluate_predictions(frame, "classification", ret)
    assert m["n_predicted"] == 5 and m["n_bars"] == 6
    ok = [0, 1, 3, 4, 5]
    assert m["accuracy"] == pytest.approx(
        skm.accuracy_score(np.array([1, 0, 0, 0, 1]), proba[ok].argmax(1))
    )
    score = 2 * proba[ok, 1] - 1
    assert m["ic"] == pytest.approx(information_coefficient(score, ret.iloc[ok]))
