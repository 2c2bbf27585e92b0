# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Deployment
#
# From a notebook model to a running one, offline: train with tracking, register, promote to
# `champion`, predict on raw candles with `cryptoai.predict`, serve it with the FastAPI app and
# check `/predict` says the same, run the live loop for a few bars with paper trading on a clock
# we move ourselves, and ask whether the live window has drifted from the training window.
# Every step is the library's (docs/serving.md, docs/operations.md); the notebook only strings
# them together. The MLflow store is a SQLite file in this notebook's output folder.

# %% tags=["parameters"]
# Parameters (papermill replaces this cell's values; None = take it from the config).
# Relative paths are looked up from the working directory, then from the repository root.
config_path = "../configs/experiments/logreg_baseline.yaml"
symbol = None
timeframe = None
start = None
end = None
seed = 42
smoke = False  # True: a few hundred bars, tiny models, seconds per notebook
output_dir = "experiments/scratch"  # results land in {output_dir}/{notebook}/
store_root = None  # raw candle store (None: the config's dataset.store_root)
model_name = "btc-direction-nb"  # registered model name (in this notebook's own MLflow store)
paper_bars = 6  # bars the live loop predicts and paper-trades

# %%
import os

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient
from IPython.display import Markdown, display

import cryptoai as ca
from cryptoai.backtest import run_vectorized
from cryptoai.data.sources import make_source
from cryptoai.research import eda
from cryptoai.research.notebook import notebook_setup
from cryptoai.serve import LiveConfig, LiveLoop, ManualClock, PaperLedger, create_app, drift_report
from cryptoai.serve.live import load_predictions
from cryptoai.serve.paper import paper_settings
from cryptoai.tracking.registry import list_models, promote, register_model

session = notebook_setup(
    "07-deployment",
    config_path,
    symbol=symbol,
    timeframe=timeframe,
    start=start,
    end=end,
    seed=seed,
    smoke=smoke,
    output_dir=output_dir,
    store_root=store_root,
)
exp, cfg, out, d = session.exp, session.cfg, session.out, session.data
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{(out.dir / 'mlflow.db').resolve().as_posix()}"

# %% [markdown]
# ## Train with tracking, register, promote
#
# Notebooks skip the final refit by default; here it is the model we ship. `train` logs it
# with its **card** (feature spec, warm-up, label meaning);
# registering copies the card onto the version, and the `champion` alias is what serving reads.

# %%
tracked = cfg.tracking.model_copy(update={"experiment": "07-deployment", "log_model": True})
cfg = cfg.model_copy(update={"fit_final": True, "tracking": tracked})  # keep the final refit
result = ca.train(cfg, tracking=True, progress=False)
version = register_model(result.model_uri, model_name)
promote(model_name, version, "champion")
uri = f"models:/{model_name}@champion"
display(list_models(model_name)[["name", "version", "aliases", "label", "target", "warmup_bars"]])

# %% [markdown]
# ## `cryptoai.predict` on recent candles
#
# Raw candles in, one row per candle out; the first `warmup_bars` rows are NaN.

# %%
candles = eda.training_candles(cfg)
recent = candles.iloc[-400:][["open", "high", "low", "close", "volume"]]
predicted = ca.predict(recent, model=uri)
predicted.tail()

# %% [markdown]
# ## The API: `/predict` equals `cryptoai.predict`
#
# The FastAPI app in process (the same app `cryptoai serve` runs under uvicorn).

# %%
body = {
    "candles": [
        {"timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), **{c: float(r[c]) for c in recent}}
        for ts, r in recent.iterrows()
    ]
}
with TestClient(create_app(uri)) as client:
    health = client.get("/health").json()
    served = client.post("/predict", json=body).json()
api = pd.DataFrame(served["predictions"]).set_index("timestamp").astype(float)
same = np.allclose(
    api["proba_up"].to_numpy(), predicted["proba_up"].to_numpy(), rtol=0, atol=0, equal_nan=True
)
print(f"health: {health['status']}, model {health['model']}; /predict == predict: {same}")

# %% [markdown]
# ## Live loop with paper trading, on a clock we move
#
# The clock starts just after the training data ends; each step syncs the store, predicts the
# newly closed bar and paper-trades it through the backtester's kernel (decision at a bar's
# close, fill at the next open, the config's costs). The ledger equals `run_vectorized` over
# the same bars and decisions.

# %%
td = pd.Timedelta(d.timeframe)
clock = ManualClock(candles.index[-1] + 2 * td + pd.Timedelta(seconds=10))
live_root = out.dir / "live"
execution = ca.ExecutionSettings(fee_bps=10.0, slippage_bps=2.0)
live_cfg = LiveConfig(
    model=uri,
    symbol=d.symbol,
    timeframe=d.timeframe,
    store_root=cfg.data.store_root,
    live_root=live_root,
    paper=True,
    execution=execution,
    allow_short=True,
)
source = make_source(d.source, timeframe=d.timeframe)
loop = LiveLoop(live_cfg, source, clock)
for report in loop.run(max_bars=paper_bars):
    print(report)
ledger = PaperLedger.load(loop.folder)
ohlcv = ["open", "high", "low", "close", "volume"]
reference = run_vectorized(ledger.bars[ohlcv], ledger.bars["target"], paper_settings(execution))
print("ledger equity == run_vectorized:", np.array_equal(ledger.bars["equity"], reference.equity))
display(load_predictions(loop.folder)[["proba_up", "score", "target", "model_version"]])
display(ledger.bars[["open", "close", "target", "position", "equity"]])
ledger.fills

# %% [markdown]
# ## Drift: the live window against the training window
#
# PSI and KS of every feature and prediction, and the realized vs expected hit rate of the
# stored live predictions. `cryptoai drift` runs the same report from cron and exits non-zero
# past the thresholds.

# %%
drift = drift_report(
    loop.config.model,
    since=clock.now() - 200 * td,
    until=clock.now(),
    store_root=cfg.data.store_root,
    exchange=source.exchange,
    live_root=live_root,
    reference=candles,
    out=out.dir / "drift",
)
display(Markdown(f"**{drift.summary()}**"))
display(drift.table.round(4))

# %%
metrics = out.metrics(
    {
        "deploy.model_version": float(version),
        "deploy.api_equals_predict": float(same),
        "deploy.paper_bars": float(len(ledger.bars)),
        "deploy.paper_fills": float(len(ledger.fills)),
        "deploy.paper_equity": ledger.equity,
        "deploy.paper_equals_backtest": float(
            np.array_equal(ledger.bars["equity"], reference.equity)
        ),
        "deploy.drift_ok": float(drift.ok),
        "deploy.drift_psi_max": float(drift.table["psi"].max()),
    }
)
source.close()
session.close()
metrics
