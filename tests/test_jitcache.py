"""numba's cache of a module that calls another module's kernels is dropped once that other
module changes (numba itself checks only the caller's own source stamp)."""

from __future__ import annotations

import os

from cryptoai._jitcache import drop_stale


def _touch(path, ns):
    """Create ``path`` with modification time ``ns`` (nanoseconds since the epoch)."""
    path.write_text(path.name)
    os.utime(path, ns=(ns, ns))


def test_an_index_older_than_a_dependency_is_dropped_and_a_newer_one_kept(tmp_path):
    caller, kernel = tmp_path / "steps.py", tmp_path / "kernel.py"
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    old_index = cache / "steps.env_step-10.py311.nbi"
    data = cache / "steps.env_step-10.py311.1.nbc"
    other = cache / "kernel.simulate-5.py311.nbi"  # the dependency's own cache: numba's job
    for path, ns in ((caller, 1_000), (old_index, 2_000), (data, 2_000), (other, 2_000)):
        _touch(path, ns)
    _touch(kernel, 3_000)  # the kernel changed after the caller was compiled
    assert drop_stale(str(caller), str(kernel)) == 1
    assert not old_index.exists() and other.exists()
    fresh = cache / "steps.first_obs-70.py311.nbi"
    _touch(fresh, 4_000)  # compiled after the change
    assert drop_stale(str(caller), str(kernel)) == 0
    assert fresh.exists()


def test_a_missing_dependency_or_cache_folder_changes_nothing(tmp_path):
    caller = tmp_path / "steps.py"
    caller.write_text("")
    assert drop_stale(str(caller), str(tmp_path / "gone.py")) == 0
    assert drop_stale(str(caller), str(caller)) == 0  # no __pycache__ at all
