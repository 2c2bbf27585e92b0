"""Features: indicators (with `ta` semantics), engineered features, YAML specs, a cache and
feature selection. Names are imported on first use, so importing the package stays cheap."""

from __future__ import annotations

from cryptoai._lazy import lazy_exports

_EXPORTS = {
    "build_features": "cryptoai.features.engineering",
    "cached_features": "cryptoai.features.cache",
    "FeatureItem": "cryptoai.features.spec",
    "FeatureSpec": "cryptoai.features.spec",
    "load_feature_spec": "cryptoai.features.spec",
    "known_features": "cryptoai.features.registry",
    "register_feature": "cryptoai.features.registry",
    "correlation_prune": "cryptoai.features.selection",
    "importance_prune": "cryptoai.features.selection",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
