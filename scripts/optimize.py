#!/usr/bin/env python
"""Optimize a strategy from a config: a thin wrapper over `cryptoai optimize` (same options).

    python scripts/optimize.py --config configs/optimize/ema_cross_grid.yaml [--smoke]
        [--workers N] [--storage URL] [--study NAME] [--n-trials N] [--out DIR]

Writes reports/NAME_YYYYMMDD[_N]/ (results.json, trials.csv, report.md, plots) and one MLflow
run; prints the top trials with the deflated Sharpe ratio and the PBO.
"""

import sys

from cryptoai.cli import main

if __name__ == "__main__":
    sys.exit(main(["optimize", *sys.argv[1:]]))
