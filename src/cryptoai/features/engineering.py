"""Feature specs -> feature frames: one row per input bar, same index, NaN during warm-up."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    for entry in feature_layout(spec):
        values = entry.outputs(ohlcv)
        for i, column in entry.kept:
            columns[column] = np.asarray(values[i], dtype=np.float64)
    out = pd.DataFrame(columns, index=ohlcv.index, copy=False)
    log.debug("built %d feature columns on %d bars", out.shape[1], out.shape[0])
    return out


@dataclass(frozen=True)
class LayoutEntry:
    """One spec entry as ``build_features`` computes it: its feature, validated parameters,
    output names, and the outputs it keeps as ``(output index, column name)`` pairs."""

    item: Any
    params: Any
    names: tuple[str, ...]
    kept: tuple[tuple[int, str], ...]

    def outputs(self, source: Any) -> list:
        """The feature's outputs on ``source`` (as many as ``names``, checked)."""
        values = self.item.definition.compute(source, self.params)
        if len(values) != len(self.names):
            raise ValueError(
                f"feature {self.item.name!r} returned {len(values)} outputs for"
                f" {len(self.names)} columns"
            )
        return values


def feature_layout(spec: FeatureSpec | str | Path) -> list[LayoutEntry]:
    """Which outputs of which feature become which column, per entry of ``spec``: computed
    once by a caller that builds the same features many times (the serving plan)."""
    out = []
    for item in as_spec(spec).features:
        params = item.resolved_params()
        names = tuple(item.definition.columns(params))
        keep = set(item.columns or names)
        kept = tuple((i, item.prefix + n) for i, n in enumerate(names) if n in keep)
        out.append(LayoutEntry(item, params, names, kept))
    return out


def _check_inputs(ohlcv: pd.DataFrame, spec: FeatureSpec) -> None:
    for i, item in enumerate(spec.features):
        missing = [c for c in item.definition.requires if c not in ohlcv.columns]
        if missing:
            raise BadInputError(
                f"feature entry {i} ({item.name!r}) needs column(s) {', '.join(missing)}, which"
                " the data lacks: remove the entry from the spec or use data that has them"
            )
