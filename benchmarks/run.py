"""Run every speed benchmark with one command: install the peer libraries, then each bench_*.py.

    python benchmarks/run.py [--no-install] [--quick] [--only backtest]

The peer libraries (``requirements-bench.txt``) go into the running environment, with the
project's core numerical packages pinned to the versions already installed: if a peer
would need a different numpy, pandas, numba or torch, pip stops instead of replacing them.
Each benchmark runs in its own process (a fresh interpreter sees newly installed packages
and one failure does not stop the others) and writes its own section of the docs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements-bench.txt"
CONSTRAINTS = HERE / ".cache" / "constraints.txt"
#: Never changed by installing the peers (the project's results depend on them).
PROTECTED = ("numpy", "pandas", "numba", "llvmlite", "scipy", "scikit-learn", "torch", "pyarrow")


def constraints() -> Path:
    """A pip constraints file pinning every installed PROTECTED package to its version."""
    pins = []
    for name in PROTECTED:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    CONSTRAINTS.parent.mkdir(parents=True, exist_ok=True)
    CONSTRAINTS.write_text("\n".join(pins) + "\n")
    return CONSTRAINTS


def install() -> None:
    """Install the peers into this interpreter's environment (a no-op when already there)."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    cmd += ["-r", str(REQUIREMENTS), "-c", str(constraints())]
    print("installing benchmark requirements:", REQUIREMENTS.name, flush=True)
    done = subprocess.run(cmd, check=False)
    if done.returncode != 0:
        raise SystemExit(
            f"installing {REQUIREMENTS.name} failed (exit {done.returncode}): a peer library may need"
            " a different numpy/pandas/numba/torch than the project's; pick versions that fit or"
            " run the benchmarks in a separate environment"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-install", action="store_true", help="skip installing the peers")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, results not published (smoke test)"
    )
    parser.add_argument(
        "--only", action="append", default=[], help="run only bench_NAME.py (repeatable)"
    )
    args = parser.parse_args(argv)
    if not args.no_install:
        install()
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only]
    if not scripts:
        raise SystemExit("no benchmark selected: --only takes names like backtest or features")
    failed = []
    for script in scripts:
        extra = []
        if args.quick:
            if not _accepts_quick(script):
                print(f"== {script.name}: skipped (no --quick mode)", flush=True)
                continue
            extra = ["--quick"]
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script), *extra], check=False).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"benchmarks with problems: {', '.join(failed)} (see their output above)")
        return 1
    return 0


def _accepts_quick(script: Path) -> bool:
    return "--quick" in script.read_text(encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
