"""Modeling: targets (`labels`), purged walk-forward validation (`splits`), the models behind
one estimator interface (`models`) and config-driven training (`training`)."""

from __future__ import annotations

from cryptoai._lazy import lazy_exports

_EXPORTS = {
    "TargetConfig": ".labels",
    "make_target": ".labels",
    "triple_barrier": ".labels",
    "walk_forward_splits": ".splits",
    "walk_forward_predict": ".splits",
    "TrainConfig": ".training",
    "TrainResult": ".training",
    "train": ".training",
    "load_train_config": ".training",
    "make_model": ".models.registry",
    "available_models": ".models.registry",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
