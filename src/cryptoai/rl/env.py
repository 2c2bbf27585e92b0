"""A gymnasium trading environment driven by the backtester's execution kernel.

An episode is a backtest run one decision at a time. At reset the environment slices the
episode's bars out of ``data`` (its first decision bar to its last bar), builds the kernel's
market matrix and parameter vector from them exactly as the engines do, and creates a fresh
kernel state. Each ``step(action)`` turns the action into a target position and calls the
kernel's documented per-bar entry point, ``_kernel.step`` (the one the event engine uses):
the close of the decision bar (the order is placed there) and the open of the next bar
(the order fills there, with the same fees, slippage, sizing, leverage, funding and
liquidation). The last step also runs the episode's last close, where the position is
closed as ``close_at_end`` does. So for any action sequence the final equity is the one
``run_vectorized`` gives on the episode's bars with those actions as target positions, and a
step costs O(1) whatever the episode's length.

Observations are the last ``window`` rows of the feature frame (causal: row t uses bars up
to t only) followed by the signed exposure (position value / equity) and the unrealized
P&L (/ equity) at the decision bar's close. Nothing after the last bar of ``data`` exists
for the environment: hand it the training window only.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium import spaces

from cryptoai.backtest import _kernel as k
from cryptoai.backtest._assemble import build_result
from cryptoai.backtest._market import check_data, market_matrix, may_fund, params
from cryptoai.backtest.result import BacktestResult
from cryptoai.backtest.settings import ExecutionSettings, make_settings
from cryptoai.errors import BadInputError
from cryptoai.rl import _steps as fast
from cryptoai.rl.rewards import make_reward

log = logging.getLogger(__name__)

ACTIONS = ("discrete3", "continuous")
#: discrete3 action -> target position (short / flat / long)
DISCRETE3 = (-1.0, 0.0, 1.0)
#: the feature spec used when none is given: one-bar log returns
DEFAULT_FEATURES = {"features": [{"name": "log_returns", "params": {"period": 1}}]}
N_ACCOUNT = 2  # observation entries after the features: exposure, unrealized P&L


def feature_frame(
    data: pd.DataFrame, features: Any = None, *, what: str = "features"
) -> pd.DataFrame:
    """The feature frame aligned to ``data``: built from a spec (path, ``FeatureSpec`` or
    ``None`` for the default) or a precomputed frame reindexed to ``data``'s bars."""
    if isinstance(features, pd.DataFrame):
        frame = features
        if not frame.index.equals(data.index):
            missing = data.index.difference(frame.index)
            if len(missing):
                raise BadInputError(
                    f"{what} frame lacks {len(missing)} of the data's bars (first {missing[0]}):"
                    " compute the features on the same bars"
                )
            frame = frame.reindex(data.index)
        if frame.shape[1] == 0:
            raise BadInputError(f"{what} frame has no columns: give at least one feature")
        return frame
    from cryptoai.features.engineering import build_features
    from cryptoai.features.spec import FeatureSpec

    if features is None:
        features = FeatureSpec.model_validate(DEFAULT_FEATURES)
    elif not isinstance(features, FeatureSpec | str | Path):
        raise BadInputError(
            f"{what} must be a spec path, a FeatureSpec or a DataFrame, got "
            f"{type(features).__name__}"
        )
    return build_features(data, features)


