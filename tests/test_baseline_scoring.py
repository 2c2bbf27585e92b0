"""Model and baseline are compared fold by fold, not on all test bars pooled.

A baseline predicting a different constant in each fold has no skill in any fold (AUC 0.5,
no IC), but pooled its constants rank the folds against each other: on the frame below its
pooled AUC is 0.40 (worked by hand), which a useless model would "beat".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from cryptoai.errors import BadInputError
from cryptoai.modeling.evaluation import fold_scores, paired_differences
from cryptoai.modeling.training import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]


def _frame(proba_up: list[float], y: list[float], fold: list[int]) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=len(y), freq="h", tz="UTC")
    p = np.asarray(proba_up, dtype=float)
    return pd.DataFrame(
        {
            "y_true": y,
            "pred": (p > 0.5).astype(float),
            "score": 2 * p - 1,
            "proba_0": 1 - p,
            "proba_1": p,
            "fold": fold,
        },
        index=idx,
    )


# fold 0: 6 of 10 bars up, the baseline says 0.4; fold 1: 4 of 10 up, it says 0.6
Y = [1.0] * 6 + [0.0] * 4 + [1.0] * 4 + [0.0] * 6
FOLD = [0] * 10 + [1] * 10
BASELINE = [0.4] * 10 + [0.6] * 10
MODEL = [0.9, 0.8, 0.7, 0.3, 0.6, 0.55, 0.2, 0.4, 0.1, 0.65] + [
    0.7,
    0.45,
    0.8,
    0.3,
    0.2,
    0.6,
    0.35,
    0.1,
    0.5,
    0.25,
]


def _forward(frame: pd.DataFrame) -> pd.Series:
    """Realised returns in the direction of the label, sizes varying bar to bar."""
    size = np.linspace(0.001, 0.02, len(frame))
    return pd.Series(np.where(frame["y_true"] > 0, size, -size), index=frame.index)


def test_a_fold_wise_constant_baseline_scores_half_not_its_pooled_auc():
    base = _frame(BASELINE, Y, FOLD)
    per_fold, agg = fold_scores(base, "classification", _forward(base), 2)
    assert [f["roc_auc"] for f in per_fold] == [0.5, 0.5]
    assert agg["roc_auc"] == agg["roc_auc_mean"] == 0.5
    # pooled: positives (6 at 0.4, 4 at 0.6) against negatives (4 at 0.4, 6 at 0.6):
    # wins 4*4 = 16, ties 6*4 + 4*6 = 48 of 100 pairs -> (16 + 48 / 2) / 100
    assert agg["roc_auc_pooled"] == pytest.approx(0.40, abs=1e-12)
    assert np.isnan(agg["ic"])  # a constant has no rank correlation in any fold
    pooled_ic = spearmanr(base["score"], _forward(base)).statistic
    assert agg["ic_pooled"] == pytest.approx(pooled_ic) and pooled_ic < 0
    assert agg["n_predicted"] == 20 and agg["n_bars"] == 20  # counts stay totals


def test_model_against_baseline_uses_per_fold_means_and_paired_differences():
    model, base = _frame(MODEL, Y, FOLD), _frame(BASELINE, Y, FOLD)
    fwd = _forward(model)
    m_folds, m_agg = fold_scores(model, "classification", fwd, 2)
    b_folds, b_agg = fold_scores(base, "classification", fwd, 2)
    aucs = [roc_auc_score(Y[:10], MODEL[:10]), roc_auc_score(Y[10:], MODEL[10:])]
    assert m_agg["roc_auc"] == pytest.approx(np.mean(aucs))
    assert m_agg["roc_auc_std"] == pytest.approx(np.std(aucs, ddof=1))
    assert m_agg["roc_auc_pooled"] == pytest.approx(roc_auc_score(Y, MODEL))
    delta = paired_differences(m_folds, b_folds)
    assert delta["delta_roc_auc_mean"] == pytest.approx(np.mean(aucs) - 0.5)
    assert delta["delta_roc_auc_std"] == pytest.approx(np.std(np.subtract(aucs, 0.5), ddof=1))
    assert delta["delta_roc_auc_positive"] == np.mean(np.subtract(aucs, 0.5) > 0)
    # IC: undefined for the baseline in every fold, so no paired difference either
    assert np.isnan(delta["delta_ic_mean"]) and np.isnan(b_agg["ic"])
    accs = [
        np.mean((np.array(MODEL[s]) > 0.5) == np.array(Y[s])) for s in (slice(10), slice(10, 20))
    ]
    base_accs = [0.4, 0.4]  # 0.4 says down in fold 0 (4 of 10 down), 0.6 up in fold 1 (4 up)
    assert delta["delta_accuracy_mean"] == pytest.approx(np.mean(accs) - np.mean(base_accs))


def test_paired_differences_need_the_same_folds():
    folds, _ = fold_scores(_frame(MODEL, Y, FOLD), "classification", None, 2)
    with pytest.raises(BadInputError, match="same splits"):
        paired_differences(folds, folds[:1])


def test_training_reports_the_baseline_per_fold_and_the_pooled_figures_apart(tmp_path):
    cfg = TrainConfig.model_validate(
        {
            "name": "baseline-scoring",
            "data": {
                "source": "synthetic",
                "symbol": "BTC/USDT",
                "timeframe": "1h",
                "start": "2024-01-01",
                "end": "2024-01-20",
                "store_root": str(tmp_path / "raw"),
            },
            "features": str(REPO / "configs" / "features" / "minimal.yaml"),
            "target": {"kind": "direction", "horizon": 1},
            "model": {"name": "logreg", "params": {"C": 0.5}},
            "validation": {"n_splits": 3, "test_size": 60},
            "output_dir": str(tmp_path / "runs"),
            "fit_final": False,
        }
    )
    res = train(cfg, tracking=False, progress=False)
    base, model = res.baseline_aggregate, res.aggregate
    # each fold's baseline is one constant: AUC exactly 0.5 per fold and on average
    assert [f["roc_auc"] for f in res.baseline_per_fold] == [0.5, 0.5, 0.5]
    assert base["roc_auc"] == 0.5
    pooled = res.baseline_predictions
    assert base["roc_auc_pooled"] == pytest.approx(
        roc_auc_score(pooled["y_true"], pooled["proba_1"])
    )
    assert base["roc_auc_pooled"] != 0.5  # what the comparison used to be made against
    model_aucs = [f["roc_auc"] for f in res.per_fold]
    assert model["roc_auc"] == pytest.approx(np.mean(model_aucs))
    assert model["delta_roc_auc_mean"] == pytest.approx(np.mean(model_aucs) - 0.5)
    assert model["delta_roc_auc_std"] == pytest.approx(np.std(model_aucs, ddof=1))
    p = res.predictions
    assert model["roc_auc_pooled"] == pytest.approx(roc_auc_score(p["y_true"], p["proba_1"]))
    table = res.summary()
    assert table.loc["roc_auc", "mean"] == model["roc_auc"]
    assert table.loc["roc_auc", "all"] == model["roc_auc_pooled"]
    assert table.loc["roc_auc", "baseline"] == 0.5
