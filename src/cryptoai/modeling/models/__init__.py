"""Models behind one estimator interface, found by name (``make_model``).

Submodules load on first use: the sequence models pull in torch and pytorch-forecasting,
which a logistic regression should not pay for.
"""

from __future__ import annotations

from cryptoai._lazy import lazy_exports

_EXPORTS = {
    "BaseModel": ".base",
    "ClassifierModel": ".base",
    "RegressorModel": ".base",
    "make_model": ".registry",
    "available_models": ".registry",
    "model_class": ".registry",
    "is_sequence_model": ".registry",
    "LogisticModel": ".tabular",
    "RidgeModel": ".tabular",
    "ForestClassifier": ".tabular",
    "ForestRegressor": ".tabular",
    "BoostedClassifier": ".tabular",
    "BoostedRegressor": ".tabular",
    "BaselineClassifier": ".tabular",
    "BaselineRegressor": ".tabular",
    "SequenceClassifier": ".sequence",
    "SequenceRegressor": ".sequence",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
