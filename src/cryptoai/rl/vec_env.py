"""Many trading episodes stepped in one compiled call: a Stable-Baselines3 ``VecEnv``.

``VecTradingEnv(data, n_envs=64, ...)`` takes ``TradingEnv``'s arguments and runs ``n_envs``
copies of it side by side: ``step(actions)`` runs every sub-environment's decision through the
backtester's kernel (``_kernel.step``, as ``TradingEnv`` does) in one numba call
(``_steps.vec_step``), with the built-in rewards computed there too. Sub-environment ``i``
is ``TradingEnv(..., seed=seed + i)``: the same episode starts, observations, rewards and
equity for the same actions (tested), so each finished episode is the backtest
``run_vectorized`` gives on its bars with its actions. Finished sub-environments reset
themselves, as SB3 expects: the step's observation is the new episode's first, and the info
holds ``terminal_observation``, the finished episode's ``final_equity``, ``fees``,
``targets`` (one per bar, NaN at the last: the ``target`` of ``run_vectorized``), its
``bars`` (first decision bar and last bar, positions in ``data``) and ``episode`` (``r``
the summed reward, ``l`` the length, as SB3's ``Monitor`` writes it).

Episode market data: with settings that read no history of their own (no volatility
slippage or volatility sizing, fixed or maker/taker fees, no funding series, or funding at a
constant rate on regular bars) an episode's kernel inputs are a slice of those of the whole
data, used in place; otherwise each episode's are built at its reset, as ``TradingEnv``
builds them, into a buffer of ``n_envs`` x 9 x (longest episode + 1) floats.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env import VecEnv

from cryptoai.backtest import _kernel as k
from cryptoai.backtest._market import market_matrix, may_fund, params
from cryptoai.errors import BadInputError
from cryptoai.rl import _steps as fast
from cryptoai.rl.env import DISCRETE3, TradingEnv

#: fill rows one step can write (two bars: the decision close, the next open, the last close)
STEP_FILLS = 2 * k.FILL_HEADROOM


def _slices_are_episodes(env: TradingEnv) -> bool:
    """True when an episode's kernel inputs equal the whole data's cut to its bars."""
    cfg = env.settings
    if cfg.vol_slippage > 0.0 or cfg.size == "vol_target" or env.funding is not None:
        return False
    if cfg.cost_model not in ("fixed", "maker_taker"):
        return False  # spread, quote volume and fee-tier days are read per episode
    if cfg.funding_rate != 0.0:  # a constant rate accrues by the bar length of the episode
        steps = np.diff(env.data.index.asi8)
        return bool((steps == steps[0]).all()) if len(steps) else True
    return True


class VecTradingEnv(VecEnv):
    """``n_envs`` ``TradingEnv`` episodes stepped together (see the module docstring).

    The arguments after ``n_envs`` are ``TradingEnv``'s; ``seed`` seeds sub-environment
    ``i`` with ``seed + i`` (``seed()`` / SB3 do the same). Rewards: the built-in ones.
    """

    def __init__(
        self,
        data: pd.DataFrame,
        n_envs: int = 8,
        features: Any = None,
        settings: Any = None,
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
        if isinstance(n_envs, bool) or not isinstance(n_envs, int | np.integer) or n_envs < 1:
            raise BadInputError(f"n_envs={n_envs!r}: use a whole number >= 1")
        # one TradingEnv checks the arguments, builds the features and the spaces
        self.template = TradingEnv(
            data,
            features=features,
            settings=settings,
            window=window,
            reward=reward,
            actions=actions,
            episode_length=episode_length,
            random_start=random_start,
            reward_params=reward_params,
            funding=funding,
        )
        t = self.template
        code, param = fast.compiled_reward(t._reward)
        if code == fast.R_NONE:
            raise BadInputError(f"reward {reward!r}: VecTradingEnv computes built-in rewards only")
        self._reward = (code, param)
        self.render_mode = None  # read by VecEnv.__init__
        super().__init__(int(n_envs), t.observation_space, t.action_space)
        n = self.num_envs
        self.data, self.settings, self.actions = t.data, t.settings, t.actions
        self.window = t.window
        self._x = t._x
        self._times = t.data.index
        self._rngs = [seeding.np_random(None if seed is None else seed + i)[0] for i in range(n)]
        if self.template.episode_length is not None:
            width = self.template.episode_length + 1
        else:
            width = len(data) - t.first_bar
        cfg = self.settings
        if _slices_are_episodes(t):
            m = market_matrix(data, cfg)
            self._M = np.ascontiguousarray(np.vstack(m))[None]
            self._p0 = params(cfg, data.index, m, funded=may_fund(cfg))
            self._sliced = True
        else:
            self._M = np.zeros((n, k.N_MARKET, width))
            self._p0 = None
            self._sliced = False
        self._B = np.zeros((n, fast.N_BUFFER))
        self._acct = self._B[:, fast.B_ACCT : fast.B_REWARD]  # views, made once
        self._reward_col = self._B[:, fast.B_ACCT + fast.A_REWARD]
        self._F = np.empty((n, STEP_FILLS, k.N_FILL))
        self._out = np.empty((k.N_OUT, 0))
        self._rows = np.zeros(n, dtype=np.int64) if self._sliced else np.arange(n)
        self._offsets = np.zeros(n, dtype=np.int64)
        self._nbars = np.zeros(n, dtype=np.int64)
        self._starts = np.zeros(n, dtype=np.int64)
        self._js = np.zeros(n, dtype=np.int64)
        self._rec = np.full((n, width), np.nan)
        self._returns = np.zeros(n)  # summed rewards of the running episodes
        self._table = np.asarray(DISCRETE3)
        self._actions: np.ndarray | None = None
        self._obs: np.ndarray | None = None

    # ------------------------------------------------------------------ episodes
    def _start_episode(self, i: int, obs: np.ndarray) -> None:
        """A new episode for sub-environment ``i``: bounds, kernel inputs, first open."""
        t = self.template
        t._np_random = self._rngs[i]  # TradingEnv._bounds draws from the env's generator
        start, end = t._bounds()
        nb = end - start + 1
        cfg = self.settings
        if self._sliced:
            self._offsets[i] = start
            p = self._p0
        else:
            bars = self.data.iloc[start : end + 1]
            m = market_matrix(bars, cfg, t.funding)
            p = params(cfg, bars.index, m, funded=may_fund(cfg, t.funding))
            self._M[i, :, :nb] = np.vstack(m)
        b = self._B[i]
        b[:] = fast.buffer(cfg.initial_cash, p, *self._reward)
        self._starts[i], self._nbars[i], self._js[i] = start, nb, 0
        self._rec[i] = np.nan
        self._returns[i] = 0.0
        S, P = b[fast.B_STATE : fast.B_PARAMS], b[fast.B_PARAMS : fast.B_ACCT]
        m = self._M[self._rows[i], :, self._offsets[i] : self._offsets[i] + nb]
        k.step(S, self._F[i], P, m, self._out, -1, False, 0.0, k.K_MARKET, math.nan)
        equity = fast._mark(S, P, m, 0)
        b[fast.B_ACCT + fast.A_EQUITY] = equity
        fast.reward_reset(b[fast.B_REWARD + 2 :], equity, self._reward[0])
        obs[i] = fast.first_obs(S, P, m, self._x.reshape(-1), start, self.window, self._x.shape[1])

    def reset(self) -> np.ndarray:
        for i, s in enumerate(self._seeds):
            if s is not None:
                self._rngs[i] = seeding.np_random(s)[0]
        self._reset_seeds()
        self._reset_options()
        obs = np.empty((self.num_envs, *self.observation_space.shape), dtype=np.float32)
        for i in range(self.num_envs):
            self._start_episode(i, obs)
        self._obs = obs
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs.copy()

    # ------------------------------------------------------------------ stepping
    def _targets(self, actions: Any) -> np.ndarray:
        a = np.asarray(actions)
        if self.actions == "discrete3":
            a = a.reshape(self.num_envs)
            if a.dtype.kind not in "iu":
                a = a.astype(np.int64)
            if a.min() < 0 or a.max() > 2:
                raise BadInputError("discrete3 actions: use 0 (short), 1 (flat), 2 (long)")
            return self._table[a]
        t = a.astype(np.float64).reshape(self.num_envs)
        if not np.isfinite(t).all():
            raise BadInputError("continuous actions must be finite numbers")
        return np.clip(t, -1.0, 1.0)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        if self._obs is None:
            raise BadInputError("call reset() before step()")
        targets = self._targets(self._actions)
        n = self.num_envs
        obs = np.empty_like(self._obs)
        dones = np.zeros(n, dtype=bool)
        fast.vec_step(
            self._B,
            self._F,
            self._M,
            self._rows,
            self._offsets,
            self._nbars,
            self._starts,
            self._js,
            self._out,
            self._x,
            targets,
            self._rec,
            obs,
            dones,
        )
        rewards = self._reward_col.astype(np.float32)
        self._returns += self._reward_col
        infos: list[dict[str, Any]] = [{} for _ in range(n)]
        if dones.any():
            for i in np.flatnonzero(dones):
                infos[i] = self._finish(int(i), obs)
        self._obs = obs
        return obs, rewards, dones, infos

    def _finish(self, i: int, obs: np.ndarray) -> dict[str, Any]:
        """The finished episode of sub-environment ``i`` as its info; then a new episode."""
        a = self._B[i, fast.B_ACCT : fast.B_REWARD]
        start, nb, steps = int(self._starts[i]), int(self._nbars[i]), int(self._js[i])
        info = {
            "terminal_observation": obs[i].copy(),
            "final_equity": float(a[fast.A_EQUITY]),
            "fees": float(a[fast.A_FEES]),
            "funding": float(a[fast.A_FUNDING]),
            "targets": self._rec[i, :nb].copy(),
            "bars": (start, start + nb - 1),
            "episode": {"r": float(self._returns[i]), "l": steps},
            "TimeLimit.truncated": False,
        }
        self._start_episode(i, obs)
        return info

    # ------------------------------------------------------------------ the episodes
    def episode_data(self, i: int) -> pd.DataFrame:
        """The bars of sub-environment ``i``'s current episode."""
        start = int(self._starts[i])
        return self.data.iloc[start : start + int(self._nbars[i])]

    def episode_targets(self, i: int) -> pd.Series:
        """Targets given so far in sub-environment ``i``'s episode (NaN: none yet)."""
        nb = int(self._nbars[i])
        return pd.Series(self._rec[i, :nb].copy(), index=self.episode_data(i).index, name="target")

    def account(self) -> pd.DataFrame:
        """Each sub-environment's equity, position, fees and funding at its decision bar."""
        acct = self._acct
        return pd.DataFrame(
            {
                "equity": acct[:, fast.A_EQUITY],
                "position": acct[:, fast.A_UNITS],
                "fees": acct[:, fast.A_FEES],
                "funding": acct[:, fast.A_FUNDING],
                "bar": self._starts + self._js,
            }
        )

    # ------------------------------------------------------------------ VecEnv plumbing
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_acct", "_reward_col")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._acct = self._B[:, fast.B_ACCT : fast.B_REWARD]
        self._reward_col = self._B[:, fast.B_ACCT + fast.A_REWARD]

    def close(self) -> None:
        self._obs = None

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs):
        return [
            getattr(self, method_name)(*method_args, **method_kwargs)
            for _ in self._get_indices(indices)
        ]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