class TradingEnv(gym.Env):
    """Trade one instrument, one decision per bar, on the backtester's execution model.

    ``data``: OHLCV bars (the training window: nothing past its last bar is ever read).
    ``features``: a feature spec path, a ``FeatureSpec``, a precomputed frame (e.g. built on
    a longer history, causal, then cut to ``data``) or ``None`` (one-bar log returns).
    ``settings``: ``ExecutionSettings`` (or a dict): costs, fill timing, sizing, leverage,
    funding, exits. ``actions``: ``discrete3`` (0 short, 1 flat, 2 long) or ``continuous``
    (target exposure in [-1, 1], times the settings' leverage). ``reward``: a name from
    ``cryptoai.rl.rewards.REWARDS`` (``reward_params`` go to it). ``episode_length``: steps
    per episode (``None``: to the last bar); ``random_start``: a random first decision bar
    drawn from the environment's seeded generator (``reset(seed=...)`` or ``seed``).
    ``funding``: a funding-rate series, as for ``run_vectorized``.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        data: pd.DataFrame,
        features: Any = None,
        settings: ExecutionSettings | dict | None = None,
        window: int = 32,
        reward: str = "log_return",
        actions: str = "discrete3",
        episode_length: int | None = None,
        random_start: bool = False,
        seed: int | None = None,
        *,
        reward_params: dict[str, float] | None = None,
        funding: pd.Series | None = None,
    ) -> None:
        super().__init__()
        check_data(data)
        if actions not in ACTIONS:
            raise BadInputError(f"unknown actions {actions!r}: use one of {', '.join(ACTIONS)}")
        if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
            raise BadInputError(f"window={window!r}: use a whole number of bars >= 1")
        self.data = data
        self.settings = make_settings(settings)
        self.window = int(window)
        self.actions = actions
        self.reward_name = reward
        self.reward_params = dict(reward_params or {})
        self._reward = make_reward(reward, **self.reward_params)
        self._fast_reward = fast.compiled_reward(self._reward)
        self.random_start = bool(random_start)
        self.funding = funding
        self._seed = seed

        frame = feature_frame(data, features)
        self.feature_names = [str(c) for c in frame.columns]
        try:
            x = frame.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise BadInputError("features must be numeric columns") from None
        complete = np.isfinite(x).all(axis=1)
        if not complete.any():
            raise BadInputError(
                f"no bar of the {len(data)} has every feature known: load more history than"
                " the longest feature window"
            )
        warm = int(np.argmax(complete))
        late = int((~complete[warm:]).sum())
        if late:
            log.warning("%d bars after the warm-up have NaN features: observed as 0", late)
            x = np.where(np.isfinite(x), x, 0.0)
        self._x = np.ascontiguousarray(x, dtype=np.float32)
        self._xf = self._x.reshape(-1)  # a window is a contiguous slice of the rows
        self._n_features = x.shape[1]
        n = len(data)
        # first decision bar: `window` complete feature rows end there
        self.first_bar = warm + self.window - 1
        room = n - 1 - self.first_bar  # steps from the first decision bar to the last bar
        if room < 1:
            raise BadInputError(
                f"window {self.window} after a feature warm-up of {warm} bars leaves no bar to"
                f" trade in {n} bars: shorten the window or load more data"
            )
        if episode_length is not None:
            if (
                isinstance(episode_length, bool)
                or not isinstance(episode_length, int | np.integer)
                or episode_length < 1
            ):
                raise BadInputError(f"episode_length={episode_length!r}: use a whole number >= 1")
            if episode_length > room:
                raise BadInputError(
                    f"episode_length {episode_length} is longer than the {room} steps the data"
                    f" holds after the window and warm-up: shorten it or load more data"
                )
        self.episode_length = None if episode_length is None else int(episode_length)

        size = self.window * self._n_features + N_ACCOUNT
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)
        if actions == "discrete3":
            self.action_space: spaces.Space = spaces.Discrete(3)
        else:
            self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._obs_size = size
        #: discrete3 actions -> targets (a dict: numpy integers hash as ints)
        self._discrete = dict(enumerate(DISCRETE3)) if actions == "discrete3" else {}
        self._times: list[pd.Timestamp] | None = None
        self._started = False
        self._done = True

    # ------------------------------------------------------------------ episode bounds
    def _bounds(self) -> tuple[int, int]:
        """First decision bar and last bar (positions in ``data``) of a new episode."""
        n = len(self.data)
        length = self.episode_length
        last_start = n - 1 - (length or 1)
        start = self.first_bar
        if self.random_start and last_start > start:
            start = int(self.np_random.integers(start, last_start + 1))
        end = n - 1 if length is None else start + length
        return start, end

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None
        super().reset(seed=seed)
        start, end = self._bounds()
        self._start, self._end = start, end
        bars = self.data.iloc[start : end + 1]
        cfg = self.settings
        m = market_matrix(bars, cfg, self.funding)
        p = params(cfg, bars.index, m, funded=may_fund(cfg, self.funding))
        # one 2-D array, as the event engine hands it to the compiled step
        self._m = np.ascontiguousarray(np.vstack(m))
        nb = len(bars)
        # kernel state, parameters and account in one buffer (`_steps.buffer`), seen as views
        self._b = fast.buffer(cfg.initial_cash, p, *self._fast_reward)
        self._views()
        self._f = np.empty((min(2 * nb, 1 << 14) + 2 * k.FILL_HEADROOM, k.N_FILL))
        self._room = self._f.shape[0] - 2 * k.FILL_HEADROOM  # a step runs at most two bars
        self._out = np.empty((k.N_OUT, nb))
        self._targets = np.full(nb, np.nan)
        if self._times is None:  # Timestamps for the infos, once (pandas boxing is slow)
            self._times = self.data.index.tolist()
        self._last_target = 0.0  # as in the engines: an order only when the target changes
        self._j = 0  # decision bar, relative to the episode's first bar
        self._nf = k.step(
            self._s, self._f, self._p, self._m, self._out, -1, False, 0.0, k.K_MARKET, math.nan
        )  # the first open: nothing is pending yet
        self._equity = float(fast._mark(self._s, self._p, self._m, 0))
        self._acct[fast.A_EQUITY] = self._equity
        self._position = self._fees = self._funding = 0.0
        self._reward.reset(self._equity)
        fast.reward_reset(self._b[fast.B_REWARD + 2 :], self._equity, self._fast_reward[0])
        self._started = True
        self._done = False
        obs = fast.first_obs(
            self._s, self._p, self._m, self._xf, start, self.window, self._n_features
        )
        return obs, self._info(0)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._done:
            if not self._started:
                raise BadInputError("call reset() before step()")
            raise BadInputError("the episode has ended: call reset() to start a new one")
        try:
            target = self._discrete[action]  # discrete3: ints and numpy integers
        except (KeyError, TypeError):
            target = self.target_of(action)
        j = self._j
        if self._nf > self._room:
            self._f = k.grow(self._f)
            self._room = self._f.shape[0] - 2 * k.FILL_HEADROOM
        obs = np.empty(self._obs_size, dtype=np.float32)
        # close of the decision bar, open of the next (and the last close), mark, observation
        fast.env_step(
            self._b,
            self._f,
            self._m,
            self._out,
            self._x,
            obs,
            self._targets,
            j,
            target,
            self._start + j,
        )
        equity, self._position, self._fees, self._funding, done, nf, self._last_target, reward = (
            self._acct.tolist()
        )
        self._nf = int(nf)
        self._j = j = j + 1
        if self._fast_reward[0] == fast.R_NONE:
            reward = self._reward.step(self._equity, equity)
        self._equity = equity
        self._done = terminated = done != 0.0
        return obs, reward, terminated, False, self._info(j)

    # ------------------------------------------------------------------ helpers
    def _views(self) -> None:
        """State, parameters and account: views of the one buffer the compiled step writes."""
        b = self._b
        self._s = b[fast.B_STATE : fast.B_PARAMS]
        self._p = b[fast.B_PARAMS : fast.B_ACCT]
        self._acct = b[fast.B_ACCT : fast.B_REWARD]

    def __getstate__(self) -> dict[str, Any]:
        # a pickled view is a copy of its own: drop them and take them again from the buffer
        # (checkpoints pickle the training environment mid-episode)
        return {k: v for k, v in self.__dict__.items() if k not in ("_s", "_p", "_acct")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "_b" in state:
            self._views()

    def target_of(self, action: Any) -> float:
        """The target position an action stands for (what the kernel is given)."""
        if self.actions == "discrete3":
            if isinstance(action, int | np.integer):
                a = int(action)
            else:
                a = int(np.asarray(action).reshape(-1)[0])
            if not 0 <= a <= 2:
                raise BadInputError(f"discrete3 action {action!r}: use 0 (short), 1 (flat), 2")
            return DISCRETE3[a]
        t = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
        if not math.isfinite(t):
            raise BadInputError(f"continuous action {action!r} is not a finite number")
        return min(max(t, -1.0), 1.0)

    def _info(self, j: int) -> dict[str, Any]:
        return {
            "timestamp": self._times[self._start + j],
            "equity": self._equity,
            "position": self._position,
            "fees": self._fees,
            "funding": self._funding,
            "target": self._last_target,
            "bar": self._start + j,
        }

    # ------------------------------------------------------------------ the episode
    @property
    def episode_bounds(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First decision bar and last bar of the current episode."""
        self._need_reset()
        return self.data.index[self._start], self.data.index[self._end]

    def episode_data(self) -> pd.DataFrame:
        """The current episode's bars (its first decision bar to its last bar)."""
        self._need_reset()
        return self.data.iloc[self._start : self._end + 1]

    def episode_targets(self) -> pd.Series:
        """Targets given so far, at their decision bars (NaN where none was given yet): the
        ``target`` of ``run_vectorized(episode_data(), ...)`` that reproduces the episode."""
        self._need_reset()
        return pd.Series(self._targets.copy(), index=self.episode_data().index, name="target")

    def episode_result(self) -> BacktestResult:
        """The finished episode as a ``BacktestResult`` (from the kernel's own arrays)."""
        self._need_reset()
        if not self._done or self._j != self._m.shape[1] - 1:
            raise BadInputError("the episode has not reached its last bar: step to the end first")
        return build_result(
            self.episode_data().index,
            self._f[: self._nf].copy(),
            self._out.copy(),
            self._s,
            self.settings,
            name="rl-episode",
            extra_settings={"engine": "rl"},
        )

    def _need_reset(self) -> None:
        if not self._started:
            raise BadInputError("call reset() first: no episode has started")
