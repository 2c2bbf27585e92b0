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
# # 08 · Reinforcement learning
#
# Does a PPO agent that trades on net-of-cost equity beat **buy-and-hold** and the
# **supervised baseline** (the experiment's logistic regression traded by `model_signal`) on
# bars it never saw? The agent trains in `cryptoai.rl.TradingEnv`, a gymnasium environment that
# runs the backtester's own execution kernel one decision at a time (fill at the next open,
# fees, slippage), on the training window of a walk-forward fold of `configs/rl/ppo.yaml`, and
# is evaluated on the test window after it. All three are backtests of the same bars with the
# same execution settings. In smoke mode the agent trains a few thousand steps: a pipeline
# check, not evidence of an edge.

# %% tags=["parameters"]
# Parameters (papermill replaces this cell's values; None = take it from the config).
# Relative paths are looked up from the working directory, then from the repository root.
config_path = "../configs/experiments/logreg_baseline.yaml"
symbol = None
timeframe = None
start = None
end = None
seed = 42
smoke = False  # True: the RL config's smoke bars and a few thousand PPO steps: seconds
output_dir = "experiments/scratch"  # results land in {output_dir}/{notebook}/
store_root = None  # raw candle store (None: the config's dataset.store_root)
rl_config = "../configs/rl/ppo.yaml"  # the agent: algorithm, bucket, costs, walk-forward fold
timesteps = 2048  # PPO steps in smoke mode (None: the config's smoke_timesteps)
eval_bars = 744  # test window after the training window (31 days of 1h bars: Sharpe needs 30)

# %% [markdown]
# The setup: the experiment config gives the dataset (with the parameters above on top), the
# supervised model and its `model_signal` thresholds; the RL config gives the agent, the
# horizon bucket (window, reward, costs) and the walk-forward fold. Its data is replaced by the
# notebook's dataset, so the agent and the supervised model see the same candles, and its
# fold by one split whose test window is the last `eval_bars` bars (`None`: the config's fold),
# long enough for the annualized metrics.

# %%
import matplotlib.pyplot as plt
import pandas as pd
import yaml

import cryptoai as ca
from cryptoai.backtest.metrics import compute_metrics
from cryptoai.research import eda
from cryptoai.research.notebook import notebook_setup
from cryptoai.rl.config import resolve
from cryptoai.rl.training import HEADLINE, model_signal_baseline, train_rl

