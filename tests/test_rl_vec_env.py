"""VecTradingEnv: many TradingEnv episodes in one compiled step.

Two independent references: ``TradingEnv`` (sub-environment ``i`` must be
``TradingEnv(..., seed=seed + i)`` step for step) and ``run_vectorized`` (each finished
episode's final equity is the vectorized backtest of its bars under its actions, to 1e-9).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import ohlcv_frame

from cryptoai.backtest import ExecutionSettings, run_vectorized
from cryptoai.errors import BadInputError
from cryptoai.rl import TradingEnv, VecTradingEnv

COSTLY = ExecutionSettings(
    fee_bps=10.0, slippage_bps=5.0, leverage=3.0, maintenance_margin=0.01, funding_rate=0.0001
)
#: reads history from the episode's first bar: each episode's inputs are built at its reset
HISTORY = ExecutionSettings(fee_bps=10.0, vol_slippage=0.2, leverage=2.0, cost_model="impact")


def _funding(data: pd.DataFrame) -> pd.Series:
    times = data.index[::8]
    return pd.Series(np.linspace(-3e-4, 5e-4, len(times)), index=times)


@pytest.mark.parametrize(
    ("settings", "reward", "funded", "sliced"),
    [
        (COSTLY, "log_return", False, True),
        (COSTLY, "differential_sharpe", True, False),
        (HISTORY, "drawdown_penalized", False, False),
    ],
)
def test_each_sub_env_is_the_trading_env_and_the_backtest(settings, reward, funded, sliced):
    data = ohlcv_frame(900, seed=21)
    funding = _funding(data) if funded else None
    kw = dict(settings=settings, window=12, reward=reward, episode_length=90, funding=funding)
    vec = VecTradingEnv(data, n_envs=5, random_start=True, seed=7, **kw)
    assert vec._sliced is sliced
    envs = [TradingEnv(data, random_start=True, seed=7 + i, **kw) for i in range(5)]
    obs = vec.reset()
    for i, env in enumerate(envs):
        np.testing.assert_array_equal(obs[i], env.reset()[0])
    rng = np.random.default_rng(21)
    actions = np.repeat(rng.integers(0, 3, (120, 5)), 2, axis=0)  # runs and flips
    finished = 0
    for step in actions:
        obs, rewards, dones, infos = vec.step(step)
        for i, env in enumerate(envs):
            o, r, term, _, info = env.step(step[i])
            assert rewards[i] == pytest.approx(r, rel=1e-6, abs=1e-9)
            assert dones[i] == term
            if term:
                finished += 1
                got = infos[i]
                np.testing.assert_array_equal(got["terminal_observation"], o)
                assert got["final_equity"] == pytest.approx(info["equity"], rel=1e-12)
                first, last = got["bars"]
                assert (first, last) == (env._start, env._end)
                ref = run_vectorized(
                    data.iloc[first : last + 1], got["targets"], settings, funding=funding
                )
                assert got["final_equity"] == pytest.approx(ref.final_equity, rel=1e-9)
                assert got["fees"] == pytest.approx(ref.fills["fee"].sum(), rel=1e-9)
                assert got["episode"]["l"] == 90
                o, _ = env.reset()
            np.testing.assert_array_equal(obs[i], o)
    assert finished == 10  # two episodes of 90 steps each in 240 steps, per sub-env


def test_whole_window_continuous_episodes_match_run_vectorized():
    data = ohlcv_frame(400, seed=22)
    vec = VecTradingEnv(data, n_envs=3, settings=COSTLY, window=6, actions="continuous")
    vec.reset()
    rng = np.random.default_rng(22)
    steps = len(data) - vec.template.first_bar - 1
    actions = rng.uniform(-1.4, 1.4, size=(steps, 3, 1)).astype(np.float32)
    for a in actions:
        _, _, dones, infos = vec.step(a)
    assert dones.all()
    for i in range(3):
        targets = np.full(steps + 1, np.nan)
        targets[:steps] = np.clip(actions[:, i, 0].astype(np.float64), -1, 1)
        np.testing.assert_array_equal(infos[i]["targets"], targets)
        ref = run_vectorized(data.iloc[vec.template.first_bar :], targets, COSTLY)
        assert infos[i]["final_equity"] == pytest.approx(ref.final_equity, rel=1e-9)
        assert len(ref.trades) > 5


@pytest.mark.parametrize("reward", ["log_return", "differential_sharpe", "drawdown_penalized"])
def test_compiled_rewards_are_the_reward_objects(reward):
    """TradingEnv computes the built-in rewards inside its compiled step: the same numbers as
    the reward objects of cryptoai.rl.rewards applied to the equity of the infos."""
    from cryptoai.rl.rewards import make_reward

    env = TradingEnv(ohlcv_frame(300, seed=23), settings=COSTLY, window=5, reward=reward)
    obs, info = env.reset()
    equity, got = [info["equity"]], []
    for a in np.random.default_rng(23).integers(0, 3, 400):
        obs, r, term, _, info = env.step(a)
        equity.append(info["equity"])
        got.append(r)
        if term:
            break
    ref = make_reward(reward)
    ref.reset(equity[0])
    want = [ref.step(a, b) for a, b in zip(equity[:-1], equity[1:], strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert any(w != 0.0 for w in want)


def test_bad_arguments_are_one_line_errors():
    data = ohlcv_frame(200, seed=24)
    with pytest.raises(BadInputError, match="n_envs=0"):
        VecTradingEnv(data, n_envs=0)
    with pytest.raises(BadInputError, match="unknown reward"):
        VecTradingEnv(data, n_envs=2, reward="sortino")
    vec = VecTradingEnv(data, n_envs=2, window=4)
    with pytest.raises(BadInputError, match="reset"):
        vec.step(np.array([1, 1]))
    vec.reset()
    with pytest.raises(BadInputError, match="discrete3 actions"):
        vec.step(np.array([1, 3]))


@pytest.mark.slow
def test_sb3_ppo_trains_on_it():
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_checker import check_env  # noqa: F401 (SB3 importable)

    vec = VecTradingEnv(ohlcv_frame(600, seed=25), n_envs=4, window=8, episode_length=64,
                        random_start=True, seed=1)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PPO("MlpPolicy", vec, n_steps=32, batch_size=64, n_epochs=1, seed=1, device="cpu")
        model.learn(256)
    assert model.num_timesteps == 256
    assert len(model.ep_info_buffer) >= 4  # episodes of 64 steps were reported to SB3
