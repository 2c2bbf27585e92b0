"""cryptoai: machine-learning trading research on crypto markets."""

__version__ = "0.1.0"
