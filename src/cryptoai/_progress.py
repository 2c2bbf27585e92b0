"""Progress bars: tqdm's best front end, or plain text where a log must read them.

In a JupyterLab kernel with ipywidgets, ``tqdm.auto`` draws a widget; a notebook run by the
experiment runner has nobody looking at widgets, and its progress belongs in the runner's
log, which reads the kernel's stderr. The runner sets ``CRYPTOAI_TEXT_PROGRESS=1`` for its
kernels, and every bar of the library then writes text.
"""

from __future__ import annotations

import os
from typing import Any

TEXT_PROGRESS_ENV = "CRYPTOAI_TEXT_PROGRESS"


def tqdm(*args: Any, **kwargs: Any) -> Any:
    """A ``tqdm`` bar: text when ``CRYPTOAI_TEXT_PROGRESS`` is set, else ``tqdm.auto``'s."""
    if os.environ.get(TEXT_PROGRESS_ENV, "").strip() not in ("", "0"):
        from tqdm.std import tqdm as bar
    else:
        from tqdm.auto import tqdm as bar
    return bar(*args, **kwargs)
