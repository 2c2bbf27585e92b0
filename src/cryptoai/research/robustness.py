"""Does a result survive other periods, market regimes, parameters, costs and features?

A backtest that only works in one quarter, one regime, at one threshold or with zero fees is
an artefact. These functions re-run an experiment's backtest and model under such variations
and return tables (the notebooks plot them). They also hold the one place where an
experiment's ``backtest`` section becomes trades, so notebooks 04 and 05 trade the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError

if TYPE_CHECKING:
    from cryptoai.backtest.result import BacktestResult
    from cryptoai.features.spec import FeatureSpec
    from cryptoai.modeling.training import TrainConfig
    from cryptoai.research.experiment_config import BacktestSpec

log = logging.getLogger(__name__)

#: Per-period and per-regime figures reported for a strategy and its benchmark.
SUMMARY_METRICS: tuple[str, ...] = ("total_return", "sharpe", "max_drawdown", "n_trades")


# ========================================================== predictions -> trades
def prediction_signal(predictions: pd.DataFrame) -> pd.Series:
    """What ``model_signal`` trades, from training's out-of-sample predictions.

    A binary direction classifier gives P(up) (``proba_1``), so thresholds such as
    ``long_above: 0.52`` read as probabilities; any other model gives ``score`` (expected
    direction in [-1, 1] for other classifiers, predicted return for regressors).
    """
    proba = sorted(c for c in predictions.columns if c.startswith("proba_"))
    if proba == ["proba_0", "proba_1"]:
        return predictions["proba_1"].astype("float64").rename("signal")
    if "score" in predictions.columns:
        return predictions["score"].astype("float64").rename("signal")
    raise BadInputError(
        "predictions have neither proba_0/proba_1 nor a score column: pass the out-of-sample"
        " predictions training writes (predictions.parquet)"
    )


PREDICTIONS_FILE = "predictions.parquet"
_PREDICTIONS_META = "predictions.json"


def prediction_inputs(cfg: TrainConfig, data: pd.DataFrame | None = None) -> dict[str, str]:
    """Fingerprints of what determines out-of-sample predictions, in three parts.

    ``config``: the config less its scratch fields (target, model, validation, seed, smoke,
    where the data comes from). ``features``: the resolved feature spec (the config holds
    only the spec file's path, and the file can be edited in place). ``data``: the candles
    themselves (new or corrected candles in the same date range keep the config). ``data``
    is the OHLCV frame the predictions were made from; without it, the candles the config
    names are loaded as training loads them (``eda.training_candles``).
    """
    from cryptoai.features.spec import as_spec
    from cryptoai.fingerprint import frame_fingerprint

    payload = cfg.model_dump(mode="json", exclude={"output_dir", "fit_final", "tracking"})
    text = json.dumps(payload, sort_keys=True, default=str)
    if data is None:
        from cryptoai.research.eda import training_candles

        data = training_candles(cfg)
    return {
        "config": hashlib.sha256(text.encode()).hexdigest()[:16],
        "features": as_spec(cfg.features).fingerprint(),
        "data": frame_fingerprint(data),
    }


def predictions_key(cfg: TrainConfig, data: pd.DataFrame | None = None) -> str:
    """A short hash of everything that determines out-of-sample predictions (the config, the
    feature spec's content and the candles: see ``prediction_inputs``), so stale predictions
    are never reused."""
    return _inputs_key(prediction_inputs(cfg, data))


def _inputs_key(inputs: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(inputs), sort_keys=True).encode()).hexdigest()[:16]


def save_predictions(
    predictions: pd.DataFrame,
    cfg: TrainConfig,
    folder: str | Path,
    data: pd.DataFrame | None = None,
) -> Path:
    """Write out-of-sample predictions (``predictions.parquet``) and the key of the config,
    spec and data that made them, for the backtest and robustness notebooks to pick up.
    ``data``: the candles they were made from (loaded from the config when not given)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PREDICTIONS_FILE
    predictions.to_parquet(path)
    inputs = prediction_inputs(cfg, data)
    meta = {
        "key": _inputs_key(inputs),
        "inputs": inputs,
        "model": cfg.model.name,
        "rows": len(predictions),
    }
    (folder / _PREDICTIONS_META).write_text(json.dumps(meta, indent=2) + "\n")
    return path


def load_predictions(
    cfg: TrainConfig, folder: str | Path, data: pd.DataFrame | None = None
) -> pd.DataFrame | None:
    """Predictions saved by ``save_predictions`` for this very config, feature spec and data,
    else ``None`` (absent, or made from anything else: the caller then trains the model
    itself). ``data``: the candles to be traded (loaded from the config when not given)."""
    folder = Path(folder)
    path, meta_path = folder / PREDICTIONS_FILE, folder / _PREDICTIONS_META
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        key, saved = meta.get("key"), meta.get("inputs") or {}
    except (json.JSONDecodeError, AttributeError):
        key, saved = None, {}
    inputs = prediction_inputs(cfg, data)
    if key != _inputs_key(inputs):
        changed = [k for k in inputs if saved.get(k) != inputs[k]] or ["key"]
        log.warning("%s was made from another %s: not used", path, " and ".join(changed))
        return None
    return pd.read_parquet(path)


def backtest_window(data: pd.DataFrame, predictions: pd.DataFrame | pd.Series) -> pd.DataFrame:
    """The bars from the first to the last predicted bar: a model is only traded where it
    made out-of-sample predictions, and the benchmark is measured over the same bars."""
    if len(predictions) == 0:
        raise BadInputError("no predictions to trade: run the model (notebook 03) first")
    window = data.loc[predictions.index.min() : predictions.index.max()]
    if len(window) < 2:
        raise BadInputError(
            "the predictions cover fewer than two bars of the data: check that both use the"
            " same symbol, timeframe and period"
        )
    return window


def _split_changes(strategy_cls: type, changes: Mapping[str, Any]) -> tuple[dict, dict]:
    """Separate strategy parameters from execution settings; unknown names are errors."""
    from cryptoai.backtest import ExecutionSettings

    execution = {f.name for f in fields(ExecutionSettings)}
    strat, exe = {}, {}
    for key, value in changes.items():
        if key in strategy_cls.params:
            strat[key] = value
        elif key in execution:
            exe[key] = value
        else:
            raise BadInputError(
                f"{key!r} is neither a parameter of strategy {strategy_cls.name} "
                f"({', '.join(sorted(strategy_cls.params)) or 'none'}) nor an execution setting"
                f" ({', '.join(sorted(execution))})"
            )
    return strat, exe


def _strategy_and_settings(spec: BacktestSpec, signal: pd.Series | None, changes: Mapping):
    from cryptoai.backtest import make_settings
    from cryptoai.strategies import get_strategy

    cls = get_strategy(spec.strategy)
    strat_changes, exe_changes = _split_changes(cls, changes)
    params = {**spec.params, **strat_changes}
    if "predictions" in cls.params and signal is not None:
        params["predictions"] = signal
    return cls(**params), make_settings(spec.settings_dict(), **exe_changes)


def experiment_strategy(spec: BacktestSpec, signal: pd.Series | None, **changes: Any):
    """The experiment's strategy (its predictions set to ``signal``) and execution settings,
    with ``changes`` to either: what ``cryptoai.research.risk`` stresses."""
    return _strategy_and_settings(spec, signal, changes)


def model_backtest(
    data: pd.DataFrame, signal: pd.Series | None, spec: BacktestSpec, **changes: Any
) -> tuple[BacktestResult, BacktestResult]:
    """The experiment's backtest (strategy, parameters, costs) and buy-and-hold on the same
    bars with the same costs. ``changes`` override strategy parameters or settings."""
    from cryptoai.backtest import run_backtest

    strategy, settings = _strategy_and_settings(spec, signal, changes)
    lookahead_note(strategy, data)  # a plugin strategy is proven causal before it trades
    return run_backtest(data, strategy, None, settings)


_LOOKAHEAD_CHECKED: dict[tuple, str] = {}


def lookahead_note(strategy: Any, data: pd.DataFrame) -> str:
    """Check a plugin strategy for lookahead (once per strategy class and data span in this
    process) and return the report's sentence; a built-in is proven in the tests. A leak is a
    one-line error naming the first changed bar."""
    from cryptoai.strategies import check_lookahead

    cls = type(strategy)
    if cls.__module__.startswith("cryptoai."):
        return "Lookahead check: not run (built-in strategy, proven in the tests)."
    key = (cls.__module__, cls.__qualname__, len(data), data.index[0], data.index[-1])
    if key not in _LOOKAHEAD_CHECKED:
        report = check_lookahead(strategy, data).raise_if_failed()
        _LOOKAHEAD_CHECKED[key] = (
            f"Lookahead check: passed ({report.n_points} sampled decision bars, {report.mode})."
        )
    return _LOOKAHEAD_CHECKED[key]


# ====================================================================== periods
def split_periods(index: pd.DatetimeIndex, n: int) -> list[pd.DatetimeIndex]:
    """``n`` consecutive, non-overlapping blocks of (nearly) equal bar counts."""
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise BadInputError(f"number of periods must be a whole number >= 1, got {n!r}")
    if len(index) < 2 * n:
        raise BadInputError(
            f"{len(index)} bars cannot make {n} periods of at least two bars: use fewer periods"
        )
    return [index[part] for part in np.array_split(np.arange(len(index)), int(n))]


def _summary(result: BacktestResult, ppy: float) -> dict[str, float]:
    from cryptoai.backtest.metrics import compute_metrics

    m = compute_metrics(result, ppy)
    return {k: m[k] for k in SUMMARY_METRICS}


def period_backtests(
    data: pd.DataFrame, signal: pd.Series | None, spec: BacktestSpec, n_periods: int
) -> pd.DataFrame:
    """The backtest run afresh (flat, initial cash) on each of ``n_periods`` blocks, beside
    buy-and-hold on the same block: one row per period, ``strategy_*`` and ``benchmark_*``
    columns and ``excess_return``."""
    from cryptoai.backtest.metrics import periods_per_year

    ppy = periods_per_year(data.index)
    rows = []
    for k, idx in enumerate(split_periods(data.index, n_periods)):
        part = data.loc[idx]
        sig = signal.reindex(idx) if signal is not None else None
        if sig is not None and not sig.notna().any():
            log.warning("period %d has no predictions: left out", k)
            continue
        result, bench = model_backtest(part, sig, spec)
        row: dict[str, Any] = {"period": k, "start": idx[0], "end": idx[-1], "bars": len(idx)}
        row |= {f"strategy_{m}": v for m, v in _summary(result, ppy).items()}
        row |= {f"benchmark_{m}": v for m, v in _summary(bench, ppy).items()}
        row["excess_return"] = row["strategy_total_return"] - row["benchmark_total_return"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("period")


# ====================================================================== regimes
def volatility_regimes(
    close: pd.Series, window: int, labels: Sequence[str] = ("low vol", "mid vol", "high vol")
) -> pd.Series:
    """Each bar's volatility regime: trailing ``window``-bar realised volatility cut at the
    sample's quantiles into ``len(labels)`` equally populated groups.

    The volatility is causal, the cut points are not: labels describe the sample after the
    fact, to evaluate a strategy, and must not be traded on. NaN during the warm-up.
    """
    if int(window) != window or window < 2:
        raise BadInputError(f"window must be a whole number of bars >= 2, got {window!r}")
    vol = np.log(close.astype("float64")).diff().rolling(int(window)).std(ddof=1)
    known = vol.dropna()
    if known.nunique() < len(labels):
        raise BadInputError(
            f"{len(known)} bars of volatility cannot be split into {len(labels)} regimes:"
            " use more data or a shorter window"
        )
    cut = pd.qcut(known.rank(method="first"), len(labels), labels=list(labels))
    return cut.astype(object).reindex(close.index).rename("regime")


def trend_regimes(close: pd.Series, window: int) -> pd.Series:
    """``up`` where the close is above its value ``window`` bars earlier, else ``down``
    (causal: known at the bar's close). NaN during the warm-up."""
    if int(window) != window or window < 1:
        raise BadInputError(f"window must be a whole number of bars >= 1, got {window!r}")
    change = close.astype("float64") / close.astype("float64").shift(int(window))
    out = pd.Series(np.where(change > 1.0, "up", "down"), index=close.index, dtype=object)
    return out.where(change.notna()).rename("trend")


def metrics_by_label(
    equity: pd.Series, initial_cash: float, labels: pd.Series, periods_per_year: float
) -> pd.DataFrame:
    """Bar returns of an equity curve grouped by a label per bar (e.g. regime): bars, share
    of bars, compounded return, annualized volatility and Sharpe within each group."""
    from cryptoai.backtest.metrics import bar_returns

    r = bar_returns(equity, initial_cash)
    lab = labels.reindex(r.index)
    rows = {}
    for name in pd.unique(lab.dropna()):
        x = r[lab == name].to_numpy()
        std = x.std(ddof=1) if len(x) > 1 else math.nan
        rows[name] = {
            "bars": len(x),
            "share": len(x) / len(r),
            "total_return": float(np.prod(1.0 + x) - 1.0),
            "volatility": std * math.sqrt(periods_per_year),
            "sharpe": x.mean() / std * math.sqrt(periods_per_year) if std > 0 else math.nan,
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(labels.name or "label")


def signal_quality_by_label(predictions: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """Information coefficient and hit rate of the out-of-sample ``score`` against the
    realised ``forward_return``, per label: does the model's edge hold in every regime?"""
    from cryptoai.modeling.evaluation import hit_rate, information_coefficient

    missing = [c for c in ("score", "forward_return") if c not in predictions.columns]
    if missing:
        raise BadInputError(
            f"predictions lack {', '.join(missing)}: pass training's out-of-sample predictions"
        )
    lab = labels.reindex(predictions.index)
    rows = {}
    for name in pd.unique(lab.dropna()):
        part = predictions[lab == name]
        rows[name] = {
            "bars": len(part),
            "ic": information_coefficient(part["score"], part["forward_return"]),
            "hit_rate": hit_rate(part["score"], part["forward_return"]),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(labels.name or "label")


# ============================================================ parameter variation
def parameter_variation(
    data: pd.DataFrame,
    signal: pd.Series | None,
    spec: BacktestSpec,
    grid: Mapping[str, Sequence[Any]],
) -> pd.DataFrame:
    """Every combination of ``grid`` values (strategy parameters such as thresholds and
    execution settings such as ``fee_bps``) backtested on ``data``, one row each: the
    values, then final equity, total return, max drawdown, Sharpe, trades and funding.

    Combinations the strategy rejects (e.g. a short threshold above the long one) are left
    out. Uses the compiled many-runs kernel: hundreds of variants take about a second.
    """
    from cryptoai.backtest import run_many
    from cryptoai.strategies import get_strategy

    cls = get_strategy(spec.strategy)
    if not cls.has_signals():
        raise BadInputError(f"strategy {spec.strategy} has no vectorized signals to vary")
    from cryptoai.backtest.sweeps import grid_combinations

    combos = grid_combinations(grid)
    by_settings: dict[tuple, list[dict]] = {}
    for combo in combos:
        _, exe = _split_changes(cls, combo)
        by_settings.setdefault(tuple(sorted(exe.items())), []).append(combo)
    parts, skipped = [], 0
    for exe_items, group in by_settings.items():
        rows, targets = [], []
        for combo in group:
            try:
                strategy, settings = _strategy_and_settings(spec, signal, combo)
            except BadInputError:
                skipped += 1
                continue
            rows.append(combo)
            targets.append(strategy.signals(data).reindex(data.index).to_numpy("float64"))
        if not rows:
            continue
        _, settings = _strategy_and_settings(spec, signal, dict(exe_items))
        stats = run_many(data, np.vstack(targets), settings)
        parts.append(pd.concat([pd.DataFrame(rows), stats], axis=1))
    if skipped:
        log.info("parameter_variation left out %d invalid combination(s)", skipped)
    if not parts:
        raise BadInputError("no valid parameter combination in the grid: check its values")
    return pd.concat(parts, ignore_index=True)


# ============================================================== feature ablation
def feature_groups(spec: FeatureSpec) -> dict[str, list[str]]:
    """Output columns per feature name in a spec (``sma`` at three windows is one group), so
    an ablation removes a whole idea, not one of its near-duplicate columns."""
    groups: dict[str, list[str]] = {}
    for item in spec.features:
        groups.setdefault(item.name, []).extend(item.output_columns())
    return groups


def feature_ablation(
    cfg: TrainConfig,
    features: pd.DataFrame,
    target: pd.Series,
    forward_return: pd.Series,
    groups: Mapping[str, Sequence[str]],
    *,
    progress: bool = False,
) -> pd.DataFrame:
    """The config's model under its walk-forward splits with all features, then without each
    group in turn: one row per variant, out-of-sample metrics (IC and hit rate on
    ``forward_return``) as means over the folds (``NAME``; ``NAME_std`` and ``NAME_pooled``
    beside them, see ``evaluation.fold_scores``) and ``n_features``. Same splits and seed for
    every row, so differences come from the features alone."""
    from cryptoai._progress import tqdm
    from cryptoai.modeling.evaluation import fold_scores
    from cryptoai.modeling.splits import walk_forward_predict
    from cryptoai.modeling.training import build_model, plan_splits

    unknown = sorted({c for cols in groups.values() for c in cols} - set(features.columns))
    if unknown:
        raise BadInputError(
            f"feature group columns {', '.join(unknown[:5])} are not in the features: build the"
            " features with the spec the groups came from"
        )
    splits = plan_splits(cfg, len(features))
    model = build_model(cfg)
    variants: dict[str, list[str]] = {"all features": []}
    variants |= {f"without {name}": list(cols) for name, cols in groups.items()}
    rows = {}
    for name, drop in tqdm(variants.items(), desc="ablation", disable=not progress):
        X = features.drop(columns=drop)
        if X.shape[1] == 0:
            log.info("%s leaves no features: skipped", name)
            continue
        oos, _ = walk_forward_predict(model, X, target, splits, progress=False)
        _, metrics = fold_scores(oos, cfg.task, forward_return, len(splits))
        rows[name] = {"n_features": X.shape[1], **metrics}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("variant")
