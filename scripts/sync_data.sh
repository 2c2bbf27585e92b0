#!/usr/bin/env bash
# Incremental sync of the series listed in a data config (default configs/data/sync.yaml).
# Safe to run from cron: only missing bars are fetched, writes are atomic, and a failed
# symbol does not stop the others. Exit code is non-zero if any series failed.
#
#   scripts/sync_data.sh [configs/data/sync.yaml]
set -uo pipefail
cd "$(dirname "$0")/.."
CONFIG="${1:-configs/data/sync.yaml}"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec "$PY" -m cryptoai.data.sync "$CONFIG"
