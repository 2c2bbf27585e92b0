"""One seed for every random number generator a run touches, so reruns give identical numbers."""

from __future__ import annotations

import os
import random
import sys

import numpy as np


def seed_everything(seed: int) -> dict[str, int]:
    """Seed Python's ``random``, NumPy's global generator and, when loaded, torch.

    Models take their own ``random_state`` as well (scikit-learn, xgboost, and lightning's
    ``seed_everything`` inside the sequence models), which is what makes them repeatable;
    this covers any library code that draws from the global generators. Returns the seeds
    to record with the run.
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ["PYTHONHASHSEED"] = str(seed)  # for worker processes started from here
    seeds = {"python": seed, "numpy": seed}
    if "torch" in sys.modules:  # seeding must not be the reason torch gets imported
        import torch

        torch.manual_seed(seed)
        seeds["torch"] = seed
    return seeds
