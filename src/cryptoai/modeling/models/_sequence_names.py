"""The sequence models' names, registered by reference so that naming one (or listing the
models) does not import torch: the class is imported when a model is built."""

from __future__ import annotations

from cryptoai.modeling.models.registry import MODELS, SEQUENCE_MODELS, Entry

_MODULE = "cryptoai.modeling.models.sequence"

for _arch in SEQUENCE_MODELS:
    _entry: Entry = {"regression": (f"{_MODULE}:SequenceRegressor", {"arch": _arch})}
    if _arch != "nhits":  # N-HiTS is a point forecaster only
        _entry["classification"] = (f"{_MODULE}:SequenceClassifier", {"arch": _arch})
    MODELS.add(_arch, _entry)
