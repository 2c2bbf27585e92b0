"""TradingEnv: the backtester's kernel one step at a time.

run_vectorized is the independent reference: for any action sequence the environment's
final equity must be the vectorized engine's on the same bars with those actions as the
target positions.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import ohlcv_frame

from cryptoai.backtest import ExecutionSettings, run_vectorized
from cryptoai.errors import BadInputError
from cryptoai.rl import TradingEnv

COSTLY = ExecutionSettings(
    fee_bps=10.0, slippage_bps=5.0, leverage=3.0, maintenance_margin=0.01, funding_rate=0.0001
)


def _play(env: TradingEnv, actions, seed: int | None = None):
    obs, info = env.reset(seed=seed)
    out = {"obs": [obs], "rewards": [], "infos": [info]}
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out["obs"].append(obs)
        out["rewards"].append(r)
        out["infos"].append(info)
        if term or trunc:
            break
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "settings",
    [
        COSTLY,
        ExecutionSettings(
            fee_bps=25.0, slippage_bps=10.0, size="fixed_fraction", size_value=0.5, leverage=2.0
        ),
    ],
)
def test_random_discrete_actions_match_run_vectorized(seed, settings):
    data = ohlcv_frame(700, seed=seed)
    env = TradingEnv(data, settings=settings, window=16, episode_length=300, random_start=True)
    rng = np.random.default_rng(seed)
    # long runs of each action as well as flips every bar
    actions = np.repeat(rng.integers(0, 3, 120), rng.integers(1, 6, 120))[:300]
    res = _play(env, actions, seed=seed)
    assert res["infos"][-1]["position"] == 0.0  # closed at the end
    targets = np.full(301, np.nan)
    targets[: len(actions)] = np.array([-1.0, 0.0, 1.0])[actions]
    ref = run_vectorized(env.episode_data(), targets, settings)
    assert len(ref.trades) > 10 and (ref.trades["side"] == "short").any()
    assert res["infos"][-1]["equity"] == pytest.approx(ref.final_equity, rel=1e-9)
    assert res["infos"][-1]["fees"] == pytest.approx(ref.fills["fee"].sum(), rel=1e-9)
    # every intermediate mark is the reference's equity at that close (funding included)
    marks = [i["equity"] for i in res["infos"][1:-1]]
    np.testing.assert_allclose(marks, ref.equity.to_numpy()[1:-1], rtol=1e-12)


def test_continuous_actions_match_run_vectorized():
    data = ohlcv_frame(500, seed=4)
    env = TradingEnv(data, settings=COSTLY, window=8, actions="continuous")
    rng = np.random.default_rng(4)
    actions = rng.uniform(-1.3, 1.3, size=(600, 1)).astype(np.float32)  # clipped to [-1, 1]
    res = _play(env, actions)
    n = len(res["rewards"])
    assert n == len(env.episode_data()) - 1  # the whole window
    targets = np.full(n + 1, np.nan)
    targets[:n] = np.clip(actions[:n, 0].astype(np.float64), -1, 1)
    ref = run_vectorized(env.episode_data(), targets, COSTLY)
    assert res["infos"][-1]["equity"] == pytest.approx(ref.final_equity, rel=1e-9)
    pd.testing.assert_series_equal(
        env.episode_targets(), pd.Series(targets, index=ref.equity.index, name="target")
    )
    assert env.episode_result().final_equity == pytest.approx(ref.final_equity, rel=1e-12)


def test_flat_before_the_episode_is_the_same_backtest():
    """A reference over all bars up to the episode's end, flat before its first decision."""
    data = ohlcv_frame(400, seed=5)
    settings = ExecutionSettings(fee_bps=10, slippage_bps=3, leverage=2)
    env = TradingEnv(data, settings=settings, window=10, episode_length=150, random_start=True)
    actions = np.random.default_rng(5).integers(0, 3, 150)
    res = _play(env, actions, seed=11)
    start, end = (data.index.get_loc(t) for t in env.episode_bounds)
    assert start > 9
    targets = np.zeros(end + 1)
    targets[start:end] = np.array([-1.0, 0.0, 1.0])[actions]
    targets[end] = np.nan
    ref = run_vectorized(data.iloc[: end + 1], targets, settings)
    assert res["infos"][-1]["equity"] == pytest.approx(ref.final_equity, rel=1e-9)


def test_info_timestamps_and_log_return_rewards():
    data = ohlcv_frame(300, seed=6)
    env = TradingEnv(data, settings=COSTLY, window=5, episode_length=50, random_start=True)
    res = _play(env, [2] * 20 + [0] * 30, seed=3)
    start = data.index.get_loc(res["infos"][0]["timestamp"])
    assert start >= 5 and env.first_bar == 5  # log_returns(1): 1 warm-up row, + window 5 - 1
    assert [i["timestamp"] for i in res["infos"]] == list(data.index[start : start + 51])
    eq = np.array([i["equity"] for i in res["infos"]])
    assert eq[0] == COSTLY.initial_cash
    assert sum(res["rewards"]) == pytest.approx(math.log(eq[-1] / eq[0]), rel=1e-9)
    assert res["infos"][25]["position"] < 0 < res["infos"][5]["position"]


