"""Keep numba's on-disk caches honest across modules.

numba caches a compiled function beside its source (``__pycache__/<module>.<func>-*.nbi``)
and checks only that source file's time stamp. A function that calls the kernels of another
module carries compiled copies of them (and of their constants), so after that other module
changes it would keep running the old code. ``drop_stale`` removes such a module's cache
index when a module it depends on is newer; numba then compiles it afresh.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def drop_stale(module_file: str, *depends_on: str) -> int:
    """Delete the cache index files of ``module_file`` older than any of ``depends_on``
    (source files); returns how many were deleted. Never raises: at worst numba keeps
    a cache, exactly as without this check."""
    src = Path(module_file)
    try:
        newest = max(Path(d).stat().st_mtime_ns for d in depends_on)
        indexes = list((src.parent / "__pycache__").glob(f"{src.stem}.*.nbi"))
    except (OSError, ValueError):
        return 0
    dropped = 0
    for index in indexes:
        try:
            if index.stat().st_mtime_ns < newest:
                index.unlink()
                dropped += 1
        except OSError:
            continue
    if dropped:
        log.debug("%s: %d compiled cache(s) older than a dependency dropped", src.name, dropped)
    return dropped
