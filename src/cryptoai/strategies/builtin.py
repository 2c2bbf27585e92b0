"""The built-in strategies, imported here so that they register by name."""

from cryptoai.strategies.bollinger_reversion import BollingerReversion
from cryptoai.strategies.buy_and_hold import BuyAndHold
from cryptoai.strategies.ema_cross import EmaCross
from cryptoai.strategies.model_signal import ModelSignal
from cryptoai.strategies.rsi_reversion import RsiReversion

__all__ = ["BollingerReversion", "BuyAndHold", "EmaCross", "ModelSignal", "RsiReversion"]