def test_observation_is_the_feature_window_and_the_account():
    data = ohlcv_frame(200, seed=7)
    feats = pd.DataFrame({"a": np.arange(200.0), "b": -np.arange(200.0)}, index=data.index)
    feats.iloc[:3] = np.nan
    env = TradingEnv(data, features=feats, window=4, settings=COSTLY)
    obs, info = env.reset()
    assert info["timestamp"] == data.index[6]  # 3 warm-up rows, then a window of 4
    np.testing.assert_array_equal(obs[:8], [3, -3, 4, -4, 5, -5, 6, -6])
    assert obs[8:].tolist() == [0.0, 0.0]
    obs, *_ = env.step(2)
    obs, _, _, _, info = env.step(2)
    close = data["close"].iloc[8]
    assert obs[8] == pytest.approx(info["position"] * close / info["equity"], rel=1e-6)
    assert 2.5 < obs[8] < 3.05  # long at 3x leverage


def test_no_bar_past_the_training_window_is_read():
    full = ohlcv_frame(600, seed=8)
    end = 400
    spoiled = full.copy()
    spoiled.iloc[end:, :4] *= 1.5  # every price after the training window
    spoiled.iloc[end:, 4] *= 7.0
    from cryptoai.rl import feature_frame

    runs = []
    for frame in (full, spoiled):
        feats = feature_frame(frame, "configs/features/minimal.yaml")  # on all bars
        env = TradingEnv(
            frame.iloc[:end],
            features=feats,
            settings=COSTLY,
            window=12,
            episode_length=100,
            random_start=True,
        )
        rng = np.random.default_rng(0)
        episodes = [_play(env, rng.integers(0, 3, 100), seed=s) for s in range(6)]
        runs.append(episodes)
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(np.array(a["obs"]), np.array(b["obs"]))
        assert a["rewards"] == b["rewards"]
    ends = {ep["infos"][-1]["bar"] for ep in runs[0]}
    assert max(ends) <= end - 1


def test_random_start_is_seeded():
    env = TradingEnv(ohlcv_frame(500, seed=9), window=8, episode_length=50, random_start=True)
    starts = [env.reset(seed=s)[1]["timestamp"] for s in (1, 1, 2, 3)]
    assert starts[0] == starts[1] and len(set(starts)) == 3
    env2 = TradingEnv(
        ohlcv_frame(500, seed=9), window=8, episode_length=50, random_start=True, seed=1
    )
    assert env2.reset()[1]["timestamp"] == starts[0]
    whole = TradingEnv(ohlcv_frame(500, seed=9), window=8)
    assert whole.reset(seed=5)[1]["bar"] == whole.first_bar == 8


@pytest.mark.parametrize("actions", ["discrete3", "continuous"])
@pytest.mark.parametrize("reward", ["log_return", "differential_sharpe", "drawdown_penalized"])
def test_gymnasium_env_checker(actions, reward):
    from gymnasium.utils.env_checker import check_env

    env = TradingEnv(
        ohlcv_frame(300, seed=10),
        window=8,
        episode_length=40,
        random_start=True,
        actions=actions,
        reward=reward,
        settings=COSTLY,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded Box and the missing spec are warnings only
        check_env(env, skip_render_check=True)


def test_ruin_ends_the_episode():
    data = ohlcv_frame(400, seed=12)
    data = data.copy()
    i = 200
    data.iloc[i:, :4] *= 0.5  # a crash: a 3x long is liquidated at the gap
    data.iloc[i, 1] = data.iloc[i - 1, 3] * 0.5  # keep the OHLC invariants at the gap bar
    data.iloc[i, 0] = data.iloc[i, 1]
    env = TradingEnv(data, window=4, settings=ExecutionSettings(leverage=3.0))
    res = _play(env, [2] * 400)
    assert res["infos"][-1]["equity"] <= 1e-6
    assert len(res["rewards"]) < 400 and np.isfinite(res["rewards"]).all()


def test_bad_arguments_are_one_line_errors():
    data = ohlcv_frame(100, seed=13)
    cases = [
        ({"reward": "sortino"}, "unknown reward 'sortino'"),
        ({"actions": "discrete5"}, "unknown actions"),
        ({"window": 200}, "leaves no bar to trade"),
        ({"window": 10, "episode_length": 500}, "episode_length 500 is longer"),
        ({"reward": "differential_sharpe", "reward_params": {"eta": 2}}, "eta=2"),
    ]
    for kwargs, text in cases:
        with pytest.raises(BadInputError, match=text) as err:
            TradingEnv(data, **kwargs)
        assert "\n" not in str(err.value)
    env = TradingEnv(data, window=4)
    with pytest.raises(BadInputError, match="reset"):
        env.step(1)
    env.reset()
    with pytest.raises(BadInputError, match="discrete3 action"):
        env.step(3)


def test_a_pickled_env_continues_its_episode_exactly():
    """Checkpoints pickle the training environment mid-episode; the copy must go on as the
    original does (its state lives in one buffer that views must follow)."""
    import pickle

    env = TradingEnv(ohlcv_frame(300, seed=14), settings=COSTLY, window=6, episode_length=80,
                     random_start=True, seed=2)  # fmt: skip
    actions = np.random.default_rng(14).integers(0, 3, 80)
    env.reset()
    for a in actions[:30]:
        env.step(a)
    copy = pickle.loads(pickle.dumps(env))
    for env_ in (env, copy):
        for a in actions[30:]:
            obs, r, term, _, info = env_.step(a)
        assert term
    assert copy.episode_result().final_equity == env.episode_result().final_equity
    np.testing.assert_array_equal(copy.episode_targets(), env.episode_targets())
