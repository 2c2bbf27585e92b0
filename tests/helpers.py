"""Small helpers shared by tests (importable as ``helpers``: pytest puts tests/ on the path)."""

import hashlib
from pathlib import Path


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (lock files aside): equal snapshots, untouched store."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }
