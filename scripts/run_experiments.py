#!/usr/bin/env python
"""Run experiment configs end to end: a thin wrapper over `cryptoai run` (same options).

    python scripts/run_experiments.py configs/experiments/*.yaml [--smoke] [--jobs N]

Each config's notebooks execute into experiments/experiment_YYYYMMDD_NAME/ and one MLflow run
per config records them (each notebook as a nested run). Exit code 1 if any config failed.
"""

import sys

from cryptoai.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