session = notebook_setup(
    "08-reinforcement-learning",
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

rl_cfg = yaml.safe_load(eda.resolve_path(rl_config).read_text())
for key in ("features", "buckets_file"):
    rl_cfg[key] = str(eda.resolve_path(rl_cfg[key]))
rl_cfg["data"] = {
    "source": d.source,
    "symbol": d.symbol,
    "timeframe": d.timeframe,
    "start": str(d.start),
    "end": str(d.end),
    "store_root": str(d.store_root),
}
rl_cfg["seed"] = seed
if eval_bars is not None:
    rl_cfg["eval"] = {"n_splits": 1, "fold": -1, "test_size": int(eval_bars)}
if timesteps is not None:
    rl_cfg["smoke_timesteps"] = int(timesteps)
res, _ = resolve(rl_cfg)
print(
    f"{res.config.algo.upper()} on {d.symbol} {res.timeframe}, bucket {res.config.bucket}:"
    f" window {res.window}, reward {res.reward}, episodes of {res.episode_length} steps;"
    f" fees {res.settings.fee_bps} bps, slippage {res.settings.slippage_bps} bps"
)

# %% [markdown]
# ## Train the agent
#
# `train_rl` cuts the fold's training window (the agent never sees a bar after it), trains
# with random episode starts, then runs the deterministic policy over the test window once.
# Its metrics are `run_vectorized` on the evaluation bars with the agent's actions (the
# environment's own equity is checked against it), beside buy-and-hold and flat.

# %%
agent_dir = out.dir / "agent"
rl = train_rl(
    rl_cfg,
    smoke=smoke,
    tracking=False,
    progress=False,
    out=agent_dir,
    checkpoint_dir=session.work_dir / "rl",
)
bars = rl.eval_bars
print(
    f"trained {rl.timesteps:,} steps on {rl.train_window[0]} .. {rl.train_window[1]};"
    f" evaluated on {len(bars):,} bars {rl.eval_window[0]} .. {rl.eval_window[1]}"
)
rl.eval_targets.to_frame().to_csv(out.dir / "agent_targets.csv")

# %% [markdown]
# ## The supervised baseline
#
# The experiment's model (`cryptoai.train`, tracking off) under purged walk-forward validation
# on the same bars, with one test block: the agent's evaluation window. Its out-of-sample
# probabilities there come from a model fitted on the bars before it, and `model_signal`
# trades them with the experiment's thresholds and **the agent's execution settings**.

# %%
first, last = pd.Timestamp(rl.train_window[0]), bars.index[-1]
sup_cfg = cfg.model_copy(
    update={
        "smoke": False,
        "data": cfg.data.model_copy(
            update={"start": str(first), "end": str(last + (bars.index[1] - bars.index[0]))}
        ),
        "validation": cfg.validation.model_copy(
            update={"n_splits": 1, "test_size": len(bars) - 1, "scheme": "expanding"}
        ),
    }
)
supervised = ca.train(sup_cfg, tracking=False, progress=False)
proba = supervised.predictions["proba_1"]
assert proba.index.equals(bars.index[:-1]), "the test block is the agent's evaluation window"
signal_metrics, signal_result = model_signal_baseline(
    bars, proba, res.settings, exp.backtest.params
)
print(
    f"{exp.model.name}: balanced accuracy {supervised.aggregate['balanced_accuracy']:.3f} on"
    f" the {len(proba):,} evaluation bars; model_signal {exp.backtest.params}"
)

# %% [markdown]
# ## Agent vs buy-and-hold vs the supervised model
#
# Backtest metrics of the evaluation episode (net of fees and slippage).

# %%
metrics = {**rl.metrics, "model_signal": signal_metrics}
table = pd.DataFrame({who: {m: metrics[who][m] for m in HEADLINE} for who in metrics})
table

# %% [markdown]
# Equity curves on the evaluation window, each a backtest of the same bars.

# %%
from cryptoai.backtest import run_vectorized

hold = pd.Series(1.0, index=bars.index)
hold.iloc[-1] = float("nan")
curves = {
    "agent": run_vectorized(bars, rl.eval_targets, res.settings).equity,
    "buy and hold": run_vectorized(bars, hold, res.settings).equity,
    "model_signal": signal_result.equity,
}
fig, ax = plt.subplots(figsize=(10, 4))
for name, curve in curves.items():
    ax.plot(curve.index, curve.to_numpy(), label=name, lw=1.2)
ax.set_title("Evaluation window: equity after costs")
ax.set_ylabel("equity")
ax.legend()
session.show(fig, "equity")
plt.close(fig)
assert (
    compute_metrics(run_vectorized(bars, rl.eval_targets, res.settings))["total_return"]
    == (metrics["agent"]["total_return"])
)

# %% [markdown]
# ## Reproducibility
#
# Training runs on CPU with deterministic torch algorithms and one seed for everything
# (docs/rl.md). Run again with the same seed, the agent takes the same actions and every
# metric is the same number (the two `metrics.json` files are identical bytes).

# %%
again = train_rl(
    rl_cfg,
    smoke=smoke,
    tracking=False,
    progress=False,
    out=session.work_dir / "again",
    checkpoint_dir=session.work_dir / "rl-again",
)
# metrics.json holds every metric of every row (NaN as null): byte for byte the same file
same_metrics = (again.out_dir / "metrics.json").read_bytes() == (
    agent_dir / "metrics.json"
).read_bytes()
same = same_metrics and again.eval_targets.equals(rl.eval_targets)
print(f"seed {seed}, second run: {'identical metrics and actions' if same else 'DIFFERENT'}")

# %% [markdown]
# ## Results
#
# `metrics.json`: `rl.<who>.<metric>` for the agent, buy-and-hold, flat and the supervised
# `model_signal` baseline; the agent's own `agent/metrics.json` and its evaluation actions
# (`agent_targets.csv`, the `target` of `run_vectorized` that reproduces the episode).

# %%
values = {
    f"{who}.{m}": float(v) for who in metrics for m, v in metrics[who].items() if m in HEADLINE
}
values.update({"timesteps": rl.timesteps, "eval_bars": len(bars), "reproducible": float(same)})
out.metrics(values, prefix="rl.")
session.close()
