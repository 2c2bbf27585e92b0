"""Drift of a live model: its inputs and outputs now against the window it was trained on.

For every feature of the model's spec and every prediction column: the population stability
index (PSI, on the training window's deciles) and the two-sample Kolmogorov-Smirnov statistic
(``scipy.stats.ks_2samp``), live window vs training window; and the realized hit rate of the
stored live predictions (did the close move the predicted way over the model's horizon?)
next to the hit rate the model expected (its mean confidence on those bars) and the one its
walk-forward validation measured. The training window and the feature spec come from the
registered version (its card and its training run's config); the live window's features are
rebuilt from the raw store with that spec, so both sides are computed the same way.

PSI = sum over bins of (live share - reference share) * ln(live share / reference share);
shares are floored at ``eps`` so an empty bin does not make it infinite. Rules of thumb:
< 0.1 stable, 0.1-0.25 shifting, > 0.25 drifted (the default threshold).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError

log = logging.getLogger(__name__)

PSI_MAX = 0.25
PSI_BINS = 10
PSI_EPS = 1e-4


# ---------------------------------------------------------------------- statistics
def bin_edges(reference: Any, bins: int = PSI_BINS) -> np.ndarray:
    """Interior bin edges: the reference's quantiles at 1/bins, 2/bins, ... (duplicates
    dropped, so a discrete feature gets fewer bins). Bins are ``[e_i, e_i+1)``, the outer
    two open-ended, so live values outside the training range land in the end bins."""
    ref = _finite(reference, "reference")
    if bins < 2:
        raise BadInputError(f"PSI needs at least 2 bins, got {bins}")
    qs = np.quantile(ref, np.arange(1, bins) / bins)
    return np.unique(qs)


def psi(
    reference: Any,
    current: Any,
    bins: int = PSI_BINS,
    eps: float = PSI_EPS,
    edges: np.ndarray | None = None,
) -> float:
    """Population stability index of ``current`` against ``reference`` (see the module)."""
    ref, cur = _finite(reference, "reference"), _finite(current, "current")
    cuts = bin_edges(ref, bins) if edges is None else np.asarray(edges, dtype=float)
    n_bins = len(cuts) + 1
    e = np.bincount(np.searchsorted(cuts, ref, side="right"), minlength=n_bins) / len(ref)
    a = np.bincount(np.searchsorted(cuts, cur, side="right"), minlength=n_bins) / len(cur)
    e, a = np.maximum(e, eps), np.maximum(a, eps)
    return float(np.sum((a - e) * np.log(a / e)))


def ks(reference: Any, current: Any) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (``scipy.stats.ks_2samp``)."""
    from scipy.stats import ks_2samp

    res = ks_2samp(_finite(reference, "reference"), _finite(current, "current"))
    return float(res.statistic), float(res.pvalue)


def _finite(values: Any, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype="float64").ravel()
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        raise BadInputError(f"{what} sample has no finite values: widen the window")
    return arr


def compare(
    reference: pd.DataFrame,
    live: pd.DataFrame,
    *,
    kind: str = "feature",
    psi_max: float | None = PSI_MAX,
    ks_max: float | None = None,
    bins: int = PSI_BINS,
) -> pd.DataFrame:
    """PSI and KS of every column ``live`` shares with ``reference``, one row each."""
    rows = []
    for col in reference.columns:
        if col not in live.columns:
            continue
        ref, cur = reference[col].dropna(), live[col].dropna()
        if ref.empty or cur.empty:
            log.warning("drift: %s has no values on one side: skipped", col)
            continue
        p = psi(ref, cur, bins=bins)
        stat, pvalue = ks(ref, cur)
        breach = (psi_max is not None and p > psi_max) or (ks_max is not None and stat > ks_max)
        rows.append(
            {
                "name": col,
                "kind": kind,
                "psi": p,
                "ks": stat,
                "ks_pvalue": pvalue,
                "n_reference": len(ref),
                "n_live": len(cur),
                "breach": bool(breach),
            }
        )
    return pd.DataFrame(
        rows,
        columns=["name", "kind", "psi", "ks", "ks_pvalue", "n_reference", "n_live", "breach"],
    )


