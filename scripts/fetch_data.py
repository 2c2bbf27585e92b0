#!/usr/bin/env python
"""Fetch candles into the raw store: a thin wrapper over `cryptoai fetch` (same options).

    python scripts/fetch_data.py --source binance --symbol BTC/USDT --timeframe 1h \
        --start 2020-01-01 --end 2024-12-31
"""

import sys

from cryptoai.cli import main

if __name__ == "__main__":
    sys.exit(main(["fetch", *sys.argv[1:]]))
