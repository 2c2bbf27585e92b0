"""Plots say what they show: axis names, honest bar origins, readable class labels."""

from __future__ import annotations

import pandas as pd

from cryptoai.research.eda import plot_metric_comparison
from cryptoai.tracking.plots import class_names, plot_confusion_matrix, plot_feature_importance


def test_an_information_coefficient_is_not_labelled_importance():
    fig = plot_feature_importance(
        ["a", "b"], [0.1, -0.2], xlabel="information coefficient", title="IC"
    )
    ax = fig.axes[0]
    assert ax.get_xlabel() == "information coefficient" and ax.get_title() == "IC"
    assert plot_feature_importance(["a"], [1.0]).axes[0].get_xlabel() == "importance"


def test_model_comparison_bars_start_at_zero():
    table = pd.DataFrame({"balanced_accuracy": [0.466, 0.51, 0.52]}, index=["base", "m1", "m2"])
    fig = plot_metric_comparison(table, "balanced_accuracy", reference="base")
    lo, hi = fig.axes[0].get_xlim()
    assert lo == 0.0 and hi > 0.52  # a bar's length is its value, not its excess over 0.466


def test_confusion_matrix_reads_down_and_up_not_floats():
    fig = plot_confusion_matrix([0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0])
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["down", "up"]
    assert class_names([-1.0, 0.0, 1.0]) == ["down", "flat", "up"]
    assert class_names([2.0, 3.0, 4.5]) == ["2", "3", "4.5"]
