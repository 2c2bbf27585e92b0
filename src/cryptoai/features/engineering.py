"""Feature specs -> feature frames: one row per input bar, same index, NaN during warm-up."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError
from cryptoai.features.spec import FeatureSpec, as_spec

log = logging.getLogger(__name__)


def build_features(ohlcv: pd.DataFrame, spec: FeatureSpec | str | Path) -> pd.DataFrame:
    """Compute every feature of ``spec`` on an OHLCV frame.

    The result has the input's index and float64 columns named as documented in
    ``cryptoai.features.registry``; the value at bar t uses bars up to and including t only.
    Rows are never dropped or filled: the caller decides what to do with the warm-up.
    """
    spec = as_spec(spec)
    if not isinstance(ohlcv, pd.DataFrame):
        raise BadInputError(
            f"features need an OHLCV DataFrame, got {type(ohlcv).__name__}: load the data first"
        )
    _check_inputs(ohlcv, spec)
    columns: dict[str, np.ndarray] = {}
    for item in spec.features:
        params = item.resolved_params()
        names = item.definition.columns(params)
        values = item.definition.compute(ohlcv, params)
        keep = set(item.columns or names)
        for name, arr in zip(names, values, strict=True):
            if name in keep:
                columns[item.prefix + name] = np.asarray(arr, dtype=np.float64)
    out = pd.DataFrame(columns, index=ohlcv.index, copy=False)
    log.debug("built %d feature columns on %d bars", out.shape[1], out.shape[0])
    return out


def _check_inputs(ohlcv: pd.DataFrame, spec: FeatureSpec) -> None:
    for i, item in enumerate(spec.features):
        missing = [c for c in item.definition.requires if c not in ohlcv.columns]
        if missing:
            raise BadInputError(
                f"feature entry {i} ({item.name!r}) needs column(s) {', '.join(missing)}, which"
                " the data lacks: remove the entry from the spec or use data that has them"
            )
