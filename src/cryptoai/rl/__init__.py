"""Reinforcement learning: a gymnasium trading environment on the backtester's execution
kernel (``VecTradingEnv``: many of its episodes in one compiled step), rewards, bucket presets and config-driven training with Stable-Baselines3.

Names are imported on first use, so ``import cryptoai.rl`` loads neither gymnasium nor torch.
"""

from __future__ import annotations

from cryptoai._lazy import lazy_exports

_EXPORTS = {
    "TradingEnv": "cryptoai.rl.env",
    "VecTradingEnv": "cryptoai.rl.vec_env",
    "feature_frame": "cryptoai.rl.env",
    "REWARDS": "cryptoai.rl.rewards",
    "make_reward": "cryptoai.rl.rewards",
    "RLConfig": "cryptoai.rl.config",
    "load_rl_config": "cryptoai.rl.config",
    "load_buckets": "cryptoai.rl.config",
    "train_rl": "cryptoai.rl.training",
    "RLResult": "cryptoai.rl.training",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