def hit_rates(predictions: pd.DataFrame, candles: pd.DataFrame, horizon: int = 1) -> dict:
    """Realized vs expected hit rate of directional predictions.

    A bar's call is up when its ``score`` > 0, down when < 0 (0 and NaN make no call); it
    hits when the close ``horizon`` bars later moved that way. Expected: the model's mean
    confidence on the same bars, ``max(p, 1 - p)`` with ``p = (score + 1) / 2`` (for a
    direction model ``p`` is ``proba_up``). Bars whose outcome is not known yet are left out.
    """
    close = candles["close"]
    later = close.shift(-horizon)
    moved = np.sign(later - close).reindex(predictions.index)
    score = predictions["score"].astype("float64")
    called = score.notna() & (score != 0) & moved.notna()
    n = int(called.sum())
    if n == 0:
        return {"n": 0, "realized": math.nan, "expected": math.nan}
    hits = np.sign(score[called]) == moved[called]
    p = (score[called] + 1) / 2
    return {
        "n": n,
        "realized": float(hits.mean()),
        "expected": float(np.maximum(p, 1 - p).mean()),
    }


# ---------------------------------------------------------------------- the report
@dataclass
class DriftReport:
    model: dict[str, Any]
    window: tuple[pd.Timestamp, pd.Timestamp]
    reference_window: tuple[pd.Timestamp, pd.Timestamp]
    table: pd.DataFrame
    hit_rate: dict[str, Any]
    psi_max: float | None
    ks_max: float | None
    validation_hit_rate: float | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def breaches(self) -> pd.DataFrame:
        return self.table[self.table["breach"]]

    @property
    def ok(self) -> bool:
        return self.breaches.empty

    def summary(self) -> str:
        b = self.breaches
        if b.empty:
            return (
                f"drift ok: {len(self.table)} statistics within thresholds"
                f" (PSI max {self.table['psi'].max():.3f})"
            )
        worst = b.sort_values("psi", ascending=False).iloc[0]
        return (
            f"drift: {len(b)} of {len(self.table)} past thresholds"
            f" (psi_max {self.psi_max}, ks_max {self.ks_max}); worst {worst['name']}"
            f" PSI {worst['psi']:.3f} KS {worst['ks']:.3f}"
        )

    def to_markdown(self) -> str:
        m = self.model
        s, e = self.window
        rs, re = self.reference_window
        hr = self.hit_rate
        lines = [
            f"# Drift report: {m['name']} v{m['version']}",
            "",
            f"- live window: {s:%Y-%m-%d %H:%M} .. {e:%Y-%m-%d %H:%M} UTC",
            f"- training window: {rs:%Y-%m-%d %H:%M} .. {re:%Y-%m-%d %H:%M} UTC",
            f"- thresholds: PSI > {self.psi_max}, KS > {self.ks_max} (None: not checked)",
            f"- result: **{self.summary()}**",
            "",
            "## Hit rate",
            "",
            "| | value |",
            "|---|---|",
            f"| live predictions scored | {hr['n']} |",
            f"| realized hit rate | {_pct(hr['realized'])} |",
            f"| expected (mean model confidence) | {_pct(hr['expected'])} |",
            f"| walk-forward validation accuracy | {_pct(self.validation_hit_rate)} |",
            "",
            "## Features and predictions (live vs training)",
            "",
            "| name | kind | PSI | KS | KS p-value | n train | n live | breach |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.table.itertuples():
            lines.append(
                f"| {r.name} | {r.kind} | {r.psi:.4f} | {r.ks:.4f} | {r.ks_pvalue:.3g} |"
                f" {r.n_reference} | {r.n_live} | {'**yes**' if r.breach else 'no'} |"
            )
        lines += ["", "PSI on the training window's deciles: < 0.1 stable, 0.1-0.25 shifting,"]
        lines += ["> 0.25 drifted. KS: largest gap between the two empirical CDFs.", ""]
        for path in self.files:
            if path.suffix == ".png":
                lines.append(f"![{path.stem}]({path.name})")
        return "\n".join(lines) + "\n"

    def write(self, out: str | Path, reference: pd.DataFrame, live: pd.DataFrame) -> Path:
        """``report.md``, ``drift.csv``, ``drift.json`` and the plots into ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.files = [*_plots(self.table, reference, live, out)]
        self.table.to_csv(out / "drift.csv", index=False)
        doc = {
            "model": self.model,
            "window": [str(x) for x in self.window],
            "reference_window": [str(x) for x in self.reference_window],
            "ok": self.ok,
            "psi_max": self.psi_max,
            "ks_max": self.ks_max,
            "hit_rate": self.hit_rate,
            "validation_hit_rate": self.validation_hit_rate,
            "table": self.table.to_dict(orient="records"),
        }
        (out / "drift.json").write_text(json.dumps(doc, indent=1, default=_json_default))
        path = out / "report.md"
        path.write_text(self.to_markdown())
        self.files = [path, out / "drift.csv", out / "drift.json", *self.files]
        return path


def _pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    return str(x)


def _plots(table: pd.DataFrame, reference: pd.DataFrame, live: pd.DataFrame, out: Path):
    """Training vs live histograms of the most drifted columns (at most 8)."""
    from matplotlib.figure import Figure

    if table.empty:
        return []
    top = table.sort_values("psi", ascending=False).head(8)
    n = len(top)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(3.2 * cols, 2.6 * rows), constrained_layout=True)
    for j, r in enumerate(top.itertuples()):
        ax = fig.add_subplot(rows, cols, j + 1)
        ref, cur = reference[r.name].dropna(), live[r.name].dropna()
        lo, hi = np.nanmin([ref.min(), cur.min()]), np.nanmax([ref.max(), cur.max()])
        edges = np.linspace(lo, hi, 31) if hi > lo else 10
        ax.hist(ref, bins=edges, density=True, alpha=0.5, label="training")
        ax.hist(cur, bins=edges, density=True, alpha=0.5, label="live")
        ax.set_title(f"{r.name}\nPSI {r.psi:.3f}  KS {r.ks:.3f}", fontsize=8)
        ax.tick_params(labelsize=7)
        if j == 0:
            ax.legend(fontsize=7)
    path = out / "drift_histograms.png"
    fig.savefig(path, dpi=90)
    return [path]


# ---------------------------------------------------------------------- from the registry
def training_window(predictor: Any) -> dict[str, Any]:
    """The training run's data config (source, symbol, timeframe, start, end, store) and
    its walk-forward accuracy, read from the registered version's run."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from cryptoai.tracking._store import configure

    configure()
    client = MlflowClient()
    version = client.get_model_version(predictor.name, str(predictor.version))
    if not version.run_id:
        raise BadInputError(
            f"{predictor.name} v{predictor.version} has no training run: pass the reference"
            " candles yourself (drift_report(reference=...))"
        )
    import yaml

    text = mlflow.artifacts.load_text(f"runs:/{version.run_id}/config.yaml")
    cfg = yaml.safe_load(text) or {}
    data = cfg.get("data") or cfg.get("dataset")
    if not isinstance(data, dict):
        raise BadInputError(f"run {version.run_id}'s config.yaml has no data section")
    metrics = client.get_run(version.run_id).data.metrics
    acc = next((metrics[k] for k in ("accuracy_pooled", "accuracy_mean") if k in metrics), None)
    return {"data": data, "run_id": version.run_id, "accuracy": acc}


def training_candles(data: dict[str, Any]) -> pd.DataFrame:
    from cryptoai.modeling.training import DataConfig, load_training_data

    return load_training_data(DataConfig.model_validate(data))


def drift_report(
    model: str | Any,
    since: Any,
    until: Any = None,
    *,
    store_root: str | Path = "data/raw",
    exchange: str = "binance",
    symbol: str | None = None,
    timeframe: str | None = None,
    live_root: str | Path = "data/live",
    psi_max: float | None = PSI_MAX,
    ks_max: float | None = None,
    reference: pd.DataFrame | None = None,
    out: str | Path | None = None,
    now: Any = None,
) -> DriftReport:
    """Drift of ``model``'s features and predictions over ``[since, until)`` (see module).

    ``reference``: the training candles (default: reloaded from the training run's config).
    The live candles come from ``store_root`` (``exchange``, and the card's symbol and
    timeframe unless given); the live predictions from ``live_root`` when the live loop
    recorded them there, else they are computed. With ``out`` the markdown report, a CSV,
    a JSON and the plots are written there.
    """
    from cryptoai.data.store import RawStore
    from cryptoai.data.timeframes import parse_utc, timeframe_to_timedelta
    from cryptoai.features.engineering import build_features
    from cryptoai.serve.live import live_dir, load_predictions
    from cryptoai.serve.runtime import Predictor, load_predictor

    predictor = model if isinstance(model, Predictor) else load_predictor(model)
    card = predictor.card
    symbol = symbol or card.get("symbol")
    timeframe = timeframe or card.get("timeframe")
    if not symbol or not timeframe:
        raise BadInputError("the model card names no symbol/timeframe: pass --symbol, --timeframe")
    td = timeframe_to_timedelta(timeframe)
    start = parse_utc(since, "--since")
    end = parse_utc(until, "--until") if until is not None else parse_utc(now or _now(), "now")
    if end <= start:
        raise BadInputError(f"--since {start} is not before --until {end}: give a later --until")
    validation = None
    if reference is None:
        info = training_window(predictor)
        reference = training_candles(info["data"])
        validation = info["accuracy"]
    warm = (predictor.min_bars + 300) * td
    horizon = int(card.get("horizon", 1))
    store = RawStore(store_root)
    key = store.key(exchange, symbol, timeframe)
    candles = store.load(key.exchange, key.symbol, key.timeframe, start - warm, end + horizon * td)
    live_candles = candles[candles.index < end]
    if live_candles.index[live_candles.index >= start].empty:
        raise BadInputError(
            f"no {key} bars stored in [{start}, {end}) under {store_root}: sync the store first"
        )
    ref_x = build_features(reference, predictor.spec)
    live_x = build_features(live_candles, predictor.spec)
    live_x = live_x[live_x.index >= start]
    ref_x = ref_x.iloc[int(card.get("warmup_bars", 0)) :]
    ref_pred = predictor.predict(reference)
    stored = load_predictions(live_dir(live_root, key.exchange, key.symbol, key.timeframe))
    stored = stored[(stored.index >= start) & (stored.index < end)] if len(stored) else stored
    if len(stored):
        live_pred = stored[predictor.outputs]
    else:
        log.info("no live predictions stored for %s: computing them from the store", key)
        live_pred = predictor.predict(live_candles)
        live_pred = live_pred[live_pred.index >= start]
    table = pd.concat(
        [
            compare(ref_x, live_x, kind="feature", psi_max=psi_max, ks_max=ks_max),
            compare(
                ref_pred[predictor.outputs],
                live_pred,
                kind="prediction",
                psi_max=psi_max,
                ks_max=ks_max,
            ),
        ],
        ignore_index=True,
    )
    report = DriftReport(
        model=predictor.info(),
        window=(start, end),
        reference_window=(reference.index[0], reference.index[-1] + td),
        table=table,
        hit_rate=hit_rates(live_pred, candles, horizon)
        | {"source": "stored" if len(stored) else "computed"},
        psi_max=psi_max,
        ks_max=ks_max,
        validation_hit_rate=validation,
    )
    if out is not None:
        report.write(
            out, pd.concat([ref_x, ref_pred], axis=1), pd.concat([live_x, live_pred], axis=1)
        )
    return report


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")
